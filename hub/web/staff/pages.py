"""Back-office pages for consular staff: server-rendered HTML over the same use cases as the
back-office API (`hub.web.staff.api.StaffDesk`), in the seven languages (``/staff/<lang>/...``)::

    GET  /staff/                                   -> /staff/<best language>/cases
    GET  /staff/<lang>/sign-in   POST (token)      open a staff session
    POST /staff/<lang>/sign-out                    close it
    GET  /staff/<lang>/cases?q=&service=&status=&page=   the cases in the caller's scope; ``q``
                                                   a reference or an identity document's number
    GET  /staff/<lang>/cases/<reference>           status, history; contents for who may read
                                                   them (audited, as the API); the moves allowed
    POST /staff/<lang>/cases/<reference>/transitions     a move: reason code, signed outcome
                                                   document, the delivery record; a move that
                                                   ends the case first shows a confirmation
    GET  /staff/<lang>/cases/<reference>/documents/<id>  a document of the case (audited)

Each move offers the reasons its target status lists (``staff_reasons`` in the service
definition) and needs one when it lists any; a move to a final status (a rejection, an issued
attestation, a cancelled registration) is shown once more for confirmation (GOV.UK's "check
your answers"): nothing changes before the member of staff confirms it. Every label is
translated (`hub.web.labels`): agencies, operations, answers, who acted, posts, sizes; values
that read left to right (references, numbers, dates) stay so on the Arabic pages.

Staff sign in with the access token the API takes (``hub staff token``); a signed, HttpOnly
cookie limited to ``/staff`` then carries it and the session's CSRF token, and every request
verifies the token again, so its expiry (at most 8 hours) ends the session. Scope, allowed moves,
documents and audit are `StaffDesk`'s: the pages only choose what to show. Every form carries
the CSRF token, the sign-in form too (a cookie set when the form is shown).
"""
from __future__ import annotations

import hmac
import posixpath
import re
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import (Blueprint, Response, abort, current_app, g, redirect, render_template,
                   request, url_for)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hub.cases.access import STAFF_ROLES
from hub.cases.book import find_case
from hub.cases.staff import MAX_OFFSET, StaffDesk, reason_errors
from hub.config import LANGUAGES
from hub.errors import (AccessDenied, IllegalTransition, MessageTooLarge, SchemaViolation,
                        SecurityError, UnknownRoute, UnknownService, UnsupportedMediaType)
from hub.web.forms import FormField, field_label, form_fields, localize_errors
from hub.web.guide import service_title
from hub.web.labels import template_helpers
from hub.web.staff.reading import document_file_name, request_sections
from hub.web import parts
from hub.web.negotiation import page_translator  # one rule for the language in a page's URL
from hub.web.staff.answers import kept_answers, without_kept_answers
from hub.i18n.translate import NATIVE_NAMES, Translator, best_language, translator
from hub.store.models import AttachmentRow
from security.tokens import MAX_TTL, Principal

blueprint = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")

COOKIE = "hub_staff"
COOKIE_PATH = "/staff"
PAGE_SIZE = 25
PUBLIC = {"staff.home", "staff.sign_in"}


# -- the staff session -------------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="hub.staff-session")


def _cookie() -> dict[str, str]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        value = _serializer().loads(raw, max_age=MAX_TTL)
    except BadSignature:
        return {}
    return value if isinstance(value, dict) else {}


def _set_cookie(response: Response, value: dict[str, str], expires: datetime | None) -> None:
    max_age = MAX_TTL
    if expires is not None:
        max_age = max(0, min(MAX_TTL, int((expires - datetime.now(timezone.utc))
                                          .total_seconds())))
    response.set_cookie(COOKIE, _serializer().dumps(value), max_age=max_age, path=COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=request.is_secure)


def _signed_in() -> Principal | None:
    """The member of staff the session's token names, if it is still valid."""
    token = _cookie().get("token")
    if not token:
        return None
    try:
        principal = current_app.extensions["hub.authenticate"](token)
    except SecurityError:
        return None  # expired, revoked key, ...: sign in again
    return principal if principal.role in STAFF_ROLES else None


