"""Redrive: send again, from the store, a message that went to a retry rung and never came back.

Why: a retried message waits in a delay queue (``<queue>.retry.<ms>ms``) until its TTL expires,
then RabbitMQ moves it back to its work queue (quorum queues, at-least-once dead-lettering). The
cluster chaos run (`hub chaos --cluster`) found RabbitMQ 3.10 stranding such messages when the
work queue's leader node died at the moment of the move: the delay queue keeps them (neither
ready nor unacknowledged: "dead-lettered, awaiting confirmation") and never delivers them,
until the delay queue's own leader changes. Nothing is lost in the broker, but nothing arrives
either, and the case waits forever.

The store knows better than the broker what is still due. A message is **stranded** when

- its last trace in the audit trail is a ``retried`` record older than ``after`` seconds (no
  record of it at all since: no new attempt, no failure, no redrive), and at most ``horizon``
  seconds old;
- its consumer has not processed it (`hub.delivery.idempotency`), and it has no dead letter other than
  replayed ones;
- its message is still in the outbox (sent).

A stranded message is put in the outbox again (same envelope, same message id, attempt counter
as first sent) with header ``x-hub-redriven``, and audited as ``redriven``. If the stranded copy
is delivered after all, the consumer's idempotency makes it a no-op, and agencies deduplicate
on the message id: redriving never applies anything twice, at worst it sends a message twice.
``after`` must exceed the longest time a retried message can legitimately take to come back
(its rung's delay plus the work queue's backlog): the default is 15 minutes.

Messages retried while the database was unreachable leave no ``retried`` record and are not
seen here; `hub dlq` and the queue figures of the console remain the operator's tools for those.

    redriver = Redriver(store, audit, topology, after=900)
    redriver.sweep()          # one pass; returns how many messages were redriven
    redriver.run(stop)        # a pass every ``interval`` seconds (the relay process runs it)
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.errors import HubError
from hub.store import Store
from hub.store.models import AuditRow, DeadLetterRow, OutboxRow, ProcessedMessage, utcnow

log = logging.getLogger(__name__)

#: Header of a redriven message: how many times it was redriven.
H_REDRIVEN = "x-hub-redriven"
#: PostgreSQL advisory lock of a sweep: with several relays, one sweeps at a time.
_LOCK_KEY = 0x6875625F72647276  # "hub_rdrv"


def consumer_of(routing_key: str) -> str | None:
    """The consumer (`hub.delivery.workers`) that marks a message of ``routing_key`` processed."""
    if routing_key.startswith("agency."):
        return f"connector.{routing_key.split('.', 1)[1]}"
    if routing_key.startswith("case."):
        return "cases"
    return None


class Redriver:
    """Finds stranded messages in the store and puts them in the outbox again."""

    component = "redriver"

    def __init__(self, store: Store, audit: AuditLog, *, after: float = 900.0,
                 horizon: float = 86_400.0, interval: float = 60.0, batch: int = 500) -> None:
        self.store = store
        self.audit = audit
        self.after = after
        self.horizon = horizon
        self.interval = interval
        self.batch = batch
        #: Messages redriven by this instance (tests and the chaos run read it).
        self.redriven = 0

    def sweep(self) -> int:
        """One pass; returns how many messages were put in the outbox again."""
        now = utcnow()
        quiet_since = now - timedelta(seconds=self.after)
        with self.store.transaction() as session:
            if self.store.dialect == "postgresql" and not session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}):
                return 0  # another relay is sweeping
            candidates = self._retried_then_quiet(session, since=now - timedelta(
                seconds=self.horizon), until=quiet_since)
            if not candidates:
                return 0
            rows = self._latest_outbox_rows(session, candidates)
            done = self._settled(session, rows.values())
            count = 0
            for message_id, row in rows.items():
                if message_id in done:
                    continue
                self._redrive(session, row, now)
                count += 1
        if count:
            log.warning("redriven %d message(s) stranded after a retry for more than %.0f s",
                        count, self.after, extra={"component": self.component, "count": count})
        self.redriven += count
        return count

    def _retried_then_quiet(self, session: Session, *, since: Any, until: Any) -> list[str]:
        """Message ids whose latest audit record is a ``retried`` one from ``[since, until)``."""
        latest = (select(AuditRow.message_id, func.max(AuditRow.id).label("last"))
                  .where(AuditRow.message_id.in_(
                      select(AuditRow.message_id).where(AuditRow.action == "retried",
                                                        AuditRow.at >= since,
                                                        AuditRow.at < until)))
                  .group_by(AuditRow.message_id).subquery())
        query = (select(AuditRow.message_id)
                 .join(latest, AuditRow.id == latest.c.last)
                 .where(AuditRow.action == "retried", AuditRow.at < until)
                 .limit(self.batch))
        return [m for m in session.scalars(query) if m]

    @staticmethod
    def _latest_outbox_rows(session: Session, message_ids: list[str]) -> dict[str, Any]:
        """The last outbox row of each message (sent: an unsent one is on its way anyway)."""
        latest = (select(OutboxRow.message_id, func.max(OutboxRow.id).label("last"))
                  .where(OutboxRow.message_id.in_(message_ids))
                  .group_by(OutboxRow.message_id).subquery())
        rows = session.execute(select(*OutboxRow.__table__.c)
                               .join(latest, OutboxRow.id == latest.c.last)).all()
        return {row.message_id: row for row in rows if row.sent_at is not None}

    @staticmethod
    def _settled(session: Session, rows: Iterable[Any]) -> set[str]:
        """Which of these messages their consumer processed, were parked for good, or have no
        consumer of ours to mark them (left alone)."""
        rows = list(rows)
        ids = [row.message_id for row in rows]
        by_consumer: dict[str, list[str]] = {}
        settled: set[str] = set()
        for row in rows:
            consumer = consumer_of(row.routing_key)
            if consumer is None:
                settled.add(row.message_id)
            else:
                by_consumer.setdefault(consumer, []).append(row.message_id)
        settled |= set(session.scalars(select(DeadLetterRow.message_id).where(
            DeadLetterRow.message_id.in_(ids), DeadLetterRow.status != "replayed")))
        for consumer, message_ids in by_consumer.items():
            settled |= set(session.scalars(select(ProcessedMessage.message_id).where(
                ProcessedMessage.consumer == consumer,
                ProcessedMessage.message_id.in_(message_ids))))
        return settled

    def _redrive(self, session: Session, row: Any, now: Any) -> None:
        headers = dict(row.headers or {})
        times = int(headers.get(H_REDRIVEN) or 0) + 1
        session.add(OutboxRow(message_id=row.message_id, routing_key=row.routing_key,
                              queue=row.queue, headers={**headers, H_REDRIVEN: times},
                              body=row.body, body_key=row.body_key))
        self.audit.append(session, AuditRecord(
            action="redriven", actor=f"hub:{self.component}", component=self.component,
            message_id=row.message_id, outcome="stranded",
            details={"routing_key": row.routing_key, "quiet_for_s": self.after,
                     "times": times, "last_sent_at": row.sent_at.isoformat()}))

    def run(self, stop: threading.Event) -> None:
        """A sweep every ``interval`` seconds until ``stop``; a failed sweep is tried again."""
        while not stop.wait(self.interval):
            try:
                self.sweep()
            except HubError as exc:
                log.warning("redrive sweep failed, will retry: %s", exc.message,
                            extra={"error_code": exc.code, "component": self.component})
