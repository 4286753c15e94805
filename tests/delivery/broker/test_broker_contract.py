"""One contract, two adapters: the embedded SQLite queue and RabbitMQ must behave the same.

Each test runs once per adapter (``broker_kind`` is parametrized by the hub's pytest plugin).
RabbitMQ tests use a namespace of their own and delete it afterwards.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any

import pytest

from hub.delivery import broker as b
from hub.delivery.broker import Broker, Delivery, Message, Topology, open_broker
from hub.delivery.broker.topology import QueueSpec
from hub.errors import UnknownRoute
from hub.testing.plugin import wait_for

RETRY = (0.3, 0.6)


@pytest.fixture
def topology(namespace: str) -> Topology:
    return Topology(namespace=namespace, queues=(
        QueueSpec(f"{namespace}.work", ("work.#",), RETRY),
        QueueSpec(f"{namespace}.other", ("other.*",), RETRY),
    ))


@pytest.fixture
def connect(broker_url: str, topology: Topology) -> Any:
    opened: list[Broker] = []

    def make(url: str | None = None, **options: Any) -> Broker:
        options.setdefault("visibility_timeout", 1.0)
        broker = open_broker(url or broker_url, topology, **options)
        opened.append(broker)
        return broker

    first = make()
    first.declare()
    yield make
    try:
        first.delete_topology()
    finally:
        for broker in opened:
            broker.close()


def message(body: bytes = b'{"n":1}', key: str = "work.narsa", **headers: Any) -> Message:
    return Message(body=body, message_id=str(uuid.uuid4()), routing_key=key, headers=headers)


def take(broker: Broker, queue: str, timeout: float = 10.0) -> Delivery:
    return wait_for(lambda: broker.get(queue), timeout)


def test_publish_then_consume_delivers_body_id_and_headers(connect, topology):
    broker = connect()
    sent = message(b'{"hello":"world"}', **{"x-custom": "yes"})
    broker.publish(sent)
    got = take(broker, f"{topology.namespace}.work")
    assert got.message.body == sent.body
    assert got.message.message_id == sent.message_id
    assert got.message.headers["x-custom"] == "yes"
    assert got.message.routing_key == "work.narsa"
    assert got.redelivered is False
    got.ack()
    assert broker.get(f"{topology.namespace}.work") is None


def test_topic_bindings_route_only_to_matching_queues(connect, topology):
    broker = connect()
    broker.publish(message(key="other.one"))
    assert take(broker, f"{topology.namespace}.other").message.routing_key == "other.one"
    assert broker.get(f"{topology.namespace}.work") is None


def test_unroutable_publish_is_an_error_not_a_silent_drop(connect):
    broker = connect()
    with pytest.raises(UnknownRoute):
        broker.publish(message(key="nobody.listens.here"))


def test_acked_message_is_gone_and_unsettled_one_comes_back(connect, topology):
    broker = connect()
    broker.publish(message())
    delivery = take(broker, f"{topology.namespace}.work")
    delivery.release()
    again = take(broker, f"{topology.namespace}.work")
    assert again.message.message_id == delivery.message.message_id
    assert again.redelivered is True
    again.ack()
    time.sleep(0.2)
    assert broker.depth(f"{topology.namespace}.work") == 0


def test_retry_goes_through_delay_and_comes_back_with_headers(connect, topology):
    broker = connect()
    sent = message()
    broker.publish(sent)
    queue = f"{topology.namespace}.work"
    first = take(broker, queue)
    started = time.monotonic()
    first.retry(0, 0.25, headers={b.H_ATTEMPT: 1, b.H_ERROR_CODE: "agency.timeout"},
                body=b'{"n":2}')
    assert broker.get(queue) is None  # invisible during the delay
    again = take(broker, queue)
    waited = time.monotonic() - started
    assert again.message.message_id == sent.message_id
    assert again.message.body == b'{"n":2}'
    assert again.message.headers[b.H_ATTEMPT] == 1
    assert again.message.headers[b.H_ERROR_CODE] == "agency.timeout"
    # Behaviour, not speed: it did wait (at least most of the delay), it did not vanish.
    assert waited >= 0.2
    again.ack()


def test_dead_letter_keeps_original_body_and_reason_headers(connect, topology):
    broker = connect()
    sent = message(b'{"poison":true}')
    broker.publish(sent)
    delivery = take(broker, f"{topology.namespace}.work")
    delivery.dead_letter(headers={b.H_ERROR_CODE: "message.schema", b.H_ERROR: "bad field",
                                  b.H_COMPONENT: "connector.narsa", b.H_ATTEMPT: 3})
    parked = take(broker, f"{topology.namespace}.work.dlq")
    assert parked.message.body == sent.body
    assert parked.message.message_id == sent.message_id
    assert parked.message.headers[b.H_ERROR_CODE] == "message.schema"
    assert parked.message.headers[b.H_ERROR] == "bad field"
    assert parked.message.headers[b.H_COMPONENT] == "connector.narsa"
    assert parked.message.headers[b.H_ATTEMPT] == 3
    parked.ack()
    assert broker.get(f"{topology.namespace}.work") is None


def test_retries_until_exhaustion_end_in_the_dead_letter_queue(connect, topology):
    """The consumer's loop: retry on each rung, then park; nothing is lost on the way."""
    broker = connect()
    sent = message()
    broker.publish(sent)
    queue = f"{topology.namespace}.work"
    attempts = 0
    while True:
        delivery = take(broker, queue)
        attempts += 1
        if attempts < 3:
            delivery.retry(attempts - 1, 0.05, headers={b.H_ATTEMPT: attempts})
        else:
            delivery.dead_letter(headers={b.H_ERROR_CODE: "agency.unavailable",
                                          b.H_ATTEMPT: attempts})
            break
    parked = take(broker, f"{queue}.dlq")
    assert parked.message.message_id == sent.message_id
    assert parked.message.headers[b.H_ATTEMPT] == 3
    assert parked.message.headers[b.H_ERROR_CODE] == "agency.unavailable"
    parked.ack()