def _csrf_ok() -> bool:
    expected = _cookie().get("csrf", "")
    sent = request.form.get("csrf", "")
    return bool(expected) and bool(sent) and hmac.compare_digest(sent, expected)


def safe_next(target: str | None, lang: str) -> str:
    """Where to go after signing in: a back-office path of this site, never elsewhere."""
    fallback = url_for("staff.cases", lang=lang)
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    parts = urlsplit(target)
    # As the browser will resolve it: no way out of /staff/ through dot segments.
    path = posixpath.normpath(unquote(parts.path))
    if parts.scheme or parts.netloc or target.startswith("//") \
            or not (path + "/").startswith(COOKIE_PATH + "/"):
        return fallback
    return target


# -- rendering -----------------------------------------------------------------------------------


def _desk() -> StaffDesk:
    return parts.staff_desk()


def _render(template: str, t: Translator, status: int = 200, *, here: str | None = None,
            **context: Any) -> tuple[str, int]:
    """The page; ``here`` is its address for the language switcher (a form's answer is shown
    at the form's address, which only takes a POST)."""
    path = here or (request.full_path if request.query_string else request.path)
    switch = {code: re.sub(r"^/staff/[a-z]{2}(?=/|$|\?)", f"/staff/{code}", path)
              for code in LANGUAGES}
    return render_template(f"backoffice/{template}", t=t, _=t, pgettext=t.pgettext,
                           languages=NATIVE_NAMES, switch=switch,
                           principal=g.get("principal"), csrf=g.get("csrf", ""),
                           **template_helpers(t), **context), status


def _title(service: str, t: Translator) -> str:
    try:
        return service_title(parts.catalog().get(service), t)
    except UnknownService:  # no longer offered: its cases stay readable
        return service


