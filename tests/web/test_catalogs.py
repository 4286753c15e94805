"""The Babel catalogs of the seven languages are complete: every message the pages and the API
show (templates, field errors, statuses, reasons, the guide, every field label and choice of the
intake schemas) has a translation in every catalog, with the same placeholders."""
from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from hub.web import catalogs
from hub.config import LANGUAGES
from hub.i18n.translate import RTL, translator


def test_required_messages_come_from_templates_code_and_data():
    needed = catalogs.required()
    assert (None, "Track your case") in needed                  # a page template
    assert (None, "Some fields need your attention.") in needed  # the intake API
    assert ("error", "{field}: this field is required.") in needed
    assert ("status", "certificate_returned") in needed          # a state machine
    assert ("reason", "licence_not_authentic") in needed         # a route's outcome
    assert ("reason", "deemed_served_after_refusal") in needed   # a deadline
    assert (None, "CNIE number") in needed                       # an intake schema's field
    assert ("value", "married") in needed                        # one of its choices
    assert (None, "Remote passport application") in needed       # a flagged service too


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_is_complete(language):
    missing = catalogs.missing(language)
    assert not missing, f"{language} lacks {len(missing)} translation(s), e.g. {missing[:5]}" \
        " (python -m hub.catalogs adds them to the catalog)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language):
    path = catalogs._translations() / language / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=language)
    for message in catalog:
        if message.id and message.string:
            assert (set(re.findall(r"\{\w+\}", message.id))
                    == set(re.findall(r"\{\w+\}", message.string))), (language, message.id)


def test_languages_read_differently():
    labels = {language: translator(language).status("more_information_requested")
              for language in LANGUAGES}
    assert len(set(labels.values())) == len(LANGUAGES), labels
    assert labels["en"] == "More information requested"
    assert translator("ar").direction == "rtl" and RTL == {"ar"}
