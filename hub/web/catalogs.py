"""What the Babel catalogs must translate, and keeping them in step with the code and the data.

Every message the pages and the API show comes from one of these sources, and `required` lists
them all as ``(context, msgid)``:

- the page templates (``hub/templates/pages``) and the modules that translate literals
  (``_("...")``, ``t("...")``, ``pgettext("ctx", "...")``), extracted with Babel;
- the field-error messages (`hub.web.forms.ERROR_MESSAGES`, context ``error``) and the titles of
  the API's refusals (`hub.web.problems.PROBLEM_TITLES`, context ``problem``);
- the service definitions: statuses (``status``), reasons of their routes and deadlines
  (``reason``), the answer fields their steps keep (``answer``), the reference guide (title,
  summary, who, eligibility, fees note, steps);
- the intake schemas: every field's title and description, every choice (``value``);
- the reasons the hub's own code records (`CODE_REASONS`) and those staff give for each move
  (``staff_reasons`` of the definitions' statuses);
- the back-office: its templates (``hub/web/staff/templates/backoffice``), the staff roles
  (``role``), the fields of the records staff make with a move (``record``), the agencies
  (``agency``, by code), their operations (``operation``) and answers (``outcome``), the
  statuses of an exchange (``exchange``), who acted (``actor``), who a case waits for
  (``waiting``) and sizes (``size``), see `hub.web.labels`.

``python -m hub.web.catalogs`` writes ``hub/i18n/translations/messages.pot``, adds what is
missing to each language's ``messages.po`` (empty, for a translator to fill in) and drops what
nothing shows any more; the test suite fails while any catalog lacks a translation (tests/web/test_catalogs.py).
"""
from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Iterable

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from hub.cases.access import STAFF_ROLES
from hub.config import LANGUAGES
from hub.i18n.translate import Key, messages
from hub.services import ServiceCatalog
from hub.web.errorpages import PAGES
from hub.web.forms import ERROR_MESSAGES, form_fields
from hub.web.labels import ACTORS, EXCHANGE_STATUSES, SIZE_UNITS, WAITING_FOR
from hub.web.problems import PROBLEM_TITLES
from hub.web.staff.pages import record_fields

#: Reasons recorded by the hub's own code rather than by a service definition.
CODE_REASONS = ("submitted", "route_started", "route_complete", "information_supplied",
                "withdrawn_by_applicant")
#: Modules that translate literal strings, besides the templates (relative to ``hub/web``).
PYTHON_SOURCES = ("applicant/pages.py", "applicant/api.py", "staff/pages.py", "staff/reading.py",
                  "labels.py", "errorpages.py", "problems.py")
#: Template folders (relative to ``hub/web``): the applicant pages and the staff's pages.
TEMPLATE_FOLDERS = ("applicant/templates/pages", "staff/templates/backoffice")
KEYWORDS = {"_": None, "_html": None, "t": None, "gettext": None, "pgettext": ((1, "c"), 2)}


def _root() -> Path:
    return Path(str(resources.files("hub.web")))


def _translations() -> Path:
    return Path(str(resources.files("hub.i18n"))) / "translations"


def extracted() -> set[Key]:
    """Literal messages of the page templates and of `PYTHON_SOURCES`."""

    root = _root()
    found: set[Key] = set()
    files = [("jinja2", path) for folder in TEMPLATE_FOLDERS
             for path in sorted((root / folder).glob("*.html"))]
    files += [("python", root / name) for name in PYTHON_SOURCES]
    for method, path in files:
        method_name = "jinja2.ext:babel_extract" if method == "jinja2" else "python"
        for _line, message, _comments, context in extract_from_file(
                method_name, str(path), keywords=KEYWORDS):
            found.add((context, message if isinstance(message, str) else message[0]))
    return found


