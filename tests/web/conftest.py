"""Fixtures for the web tests: a hub with mock agencies (not running), its Flask client, and one
headless Chromium for the whole session (the accessibility tests walk many pages with it)."""
from __future__ import annotations

import shutil
import tempfile
from typing import Any, Iterator

import pytest

from hub.web.app import create_app


@pytest.fixture
def hub(mock_hub):
    return mock_hub()


@pytest.fixture
def app(hub):
    return create_app(hub)


@pytest.fixture
def client(app):
    return app.test_client()



@pytest.fixture
def staff_app(hub):
    """The web front with the test staff tokens (`webkit.staff_tokens`) as its authenticator."""
    from webkit import authenticator, staff_tokens

    return create_app(hub, authenticate=authenticator(staff_tokens()))


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session, started as the plugin's ``browser`` is (Debian's
    chromium-driver, fresh profile, no background networking); skipped without Chromium."""
    from hub.testing.plugin import services_required

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (binary and driver_path):
        message = "chromium and chromium-driver are not installed"
        pytest.fail(message) if services_required() else pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
