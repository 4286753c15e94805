"""Queue figures for the console and `/metrics`: depth, rates in and out, consumers, oldest age.

Two sources, the better one first:

- RabbitMQ's management API (``HUB_RABBITMQ_MANAGEMENT_URL``, or derived from the broker URL on
  port 15672) when it answers: depth, ready/unacknowledged, consumers, publish and deliver rates;
- otherwise the broker adapter (depth; consumers on RabbitMQ; age of the oldest message on the
  embedded queue) completed from the store: rate in = messages the relay published to the queue
  in the last minute, rate out = attempts settled by its consumer in the last minute, and for an
  agency queue the age of its oldest unanswered exchange.

    inspector = hub.queue_inspector()    # QueueInspector(store, topology, open_broker, ...)
    for q in inspector.figures():        # cached for a few seconds
        print(q.name, q.messages, q.rate_in, q.source)
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import func, select

from hub.delivery.broker import Broker
from hub.delivery.broker.rabbitmq import split_urls
from hub.delivery.broker.topology import QueueSpec, Topology
from hub.errors import HubError
from hub.store import Store
from hub.store.models import (AuditRow, ExchangeRow, OperationalRecordRow, OutboxRow, utcnow)

log = logging.getLogger(__name__)

#: Window of the store-derived rates, seconds.
RATE_WINDOW = 60.0


@dataclass
class QueueFigures:
    name: str
    #: work | retry | dlq
    kind: str
    #: The work queue it belongs to, and its agency (None for the cases queue).
    owner: str
    agency: str | None
    messages: int | None = None
    ready: int | None = None
    unacked: int | None = None
    consumers: int | None = None
    rate_in: float | None = None
    rate_out: float | None = None
    oldest_age_s: float | None = None
    #: management | adapter | unavailable
    source: str = "adapter"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kind(spec: QueueSpec, name: str) -> str:
    if name == spec.name:
        return "work"
    return "dlq" if name == spec.dead_letter_queue else "retry"


class ManagementApi:
    """A minimal client of RabbitMQ's HTTP management API (only ``GET /api/queues/<vhost>``)."""

    def __init__(self, base_url: str, user: str, password: str, vhost: str, *,
                 timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.vhost = vhost
        self.timeout = timeout
        self._auth = "Basic " + b64encode(f"{user}:{password}".encode()).decode()

    @classmethod
    def for_settings(cls, broker_url: str, configured: str | None) -> "ManagementApi | None":
        if configured == "off" or not broker_url.startswith(("amqp://", "amqps://")):
            return None
        # A cluster's URL lists every node: credentials and vhost are those of the first.
        amqp = urllib.parse.urlsplit(split_urls(broker_url)[0])
        user = urllib.parse.unquote(amqp.username or "guest")
        password = urllib.parse.unquote(amqp.password or "guest")
        vhost = urllib.parse.unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
        if configured:
            url = urllib.parse.urlsplit(configured)
            if url.username:
                user = urllib.parse.unquote(url.username)
                password = urllib.parse.unquote(url.password or "")
            base = f"{url.scheme}://{url.hostname}:{url.port or 15672}{url.path}"
        else:
            base = f"http://{amqp.hostname or '127.0.0.1'}:15672"
        return cls(base, user, password, vhost)

    def queues(self) -> dict[str, dict[str, Any]]:
        """Every queue of the vhost by name; raises `OSError`/`ValueError` when unavailable."""
        url = (f"{self.base_url}/api/queues/{urllib.parse.quote(self.vhost, safe='')}"
               "?columns=name,messages,messages_ready,messages_unacknowledged,consumers,"
               "message_stats,head_message_timestamp")
        request = urllib.request.Request(url, headers={"Authorization": self._auth})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            return {q["name"]: q for q in json.loads(response.read())}


class QueueInspector:
    """Figures of every queue of ``topology``, cached for ``ttl`` seconds. Thread-safe.

    Read from ``management`` (RabbitMQ's management API; None: not available, e.g. the embedded
    broker), else from a broker opened with ``open_broker``, completed from ``store``; after a
    failure the management API is left alone for ``management_retry`` seconds."""

    def __init__(self, store: Store, topology: Topology, open_broker: Callable[[], Broker], *,
                 management: ManagementApi | None, ttl: float,
                 management_retry: float = 30.0) -> None:
        self.store = store
        self.topology = topology
        self.open_broker = open_broker
        self.ttl = ttl
        self.management = management
        self.management_retry = management_retry
        self._management_down_until = 0.0
        self._lock = threading.Lock()
        self._broker: Broker | None = None
        self._cached: tuple[float, list[QueueFigures]] | None = None

    def figures(self) -> list[QueueFigures]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            figures = self._collect()
            self._cached = (time.monotonic(), figures)
            return figures

    def close(self) -> None:
        with self._lock:
            if self._broker is not None:
                self._broker.close()
                self._broker = None

    # -- collection ----------------------------------------------------------------------------

    def _skeleton(self) -> list[QueueFigures]:
        topology = self.topology
        out = []
        for spec in topology.queues:
            agency = spec.name.removeprefix(f"{topology.namespace}.agency.") \
                if spec.name.startswith(f"{topology.namespace}.agency.") else None
            names = [spec.name, *dict.fromkeys(spec.retry_queue(i)
                                               for i in range(len(spec.retry_delays))),
                     spec.dead_letter_queue]
            out.extend(QueueFigures(name=n, kind=_kind(spec, n), owner=spec.name, agency=agency)
                       for n in names)
        return out

    def _collect(self) -> list[QueueFigures]:
        figures = self._skeleton()
        if not self._from_management(figures):
            self._from_adapter(figures)
        self._complete_from_store(figures)
        return figures

    def _from_management(self, figures: list[QueueFigures]) -> bool:
        if self.management is None or time.monotonic() < self._management_down_until:
            return False
        try:
            queues = self.management.queues()
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.info("RabbitMQ management API unavailable, using broker figures: %r", exc)
            self._management_down_until = time.monotonic() + self.management_retry
            return False
        now = time.time()
        for figure in figures:
            q = queues.get(figure.name)
            if q is None:
                figure.source = "unavailable"
                continue
            stats = q.get("message_stats") or {}
            figure.messages = q.get("messages")
            figure.ready = q.get("messages_ready")
            figure.unacked = q.get("messages_unacknowledged")
            figure.consumers = q.get("consumers")
            figure.rate_in = (stats.get("publish_details") or {}).get("rate")
            figure.rate_out = (stats.get("ack_details") or stats.get("deliver_get_details")
                               or {}).get("rate")
            head = q.get("head_message_timestamp")
            if isinstance(head, (int, float)) and head > 0:
                figure.oldest_age_s = max(0.0, now - head)
            figure.source = "management"
        return True

    def _from_adapter(self, figures: list[QueueFigures]) -> None:
        broker_down = False
        for figure in figures:
            if broker_down:
                figure.source = "unavailable"
                continue
            try:
                if self._broker is None:
                    self._broker = self.open_broker()
                figure.messages = self._broker.depth(figure.name)
                if hasattr(self._broker, "consumers"):
                    figure.consumers = self._broker.consumers(figure.name)
                if hasattr(self._broker, "oldest_age"):
                    figure.oldest_age_s = self._broker.oldest_age(figure.name)
                figure.source = "adapter"
            except HubError as exc:
                figure.source = "unavailable"
                log.info("queue %s unavailable: %s", figure.name, exc.message)
                if exc.transient:
                    broker_down = True  # one outage: do not wait for it once per queue
                    if self._broker is not None:
                        self._broker.close()
                        self._broker = None

    def _complete_from_store(self, figures: list[QueueFigures]) -> None:
        """Rates and ages the broker did not give, from what the store knows."""
        work = [f for f in figures if f.kind == "work"]
        if all(f.rate_in is not None and f.rate_out is not None for f in work):
            return
        since = utcnow() - timedelta(seconds=RATE_WINDOW)
        try:
            with self.store.session() as session:
                published = dict(session.execute(
                    select(OutboxRow.routing_key, func.count())
                    .where(OutboxRow.sent_at >= since).group_by(OutboxRow.routing_key)).all())
                settled = dict(session.execute(
                    select(OperationalRecordRow.component, func.count())
                    .where(OperationalRecordRow.finished_at >= since)
                    .group_by(OperationalRecordRow.component)).all())
                applied = session.scalar(select(func.count()).select_from(AuditRow).where(
                    AuditRow.action == "applied", AuditRow.at >= since)) or 0
                oldest = dict(session.execute(
                    select(ExchangeRow.agency, func.min(ExchangeRow.created_at))
                    .where(ExchangeRow.status == "queued").group_by(ExchangeRow.agency)).all())
        except HubError:
            return
        except Exception as exc:  # noqa: BLE001 - a read on a lost connection: no rates this time
            log.info("store unavailable for queue rates: %r", exc)
            return
        now = utcnow()
        for figure in work:
            if figure.agency is not None:
                inbound = published.get(f"agency.{figure.agency}", 0)
                outbound = settled.get(f"connector.{figure.agency}", 0)
                first = oldest.get(figure.agency)
                if figure.oldest_age_s is None and first is not None:
                    if first.tzinfo is None:
                        first = first.replace(tzinfo=now.tzinfo)
                    figure.oldest_age_s = max(0.0, (now - first).total_seconds())
            else:
                inbound = sum(n for key, n in published.items() if key.startswith("case."))
                outbound = applied
            if figure.rate_in is None:
                figure.rate_in = round(inbound / RATE_WINDOW, 3)
            if figure.rate_out is None:
                figure.rate_out = round(outbound / RATE_WINDOW, 3)
