"""The back-office pages for staff: sign-in with an access token, scoping as the API (a post sees
and changes only its district's cases, the call centre reads statuses only), CSRF on every form,
transitions with reason codes, the delivery record and the signed outcome document, audited
reads, filters and paging, seven languages."""
from __future__ import annotations

import html
import html as html_module
import io
import re
from typing import Any

import pytest
from sqlalchemy import select

from hub.demo.scenarios import sample_request
from hub.web.staff import pages as backoffice_pages
from hub.cases.book import find_case
from hub.i18n.translate import translator
from hub.testing.agencies import wait_for_status
from hub.store.models import AuditRow
from hub.web.app import create_app
from webkit import submit, PDF, PNG, authenticator, staff_tokens
from test_judicial_documents import _received as judicial_document_received


@pytest.fixture
def api(staff_app):
    return staff_app.test_client()


@pytest.fixture
def two_posts(api):
    return (submit(api, post="ES-MAD")["reference"], submit(api, post="FR-PAR")["reference"])


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Staff:
    """A member of staff's browser: its own cookies, signed in with ``token``."""

    def __init__(self, app, token: str, lang: str = "en") -> None:
        self.web = app.test_client()
        self.lang = lang
        form = self.web.get(f"/staff/{lang}/sign-in")
        assert form.status_code == 200
        signed = self.web.post(f"/staff/{lang}/sign-in",
                               data={"token": token, "csrf": csrf_of(form.text)})
        assert signed.status_code == 302, signed.text
        self.csrf = ""

    def get(self, path: str, **kwargs: Any):
        response = self.web.get(f"/staff/{self.lang}{path}", **kwargs)
        if response.status_code == 200 and 'name="csrf"' in response.text:
            self.csrf = csrf_of(response.text)
        return response

    def case(self, reference: str):
        return self.get(f"/cases/{reference}")

    def move(self, reference: str, to: str, *, csrf: str | None = None, **fields: Any):
        page = self.case(reference)
        current = re.search(r'id="status" data-status="([^"]+)"', page.text)
        data = {"to": to, "from": current.group(1) if current else "",
                "csrf": self.csrf if csrf is None else csrf, **fields}
        return self.web.post(f"/staff/{self.lang}/cases/{reference}/transitions", data=data,
                             content_type="multipart/form-data")


    def confirm(self, shown):
        """Post the confirmation form a move that ends the case showed (``shown``)."""
        assert shown.status_code == 200 and 'id="confirm-form"' in shown.text, shown.text[-800:]
        form = shown.text.split('id="confirm-form"')[1].split("</form>")[0]
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        action = re.search(r'action="([^"]+)" id="confirm-form"', shown.text).group(1)
        return self.web.post(action, data=fields, content_type="multipart/form-data")


def listed(staff: Staff, query: str = "") -> list[str]:
    page = staff.get(f"/cases{query}")
    assert page.status_code == 200
    return re.findall(r'<tr data-reference="([^"]+)"', page.text)


def status_of(hub, reference: str) -> str:
    with hub.store.session() as session:
        return find_case(session, reference).status


# -- sign-in -------------------------------------------------------------------------------------

def test_pages_need_a_signed_in_member_of_staff(staff_app):
    web = staff_app.test_client()
    response = web.get("/staff/fr/cases?status=rejected")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/fr/sign-in?next=")
    form = web.get("/staff/fr/sign-in")
    assert "Connexion des agents" in form.text
    for token, status in (("nobody", 401), ("admin", 401), ("", 401)):
        refused = web.post("/staff/fr/sign-in", data={"token": token,
                                                      "csrf": csrf_of(form.text)})
        assert refused.status_code == status
        assert "ouvre pas le back-office" in refused.text
    # The sign-in form carries a CSRF token too (no login forced from another site).
    assert web.post("/staff/fr/sign-in", data={"token": "madrid"}).status_code == 403
    assert web.get("/staff/fr/cases").status_code == 302


