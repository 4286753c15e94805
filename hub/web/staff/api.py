"""The staff API: the back-office use cases (`hub.cases.staff.StaffDesk`) over JSON.

Refusals: 401 without a valid token, 403 outside the caller's scope, 409 for a move the case's
state machine does not allow, 422 for a move missing its data.

    GET  /api/v1/backoffice/cases?status=&service=&limit=&offset=
    GET  /api/v1/backoffice/cases/<reference>
    POST /api/v1/backoffice/cases/<reference>/transitions
         {"to": "attestation_issued", "reason": "...", "updates": {...},
          "outcome_document": "att_..."}
    POST /api/v1/backoffice/documents                 the signed outcome document (PDF bytes)
    GET  /api/v1/backoffice/cases/<reference>/documents/<att id>
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from hub.cases.staff import MAX_OFFSET, MAX_PAGE, REASON_CODE, StaffDesk
from hub.web import parts
from hub.web.negotiation import json_body, language
from hub.web.problems import field_errors_response
from hub.cases.access import staff_principal
from hub.cases.book import find_case
from hub.cases.references import reference_is_well_formed
from hub.errors import (MessageTooLarge, SchemaViolation,
                        UnknownService, UnsupportedMediaType)
from hub.web.guide import service_title
from hub.i18n.translate import Translator, translator

# -- the API ----------------------------------------------------------------------------------

blueprint = Blueprint("backoffice", __name__, url_prefix="/api/v1/backoffice")


def desk() -> StaffDesk:
    return parts.staff_desk()


@blueprint.before_request
def _authenticate() -> None:
    g.principal = staff_principal()


@blueprint.errorhandler(SchemaViolation)
def _field_errors(error: SchemaViolation) -> tuple[Response, int]:
    return field_errors_response(error)


def labelled(detail: dict[str, Any], t: Translator) -> dict[str, Any]:
    """Adds translated labels (service, statuses, reasons) for people reading the answer."""
    try:
        title = service_title(parts.catalog().get(detail["service"]), t)
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
    with parts.store().session() as session:
        found = find_case(session, reference) if reference_is_well_formed(reference) else None
        if found is not None:
            g.intake_schema = parts.catalog().get(
                found.service).intake_schema
    detail = desk().move(g.principal, reference, body["to"], reason=body.get("reason"),
                         updates=body.get("updates"),
                         outcome_document=body.get("outcome_document"))
    return jsonify(labelled(detail, _translator()))


@blueprint.post("/documents")
def upload_outcome() -> tuple[Response, int]:
    limit = parts.settings().max_attachment_bytes
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
