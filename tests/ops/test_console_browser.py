"""The console in headless Chromium: sign in, see queue depths, replay a dead letter, watch it
succeed. With ``HUB_SCREENSHOTS=<dir>`` the main screens are saved there (docs/img)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest


from .conftest import TOKEN, licence, wait_for

pytestmark = pytest.mark.browser

@pytest.fixture
def served(hub_factory: Any, narsa_simulator: Any) -> Iterator[tuple[Any, str]]:
    from werkzeug.serving import make_server

    from hub.web.app import create_app

    hub = hub_factory(
        agency_overrides={"narsa": {"base_url": narsa_simulator.url,
                                    "retry": {"base_delay": 0.05, "max_delay": 0.2,
                                              "max_attempts": 3, "jitter": 0.5}}},
        env={"HUB_ADMIN_TOKEN": TOKEN, "HUB_METRICS_CACHE_SECONDS": "0"})
    hub.setup()
    server = make_server("127.0.0.1", 0, create_app(hub), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _shot(driver: Any, name: str) -> None:
    target = os.environ.get("HUB_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, max(700, min(int(height) + 40, 2400)))
        driver.save_screenshot(str(Path(target) / f"{name}.png"))
        driver.set_window_size(1400, 1000)


def _find(driver: Any, css: str, timeout: float = 15.0) -> Any:
    """The element once the page that holds it has loaded (a click returns before that)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def _exchange_status(hub: Any, reference: str) -> str | None:
    from sqlalchemy import select

    from hub.store.models import CaseRow, ExchangeRow

    with hub.store.session() as session:
        case = session.scalars(select(CaseRow).where(CaseRow.reference == reference)).one()
        return session.scalars(select(ExchangeRow.status).where(
            ExchangeRow.case_id == case.id)).first()


def test_operator_sees_queues_and_replays_a_dead_letter(browser, served, narsa_simulator):
    from selenium.webdriver.common.by import By

    hub, url = served
    doomed = licence(100005)
    narsa_simulator.inject("status", status=503, match=doomed["licence"]["number"])
    narsa_simulator.inject("status", status=503, count=2)  # a short outage for everyone
    with hub.run(concurrency=2):
        references = [hub.submit("driving_licence_authentication", licence(s)).case.reference
                      for s in (100001, 100011, 100021, 100031)]
        reference = hub.submit("driving_licence_authentication", doomed).case.reference
        wait_for(lambda: _exchange_status(hub, reference) == "dead_lettered", timeout=30,
                 what="the doomed exchange parked")
        wait_for(lambda: all(_exchange_status(hub, r) == "answered" for r in references),
                 timeout=30, what="the others answered")

        # Sign in: the console sends an anonymous visitor to the login page first.
        browser.get(f"{url}/admin/")
        assert "/admin/login" in browser.current_url
        _find(browser, "#name").send_keys("amina")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()

        # Overview: queue depths, agency health, one parked dead letter.
        queue = hub.topology.agency_queue("narsa")
        row = _find(browser, f'#queues tr[data-queue="{queue}"]')
        assert row.find_element(By.CSS_SELECTOR, "td.depth").text == "0"
        assert browser.find_element(By.ID, "parked-count").text == "1"
        agency = browser.find_element(By.CSS_SELECTOR, '#agencies tr[data-agency="narsa"]')
        assert "closed" in agency.text
        _shot(browser, "console-overview")

        # Dead letters: the parked request with its reason; the agency is back; replay it.
        browser.find_element(By.ID, "nav-dead-letters").click()
        parked = _find(browser, '#dead-letters tr[data-status="parked"]')
        assert reference in parked.text and "agency.unavailable" in parked.text
        assert "gave up after 3 attempts" in parked.text
        _shot(browser, "console-dead-letters")
        narsa_simulator.clear_faults()
        parked.find_element(By.NAME, "ids").click()
        browser.find_element(By.ID, "replay-selected").click()
        assert "Replayed 1 of 1 dead letters." in _find(browser, ".flash").text

        # Trace: watch the replayed exchange succeed (the page refreshes while it is in flight).
        browser.get(f"{url}/admin/trace?q={reference}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = _find(browser, "#case-status").text
            exchange = browser.find_element(By.CSS_SELECTOR, "#exchanges td.status").text
            if status == "verified" and exchange == "answered":
                break
            time.sleep(0.5)
            browser.refresh()
        assert (status, exchange) == ("verified", "answered")
        hops = browser.find_element(By.ID, "hops").text
        assert "replayed" in hops and "dead_lettered" in hops and "attempt 1: succeeded" in hops
        _shot(browser, "console-trace")

        browser.find_element(By.ID, "nav-records").click()
        assert "verify_licence" in _find(browser, "#records").text
        _shot(browser, "console-records")
    # The agency applied the replayed request once, whatever the attempts before it.
    assert narsa_simulator.effect_count(_exchange_id_of(hub, reference)) == 1


def _exchange_id_of(hub: Any, reference: str) -> str:
    from sqlalchemy import select

    from hub.store.models import CaseRow, ExchangeRow

    with hub.store.session() as session:
        case = session.scalars(select(CaseRow).where(CaseRow.reference == reference)).one()
        return session.scalars(select(ExchangeRow.id).where(ExchangeRow.case_id == case.id)).one()