@pytest.mark.parametrize("target, lands", [
    ("/staff/en/cases?status=rejected", "/staff/en/cases?status=rejected"),
    ("https://evil.example/staff/en/cases", "/staff/en/cases"),
    ("//evil.example/staff/en/cases", "/staff/en/cases"),
    ("/\\evil.example", "/staff/en/cases"),
    ("/admin/", "/staff/en/cases"),
    ("/staff/../admin/", "/staff/en/cases"),
    ("/staff/%2e%2e/admin/", "/staff/en/cases"),
    ("/staffing", "/staff/en/cases"),
])
def test_sign_in_returns_only_to_a_back_office_page(staff_app, target, lands):
    web = staff_app.test_client()
    form = web.get("/staff/en/sign-in")
    response = web.post("/staff/en/sign-in", data={"token": "central", "next": target,
                                                   "csrf": csrf_of(form.text)})
    assert response.status_code == 302 and response.headers["Location"] == lands


def test_the_session_cookie_is_http_only_strict_and_limited_to_the_back_office(staff_app):
    web = staff_app.test_client()
    form = web.get("/staff/en/sign-in")
    signed = web.post("/staff/en/sign-in", data={"token": "madrid", "csrf": csrf_of(form.text)})
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    assert "madrid" not in cookie.split(";")[0].split("=", 1)[1][:5]  # signed, not bare


def test_the_token_is_verified_on_every_request(hub):
    tokens = staff_tokens()
    app = create_app(hub, authenticate=authenticator(tokens))
    madrid = Staff(app, "madrid")
    assert madrid.get("/cases").status_code == 200
    del tokens["madrid"]  # expired, or signed by a key no longer trusted
    response = madrid.get("/cases")
    assert response.status_code == 302 and "/staff/en/sign-in" in response.headers["Location"]


def test_sign_out_ends_the_session(staff_app):
    madrid = Staff(staff_app, "madrid")
    page = madrid.get("/cases")
    assert page.status_code == 200 and "ES-MAD" in page.text
    # Showing the sign-in form again keeps the session.
    assert madrid.web.get("/staff/en/sign-in").status_code == 200
    assert madrid.get("/cases").status_code == 200
    assert madrid.web.post("/staff/en/sign-out", data={"csrf": "forged"}).status_code == 403
    out = madrid.web.post("/staff/en/sign-out", data={"csrf": madrid.csrf})
    assert out.status_code == 302
    assert madrid.web.get("/staff/en/cases").status_code == 302


# -- scope ---------------------------------------------------------------------------------------

def test_the_list_is_scoped_as_the_api(staff_app, two_posts):
    madrid_case, paris_case = two_posts
    assert listed(Staff(staff_app, "madrid")) == [madrid_case]
    assert listed(Staff(staff_app, "paris")) == [paris_case]
    assert set(listed(Staff(staff_app, "central"))) == {madrid_case, paris_case}
    assert set(listed(Staff(staff_app, "callcentre"))) == {madrid_case, paris_case}


def test_a_post_cannot_see_or_change_another_posts_case(staff_app, hub, two_posts):
    _, paris_case = two_posts
    madrid = Staff(staff_app, "madrid")
    page = madrid.case(paris_case)
    assert page.status_code == 403 and "Alaoui" not in page.text
    madrid.get("/cases")  # a valid CSRF token of Madrid's own session
    moved = madrid.web.post(f"/staff/en/cases/{paris_case}/transitions", data={
        "to": "more_information_requested", "from": "identity_check", "csrf": madrid.csrf})
    assert moved.status_code == 403
    assert status_of(hub, paris_case) == "identity_check"
    document = madrid.get(f"/cases/{paris_case}/documents/att_anything")
    assert document.status_code == 403
    assert Staff(staff_app, "paris").case(paris_case).status_code == 200


def test_the_call_centre_reads_the_status_only(staff_app, hub, two_posts):
    madrid_case, _ = two_posts
    caller = Staff(staff_app, "callcentre")
    page = caller.case(madrid_case)
    assert page.status_code == 200
    assert 'data-status="identity_check"' in page.text and 'id="status-only"' in page.text
    for private in ("Alaoui", "documents.photo_1", 'id="exchanges"', 'id="moves"',
                    'id="data"'):
        assert private not in page.text
    moved = caller.web.post(f"/staff/en/cases/{madrid_case}/transitions", data={
        "to": "rejected", "from": "identity_check", "csrf": caller.csrf})
    assert moved.status_code == 403
    assert status_of(hub, madrid_case) == "identity_check"


