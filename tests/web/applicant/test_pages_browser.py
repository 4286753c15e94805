"""The applicant pages in headless Chromium: an applicant fills in the driving-licence form in
French (documents uploaded from disk), reads the reference and the tracking secret on the
confirmation, opens the tracking page and sees the case verified by NARSA, with its history.

The hub runs on the embedded default with its web front on a loopback port and NARSA's
simulator (signed answers) behind it; Chromium is started as the console's browser test does."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from hub.demo.scenarios import licence_request

from webkit import PDF

pytestmark = pytest.mark.browser

@pytest.fixture
def site(hub_factory: Any, narsa_simulator: Any) -> Iterator[tuple[Any, str]]:
    """The hub running (relay, workers) with its web front served on loopback."""
    from hub.testing.livehub import LiveServer
    from hub.web.app import create_app

    hub = hub_factory(agency_overrides={"narsa": {
        "base_url": narsa_simulator.url,
        "retry": {"base_delay": 0.05, "max_delay": 0.2, "max_attempts": 3, "jitter": 0.5}}})
    hub.setup()
    server = LiveServer(create_app(hub))
    try:
        with hub.run(agencies=["narsa"]):
            yield hub, server.url
    finally:
        server.stop()


def _find(driver: Any, css: str, timeout: float = 15.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def _fill(driver: Any, name: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.NAME, name)
    if field.get_attribute("type") == "date":
        # Typing into a date input depends on the browser's locale; set the ISO value instead.
        driver.execute_script("arguments[0].value = arguments[1]", field, value)
    else:
        field.clear()
        field.send_keys(value)


def _choose(driver: Any, name: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.NAME, name)).select_by_value(value)


def test_applicant_submits_a_form_and_reads_the_tracking_page(browser, site, tmp_path: Path):
    from selenium.webdriver.common.by import By

    _hub, url = site
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(PDF)
    number = licence_request("authentic", serial=400001)["licence"]["number"]

    # The list of services, in French; the driving-licence form from there.
    browser.get(f"{url}/fr/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    browser.find_element(By.ID, "service-driving_licence_authentication").click()
    _find(browser, "#request-form")
    assert "Numéro du permis" in browser.page_source

    # A first try without documents: the errors are in French and name the fields.
    _choose(browser, "post", "ES-MAD")
    _fill(browser, "licence.number", number)
    browser.find_element(By.ID, "submit").click()
    errors = [e.text for e in _find(browser, "#errors").find_elements(By.CSS_SELECTOR, "li")]
    assert any(e.startswith("Titulaire du permis") and "obligatoire" in e for e in errors), errors

    _choose(browser, "post", "ES-MAD")
    for name, value in {
            "licence.number": number, "licence.categories.0.issued_on": "2015-06-01",
            "holder.cnie": "AB123456", "holder.last_name": "Alaoui",
            "holder.first_name": "Sara", "holder.birth_date": "1990-02-03",
            "requesting_authority.name": "DGT Madrid",
            "applicant.email": "sara.alaoui@example.org",
            "applicant.phone": "+34612345678"}.items():
        _fill(browser, name, value)
    _choose(browser, "licence.categories.0.code", "B")
    _choose(browser, "requesting_authority.country", "ES")  # Espagne, in the page's language
    for name in ("documents.licence_front", "documents.licence_back", "documents.cnie_copy"):
        browser.find_element(By.NAME, name).send_keys(str(scan))
    browser.find_element(By.ID, "submit").click()

    # The confirmation: the reference and the secret, shown once.
    reference = _find(browser, "#reference").text
    secret = browser.find_element(By.ID, "secret").text
    assert reference.startswith("DLA-") and len(secret) >= 16
    assert "Demande reçue" in browser.page_source

    # The tracking page, until NARSA's answer has moved the case.
    browser.find_element(By.ID, "track-link").click()
    _find(browser, "#track-form")
    assert browser.find_element(By.NAME, "reference").get_attribute("value") == reference
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        _fill(browser, "secret", secret)
        browser.find_element(By.ID, "track").click()
        status = _find(browser, "#status").get_attribute("data-status")
        if status == "verified":
            break
        time.sleep(0.3)
    assert status == "verified"
    assert browser.find_element(By.ID, "status").text == "Vérifié"
    history = [row.get_attribute("data-status") for row in
               browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
    assert history == ["submitted", "verifying", "verified"]
    cells = browser.find_element(By.CSS_SELECTOR, "#history tbody").text
    assert "Déposée" in cells and "En cours de vérification" in cells

    # The same case in Arabic: right to left, same history.
    browser.get(f"{url}/ar/track?reference={reference}")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
    _fill(browser, "secret", secret)
    browser.find_element(By.ID, "track").click()
    assert _find(browser, "#status").text == "تم التحقق"
