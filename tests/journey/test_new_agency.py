"""A connector developer's journey, as docs/connectors.md tells it, in a copy of the repository.

Scaffold a REST agency (a civil registry: does a birth record exist, and its extract number) and
a SOAP one; teach the REST one its extract number in its own folder, mappings and schema; add a
service that routes to it by data alone; run the documented conformance command; give an
existing installation the new agencies' keys; run ``hub demo``; then start a hub as the README
runs it (simulator, relay, worker, web front, each its own process on the embedded default),
submit one request through the intake API and read the agency's answer on the staff case page.

Every command is the real one, run by the current interpreter with the copy first on the import
path; nothing is installed. The only files written by hand are those the journey allows: the new
agency's folder, its mappings and schemas, the service's definition and intake schema, and the
catalogs; the test checks that nothing else changed. Each step's duration is printed (``-s``)
for docs/connectors.md, never asserted.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[2]
#: What the copy leaves out: environments, caches, local data.
IGNORED = shutil.ignore_patterns(".git", ".venv", "var", "__pycache__", "*.egg-info",
                                 ".pytest_cache", "node_modules")
HUB = [sys.executable, "-c", "from hub.cli import main; main()"]
LANGUAGES = ("ar", "en", "fr", "es", "it", "nl", "de")
#: Where the journey may write by hand (relative to the copy), besides what commands write.
ALLOWED = (r"connectors/civil_registry/", r"connectors/equipment/", r"mappings/civil_registry/",
           r"mappings/equipment/", r"schemas/v1/agencies/(civil_registry|equipment)\.",
           r"hub/services/definitions/birth_record_extract\.yaml$",
           r"schemas/v1/services/birth_record_extract\.json$",
           r"hub/i18n/translations/")
#: Written by commands: the scaffold's conformance tests, the catalogs tool's template.
GENERATED = (r"tests/connectors/test_conformance_(civil_registry|equipment)\.py$",)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


class Journey:
    """The developer's shell: runs commands in the copy and keeps each step's duration."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("HUB_", "PYTEST_", "COV_"))}
        self.env.update(PYTHONPATH=str(root), HUB_DATA_DIR=str(data), HUB_LOG_LEVEL="WARNING")
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.timings[name] = round(time.monotonic() - started, 1)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(args), cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, (f"{' '.join(args[2:] if args[:2] == HUB[:2] else args)}"
                                      f" failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def hub(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run(*HUB, *args, timeout=timeout)

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text("utf-8")
        assert old in text, f"{relative} has no {old!r}"
        path.write_text(text.replace(old, new, 1), "utf-8")


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and ".pytest_cache" not in p.parts}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    return Journey(copy, tmp_path / "data")


def test_a_new_agency_from_scaffold_to_a_staff_page(journey: Journey) -> None:
    before = _digests(journey.root)

    # 0. An existing installation: its keys were made before the new agencies existed.
    with journey.step("hub keys init (existing installation)"):
        journey.hub("keys", "init")

    # 1. Scaffold a REST and a SOAP agency.
    with journey.step("scaffold (REST and SOAP)"):
        journey.hub("connector", "new", "civil_registry", "--rest", "--operation",
                    "check_birth_record", "--title", "Civil registry")
        journey.hub("connector", "new", "equipment", "--soap", "--title",
                    "Ministry of Equipment")

    # 2. Teach the REST agency its answer's point: the extract number of the birth record.
    with journey.step("wire format, mapping, rule, contract, samples (by hand)"):
        _teach_the_extract_number(journey)

    # 3. The documented conformance command, through pytest's entry script.
    with journey.step("conformance kit (both agencies)"):
        pytest_script = Path(sys.executable).with_name("pytest")
        command = [str(pytest_script)] if pytest_script.exists() else [sys.executable, "-m",
                                                                         "pytest"]
        done = journey.run(*command, "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "tests/connectors/test_conformance_civil_registry.py",
                           "tests/connectors/test_conformance_equipment.py")
        assert " passed" in done.stdout and "error" not in done.stdout.lower()

    # 4. A service by data: definition, intake schema, translations.
    with journey.step("a service by data (definition, schema, catalogs)"):
        _add_the_service(journey)
        journey.run(sys.executable, "-m", "hub.web.catalogs")
        _translate(journey)
        # The suite's checks of service definitions and of data-only services stay green.
        journey.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                    "no:xdist", "tests/services/test_definitions.py",
                    "tests/cases/test_deadlines.py::test_the_tenth_day_rule_is_data")

    # 5. Keys for the new agencies on the existing installation.
    with journey.step("hub keys add (both agencies)"):
        for agency in ("civil_registry", "equipment"):
            journey.hub("keys", "add", agency)
        keys = Path(journey.env["HUB_DATA_DIR"]) / "keys"
        assert (keys / "civil_registry" / "signing.cert.pem").is_file()

    # 6. The demo: every packaged agency takes part, signed both ways.
    with journey.step("hub demo"):
        report = json.loads(journey.hub("demo", "--json", timeout=400).stdout)
    assert report["ok"] is True
    assert {"civil_registry", "equipment"} <= set(report["agency_checks"])
    assert report["signed"]["civil_registry"] and report["signed"]["equipment"]

    # 7. One request end to end on a running hub, read by staff.
    with journey.step("one request end to end on a running hub"):
        page = _one_request_end_to_end(journey)
    kept = re.search(r'<table id="kept-answers">(.*?)</table>', page, re.S)
    assert kept is not None, "the staff case page shows no kept answer"
    assert 'data-field="extract_number"' in kept.group(1)
    assert "EX-AB123456" in kept.group(1)
    assert "Extract number of the birth record" in kept.group(1)

    # Nothing was edited by hand outside what the journey allows.
    after = _digests(journey.root)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    outside = sorted(p for p in changed if not any(re.match(r, p) for r in ALLOWED + GENERATED))
    assert outside == [], f"files changed outside the journey's own: {outside}"
    print("\njourney timings (s):", json.dumps(journey.timings, indent=2))


