"""Operational records: one row per attempt of a hop, queryable by window, agency, service, outcome.

Written by `StoreObserver.record` inside the transaction that settles the attempt; read by the
console, the admin API and `/metrics`. Timestamps at each hop (envelope written, taken from the
queue, request out to the agency, response in, settled), sizes on the wire, fault code and reason,
attempt number, message and correlation ids: what X-Road's operational monitoring keeps.

    rows = find(store, RecordQuery(agency="narsa", outcome="retried", since=an_hour_ago))
    health = agency_health(store, since=an_hour_ago)      # success rate, p50/p95/p99, counts
    series = throughput(store, since=an_hour_ago, bucket_seconds=60)
"""
from __future__ import annotations

import math
import socket
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session

from hub.clock import aware
from hub.delivery.hops import Hop
from hub.masking import redact
from hub.store.bulk import append_row
from hub.store import Store
from hub.store.models import OperationalRecordRow, utcnow

#: Outcomes of an attempt.
OUTCOMES = ("succeeded", "pending", "retried", "dead_lettered")
#: Latency buckets of `/metrics` (seconds), fit for agencies answering in 10 ms to 30 s.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def node_name() -> str:
    """This process, as records and heartbeats name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000.0, 3)


def add(session: Session, hop: Hop, *, node: str | None = None) -> None:
    """Append the record of ``hop`` in the caller's transaction (written at its commit, with
    the other records of the transaction: `hub.store.bulk`)."""
    append_row(session, OperationalRecordRow, dict(
        message_id=hop.message_id[:64], correlation_id=hop.correlation_id,
        component=hop.component[:64], agency=hop.agency, service=hop.service,
        operation=hop.operation, attempt=hop.attempt, outcome=hop.outcome, answer=hop.answer,
        fault_code=hop.fault_code, fault_reason=redact(hop.fault_reason) or None,
        created_at=hop.created_at, received_at=hop.received_at,
        request_out_at=hop.request_out_at, response_in_at=hop.response_in_at,
        finished_at=utcnow(), duration_ms=_ms(hop.request_out_at, hop.response_in_at),
        request_bytes=hop.request_bytes, response_bytes=hop.response_bytes,
        node=node or node_name()))


@dataclass(frozen=True)
class RecordQuery:
    """Filters of `find`; ``None`` means any."""

    since: datetime | None = None
    until: datetime | None = None
    agency: str | None = None
    service: str | None = None
    outcome: str | None = None
    component: str | None = None
    correlation_id: str | None = None
    message_id: str | None = None
    limit: int = 200
    offset: int = 0


def find(store: Store, query: RecordQuery) -> list[OperationalRecordRow]:
    """Records matching ``query``, newest first."""
    statement = select(OperationalRecordRow)
    for column, value in ((OperationalRecordRow.agency, query.agency),
                          (OperationalRecordRow.service, query.service),
                          (OperationalRecordRow.outcome, query.outcome),
                          (OperationalRecordRow.component, query.component),
                          (OperationalRecordRow.correlation_id, query.correlation_id),
                          (OperationalRecordRow.message_id, query.message_id)):
        if value:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(OperationalRecordRow.finished_at >= query.since)
    if query.until is not None:
        statement = statement.where(OperationalRecordRow.finished_at < query.until)
    statement = (statement.order_by(OperationalRecordRow.id.desc())
                 .limit(max(1, min(query.limit, 10_000))).offset(max(0, query.offset)))
    with store.session() as session:
        rows = list(session.scalars(statement))
        session.expunge_all()
        return rows


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass
class AgencyHealth:
    agency: str
    attempts: int = 0
    succeeded: int = 0
    pending: int = 0
    retried: int = 0
    dead_lettered: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    last_fault: str | None = None
    last_seen: datetime | None = None
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        """Share of attempts the agency answered (succeeded or accepted), None without traffic."""
        if not self.attempts:
            return None
        return (self.succeeded + self.pending) / self.attempts

    def as_dict(self) -> dict[str, Any]:
        return {"agency": self.agency, "attempts": self.attempts, "succeeded": self.succeeded,
                "pending": self.pending, "retried": self.retried,
                "dead_lettered": self.dead_lettered, "success_rate": self.success_rate,
                "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "p99_ms": self.p99_ms,
                "faults": dict(self.faults), "last_fault": self.last_fault,
                "last_seen": self.last_seen.isoformat() if self.last_seen else None}


def agency_health(store: Store, agencies: list[str], *, since: datetime,
                  sample: int = 5000) -> dict[str, AgencyHealth]:
    """Per agency over the window: attempts by outcome, fault codes and latency percentiles
    (of answered attempts, from the latest ``sample`` of them)."""
    found = {name: AgencyHealth(agency=name) for name in agencies}
    connector = OperationalRecordRow.component.like("connector.%")
    with store.session() as session:
        for agency, outcome, fault, count, last in session.execute(
                select(OperationalRecordRow.agency, OperationalRecordRow.outcome,
                       OperationalRecordRow.fault_code, func.count(),
                       func.max(OperationalRecordRow.finished_at))
                .where(connector, OperationalRecordRow.finished_at >= since)
                .group_by(OperationalRecordRow.agency, OperationalRecordRow.outcome,
                          OperationalRecordRow.fault_code)):
            health = found.setdefault(agency, AgencyHealth(agency=agency))
            health.attempts += count
            if outcome in OUTCOMES:
                setattr(health, outcome, getattr(health, outcome) + count)
            if fault:
                health.faults[fault] = health.faults.get(fault, 0) + count
            last = aware(last)
            if health.last_seen is None or (last is not None and last > health.last_seen):
                health.last_seen = last
        for name, health in found.items():
            durations = list(session.scalars(
                select(OperationalRecordRow.duration_ms)
                .where(connector, OperationalRecordRow.agency == name,
                       OperationalRecordRow.finished_at >= since,
                       OperationalRecordRow.outcome.in_(("succeeded", "pending")),
                       OperationalRecordRow.duration_ms.is_not(None))
                .order_by(OperationalRecordRow.id.desc()).limit(sample)))
            health.p50_ms = percentile(durations, 0.50)
            health.p95_ms = percentile(durations, 0.95)
            health.p99_ms = percentile(durations, 0.99)
            health.last_fault = session.scalar(
                select(OperationalRecordRow.fault_code)
                .where(connector, OperationalRecordRow.agency == name,
                       OperationalRecordRow.fault_code.is_not(None))
                .order_by(OperationalRecordRow.id.desc()).limit(1))
    return found


def _epoch_bucket(dialect: str, bucket_seconds: int) -> Any:
    column = OperationalRecordRow.finished_at
    if dialect == "postgresql":
        return func.floor(func.extract("epoch", column) / bucket_seconds)
    # SQLite keeps datetimes as ISO text; strftime('%s') gives whole epoch seconds.
    return cast(func.strftime("%s", column), Integer).op("/")(bucket_seconds)


@dataclass(frozen=True)
class Point:
    at: datetime
    succeeded: int
    failed: int


def throughput(store: Store, *, since: datetime, until: datetime | None = None,
               bucket_seconds: int = 60) -> list[Point]:
    """Agency attempts per time bucket: answered ones and failed ones (retried or parked),
    every bucket of the window present (zeros included) so a chart shows gaps as gaps."""
    until = until or utcnow()
    bucket = _epoch_bucket(store.dialect, bucket_seconds).label("bucket")
    failed = case((OperationalRecordRow.outcome.in_(("retried", "dead_lettered")), 1), else_=0)
    with store.session() as session:
        rows = session.execute(
            select(bucket, func.count(), func.sum(failed))
            .where(OperationalRecordRow.component.like("connector.%"),
                   OperationalRecordRow.finished_at >= since,
                   OperationalRecordRow.finished_at < until)
            .group_by(bucket)).all()
    counts = {int(b): (int(total), int(bad or 0)) for b, total, bad in rows}
    first = int(since.timestamp()) // bucket_seconds
    last = int(until.timestamp()) // bucket_seconds
    points = []
    for b in range(first, last + 1):
        total, bad = counts.get(b, (0, 0))
        points.append(Point(at=datetime.fromtimestamp(b * bucket_seconds, timezone.utc),
                            succeeded=total - bad, failed=bad))
    return points


@dataclass(frozen=True)
class Series:
    """Cumulative figures of one (agency, service, outcome) for `/metrics`."""

    agency: str
    service: str
    outcome: str
    count: int
    #: Attempts that reached the agency and came back (those with a round-trip duration).
    observed: int
    duration_sum_s: float
    #: Cumulative count of attempts at or under each of `LATENCY_BUCKETS`.
    buckets: tuple[int, ...]


def series(store: Store) -> list[Series]:
    """Every attempt ever recorded, by agency, service and outcome, with latency buckets."""
    duration = OperationalRecordRow.duration_ms
    columns = [func.sum(case((duration <= bound * 1000.0, 1), else_=0)) for bound in LATENCY_BUCKETS]
    with store.session() as session:
        rows = session.execute(
            select(OperationalRecordRow.agency, OperationalRecordRow.service,
                   OperationalRecordRow.outcome, func.count(), func.count(duration),
                   func.coalesce(func.sum(duration), 0.0), *columns)
            .where(OperationalRecordRow.component.like("connector.%"))
            .group_by(OperationalRecordRow.agency, OperationalRecordRow.service,
                      OperationalRecordRow.outcome)).all()
    return [Series(agency=r[0] or "unknown", service=r[1] or "unknown", outcome=r[2],
                   count=int(r[3]), observed=int(r[4]), duration_sum_s=float(r[5] or 0.0) / 1000.0,
                   buckets=tuple(int(v or 0) for v in r[6:])) for r in rows]


def since_minutes(minutes: float) -> datetime:
    return utcnow() - timedelta(minutes=minutes)
