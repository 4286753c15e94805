"""The broker port: one small interface, two adapters, one contract test suite.

Pick the adapter by URL scheme, like kombu's transport aliases::

    amqp://guest:guest@127.0.0.1:5672/%2F   RabbitMQ through pika        (hub.delivery.broker.rabbitmq)
    sqlite:///var/broker.db                  embedded durable SQLite queue (hub.delivery.broker.embedded)

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

from typing import Any

from hub.delivery.broker.base import (DELIVERY_LIMIT_CODE, H_ATTEMPT, H_COMPONENT,
                                      H_DEAD_LETTERED_AT, H_ERROR, H_ERROR_CODE,
                                      H_FIRST_FAILED_AT, H_ORIGINAL_QUEUE,
                                      H_ORIGINAL_ROUTING_KEY, H_REPLAYED_FROM, BatchHandler, Broker,
                                      Delivery, Handler, Headers, Message)
from hub.delivery.broker.embedded import EmbeddedBroker
from hub.delivery.broker.rabbitmq import RabbitBroker
from hub.delivery.broker.topology import QueueSpec, Topology
from hub.errors import ConfigurationError

#: Adapter per URL scheme (kombu's transport aliases).
ADAPTERS: dict[str, type[Broker]] = {"amqp": RabbitBroker, "amqps": RabbitBroker,
                                     "sqlite": EmbeddedBroker}


def open_broker(url: str, topology: Topology, **options: Any) -> Broker:
    """Open the adapter named by the URL scheme."""
    scheme = url.split(":", 1)[0].lower()
    adapter = ADAPTERS.get(scheme)
    if adapter is not None:
        return adapter(url, topology, **options)  # type: ignore[call-arg]
    raise ConfigurationError(f"unsupported broker URL scheme {scheme!r}: use amqp:// or sqlite:///")


__all__ = [
    "BatchHandler", "Broker", "Delivery", "Handler", "Headers", "Message", "QueueSpec",
    "Topology", "open_broker",
    "H_ATTEMPT", "H_ERROR_CODE", "H_ERROR", "H_COMPONENT", "H_ORIGINAL_QUEUE",
    "H_ORIGINAL_ROUTING_KEY", "H_FIRST_FAILED_AT", "H_DEAD_LETTERED_AT", "H_REPLAYED_FROM",
    "DELIVERY_LIMIT_CODE",
]
