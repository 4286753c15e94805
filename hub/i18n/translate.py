"""Translations: the seven languages of the portal, from Babel catalogs loaded at runtime.

Catalogs are ``hub/i18n/translations/<lang>/LC_MESSAGES/messages.po``, read once with Babel (no
compiled ``.mo`` to keep in sync). Message ids are English text for sentences and labels, and
codes under a context for vocabularies that are data::

    t = translator("fr")
    t("Track your case")                      # 'Suivre votre dossier'
    t.pgettext("status", "rejected")          # 'Rejetée'
    t("{field}: this field is required.", field="CNIE")

Contexts: ``status`` and ``reason`` (from service definitions), ``value`` (enum codes of the
intake schemas), ``error`` (field-error codes), ``service`` (service names). A message missing
from a catalog falls back to English, then to the id itself; a test keeps every catalog complete.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from babel.messages.pofile import read_po

from hub.config import LANGUAGES

RTL = frozenset({"ar"})
SOURCE = "en"

#: Each language's own name, for the language switcher.
NATIVE_NAMES = {"ar": "العربية", "en": "English", "fr": "Français", "es": "Español",
                "it": "Italiano", "nl": "Nederlands", "de": "Deutsch"}

Key = tuple[str | None, str]


@lru_cache(maxsize=len(LANGUAGES))
def messages(language: str) -> dict[Key, str]:
    """``(context, msgid) -> msgstr`` for one language (translated, non-fuzzy entries only)."""
    if language not in LANGUAGES:
        raise KeyError(language)
    resource = resources.files("hub.i18n") / "translations" / language / "LC_MESSAGES" / "messages.po"
    if not resource.is_file():
        return {}
    with resource.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    found: dict[Key, str] = {}
    for message in catalog:
        if not message.id or message.fuzzy or not isinstance(message.id, str):
            continue
        if isinstance(message.string, str) and message.string:
            found[(message.context, message.id)] = message.string
    return found


@dataclass(frozen=True)
class Translator:
    language: str

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"

    def pgettext(self, context: str | None, message: str, **values: Any) -> str:
        key = (context, message)
        text = messages(self.language).get(key) or messages(SOURCE).get(key) or message
        return text.format(**values) if values else text

    def __call__(self, message: str, **values: Any) -> str:
        return self.pgettext(None, message, **values)

    def status(self, code: str) -> str:
        return self.pgettext("status", code)

    def reason(self, code: str | None) -> str | None:
        return None if code is None else self.pgettext("reason", code)

    def value(self, code: str) -> str:
        return self.pgettext("value", code)


def translator(language: str) -> Translator:
    return Translator(language if language in LANGUAGES else SOURCE)


def best_language(candidates: Iterable[str | None], default: str) -> str:
    """The first supported language among ``candidates`` (e.g. ``?lang``, a cookie), else
    ``default``."""
    for candidate in candidates:
        if candidate:
            code = candidate.strip().lower()[:2]
            if code in LANGUAGES:
                return code
    return default
