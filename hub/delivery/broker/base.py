"""The broker port: `Broker`, `Delivery`, `Message` and the headers the hub writes.

Adapters subclass `Broker` and `Delivery` (`hub.delivery.broker.rabbitmq`,
`hub.delivery.broker.embedded`); `hub.delivery.broker.open_broker` picks one by URL scheme.

Semantics both adapters keep (tests/contract/test_broker_contract.py proves it):

- ``publish`` returns only once the broker has the message durably (publisher confirm / commit);
  an unroutable routing key is an error, never a silent drop.
- A consumer gets a `Delivery` and settles it exactly once: ``ack`` (done), ``retry`` (to the
  queue's delay rung, back on the work queue after the delay) or ``dead_letter`` (parked on the
  queue's dead-letter queue with headers saying why). A delivery left unsettled (the consumer
  died, the connection dropped) comes back, flagged ``redelivered``.
- A message delivered more than the queue's ``delivery_limit`` times without being settled (its
  consumer keeps dying on it) is parked on the DLQ with error code ``broker.delivery_limit``.
- Losing the connection is survived: the adapter reconnects with backoff and carries on.
- Every pika / sqlite3 error is converted to `hub.errors.BrokerUnavailable` at this boundary.
"""
from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from hub.delivery.broker.topology import Topology

Headers = dict[str, Any]

#: Header names the hub writes when it retries or parks a message.
H_ATTEMPT = "x-hub-attempt"
H_ERROR_CODE = "x-hub-error-code"
H_ERROR = "x-hub-error"
H_COMPONENT = "x-hub-component"
H_ORIGINAL_QUEUE = "x-hub-original-queue"
H_ORIGINAL_ROUTING_KEY = "x-hub-original-routing-key"
H_FIRST_FAILED_AT = "x-hub-first-failed-at"
H_DEAD_LETTERED_AT = "x-hub-dead-lettered-at"
H_REPLAYED_FROM = "x-hub-replayed-from"

#: Error code of a message parked by the broker itself after too many unsettled deliveries.
DELIVERY_LIMIT_CODE = "broker.delivery_limit"


@dataclass(frozen=True)
class Message:
    """What travels: opaque bytes, a stable id, string-keyed headers and a routing key."""

    body: bytes
    message_id: str
    routing_key: str
    headers: Headers = field(default_factory=dict)


class Delivery(abc.ABC):
    """One received message, to be settled exactly once."""

    def __init__(self, message: Message, queue: str, redelivered: bool) -> None:
        self.message = message
        self.queue = queue
        self.redelivered = redelivered
        self.settled = False

    def _settle(self) -> None:
        if self.settled:
            raise RuntimeError(f"delivery {self.message.message_id} already settled")
        self.settled = True

    @abc.abstractmethod
    def ack(self) -> None:
        """The work is durable; forget the message."""

    @abc.abstractmethod
    def retry(self, step: int, delay: float, *, headers: Headers, body: bytes | None = None) -> None:
        """Send the message to retry rung ``step``; it reappears on its queue after ``delay`` s.

        ``delay`` must not exceed the rung's delay (the RabbitMQ rung's queue TTL caps it).
        ``body`` replaces the payload (e.g. with the attempt counter advanced).
        """

    @abc.abstractmethod
    def dead_letter(self, *, headers: Headers) -> None:
        """Park the message on its queue's dead-letter queue with ``headers`` explaining why."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the message back unsettled, for immediate redelivery (graceful shutdown)."""


Handler = Callable[[Delivery], None]
#: Receives up to ``max_batch`` deliveries at once and settles each of them.
BatchHandler = Callable[[list[Delivery]], None]


class Broker(abc.ABC):
    """A connection to the message broker. Not thread-safe: one per thread."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    @abc.abstractmethod
    def declare(self) -> None:
        """Create the exchange, queues and bindings (idempotent)."""

    @abc.abstractmethod
    def publish(self, message: Message) -> None:
        """Publish durably; return once confirmed."""

    def publish_many(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.publish(message)

    @abc.abstractmethod
    def send_to_queue(self, queue: str, message: Message) -> None:
        """Put a message straight on a named queue (used to replay dead letters)."""

    @abc.abstractmethod
    def consume(self, queue: str, handler: Handler, *, stop: threading.Event,
                prefetch: int = 16, idle: Callable[[], None] | None = None) -> None:
        """Deliver messages from ``queue`` to ``handler`` until ``stop`` is set.

        Reconnects on connection loss. ``idle`` is called when no message came for a while.
        A delivery the handler leaves unsettled is released for redelivery.
        """

    @abc.abstractmethod
    def consume_batches(self, queue: str, handler: BatchHandler, *, stop: threading.Event,
                        max_batch: int = 32, prefetch: int = 64,
                        idle: Callable[[], None] | None = None) -> None:
        """Like `consume`, but hand ``handler`` every delivery that is ready, up to
        ``max_batch`` at a time, so that their work commits in one transaction.

        A batch never waits for more messages to arrive: it is what the prefetch window already
        holds when the handler is free, so a lone message is handled at once and a busy queue
        in batches. Deliveries the handler leaves unsettled are released for redelivery.
        """

    def ack_many(self, deliveries: Iterable[Delivery]) -> None:
        """Acknowledge several deliveries of this broker (one durable step where the adapter
        can: one transaction on the embedded broker)."""
        for delivery in deliveries:
            delivery.ack()

    @abc.abstractmethod
    def get(self, queue: str) -> Delivery | None:
        """Take one message if any is ready (non-blocking)."""

    @abc.abstractmethod
    def depth(self, queue: str) -> int:
        """Messages in the queue (ready plus unacknowledged where the broker can tell)."""

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Drop every message of a queue; returns how many. Tests and operators only."""

    @abc.abstractmethod
    def delete_topology(self) -> None:
        """Delete every queue and the exchange of this topology (test clean-up)."""

    @abc.abstractmethod
    def close(self) -> None:
        ...

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
