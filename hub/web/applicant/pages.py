"""Thin applicant pages: the services, a form per service, the confirmation, the tracking page.

Server-rendered HTML in the seven languages (``/<lang>/...``; Arabic right to left), over the
same use cases as the intake API (`hub.cases.submissions.Submissions`) and the same sources of truth:
each form is rendered from the service's intake schema (`hub.web.forms.form_fields`), its labels and
field errors come from the Babel catalogs (`hub.i18n.translate`)::

    GET  /                             -> /<best language>/
    GET  /<lang>/                      the services offered
    GET  /<lang>/services/<service>    the service's form (and what it asks for)
    POST /<lang>/services/<service>    submit: the confirmation (reference, tracking secret), or
                                       the form again with every field error localized (422)
    GET  /<lang>/track                 the tracking form (reference, secret)
    POST /<lang>/track                 the case's status and history

Documents are uploaded with the form (multipart) and stored like the API's attachments. The
tracking secret travels in a form body, never in a URL. Lists (e.g. a licence's categories) get
one entry on the page; the API takes any number.
"""
from __future__ import annotations

import re
from typing import Any

from flask import (Blueprint, Response, abort, redirect, render_template,
                   request, url_for)

from hub.config import LANGUAGES
from hub.errors import MessageTooLarge, SchemaViolation, SecurityError, UnsupportedMediaType
from hub.web.forms import FormField, form_fields, localize_errors
from hub.web.guide import service_guide, service_title
from hub.i18n.translate import NATIVE_NAMES, Translator, best_language
from hub.cases.posts import all_posts
from hub.web import parts
from hub.web.negotiation import page_translator

blueprint = Blueprint("pages", __name__, template_folder="templates")

#: Fields whose value is a choice among the consular posts.
POST_FIELDS = {"post"}
_INDEX = re.compile(r"^\d+$")



def _render(template: str, t: Translator, status: int = 200, **context: Any) -> tuple[str, int]:
    path = request.path
    switch = {code: re.sub(r"^/[a-z]{2}(?=/|$)", f"/{code}", path) for code in LANGUAGES}
    return render_template(f"pages/{template}", t=t, _=t, pgettext=t.pgettext,
                           languages=NATIVE_NAMES, switch=switch, **context), status


@blueprint.get("/")
def home() -> Response:
    lang = best_language([request.accept_languages.best_match(LANGUAGES)],
                         parts.settings().default_language)
    return redirect(url_for("pages.services", lang=lang))


@blueprint.get("/<lang>/")
def services(lang: str) -> tuple[str, int]:
    t = page_translator(lang)
    offered = [(d.name, service_title(d, t), t(d.guide.summary) if d.guide else "")
               for d in parts.catalog() if not _inbound_only(d)]
    return _render("services.html", t, services=offered)


def _inbound_only(definition: Any) -> bool:
    """Services an agency opens (judicial documents): nothing for an applicant to fill in."""
    return definition.guide is not None and definition.guide.channel == "inbound"


@blueprint.route("/<lang>/services/<service>", methods=["GET", "POST"])
def service_form(lang: str, service: str) -> tuple[str, int]:
    t = page_translator(lang)
    definition = parts.catalog().get(service)  # 404 for an unknown service
    if _inbound_only(definition):
        abort(404)
    form = form_fields(definition.intake_schema)
    values: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    if request.method == "POST":
        # The form carries its documents: room for each, beyond the hub's message limit.
        settings = parts.settings()
        documents = sum(1 for f in _leaves(form) if f.kind == "document")
        request.max_content_length = (settings.max_message_bytes
                                      + documents * settings.max_attachment_bytes)
        values = {k: v for k, v in request.form.items() if v.strip()}
        try:
            data = _request_data(form, values)
            opened = parts.submissions().submit(service, data,
                                                                      language=lang)
        except SchemaViolation as exc:
            errors = localize_errors(exc.errors, definition.intake_schema, t)
        else:
            return _render("submitted.html", t, status=201,
                           title=service_title(definition, t),
                           reference=opened.case.reference, secret=opened.secret,
                           status_label=t.status(opened.case.status))
    guide = service_guide(definition, t)
    return _render("form.html", t, status=422 if errors else 200, service=service,
                   title=service_title(definition, t), guide=guide, form=form, values=values,
                   errors=errors, failed={e["field"] for e in errors},
                   posts=all_posts(), post_fields=POST_FIELDS)


def _request_data(form: FormField, values: dict[str, str]) -> dict[str, Any]:
    """The request as the intake schema wants it: nested objects and lists from the fields'
    dotted names, integers as numbers, uploaded documents stored and replaced by their
    reference."""
    kinds = {f.path: f.kind for f in _leaves(form)}
    data: dict[str, Any] = {}
    for path, value in values.items():
        kind = kinds.get(path)
        if kind is None or kind == "document":
            continue  # not a field of this form
        if kind == "integer" and value.strip().lstrip("-").isdigit():
            _set(data, path, int(value))
        else:
            _set(data, path, value.strip())
    submissions = parts.submissions()
    refused: list[dict[str, str]] = []
    for path, upload in request.files.items():
        if kinds.get(path) != "document" or not upload.filename:
            continue
        content = upload.read(parts.settings().max_attachment_bytes + 1)
        try:
            # The browser declares a type from the file's name; the content decides.
            stored = submissions.upload(content, declared_type=None)
        except MessageTooLarge as exc:
            refused.append({"field": path, "code": "document_too_large", "message": exc.message})
        except UnsupportedMediaType as exc:
            refused.append({"field": path, "code": "document_type", "message": exc.message})
        else:
            _set(data, path, stored.reference)
    if refused:
        raise SchemaViolation("documents refused", errors=refused)
    return data


def _leaves(form: FormField) -> list[FormField]:
    found: list[FormField] = []
    for child in form.children:
        found.extend(_leaves(child) if child.kind == "group" else [child])
        if child.kind == "list" and child.item is not None:
            found.extend(_leaves(child.item) if child.item.kind == "group" else [child.item])
    return found


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    """`hub.mapping.set_path`, with numeric parts as list positions (``licence.categories.0``)."""
    parts = path.split(".")
    current: Any = document
    for part, following in zip(parts, parts[1:]):
        container: Any = [] if _INDEX.match(following) else {}
        if isinstance(current, list):
            index = int(part)
            while len(current) <= index:
                current.append(None)
            if current[index] is None:
                current[index] = container
            current = current[index]
        else:
            current = current.setdefault(part, container)
    last = parts[-1]
    if isinstance(current, list):
        index = int(last)
        while len(current) <= index:
            current.append(None)
        current[index] = value
    else:
        current[last] = value


@blueprint.route("/<lang>/track", methods=["GET", "POST"])
def track(lang: str) -> tuple[str, int]:
    t = page_translator(lang)
    reference = (request.values.get("reference") or "").strip().upper()
    if request.method == "GET":
        return _render("track.html", t, reference=reference, case=None, error=None)
    secret = (request.form.get("secret") or "").strip()
    try:
        view = parts.submissions().track(reference, secret)
    except SecurityError:
        return _render("track.html", t, status=404, reference=reference, case=None,
                       error=t("No case matches this reference and secret."))
    return _render("track.html", t, reference=reference, error=None, case=view,
                   title=service_title(parts.catalog().get(view.service), t))
