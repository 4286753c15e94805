"""Retention: the personal data of closed cases is removed once its retention period is over.

Law 09-08 (art. 3) keeps personal data no longer than its purpose needs. Each service has a
retention period (``hub/data/retention.yaml``, overridden by ``HUB_RETENTION_<SERVICE>_DAYS``,
``HUB_RETENTION_DAYS`` for the others; `hub.config.Settings.retention_for`) counted from the day
the case reached a final status. `RetentionSweeper.run(now)` then, for each such case, in one
transaction per case:

- replaces the case's data by nothing (``{}``), drops its blind-index digests, marks it
  ``anonymized_at``; the reference, service, post, statuses and history stay (statistics, proof
  that the case existed and how it ended);
- forgets the agencies' answers (``exchanges.reply``), the appointment holder, the case's
  documents (rows, then files once committed), and the sent messages and dead letters of the case
  (their bodies carry its data);
- appends an audit record ``anonymized`` whose digest is that of the sealed data it destroyed.

The audit chain is untouched: records hold digests and codes, never the data (`hub.evidence.audit.log`), so
``hub audit verify`` still proves the whole trail afterwards. Messages of no case are purged by
age too: sent outbox rows, replayed or discarded dead letters older than
``HUB_MESSAGE_RETENTION_DAYS``.

Idempotent (an anonymized case is not a candidate any more) and safe to run from several
processes (the case row is locked; a case changed meanwhile is skipped until the next run). The
deadline scheduler runs it daily (`hub.cases.deadlines.DeadlineScheduler`); ``hub retention run
[--dry-run] [--now ...]`` runs it once.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.clock import aware
from hub.envelope import canonical_json
from hub.errors import HubError
from hub.services import ServiceCatalog
from hub.store import Store
from hub.store.attachments import AttachmentStore
from hub.store.models import (AttachmentRow, AuditRow, BookingRow, CaseEvent, CaseRow,
                              DeadLetterRow, ExchangeRow, OutboxRow, utcnow)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expired:
    """A closed case whose retention period is over."""

    case_id: str
    reference: str
    service: str
    status: str
    closed_at: datetime
    retention_days: int

    @property
    def due_at(self) -> datetime:
        return self.closed_at + timedelta(days=self.retention_days)

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "service": self.service, "status": self.status,
                "closed_at": self.closed_at.isoformat(), "due_at": self.due_at.isoformat(),
                "retention_days": self.retention_days}


@dataclass
class RetentionReport:
    dry_run: bool
    anonymized: list[Expired] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    messages_purged: int = 0
    documents_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run,
                "anonymized": [item.as_dict() for item in self.anonymized],
                "skipped": self.skipped, "messages_purged": self.messages_purged,
                "documents_removed": self.documents_removed}


class RetentionSweeper:
    """Anonymizes the expired cases of ``store``: ``catalog`` says which statuses are final,
    ``retention_for(service)`` how many days a closed case of the service is kept
    (`hub.config.Settings.retention_for`), ``message_retention_days`` how long sent messages and
    settled dead letters are; documents go from ``attachments``, each run leaves its trail in
    ``audit``."""

    def __init__(self, store: Store, catalog: ServiceCatalog, audit: AuditLog,
                 attachments: AttachmentStore, *, retention_for: Callable[[str], int],
                 message_retention_days: int) -> None:
        self.store = store
        self.catalog = catalog
        self.audit = audit
        self.attachments = attachments
        self.retention_for = retention_for
        self.message_retention_days = message_retention_days

    def expired(self, now: datetime | None = None) -> list[Expired]:
        """Closed, not yet anonymized cases whose retention is over at ``now``."""
        now = aware(now or utcnow())
        finals = {d.name: {s for s in d.states if d.is_final(s)} for d in self.catalog}
        conditions = [and_(CaseRow.service == name, CaseRow.status.in_(statuses))
                      for name, statuses in finals.items() if statuses]
        if not conditions:
            return []
        # When the case entered its current (final) status: the last move to it.
        closed = (select(CaseEvent.case_id, func.max(CaseEvent.at).label("closed_at"))
                  .join(CaseRow, and_(CaseRow.id == CaseEvent.case_id,
                                      CaseEvent.to_status == CaseRow.status))
                  .group_by(CaseEvent.case_id).subquery())
        query = (select(CaseRow.id, CaseRow.reference, CaseRow.service, CaseRow.status,
                        closed.c.closed_at)
                 .join(closed, closed.c.case_id == CaseRow.id)
                 .where(CaseRow.anonymized_at.is_(None), or_(*conditions))
                 .order_by(closed.c.closed_at))
        found = []
        with self.store.session() as session:
            for case_id, reference, service, status, closed_at in session.execute(query):
                item = Expired(case_id, reference, service, status, aware(closed_at),
                               self.retention_for(service))
                if item.due_at <= now:
                    found.append(item)
        return found

    def run(self, now: datetime | None = None, *, dry_run: bool = False) -> RetentionReport:
        now = aware(now or utcnow())
        report = RetentionReport(dry_run=dry_run)
        for item in self.expired(now):
            if dry_run:
                report.anonymized.append(item)
                continue
            try:
                with self.store.transaction() as session:
                    files = self._anonymize(session, item, now)
            except (HubError, IntegrityError) as exc:
                log.warning("retention skipped %s: %s", item.reference, exc,
                            extra={"correlation_id": item.reference})
                report.skipped.append(item.reference)
                continue
            report.anonymized.append(item)
            report.documents_removed += self.attachments.remove(files)
        if not dry_run:
            report.messages_purged = self._purge_messages(now)
        return report

    def _anonymize(self, session: Session, item: Expired, now: datetime) -> list[str]:
        case = session.scalars(select(CaseRow).where(CaseRow.id == item.case_id)
                               .with_for_update()).one()
        if case.anonymized_at is not None or case.status != item.status:
            raise _Changed(f"case {item.reference} changed since it was found")
        destroyed = hashlib.sha256(canonical_json(case.encrypted_data)).hexdigest()
        case.data = {}  # sealed empty at flush; the blind-index digests go with it
        case.anonymized_at = now
        for exchange in session.scalars(select(ExchangeRow).where(
                ExchangeRow.case_id == case.id)):
            if exchange.encrypted_reply is not None:
                exchange.reply = None
        for booking in session.scalars(select(BookingRow).where(BookingRow.case_id == case.id)):
            booking.holder = {}
        files = [self.attachments.delete(session, row) for row in session.scalars(
            select(AttachmentRow).where(AttachmentRow.case_id == case.id))]
        # The case's messages: requests are its exchanges, replies are named by its audit trail.
        message_ids = set(session.scalars(select(ExchangeRow.id).where(
            ExchangeRow.case_id == case.id)))
        message_ids |= set(session.scalars(select(AuditRow.message_id).where(
            AuditRow.correlation_id == case.reference, AuditRow.message_id.is_not(None))))
        messages = 0
        if message_ids:
            messages += _deleted(session, OutboxRow, OutboxRow.message_id.in_(message_ids),
                                OutboxRow.sent_at.is_not(None))
        messages += _deleted(session, DeadLetterRow,
                             DeadLetterRow.correlation_id == case.reference)
        self.audit.append(session, AuditRecord(
            action="anonymized", actor="hub:retention", component="retention",
            correlation_id=case.reference, digest=destroyed, outcome=case.status,
            details={"service": case.service, "retention_days": item.retention_days,
                     "closed_at": item.closed_at.isoformat(), "documents": len(files),
                     "messages": messages}))
        return files

    def _purge_messages(self, now: datetime) -> int:
        """Sent outbox rows and settled dead letters older than the message retention."""
        cutoff = now - timedelta(days=self.message_retention_days)
        with self.store.transaction() as session:
            purged = _deleted(session, OutboxRow, OutboxRow.sent_at.is_not(None),
                              OutboxRow.sent_at < cutoff)
            purged += _deleted(session, DeadLetterRow,
                               DeadLetterRow.status.in_(("replayed", "discarded")),
                               DeadLetterRow.recorded_at < cutoff)
            if purged:
                self.audit.append(session, AuditRecord(
                    action="purged", actor="hub:retention", component="retention",
                    details={"messages": purged, "before": cutoff.isoformat()}))
        return purged


class _Changed(HubError):
    code = "retention.changed"


def _deleted(session: Session, model: Any, *conditions: Any) -> int:
    # RETURNING, not rowcount (psycopg through the ORM reports -1; see hub.idempotency).
    return len(session.execute(delete(model).where(*conditions).returning(model.id),
                               execution_options={"synchronize_session": False}).all())