def from_data(catalog: object | None = None) -> set[Key]:
    """Messages of the service definitions (every service, flagged or not) and their schemas."""

    if catalog is None:
        # Every service, flagged ones included: a flag switched on must not show raw codes.
        every = ServiceCatalog.load()._all.values()  # noqa: SLF001 - the catalog's own data
        catalog = ServiceCatalog.load(features={d.feature_flag for d in every if d.feature_flag})

    found: set[Key] = {("error", m) for m in ERROR_MESSAGES.values()}
    found |= {("problem", m) for m in PROBLEM_TITLES.values()}  # every API refusal's title
    found |= {("reason", r) for r in CODE_REASONS}
    found |= {(None, text) for page in PAGES.values() for text in page}  # error pages
    found |= {("role", r) for r in STAFF_ROLES}  # who is signed in to the back-office
    found |= {("exchange", s) for s in EXCHANGE_STATUSES}
    found |= {("actor", a) for a in ACTORS}
    found |= {("waiting", w) for w in WAITING_FOR}
    found |= {("size", u) for u in SIZE_UNITS}
    for definition in catalog:  # type: ignore[attr-defined]
        found |= {("status", s) for s in definition.states}
        found |= {("reason", r) for info in definition.states.values()
                  for r in info.staff_reasons}
        for deadline in definition.deadlines:
            found.add(("reason", deadline.reason or f"deadline_{deadline.status}"))
        if definition.route is not None:
            for step in definition.route.steps:
                found |= {("reason", o.reason) for o in step.outcomes.values()
                          if getattr(o, "reason", None)}
                # Answer fields the step keeps, shown to staff (`hub.web.staff.answers`).
                found |= {("answer", name) for name in step.keep}
                found |= {("agency", step.agency), ("operation", step.operation)}
                found |= {("outcome", name) for name in step.outcomes}
        guide = definition.guide
        if guide is not None:
            texts: Iterable[str | None] = (guide.title, guide.summary, guide.who,
                                           *guide.eligibility, *guide.steps, guide.fees.note)
            found |= {(None, text) for text in texts if text}
        # What staff record with a move (a judicial document's delivery), context ``record``.
        found |= {("record", f.name) for f in record_fields(definition.intake_schema)}
        for field in _fields(form_fields(definition.intake_schema)):
            found |= {(None, text) for text in (field.title, field.description) if text}
            found |= {("value", str(choice)) for choice in field.choices}
            # Examples in words are translated (a place); codes and numbers are not.
            found |= {("example", e) for e in field.examples if " " in e}
    return found


def _fields(root: object) -> Iterable[object]:
    for field in root.walk():  # type: ignore[attr-defined]
        yield field
        if field.item is not None:
            yield from _fields(field.item)


def required() -> set[Key]:
    return extracted() | from_data()


def missing(language: str) -> list[Key]:
    """Required messages without a translation in ``language``'s catalog."""

    messages.cache_clear()
    have = messages(language)
    return sorted((k for k in required() if k not in have), key=lambda k: (k[0] or "", k[1]))


def update(root: Path | None = None) -> dict[str, int]:
    """Write ``messages.pot``, add the missing messages to every language's catalog and drop
    the ones no longer shown; returns how many each language lacks."""


    base = root / "translations" if root is not None else _translations()
    template = Catalog(project="econsulat-hub", fuzzy=False)
    for context, message in sorted(required(), key=lambda k: (k[0] or "", k[1])):
        template.add(message, context=context)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "messages.pot", "wb") as handle:
        write_po(handle, template, omit_header=False, width=100)
    lacking: dict[str, int] = {}
    for language in LANGUAGES:
        path = base / language / "LC_MESSAGES" / "messages.po"
        if path.is_file():
            with open(path, "rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            catalog = Catalog(locale=language, project="econsulat-hub", fuzzy=False)
        wanted = {(m.id, m.context) for m in template if m.id}
        present = {(m.id, m.context) for m in catalog if m.id}
        for msgid, context in present - wanted:  # nothing shows it any more
            catalog.delete(msgid, context=context)
        for msgid, context in wanted - present:
            catalog.add(msgid, context=context)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            write_po(handle, catalog, omit_header=False, width=100, sort_output=True)
        lacking[language] = sum(1 for m in catalog if m.id and not m.string)
    return lacking


if __name__ == "__main__":
    for language, count in update().items():
        print(f"{language}: {count} message(s) to translate", file=sys.stderr)
