"""Refusals, the same for every blueprint: the HTTP status of each error, the JSON problem
document, and the marks that let the app audit every refusal.

Blueprints import these helpers from here, never from the module holding the app factory
(`hub.web.app`), which imports the blueprints.
"""
from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify

from hub import errors
from hub.errors import SchemaViolation
from hub.i18n.translate import translator
from hub.web.forms import localize_errors
from hub.web.negotiation import language as negotiated_language


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


def problem(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    """The JSON problem answering a refusal: a stable ``code``, a precise ``message``, and a
    ``title`` in the caller's language; the refusal is noted for its audit record."""
    note_rejection(status, code, reason=extra.get("reason"))
    language = negotiated_language()
    title = PROBLEM_TITLES.get(status) or PROBLEM_TITLES[500 if status >= 500 else 400]
    body = {"error": {"code": code, "title": translator(language).pgettext("problem", title),
                      "message": message, **extra},
            "correlation_id": getattr(g, "correlation_id", None)}
    response = jsonify(body)
    response.headers["Content-Language"] = language
    return response, status


def field_errors_response(error: SchemaViolation) -> tuple[Response, int]:
    """422 with every field error localized; labels come from the intake schema the view set
    in ``g.intake_schema``."""
    t = translator(negotiated_language())
    fields = localize_errors(error.errors, g.get("intake_schema"), t)
    return problem(422, error.code, t("Some fields need your attention."), fields=fields)
