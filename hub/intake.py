"""Intake API for applicants: submit a request for a service, follow it by reference and secret.

    POST /api/v1/services/<service>/requests     JSON body per the service's intake schema
         -> 201 {"reference": "DLA-2026-7K3M9QX", "secret": "...", "status": "verifying"}
    GET  /api/v1/cases/<reference>               header X-Tracking-Secret: <secret>
         -> 200 {"reference", "service", "status", "history": [...]}

Errors: 415 when the body is not JSON, 413 when too large, 404 for an unknown service or case,
422 with the list of field errors when the form is invalid. Nothing is stored unless the whole
request is valid.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from hub.audit import AuditRecord
from hub.cases import find_case, reference_is_well_formed, secret_matches
from hub.envelope import parse_json
from hub.errors import MalformedEnvelope, SecurityError, UnknownRoute
from hub.store.models import CaseEvent

blueprint = Blueprint("intake", __name__, url_prefix="/api/v1")


def _hub():  # type: ignore[no-untyped-def]
    return current_app.extensions["hub"]


def _json_body() -> dict:
    if not request.is_json:
        from werkzeug.exceptions import UnsupportedMediaType

        raise UnsupportedMediaType("send the request as application/json")
    document = parse_json(request.get_data(), what="request body")
    if not isinstance(document, dict):
        raise MalformedEnvelope("the request body must be a JSON object")
    return document


@blueprint.post("/services/<service>/requests")
def submit(service: str) -> tuple[Response, int]:
    data = _json_body()
    language = request.accept_languages.best_match(["ar", "en", "fr", "es", "it", "nl", "de"]) or "fr"
    opened = _hub().submit(service, data, actor="applicant", language=language)
    return jsonify(reference=opened.case.reference, secret=opened.secret,
                   status=opened.case.status, service=service), 201


@blueprint.get("/cases/<reference>")
def track(reference: str) -> Response:
    if not reference_is_well_formed(reference):
        raise UnknownRoute("no case with this reference")
    secret = request.headers.get("X-Tracking-Secret", "")
    hub = _hub()
    with hub.store.transaction() as session:
        case = find_case(session, reference)
        # Same answer for an unknown reference and a wrong secret: references are not guessable
        # and must not become checkable either.
        if case is None or not secret_matches(secret, case.secret_hash):
            raise SecurityError("unknown reference or wrong tracking secret",
                                code="tracking.denied")
        history = [
            {"status": e.to_status, "at": e.at.isoformat(), "reason": e.reason}
            for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                     .order_by(CaseEvent.id))
        ]
        hub.audit.append(session, AuditRecord(
            action="viewed", actor="applicant", component="tracking",
            correlation_id=case.reference, details={"view": "status"}))
        return jsonify(reference=case.reference, service=case.service, status=case.status,
                       history=history)