def test_reading_a_case_page_is_audited_like_the_api(staff_app, hub, two_posts):
    madrid_case, _ = two_posts
    Staff(staff_app, "callcentre").case(madrid_case)  # the status only, audited as such
    page = Staff(staff_app, "madrid").case(madrid_case)
    assert "Alaoui" in page.text and "documents.photo_1" in page.text
    with hub.store.session() as session:
        views = session.execute(select(AuditRow.actor, AuditRow.details).where(
            AuditRow.action == "viewed", AuditRow.correlation_id == madrid_case)).all()
    assert [(actor, details["view"]) for actor, details in views] == \
        [("call_centre:u-cc", "status"), ("post_staff:u-madrid", "contents")]


# -- moves ---------------------------------------------------------------------------------------

def test_forms_without_the_sessions_csrf_token_change_nothing(staff_app, hub, two_posts):
    madrid_case, _ = two_posts
    madrid = Staff(staff_app, "madrid")
    other = Staff(staff_app, "madrid")  # another session of the same person
    for csrf in ("", "forged", other.get("/cases") and other.csrf):
        refused = madrid.move(madrid_case, "more_information_requested", csrf=csrf)
        assert refused.status_code == 403
        assert "The form has expired" in refused.text
    assert status_of(hub, madrid_case) == "identity_check"


def test_a_post_moves_its_case_with_a_reason_and_the_history_shows_it(staff_app, hub,
                                                                       two_posts):
    madrid_case, _ = two_posts
    madrid = Staff(staff_app, "madrid", lang="fr")
    page = madrid.case(madrid_case)
    offered = set(re.findall(r'name="to" value="([^"]+)"', page.text))
    definition = hub.catalog.get("consular_registration_new")
    assert offered == set(definition.next_statuses("identity_check", "staff"))
    moved = madrid.move(madrid_case, "more_information_requested",
                        reason="document_unreadable")
    assert moved.status_code == 302
    assert moved.headers["Location"].endswith(
        f"/staff/fr/cases/{madrid_case}?moved=more_information_requested")
    page = madrid.web.get(moved.headers["Location"])
    assert 'id="moved"' in page.text
    history = re.findall(r'<tr data-status="([^"]+)">', page.text)
    assert history[-1] == "more_information_requested"
    reason = translator("fr").reason("document_unreadable")
    assert reason in page.text.split('id="history"')[1].split("</table>")[0]
    with hub.store.session() as session:
        (actor,) = session.scalars(select(AuditRow.actor).where(
            AuditRow.action == "transitioned", AuditRow.correlation_id == madrid_case,
            AuditRow.outcome == "more_information_requested"))
    assert actor == "post_staff:u-madrid"


def test_a_stale_form_or_a_move_not_allowed_is_409_and_changes_nothing(staff_app, hub,
                                                                        two_posts):
    madrid_case, _ = two_posts
    madrid = Staff(staff_app, "madrid")
    madrid.case(madrid_case)
    # Someone else moved the case after this page was shown.
    assert Staff(staff_app, "central").move(madrid_case, "more_information_requested",
                                            reason="document_missing").status_code == 302
    stale = madrid.web.post(f"/staff/en/cases/{madrid_case}/transitions", data={
        "to": "rejected", "from": "identity_check", "csrf": madrid.csrf})
    assert stale.status_code == 409
    assert "The case has changed since you opened it" in stale.text
    illegal = madrid.move(madrid_case, "registered")
    assert illegal.status_code == 409
    assert "is not allowed from the case" in illegal.text
    assert status_of(hub, madrid_case) == "more_information_requested"


