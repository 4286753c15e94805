"""Thin applicant pages: the services, a form per service, the confirmation, the tracking page.

Server-rendered HTML in the seven languages (``/<lang>/...``; Arabic right to left), over the
same use cases as the intake API (`hub.cases.submissions.Submissions`) and the same sources of
truth: each form is rendered from the service's intake schema (`hub.web.forms.form_fields`), its
labels and field errors come from the Babel catalogs (`hub.i18n.translate`)::

    GET  /                                      -> /<best language>/
    GET  /<lang>/                               the services offered
    GET  /<lang>/services/<service>             the service's form (and what it asks for)
    POST /<lang>/services/<service>             submit: 303 to the confirmation, or the form
                                                again with an error summary (422); "add another"
                                                and "remove" of a list re-show the form (200)
    GET  /<lang>/services/<service>/received    the confirmation (reference, tracking secret)
    GET  /<lang>/track                          the tracking form (reference, secret)
    POST /<lang>/track                          the case's status, reason and history

The patterns are the GOV.UK Design System's: an error summary at the top linking to each field
in error, each field marked (``aria-invalid``) and described by its message
(``aria-describedby``); post, redirect, get, so a reload never submits again; and a form
carries an idempotency token, so the same form sent twice opens one case (the second
submission shows the first case's confirmation, `Submissions.submit`). The confirmation's
reference and secret travel from the POST to the confirmation page in a short-lived, signed,
HttpOnly cookie, never in a URL. Documents are uploaded with the form (multipart) and stored
like the API's attachments; lists (a licence's categories, transit airports) get "add another"
and "remove" buttons up to the schema's ``maxItems``, without JavaScript.
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from babel import Locale
from flask import (Blueprint, Response, abort, current_app, redirect, render_template,
                   request, url_for)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hub.cases.posts import all_posts
from hub.config import LANGUAGES
from hub.errors import MessageTooLarge, SchemaViolation, SecurityError, UnsupportedMediaType
from hub.i18n.translate import NATIVE_NAMES, Translator, best_language
from hub.web.forms import (FormField, applying_groups, form_fields, localize_errors,
                           required_marks)
from hub.web.guide import service_guide, service_title
from hub.web.labels import template_helpers
from hub.web import parts
from hub.web.negotiation import page_translator

blueprint = Blueprint("pages", __name__, template_folder="templates")

_INDEX = re.compile(r"^\d+$")
#: The form field carrying the idempotency token, and what a token looks like.
TOKEN_FIELD = "submission"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
#: The cookie carrying the confirmation from the POST to the confirmation page.
RECEIPT_COOKIE = "hub_receipt"
RECEIPT_SECONDS = 30 * 60



def _render(template: str, t: Translator, status: int = 200, **context: Any) -> tuple[str, int]:
    path = request.path
    switch = {code: re.sub(r"^/[a-z]{2}(?=/|$)", f"/{code}", path) for code in LANGUAGES}
    return render_template(f"pages/{template}", t=t, _=t, pgettext=t.pgettext,
                           languages=NATIVE_NAMES, switch=switch, **template_helpers(t),
                           **context), status


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
def service_form(lang: str, service: str) -> Any:
    t = page_translator(lang)
    definition = parts.catalog().get(service)  # 404 for an unknown service
    if _inbound_only(definition):
        abort(404)
    form = form_fields(definition.intake_schema)
    values: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    token = secrets.token_urlsafe(24)
    status = 200
    if request.method == "POST":
        # The form carries its documents: room for each, beyond the hub's message limit.
        settings = parts.settings()
        documents = sum(1 for f in _leaves(form) if f.kind == "document")
        request.max_content_length = (settings.max_message_bytes
                                      + documents * settings.max_attachment_bytes)
        values = {k: v for k, v in request.form.items()
                  if v.strip() and not k.startswith("_") and k != TOKEN_FIELD}
        sent = request.form.get(TOKEN_FIELD, "")
        token = sent if _TOKEN.match(sent) else token
        counts = _counts(form, values)
        adding, removing = request.form.get("_add"), request.form.get("_remove")
        if adding in counts:
            counts[adding] += 1
        elif removing and removing.rpartition(".")[0] in counts:
            values, counts = _remove_entry(values, counts, removing)
        elif not (adding or removing):
            try:
                data = _request_data(form, values)
                opened = parts.submissions().submit(
                    service, data, language=lang, token=token if _TOKEN.match(sent) else None)
            except SchemaViolation as exc:
                errors = form_errors(exc.errors, form, values, definition.intake_schema, t)
                status = 422
            else:
                response = redirect(url_for("pages.received", lang=lang, service=service), 303)
                _set_receipt(response, {"service": service,
                                        "reference": opened.case.reference,
                                        "secret": opened.secret})
                return response
    else:
        counts = _counts(form, {})
    return _render("form.html", t, status=status, service=service,
                   title=service_title(definition, t), guide=service_guide(definition, t),
                   form=form, values=values, errors=errors, counts=counts, token=token,
                   failed={e["anchor"]: e for e in errors}, marks=required_marks(form, values),
                   marks_groups=applying_groups(form, values), generic=_generic,
                   posts=_posts(t), countries=_countries(t))


def _generic(path: str) -> str:
    """A list entry's field named by the first entry (``licence.categories.0.code``)."""
    return re.sub(r"\.\d+(?=\.|$)", ".0", path)


