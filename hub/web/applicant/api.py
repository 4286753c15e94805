"""Intake API for applicants (described by ``schemas/v1/hub.openapi.yaml``, served at
``/api/v1/openapi.json``).

    GET  /api/v1/services                         the services offered, titles in the language asked
    GET  /api/v1/services/<service>               the reference guide of one service
    GET  /api/v1/services/<service>/schema        its intake JSON Schema (shared parts bundled)
    POST /api/v1/attachments                      a document (PDF, JPEG, PNG bytes) -> its reference
    POST /api/v1/services/<service>/requests      JSON per the intake schema
         -> 201 {"reference": "DLA-2026-7K3M9QX", "secret": "...", "status": "verifying"}
    GET  /api/v1/cases/<reference>                X-Tracking-Secret: status and history
    GET  /api/v1/cases/<reference>/documents/<id> X-Tracking-Secret: a document the post issued
    POST /api/v1/cases/<reference>/answers        X-Tracking-Secret: supply requested information
    POST /api/v1/cases/<reference>/withdrawal     X-Tracking-Secret: withdraw the request

Language: ``?lang=xx``, else ``Accept-Language``, else the hub's default. Errors: 415 for a body
of the wrong type (or a document that is not really a PDF, JPEG or PNG), 413 when too large, 404
for an unknown service, 422 with the localized list of field errors (field, code, label,
message), 409 for a move the case's status does not allow. Nothing is stored unless the whole
request is valid.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from hub.errors import MessageTooLarge, SchemaViolation, UnsupportedMediaType
from hub.web.forms import bundle
from hub.web.guide import service_guide, service_summary, service_title
from hub.i18n.translate import Translator, translator
from hub.schemas import load_document
from hub.cases.submissions import CaseView, Submissions
from hub.web import parts
from hub.web.negotiation import json_body, language
from hub.web.problems import field_errors_response

blueprint = Blueprint("intake", __name__, url_prefix="/api/v1")



def submissions() -> Submissions:
    return parts.submissions()


blueprint.register_error_handler(SchemaViolation, field_errors_response)


# -- the catalogue --------------------------------------------------------------------------


@blueprint.get("/services")
def services() -> Response:
    t = translator(language())
    return jsonify(language=t.language,
                   services=[service_summary(d, t) for d in parts.catalog()])


@blueprint.get("/services/<service>")
def guide(service: str) -> Response:
    t = translator(language())
    return jsonify(service_guide(parts.catalog().get(service), t))


@blueprint.get("/services/<service>/schema")
def intake_schema(service: str) -> Response:
    definition = parts.catalog().get(service)
    return jsonify(bundle(definition.intake_schema))


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return jsonify(load_document("v1/hub.openapi.yaml"))


# -- requests -------------------------------------------------------------------------------


@blueprint.post("/attachments")
def upload() -> tuple[Response, int]:
    declared = (request.mimetype or "").lower()
    if declared not in ("application/pdf", "image/jpeg", "image/png",
                        "application/octet-stream"):
        raise UnsupportedMediaType("send the document's bytes as application/pdf, image/jpeg or"
                                   " image/png")
    limit = parts.settings().max_attachment_bytes
    if request.content_length is not None and request.content_length > limit:
        raise MessageTooLarge(f"a document may not exceed {limit} bytes", limit=limit)
    request.max_content_length = limit + 1  # this route's own ceiling (Flask 3.1)
    content = request.stream.read(limit + 1)
    stored = submissions().upload(content, declared_type=declared)
    return jsonify(reference=stored.reference, content_type=stored.content_type,
                   size=stored.size, sha256=stored.sha256), 201


@blueprint.post("/services/<service>/requests")
def submit(service: str) -> tuple[Response, int]:
    definition = parts.catalog().get(service)
    g.intake_schema = definition.intake_schema
    data = json_body()
    opened = submissions().submit(service, data, language=language())
    return jsonify(reference=opened.case.reference, secret=opened.secret,
                   status=opened.case.status, service=service), 201


# -- following a case -----------------------------------------------------------------------


def _secret() -> str:
    return request.headers.get("X-Tracking-Secret", "")


def case_json(view: CaseView, t: Translator) -> dict[str, Any]:
    return {
        "reference": view.reference, "service": view.service,
        "service_title": service_title(parts.catalog().get(view.service), t),
        "status": view.status, "status_label": t.status(view.status), "final": view.final,
        "reason": view.reason, "reason_label": t.reason(view.reason),
        "can_answer": view.can_answer, "can_withdraw": view.can_withdraw,
        "outcome_documents": list(view.outcome_documents),
        "appointment": view.appointment,
        "notices": [{"to": n["to"], "to_label": t.status(n["to"]), "due_at": n["due_at"]}
                    for n in view.notices],
        "language": t.language,
        "history": [{"status": h.status, "label": t.status(h.status), "at": h.at.isoformat(),
                     "reason": h.reason, "reason_label": t.reason(h.reason)}
                    for h in view.history],
    }


@blueprint.get("/cases/<reference>")
def track(reference: str) -> Response:
    view = submissions().track(reference, _secret())
    return jsonify(case_json(view, translator(language(default=view.language))))


@blueprint.get("/cases/<reference>/documents/<attachment>")
def outcome_document(reference: str, attachment: str) -> Response:
    content, content_type = submissions().outcome_document(reference, _secret(), attachment)
    return Response(content, mimetype=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{attachment}"'})


@blueprint.post("/cases/<reference>/answers")
def answer(reference: str) -> Response:
    body = json_body()
    updates = body.get("updates", {})
    if not isinstance(updates, dict) or set(body) - {"updates"}:
        raise SchemaViolation("an answer is {\"updates\": {...}}", errors=[
            {"field": "updates", "code": "type", "message": "updates must be an object"}])
    view = submissions().track(reference, _secret(), audit=False)
    g.intake_schema = parts.catalog().get(view.service).intake_schema
    view = submissions().answer(reference, _secret(), updates)
    return jsonify(case_json(view, translator(language())))


@blueprint.post("/cases/<reference>/withdrawal")
def withdraw(reference: str) -> Response:
    view = submissions().withdraw(reference, _secret())
    return jsonify(case_json(view, translator(language())))
