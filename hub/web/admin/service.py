"""What the console and the admin API show and do, as plain data (no Flask here).

`AdminConsole` is built by the app factory with the parts it reads and changes (store,
agencies, catalog, audit, queue inspector); each method returns dictionaries or dataclasses with
operational data only: codes, counts, timings, ids, case references, digests. Payloads never
leave the store through this module; free text passes through `hub.masking.redact`.

    console = AdminConsole(store, agencies, catalog, audit, inspector, on_change=relay.wake)
    console.overview()["queues"]
    console.replay([12, 13], actor="admin:alice")
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import func, or_, select

from connectors.registry import AgencyConfig
from hub.clock import aware
from hub.delivery import deadletters
from hub.evidence.audit.log import AuditLog
from hub.masking import redact, safe_details
from hub.ops import controls, records
from hub.ops.queues import QueueInspector
from hub.services import ServiceCatalog
from hub.store import Store
from hub.store.models import (AuditRow, CaseEvent, CaseRow, DeadLetterRow, ExchangeRow,
                              OperationalRecordRow, OutboxRow, utcnow)


def _iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


# -- what the console shows ------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetterFilter:
    status: str | None = "parked"
    queue: str | None = None
    error_code: str | None = None
    correlation_id: str | None = None
    limit: int = 200


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class Trace:
    query: str
    case: dict[str, Any] | None = None
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    hops: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.case is not None or bool(self.hops)

    @property
    def in_flight(self) -> bool:
        return any(e["status"] in ("queued", "acknowledged") for e in self.exchanges)

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "found": self.found, "case": self.case,
                "exchanges": self.exchanges, "events": self.events, "hops": self.hops,
                "dead_letters": self.dead_letters}


# -- the console ------------------------------------------------------------------------------

class AdminConsole:
    """What the console and the admin API read and change: operational data in ``store`` (with
    operator actions recorded in ``audit``), the ``agencies`` and ``catalog`` they are about,
    queue figures from ``inspector``; ``on_change`` is called after a replay (the relay
    publishes at once), ``maintenance`` is ``HUB_MAINTENANCE``."""

    def __init__(self, store: Store, agencies: Mapping[str, AgencyConfig],
                 catalog: ServiceCatalog, audit: AuditLog, inspector: QueueInspector, *,
                 on_change: Callable[[], None], maintenance: bool = False) -> None:
        self.store = store
        self.agencies = agencies
        self.catalog = catalog
        self.audit = audit
        self.inspector = inspector
        self.on_change = on_change
        self.maintenance = maintenance

    def agency_names(self) -> list[str]:
        return sorted(self.agencies)

    def service_names(self) -> list[str]:
        return self.catalog.names()

    # -- agencies -----------------------------------------------------------------------------

    def callback_answers(self, message_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The answers that came later, by callback, to requests an agency accepted (records
        ``pending``): message id -> ``{"outcome", "answered_at"}``, for those answered so far."""
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        with self.store.session() as session:
            rows = session.execute(select(ExchangeRow.id, ExchangeRow.outcome,
                                          ExchangeRow.answered_at)
                                   .where(ExchangeRow.id.in_(wanted),
                                          ExchangeRow.status == "answered")).all()
        return {row.id: {"outcome": row.outcome, "answered_at": row.answered_at}
                for row in rows}

    def agency_health(self, *, window_minutes: float = 15.0) -> list[dict[str, Any]]:
        """Per agency: success rate, latency percentiles, counts by outcome over the window,
        circuit state (worst across live workers), paused or not, exchanges waiting."""
        since = records.since_minutes(window_minutes)
        health = records.agency_health(self.store, sorted(self.agencies), since=since)
        circuits = controls.circuit_states(self.store)
        paused = controls.paused_components(self.store)
        with self.store.session() as session:
            waiting = dict(session.execute(
                select(ExchangeRow.agency, func.count())
                .where(ExchangeRow.status.in_(("queued", "acknowledged")))
                .group_by(ExchangeRow.agency)).all())
        out = []
        for name in sorted(self.agencies):
            h = health[name].as_dict()
            config = self.agencies[name]
            h.update(title=config.title, protocol=config.protocol,
                     circuit=circuits.get(name, "closed"),
                     paused=f"connector.{name}" in paused, waiting=waiting.get(name, 0),
                     window_minutes=window_minutes)
            out.append(h)
        return out

    # -- dead letters -------------------------------------------------------------------------

    def dead_letters(self, flt: DeadLetterFilter) -> list[dict[str, Any]]:
        rows = deadletters.list_dead_letters(
            self.store, status=flt.status, queue=flt.queue, error_code=flt.error_code,
            correlation_id=flt.correlation_id, limit=flt.limit)
        return [{**r.__dict__, "reason": redact(r.reason)} for r in rows]

    def dead_letter_summary(self) -> dict[str, Any]:
        with self.store.session() as session:
            rows = session.execute(select(DeadLetterRow.queue, DeadLetterRow.status,
                                          DeadLetterRow.error_code, func.count())
                                   .group_by(DeadLetterRow.queue, DeadLetterRow.status,
                                             DeadLetterRow.error_code)).all()
        by_status: dict[str, int] = {}
        parked_by_code: dict[str, int] = {}
        queues: set[str] = set()
        for queue, status, code, count in rows:
            by_status[status] = by_status.get(status, 0) + count
            queues.add(queue)
            if status == "parked":
                parked_by_code[code] = parked_by_code.get(code, 0) + count
        return {"by_status": by_status, "parked_by_code": parked_by_code,
                "queues": sorted(queues), "parked": by_status.get("parked", 0)}

    def replay(self, ids: Iterable[int], *, actor: str) -> dict[str, Any]:
        """Replay parked dead letters (each at most once) and publish at once if this process
        runs no relay; returns what was replayed and what was not (already replayed or
        discarded)."""
        wanted = [int(i) for i in ids]
        done = deadletters.replay(self.store, self.audit, wanted, actor=actor)
        self.on_change()
        return {"requested": len(wanted), "replayed": done,
                "skipped": sorted(set(wanted) - set(done))}

    def matching_ids(self, flt: DeadLetterFilter) -> list[int]:
        return [r.id for r in deadletters.list_dead_letters(
            self.store, status="parked", queue=flt.queue, error_code=flt.error_code,
            correlation_id=flt.correlation_id, limit=100_000)]

    # -- trace --------------------------------------------------------------------------------

    def trace(self, query: str) -> Trace:
        """Every hop of one case (by reference) or one message (by id), with audit records,
        operational records, publications and dead letters, in time order. No payloads."""
        query = query.strip()
        result = Trace(query=query)
        if not query:
            return result
        with self.store.session() as session:
            case = None
            message_ids: set[str] = set()
            if _UUID.match(query):
                message_ids.add(query.lower())
                exchange = session.get(ExchangeRow, query.lower())
                reference = None
                if exchange is not None:
                    case = session.get(CaseRow, exchange.case_id)
                else:
                    reference = session.scalar(select(AuditRow.correlation_id).where(
                        AuditRow.message_id == query.lower(), AuditRow.correlation_id.is_not(None))
                        .limit(1))
                if reference:
                    case = session.scalar(select(CaseRow).where(CaseRow.reference == reference))
            else:
                case = session.scalar(select(CaseRow).where(CaseRow.reference == query.upper()))
            reference = case.reference if case is not None else None
            if case is not None:
                result.case = {"reference": case.reference, "service": case.service,
                               "status": case.status, "post": case.post, "round": case.route_round,
                               "created_at": _iso(case.created_at),
                               "updated_at": _iso(case.updated_at)}
                exchanges = list(session.scalars(select(ExchangeRow).where(
                    ExchangeRow.case_id == case.id).order_by(ExchangeRow.created_at)))
                for e in exchanges:
                    message_ids.add(e.id)
                    result.exchanges.append({
                        "id": e.id, "step": e.step, "round": e.round, "agency": e.agency,
                        "operation": e.operation, "status": e.status, "outcome": e.outcome,
                        "attempts": e.attempts, "error_code": e.error_code,
                        "error": redact(e.error), "request_digest": e.request_digest,
                        "created_at": _iso(e.created_at), "sent_at": _iso(e.sent_at),
                        "answered_at": _iso(e.answered_at)})
                for ev in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                          .order_by(CaseEvent.id)):
                    result.events.append({"at": _iso(ev.at), "from": ev.from_status,
                                          "to": ev.to_status, "actor": ev.actor,
                                          "reason": ev.reason})
            audit_filter = [AuditRow.message_id.in_(message_ids)] if message_ids else []
            if reference:
                audit_filter.append(AuditRow.correlation_id == reference)
            hops: list[dict[str, Any]] = []
            if audit_filter:
                for a in session.scalars(select(AuditRow).where(or_(*audit_filter))
                                         .order_by(AuditRow.id)):
                    hops.append({"at": _iso(a.at), "source": "audit", "action": a.action,
                                 "actor": a.actor, "component": a.component,
                                 "message_id": a.message_id, "outcome": a.outcome,
                                 "digest": a.digest, "details": safe_details(a.details)})
            record_filter = ([OperationalRecordRow.message_id.in_(message_ids)] if message_ids
                             else [])
            if reference:
                record_filter.append(OperationalRecordRow.correlation_id == reference)
            if record_filter:
                for r in session.scalars(select(OperationalRecordRow).where(or_(*record_filter))
                                         .order_by(OperationalRecordRow.id)):
                    hops.append({"at": _iso(r.finished_at), "source": "record",
                                 "action": f"attempt {r.attempt}: {r.outcome}",
                                 "actor": r.node, "component": r.component,
                                 "message_id": r.message_id, "outcome": r.answer or r.fault_code,
                                 "details": {"received_at": _iso(r.received_at),
                                             "request_out_at": _iso(r.request_out_at),
                                             "response_in_at": _iso(r.response_in_at),
                                             "duration_ms": r.duration_ms,
                                             "request_bytes": r.request_bytes,
                                             "response_bytes": r.response_bytes,
                                             "fault": redact(r.fault_reason)}})
            # Replies are caused by the requests: their publication belongs to the trace too.
            if reference:
                message_ids |= {m for m in session.scalars(select(AuditRow.message_id).where(
                    AuditRow.correlation_id == reference, AuditRow.message_id.is_not(None)))}
            if message_ids:
                for o in session.scalars(select(OutboxRow).where(
                        OutboxRow.message_id.in_(message_ids)).order_by(OutboxRow.id)):
                    hops.append({"at": _iso(o.sent_at or o.created_at), "source": "outbox",
                                 "action": "published" if o.sent_at else "waiting to publish",
                                 "actor": "hub:relay", "component": "relay",
                                 "message_id": o.message_id, "outcome": o.routing_key,
                                 "details": {"queue": o.queue, "committed_at": _iso(o.created_at)}})
            dl_filter = [DeadLetterRow.message_id.in_(message_ids)] if message_ids else []
            if reference:
                dl_filter.append(DeadLetterRow.correlation_id == reference)
            if dl_filter:
                for d in session.scalars(select(DeadLetterRow).where(or_(*dl_filter))
                                         .order_by(DeadLetterRow.id)):
                    result.dead_letters.append({
                        "id": d.id, "message_id": d.message_id, "queue": d.queue,
                        "error_code": d.error_code, "reason": redact(d.reason),
                        "status": d.status, "attempts": d.attempts,
                        "dead_lettered_at": d.dead_lettered_at, "replay_count": d.replay_count})
        result.hops = sorted(hops, key=lambda h: h["at"] or "")
        return result

    # -- operational records and switches -----------------------------------------------------

    def find_records(self, query: records.RecordQuery) -> list[OperationalRecordRow]:
        return records.find(self.store, query)

    def pause(self, component: str, *, actor: str) -> None:
        controls.pause(self.store, component, actor=actor, audit=self.audit)

    def resume(self, component: str, *, actor: str) -> None:
        controls.resume(self.store, component, actor=actor, audit=self.audit)

    def set_maintenance(self, on: bool, *, actor: str) -> None:
        controls.set_maintenance(self.store, on, actor=actor, audit=self.audit)

    # -- overview -----------------------------------------------------------------------------

    def queue_figures(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.inspector.figures()]

    def chart_points(self, *, minutes: int = 60, bucket_seconds: int = 60
                     ) -> list[records.Point]:
        return records.throughput(self.store, since=utcnow() - timedelta(minutes=minutes),
                                  bucket_seconds=bucket_seconds)

    def overview(self, *, minutes: int = 60) -> dict[str, Any]:
        points = self.chart_points(minutes=minutes)
        recent = points[-15:]
        attempts = sum(p.succeeded + p.failed for p in recent)
        failed = sum(p.failed for p in recent)
        return {
            "queues": self.queue_figures(),
            "agencies": self.agency_health(),
            "dead_letters": self.dead_letter_summary(),
            "workers": [{"node": h.node, "seen_at": _iso(h.seen_at), **h.state}
                        for h in controls.heartbeats(self.store)],
            "error_rate_15m": (failed / attempts) if attempts else None,
            "attempts_15m": attempts,
            "throughput": [{"at": _iso(p.at), "succeeded": p.succeeded, "failed": p.failed}
                           for p in points],
            "maintenance": controls.in_maintenance(self.store) or self.maintenance,
        }