def test_issuing_needs_the_signed_pdf_which_the_case_then_lists(staff_app, hub, api,
                                                                mock_agencies):
    reference = submit(api, "driving_licence_authentication")["reference"]
    with hub.run(concurrency=1):
        assert wait_for_status(hub, reference, "verified") == "verified"
    madrid = Staff(staff_app, "madrid")
    page = madrid.case(reference)
    assert 'id="document-attestation_issued"' in page.text   # the form asks for it
    assert 'data-agency="narsa"' in page.text and "authentic" in page.text

    missing = madrid.move(reference, "attestation_issued")
    assert missing.status_code == 422
    assert "Attach the signed document (PDF)" in missing.text
    not_pdf = madrid.move(reference, "attestation_issued",
                          outcome_document=(io.BytesIO(PNG), "signed.pdf"))
    assert not_pdf.status_code == 422 and "must be a PDF file" in not_pdf.text
    assert status_of(hub, reference) == "verified"

    # A scanned, signed attestation is larger than a message: room for a document.
    signed = PDF + b"%" + b"0" * hub.settings.max_message_bytes
    assert len(signed) < hub.settings.max_attachment_bytes
    shown = madrid.move(reference, "attestation_issued",
                        outcome_document=(io.BytesIO(signed), "signed.pdf"))
    assert status_of(hub, reference) == "verified"  # nothing changes before the confirmation
    issued = madrid.confirm(shown)
    assert issued.status_code == 302
    page = madrid.case(reference)
    assert 'data-status="attestation_issued"' in page.text
    link = re.search(r'<tr data-kind="outcome" data-field="outcome.attestation_issued">'
                     r'<td>([^<]+) · .*?<a href="([^"]+)" dir="ltr">([^<]+)</a>', page.text)
    assert link, "the signed document is listed, with the move it was issued with"
    assert link.group(1) == translator("en").status("attestation_issued")
    assert link.group(3) == f"{reference}-attestation_issued.pdf"  # type and file name
    download = madrid.web.get(link.group(2))
    assert download.status_code == 200 and download.data == signed
    assert download.headers["Content-Disposition"] == \
        f'attachment; filename="{reference}-attestation_issued.pdf"'
    with hub.store.session() as session:
        views = [d["view"] for d in session.scalars(select(AuditRow.details).where(
            AuditRow.action == "viewed", AuditRow.correlation_id == reference))]
    assert "document" in views


def test_a_post_records_how_a_judicial_document_was_served(staff_app, hub, mock_agencies):
    reference = judicial_document_received(hub)
    with hub.run(concurrency=1):
        assert wait_for_status(hub, reference, "sent_to_post") == "sent_to_post"
    madrid = Staff(staff_app, "madrid")
    page = madrid.case(reference)
    assert 'name="served_in_person.delivery.date"' in page.text
    assert "Date of delivery" in page.text
    bad = madrid.move(reference, "served_in_person", **{
        "served_in_person.delivery.date": "1 Dec"})
    assert bad.status_code == 422 and 'data-field="delivery.date"' in bad.text
    assert status_of(hub, reference) == "sent_to_post"
    with hub.run(concurrency=1):
        served = madrid.move(reference, "served_in_person", **{
            "served_in_person.delivery.date": "2026-12-01",
            "served_in_person.delivery.received_by": "Sara Alaoui"})
        assert served.status_code == 302
        assert wait_for_status(hub, reference, "certificate_returned") == "certificate_returned"
    (certificate,) = mock_agencies.calls["justice"]
    assert certificate.payload["delivery"] == {"outcome": "served_in_person",
                                               "date": "2026-12-01",
                                               "received_by": "Sara Alaoui"}


# -- list ----------------------------------------------------------------------------------------

def test_filters_and_paging(staff_app, api, monkeypatch):
    monkeypatch.setattr(backoffice_pages, "PAGE_SIZE", 2)
    registrations = {submit(api, post="ES-MAD")["reference"] for _ in range(3)}
    licence = submit(api, "driving_licence_authentication")["reference"]
    central = Staff(staff_app, "central")
    first = listed(central, "?service=consular_registration_new")
    page = central.get("/cases?service=consular_registration_new")
    assert 'id="next"' in page.text and 'id="previous"' not in page.text
    second = listed(central, "?service=consular_registration_new&page=2")
    assert len(first) == 2 and set(first) | set(second) == registrations
    assert listed(central, "?service=driving_licence_authentication") == [licence]
    assert listed(central, "?status=rejected") == []
    assert 'id="no-cases"' in central.get("/cases?status=rejected").text


