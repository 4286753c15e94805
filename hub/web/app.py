"""The web front: one Flask app, built by `create_app`, with a blueprint per audience.

    app = create_app(hub)          # hub: a `hub.runtime.Hub`
    app.test_client().get("/healthz")

Blueprints: ``intake`` (applicants: submit and track), and those added by later parts (inbound
agency endpoints, back-office API and its staff pages under ``/staff``, admin console). Every `HubError` becomes a JSON problem with a
precise status; nothing else escapes as a 500 without being logged with its correlation id.

Every refusal of input is also an audit record (action ``rejected``, outcome the error code,
the body's SHA-256 as digest, never its content), written after the response is decided and in
its own transaction, so nothing of the refused request itself is stored: a problem response
(`problem`) or a view's own refusal (`note_rejection`, e.g. a SOAP fault) marks the request,
and `_audit_rejection` records it for every method that carries input and for every 401/403.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, Callable

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from hub import errors

log = logging.getLogger(__name__)

#: HTTP status for each error class (the most specific class listed wins).
STATUS: list[tuple[type[errors.HubError], int]] = [
    (errors.MessageTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.SchemaViolation, 422),
    (errors.MalformedEnvelope, 400),
    (errors.HostileInput, 400),
    (errors.InvalidMessage, 400),
    (errors.AccessDenied, 403),
    (errors.SecurityError, 401),
    (errors.UnknownService, 404),
    (errors.UnknownRoute, 404),
    (errors.IllegalTransition, 409),
    (errors.AgencyRefusal, 422),
    (errors.TransientError, 503),
    (errors.ConfigurationError, 500),
]


def status_for(error: errors.HubError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 400


def note_rejection(status: int, code: str, *, reason: str | None = None) -> None:
    """Mark the current request as refused (audited once the response is sent)."""
    g.rejection = {"status": status, "code": code, **({"reason": reason} if reason else {})}


def audit_as(component: str, actor: str) -> None:
    """Name who is calling and which part refuses, for the rejection's audit record."""
    g.audit_component, g.audit_actor = component, actor


#: What each refusal means, in the caller's language (``title``, context ``problem`` of the
#: catalogs); ``code`` and ``message`` stay precise and stable for programs and logs.
PROBLEM_TITLES = {
    400: "The request could not be read.",
    401: "You must be identified to do this.",
    403: "You are not allowed to do this.",
    404: "This was not found.",
    405: "This method is not allowed here.",
    409: "This conflicts with the current state of the case.",
    413: "The request is too large.",
    415: "This type of content is not accepted.",
    422: "Some information is missing or invalid.",
    500: "Something went wrong on our side; please try again later.",
    503: "The service is unavailable for a moment; please try again later.",
}


def _problem_language() -> str:
    from hub.config import LANGUAGES
    from hub.i18n.translate import best_language

    hub = current_app.extensions.get("hub")
    default = hub.settings.default_language if hub is not None else "en"
    return best_language([request.args.get("lang"),
                          request.accept_languages.best_match(LANGUAGES)], default)


