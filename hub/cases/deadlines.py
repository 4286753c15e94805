"""Deadlines: the timers of the service definitions, applied by a scheduled sweep.

A definition's ``deadlines`` say what happens to a case left in a status (see
`hub.services.Deadline`): a consular registration lapses three years after it was granted,
with reminders before; a refused judicial document counts as served on the tenth day; a request
for more information nobody answers is closed. Nothing here knows a service by name.

Long waits are timers, not sleeping consumers: `DeadlineSweeper.sweep(now)` finds every case
whose deadline passed (or whose reminder is due) and applies it, one transaction per case, so
one bad case cannot block the others. It is idempotent: a moved case is no longer in the status,
a reminder is unique per case and key; running it twice, or from two processes, changes
nothing more. The hub's scheduler (`hub.cases.scheduler`) runs it every few minutes::

    hub.deadline_sweeper().sweep(now=datetime(2029, 3, 2, tzinfo=timezone.utc))  # once, e.g. cron
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.cases.book import CaseBook
from hub.clock import aware
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.errors import HubError
from hub.mapping import set_path
from hub.services import Deadline, ServiceCatalog, ServiceDefinition
from hub.store import Store
from hub.store.models import CaseEvent, CaseRow, NotificationRow, utcnow

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Due:
    """What the sweep does to one case: a move, or a reminder ``days_before`` the move."""

    reference: str
    deadline: Deadline
    entered_at: datetime
    days_before: int | None = None

    @property
    def due_at(self) -> datetime:
        return self.entered_at + timedelta(days=self.deadline.after_days)

    @property
    def key(self) -> str:
        return (f"{self.deadline.status}:{self.entered_at.isoformat()}:"
                f"remind-{self.days_before}")


def due(definition: ServiceDefinition, status: str, entered_at: datetime, now: datetime,
        reference: str = "") -> list[Due]:
    """Pure: what is due for a case of ``definition`` in ``status`` since ``entered_at``.

    The move wins: once a deadline has passed, its reminders are moot."""
    found: list[Due] = []
    entered_at = aware(entered_at)
    for deadline in definition.deadlines:
        if deadline.status != status:
            continue
        item = Due(reference, deadline, entered_at)
        if now >= item.due_at:
            return [item]
        for days in sorted(deadline.remind_before_days, reverse=True):
            if now >= item.due_at - timedelta(days=days):
                found.append(Due(reference, deadline, entered_at, days_before=days))
    return found


def recorded_updates(data: dict[str, Any], item: Due) -> dict[str, Any]:
    """The top-level case fields a deadline's move records (``$due_date``: the due day)."""
    if not item.deadline.updates:
        return {}
    merged = copy.deepcopy(data)
    for path, value in item.deadline.updates.items():
        set_path(merged, path, item.due_at.date().isoformat() if value == "$due_date" else value)
    return {key: merged[key] for key in {p.split(".")[0] for p in item.deadline.updates}}


@dataclass
class SweepReport:
    moved: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class DeadlineSweeper:
    """Applies the deadlines of the ``catalog``'s services to the cases in ``store``: moves go
    through ``cases`` (the state machine, its audit and outbox), reminders are recorded in
    ``audit``; ``on_change`` is called once a sweep has moved a case (the relay then sends what
    the moves queued at once rather than at its next poll)."""

    def __init__(self, store: Store, catalog: ServiceCatalog, cases: CaseBook, audit: AuditLog,
                 on_change: Callable[[], None]) -> None:
        self.store = store
        self.catalog = catalog
        self.cases = cases
        self.audit = audit
        self.on_change = on_change

    def _candidates(self, session: Session) -> list[tuple[str, str]]:
        """(case id, reference) of cases in a status that has a deadline."""
        conditions = [and_(CaseRow.service == d.name,
                           CaseRow.status.in_({x.status for x in d.deadlines}))
                      for d in self.catalog if d.deadlines]
        if not conditions:
            return []
        return [(row.id, row.reference) for row in session.execute(
            select(CaseRow.id, CaseRow.reference).where(or_(*conditions)))]

    def sweep(self, now: datetime | None = None) -> SweepReport:
        now = aware(now or utcnow())
        report = SweepReport()
        with self.store.session() as session:
            candidates = self._candidates(session)
        for case_id, reference in candidates:
            try:
                with self.store.transaction() as session:
                    self._apply(session, case_id, now, report)
            except (HubError, IntegrityError) as exc:
                # Another sweep got there first, or the case changed meanwhile: the next sweep
                # looks again.
                log.warning("deadline sweep skipped %s: %s", reference, exc,
                            extra={"correlation_id": reference})
                report.failed.append(reference)
        if report.moved:
            self.on_change()
        return report

    def _apply(self, session: Session, case_id: str, now: datetime,
               report: SweepReport) -> None:
        case = session.scalars(select(CaseRow).where(CaseRow.id == case_id)
                               .with_for_update()).one()
        definition = self.catalog.get(case.service)
        entered = session.scalars(select(CaseEvent.at).where(
            CaseEvent.case_id == case.id, CaseEvent.to_status == case.status)
            .order_by(CaseEvent.id.desc()).limit(1)).first()
        if entered is None:
            return
        for item in due(definition, case.status, entered, now, case.reference):
            if item.days_before is None:
                self.cases.transition(
                    session, case, item.deadline.to, role="hub", actor="hub:deadlines",
                    reason=item.deadline.reason or f"deadline_{item.deadline.status}",
                    updates=recorded_updates(case.data, item) or None)
                report.moved.append(case.reference)
            elif self._remind(session, case, item):
                report.reminded.append(case.reference)

    def _remind(self, session: Session, case: CaseRow, item: Due) -> bool:
        exists = session.scalars(select(NotificationRow.id).where(
            NotificationRow.case_id == case.id, NotificationRow.key == item.key)).first()
        if exists is not None:
            return False
        session.add(NotificationRow(
            case_id=case.id, kind="deadline_reminder", key=item.key, language=case.language,
            details={"status": item.deadline.status, "to": item.deadline.to,
                     "due_at": item.due_at.isoformat(), "days_before": item.days_before},
            created_at=utcnow()))
        self.audit.append(session, AuditRecord(
            action="reminded", actor="hub:deadlines", component="deadlines",
            correlation_id=case.reference,
            details={"status": item.deadline.status, "due_at": item.due_at.isoformat(),
                     "days_before": item.days_before}))
        return True