# -- the confirmation ----------------------------------------------------------------------------

def _receipts() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="hub.applicant-receipt")


def _set_receipt(response: Response, receipt: dict[str, str]) -> None:
    response.set_cookie(RECEIPT_COOKIE, _receipts().dumps(receipt), max_age=RECEIPT_SECONDS,
                        path="/", httponly=True, samesite="Strict", secure=request.is_secure)


def _receipt() -> dict[str, str] | None:
    raw = request.cookies.get(RECEIPT_COOKIE)
    if not raw:
        return None
    try:
        value = _receipts().loads(raw, max_age=RECEIPT_SECONDS)
    except BadSignature:
        return None
    return value if isinstance(value, dict) else None


@blueprint.get("/<lang>/services/<service>/received")
def received(lang: str, service: str) -> Any:
    """The confirmation of the request just sent (GOV.UK's confirmation page): without a
    receipt of this browser for this service, the tracking page instead."""
    t = page_translator(lang)
    definition = parts.catalog().get(service)
    receipt = _receipt()
    if receipt is None or receipt.get("service") != service:
        return redirect(url_for("pages.track", lang=lang))
    try:
        view = parts.submissions().track(
            receipt["reference"], receipt["secret"], audit=False)
    except SecurityError:  # the case is gone (retention): nothing to confirm any more
        return redirect(url_for("pages.track", lang=lang))
    return _render("submitted.html", t, title=service_title(definition, t),
                   reference=view.reference, secret=receipt["secret"],
                   status_label=t.status(view.status))


# -- the form's data -----------------------------------------------------------------------------

def _posts(t: Translator) -> list[tuple[str, list[tuple[str, str]]]]:
    """The consular posts grouped by country, names in the page's language, sorted as read."""
    by_country: dict[str, list[tuple[str, str]]] = {}
    for post in all_posts():
        by_country.setdefault(post.country_in(t.language), []).append(
            (post.code, post.city_in(t.language)))
    return [(country, sorted(posts, key=lambda p: p[1]))
            for country, posts in sorted(by_country.items())]


def _countries(t: Translator) -> list[tuple[str, str]]:
    """Every country (ISO 3166 alpha-2) by its name in the page's language."""
    names = Locale.parse(t.language).territories
    return sorted(((code, name) for code, name in names.items()
                   if len(code) == 2 and code.isalpha() and code not in ("EU", "EZ", "UN",
                                                                         "ZZ", "QO")),
                  key=lambda c: c[1])


def _counts(form: FormField, values: dict[str, str]) -> dict[str, int]:
    """Entries to show for each list of the form: those filled in, at least one (or the
    schema's minimum), at most the schema's maximum."""
    counts: dict[str, int] = {}
    for field in _lists(form):
        filled = {int(key[len(field.path) + 1:].split(".")[0]) for key in values
                  if key.startswith(field.path + ".")
                  and _INDEX.match(key[len(field.path) + 1:].split(".")[0])}
        wanted = max(1, field.min_items, max(filled) + 1 if filled else 0)
        counts[field.path] = min(wanted, field.max_items or wanted)
    return counts


