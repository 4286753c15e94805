"""What an applicant can do, whatever the channel (API or pages): submit, upload, follow, answer a
request for more information, withdraw.

Each use case checks everything before it writes, and writes in one transaction: a request whose
documents are not all available, or whose post does not exist, stores nothing.

    submissions = hub.submissions()                          # built by `hub.runtime.Hub`
    doc = submissions.upload(pdf_bytes, declared_type="application/pdf")
    opened = submissions.submit("registration_certificate", data, language="es")
    view = submissions.track(opened.case.reference, opened.secret)
    submissions.answer(reference, secret, {"documents": {"address_proof": doc.reference}})
    submissions.withdraw(reference, secret)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.cases.book import CaseBook, OpenedCase, find_case
from hub.cases.posts import get_post
from hub.cases.references import reference_is_well_formed, secret_matches
from hub.errors import IllegalTransition, SchemaViolation, SecurityError, UnknownRoute
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.services import ServiceCatalog, ServiceDefinition
from hub.store.bulk import write_pending
from hub.store.group import GroupCommit
from hub.store import Store
from hub.store.attachments import AttachmentStore, StoredDocument
from hub.store.models import AttachmentRow, CaseEvent, CaseRow, NotificationRow

WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class HistoryEntry:
    status: str
    at: datetime
    reason: str | None


@dataclass(frozen=True)
class CaseView:
    """What the applicant sees of a case: status and history, no personal data."""

    reference: str
    service: str
    status: str
    final: bool
    language: str
    history: tuple[HistoryEntry, ...]
    #: Why more information is requested (the reason of the move into the current status).
    reason: str | None
    can_answer: bool
    can_withdraw: bool
    #: References of the documents the post issued (the authorisation, the attestation...).
    outcome_documents: tuple[str, ...] = ()
    #: Reminders of coming deadlines: ({"to": "lapsed", "due_at": ..., ...}, ...).
    notices: tuple[dict[str, Any], ...] = ()
    #: The booked appointment, if any: {"slot", "post", "starts_at", "local_time", "minutes"}.
    appointment: dict[str, Any] | None = None


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied; objects merge key by key, other values replace."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class BookedAppointments(Protocol):
    """Where the applicant's view finds a case's booked appointment (`hub.appointments`)."""

    def booked(self, session: Session, case_id: str) -> dict[str, Any] | None: ...


class Submissions:
    """The applicant's use cases over the cases in ``store``: ``catalog`` defines the services,
    ``cases`` opens and moves cases (state machine, outbox), ``attachments`` holds the documents,
    ``audit`` records every read and write; ``on_change`` is called once a transaction queued
    messages (the relay sends them at once rather than at its next poll)."""

    def __init__(self, store: Store, catalog: ServiceCatalog, cases: CaseBook, audit: AuditLog,
                 attachments: AttachmentStore, on_change: Callable[[], None], *,
                 appointments: BookedAppointments | None = None,
                 commits: GroupCommit | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.cases = cases
        self.audit = audit
        self.attachments = attachments
        self.on_change = on_change
        #: Without it (a hub offering no appointments) the applicant's view shows none.
        self.appointments = appointments
        #: Submissions arriving together share one commit (`hub.store.group`).
        self.commits = commits or GroupCommit(store)

    # -- documents -----------------------------------------------------------------------------

    def upload(self, content: bytes, *, declared_type: str | None,
               uploaded_by: str = "applicant") -> StoredDocument:
        with self.store.transaction() as session:
            row = self.attachments.put(session, content, declared_type=declared_type,
                                           uploaded_by=uploaded_by)
            self.audit.append(session, AuditRecord(
                action="received", actor=uploaded_by, component="attachments",
                digest=row.sha256, details={"attachment": row.id, "size": row.size,
                                            "content_type": row.content_type}))
            return StoredDocument(row.id, row.content_type, row.size, row.sha256)

    # -- requests ------------------------------------------------------------------------------

    def submit(self, service: str, data: dict[str, Any], *, language: str,
               actor: str = "applicant") -> OpenedCase:
        definition = self.catalog.get(service)
        self.cases.validate_intake(definition, data)
        post_errors = self._post_errors(data)

        def work(session: Session) -> OpenedCase:
            documents = self.attachments.rows(session, data)
            errors = post_errors + self.attachments.problems(session, data, rows=documents)
            if errors:
                raise SchemaViolation(f"{service} request refers to unknown data", errors=errors)
            opened = self.cases.open(session, service, data, actor=actor, language=language,
                                         validated=True)
            self.attachments.claim(session, opened.case, data, rows=documents)
            return opened

        # Requests arriving together share one commit (`hub.store.group`).
        opened = self.commits.run(work)
        self.on_change()
        return opened

    @staticmethod
    def _post_errors(data: Mapping[str, Any]) -> list[dict[str, str]]:
        post = data.get("post")
        if isinstance(post, str) and get_post(post) is None:
            return [{"field": "post", "code": "unknown_post",
                     "message": "no consular post has this code"}]
        return []

    # -- following a case ----------------------------------------------------------------------

    def _case(self, session: Session, reference: str, secret: str) -> CaseRow:
        case = find_case(session, reference) if reference_is_well_formed(reference) else None
        # Same answer for an unknown reference and a wrong secret: references must not become
        # checkable.
        if case is None or not secret_matches(secret, case.secret_hash):
            raise SecurityError("unknown reference or wrong tracking secret",
                                code="tracking.denied")
        return case

    def track(self, reference: str, secret: str, *, audit: bool = True) -> CaseView:
        with self.store.transaction() as session:
            case = self._case(session, reference, secret)
            view = self.view(session, case)
            if audit:
                self.audit.append(session, AuditRecord(
                    action="viewed", actor="applicant", component="tracking",
                    correlation_id=case.reference, details={"view": "status"}))
            return view

    def view(self, session: Session, case: CaseRow) -> CaseView:
        write_pending(session)  # the history this transaction appended, too
        definition = self.catalog.get(case.service)
        events = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                      .order_by(CaseEvent.id)))
        history = tuple(HistoryEntry(e.to_status, e.at, e.reason) for e in events)
        return CaseView(
            reference=case.reference, service=case.service, status=case.status,
            final=definition.is_final(case.status), language=case.language, history=history,
            reason=history[-1].reason if history else None,
            can_answer=self._answer_status(definition, case.status) is not None,
            can_withdraw=definition.allowed(case.status, WITHDRAWN, "applicant"),
            outcome_documents=tuple(a.id for a in self.attachments.for_case(session, case.id)
                                    if a.kind == "outcome"),
            notices=tuple(n.details for n in session.scalars(
                select(NotificationRow).where(NotificationRow.case_id == case.id)
                .order_by(NotificationRow.id))
                if n.details.get("status") == case.status),
            appointment=self._appointment(session, case))

    def _appointment(self, session: Session, case: CaseRow) -> dict[str, Any] | None:
        return self.appointments.booked(session, case.id) if self.appointments else None

    @staticmethod
    def _answer_status(definition: ServiceDefinition, status: str) -> str | None:
        """Where the applicant's answer moves the case (a non-final status), if anywhere."""
        targets = [s for s in definition.next_statuses(status, "applicant")
                   if not definition.is_final(s)]
        return targets[0] if targets else None

    def outcome_document(self, reference: str, secret: str, attachment: str
                         ) -> tuple[bytes, str]:
        """A document the post issued for this case (never the applicant's own uploads)."""
        with self.store.transaction() as session:
            case = self._case(session, reference, secret)
            row = session.get(AttachmentRow, attachment)
            if row is None or row.case_id != case.id or row.kind != "outcome":
                raise UnknownRoute("no such document for this case", code="document.unknown")
            content, content_type = self.attachments.read(session, attachment,
                                                              case_id=case.id)
            self.audit.append(session, AuditRecord(
                action="viewed", actor="applicant", component="tracking",
                correlation_id=case.reference,
                details={"view": "document", "attachment": attachment}))
            return content, content_type

    # -- acting on a case ----------------------------------------------------------------------

    def answer(self, reference: str, secret: str, updates: Mapping[str, Any], *,
               note: str | None = None) -> CaseView:
        """Supply what was asked: ``updates`` merge into the request (objects key by key), are
        validated with the intake schema, and the case goes back to work (a new route round)."""
        with self.store.transaction() as session:
            case = self._case(session, reference, secret)
            definition = self.catalog.get(case.service)
            target = self._answer_status(definition, case.status)
            if target is None:
                raise IllegalTransition(f"case {case.reference} is not waiting for information",
                                        current=case.status)
            merged = deep_merge(case.data, updates)
            errors = self._post_errors(merged)
            errors += self.attachments.problems(session, merged, case_id=case.id)
            self.cases.validate_intake(definition, merged)
            if errors:
                raise SchemaViolation("the answer refers to unknown data", errors=errors)
            changed = {key: merged[key] for key in updates}
            self.cases.transition(session, case, target, role="applicant", actor="applicant",
                                      reason="information_supplied", updates=changed or None)
            self.attachments.claim(session, case, merged)
            view = self.view(session, case)
        self.on_change()
        return view

    def withdraw(self, reference: str, secret: str) -> CaseView:
        with self.store.transaction() as session:
            case = self._case(session, reference, secret)
            self.cases.transition(session, case, WITHDRAWN, role="applicant",
                                      actor="applicant", reason="withdrawn_by_applicant")
            view = self.view(session, case)
        self.on_change()
        return view

