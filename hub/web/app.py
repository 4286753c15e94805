"""The web front: one Flask app, built by `create_app`, with a blueprint per audience.

    app = create_app(hub)          # hub: a `hub.runtime.Hub`
    app.test_client().get("/healthz")

`create_app` is the web front's composition step: it asks the `Hub` for the use cases and parts
each blueprint uses and gives them to the blueprints by name (`hub.web.parts`,
`hub.web.inbound.agencies.InboundParts`, `hub.web.admin.parts`, `hub.web.health`); no view
reaches for the hub itself.

Blueprints: ``intake`` (applicants: submit and track), and those added by later parts (inbound
agency endpoints, back-office API and its staff pages under ``/staff``, admin console). Every
`HubError` becomes a JSON problem with a precise status for programs, and an HTML page in the
page's language for people (`hub.web.errorpages`); nothing else escapes as a 500 without being
logged with its correlation id.

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
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry
from werkzeug.exceptions import HTTPException

from hub import errors
from hub.cases.access import Authenticate
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.runtime import Hub
from hub.store import Store
from hub.web import health, parts
from hub.web.admin import init_app as init_admin
from hub.web.admin.auth import OperatorGate
from hub.web.admin.service import AdminConsole
from hub.web.applicant.api import blueprint as intake
from hub.web.applicant.pages import blueprint as pages
from hub.web.appointments import blueprint as appointments
from hub.web.inbound import init_app as init_inbound
from hub.web.inbound.agencies import InboundParts
from hub.web.metrics import HubCollector, hub_registry
from hub.web.errorpages import error_page, wants_page
from hub.web.negotiation import DEFAULT_LANGUAGE
from hub.web.problems import problem, status_for
from hub.web.staff.api import blueprint as backoffice
from hub.web.staff.pages import blueprint as staff_pages

log = logging.getLogger(__name__)


def create_app(hub: Hub, *, max_content_length: int | None = None,
               authenticate: Authenticate | None = None) -> Flask:
    """``authenticate`` turns a bearer token into a `hub.cases.access.Principal` (or raises
    `SecurityError`); by default the hub's token authority (`Hub.tokens`)."""
    app = Flask("hub")
    app.config["MAX_CONTENT_LENGTH"] = max_content_length or hub.settings.max_message_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.config[DEFAULT_LANGUAGE] = hub.settings.default_language
    app.extensions["hub.authenticate"] = authenticate or hub.tokens.verify_token
    store, audit = hub.store, hub.audit

    @app.before_request
    def _correlation() -> None:
        g.correlation_id = request.headers.get("X-Correlation-Id") or str(uuid.uuid4())

    @app.after_request
    def _headers(response: Response) -> Response:
        _audit_rejection(store, audit, response)
        response.headers["X-Correlation-Id"] = g.get("correlation_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(errors.HubError)
    def _hub_error(error: errors.HubError) -> tuple[Response, int]:
        status = status_for(error)
        if status >= 500:
            log.error("request failed: %s", error.message, extra={"error_code": error.code})
        if wants_page():  # a person at a page: an HTML page in the page's language
            return error_page(status, error.code)  # type: ignore[return-value]
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
        if wants_page():
            return error_page(error.code or 400, code)  # type: ignore[return-value]
        return problem(error.code or 400, code, error.description or error.name)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error in %s %s", request.method, request.path)
        if wants_page():
            return error_page(500, "internal.unexpected")  # type: ignore[return-value]
        return problem(500, "internal.unexpected", "unexpected error; it was logged with the"
                       " correlation id of this response")

    parts.install(app, settings=hub.settings, store=store, catalog=hub.catalog,
                  submissions=hub.submissions(), desk=hub.staff_desk(),
                  appointments=hub.appointment_book())
    app.register_blueprint(intake)
    app.register_blueprint(backoffice)
    app.register_blueprint(appointments)
    init_inbound(app, _inbound_parts(hub))  # agencies calling in: Health, Justice
    app.register_blueprint(pages)      # applicant pages: /<lang>/...
    app.register_blueprint(staff_pages)  # back-office pages: /staff/<lang>/...
    health.init_app(app, _readiness(hub), _metrics(hub))  # /healthz, /readyz, /metrics
    init_admin(app, AdminConsole(hub.store, hub.agencies, hub.catalog, hub.audit,
                                 hub.queue_inspector(), on_change=hub.relay.wake,
                                 maintenance=hub.settings.maintenance),
               OperatorGate(hub.tokens.verify_token, hub.settings),
               keys_dir=hub.settings.keys_dir)  # /admin console and /admin/api
    return app


def _inbound_parts(hub: Hub) -> InboundParts:
    return InboundParts(
        agencies=hub.agencies, agency_tokens=hub.settings.agency_tokens, trust=hub.keys.trust,
        signing=hub.signing, new_connector=hub.new_connector, store=hub.store, cases=hub.cases,
        audit=hub.audit, seal=hub.seal, node_id=hub.settings.node_id,
        max_message_bytes=hub.settings.max_message_bytes, on_change=hub.relay.wake)


def _readiness(hub: Hub) -> health.Readiness:
    settings = hub.settings
    checks = health.standard_checks(hub.store, hub.open_broker, hub.topology.cases_queue,
                                     settings)
    return health.Readiness(hub.store, checks, timeout=settings.readyz_timeout,
                            ttl=settings.readyz_cache_seconds, maintenance=settings.maintenance)


def _metrics(hub: Hub) -> CollectorRegistry:
    # The inspector uncached: the collector caches the whole scrape.
    return hub_registry(HubCollector(hub.store, hub.agencies, hub.queue_inspector(ttl=0),
                                     ttl=hub.settings.metrics_cache_seconds))


#: Methods whose refusal is audited whatever the status (they carry input); other methods only
#: when the caller was refused as unauthenticated or unauthorized.
_INPUT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _audit_rejection(store: Store, audit: AuditLog, response: Response) -> None:
    rejection = g.pop("rejection", None)
    if rejection is None or not 400 <= response.status_code < 500:
        return  # a server error is not a refusal of the input (it is logged instead)
    if request.method not in _INPUT_METHODS and response.status_code not in (401, 403):
        return
    try:
        body = request.get_data(cache=True) if response.status_code != 413 else b""
    except Exception:  # noqa: BLE001 - an unreadable body is still a refusal to record
        body = b""
    component = g.get("audit_component") or f"web.{request.blueprint or 'app'}"
    try:
        with store.transaction() as session:
            audit.append(session, AuditRecord(
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