def test_the_pages_speak_the_seven_languages_and_arabic_reads_right_to_left(staff_app,
                                                                           two_posts):
    madrid_case, _ = two_posts
    arabic = Staff(staff_app, "madrid", lang="ar")
    page = arabic.case(madrid_case)
    assert 'dir="rtl"' in page.text and 'lang="ar"' in page.text
    assert "الملفات" in page.text  # "Cases"
    german = Staff(staff_app, "central", lang="de").get("/cases")
    assert "Vorgänge" in german.text and "Zentrale Direktion" in german.text
    # The language switcher keeps the page and its query.
    assert f'href="/staff/fr/cases/{madrid_case}"' in page.text


# -- reasons and confirmation ----------------------------------------------------------------------

def test_a_rejection_needs_its_reason_then_a_confirmation(staff_app, hub, two_posts):
    madrid_case, _ = two_posts
    madrid = Staff(staff_app, "madrid", lang="fr")
    page = madrid.case(madrid_case).text
    rejection = page.split('id="move-rejected"')[1].split("</form>")[0]
    information = page.split('id="move-more_information_requested"')[1].split("</form>")[0]
    offered = re.findall(r'<option value="([^"]+)"', rejection)
    assert offered == list(hub.catalog.get("consular_registration_new")
                           .states["rejected"].staff_reasons)
    assert "appointment_needed" not in offered and "document_unreadable" not in offered
    assert "document_unreadable" in information

    missing = madrid.move(madrid_case, "rejected")
    assert missing.status_code == 422
    assert '<a href="#reason-rejected">' in missing.text  # the summary links to the field
    assert re.search(r'<select id="reason-rejected" name="reason" required aria-invalid="true"'
                     r' aria-describedby="reason-rejected-error">', missing.text)
    shown = madrid.move(madrid_case, "rejected", reason="identity_not_established")
    assert shown.status_code == 200 and 'id="confirm-form"' in shown.text
    assert "ne peut pas être annulée" in shown.text
    assert status_of(hub, madrid_case) == "identity_check"   # nothing moved yet
    done = madrid.confirm(shown)
    assert done.status_code == 302 and done.headers["Location"].endswith("?moved=rejected")
    assert status_of(hub, madrid_case) == "rejected"


def test_asking_for_information_needs_no_confirmation(staff_app, hub, two_posts):
    madrid_case, _ = two_posts
    moved = Staff(staff_app, "madrid").move(madrid_case, "more_information_requested",
                                            reason="document_expired")
    assert moved.status_code == 302
    assert status_of(hub, madrid_case) == "more_information_requested"


# -- what the case page shows -----------------------------------------------------------------------

def _visible_text(html: str) -> list[str]:
    """The texts a person reads on the page (each text between tags), without scripts, styles
    and the language switcher (each language's own name)."""
    body = html.split("<body>", 1)[1]
    body = re.sub(r"<(script|style)\b.*?</\1>", "", body, flags=re.S)
    body = re.sub(r'<nav aria-label="[^"]*">.*?</nav>', "", body, flags=re.S)
    return [h.strip() for h in map(html_module.unescape, re.split(r"<[^>]+>", body))
            if h.strip()]


def _untranslated(language: str) -> dict[str, tuple]:
    """English texts and raw codes that ``language`` translates differently: none of them may
    appear on a page in ``language``."""
    from hub.web.catalogs import required

    english, local = translator("en"), translator(language)
    found: dict[str, tuple] = {}
    for context, message in required():
        shown = local.pgettext(context, message)
        if "{" in message or context == "example":
            continue  # a sentence with a value; an example, which an applicant's data may equal
        for text in (english.pgettext(context, message), message if context else None):
            if text and text != shown and len(text) > 2:
                found[text] = (context, message)
    return found