@blueprint.url_value_preprocessor
def _language(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.lang = (values or {}).get("lang")


@blueprint.before_request
def _authenticate() -> Response | None:
    lang = g.get("lang") or parts.settings().default_language
    if lang not in LANGUAGES:
        abort(404)
    g.csrf = _cookie().get("csrf", "")
    if request.method == "POST":
        # Before the form is first read (the CSRF check): a move carries a signed document, so
        # room for one beyond the hub's message limit.
        settings = parts.settings()
        request.max_content_length = (settings.max_message_bytes
                                      + settings.max_attachment_bytes)
    if request.endpoint in PUBLIC:
        return None
    g.principal = _signed_in()
    if g.principal is None:
        # Back to this page after signing in; a form posted with an expired session is not
        # replayed: the list, to decide afresh.
        back = request.full_path if request.method == "GET" else None
        return redirect(url_for("staff.sign_in", lang=lang, next=back))
    if request.method == "POST" and not _csrf_ok():
        t = translator(lang)
        return Response(*_render("error.html", t, status=403, message=t(
            "The form has expired. Reload the page and try again.")))
    return None


@blueprint.errorhandler(AccessDenied)
def _outside_scope(error: AccessDenied) -> tuple[str, int]:
    t = translator(g.get("lang") or "en")
    return _render("error.html", t, status=403,
                   message=t("This case is outside what your role may see or change."))


@blueprint.errorhandler(UnknownRoute)
def _unknown(error: UnknownRoute) -> tuple[str, int]:
    t = translator(g.get("lang") or "en")
    return _render("error.html", t, status=404, message=t("No case or document by that name."))


# -- sign-in -------------------------------------------------------------------------------------

@blueprint.get("/")
def home() -> Response:
    lang = best_language([request.accept_languages.best_match(LANGUAGES)],
                         parts.settings().default_language)
    return redirect(url_for("staff.cases", lang=lang))


@blueprint.route("/<lang>/sign-in", methods=["GET", "POST"])
def sign_in(lang: str) -> Any:
    t = page_translator(lang)
    target = safe_next(request.values.get("next"), lang)
    if request.method == "GET":
        if g.csrf:  # a session (or a form shown earlier): its CSRF token serves this form
            return _render("sign_in.html", t, next=target, error=None)
        # The form's CSRF token: a pre-session cookie (no access token in it yet).
        g.csrf = secrets.token_urlsafe(16)
        page, status = _render("sign_in.html", t, next=target, error=None)
        response = Response(page, status)
        _set_cookie(response, {"csrf": g.csrf}, None)
        return response
    if not _csrf_ok():
        return _render("sign_in.html", t, status=403, next=target, error=t(
            "The form has expired. Reload the page and try again."))
    token = (request.form.get("token") or "").strip()
    try:
        principal = current_app.extensions["hub.authenticate"](token) if token else None
    except SecurityError:
        principal = None
    if principal is None or principal.role not in STAFF_ROLES:
        return _render("sign_in.html", t, status=401, next=target, error=t(
            "This access token does not open the back-office (unknown, expired or not a"
            " staff role)."))
    response = redirect(target)
    # A new CSRF token with the new session: one seen before signing in is worth nothing.
    _set_cookie(response, {"token": token, "csrf": secrets.token_urlsafe(16)},
                principal.expires_at)
    return response


@blueprint.post("/<lang>/sign-out")
def sign_out(lang: str) -> Response:
    response = redirect(url_for("staff.sign_in", lang=lang))
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


# -- cases ---------------------------------------------------------------------------------------

@blueprint.get("/<lang>/")
def start(lang: str) -> Response:
    return redirect(url_for("staff.cases", lang=lang))


@blueprint.get("/<lang>/cases")
def cases(lang: str) -> tuple[str, int]:
    t = page_translator(lang)
    catalog = parts.catalog()
    service = request.args.get("service") or None
    status = request.args.get("status") or None
    search = (request.args.get("q") or "").strip()[:64] or None
    page = request.args.get("page", default=1, type=int) or 1
    page = max(1, min(page, MAX_OFFSET // PAGE_SIZE))
    # One more than a page: whether there is a next one.
    found = _desk().list_cases(g.principal, status=status, service=service, search=search,
                               limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    statuses = sorted({s for d in catalog for s in d.states}, key=t.status)
    services = sorted(((d.name, service_title(d, t)) for d in catalog), key=lambda s: s[1])
    return _render("cases.html", t, cases=[dict(c, title=_title(c["service"], t))
                                           for c in found[:PAGE_SIZE]],
                   page=page, more=len(found) > PAGE_SIZE, chosen_service=service,
                   chosen_status=status, search=search or "",
                   services=services, statuses=statuses)


def _record_groups(schema: dict[str, Any]) -> list[FormField]:
    """The parts of the case data staff record with a move, as form groups: the top-level
    objects of the intake schema with an ``outcome`` choice naming statuses (a judicial
    document's ``delivery``: served in person, at home, refused, not found). The schema says
    which moves record what; nothing here is specific to a service."""
    return [group for group in form_fields(schema).children if group.kind == "group"
            and any(c.name == "outcome" and c.choices for c in group.children)]


def _record_group(schema: dict[str, Any], to: str) -> FormField | None:
    """The group a move to ``to`` records, if any (see `_record_groups`)."""
    for group in _record_groups(schema):
        if any(c.name == "outcome" and to in c.choices for c in group.children):
            return group
    return None


def record_fields(schema: dict[str, Any]) -> list[FormField]:
    """The fields staff fill in for those records (the outcome is the move itself)."""
    return [c for group in _record_groups(schema) for c in group.children
            if c.name != "outcome"]


def _case_page(lang: str, reference: str, *, status: int = 200, error: str | None = None,
               errors: list[dict[str, Any]] | None = None, values: dict[str, str] | None = None,
               moved: str | None = None) -> tuple[str, int]:
    t = page_translator(lang)
    detail = _desk().case(g.principal, reference)  # scope, and the audit of a read of contents
    moves = []
    schema = _schema(detail["service"])
    for move in detail.get("next", []):
        group = _record_group(schema, move["status"]) if schema else None
        moves.append(dict(move, record=group and [c for c in group.children
                                                  if c.name != "outcome"],
                          record_name=group and group.name))
    documents = [dict(d, label=_document_label(detail["service"], d, t),
                      file_name=document_file_name(detail["reference"], d))
                 for d in detail.get("documents", [])]
    sections = request_sections(schema, without_kept_answers(detail.get("data") or {}), t,
                                documents) \
        if detail["contents"] and schema else []
    return _render("case.html", t, status=status, case=detail, documents=documents,
                   here=url_for("staff.case", lang=lang, reference=detail["reference"]),
                   title=_title(detail["service"], t), moves=moves, sections=sections,
                   kept_answers=_kept(detail, t), error=error, errors=errors or [],
                   values=values or {}, moved=moved)


def _kept(detail: dict[str, Any], t: Translator) -> list[Any]:
    try:
        return kept_answers(parts.catalog().get(detail["service"]), detail, t)
    except UnknownService:
        return []


def _schema(service: str) -> str | None:
    try:
        return parts.catalog().get(service).intake_schema
    except UnknownService:  # no longer offered: its cases stay readable, as recorded
        return None


def _document_label(service: str, document: dict[str, Any], t: Translator) -> str:
    """What a document is: the intake field it was uploaded for, or the move it was issued
    with (``outcome.<status>``)."""
    field = document.get("field") or ""
    if field.startswith("outcome."):
        return t.status(field.removeprefix("outcome."))
    schema = _schema(service)
    return field_label(schema, field, t) if field and schema else t("Document")


@blueprint.get("/<lang>/cases/<reference>")
def case(lang: str, reference: str) -> tuple[str, int]:
    return _case_page(lang, reference.strip().upper(), moved=request.args.get("moved"))


@blueprint.post("/<lang>/cases/<reference>/transitions")
def transition(lang: str, reference: str) -> Any:
    """A move. One that ends the case is shown for confirmation first (its signed document,
    if any, is stored then and named in the confirmation form); the move itself happens only
    on the confirmed post."""
    t = page_translator(lang)
    reference = reference.strip().upper()
    to = request.form.get("to", "")
    expected = request.form.get("from") or None
    reason = request.form.get("reason") or None
    confirmed = request.form.get("confirm") == "yes"
    values = {k: v for k, v in request.form.items() if k != "csrf"}
    settings = parts.settings()
    desk = _desk()
    try:
        definition, current = _move_context(reference)
        if definition is not None and current == expected \
                and to in definition.next_statuses(current, "staff"):
            # Checked before the confirmation, so the member of staff confirms a complete move.
            refused = reason_errors(definition, to, reason)
            if refused:
                raise SchemaViolation("the move needs a reason that fits it", errors=refused)
        document = request.form.get("outcome_document_ref") or None
        upload = request.files.get("outcome_document")
        if upload is not None and upload.filename:
            content = upload.read(settings.max_attachment_bytes + 1)
            if len(content) > settings.max_attachment_bytes:
                raise MessageTooLarge("too large", limit=settings.max_attachment_bytes)
            # The browser declares a type from the file's name; the content decides.
            document = desk.upload_outcome(g.principal, content, None).reference
        final = definition is not None and current == expected \
            and to in definition.next_statuses(current, "staff") and definition.is_final(to)
        if final and not confirmed:
            if definition.states[to].outcome_document and document is None:
                raise SchemaViolation("this move issues a signed document", errors=[
                    {"field": "outcome_document", "code": "required",
                     "message": "attach the signed document"}])
            return _confirmation(lang, reference, to, values, document, definition)
        desk.move(g.principal, reference, to, reason=reason, expected=expected,
                  updates=_record(reference, to, values), outcome_document=document)
    except IllegalTransition as exc:
        message = (t("The case has changed since you opened it: check its status and try"
                     " again.") if exc.code == "case.stale"
                   else t("This move is not allowed from the case's current status."))
        return _case_page(lang, reference, status=409, error=message, values=values)
    except SchemaViolation as exc:
        schema = _schema_of(reference)
        return _case_page(lang, reference, status=422, values=values,
                          error=t("The move was not recorded."),
                          errors=_localized(exc.errors, schema, t, to))
    except (UnsupportedMediaType, MessageTooLarge):
        return _case_page(lang, reference, status=422, values=values,
                          error=t("The move was not recorded."), errors=[{
                              "field": "outcome_document", "anchor": f"document-{to}",
                              "message": t("The signed document must be a PDF file within the"
                                           " size limit.")}])
    return redirect(url_for("staff.case", lang=lang, reference=reference, moved=to))


def _confirmation(lang: str, reference: str, to: str, values: dict[str, str],
                  document: str | None, definition: Any) -> tuple[str, int]:
    """The move as it will be made, to confirm or cancel (nothing is changed yet)."""
    t = page_translator(lang)
    detail = _desk().case(g.principal, reference)
    kept = {k: v for k, v in values.items()
            if k not in ("confirm", "outcome_document_ref") and k != "outcome_document"}
    group = _record_group(definition.intake_schema, to)
    record = [(pgettext_record(t, f.name), kept.get(f"{to}.{f.path}", ""))
              for f in (group.children if group else []) if f.name != "outcome"
              and kept.get(f"{to}.{f.path}")]
    return _render("confirm.html", t, case=detail, title=_title(detail["service"], t), to=to,
                   reason=values.get("reason") or None, values=kept, document=document,
                   record=record,
                   here=url_for("staff.case", lang=lang, reference=detail["reference"]))


def pgettext_record(t: Translator, name: str) -> str:
    return t.pgettext("record", name)


def _move_context(reference: str) -> tuple[Any, str | None]:
    """The case's service definition and status, once the caller may change the case (else
    `AccessDenied`, as `StaffDesk.move` would answer), for the checks made before a move."""
    with parts.store().session() as session:
        found = find_case(session, reference)
        if found is None:
            return None, None
        if not g.principal.can_change_case(found.post, found.reference):
            raise AccessDenied(f"case {found.reference} is outside the caller's scope")
        try:
            return parts.catalog().get(found.service), found.status
        except UnknownService:
            return None, found.status


def _schema_of(reference: str) -> dict[str, Any] | None:
    with parts.store().session() as session:
        found = find_case(session, reference)
        return parts.catalog().get(found.service).intake_schema if found else None


def _localized(errors: list[dict[str, Any]], schema: dict[str, Any] | None,
               t: Translator, to: str) -> list[dict[str, Any]]:
    """Each error with its message in the page's language and the id of the field of the
    move's form it is about (``anchor``: the error summary links there)."""
    out = []
    for error in errors:
        field = error.get("field")
        if field == "outcome_document":
            out.append(dict(error, anchor=f"document-{to}",
                            message=t("Attach the signed document (PDF) for this move.")))
        elif field == "reason":
            out.append(dict(error, anchor=f"reason-{to}",
                            message=t("Choose the reason for this move.")))
        elif schema is not None:
            out.extend(dict(e, anchor=f"{to}.{e['field']}")
                       for e in localize_errors([error], schema, t))
        else:
            out.append(dict(error, anchor=f"move-{to}"))
    return out


def _record(reference: str, to: str, values: dict[str, str]) -> dict[str, Any] | None:
    """The case data the move records (see `_record_group`), from the form's fields."""
    schema = _schema_of(reference)
    group = _record_group(schema, to) if schema is not None else None
    if group is None:
        return None
    record: dict[str, Any] = {"outcome": to}
    for field in group.children:
        value = (values.get(f"{to}.{field.path}") or "").strip()
        if field.name != "outcome" and value:
            record[field.name] = value
    return {group.name: record}


@blueprint.get("/<lang>/cases/<reference>/documents/<attachment>")
def document(lang: str, reference: str, attachment: str) -> Response:
    page_translator(lang)
    reference = reference.strip().upper()
    content, content_type = _desk().document(g.principal, reference, attachment)
    name = document_file_name(reference, {"field": _field_of(attachment),
                                          "content_type": content_type})
    return Response(content, mimetype=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _field_of(attachment: str) -> str | None:
    with parts.store().session() as session:
        row = session.get(AttachmentRow, attachment)
        return row.field if row is not None else None