def _lists(form: FormField) -> list[FormField]:
    return [f for f in form.walk() if f.kind == "list" and f.item is not None]


def _remove_entry(values: dict[str, str], counts: dict[str, int], entry: str
                  ) -> tuple[dict[str, str], dict[str, int]]:
    """The values without the list entry ``entry`` (``licence.categories.1``), the following
    entries moved up one place."""
    path, _, index_text = entry.rpartition(".")
    if not index_text.isdigit():
        return values, counts
    removed = int(index_text)
    kept: dict[str, str] = {}
    for key, value in values.items():
        rest = key[len(path) + 1:] if key.startswith(path + ".") else None
        head = rest.split(".")[0] if rest else None
        if head is None or not head.isdigit():
            kept[key] = value
        elif int(head) != removed:
            index = int(head) - (1 if int(head) > removed else 0)
            kept[f"{path}.{index}{rest[len(head):]}"] = value
    counts = dict(counts, **{path: max(1, counts[path] - 1)})
    return kept, counts


def form_errors(errors: list[dict[str, Any]], form: FormField, values: dict[str, str],
                schema: str, t: Translator) -> list[dict[str, Any]]:
    """The schema's errors as the form shows them: one per field the applicant can correct.
    An error about a whole group ("documents: required") becomes one error per required field
    of the group left empty, and each error names the element its summary entry links to."""
    leaves = {f.path: f for f in _leaves(form)}
    groups = {f.path: f for f in form.walk() if f.kind in ("group", "list")}
    expanded: list[dict[str, Any]] = []
    for error in errors:
        field = error["field"]
        if field in groups and error["code"] in ("required", "minItems", "minProperties"):
            marks = required_marks(form, {**values, field: "x"})
            inner = [p for p in sorted(marks, key=_form_order(form))
                     if p.startswith(field + ".") and p not in values]
            expanded.extend({"field": p, "code": "required"} for p in inner or [field])
        else:
            expanded.append(error)
    localized = localize_errors(expanded, schema, t)
    order = _form_order(form)
    seen: set[str] = set()
    out = []
    for error in sorted(localized, key=lambda e: order(e["field"])):
        if error["field"] in seen:
            continue
        seen.add(error["field"])
        target = error["field"] if _generic(error["field"]) in leaves else next(
            (p for p in sorted(leaves, key=order) if p.startswith(error["field"] + ".")),
            error["field"])
        out.append(dict(error, anchor=target))
    return out


def _form_order(form: FormField) -> Any:
    """A sort key putting paths in the order the form shows them."""
    positions = {f.path: i for i, f in enumerate(form.walk())}
    for field in _lists(form):
        for i, f in enumerate(field.item.walk() if field.item else ()):  # type: ignore[union-attr]
            positions.setdefault(f.path, positions.get(field.path, 0) + (i + 1) / 100)

    def key(path: str) -> tuple[float, str]:
        generic = re.sub(r"\.\d+(?=\.|$)", ".0", path)
        return positions.get(generic, positions.get(path.rsplit(".", 1)[0], 1e9)), path

    return key


def _request_data(form: FormField, values: dict[str, str]) -> dict[str, Any]:
    """The request as the intake schema wants it: nested objects and lists from the fields'
    dotted names, integers as numbers, uploaded documents stored and replaced by their
    reference; list entries left empty are dropped."""
    kinds = {f.path: f.kind for f in _leaves(form)}
    data: dict[str, Any] = {}
    for path, value in values.items():
        kind = kinds.get(re.sub(r"\.\d+(?=\.|$)", ".0", path))
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
    return _compact(data)


def _compact(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _compact(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_compact(v) for v in node if v is not None]
    return node


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


# -- tracking ------------------------------------------------------------------------------------

@blueprint.route("/<lang>/track", methods=["GET", "POST"])
def track(lang: str) -> tuple[str, int]:
    t = page_translator(lang)
    # What the form sends wins over the address the form was shown at (``?reference=``).
    source = request.form if request.method == "POST" else request.args
    reference = (source.get("reference") or "").strip().upper()
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

