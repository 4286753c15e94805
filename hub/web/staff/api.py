"""The back-office for consular staff: cases of their district, their history and the agency
answers, moves through the allowed transitions, signed outcome documents.

`StaffDesk` holds the use cases (shared by the API below and the staff pages); every one takes
the caller's `Principal` and enforces its scope before touching anything: a post sees and
changes only the cases of its district (``case.post``), the central directorate all of them,
the call centre reads statuses only. Refusals: 401 without a valid token, 403 outside the scope,
409 for a move the case's state machine does not allow, 422 for a move missing its data.

    GET  /api/v1/backoffice/cases?status=&service=&limit=&offset=
    GET  /api/v1/backoffice/cases/<reference>
    POST /api/v1/backoffice/cases/<reference>/transitions
         {"to": "attestation_issued", "reason": "...", "updates": {...},
          "outcome_document": "att_..."}
    POST /api/v1/backoffice/documents                 the signed outcome document (PDF bytes)
    GET  /api/v1/backoffice/cases/<reference>/documents/<att id>
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.cases.access import Principal, staff_principal
from hub.store.attachments import StoredDocument
from hub.evidence.audit.log import AuditRecord
from hub.cases.book import find_case, reference_is_well_formed
from hub.errors import (AccessDenied, IllegalTransition, MessageTooLarge, SchemaViolation,
                        UnknownRoute, UnknownService, UnsupportedMediaType)
from hub.web.guide import service_title
from hub.i18n.translate import Translator, translator
from hub.store.models import AttachmentRow, CaseEvent, CaseRow, ExchangeRow
from hub.cases.submissions import deep_merge

#: Why staff ask an applicant for more information (translated for the applicant, ``reason``).
STAFF_REASONS = ("document_missing", "document_unreadable", "document_expired",
                 "identity_to_confirm", "address_outside_district", "appointment_needed",
                 "other_information_needed")
#: What a reason looks like: a code (lower case, digits, underscores), not free text.
REASON_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_PAGE = 100
MAX_OFFSET = 1_000_000


class StaffDesk:
    def __init__(self, hub: Any) -> None:
        self.hub = hub

    # -- reading -------------------------------------------------------------------------------

    def list_cases(self, principal: Principal, *, status: str | None = None,
                   service: str | None = None, limit: int = 50, offset: int = 0
                   ) -> list[dict[str, Any]]:
        """Cases the caller may see, most recently changed first, with what is awaited."""
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
        with self.hub.store.session() as session:
            cases = list(session.scalars(query))
            awaiting = self._awaiting(session, cases)
            return [self._summary(case, awaiting.get(case.id, [])) for case in cases]

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
            final: bool | None = self.hub.catalog.get(case.service).is_final(case.status)
        except UnknownService:  # a service no longer offered: its cases stay readable
            final = None
        return {"reference": case.reference, "service": case.service, "post": case.post,
                "status": case.status, "final": final,
                "created_at": case.created_at.isoformat(),
                "updated_at": case.updated_at.isoformat(), "awaiting": sorted(awaiting)}

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
        with self.hub.store.transaction() as session:
            case = self._case(session, principal, reference)
            return self._detail(session, principal, case)

    def _detail(self, session: Session, principal: Principal, case: CaseRow) -> dict[str, Any]:
        definition = self.hub.catalog.get(case.service)
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
            detail["next"] = [{"status": s, "outcome_document":
                               definition.states[s].outcome_document}
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
                           for a in self.hub.attachments.for_case(session, case.id)])
        # Every read of a case by a person is audited, the status-only reads of the call
        # centre too; ``view`` says how much was seen.
        self.hub.audit.append(session, AuditRecord(
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
        with self.hub.store.transaction() as session:
            row = self.hub.attachments.put(session, content, declared_type=declared_type,
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
        with self.hub.store.transaction() as session:
            case = self._case(session, principal, reference, change=True)
            if expected is not None and case.status != expected:
                raise IllegalTransition(
                    f"case {case.reference} is {case.status} now, not {expected}",
                    code="case.stale", current=case.status, requested=to)
            definition = self.hub.catalog.get(case.service)
            if to not in definition.next_statuses(case.status, "staff"):
                raise IllegalTransition(
                    f"case {case.reference}: {case.status} -> {to} is not allowed for staff",
                    current=case.status, requested=to)
            document = None
            if definition.states[to].outcome_document or outcome_document:
                document = self._outcome(session, outcome_document)
            changed = None
            if updates:
                merged = deep_merge(case.data, updates)
                changed = {key: merged[key] for key in updates}
            self.hub.cases.transition(session, case, to, role="staff",
                                      actor=f"{principal.role}:{principal.subject}",
                                      reason=reason, updates=changed)
            if document is not None:
                document.case_id, document.field = case.id, f"outcome.{to}"
                document.claimed_at = case.updated_at
            detail = self._detail(session, principal, case)
        self.hub.relay.wake()
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
        with self.hub.store.transaction() as session:
            case = self._case(session, principal, reference)
            if not principal.can_read_case_contents(case.post, case.reference):
                raise AccessDenied("documents are not visible to this role")
            content, content_type = self.hub.attachments.read(session, attachment,
                                                              case_id=case.id)
            self.hub.audit.append(session, AuditRecord(
                action="viewed", actor=f"{principal.role}:{principal.subject}",
                component="backoffice", correlation_id=case.reference,
                details={"view": "document", "attachment": attachment}))
            return content, content_type


# -- the API ----------------------------------------------------------------------------------

blueprint = Blueprint("backoffice", __name__, url_prefix="/api/v1/backoffice")


def desk() -> StaffDesk:
    return current_app.extensions["hub.desk"]


@blueprint.before_request
def _authenticate() -> None:
    g.principal = staff_principal()


@blueprint.errorhandler(SchemaViolation)
def _field_errors(error: SchemaViolation) -> tuple[Response, int]:
    from hub.web.applicant.api import field_errors_response

    return field_errors_response(error)


def labelled(detail: dict[str, Any], t: Translator) -> dict[str, Any]:
    """Adds translated labels (service, statuses, reasons) for people reading the answer."""
    hub = current_app.extensions["hub"]
    try:
        title = service_title(hub.catalog.get(detail["service"]), t)
    except UnknownService:
        title = detail["service"]
    out = dict(detail, service_title=title, status_label=t.status(detail["status"]))
    if "history" in out:
        out["history"] = [dict(h, label=t.status(h["status"]), reason_label=t.reason(h["reason"]))
                          for h in out["history"]]
    if "next" in out:
        out["next"] = [dict(n, label=t.status(n["status"])) for n in out["next"]]
    return out


def _translator() -> Translator:
    from hub.web.applicant.api import language

    return translator(language())


@blueprint.get("/cases")
def list_cases() -> Response:
    try:
        limit = int(request.args.get("limit", 50))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise SchemaViolation("limit and offset are integers", errors=[
            {"field": "limit", "code": "type", "message": "an integer"}]) from None
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_OFFSET:
        raise SchemaViolation("limit or offset out of range", errors=[
            {"field": "limit" if not 1 <= limit <= MAX_PAGE else "offset", "code": "maximum",
             "message": f"limit 1-{MAX_PAGE}, offset 0-{MAX_OFFSET}"}])
    t = _translator()
    cases = desk().list_cases(g.principal, status=request.args.get("status") or None,
                              service=request.args.get("service") or None,
                              limit=limit, offset=offset)
    return jsonify(cases=[labelled(c, t) for c in cases], limit=limit, offset=offset)


@blueprint.get("/cases/<reference>")
def case(reference: str) -> Response:
    return jsonify(labelled(desk().case(g.principal, reference), _translator()))


@blueprint.post("/cases/<reference>/transitions")
def transition(reference: str) -> Response:
    from hub.web.applicant.api import json_body

    body = json_body()
    allowed = {"to", "reason", "updates", "outcome_document"}
    errors = [{"field": key, "code": "unexpected", "message": f"{key} is not expected"}
              for key in body if key not in allowed]
    if not isinstance(body.get("to"), str):
        errors.append({"field": "to", "code": "required", "message": "the status to move to"})
    for key, kind in (("reason", str), ("outcome_document", str), ("updates", dict)):
        if body.get(key) is not None and not isinstance(body[key], kind):
            errors.append({"field": key, "code": "type", "message": f"{key} has the wrong type"})
    if isinstance(body.get("reason"), str) and not REASON_CODE.fullmatch(body["reason"]):
        # The history and the audit trail are not encrypted: a reason is a code (translated
        # for the applicant), never free text that could carry a name or a number.
        errors.append({"field": "reason", "code": "pattern",
                       "message": "a reason code, e.g. document_unreadable"})
    if errors:
        raise SchemaViolation("the transition request is malformed", errors=errors)
    with current_app.extensions["hub"].store.session() as session:
        found = find_case(session, reference) if reference_is_well_formed(reference) else None
        if found is not None:
            g.intake_schema = current_app.extensions["hub"].catalog.get(
                found.service).intake_schema
    detail = desk().move(g.principal, reference, body["to"], reason=body.get("reason"),
                         updates=body.get("updates"),
                         outcome_document=body.get("outcome_document"))
    return jsonify(labelled(detail, _translator()))


@blueprint.post("/documents")
def upload_outcome() -> tuple[Response, int]:
    hub = current_app.extensions["hub"]
    limit = hub.settings.max_attachment_bytes
    if request.mimetype not in ("application/pdf", "application/octet-stream"):
        raise UnsupportedMediaType("send the signed document as application/pdf")
    if request.content_length is not None and request.content_length > limit:
        raise MessageTooLarge(f"a document may not exceed {limit} bytes", limit=limit)
    request.max_content_length = limit + 1
    stored = desk().upload_outcome(g.principal, request.stream.read(limit + 1), request.mimetype)
    return jsonify(reference=stored.reference, content_type=stored.content_type,
                   size=stored.size, sha256=stored.sha256), 201


@blueprint.get("/cases/<reference>/documents/<attachment>")
def document(reference: str, attachment: str) -> Response:
    content, content_type = desk().document(g.principal, reference, attachment)
    return Response(content, mimetype=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{attachment}"'})
