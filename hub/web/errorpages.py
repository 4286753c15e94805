"""Error pages for people, problem documents for programs.

A refusal or an unknown address under a page (``/<lang>/...``, ``/staff/...``, the console)
answers an HTML page in the page's language, saying what happened and where to go next
(GOV.UK's "page not found" and "there is a problem with the service" patterns); the API, the
agencies' endpoints and the probes keep answering JSON problems (`hub.web.problems`). The app
factory's error handlers ask `wants_page` first. Refusals are noted for the audit as the
problems are.
"""
from __future__ import annotations

from flask import render_template, request, url_for

from hub.config import LANGUAGES
from hub.i18n.translate import NATIVE_NAMES, translator
from hub.web.labels import template_helpers
from hub.web.negotiation import language as negotiated_language
from hub.web.problems import note_rejection

#: Paths answered by programs: always JSON problems.
PROGRAM_PREFIXES = ("/api/", "/admin/api", "/inbound/", "/metrics", "/healthz", "/readyz")

#: What each status tells a person: a heading, and what to do next (English message ids).
PAGES = {
    400: ("The request could not be read", "Go back to the page, check what you entered and"
          " send it again."),
    403: ("You cannot open this page", "This page is not open to you. Go back to the list of"
          " services."),
    404: ("Page not found", "If you typed the address, check it is correct. If you pasted it,"
          " check you copied all of it."),
    405: ("Page not found", "If you typed the address, check it is correct. If you pasted it,"
          " check you copied all of it."),
    409: ("The case has changed", "Open the case again to see its status."),
    413: ("What you sent is too large", "Send smaller documents (PDF, JPEG or PNG), then try"
           " again."),
    415: ("This type of file is not accepted", "Send a PDF, JPEG or PNG file."),
    500: ("Sorry, there is a problem with the service", "Try again later. What you sent has"
          " not been lost if you received a case reference."),
    503: ("Sorry, the service is unavailable", "Try again in a few minutes."),
}


def wants_page() -> bool:
    """Whether this request is a person's (a page or the console) rather than a program's."""
    if request.path.startswith(PROGRAM_PREFIXES):
        return False
    return request.accept_mimetypes.best != "application/json"


def page_language() -> str:
    """The language the page's address names (``/fr/...``, ``/staff/ar/...``), else the one
    the browser asks for; the console speaks English."""
    parts = [p for p in request.path.split("/") if p]
    if parts and parts[0] == "staff":
        parts = parts[1:]
    if parts and parts[0] in LANGUAGES:
        return parts[0]
    if request.path.startswith("/admin"):
        return "en"
    return negotiated_language()


def error_page(status: int, code: str) -> tuple[str, int]:
    """The HTML page answering ``status`` (``code``: the refusal's stable code, audited)."""
    note_rejection(status, code)
    t = translator(page_language())
    heading, message = PAGES.get(status) or PAGES[500 if status >= 500 else 400]
    staff = request.path.startswith("/staff")
    home = (url_for("staff.cases", lang=t.language) if staff
            else url_for("pages.services", lang=t.language))
    switch = {code_: (f"/staff/{code_}/cases" if staff else f"/{code_}/")
              for code_ in LANGUAGES}
    return render_template("pages/error.html", t=t, _=t, pgettext=t.pgettext,
                           languages=NATIVE_NAMES, switch=switch, status=status,
                           heading=t(heading), message=t(message), home=home,
                           home_label=t("Cases") if staff else t("Consular services"),
                           **template_helpers(t)), status
