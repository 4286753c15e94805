"""What an applicant can do, whatever the channel (API or pages): submit, upload, follow, answer a
request for more information, withdraw.

Each use case checks everything before it writes, and writes in one transaction: a request whose
documents are not all available, or whose post does not exist, stores nothing.

    submissions = hub.submissions()                          # built by `hub.runtime.Hub`
    doc = submissions.upload(pdf_bytes, declared_type="application/pdf")
    opened = submissions.submit("registration_certificate", data, language="es")
    view = submissions.track(opened.case.reference, opened.secret)
    again = submissions.submit("registration_certificate", data, language="es", token=form_token)
    # a form sent twice (token in the form): ``again`` is the first case, same secret
    submissions.answer(reference, secret, {"documents": {"address_proof": doc.reference}})
    submissions.withdraw(reference, secret)
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.cases.book import CaseBook, OpenedCase, find_case
from hub.cases.posts import get_post
from hub.cases.references import reference_is_well_formed, secret_hash, secret_matches
from hub.errors import (ConfigurationError, IllegalTransition, SchemaViolation, SecurityError,
                        UnknownRoute)
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
               actor: str = "applicant", token: str | None = None) -> OpenedCase:
        """Open a case for ``data``. ``token`` is the idempotency token of a form (the pages put
        one in each form they show): the same form sent twice (a double click, a reload of the
        POST) opens one case, and the second submission returns the first case with the same
        tracking secret. The case id and the secret are derived from the token with the hub's
        index key (`form_identity`), so nothing more is stored and a concurrent second
        submission fails on the case's primary key, then returns the first."""
        definition = self.catalog.get(service)
        case_id, secret = self.form_identity(token) if token else (None, None)
        if case_id is not None:
            first = self._submitted(case_id, secret)
            if first is not None:
                return first
        self.cases.validate_intake(definition, data)
        post_errors = self._post_errors(data)

        def work(session: Session) -> OpenedCase:
            if case_id is not None and session.get(CaseRow, case_id) is not None:
                # The same form, in the same group commit or committed meanwhile.
                first = self._first(session, case_id, secret)
                if first is None:
                    raise IllegalTransition("this form was sent already", code="form.reused")
                return first
            documents = self.attachments.rows(session, data)
            errors = post_errors + self.attachments.problems(session, data, rows=documents)
            if errors:
                raise SchemaViolation(f"{service} request refers to unknown data", errors=errors)
            opened = self.cases.open(session, service, data, actor=actor, language=language,
                                     validated=True, case_id=case_id)
            if secret is not None:
                # The case row is already written (`hub.store.bulk.insert_now`): its secret is
                # the one the form's token stands for.
                opened.case.secret_hash = secret_hash(secret)
                session.execute(update(CaseRow).where(CaseRow.id == opened.case.id)
                                .values(secret_hash=opened.case.secret_hash))
                opened = OpenedCase(case=opened.case, secret=secret, exchanges=opened.exchanges)
            self.attachments.claim(session, opened.case, data, rows=documents)
            return opened

        try:
            # Requests arriving together share one commit (`hub.store.group`).
            opened = self.commits.run(work)
        except IntegrityError:
            first = self._submitted(case_id, secret) if case_id is not None else None
            if first is None:
                raise
            return first  # the same form, sent at the same moment: the other one won
        self.on_change()
        return opened

    def form_identity(self, token: str) -> tuple[str, str]:
        """The case id and the tracking secret a form's ``token`` stands for (keyed: only the
        hub can derive them, and only the holder of the form has the token)."""
        key = self._form_key()

        def derive(purpose: bytes) -> bytes:
            return hmac.new(key, b"hub.form-submission." + purpose + b"\0" + token.encode(),
                            hashlib.sha256).digest()

        case_id = str(uuid.UUID(bytes=derive(b"case")[:16], version=4))
        secret = base64.urlsafe_b64encode(derive(b"secret")[:12]).decode("ascii")
        return case_id, secret

    def _form_key(self) -> bytes:
        """The hub's index key (`hub.keyset.BlindIndex`), which the store holds to index
        identity numbers; the form derivations use it under their own prefix."""
        privacy = getattr(self.store, "privacy", None)
        if privacy is None:
            raise ConfigurationError("the store has no keys: forms cannot be made idempotent")
        return privacy.index.key  # type: ignore[no-any-return]

    def _submitted(self, case_id: str, secret: str | None) -> OpenedCase | None:
        """The case a form already opened, if any (its secret checked, as for tracking)."""
        with self.store.session() as session:
            if session.get(CaseRow, case_id) is None:
                return None
            return self._first(session, case_id, secret)

    @staticmethod
    def _first(session: Session, case_id: str, secret: str | None) -> OpenedCase | None:
        case = session.get(CaseRow, case_id)
        if case is None or secret is None or not secret_matches(secret, case.secret_hash):
            return None
        return OpenedCase(case=case, secret=secret, exchanges=())

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

