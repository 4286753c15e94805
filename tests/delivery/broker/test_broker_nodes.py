"""The RabbitMQ adapter given several nodes: it connects to the first that answers and, when its
node goes away, carries on with another, losing nothing.

Each "node" here is a TCP proxy in front of the test broker: closing a proxy is a node that
vanishes (its connections drop, new ones are refused), without touching the broker. The same
failover against real clustered nodes killed with SIGKILL is `tests/ops/test_chaos_cluster.py`.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import pytest

from hub.delivery.broker import Delivery, Message, Topology, open_broker
from hub.delivery.broker.rabbitmq import RabbitBroker, split_urls
from hub.delivery.broker.topology import QueueSpec
from hub.chaos.nodes import free_port
from hub.errors import BrokerUnavailable, ConfigurationError
from hub.ops.queues import ManagementApi
from hub.testing.plugin import wait_for


def test_one_url_or_several_separated_by_commas() -> None:
    one = "amqp://hub:secret@rabbit-1:5672/hub"
    assert split_urls(one) == [one]
    assert split_urls("amqp://a:b@r1:5672/%2F, amqps://a:b@r2:5671/%2F,amqp://a:b@r3/%2F") == [
        "amqp://a:b@r1:5672/%2F", "amqps://a:b@r2:5671/%2F", "amqp://a:b@r3/%2F"]
    # A comma that does not start the next URL belongs to this one (a password, a parameter).
    assert split_urls("amqp://hub:se,cret@r1/%2F,amqp://hub:se,cret@r2/%2F") == [
        "amqp://hub:se,cret@r1/%2F", "amqp://hub:se,cret@r2/%2F"]
    with pytest.raises(ConfigurationError):
        split_urls(" ")


def test_the_console_reads_credentials_and_vhost_of_the_first_node() -> None:
    api = ManagementApi.for_settings(
        "amqp://ops:pw@rabbit-1:5672/econsulat,amqp://ops:pw@rabbit-2:5672/econsulat", None)
    assert api is not None
    assert (api.base_url, api.vhost) == ("http://rabbit-1:15672", "econsulat")


@pytest.fixture
def topology(namespace: str) -> Topology:
    return Topology(namespace=namespace, queues=(QueueSpec(f"{namespace}.work", ("work.#",),
                                                           (0.3,)),))


@pytest.fixture
def nodes(rabbitmq_url: str, tcp_proxy: Callable[..., Any]) -> Callable[[int], list[Any]]:
    """``nodes(n)``: n proxies in front of the test broker, each standing for a node."""
    target = urlparse(rabbitmq_url)

    def make(count: int) -> list[Any]:
        return [tcp_proxy(target.hostname, target.port or 5672) for _ in range(count)]

    return make


def node_url(rabbitmq_url: str, port: int) -> str:
    target = urlparse(rabbitmq_url)
    return rabbitmq_url.replace(f"{target.hostname}:{target.port or 5672}", f"127.0.0.1:{port}")


@pytest.fixture
def brokers(rabbitmq_url: str, topology: Topology) -> Iterator[Callable[[str], RabbitBroker]]:
    opened: list[RabbitBroker] = []

    def make(url: str) -> RabbitBroker:
        broker = open_broker(url, topology, reconnect_attempts=4, reconnect_max_delay=0.5)
        assert isinstance(broker, RabbitBroker)
        opened.append(broker)
        return broker

    admin = make(rabbitmq_url)
    admin.declare()
    yield make
    try:
        admin.delete_topology()
    finally:
        for broker in opened:
            broker.close()


def message() -> Message:
    return Message(body=b'{"n":1}', message_id=str(uuid.uuid4()), routing_key="work.x")


@pytest.mark.rabbitmq
def test_a_node_that_does_not_answer_is_skipped(rabbitmq_url, brokers, nodes, topology):
    (alive,) = nodes(1)
    dead = free_port()  # nothing listens there
    broker = brokers(f"{node_url(rabbitmq_url, dead)},{node_url(rabbitmq_url, alive.port)}")
    broker.publish(message())
    assert broker.node == f"127.0.0.1:{alive.port}"
    assert broker.depth(topology.queues[0].name) == 1


@pytest.mark.rabbitmq
def test_no_node_answering_is_broker_unavailable(rabbitmq_url, brokers):
    broker = brokers(",".join(node_url(rabbitmq_url, free_port()) for _ in range(2)))
    with pytest.raises(BrokerUnavailable):
        broker.publish(message())


@pytest.mark.rabbitmq
def test_publisher_and_consumer_move_to_another_node_when_theirs_vanishes(
        rabbitmq_url, brokers, nodes, topology):
    first, second, third = nodes(3)
    urls = ",".join(node_url(rabbitmq_url, node.port) for node in (first, second, third))
    publisher, consumer = brokers(urls), brokers(urls)
    got: set[str] = set()
    stop = threading.Event()

    def handler(delivery: Delivery) -> None:
        got.add(delivery.message.message_id)
        delivery.ack()

    thread = threading.Thread(target=consumer.consume, args=(topology.queues[0].name, handler),
                              kwargs={"stop": stop}, daemon=True)
    thread.start()
    before = [message() for _ in range(5)]
    for sent in before:
        publisher.publish(sent)
    wait_for(lambda: len(got) == 5, what="the first messages consumed")
    assert publisher.node == consumer.node == f"127.0.0.1:{first.port}"

    first.close()  # the node vanishes: connections drop, new ones are refused
    after = [message() for _ in range(5)]
    for sent in after:
        publisher.publish(sent)  # reconnects to the next node on its own
    wait_for(lambda: len(got) == 10, timeout=30, what="the later messages consumed")
    stop.set()
    thread.join(10)
    assert got == {m.message_id for m in before + after}
    assert publisher.node == consumer.node == f"127.0.0.1:{second.port}"
    assert publisher.failovers == consumer.failovers == 1


@pytest.mark.rabbitmq
def test_after_losing_a_node_the_next_connection_starts_with_the_next_node(
        rabbitmq_url, brokers, nodes):
    first, second = nodes(2)
    broker = brokers(f"{node_url(rabbitmq_url, first.port)},{node_url(rabbitmq_url, second.port)}")
    broker.publish(message())
    assert broker.node == f"127.0.0.1:{first.port}"
    first.cut()  # a network blip: the node is still there, the connection is not
    broker.publish(message())
    # Not back to the first node at once: a node that just failed is tried last.
    assert broker.node == f"127.0.0.1:{second.port}"


@pytest.mark.rabbitmq
def test_a_consumer_whose_ack_finds_the_connection_gone_reconnects_and_carries_on(
        rabbitmq_url, brokers, nodes, topology):
    """The settle of a delivery fails because the node went away under it: the work is done
    (the consumer committed it), RabbitMQ will deliver the message again, and the consume loop
    must carry on over a new connection, not die on the closed one."""
    (node,) = nodes(1)
    url = node_url(rabbitmq_url, node.port)
    publisher, consumer = brokers(rabbitmq_url), brokers(url)
    seen: list[tuple[str, bool]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def handler(delivery: Delivery) -> None:
        seen.append((delivery.message.message_id, delivery.redelivered))
        if len(seen) == 1:
            node.cut()  # the connection is gone before the ack
        try:
            delivery.ack()
        except BrokerUnavailable:
            pass  # the consumer's way: its work is committed, the broker redelivers

    def consume() -> None:
        try:
            consumer.consume(topology.queues[0].name, handler, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    first = message()
    publisher.publish(first)
    wait_for(lambda: len(seen) >= 2 or errors, timeout=30, what="the message delivered again")
    later = message()
    publisher.publish(later)
    wait_for(lambda: any(m == later.message_id for m, _ in seen) or errors, timeout=30,
             what="a later message consumed")
    stop.set()
    thread.join(10)
    assert errors == []
    assert seen[:2] == [(first.message_id, False), (first.message_id, True)]