def problem(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    from hub.i18n.translate import translator

    note_rejection(status, code, reason=extra.get("reason"))
    language = _problem_language()
    title = PROBLEM_TITLES.get(status) or PROBLEM_TITLES[500 if status >= 500 else 400]
    body = {"error": {"code": code, "title": translator(language).pgettext("problem", title),
                      "message": message, **extra},
            "correlation_id": getattr(g, "correlation_id", None)}
    response = jsonify(body)
    response.headers["Content-Language"] = language
    return response, status


def create_app(hub: Any, *, max_content_length: int | None = None,
               authenticate: Callable[[str], Any] | None = None) -> Flask:
    """``authenticate`` turns a bearer token into a `hub.cases.access.Principal` (or raises
    `SecurityError`); by default the hub's token authority (`Hub.tokens`)."""
    app = Flask("hub")
    app.config["MAX_CONTENT_LENGTH"] = max_content_length or hub.settings.max_message_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["hub"] = hub
    app.extensions["hub.authenticate"] = authenticate or hub.tokens.verify_token

    @app.before_request
    def _correlation() -> None:
        g.correlation_id = request.headers.get("X-Correlation-Id") or str(uuid.uuid4())

    @app.after_request
    def _headers(response: Response) -> Response:
        _audit_rejection(hub, response)
        response.headers["X-Correlation-Id"] = g.get("correlation_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(errors.HubError)
    def _hub_error(error: errors.HubError) -> tuple[Response, int]:
        status = status_for(error)
        if status >= 500:
            log.error("request failed: %s", error.message, extra={"error_code": error.code})
        extra: dict[str, Any] = {}
        if isinstance(error, errors.SchemaViolation):
            extra["fields"] = error.errors
        if error.details.get("reason"):
            extra["reason"] = error.details["reason"]
        return problem(status, error.code, error.message, **extra)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        code = {413: "message.too_large", 415: "request.unsupported_media_type",
                404: "not_found", 405: "method_not_allowed"}.get(error.code or 400, "request.invalid")
        return problem(error.code or 400, code, error.description or error.name)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return problem(500, "internal.unexpected", "unexpected error; it was logged with the"
                       " correlation id of this response")

    from hub.appointments.book import AppointmentBook
    from hub.web.appointments import blueprint as appointments
    from hub.web.staff.api import StaffDesk, blueprint as backoffice
    from hub.web.staff.pages import blueprint as staff_pages
    from hub.web import health
    from hub.web.admin import init_app as init_admin
    from hub.web.inbound.health import blueprint as inbound
    from hub.web.applicant.api import blueprint as intake
    from hub.web.applicant.pages import blueprint as pages
    from hub.cases.submissions import Submissions

    app.extensions["hub.cases.submissions"] = Submissions(hub)
    app.extensions["hub.desk"] = StaffDesk(hub)
    app.extensions["hub.appointments.book"] = AppointmentBook(hub)
    app.register_blueprint(intake)
    app.register_blueprint(backoffice)
    app.register_blueprint(appointments)
    app.register_blueprint(inbound)
    app.register_blueprint(pages)      # applicant pages: /<lang>/...
    app.register_blueprint(staff_pages)  # back-office pages: /staff/<lang>/...
    health.init_app(app)  # /healthz, /readyz, /metrics
    init_admin(app)       # /admin console and /admin/api
    return app


#: Methods whose refusal is audited whatever the status (they carry input); other methods only
#: when the caller was refused as unauthenticated or unauthorized.
_INPUT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _audit_rejection(hub: Any, response: Response) -> None:
    rejection = g.pop("rejection", None)
    if rejection is None or not 400 <= response.status_code < 500:
        return  # a server error is not a refusal of the input (it is logged instead)
    if request.method not in _INPUT_METHODS and response.status_code not in (401, 403):
        return
    from hub.evidence.audit.log import AuditRecord

    try:
        body = request.get_data(cache=True) if response.status_code != 413 else b""
    except Exception:  # noqa: BLE001 - an unreadable body is still a refusal to record
        body = b""
    component = g.get("audit_component") or f"web.{request.blueprint or 'app'}"
    try:
        with hub.store.transaction() as session:
            hub.audit.append(session, AuditRecord(
                # Caller-chosen values are cut to their columns: a refusal must always record.
                action="rejected", actor=(g.get("audit_actor") or "anonymous")[:128],
                component=component[:64], outcome=rejection["code"][:64],
                message_id=(request.headers.get("X-Road-Id") or "")[:36] or None,
                correlation_id=(g.get("correlation_id") or "")[:64] or None,
                digest=hashlib.sha256(body).hexdigest() if body else None,
                details={"status": response.status_code, "method": request.method,
                         "path": request.path, "size": request.content_length,
                         **({"reason": rejection["reason"]} if "reason" in rejection else {})}))
    except Exception:  # noqa: BLE001 - the refusal stands even if its record cannot be written
        log.exception("could not audit the rejection of %s %s", request.method, request.path)
