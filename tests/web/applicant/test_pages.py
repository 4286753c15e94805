"""The applicant pages (server-rendered, seven languages), through the Flask test client.

The browser test (test_pages_browser.py) drives the same pages in headless Chromium."""
from __future__ import annotations

import io
import re

import pytest

from sqlalchemy import func, select

from connectors.narsa import register
from hub.config import LANGUAGES
from hub.demo.scenarios import licence_request
from hub.i18n.translate import translator
from hub.store.models import CaseRow

from webkit import PDF


def _html(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def test_home_sends_to_the_best_language(client):
    response = client.get("/", headers={"Accept-Language": "nl-BE,nl;q=0.9"})
    assert response.status_code == 302 and response.location.endswith("/nl/")


@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_render_in_every_language(client, language):
    direction = "rtl" if language == "ar" else "ltr"
    for path in ("/", "/services/driving_licence_authentication",
                 "/services/repatriation_of_remains", "/track"):
        response = client.get(f"/{language}{path}")
        assert response.status_code == 200, path
        html = _html(response)
        assert f'<html lang="{language}" dir="{direction}">' in html
    # Labels come from the catalogs (English is the source language).
    form = _html(client.get(f"/{language}/services/consular_registration_new"))
    if language != "en":
        assert ">CNIE number<" not in form and "Track your case" not in form


def test_french_form_names_fields_and_choices_in_french(client):
    html = _html(client.get("/fr/services/consular_registration_new"))
    assert "Numéro de CNIE" in html and "Marié(e)" in html and "Envoyer la demande" in html
    assert 'name="person.cnie"' in html and 'type="file"' in html
    # Services an agency opens have no applicant form.
    assert client.get("/fr/services/judicial_documents").status_code == 404
    assert client.get("/xx/").status_code == 404


def summary(html: str) -> dict[str, tuple[str, str]]:
    """The error summary: field -> (the id its link points to, the message)."""
    block = html.split('id="error-summary"')[1].split("</div>")[0]
    return {field: (target, re.sub(r"<[^>]+>", "", message)) for field, target, message in
            re.findall(r'<li class="error" data-field="([^"]+)"><a href="#([^"]+)">(.*?)</a></li>',
                       block)}


def described(html: str, element_id: str) -> tuple[bool, list[str]]:
    """Whether the form control ``element_id`` is marked invalid, and the texts describing it."""
    tag = re.search(rf'<(?:input|select|textarea)[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert tag, f"no form control with id {element_id}"
    invalid = 'aria-invalid="true"' in tag.group(0)
    ids = re.search(r'aria-describedby="([^"]+)"', tag.group(0))
    texts = [re.sub(r"<[^>]+>", "", re.search(rf'id="{re.escape(i)}">(.*?)</span>', html)
                    .group(1)) for i in (ids.group(1).split() if ids else [])]
    return invalid, texts


def test_errors_are_localized_and_name_the_field(client):
    response = client.post("/es/services/driving_licence_authentication",
                           data={"holder.cnie": "bad"}, content_type="multipart/form-data")
    assert response.status_code == 422
    by_field = {field: message for field, (_, message) in summary(_html(response)).items()}
    assert "Titular del permiso › Número de CNIE: el formato no es válido (ejemplo:" \
        in by_field["holder.cnie"]
    assert by_field["post"] == "Oficina consular: este campo es obligatorio."
    assert 'aria-invalid="true"' in _html(response)


def test_the_error_summary_links_to_every_failing_field_marked_and_described(client):
    """GOV.UK's error summary: an empty submit names each required field (not whole groups such
    as "Documents"), each link leads to its field, which is marked invalid and described by the
    same message."""
    response = client.post("/fr/services/driving_licence_authentication", data={},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    html = _html(response)
    assert "<title>Erreur" in html and "Il y a un problème" in html
    found = summary(html)
    expected = {"post", "licence.number", "licence.categories.0.code", "holder.cnie",
                "holder.last_name", "holder.first_name", "holder.birth_date",
                "requesting_authority.name", "requesting_authority.country", "applicant.email",
                "applicant.phone", "documents.licence_front", "documents.licence_back",
                "documents.cnie_copy"}
    assert set(found) == expected
    assert "documents" not in found and "holder" not in found  # no error names a whole group
    for field, (target, message) in found.items():
        invalid, texts = described(html, target)
        assert invalid, field
        assert message in texts, (field, texts)
    # The summary lists the fields in the form's order.
    assert list(found)[:2] == ["post", "licence.number"]


def test_optional_lists_are_not_shown_as_required_and_grow_up_to_their_maximum(client):
    html = _html(client.get("/fr/services/repatriation_of_remains"))
    label = re.search(r'<label for="transport.transit_airports.0">(.*?)</label>', html)
    text = re.sub(r"<[^>]+>", "", label.group(1)) if label else ""
    assert text.startswith("Aéroports de transit") and not text.endswith("*"), text
    assert "(facultatif)" in html.split('id="group-transport.transit_airports"')[1][:200]
    # "Add another" shows one more entry, keeping what was typed; "remove" takes one away.
    more = client.post("/fr/services/repatriation_of_remains", data={
        "transport.transit_airports.0": "CDG", "_add": "transport.transit_airports"},
        content_type="multipart/form-data")
    assert more.status_code == 200
    page = _html(more)
    assert 'id="transport.transit_airports.1"' in page and 'value="CDG"' in page
    assert 'id="remove-transport.transit_airports.1"' in page
    fewer = client.post("/fr/services/repatriation_of_remains", data={
        "transport.transit_airports.0": "CDG", "transport.transit_airports.1": "MAD",
        "_remove": "transport.transit_airports.0"}, content_type="multipart/form-data")
    page = _html(fewer)
    assert 'id="transport.transit_airports.1"' not in page
    assert re.search(r'id="transport.transit_airports.0" value="MAD"', page.replace("\n", " ")) \
        or 'value="MAD"' in page
    # A list of at most four entries offers no fifth.
    full = client.post("/fr/services/repatriation_of_remains", data={
        **{f"transport.transit_airports.{i}": code for i, code in
           enumerate(("CDG", "MAD", "LIS", "AMS"))}}, content_type="multipart/form-data")
    assert 'id="add-transport.transit_airports"' not in _html(full)


def test_optional_sections_mark_their_fields_required_only_once_they_apply(client):
    def marked(html: str, field: str) -> bool:
        return bool(re.search(rf'<label for="{re.escape(field)}">[^\n]*?\*</label>', html))

    empty = _html(client.get("/en/services/repatriation_of_remains"))
    assert not marked(empty, "deceased.other_id.number")
    assert marked(empty, "deceased.last_name")
    started = _html(client.post("/en/services/repatriation_of_remains", data={
        "deceased.other_id.kind": "residence_card"}, content_type="multipart/form-data"))
    assert marked(started, "deceased.other_id.number")
    assert "deceased.other_id.number" in summary(started)


def test_posts_countries_and_examples_are_in_the_pages_language(client):
    html = _html(client.get("/ar/services/repatriation_of_remains"))
    assert "مدريد" in html and 'label="إسبانيا"' in html   # Madrid, Spain
    assert "Madrid (Spain)" not in html and "· ES-MAD" not in html
    french = _html(client.get("/fr/services/repatriation_of_remains"))
    assert "Séville" in french and 'label="Espagne"' in french
    example = translator("fr").pgettext("example", "Casablanca Mohammed V airport")
    assert example != "Casablanca Mohammed V airport" and example in french
    licence = _html(client.get("/fr/services/driving_licence_authentication"))
    shown = re.search(r'id="licence.number-example">[^<]*<bdi dir="ltr">([^<]+)</bdi>', licence)
    assert shown, "the licence number has an example"
    assert register.lookup(shown.group(1))[0] == "AUTHENTIC"  # NARSA's own format


def test_unknown_pages_answer_an_html_page_in_the_pages_language(client):
    response = client.get("/fr/services/nope")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = _html(response)
    assert '<html lang="fr" dir="ltr">' in html and "Page introuvable" in html
    arabic = client.get("/ar/nothing/here")
    assert arabic.status_code == 404 and 'dir="rtl"' in _html(arabic)
    # The API keeps its problem documents.
    api = client.get("/api/v1/services/nope")
    assert api.status_code == 404 and api.get_json()["error"]["code"]


def _licence_form() -> dict:
    data = licence_request("authentic", serial=300001)
    return {
        "post": data["post"], "licence.number": data["licence"]["number"],
        "licence.categories.0.code": "B", "licence.categories.0.issued_on": "2015-06-01",
        "holder.cnie": "AB123456", "holder.last_name": "Alaoui", "holder.first_name": "Sara",
        "holder.birth_date": "1990-02-03", "requesting_authority.name": "DGT Madrid",
        "requesting_authority.country": "ES", "applicant.email": "sara@example.org",
        "applicant.phone": "+34612345678",
        **{f"documents.{name}": (io.BytesIO(PDF), f"{name}.pdf", "application/pdf")
           for name in ("licence_front", "licence_back", "cnie_copy")},
    }


def _submit(client, lang: str = "ar", token: str | None = None, **changes):
    """Post the licence form; the confirmation page it redirects to (reference, secret)."""
    form = {**_licence_form(), **changes}
    if token:
        form["submission"] = token
    response = client.post(f"/{lang}/services/driving_licence_authentication", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 303, re.findall(r'class="error"[^>]*>(.*?)</li>',
                                                   _html(response))
    assert response.location.endswith(f"/{lang}/services/driving_licence_authentication/received")
    page = client.get(response.location)
    assert page.status_code == 200
    html = _html(page)
    return (re.search(r'id="reference" dir="ltr">([^<]+)<', html).group(1),
            re.search(r'id="secret" dir="ltr">([^<]+)<', html).group(1))


def test_submit_then_track_with_the_secret(client):
    reference, secret = _submit(client)
    assert reference.startswith("DLA-")

    denied = client.post("/fr/track", data={"reference": reference, "secret": "wrong"})
    assert denied.status_code == 404
    assert "Aucun dossier ne correspond" in _html(denied) and secret not in _html(denied)

    tracked = _html(client.post("/fr/track", data={"reference": reference, "secret": secret}))
    assert reference in tracked
    statuses = re.findall(r'<tr data-status="([^"]+)">', tracked)
    assert statuses[0] == "submitted"
    assert "Déposée" in tracked  # the history, in French


def test_the_same_form_sent_twice_opens_one_case(client, hub):
    """Post, redirect, get; and the form's idempotency token: a double click or a resent POST
    shows the first case's confirmation, with the same secret, and opens no second case."""
    form = _html(client.get("/fr/services/driving_licence_authentication"))
    token = re.search(r'name="submission" value="([^"]+)"', form).group(1)
    first = _submit(client, lang="fr", token=token)
    again = _submit(client, lang="fr", token=token)
    assert again == first
    with hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseRow)) == 1
    other = _html(client.get("/fr/services/driving_licence_authentication"))
    assert re.search(r'name="submission" value="([^"]+)"', other).group(1) != token
    assert _submit(client, lang="fr")[0] != first[0]   # another form: another case


def test_the_confirmation_needs_the_browser_that_sent_the_form(client, app):
    _submit(client)
    stranger = app.test_client()
    response = stranger.get("/ar/services/driving_licence_authentication/received")
    assert response.status_code == 302 and response.location.endswith("/ar/track")


def test_a_form_may_carry_documents_beyond_the_message_limit(client, hub):
    form = _licence_form()
    big = PDF + b"%" * (hub.settings.max_message_bytes // 2)
    for name in ("licence_front", "licence_back", "cnie_copy"):
        form[f"documents.{name}"] = (io.BytesIO(big), f"{name}.pdf", "application/pdf")
    response = client.post("/fr/services/driving_licence_authentication", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 303, _html(response)[-500:]


def test_a_document_that_is_not_a_pdf_jpeg_or_png_is_refused_by_name(client):
    form = _licence_form()
    form["documents.cnie_copy"] = (io.BytesIO(b"MZ\x90\x00 not a document"), "id.pdf",
                                   "application/pdf")
    response = client.post("/fr/services/driving_licence_authentication", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 422
    errors = {field: message for field, (_, message) in summary(_html(response)).items()}
    assert errors == {"documents.cnie_copy": "Documents › Copie de la CNIE : le document doit"
                                             " être un fichier PDF, JPEG ou PNG."}
