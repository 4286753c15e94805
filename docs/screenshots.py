"""Screenshots of the main pages, in French and Arabic, for the docs: ``docs/img/*.png``.

Run from the repository (Chromium and chromedriver installed, e.g. Debian's chromium-driver)::

    .venv/bin/python docs/screenshots.py              # every screen, into docs/img/
    .venv/bin/python docs/screenshots.py --out /tmp/shots --only staff

It starts `hub.demo.tour.Tour` (a hub whose cases stand in the states worth showing, with the
agencies' simulators), drives headless Chromium through the applicant's, the staff's and the
operators' pages, and saves one PNG per screen and language, named
``<area>-<screen>-<lang>.png`` (the console, in English, ``console-<screen>.png``). Rerun it
whenever the pages change: the images are never edited by hand.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.demo.tour import PDF, Tour  # noqa: E402 - after the repository is on the path

WIDTH, HEIGHT, TALLEST = 1280, 900, 2600
LANGUAGES = ("fr", "ar")


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("needs chromium and chromedriver (apt-get install chromium "
                         "chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
                 f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


class Camera:
    def __init__(self, driver: Any, out: Path) -> None:
        self.driver, self.out = driver, out
        self.saved: list[Path] = []

    def shot(self, name: str) -> None:
        """The whole page (up to ``TALLEST`` pixels), at the docs' width."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(WIDTH, max(HEIGHT, min(int(height), TALLEST)))
        path = self.out / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(WIDTH, HEIGHT)
        self.saved.append(path)


def wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def applicant(tour: Tour, camera: Camera, lang: str, scratch: Path) -> None:
    from selenium.webdriver.common.by import By

    driver, url = camera.driver, tour.url
    driver.get(f"{url}/{lang}/")
    camera.shot(f"applicant-services-{lang}")
    driver.get(f"{url}/{lang}/services/driving_licence_authentication")
    camera.shot(f"applicant-form-{lang}")
    driver.find_element(By.ID, "submit").click()
    wait_for(driver, "#error-summary")
    camera.shot(f"applicant-form-errors-{lang}")
    driver.get(f"{url}/{lang}/services/driving_licence_authentication")
    scan = scratch / "scan.pdf"
    scan.write_bytes(PDF)
    values = {"post": "ES-MAD", "licence.number": "12/34567814",
              "licence.categories.0.code": "B", "licence.categories.0.issued_on": "2015-06-01",
              "holder.cnie": "AB123456", "holder.last_name": "Alaoui",
              "holder.first_name": "Sara", "holder.birth_date": "1990-02-03",
              "requesting_authority.name": "DGT Madrid", "requesting_authority.country": "ES",
              "applicant.email": "sara.alaoui@example.org", "applicant.phone": "+34612345678"}
    for name, value in values.items():
        driver.execute_script("document.getElementsByName(arguments[0])[0].value = arguments[1]",
                              name, value)
    for name in ("documents.licence_front", "documents.licence_back", "documents.cnie_copy"):
        driver.find_element(By.NAME, name).send_keys(str(scan))
    driver.find_element(By.ID, "submit").click()
    wait_for(driver, "#confirmation")
    camera.shot(f"applicant-confirmation-{lang}")
    driver.get(f"{url}/{lang}/track")
    driver.find_element(By.NAME, "reference").send_keys(tour.cases["more_information"])
    driver.find_element(By.NAME, "secret").send_keys(tour.secrets["more_information"])
    driver.find_element(By.ID, "track").click()
    wait_for(driver, "#reason")
    camera.shot(f"applicant-tracking-{lang}")


def staff(tour: Tour, camera: Camera, lang: str, scratch: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, url = camera.driver, tour.url
    driver.get(f"{url}/staff/{lang}/sign-in")
    driver.delete_all_cookies()
    driver.get(f"{url}/staff/{lang}/sign-in")
    driver.find_element(By.ID, "token").send_keys(tour.staff_token())
    driver.find_element(By.ID, "sign-in").click()
    wait_for(driver, "#cases")
    camera.shot(f"staff-cases-{lang}")
    driver.get(f"{url}/staff/{lang}/cases/{tour.cases['awaiting']}")
    camera.shot(f"staff-case-{lang}")
    case = tour.cases["to_reject" if lang == "fr" else "to_reject_too"]
    driver.get(f"{url}/staff/{lang}/cases/{case}")
    form = driver.find_element(By.ID, "move-rejected")
    Select(form.find_element(By.NAME, "reason")).select_by_value("documents_not_authentic")
    form.find_element(By.ID, "to-rejected").click()
    wait_for(driver, "#confirm-form")
    camera.shot(f"staff-confirm-{lang}")
    driver.find_element(By.ID, "confirm").click()
    wait_for(driver, "#moved")
    camera.shot(f"staff-after-move-{lang}")


def console(tour: Tour, camera: Camera) -> None:
    from selenium.webdriver.common.by import By

    driver, url = camera.driver, tour.url
    driver.get(f"{url}/admin/login")
    driver.delete_all_cookies()
    driver.get(f"{url}/admin/login")
    driver.find_element(By.ID, "name").send_keys("amina")
    driver.find_element(By.ID, "token").send_keys(tour.operator_token)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(driver, "#queues")
    camera.shot("console-overview")
    driver.get(f"{url}/admin/dead-letters")
    camera.shot("console-dead-letters")
    driver.get(f"{url}/admin/trace?q={tour.cases['parked']}")
    camera.shot("console-trace")
    driver.get(f"{url}/admin/records")
    camera.shot("console-records")


AREAS: dict[str, Callable[..., None]] = {"applicant": applicant, "staff": staff}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", choices=[*AREAS, "console"])
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hub-screens-") as scratch:
        tour = Tour.start(Path(scratch) / "hub")
        driver = browser()
        camera = Camera(driver, args.out)
        try:
            for area, walk in AREAS.items():
                if args.only in (None, area):
                    for lang in LANGUAGES:
                        walk(tour, camera, lang, Path(scratch))
            if args.only in (None, "console"):
                console(tour, camera)
        finally:
            driver.quit()
            tour.stop()
    for path in camera.saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