def _teach_the_extract_number(journey: Journey) -> None:
    openapi = "schemas/v1/agencies/civil_registry.openapi.yaml"
    journey.edit(openapi, '''        checkedAt: {type: string, format: date-time}
''', '''        checkedAt: {type: string, format: date-time}
        extractNumber: {type: string, pattern: "^EX-[A-Z0-9]{5,9}$"}
''')
    journey.edit("connectors/civil_registry/register.py", '''    return {
        "checkId": f"RC-{now.year}-{serial:06d}",
        "result": lookup(request["person"]),
        "checkedAt": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }''', '''    answer = {
        "checkId": f"RC-{now.year}-{serial:06d}",
        "result": lookup(request["person"]),
        "checkedAt": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    if answer["result"] == "FOUND":
        person = request["person"]
        answer["extractNumber"] = "EX-" + str(person.get("cnie") or person["passportNumber"])
    return answer''')
    journey.edit("mappings/civil_registry/check_birth_record.reply.yaml",
                 "  - {to: data.checked_at, from: checkedAt}\n",
                 "  - {to: data.checked_at, from: checkedAt}\n"
                 "  - {to: data.extract_number, from: extractNumber, optional: true}\n")
    journey.edit("connectors/civil_registry/agency.yaml",
                 "      checked_at: when the agency checked (ISO 8601)\n",
                 "      checked_at: when the agency checked (ISO 8601)\n"
                 "      extract_number: the birth record's extract number (found only)\n")
    journey.edit("connectors/civil_registry/samples.yaml",
                 "    outcome: found\n    payload:\n"
                 "      person: {cnie: AB123456, last_name: Alaoui, first_name: Sara,"
                 " birth_date: \"1990-02-03\"}\n    data: {checked_at: null}\n",
                 "    outcome: found\n    payload:\n"
                 "      person: {cnie: AB123456, last_name: Alaoui, first_name: Sara,"
                 " birth_date: \"1990-02-03\"}\n"
                 "    data: {checked_at: null, extract_number: EX-AB123456}\n")


SERVICE = """\
# A birth record extract: the civil registry confirms the record and gives its extract number,
# which the case keeps for the post.
name: birth_record_extract
version: "1"
reference_prefix: BRE
intake_schema: v1/services/birth_record_extract.json
states:
  submitted: {initial: true}
  record_check: {}
  record_found: {}
  more_information_requested: {}
  issued: {final: true}
  rejected: {final: true}
transitions:
  - {from: submitted, to: record_check, by: [hub]}
  - {from: record_check, to: record_found, by: [hub]}
  - {from: record_check, to: more_information_requested, by: [hub, staff]}
  - {from: record_check, to: rejected, by: [hub, staff]}
  - {from: more_information_requested, to: record_check, by: [applicant, staff]}
  - {from: more_information_requested, to: rejected, by: [staff]}
  - {from: record_found, to: issued, by: [staff]}
  - {from: record_found, to: rejected, by: [staff]}
route:
  start_status: record_check
  complete_status: record_found
  steps:
    - name: birth_record
      agency: civil_registry
      operation: check_birth_record
      input: [person]
      outcomes:
        found: continue
        not_found: {status: more_information_requested, reason: birth_record_not_found}
      keep: [extract_number]
"""
COMMON = "urn:econsulat:schema:services:common:1"
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:econsulat:schema:services:birth_record_extract:1",
    "title": "Birth record extract",
    "type": "object",
    "additionalProperties": False,
    "required": ["post", "person", "contact"],
    "properties": {
        "post": {"$ref": f"{COMMON}#/$defs/post"},
        "person": {"$ref": f"{COMMON}#/$defs/identified_person",
                   "title": "Person named in the record"},
        "contact": {"$ref": f"{COMMON}#/$defs/contact", "title": "How to reach you"},
    },
    "patternProperties": {"^agency_answers$": {"$ref": f"{COMMON}#/$defs/agency_answers"}},
}
REQUEST = {"post": "ES-MAD",
           "person": {"cnie": "AB123456", "last_name": "Alaoui", "first_name": "Sara",
                      "birth_date": "1990-02-03"},
           "contact": {"email": "sara.alaoui@example.org", "phone": "+34612345678"}}
