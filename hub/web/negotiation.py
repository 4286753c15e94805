"""What a web caller asked for: the language of the answer, and a JSON body read safely.

Shared by every blueprint (applicant API and pages, staff API and pages, appointments), so the
rule is one: ``?lang``, then ``Accept-Language``, then the deployment's default language
(``HUB_DEFAULT_LANGUAGE``, put in ``app.config`` by `hub.web.app.create_app`). A page's language
is the one in its URL, and an unknown one is a 404.
"""
from __future__ import annotations

from typing import Any

from flask import abort, current_app, request

from hub.config import LANGUAGES
from hub.envelope import parse_json
from hub.errors import MalformedEnvelope, UnsupportedMediaType
from hub.i18n.translate import Translator, best_language, translator

#: ``app.config`` key of the deployment's default language.
DEFAULT_LANGUAGE = "HUB_DEFAULT_LANGUAGE"


def language(default: str | None = None) -> str:
    """``?lang``, else the best of ``Accept-Language``, else ``default`` or the deployment's."""
    return best_language([request.args.get("lang"),
                          request.accept_languages.best_match(LANGUAGES)],
                         default or current_app.config.get(DEFAULT_LANGUAGE, "en"))


def page_translator(lang: str) -> Translator:
    """The translator of a page whose URL names ``lang`` (404 for a language not offered)."""
    if lang not in LANGUAGES:
        abort(404)
    return translator(lang)


def json_body() -> dict[str, Any]:
    """The request's JSON object (415 if not JSON, 400 if not an object or not readable)."""
    if not request.is_json:
        raise UnsupportedMediaType("send the request as application/json")
    document = parse_json(request.get_data(), what="request body")
    if not isinstance(document, dict):
        raise MalformedEnvelope("the request body must be a JSON object")
    return document
