"""RabbitMQ adapter, through pika's blocking connection.

URL: ``amqp://user:password@host:5672/vhost`` (``amqps://`` for TLS), any pika URL parameter
allowed (``?heartbeat=60``). Options: ``reconnect_attempts`` (default 8) and
``reconnect_max_delay`` (seconds, default 5).

A cluster: several URLs separated by commas, one per node
(``amqp://hub:s@rabbit-1:5672/hub,amqp://hub:s@rabbit-2:5672/hub,...``). A connection goes to the
first node that answers, in the order given; when it is lost, the next connection starts with the
node after the one lost, so a process does not wait on a dead machine first. Give each process a
different node first to spread them. Quorum queues are reachable from any node of the cluster.

Topology, declared by `declare` (idempotent, durable):

- topic exchange ``<ns>.events``;
- a quorum queue per work queue, bound to its patterns;
- per-rung delay queues ``<queue>.retry.<ms>ms`` (quorum, ``x-message-ttl`` = rung delay, dead-letter
  exchange ``""`` routing back to the work queue, at-least-once dead-lettering so an expiring
  message cannot be dropped); a message may carry a shorter ``expiration`` for jitter;
- ``<queue>.dlq`` (quorum) for parked messages.

Publishes use publisher confirms and ``mandatory`` (an unroutable message is an error);
`publish_many` sends a whole batch and then waits once for the broker's confirms of all of it
(asynchronous confirms on a channel of its own), instead of one round trip per message.
Consumers use manual acks and a prefetch window; `consume_batches` hands over whatever the
window holds when the handler is free. Connection loss (broker restart, network cut) is survived:
the operation is retried on a new connection with exponential backoff; deliveries held when the
connection dropped are requeued by RabbitMQ itself and come back flagged redelivered.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime
from typing import Any, Callable

import pika
import pika.exceptions as pex
from pika.adapters.utils import connection_workflow

from hub.delivery.broker import base as b
from hub.delivery.broker.base import Broker, Delivery, Handler, Headers, Message
from hub.delivery.broker.topology import Topology
from hub.errors import BrokerUnavailable, ConfigurationError, UnknownRoute

log = logging.getLogger(__name__)

_CONNECTION_ERRORS = (pex.AMQPConnectionError, pex.AMQPChannelError, pex.StreamLostError,
                      pex.ConnectionWrongStateError, pex.ChannelWrongStateError, ConnectionError,
                      OSError,
                      # A handshake that times out (a busy broker) can surface as pika's
                      # connection-workflow errors, which are none of the above: uncaught, they
                      # ended the relay's thread and the hub stopped publishing.
                      connection_workflow.AMQPConnectorException,
                      connection_workflow.AMQPConnectionWorkflowFailed)


def split_urls(url: str) -> list[str]:
    """The node URLs of ``HUB_BROKER_URL``: one URL, or several separated by commas (a comma
    followed by the next ``amqp://`` or ``amqps://``, so a comma inside a URL stays its own)."""
    urls = [part.strip() for part in re.split(r",\s*(?=amqps?://)", url.strip()) if part.strip()]
    if not urls:
        raise ConfigurationError("HUB_BROKER_URL names no RabbitMQ node")
    return urls


def _node_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    if "heartbeat" not in url:
        params.heartbeat = 60
    if "blocked_connection_timeout" not in url:
        params.blocked_connection_timeout = 30
    if "socket_timeout" not in url:
        params.socket_timeout = 5
    return params


def _plain_headers(headers: dict[str, Any] | None) -> Headers:
    """Headers as JSON-able values (RabbitMQ adds x-death with datetimes and nested tables)."""
    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return {str(k): plain(v) for k, v in (headers or {}).items()}


def _death_time(headers: Headers) -> str:
    deaths = headers.get("x-death") or [{}]
    return str(deaths[0].get("time") or datetime.now().astimezone().isoformat())


class RabbitDelivery(Delivery):
    def __init__(self, broker: "RabbitBroker", channel: Any, tag: int, message: Message,
                 queue: str, redelivered: bool) -> None:
        super().__init__(message, queue, redelivered)
        self._broker = broker
        self._channel = channel
        self._tag = tag

    def _ack_on_same_channel(self) -> None:
        # An ack is only valid on the channel that delivered the message. If that channel died,
        # RabbitMQ has already requeued the message: report it, the work must be idempotent.
        try:
            self._channel.basic_ack(self._tag)
        except _CONNECTION_ERRORS as exc:
            self._broker._drop_connection()
            raise BrokerUnavailable(
                f"connection lost before message {self.message.message_id} was acknowledged;"
                f" RabbitMQ will redeliver it: {exc}") from None

    def ack(self) -> None:
        self._settle()
        self._ack_on_same_channel()

    def retry(self, step: int, delay: float, *, headers: Headers, body: bytes | None = None) -> None:
        self._settle()
        spec = self._broker.topology.owner_of(self.queue)
        rung = spec.step_for(step)
        ttl_ms = max(1, int(min(delay, spec.retry_delays[rung]) * 1000))
        message = Message(body=body if body is not None else self.message.body,
                          message_id=self.message.message_id,
                          routing_key=self.message.routing_key,
                          headers={**self.message.headers, **headers})
        self._broker._publish("", spec.retry_queue(rung), message, expiration=str(ttl_ms))
        self._ack_on_same_channel()

    def dead_letter(self, *, headers: Headers) -> None:
        self._settle()
        spec = self._broker.topology.owner_of(self.queue)
        message = Message(body=self.message.body, message_id=self.message.message_id,
                          routing_key=self.message.routing_key,
                          headers={**self.message.headers, **headers})
        self._broker._publish("", spec.dead_letter_queue, message)
        self._ack_on_same_channel()

    def release(self) -> None:
        self._settle()
        try:
            self._channel.basic_nack(self._tag, requeue=True)
        except _CONNECTION_ERRORS:
            self._broker._drop_connection()  # the broker requeues it on connection close


class RabbitBroker(Broker):
    def __init__(self, url: str, topology: Topology, *, reconnect_attempts: int = 8,
                 reconnect_max_delay: float = 5.0, **_: Any) -> None:
        super().__init__(topology)
        #: One connection parameter set per node, in the order to try them.
        self.nodes = [_node_parameters(node_url) for node_url in split_urls(url)]
        #: Index in `nodes` of the node the next connection tries first.
        self._first = 0
        #: ``host:port`` of the node of the current (or last) connection.
        self.node: str | None = None
        #: Connections that went to another node than the one before (a node was lost).
        self.failovers = 0
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_max_delay = reconnect_max_delay
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        #: The channel of `publish_many` (asynchronous confirms) and its confirm bookkeeping.
        self._batch_channel: Any = None
        self._batch_seq = 0
        self._unconfirmed: set[int] = set()
        self._nacked: set[int] = set()
        self._returned: list[str] = []
        #: Incremented at every new connection; tests and metrics read it.
        self.connections_opened = 0

    # -- connection ---------------------------------------------------------------------------

    def _ensure(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        if self._connection is None or not self._connection.is_open:
            self._drop_connection()
            self._connection = self._connect()
            self.connections_opened += 1
        channel = self._connection.channel()
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def _connect(self) -> pika.BlockingConnection:
        """A connection to the first node that answers, starting at `_first`; raises the last
        node's error when none does (the caller's backoff then tries the round again)."""
        error: BaseException | None = None
        count = len(self.nodes)
        for offset in range(count):
            index = (self._first + offset) % count
            params = self.nodes[index]
            try:
                connection = pika.BlockingConnection(params)
            except _CONNECTION_ERRORS as exc:
                error = exc
                if count > 1:
                    log.info("RabbitMQ node %s:%s unavailable, trying the next: %r",
                             params.host, params.port, exc)
                continue
            node = f"{params.host}:{params.port}"
            if self.node is not None and node != self.node:
                self.failovers += 1
                log.warning("RabbitMQ failover: connected to node %s (was %s)", node, self.node,
                            extra={"component": "broker", "count": self.failovers})
            self.node, self._first = node, index
            return connection
        assert error is not None
        raise error

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._batch_channel = None
        if connection is not None and len(self.nodes) > 1 and not connection.is_open:
            # Lost, not closed by us: the next connection starts with the next node, so that a
            # process does not wait on a dead node first at every reconnection.
            self._first = (self._first + 1) % len(self.nodes)
        if connection is not None:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail any way
                pass

    def _with_channel(self, what: str, fn: Callable[[Any], Any]) -> Any:
        delay = 0.1
        for attempt in range(self.reconnect_attempts):
            try:
                return fn(self._ensure())
            except pex.UnroutableError:
                raise
            except pex.NackError as exc:
                raise BrokerUnavailable(f"RabbitMQ refused to take the message ({what}): {exc}")
            except pex.ChannelClosedByBroker as exc:
                self._channel = None  # the connection survives; the next call opens a channel
                if exc.reply_code == 404:
                    raise UnknownRoute(f"RabbitMQ has no such object ({what}): {exc.reply_text}"
                                       ) from None
                if exc.reply_code in (403, 406):
                    raise ConfigurationError(
                        f"RabbitMQ refused {what}: {exc.reply_code} {exc.reply_text}") from None
                if attempt == self.reconnect_attempts - 1:
                    raise BrokerUnavailable(f"RabbitMQ closed the channel during {what}: {exc}"
                                            ) from None
                time.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
            except _CONNECTION_ERRORS as exc:
                self._drop_connection()
                if attempt == self.reconnect_attempts - 1:
                    raise BrokerUnavailable(f"RabbitMQ unavailable during {what}: {exc!r}") from None
                log.warning("broker connection lost during %s, reconnecting in %.1fs: %r",
                            what, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._drop_connection()

    # -- topology -----------------------------------------------------------------------------

    def declare(self) -> None:
        def work(channel: Any) -> None:
            exchange = self.topology.exchange
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            for spec in self.topology.queues:
                channel.queue_declare(spec.name, durable=True, arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": spec.delivery_limit,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": spec.dead_letter_queue,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                })
                for pattern in spec.bindings:
                    channel.queue_bind(spec.name, exchange, routing_key=pattern)
                for rung, seconds in enumerate(spec.retry_delays):
                    channel.queue_declare(spec.retry_queue(rung), durable=True, arguments={
                        "x-queue-type": "quorum",
                        "x-message-ttl": int(seconds * 1000),
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": spec.name,
                        "x-dead-letter-strategy": "at-least-once",
                        "x-overflow": "reject-publish",
                    })
                channel.queue_declare(spec.dead_letter_queue, durable=True,
                                      arguments={"x-queue-type": "quorum"})

        self._with_channel("declare", work)

    def delete_topology(self) -> None:
        def work(channel: Any) -> None:
            for name in self.topology.all_queue_names():
                channel.queue_delete(name)
            channel.exchange_delete(self.topology.exchange)

        self._with_channel("delete topology", work)

    # -- publishing ---------------------------------------------------------------------------

    def _publish(self, exchange: str, routing_key: str, message: Message, *,
                 expiration: str | None = None) -> None:
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, message_id=message.message_id,
            headers=dict(message.headers), content_type="application/json",
            expiration=expiration)
        try:
            self._with_channel("publish", lambda ch: ch.basic_publish(
                exchange, routing_key, message.body, properties, mandatory=True))
        except pex.UnroutableError:
            raise UnknownRoute(f"no queue is bound to routing key {routing_key!r}",
                               routing_key=routing_key) from None

    def publish(self, message: Message) -> None:
        self._publish(self.topology.exchange, message.routing_key, message)

    #: Longest wait for the confirms of one batch before the broker counts as unavailable.
    CONFIRM_TIMEOUT = 30.0

    def _confirming_channel(self) -> Any:
        """The channel of `publish_many`: confirm mode with our own callbacks, so that a batch
        is published in one go and its confirms are awaited together."""
        self._ensure()
        channel = self._batch_channel
        if channel is not None and channel.is_open:
            return channel
        assert self._connection is not None
        channel = self._connection.channel()._impl  # the callback-level channel
        self._batch_seq = 0
        self._unconfirmed, self._nacked, self._returned = set(), set(), []

        def on_confirm(frame: Any) -> None:
            method = frame.method
            done = ({tag for tag in self._unconfirmed if tag <= method.delivery_tag}
                    if method.multiple else {method.delivery_tag})
            self._unconfirmed -= done
            if isinstance(method, pika.spec.Basic.Nack):
                self._nacked |= done

        def on_return(_channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
            self._returned.append(properties.message_id or "")

        channel.confirm_delivery(ack_nack_callback=on_confirm)
        channel.add_on_return_callback(on_return)
        self._batch_channel = channel
        return channel

    def publish_many(self, messages: Any) -> None:
        batch = list(messages)
        if len(batch) <= 1:
            for message in batch:
                self.publish(message)
            return

        def work(_channel: Any) -> None:
            channel = self._confirming_channel()
            self._nacked, self._returned = set(), []
            for message in batch:
                channel.basic_publish(
                    self.topology.exchange, message.routing_key, message.body,
                    pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                         message_id=message.message_id,
                                         headers=dict(message.headers),
                                         content_type="application/json"),
                    mandatory=True)
                self._batch_seq += 1
                self._unconfirmed.add(self._batch_seq)
            deadline = time.monotonic() + self.CONFIRM_TIMEOUT
            assert self._connection is not None
            while self._unconfirmed:
                if time.monotonic() > deadline:
                    confirmed = len(batch) - len(self._unconfirmed)
                    raise BrokerUnavailable(f"RabbitMQ confirmed {confirmed} of {len(batch)}"
                                            f" messages within {self.CONFIRM_TIMEOUT:.0f} s")
                self._connection.process_data_events(time_limit=0.05)
                if not channel.is_open:
                    raise pex.ChannelWrongStateError("the publishing channel closed")
            if self._nacked:
                raise BrokerUnavailable(f"RabbitMQ refused {len(self._nacked)} of {len(batch)}"
                                        " messages (nack)")
            if self._returned:
                raise UnknownRoute(f"no queue is bound for {len(self._returned)} of"
                                   f" {len(batch)} messages", message_ids=self._returned[:10])

        self._with_channel("publish batch", work)

    def send_to_queue(self, queue: str, message: Message) -> None:
        self._publish("", queue, message)

    # -- consuming ----------------------------------------------------------------------------

    def _delivery(self, channel: Any, queue: str, method: Any, properties: Any,
                  body: bytes) -> RabbitDelivery:
        headers = _plain_headers(properties.headers)
        if headers.get("x-first-death-reason") == "delivery_limit" and b.H_ERROR_CODE not in headers:
            # Parked by RabbitMQ itself: say so in the hub's own words, as the embedded broker does.
            origin = str(headers.get("x-first-death-queue", ""))
            headers.update({
                b.H_ERROR_CODE: b.DELIVERY_LIMIT_CODE,
                b.H_ERROR: "delivered too many times without being settled (its consumer keeps"
                           " failing on it)",
                b.H_COMPONENT: "broker", b.H_ORIGINAL_QUEUE: origin,
                b.H_DEAD_LETTERED_AT: _death_time(headers),
            })
        message = Message(body=body, message_id=properties.message_id or "",
                          routing_key=method.routing_key, headers=headers)
        return RabbitDelivery(self, channel, method.delivery_tag, message, queue,
                              redelivered=bool(method.redelivered))

    def get(self, queue: str) -> RabbitDelivery | None:
        def work(channel: Any) -> Any:
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return None
            return self._delivery(channel, queue, method, properties, body)

        return self._with_channel("get", work)

    def consume(self, queue: str, handler: Handler, *, stop: threading.Event,
                prefetch: int = 16, idle: Callable[[], None] | None = None) -> None:
        delay = 0.1
        while not stop.is_set():
            try:
                channel = self._ensure()
                channel.basic_qos(prefetch_count=prefetch)
                for method, properties, body in channel.consume(queue, inactivity_timeout=0.25):
                    if stop.is_set():
                        break
                    if method is None:
                        if idle is not None:
                            idle()
                        continue
                    delay = 0.1
                    delivery = self._delivery(channel, queue, method, properties, body)
                    try:
                        handler(delivery)
                    finally:
                        if not delivery.settled:
                            delivery.release()
                    if self._channel is not channel:
                        # Settling found the connection gone and dropped it (a node lost under
                        # the consumer): consume again on a new one. Reading on from the closed
                        # one made pika raise ValueError, which ended the consumer's thread.
                        break
                if channel.is_open:
                    channel.cancel()  # requeues what the prefetch window still held
            except BrokerUnavailable as exc:
                log.warning("consumer on %s lost the broker: %s", queue, exc)
                self._drop_connection()
                stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
            except _CONNECTION_ERRORS as exc:
                log.warning("consumer on %s lost its connection, reconnecting in %.1fs: %r",
                            queue, delay, exc)
                self._drop_connection()
                stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max_delay)

    def consume_batches(self, queue: str, handler: Any, *, stop: threading.Event,
                        max_batch: int = 32, prefetch: int = 64,
                        idle: Callable[[], None] | None = None) -> None:
        delay = 0.1
        while not stop.is_set():
            try:
                channel = self._ensure()
                channel.basic_qos(prefetch_count=prefetch)
                pending: list[RabbitDelivery] = []

                def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
                    pending.append(self._delivery(ch, queue, method, properties, body))

                tag = channel.basic_consume(queue, on_message)
                connection = self._connection
                assert connection is not None
                while not stop.is_set():
                    # Wait for a delivery; once one is here, take what else is already in.
                    connection.process_data_events(time_limit=0 if pending else 0.25)
                    if not pending:
                        if idle is not None:
                            idle()
                        continue
                    delay = 0.1
                    while pending and not stop.is_set():
                        batch = pending[:max_batch]
                        del pending[:max_batch]
                        try:
                            handler(list(batch))
                        finally:
                            for delivery in batch:
                                if not delivery.settled:
                                    delivery.release()
                    if self._channel is not channel:
                        # Settling found the connection gone and dropped it (a node lost under
                        # the consumer): what is still pending died with it; RabbitMQ requeues
                        # it. Consume again on a new connection.
                        pending.clear()
                        break
                if self._channel is not channel:
                    continue
                for delivery in pending:
                    delivery.release()
                if channel.is_open:
                    channel.basic_cancel(tag)  # requeues what the prefetch window still held
            except BrokerUnavailable as exc:
                log.warning("consumer on %s lost the broker: %s", queue, exc)
                self._drop_connection()
                stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
            except _CONNECTION_ERRORS as exc:
                log.warning("consumer on %s lost its connection, reconnecting in %.1fs: %r",
                            queue, delay, exc)
                self._drop_connection()
                stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max_delay)

    # -- inspection ---------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        return self._with_channel("depth", lambda ch: ch.queue_declare(
            queue, passive=True).method.message_count)

    def consumers(self, queue: str) -> int:
        return self._with_channel("consumers", lambda ch: ch.queue_declare(
            queue, passive=True).method.consumer_count)

    def purge(self, queue: str) -> int:
        return self._with_channel("purge", lambda ch: ch.queue_purge(queue).method.message_count)