EXTRACT_NUMBER = {"ar": "رقم مستخرج رسم الولادة", "en": "Extract number of the birth record",
                  "fr": "Numéro de l'extrait d'acte de naissance",
                  "es": "Número del extracto de nacimiento",
                  "it": "Numero dell'estratto di nascita",
                  "nl": "Nummer van het uittreksel uit de geboorteakte",
                  "de": "Nummer des Geburtsregisterauszugs"}


def _add_the_service(journey: Journey) -> None:
    (journey.root / "hub/services/definitions/birth_record_extract.yaml").write_text(
        SERVICE, "utf-8")
    (journey.root / "schemas/v1/services/birth_record_extract.json").write_text(
        json.dumps(SCHEMA, indent=2) + "\n", "utf-8")
    yaml.safe_load(SERVICE)  # well-formed, as the catalog will read it


def _translate(journey: Journey) -> None:
    """What a translator does in each language's catalog: the kept field's label."""
    for language in LANGUAGES:
        path = journey.root / "hub/i18n/translations" / language / "LC_MESSAGES/messages.po"
        with open(path, "rb") as handle:
            catalog = read_po(handle, locale=language)
        message = catalog.get("extract_number", context="answer")
        assert message is not None, "the catalogs tool adds the kept field's label"
        message.string = EXTRACT_NUMBER[language]
        with open(path, "wb") as handle:
            write_po(handle, catalog, omit_header=False, width=100, sort_output=True)


def _one_request_end_to_end(journey: Journey) -> str:
    """The README's processes on the embedded default, one request, the staff case page."""
    http, agency = _free_port(), _free_port()
    journey.env.update(HUB_HTTP_PORT=str(http),
                       HUB_AGENCY_CIVIL_REGISTRY_URL=f"http://127.0.0.1:{agency}",
                       HUB_RELAY_POLL_INTERVAL="0.05")
    journey.hub("db", "upgrade")
    logs = Path(journey.env["HUB_DATA_DIR"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command in (["simulators", "--only", "civil_registry"], ["relay"],
                        ["worker", "--concurrency", "1"], ["serve"]):
            with open(logs / f"{command[0]}.log", "wb") as log:
                started.append(subprocess.Popen(
                    [*HUB, *command], cwd=journey.root, env=journey.env,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        base = f"http://127.0.0.1:{http}"
        _wait_until_up(f"{base}/healthz", started, logs)
        _wait_until_up(f"http://127.0.0.1:{agency}/_sim/health", started, logs)
        answer = requests.post(f"{base}/api/v1/services/birth_record_extract/requests",
                               json=REQUEST, timeout=10)
        assert answer.status_code == 201, answer.text
        reference, secret = answer.json()["reference"], answer.json()["secret"]
        status = ""
        deadline = time.monotonic() + 60
        while status != "record_found" and time.monotonic() < deadline:
            tracked = requests.get(f"{base}/api/v1/cases/{reference}",
                                   headers={"X-Tracking-Secret": secret}, timeout=10)
            status = tracked.json().get("status", "")
            time.sleep(0.2)
        assert status == "record_found", f"the case stayed {status!r}: " + "\n".join(
            f"{log.name}: {log.read_text(errors='replace')[-1500:]}" for log in logs.iterdir())
        token = journey.hub("staff", "token", "--role", "post_staff", "--post", "ES-MAD",
                            "--subject", "u-journey").stdout.strip()
        staff = requests.Session()
        form = staff.get(f"{base}/staff/en/sign-in", timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        signed = staff.post(f"{base}/staff/en/sign-in", data={"token": token, "csrf": csrf},
                            allow_redirects=False, timeout=10)
        assert signed.status_code == 302, signed.text
        page = staff.get(f"{base}/staff/en/cases/{reference}", timeout=10)
        assert page.status_code == 200, page.text
        return page.text
    finally:
        for process in started:  # ours, by pid
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_until_up(url: str, processes: list[subprocess.Popen[bytes]], logs: Path,
                   within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                name = process.args[3]
                raise AssertionError(f"hub {name} exited: "
                                     f"{(logs / f'{name}.log').read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")
