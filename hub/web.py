"""The web front: one Flask app, built by `create_app`, with a blueprint per audience.

    app = create_app(hub)          # hub: a `hub.runtime.Hub`
    app.test_client().get("/healthz")

Blueprints: ``intake`` (applicants: submit and track), and those added by later parts (inbound
agency endpoints, back-office API and its staff pages under ``/staff``, admin console). Every `HubError` becomes a JSON problem with a
precise status; nothing else escapes as a 500 without being logged with its correlation id.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

from flask import Flask, Response, g, jsonify, request
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


def problem(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    body = {"error": {"code": code, "message": message, **extra},
            "correlation_id": getattr(g, "correlation_id", None)}
    return jsonify(body), status


def create_app(hub: Any, *, max_content_length: int | None = None,
               authenticate: Callable[[str], Any] | None = None) -> Flask:
    """``authenticate`` turns a bearer token into a `hub.access.Principal` (or raises
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

    from hub.appointments import AppointmentBook
    from hub.appointments_api import blueprint as appointments
    from hub.backoffice import StaffDesk, blueprint as backoffice
    from hub.backoffice_pages import blueprint as staff_pages
    from hub import health
    from hub.admin import init_app as init_admin
    from hub.inbound import blueprint as inbound
    from hub.intake import blueprint as intake
    from hub.pages import blueprint as pages
    from hub.submissions import Submissions

    app.extensions["hub.submissions"] = Submissions(hub)
    app.extensions["hub.desk"] = StaffDesk(hub)
    app.extensions["hub.appointments"] = AppointmentBook(hub)
    app.register_blueprint(intake)
    app.register_blueprint(backoffice)
    app.register_blueprint(appointments)
    app.register_blueprint(inbound)
    app.register_blueprint(pages)      # applicant pages: /<lang>/...
    app.register_blueprint(staff_pages)  # back-office pages: /staff/<lang>/...
    health.init_app(app)  # /healthz, /readyz, /metrics
    init_admin(app)       # /admin console and /admin/api
    return app
