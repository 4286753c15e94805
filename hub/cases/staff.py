"""The staff's use cases: cases of their district, their history and the agency answers, moves
through the allowed transitions, signed outcome documents.

`StaffDesk` is shared by the staff API (`hub.web.staff.api`) and the staff pages
(`hub.web.staff.pages`); every one of its methods takes the caller's `Principal` and enforces
its scope before touching anything: a post sees and changes only the cases of its district
(``case.post``), the central directorate all of them, the call centre reads statuses only.
Refusals: `AccessDenied` outside the scope, `IllegalTransition` for a move the case's state
machine does not allow, `SchemaViolation` for a move missing its data or its reason.

Reasons are data: each status of a service definition lists the reasons staff may give when
they move a case there (``staff_reasons``, e.g. why a request is rejected); a move to such a
status needs one of them, and the applicant reads it, translated, on the tracking page.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.cases.access import Principal
from hub.cases.book import CaseBook, find_case
from hub.cases.references import reference_is_well_formed
from hub.cases.submissions import deep_merge
from hub.errors import (AccessDenied, IllegalTransition, SchemaViolation, UnknownRoute,
                        UnknownService, UnsupportedMediaType)
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.services import ServiceCatalog, ServiceDefinition
from hub.store.bulk import write_pending
from hub.store import Store
from hub.store.attachments import AttachmentStore, StoredDocument
from hub.store.models import AttachmentRow, CaseEvent, CaseRow, ExchangeRow
from hub.store.privacy import cases_with_document


#: What a reason looks like: a code (lower case, digits, underscores), not free text.
REASON_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_PAGE = 100
MAX_OFFSET = 1_000_000
#: Identity documents a search may name (found through the blind index, never by decrypting).
SEARCHABLE_DOCUMENTS = ("cnie", "passport", "licence")
_REFERENCE = re.compile(r"^[A-Z]{2,4}-\d{4}-[0-9A-Z]{7}$")


def staff_reasons(definition: ServiceDefinition, to: str) -> tuple[str, ...]:
    """The reasons staff may give for a move to ``to`` (none: the move takes no reason)."""
    info = definition.states.get(to)
    return info.staff_reasons if info is not None else ()


def reason_errors(definition: ServiceDefinition, to: str, reason: str | None
                  ) -> list[dict[str, str]]:
    """What is wrong with ``reason`` for a staff move to ``to`` (empty: nothing)."""
    allowed = staff_reasons(definition, to)
    if allowed and reason is None:
        return [{"field": "reason", "code": "required",
                 "message": f"a move to {to} needs a reason: one of {', '.join(allowed)}"}]
    if reason is not None and reason not in allowed:
        return [{"field": "reason", "code": "enum" if allowed else "unexpected",
                 "message": (f"one of {', '.join(allowed)}" if allowed
                             else f"a move to {to} takes no reason")}]
    return []


class StaffDesk:
    """The staff's use cases over the cases in ``store``: ``catalog`` defines the services and
    their moves, ``cases`` applies them (state machine, outbox), ``attachments`` holds the
    documents, ``audit`` records every read and write; ``on_change`` is called once a move
    queued messages (the relay sends them at once rather than at its next poll)."""

    def __init__(self, store: Store, catalog: ServiceCatalog, cases: CaseBook, audit: AuditLog,
                 attachments: AttachmentStore, on_change: Callable[[], None]) -> None:
        self.store = store
        self.catalog = catalog
        self.cases = cases
        self.audit = audit
        self.attachments = attachments
        self.on_change = on_change

    # -- reading -------------------------------------------------------------------------------

    def list_cases(self, principal: Principal, *, status: str | None = None,
                   service: str | None = None, search: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[dict[str, Any]]:
        """Cases the caller may see, most recently changed first, with what is awaited.

        ``search`` is a case reference or the number of an identity document the case names
        (CNIE, passport, driving licence): the number is looked up by its blind-index digest,
        so no case is decrypted to search."""
        query = select(CaseRow).order_by(CaseRow.updated_at.desc(), CaseRow.reference)
        if principal.role == "post_staff":
            query = query.where(CaseRow.post == principal.post)
        elif principal.role not in ("central", "call_centre"):
            raise AccessDenied(f"role {principal.role} may not list cases")
        if status:
            query = query.where(CaseRow.status == status)
        if service:
            query = query.where(CaseRow.service == service)
        query = query.limit(max(1, min(limit, MAX_PAGE))).offset(max(0, offset))
        with self.store.session() as session:
            if search and search.strip():
                query = query.where(CaseRow.reference.in_(self._matching(session, search)))
            cases = list(session.scalars(query))
            awaiting = self._awaiting(session, cases)
            return [self._summary(case, awaiting.get(case.id, [])) for case in cases]

    @staticmethod
    def _matching(session: Session, search: str) -> list[str]:
        """References matching ``search``: itself if it is a reference, else the cases naming an
        identity document with that number (blind index)."""
        wanted = search.strip().upper()
        if _REFERENCE.match(wanted):
            return [wanted]
        found: set[str] = set()
        for kind in SEARCHABLE_DOCUMENTS:
            found.update(cases_with_document(session, kind, wanted))
        return sorted(found)

    def _awaiting(self, session: Session, cases: list[CaseRow]) -> dict[str, list[str]]:
        """Per case, the agencies whose answer of the current round is still awaited."""
        if not cases:
            return {}
        rounds = {c.id: c.route_round for c in cases}
        found: dict[str, list[str]] = {}
        for row in session.scalars(select(ExchangeRow).where(
                ExchangeRow.case_id.in_(list(rounds)),
                ExchangeRow.status.in_(("queued", "acknowledged")))):
            if row.round == rounds[row.case_id]:
                found.setdefault(row.case_id, []).append(row.agency)
        return found

    def _summary(self, case: CaseRow, awaiting: list[str]) -> dict[str, Any]:
        try:
            definition: ServiceDefinition | None = self.catalog.get(case.service)
        except UnknownService:  # a service no longer offered: its cases stay readable
            definition = None
        final = definition.is_final(case.status) if definition is not None else None
        return {"reference": case.reference, "service": case.service, "post": case.post,
                "status": case.status, "final": final,
                "created_at": case.created_at.isoformat(),
                "updated_at": case.updated_at.isoformat(), "awaiting": sorted(awaiting),
                "waiting_for": _waiting_for(definition, case.status, awaiting)}

    def _case(self, session: Session, principal: Principal, reference: str, *,
              change: bool = False) -> CaseRow:
        case = find_case(session, reference) if reference_is_well_formed(reference) else None
        if case is None:
            raise UnknownRoute("no case with this reference", code="case.unknown")
        allowed = (principal.can_change_case(case.post, case.reference) if change
                   else principal.can_read_case(case.post, case.reference))
        if not allowed:
            raise AccessDenied(f"case {case.reference} is outside {principal.role}"
                               f"{' ' + principal.post if principal.post else ''}'s scope")
        return case

    def case(self, principal: Principal, reference: str) -> dict[str, Any]:
        """The case as the caller may see it: status and history for everyone in scope; the
        request, agency answers and documents for those who may read contents (audited)."""
        with self.store.transaction() as session:
            case = self._case(session, principal, reference)
            return self._detail(session, principal, case)

    def _detail(self, session: Session, principal: Principal, case: CaseRow) -> dict[str, Any]:
        write_pending(session)  # a move of this transaction: its history and exchanges too
        definition = self.catalog.get(case.service)
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                 .order_by(CaseEvent.id))
        exchanges = list(session.scalars(select(ExchangeRow).where(
            ExchangeRow.case_id == case.id).order_by(ExchangeRow.created_at)))
        detail: dict[str, Any] = {
            **self._summary(case, [e.agency for e in exchanges if e.round == case.route_round
                                   and e.status in ("queued", "acknowledged")]),
            "language": case.language, "round": case.route_round,
            "history": [{"status": e.to_status, "at": e.at.isoformat(), "actor": e.actor,
                         "reason": e.reason} for e in events],
            "contents": False,
        }
        if principal.can_change_case(case.post, case.reference):
            # Moves that end the case (a final status) are confirmed before they are made.
            detail["next"] = [{"status": s, "outcome_document":
                               definition.states[s].outcome_document,
                               "reasons": list(definition.states[s].staff_reasons),
                               "final": definition.is_final(s)}
                              for s in definition.next_statuses(case.status, "staff")]
        if principal.can_read_case_contents(case.post, case.reference):
            detail.update(contents=True, data=case.data, exchanges=[
                {"step": e.step, "agency": e.agency, "operation": e.operation, "round": e.round,
                 "status": e.status, "outcome": e.outcome, "attempts": e.attempts,
                 "answered_at": e.answered_at.isoformat() if e.answered_at else None,
                 "error_code": e.error_code} for e in exchanges],
                documents=[{"reference": a.id, "field": a.field, "kind": a.kind,
                            "content_type": a.content_type, "size": a.size,
                            "sha256": a.sha256, "created_at": a.created_at.isoformat()}
                           for a in self.attachments.for_case(session, case.id)])
        # Every read of a case by a person is audited, the status-only reads of the call
        # centre too; ``view`` says how much was seen.
        self.audit.append(session, AuditRecord(
            action="viewed", actor=f"{principal.role}:{principal.subject}",
            component="backoffice", correlation_id=case.reference,
            details={"view": "contents" if detail["contents"] else "status"}))
        return detail

    # -- acting --------------------------------------------------------------------------------

    def upload_outcome(self, principal: Principal, content: bytes, declared_type: str | None
                       ) -> StoredDocument:
        """Store a signed outcome document (PDF) for a later move; not yet bound to a case."""
        if principal.role not in ("post_staff", "central"):
            raise AccessDenied(f"role {principal.role} may not issue documents")
        with self.store.transaction() as session:
            row = self.attachments.put(session, content, declared_type=declared_type,
                                           uploaded_by=f"{principal.role}:{principal.subject}",
                                           kind="outcome")
            if row.content_type != "application/pdf":
                raise UnsupportedMediaType("an outcome document is a signed PDF",
                                           code="document.type_mismatch")
            return StoredDocument(row.id, row.content_type, row.size, row.sha256)

    def move(self, principal: Principal, reference: str, to: str, *, reason: str | None = None,
             updates: Mapping[str, Any] | None = None,
             outcome_document: str | None = None,
             expected: str | None = None) -> dict[str, Any]:
        """Move the case to ``to`` as staff, recording ``updates`` and binding the outcome
        document, in one transaction. ``expected`` is the status the caller decided on (a page
        shown earlier): if the case has moved since, nothing changes (409, ``case.stale``)."""
        with self.store.transaction() as session:
            case = self._case(session, principal, reference, change=True)
            if expected is not None and case.status != expected:
                raise IllegalTransition(
                    f"case {case.reference} is {case.status} now, not {expected}",
                    code="case.stale", current=case.status, requested=to)
            definition = self.catalog.get(case.service)
            if to not in definition.next_statuses(case.status, "staff"):
                raise IllegalTransition(
                    f"case {case.reference}: {case.status} -> {to} is not allowed for staff",
                    current=case.status, requested=to)
            refused = reason_errors(definition, to, reason)
            if refused:
                raise SchemaViolation(f"the move to {to} needs a reason that fits it",
                                      errors=refused)
            document = None
            if definition.states[to].outcome_document or outcome_document:
                document = self._outcome(session, outcome_document)
            changed = None
            if updates:
                merged = deep_merge(case.data, updates)
                changed = {key: merged[key] for key in updates}
            self.cases.transition(session, case, to, role="staff",
                                      actor=f"{principal.role}:{principal.subject}",
                                      reason=reason, updates=changed)
            if document is not None:
                document.case_id, document.field = case.id, f"outcome.{to}"
                document.claimed_at = case.updated_at
            detail = self._detail(session, principal, case)
        self.on_change()
        return detail

    @staticmethod
    def _outcome(session: Session, reference: str | None) -> AttachmentRow:
        row = session.get(AttachmentRow, reference) if reference else None
        if row is None or row.kind != "outcome" or row.case_id is not None:
            raise SchemaViolation("this move issues a signed document: attach it", errors=[
                {"field": "outcome_document", "code": "required" if not reference
                 else "document_unknown", "message": "upload the signed document first"}])
        return row

    def document(self, principal: Principal, reference: str, attachment: str
                 ) -> tuple[bytes, str]:
        with self.store.transaction() as session:
            case = self._case(session, principal, reference)
            if not principal.can_read_case_contents(case.post, case.reference):
                raise AccessDenied("documents are not visible to this role")
            content, content_type = self.attachments.read(session, attachment,
                                                              case_id=case.id)
            self.audit.append(session, AuditRecord(
                action="viewed", actor=f"{principal.role}:{principal.subject}",
                component="backoffice", correlation_id=case.reference,
                details={"view": "document", "attachment": attachment}))
            return content, content_type


def _waiting_for(definition: ServiceDefinition | None, status: str,
                 awaiting: list[str]) -> str | None:
    """Who the case waits for: ``agencies`` (their answers, see ``awaiting``), ``staff`` (a
    decision of the post), ``applicant`` (information they were asked for), or None (final)."""
    if awaiting:
        return "agencies"
    if definition is None or status not in definition.states or definition.is_final(status):
        return None
    if any(not definition.is_final(s) for s in definition.next_statuses(status, "applicant")):
        return "applicant"
    if definition.next_statuses(status, "staff"):
        return "staff"
    return "hub"
