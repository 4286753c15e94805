"""What the pages show for the hub's codes: agencies, operations, exchanges and their answers,
who acted, sizes, consular posts, dates; in the page's language and never as a bare code.

Every label comes from the Babel catalogs under a context (``agency``, ``operation``,
``exchange``, ``outcome``, ``actor``, ``waiting``, ``size``; `hub.web.catalogs` lists them all),
posts and countries from `hub.cases.posts` (CLDR names). Values that read left to right whatever
the page's direction (numbers, references, identity numbers, e-mails, phone numbers, dates) are
isolated with ``dir="ltr"`` (`ltr`, `when`), so an Arabic page shows ``+33612345678`` and
``2026-12-07 14:24 UTC`` as written, not reordered::

    t = translator("fr")
    agency(t, "health")                  # 'Ministère de la Santé'
    actor(t, "post_staff:u-madrid")      # Markup('Poste consulaire · <bdi dir="ltr">u-madrid</bdi>')
    size(t, 125)                         # '125 o'
    when("2026-12-07T14:24:05+00:00")   # Markup('<time datetime=... dir="ltr">2026-12-07 14:24 UTC</time>')
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from babel.numbers import format_decimal
from markupsafe import Markup, escape

from hub.cases.access import STAFF_ROLES
from hub.cases.posts import get_post
from hub.i18n.translate import Translator

#: Statuses of an exchange with an agency (`hub.store.models.ExchangeRow.status`).
EXCHANGE_STATUSES = ("queued", "acknowledged", "answered", "dead_lettered")
#: Who acts on a case besides staff (their role) and agencies (their name): history actors.
ACTORS = ("applicant", "hub", "hub:deadlines", "operator")
#: Who a case waits for (`hub.cases.staff` ``waiting_for``; agencies are named instead).
WAITING_FOR = ("staff", "applicant", "hub")
#: Units of a size, by power of 1024: the message ids of context ``size``.
SIZE_UNITS = ("{size} B", "{size} KB", "{size} MB")


def ltr(value: Any) -> Markup:
    """``value`` isolated as left-to-right text (a number, a reference, an e-mail, a phone)."""
    return Markup('<bdi dir="ltr">{}</bdi>').format(value)


#: A value that reads left to right inside a sentence: a word holding a digit (a reference,
#: a date, a number, a phone number, an identity number) or an e-mail address.
LTR_VALUE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
                       r"|(?:[A-Za-z+][A-Za-z0-9+/:.,\-]*)?[0-9](?:[A-Za-z0-9+/:.,\-]*[A-Za-z0-9])?")


def isolate(text: Any) -> Markup:
    """A sentence (a translated hint, an error message) with the values in it isolated left to
    right, so ``+212``, ``AB123456`` or ``2026-12-07`` keep their order in an Arabic sentence."""
    if isinstance(text, Markup):
        return text
    escaped = str(escape(text))
    return Markup(LTR_VALUE.sub(lambda m: f'<bdi dir="ltr">{m.group(0)}</bdi>', escaped))


def agency(t: Translator, code: str | None) -> str:
    return t.pgettext("agency", code) if code else ""


def operation(t: Translator, code: str | None) -> str:
    return t.pgettext("operation", code) if code else ""


def exchange_status(t: Translator, code: str | None) -> str:
    return t.pgettext("exchange", code) if code else ""


def outcome(t: Translator, code: str | None) -> str:
    """An agency's answer (``cleared``, ``granted``, ``authentic``...)."""
    return t.pgettext("outcome", code) if code else ""


def actor(t: Translator, who: str | None) -> Markup:
    """Who made a move: the applicant, the hub, an agency by name, a member of staff by role
    with their identifier isolated (identifiers are codes, not words to translate)."""
    if not who:
        return Markup("")
    if who in ACTORS:
        return Markup(escape(t.pgettext("actor", who)))
    kind, _, rest = who.partition(":")
    if kind == "agency":
        return Markup(escape(agency(t, rest)))
    if kind == "hub":
        return Markup(escape(t.pgettext("actor", "hub")))
    if kind in STAFF_ROLES or kind == "staff":
        role = t.pgettext("role", kind if kind in STAFF_ROLES else "post_staff")
        return Markup("{} · {}").format(role, ltr(rest)) if rest else Markup(escape(role))
    if kind in ("admin", "operator"):
        return Markup(escape(t.pgettext("actor", "operator")))
    return ltr(who)


def waiting_for(t: Translator, summary: dict[str, Any]) -> str:
    """Who a case waits for, as `hub.cases.staff.StaffDesk` summarizes it: the agencies by name,
    else the post, the applicant or the hub; nothing for a finished case."""
    if summary.get("awaiting"):
        return ", ".join(agency(t, a) for a in summary["awaiting"])
    who = summary.get("waiting_for")
    return t.pgettext("waiting", who) if who in WAITING_FOR else ""


def number(t: Translator, value: float | int) -> str:
    return format_decimal(value, locale=t.language)


def size(t: Translator, value: int | None) -> Markup:
    """A size in bytes, rounded to a unit people read (``125 B``, ``1,2 MB``), isolated."""
    if value is None:
        return Markup("")
    amount: float = float(value)
    unit = 0
    while amount >= 1024 and unit < len(SIZE_UNITS) - 1:
        amount /= 1024
        unit += 1
    shown = format_decimal(round(amount, 1) if unit else int(amount), locale=t.language)
    return ltr(t.pgettext("size", SIZE_UNITS[unit], size=shown))


def post(t: Translator, code: str | None) -> str:
    """The consular post as ``City (Country)`` in the page's language (the code if unknown)."""
    if not code:
        return ""
    found = get_post(code)
    return found.name(t.language) if found is not None else code


def when(value: datetime | str | None, *, seconds: bool = False) -> Markup:
    """A moment as ``2026-12-07 14:24 UTC`` in a ``<time>`` element, left to right; the same
    in every language (the ISO order is read the same way everywhere, and no month name)."""
    if value is None or value == "":
        return Markup("")
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return Markup('<time datetime="{}" dir="ltr">{} UTC</time>').format(
        moment.isoformat(timespec="seconds").replace("+00:00", "Z"), shown)


def date(value: str | None) -> Markup:
    """A calendar date (``2026-12-07``), isolated left to right."""
    return Markup('<time datetime="{0}" dir="ltr">{0}</time>').format(value) if value \
        else Markup("")


def template_helpers(t: Translator) -> dict[str, Any]:
    """The helpers above, bound to a page's translator, for a template's context."""
    return {"ltr": ltr, "when": when, "date": date, "isolate": isolate,
            # A translated sentence whose placeholders hold markup (e.g. an isolated value).
            "_html": lambda message, **values: Markup(escape(t(message))).format(**values),
            "agency_label": lambda code: agency(t, code),
            "operation_label": lambda code: operation(t, code),
            "exchange_label": lambda code: exchange_status(t, code),
            "outcome_label": lambda code: outcome(t, code),
            "actor_label": lambda who: actor(t, who),
            "waiting_label": lambda summary: waiting_for(t, summary),
            "size_label": lambda value: size(t, value),
            "post_label": lambda code: post(t, code)}