def test_consume_loop_delivers_in_order_and_stops_on_request(connect, topology):
    broker = connect()
    sent = [message(f'{{"n":{i}}}'.encode()) for i in range(20)]
    for m in sent:
        broker.publish(m)
    got: list[str] = []
    stop = threading.Event()

    def handler(delivery: Delivery) -> None:
        got.append(delivery.message.message_id)
        delivery.ack()
        if len(got) == len(sent):
            stop.set()

    consumer = connect()
    thread = threading.Thread(target=consumer.consume, args=(f"{topology.namespace}.work", handler),
                              kwargs={"stop": stop, "prefetch": 5}, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert got == [m.message_id for m in sent]


def test_handler_leaving_a_delivery_unsettled_gets_it_back(connect, topology):
    broker = connect()
    broker.publish(message())
    seen: list[bool] = []
    stop = threading.Event()

    def handler(delivery: Delivery) -> None:
        seen.append(delivery.redelivered)
        if len(seen) == 2:
            delivery.ack()
            stop.set()
        # first time: return without settling

    consumer = connect()
    thread = threading.Thread(target=consumer.consume, args=(f"{topology.namespace}.work", handler),
                              kwargs={"stop": stop}, daemon=True)
    thread.start()
    thread.join(20)
    assert seen == [False, True]


KILLED_CONSUMER = textwrap.dedent("""
    import sys, time
    from hub.delivery.broker import open_broker, Topology
    from hub.delivery.broker.topology import QueueSpec
    ns, url = sys.argv[1], sys.argv[2]
    topology = Topology(namespace=ns, queues=(QueueSpec(ns + ".work", ("work.#",), (0.3, 0.6)),
                                              QueueSpec(ns + ".other", ("other.*",), (0.3, 0.6))))
    broker = open_broker(url, topology, visibility_timeout=1.0)
    while True:
        delivery = broker.get(ns + ".work")
        if delivery is not None:
            print("GOT", delivery.message.message_id, flush=True)
            time.sleep(600)  # killed here, mid-message, before any ack
        time.sleep(0.05)
""")


def test_consumer_killed_mid_message_does_not_lose_it(connect, topology, broker_url):
    broker = connect()
    sent = message()
    broker.publish(sent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_CONSUMER, topology.namespace, broker_url],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        assert line.split() == ["GOT", sent.message_id]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    again = take(broker, f"{topology.namespace}.work", timeout=15)
    assert again.message.message_id == sent.message_id
    assert again.redelivered is True
    again.ack()


def test_publisher_survives_connection_loss(connect, topology, broker_kind, rabbitmq_url_or_none,
                                            tcp_proxy):
    if broker_kind == "rabbitmq":
        from urllib.parse import urlparse

        target = urlparse(rabbitmq_url_or_none)
        proxy = tcp_proxy(target.hostname, target.port or 5672)
        url = rabbitmq_url_or_none.replace(f"{target.hostname}:{target.port or 5672}",
                                           f"127.0.0.1:{proxy.port}")
        broker = connect(url)
        sever = proxy.cut
    else:
        broker = connect()

        def sever() -> int:
            broker.sever()  # the file handle vanishes under the adapter
            return 1

    broker.publish(message(b'{"before":1}'))
    assert sever() > 0
    broker.publish(message(b'{"after":1}'))  # reconnects transparently
    reader = connect()
    bodies = []
    for _ in range(2):
        delivery = take(reader, f"{topology.namespace}.work")
        bodies.append(delivery.message.body)
        delivery.ack()
    assert sorted(bodies) == [b'{"after":1}', b'{"before":1}']


def test_consumer_survives_connection_loss_and_loses_nothing(connect, topology, broker_kind,
                                                             rabbitmq_url_or_none, tcp_proxy):
    if broker_kind == "rabbitmq":
        from urllib.parse import urlparse

        target = urlparse(rabbitmq_url_or_none)
        proxy = tcp_proxy(target.hostname, target.port or 5672)
        url = rabbitmq_url_or_none.replace(f"{target.hostname}:{target.port or 5672}",
                                           f"127.0.0.1:{proxy.port}")
        consumer = connect(url)
        sever = proxy.cut
    else:
        consumer = connect()

        def sever() -> int:
            consumer.sever()
            return 1

    publisher = connect()
    got: set[str] = set()
    stop = threading.Event()

    def handler(delivery: Delivery) -> None:
        got.add(delivery.message.message_id)
        delivery.ack()

    thread = threading.Thread(target=consumer.consume, args=(f"{topology.namespace}.work", handler),
                              kwargs={"stop": stop}, daemon=True)
    thread.start()
    first = [message() for _ in range(5)]
    for m in first:
        publisher.publish(m)
    wait_for(lambda: len(got) >= 5)
    sever()
    second = [message() for _ in range(5)]
    for m in second:
        publisher.publish(m)
    wait_for(lambda: len(got) >= 10, timeout=30)
    stop.set()
    thread.join(10)
    assert got == {m.message_id for m in first + second}


def test_depth_counts_waiting_messages_and_purge_empties(connect, topology):
    broker = connect()
    for _ in range(3):
        broker.publish(message())
    queue = f"{topology.namespace}.work"
    wait_for(lambda: broker.depth(queue) == 3)
    assert broker.purge(queue) == 3
    assert broker.depth(queue) == 0


def test_send_to_queue_bypasses_the_exchange(connect, topology):
    broker = connect()
    sent = message(key="work.replayed")
    broker.send_to_queue(f"{topology.namespace}.work", sent)
    assert take(broker, f"{topology.namespace}.work").message.message_id == sent.message_id
    with pytest.raises(UnknownRoute):
        broker.send_to_queue(f"{topology.namespace}.missing", message())


def test_a_message_that_keeps_killing_its_consumer_is_parked_not_looped(connect, topology):
    """Poison protection: unsettled deliveries beyond the queue's limit end in the DLQ."""
    broker = connect()
    sent = message()
    broker.publish(sent)
    queue = f"{topology.namespace}.work"
    limit = topology.queue(queue).delivery_limit
    deliveries = 0
    while True:
        delivery = broker.get(queue)
        if delivery is None:
            parked = broker.get(f"{queue}.dlq")
            if parked is not None:
                break
            time.sleep(0.02)
            continue
        deliveries += 1
        assert deliveries <= limit + 1, "the broker kept delivering a poison message"
        delivery.release()  # as if the consumer died holding it
    assert deliveries == limit + 1
    assert parked.message.message_id == sent.message_id
    assert parked.message.headers[b.H_ERROR_CODE] == b.DELIVERY_LIMIT_CODE
    assert parked.message.headers[b.H_ORIGINAL_QUEUE] == queue
    assert "times without being settled" in parked.message.headers[b.H_ERROR]
    parked.ack()


# -- batches ------------------------------------------------------------------------------------


def test_a_published_batch_is_confirmed_and_consumed_in_batches_in_order(connect, topology):
    broker = connect()
    sent = [message(f'{{"n":{i}}}'.encode()) for i in range(40)]
    broker.publish_many(sent)
    got: list[str] = []
    sizes: list[int] = []
    stop = threading.Event()

    def handler(batch: list[Delivery]) -> None:
        sizes.append(len(batch))
        got.extend(d.message.message_id for d in batch)
        consumer.ack_many(batch)
        if len(got) == len(sent):
            stop.set()

    consumer = connect()
    thread = threading.Thread(target=consumer.consume_batches,
                              args=(f"{topology.namespace}.work", handler),
                              kwargs={"stop": stop, "max_batch": 16, "prefetch": 32}, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert got == [m.message_id for m in sent]
    # Everything was waiting: the batches are as large as allowed, never larger.
    assert max(sizes) == 16 and len(sizes) < len(sent)
    assert broker.depth(f"{topology.namespace}.work") == 0


def test_a_batch_with_an_unroutable_message_is_an_error(connect):
    broker = connect()
    with pytest.raises(UnknownRoute):
        broker.publish_many([message(), message(key="nowhere.at.all")])


def test_deliveries_a_batch_handler_leaves_unsettled_come_back(connect, topology):
    broker = connect()
    sent = [message(f'{{"n":{i}}}'.encode()) for i in range(3)]
    broker.publish_many(sent)
    rounds: list[list[bool]] = []
    stop = threading.Event()

    def handler(batch: list[Delivery]) -> None:
        rounds.append([d.redelivered for d in batch])
        if sum(len(r) for r in rounds) == 1:
            return  # the first delivery seen is left unsettled
        for delivery in batch:
            if delivery.message.message_id == sent[0].message_id or len(rounds) > 1:
                delivery.ack()
        if broker.depth(f"{topology.namespace}.work") == 0:
            stop.set()

    consumer = connect()
    thread = threading.Thread(target=consumer.consume_batches,
                              args=(f"{topology.namespace}.work", handler),
                              kwargs={"stop": stop, "max_batch": 1, "prefetch": 1}, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert rounds[0] == [False] and rounds[1] == [True]  # the same message, redelivered
