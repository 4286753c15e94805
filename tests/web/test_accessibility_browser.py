"""Every page, in headless Chromium, checked with axe-core at WCAG 2.1 A and AA (0 violations),
in French and Arabic, in the states that matter: the forms (and one with errors, one with a list
grown), the confirmation, the tracking page with a reason, an unknown page; the staff's sign-in,
list, search, a case with every kind of exchange (answered, answered by callback, accepted and
awaited, parked, queued), a move refused for want of a reason, its confirmation, the case after
it; the console's sign-in, overview, dead letters, trace and records. The Arabic pages also keep
every number, reference and date left to right (``dir="ltr"`` or ``<bdi>``).

The hub is `hub.demo.tour.Tour` (real agencies' simulators, Health's callback, a dead letter),
built once for the module; one browser serves the whole session."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from hub.demo.tour import PDF, Tour
from hub.i18n.translate import translator

from axe import axe_source, loose_ltr_values, violations

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    built = Tour.start(tmp_path_factory.mktemp("tour"))
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture(scope="session")
def axe() -> str:
    return axe_source()


class Inspector:
    """Loads pages in the shared browser and collects what axe and the direction check say."""

    def __init__(self, driver: Any, axe: str, lang: str) -> None:
        self.driver, self.axe, self.lang = driver, axe, lang
        self.problems: list[str] = []
        self.seen: list[str] = []

    def check(self, label: str) -> None:
        self.driver.execute_script("return document.readyState")
        self.seen.append(label)
        for v in violations(self.driver, self.axe):
            self.problems.append(f"[{self.lang}] {label}: {v['id']} ({v['impact']}) {v['help']}"
                                 f" -> {v['nodes']}")
        if self.lang == "ar":
            for value in loose_ltr_values(self.driver):
                self.problems.append(f"[ar] {label}: not isolated left to right: {value}")

    def visit(self, url: str, label: str) -> None:
        self.driver.get(url)
        self.check(label)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def find(driver: Any, css: str, timeout: float = 15.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def fill(driver: Any, values: dict[str, str]) -> None:
    """Fill form fields by name: typed into text fields, chosen in selects, dates set as ISO
    (typing a date depends on the browser's locale)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name, value in values.items():
        field = find(driver, f'[name="{name}"]')
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "date":
            driver.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.clear()
            field.send_keys(value)
    assert driver.find_element(By.NAME, name).get_attribute("value") == value


# -- applicants ----------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_applicant_pages_pass_axe(chromium, axe, tour, tmp_path: Path, lang: str):
    from selenium.webdriver.common.by import By

    page = Inspector(chromium, axe, lang)
    url = tour.url
    page.visit(f"{url}/{lang}/", "services")
    for service in ("driving_licence_authentication", "repatriation_of_remains",
                    "consular_registration_new", "consular_registration_renewal",
                    "consular_registration_update", "registration_certificate"):
        page.visit(f"{url}/{lang}/services/{service}", f"form {service}")

    # An empty submit: the error summary links to each failing field, marked and described.
    chromium.get(f"{url}/{lang}/services/driving_licence_authentication")
    chromium.find_element(By.ID, "submit").click()
    summary = find(chromium, "#error-summary")
    page.check("form with errors")
    links = summary.find_elements(By.CSS_SELECTOR, "a")
    assert len(links) >= 10
    for link in links:
        target = link.get_attribute("href").split("#", 1)[1]
        field = chromium.find_element(By.ID, target)
        assert field.get_attribute("aria-invalid") == "true", target
        assert f"{target}-error" in field.get_attribute("aria-describedby"), target
    assert chromium.switch_to.active_element.get_attribute("id") == "error-summary"
    links[1].click()
    assert chromium.switch_to.active_element.get_attribute("id") == \
        links[1].get_attribute("href").split("#", 1)[1]

    # A list grown by "add another".
    chromium.find_element(By.ID, "add-licence.categories").click()
    find(chromium, "#remove-licence\\.categories\\.1")
    page.check("form with a list of two entries")

    # A complete request: the confirmation, then the tracking page.
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(PDF)
    chromium.get(f"{url}/{lang}/services/driving_licence_authentication")
    fill(chromium, {"post": "ES-MAD", "licence.number": "12/34567814",
                    "licence.categories.0.code": "B",
                    "licence.categories.0.issued_on": "2015-06-01", "holder.cnie": "AB123456",
                    "holder.last_name": "Alaoui", "holder.first_name": "Sara",
                    "holder.birth_date": "1990-02-03", "requesting_authority.name": "DGT Madrid",
                    "requesting_authority.country": "ES",
                    "applicant.email": "sara.alaoui@example.org",
                    "applicant.phone": "+34612345678"})
    for name in ("documents.licence_front", "documents.licence_back", "documents.cnie_copy"):
        chromium.find_element(By.NAME, name).send_keys(str(scan))
    chromium.find_element(By.ID, "submit").click()
    find(chromium, "#confirmation")
    assert chromium.current_url.endswith("/received")
    page.check("confirmation")
    chromium.find_element(By.ID, "track-link").click()
    find(chromium, "#track-form")
    page.check("tracking form")

    # A case the hub asked more information for: its reason, in the page's language.
    fill(chromium, {"reference": tour.cases["more_information"],
                    "secret": tour.secrets["more_information"]})
    chromium.find_element(By.ID, "track").click()
    reason = find(chromium, "#reason")
    assert reason.text == translator(lang).reason("licence_not_in_register")
    page.check("tracking a case with a reason")

    page.visit(f"{url}/{lang}/services/nope", "unknown page")
    assert chromium.find_element(By.ID, "error-heading").get_attribute("data-status") == "404"
    page.assert_clean()
    assert len(page.seen) >= 13


# -- staff ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, case", [("fr", "to_reject"), ("ar", "to_reject_too")])
def test_staff_pages_pass_axe_and_a_rejection_needs_a_reason_and_a_confirmation(
        chromium, axe, tour, lang: str, case: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page = Inspector(chromium, axe, lang)
    url = tour.url
    chromium.get(f"{url}/staff/{lang}/sign-in")  # cookies are deleted by the page's path
    chromium.delete_all_cookies()
    chromium.get(f"{url}/staff/{lang}/cases")
    find(chromium, "#sign-in-form")
    page.check("sign-in")
    chromium.find_element(By.ID, "token").send_keys(tour.staff_token())
    chromium.find_element(By.ID, "sign-in").click()
    find(chromium, "#cases")
    page.check("cases")
    waiting = {row.get_attribute("data-reference"): row.find_element(
        By.CSS_SELECTOR, "td.waiting").text for row in
        chromium.find_elements(By.CSS_SELECTOR, "#cases tbody tr")}
    assert all(waiting.get(tour.cases[name]) for name in ("verified", "awaiting", "queued",
                                                           "more_information"))

    reference = tour.cases[case]
    page.visit(f"{url}/staff/{lang}/cases?q={reference}", "search by reference")
    assert [r.get_attribute("data-reference") for r in
            chromium.find_elements(By.CSS_SELECTOR, "#cases tbody tr")] == [reference]

    for name in ("cleared", "awaiting", "parked", "queued", "more_information", "verified"):
        page.visit(f"{url}/staff/{lang}/cases/{tour.cases[name]}", f"case {name}")
    kinds = set()
    for name in ("cleared", "awaiting", "parked", "queued"):
        chromium.get(f"{url}/staff/{lang}/cases/{tour.cases[name]}")
        kinds |= {row.get_attribute("data-status") for row in
                  chromium.find_elements(By.CSS_SELECTOR, "#exchanges tbody tr")}
    assert kinds == {"answered", "acknowledged", "dead_lettered", "queued"}

    # Rejecting needs a reason: without one, nothing moves and the summary says why.
    chromium.get(f"{url}/staff/{lang}/cases/{reference}")
    form = find(chromium, "#move-rejected")
    offered = [o.get_attribute("value") for o in
               form.find_elements(By.CSS_SELECTOR, "select[name=reason] option")][1:]
    assert offered == list(tour.hub.catalog.get("driving_licence_authentication")
                           .states["rejected"].staff_reasons)
    form.find_element(By.ID, "to-rejected").click()
    find(chromium, "#error-summary")
    assert chromium.find_element(By.ID, "reason-rejected").get_attribute("aria-invalid") == "true"
    page.check("a move without its reason")
    # With a reason: a confirmation first, then the case after the move.
    form = chromium.find_element(By.ID, "move-rejected")
    Select(form.find_element(By.NAME, "reason")).select_by_value("documents_not_authentic")
    form.find_element(By.ID, "to-rejected").click()
    find(chromium, "#confirm-form")
    assert chromium.find_element(By.ID, "confirm-reason").get_attribute("data-reason") \
        == "documents_not_authentic"
    page.check("confirmation of a move")
    chromium.find_element(By.ID, "confirm").click()
    find(chromium, "#moved")
    assert chromium.find_element(By.ID, "status").get_attribute("data-status") == "rejected"
    page.check("case after a move")

    page.visit(f"{url}/staff/{lang}/cases/DLA-2026-AAAAAAA", "unknown case")

    # The applicant reads the reason, in their language, on the tracking page.
    chromium.get(f"{url}/{lang}/track?reference={reference}")
    fill(chromium, {"secret": tour.secrets[case]})
    chromium.find_element(By.ID, "track").click()
    assert find(chromium, "#reason").text == translator(lang).reason("documents_not_authentic")
    page.check("tracking a rejected case")
    page.assert_clean()


# -- the console ---------------------------------------------------------------------------------

def test_console_pages_pass_axe(chromium, axe, tour):
    """The console speaks English (operators' tool); it is checked as served."""
    from selenium.webdriver.common.by import By

    page = Inspector(chromium, axe, "en")
    url = tour.url
    chromium.get(f"{url}/admin/login")  # cookies are deleted by the page's path
    chromium.delete_all_cookies()
    chromium.get(f"{url}/admin/")
    find(chromium, "#token-help")
    page.check("sign-in")
    chromium.find_element(By.ID, "name").send_keys("amina")
    chromium.find_element(By.ID, "token").send_keys(tour.operator_token)
    chromium.find_element(By.ID, "sign-in").click()
    find(chromium, "#queues")
    assert not chromium.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    assert chromium.find_element(By.ID, "auto-refresh").is_selected() is False
    page.check("overview")
    parked = tour.cases["parked"]
    page.visit(f"{url}/admin/dead-letters", "dead letters")
    assert parked in chromium.find_element(By.ID, "dead-letters").text
    page.visit(f"{url}/admin/trace?q={parked}", "trace of a parked case")
    page.visit(f"{url}/admin/trace?q={tour.cases['cleared']}", "trace of a cleared case")
    page.visit(f"{url}/admin/trace?q=REP-2026-0000000", "trace of nothing")
    page.visit(f"{url}/admin/records", "records")
    # Health's record: accepted first, then the answer its callback brought.
    answered = chromium.find_elements(By.CSS_SELECTOR, '#records tr[data-answered="cleared"]')
    assert answered and "pending" in answered[0].text
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{6}", chromium.page_source)  # no raw ISO
    chromium.set_window_size(1280, 900)
    width = chromium.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], "the records table spills out of a 1280 px window"
    chromium.set_window_size(1400, 1000)
    page.assert_clean()


def test_the_checks_can_fail(chromium, axe):
    """The checks above find what they look for: an unlabelled field and a meta refresh (what the
    console had) are axe violations, an Arabic date left bare is reported."""
    page = ('<!doctype html><html lang="ar" dir="rtl"><head><title>t</title>'
            '<meta http-equiv="refresh" content="10"></head><body><main>'
            '<p>تاريخ 2026-12-07</p><input name="q"></main></body></html>')
    chromium.get("data:text/html;charset=utf-8," + page)
    found = {v["id"] for v in violations(chromium, axe)}
    assert {"label", "meta-refresh"} <= found
    assert any("2026-12-07" in loose for loose in loose_ltr_values(chromium))
