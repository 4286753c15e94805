"""The back-office pages in headless Chromium: a member of a post signs in with an access token
issued by the hub, opens a case of the post from the list, asks the applicant for more
information with a reason code, and reads the move in the case's history; then signs out.

The hub (embedded default, mock agencies) serves its web front on a loopback port; Chromium is
started as the applicant pages' browser test does."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from hub.demo.scenarios import sample_request

from webkit import with_uploaded_documents

pytestmark = pytest.mark.browser

@pytest.fixture
def site(hub: Any) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """The hub's web front on loopback (real token authority) and a case at each of two
    posts."""
    from hub.testing.livehub import LiveServer
    from hub.web.app import create_app

    app = create_app(hub)
    api = app.test_client()
    cases = {}
    for post in ("ES-MAD", "FR-PAR"):
        data = with_uploaded_documents(api, sample_request("consular_registration_new",
                                                           post=post))
        created = api.post("/api/v1/services/consular_registration_new/requests", json=data)
        assert created.status_code == 201, created.get_json()
        cases[post] = created.get_json()["reference"]
    server = LiveServer(app)
    try:
        yield hub, server.url, cases
    finally:
        server.stop()


def _find(driver: Any, css: str, timeout: float = 15.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_post_staff_sign_in_and_record_a_move_the_history_shows(browser, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    hub, url, cases = site
    token = hub.tokens.issue_token("u-madrid-7", "post_staff", post="ES-MAD", ttl=600)

    # The back-office sends whoever is not signed in to the sign-in page, in French here.
    browser.get(f"{url}/staff/fr/cases")
    _find(browser, "#sign-in-form")
    assert "Connexion des agents" in browser.page_source
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()

    # The list holds the post's case only; open it.
    rows = _find(browser, "#cases").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.get_attribute("data-reference") for r in rows] == [cases["ES-MAD"]]
    assert "Madrid (Espagne)" in browser.find_element(By.ID, "who").text  # the post, by name
    browser.find_element(By.LINK_TEXT, cases["ES-MAD"]).click()
    assert _find(browser, "#status").get_attribute("data-status") == "identity_check"
    assert "Alaoui" in browser.find_element(By.ID, "data").text  # the post reads contents

    # Ask for more information, with a reason code.
    form = browser.find_element(By.ID, "move-more_information_requested")
    Select(form.find_element(By.NAME, "reason")).select_by_value("document_unreadable")
    form.find_element(By.ID, "to-more_information_requested").click()

    _find(browser, "#moved")
    assert browser.find_element(By.ID, "status").get_attribute("data-status") \
        == "more_information_requested"
    last = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")[-1]
    assert last.get_attribute("data-status") == "more_information_requested"
    # Who moved it: the role in the page's language, the member's identifier as it is.
    assert "Un document est illisible" in last.text and "Poste consulaire · u-madrid-7" in last.text

    # Another post's case is out of reach, even by its address.
    browser.get(f"{url}/staff/fr/cases/{cases['FR-PAR']}")
    assert "Alaoui" not in browser.page_source
    assert _find(browser, "#error").text.startswith("Ce dossier ne relève pas")

    # Signing out ends the session.
    browser.find_element(By.ID, "sign-out").click()
    _find(browser, "#sign-in-form")
    browser.get(f"{url}/staff/fr/cases")
    _find(browser, "#sign-in-form")
