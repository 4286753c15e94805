"""Prometheus metrics of the whole deployment, served at ``/metrics`` by every web process.

The figures come from shared sources, not from one process's memory, so any web process gives
the same answer however many workers run and whichever of them was restarted:

=============================================  =========  ========================================
metric                                         type       labels / source
=============================================  =========  ========================================
``hub_exchange_attempts_total``                counter    agency, service, outcome (operational
                                                          records: succeeded, pending, retried,
                                                          dead_lettered)
``hub_exchange_duration_seconds``              histogram  agency, service, outcome (agency round
                                                          trip of each attempt that got an answer)
``hub_exchanges``                              gauge      agency, status (exchanges table)
``hub_queue_messages``                         gauge      queue, kind (work, retry, dlq; broker)
``hub_queue_consumers``                        gauge      queue (broker, where it tells)
``hub_dead_letters``                           gauge      queue, status (parked, replayed,
                                                          discarded; store)
``hub_outbox_unsent``                          gauge      messages committed, not yet published
``hub_circuit_state``                          gauge      agency, state (1 for the current one;
                                                          worst state across live workers)
``hub_component_paused``                       gauge      component (operator switch)
``hub_workers_alive``                          gauge      worker processes seen in the last minute
``hub_metrics_source_up``                      gauge      source (store, broker): 0 when the
                                                          scrape could not read it
=============================================  =========  ========================================

    registry = hub_registry(HubCollector(hub.store, hub.agencies, hub.queue_inspector(ttl=0),
                                         ttl=hub.settings.metrics_cache_seconds))
    text = prometheus_client.generate_latest(registry)

A scrape is computed at most once per ``HUB_METRICS_CACHE_SECONDS`` (default 5) per process.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from sqlalchemy import func, select

from hub.ops import controls, records
from hub.ops.queues import QueueInspector
from hub.store import Store
from hub.store.models import DeadLetterRow, ExchangeRow, OutboxRow

log = logging.getLogger(__name__)

CIRCUIT_STATES = ("closed", "half_open", "open")


class HubCollector:
    """A prometheus-client custom collector reading the store and the broker at scrape time.

    ``store`` gives the exchanges, dead letters, outbox, circuits, pauses and heartbeats;
    ``inspector`` the queues (best built uncached, ``ttl=0``: the whole scrape is cached here
    for ``ttl`` seconds); ``agencies`` names the agencies every scrape reports, even idle."""

    def __init__(self, store: Store, agencies: Iterable[str], inspector: QueueInspector, *,
                 ttl: float) -> None:
        self.store = store
        self.agencies = sorted(agencies)
        self.inspector = inspector
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.ttl:
                self._cached = (time.monotonic(), list(self._compute()))
            metrics = self._cached[1]
        yield from metrics

    def _compute(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hub_metrics_source_up", "Whether the scrape could read a source",
                               labels=["source"])
        try:
            yield from self._store_metrics()
            up.add_metric(["store"], 1)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the store down
            log.warning("metrics: store unavailable: %r", exc)
            up.add_metric(["store"], 0)
        queues = GaugeMetricFamily("hub_queue_messages", "Messages in a queue",
                                   labels=["queue", "kind"])
        consumers = GaugeMetricFamily("hub_queue_consumers", "Consumers of a queue",
                                      labels=["queue"])
        broker_ok = 1
        for figure in self.inspector.figures():
            if figure.messages is None:
                broker_ok = 0
                continue
            queues.add_metric([figure.name, figure.kind], figure.messages)
            if figure.consumers is not None:
                consumers.add_metric([figure.name], figure.consumers)
        up.add_metric(["broker"], broker_ok)
        yield queues
        yield consumers
        yield up

    def _store_metrics(self) -> Iterator[Metric]:
        store = self.store
        attempts = CounterMetricFamily("hub_exchange_attempts", "Attempts of agency exchanges",
                                       labels=["agency", "service", "outcome"])
        latency = HistogramMetricFamily("hub_exchange_duration_seconds",
                                        "Agency round trip of each answered attempt",
                                        labels=["agency", "service", "outcome"])
        for s in records.series(store):
            labels = [s.agency, s.service, s.outcome]
            attempts.add_metric(labels, s.count)
            if s.observed:
                buckets = [(str(bound), count)
                           for bound, count in zip(records.LATENCY_BUCKETS, s.buckets)]
                buckets.append(("+Inf", s.observed))
                latency.add_metric(labels, buckets, s.duration_sum_s)
        exchanges = GaugeMetricFamily("hub_exchanges", "Exchanges by agency and status",
                                      labels=["agency", "status"])
        dead = GaugeMetricFamily("hub_dead_letters", "Dead letters recorded in the store",
                                 labels=["queue", "status"])
        with store.session() as session:
            for agency, status, count in session.execute(
                    select(ExchangeRow.agency, ExchangeRow.status, func.count())
                    .group_by(ExchangeRow.agency, ExchangeRow.status)):
                exchanges.add_metric([agency, status], count)
            for queue, status, count in session.execute(
                    select(DeadLetterRow.queue, DeadLetterRow.status, func.count())
                    .group_by(DeadLetterRow.queue, DeadLetterRow.status)):
                dead.add_metric([queue, status], count)
            unsent = session.scalar(select(func.count()).select_from(OutboxRow)
                                    .where(OutboxRow.sent_at.is_(None))) or 0
        outbox = GaugeMetricFamily("hub_outbox_unsent", "Outbox messages not yet published",
                                   value=unsent)
        circuit = GaugeMetricFamily("hub_circuit_state", "Circuit breaker state per agency",
                                    labels=["agency", "state"])
        states = controls.circuit_states(store)
        for agency in self.agencies:
            current = states.get(agency, "closed")
            for state in CIRCUIT_STATES:
                circuit.add_metric([agency, state], 1 if state == current else 0)
        paused = GaugeMetricFamily("hub_component_paused", "Components paused by an operator",
                                   labels=["component"])
        stopped = controls.paused_components(store)
        for agency in self.agencies:
            component = f"connector.{agency}"
            paused.add_metric([component], 1 if component in stopped else 0)
        workers = GaugeMetricFamily("hub_workers_alive", "Worker processes seen in the last minute",
                                    value=len({row.node for row in controls.heartbeats(store)}))
        yield from (attempts, latency, exchanges, dead, outbox, circuit, paused, workers)


def hub_registry(collector: HubCollector) -> CollectorRegistry:
    """A registry holding only the hub's collector (the process's own metrics stay out: they
    would differ between the web processes a scraper reaches)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return registry