@pytest.fixture
def busy_case(api, hub, mock_agencies):
    """A repatriation every agency answered, with its documents (all kinds of label)."""
    reference = submit(api, "repatriation_of_remains", post="ES-MAD")["reference"]
    with hub.run(concurrency=1):
        assert wait_for_status(hub, reference, "agencies_cleared") == "agencies_cleared"
    return reference


@pytest.mark.parametrize("language", ["ar", "de", "es", "fr", "it", "nl"])
def test_no_untranslated_label_on_the_case_page(staff_app, busy_case, language):
    """Every label of the staff's case page comes from the catalogs in the page's language:
    no English message and no raw code (agencies, operations, answers, statuses, actors, posts,
    choices) among the texts of the page."""
    page = Staff(staff_app, "central", lang=language).case(busy_case)
    assert page.status_code == 200
    texts = _visible_text(page.text)
    untranslated = _untranslated(language)
    leaks = sorted({t for t in texts if t in untranslated})
    assert not leaks, [(t, untranslated[t]) for t in leaks]
    codes = ("health", "dgsn", "interior", "sanitary_clearance", "answered", "cleared",
             "granted", "applicant", "agency:interior", "ES-MAD", "FR")
    assert not [t for t in texts if t in codes or t.startswith("att_")]
    if translator(language).pgettext("size", "{size} B") != "{size} B":
        assert not [t for t in texts if re.fullmatch(r"[\d,. ]+ B", t)]  # sizes in words
    assert "agency:" not in " ".join(texts) and "hub:" not in " ".join(texts)


def test_english_case_page_names_agencies_documents_and_the_request_in_the_forms_order(
        staff_app, busy_case):
    page = Staff(staff_app, "central").case(busy_case).text
    assert "Ministry of Health" in page and "Sanitary clearance" in page and "Cleared" in page
    assert "Answered" in page and "Madrid (Spain)" in page
    # Documents: their type and their file name, never an att_ id as a label.
    assert re.search(r"<td>Documents › Death certificate</td><td><a href=\"[^\"]+\" dir=\"ltr\">"
                     rf"{busy_case}-death_certificate.pdf</a>", page)
    # The request in the form's sections and order, not sorted by path.
    fields = re.findall(r'<dt data-field="([^"]+)">', page)
    assert fields[0] == "post" and fields.index("applicant.organisation") < fields.index(
        "deceased.last_name") < fields.index("family_contact.name") < fields.index(
        "documents.death_certificate")
    assert re.findall(r"<h3>([^<]+)</h3>", page)[:3] == ["Funeral firm", "The deceased",
                                                         "Family contact in Morocco"]


def test_arabic_pages_keep_numbers_references_and_dates_left_to_right(staff_app, busy_case):
    page = Staff(staff_app, "central", lang="ar").case(busy_case).text
    assert '<bdi dir="ltr">+33612345678</bdi>' in page            # a phone number
    assert re.search(r'<time datetime="[^"]+" dir="ltr">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>',
                     page)                                         # a date
    assert f'id="reference" dir="ltr">{busy_case}<' in page      # the reference
    listing = Staff(staff_app, "central", lang="ar").get("/cases").text
    assert f'dir="ltr" href="/staff/ar/cases/{busy_case}">{busy_case}</a>' in listing


# -- the list -------------------------------------------------------------------------------------

def test_search_by_reference_or_identity_number_and_what_each_case_waits_for(staff_app, api,
                                                                             hub):
    first = submit(api, post="ES-MAD")["reference"]
    person = dict(sample_request("consular_registration_new")["person"], cnie="ZX765432")
    other = submit(api, post="ES-MAD", person=person)["reference"]
    central = Staff(staff_app, "central")
    assert listed(central, f"?q={first.lower()}") == [first]
    assert listed(central, "?q=zx-765432") == [other]          # the CNIE, by its blind index
    assert listed(central, "?q=Nobody") == []
    page = central.get("/cases").text
    waiting = dict(re.findall(r'<tr data-reference="([^"]+)"[^>]*>.*?<td class="waiting">'
                              r"([^<]*)</td>", page, flags=re.S))
    assert waiting[first] == "National police (DGSN)"  # its identity check is queued
