"""The applicant pages (server-rendered, seven languages), through the Flask test client.

The browser test (test_pages_browser.py) drives the same pages in headless Chromium."""
from __future__ import annotations

import io
import re

import pytest

from hub.config import LANGUAGES
from hub.demo.scenarios import licence_request

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


def test_errors_are_localized_and_name_the_field(client):
    response = client.post("/es/services/driving_licence_authentication",
                           data={"holder.cnie": "bad"}, content_type="multipart/form-data")
    assert response.status_code == 422
    errors = re.findall(r'<li class="error" data-field="([^"]+)">([^<]+)</li>', _html(response))
    by_field = dict(errors)
    assert "Titular del permiso › Número de CNIE: el formato no es válido (ejemplo:" \
        in by_field["holder.cnie"]
    assert by_field["post"] == "Oficina consular: este campo es obligatorio."
    assert 'aria-invalid="true"' in _html(response)


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


def test_submit_then_track_with_the_secret(client):
    response = client.post("/ar/services/driving_licence_authentication", data=_licence_form(),
                           content_type="multipart/form-data")
    html = _html(response)
    assert response.status_code == 201, re.findall(r'class="error"[^>]*>([^<]+)', html)
    reference = re.search(r'id="reference">([^<]+)<', html).group(1)
    secret = re.search(r'id="secret">([^<]+)<', html).group(1)
    assert reference.startswith("DLA-")

    denied = client.post("/fr/track", data={"reference": reference, "secret": "wrong"})
    assert denied.status_code == 404
    assert "Aucun dossier ne correspond" in _html(denied) and secret not in _html(denied)

    tracked = _html(client.post("/fr/track", data={"reference": reference, "secret": secret}))
    assert reference in tracked
    statuses = re.findall(r'<tr data-status="([^"]+)">', tracked)
    assert statuses[0] == "submitted"
    assert "Déposée" in tracked  # the history, in French


def test_a_form_may_carry_documents_beyond_the_message_limit(client, hub):
    form = _licence_form()
    big = PDF + b"%" * (hub.settings.max_message_bytes // 2)
    for name in ("licence_front", "licence_back", "cnie_copy"):
        form[f"documents.{name}"] = (io.BytesIO(big), f"{name}.pdf", "application/pdf")
    response = client.post("/fr/services/driving_licence_authentication", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 201, _html(response)[-500:]


def test_a_document_that_is_not_a_pdf_jpeg_or_png_is_refused_by_name(client):
    form = _licence_form()
    form["documents.cnie_copy"] = (io.BytesIO(b"MZ\x90\x00 not a document"), "id.pdf",
                                   "application/pdf")
    response = client.post("/fr/services/driving_licence_authentication", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 422
    errors = dict(re.findall(r'<li class="error" data-field="([^"]+)">([^<]+)</li>',
                             _html(response)))
    assert errors == {"documents.cnie_copy": "Documents › Copie de la CNIE : le document doit"
                                             " être un fichier PDF, JPEG ou PNG."}
