"""``hub demo`` is the README's main job: it must pass, and say so in one JSON object.

The demo runs in its own process, as ``make demo`` does, with an empty data directory: it makes
its own development PKI there, serves the hub on loopback and drives every service through the
agency simulators."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from connectors.registry import packaged_agencies
from hub.demo.runner import AGENCY_CHECK, choose

SEVEN = {"repatriation_of_remains", "driving_licence_authentication", "judicial_documents",
         "consular_registration_new", "consular_registration_renewal",
         "consular_registration_update", "registration_certificate"}
#: Statuses that show an agency's (or the register's) answer changed the case.
ADVERSE = {"rejected", "more_information_requested", "certificate_rejected"}


def _demo(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    hub = Path(sys.executable).with_name("hub")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run([str(hub), "demo", "--json", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=data_dir)


def test_demo_covers_the_seven_services_and_each_reaches_its_outcome(tmp_path: Path):
    result = _demo(data_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    every = report["exchanges"]
    rows = [row for row in every if row["service"] != AGENCY_CHECK]
    by_service: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        assert {"service", "agency", "case_reference", "expected_outcome",
                "actual_outcome", "expected_status", "actual_status"} <= set(row)
        assert row["actual_outcome"] == row["expected_outcome"], row
        assert row["actual_status"] == row["expected_status"], row
        assert row["ok"] is True
        by_service[row["service"]].append(row)
    assert set(by_service) == SEVEN == set(report["services"])
    for service, found in by_service.items():
        # One case that ends well and one whose answer changes the case, for every service.
        statuses = {row["actual_status"] for row in found}
        assert statuses & ADVERSE, service
        assert statuses - ADVERSE, service
    # Every agency took part, Justice in both directions.
    assert {row["agency"] for row in rows} >= {"interior", "dgsn", "justice", "health", "narsa"}
    justice = {row["step"] for row in by_service["judicial_documents"]}
    assert {"document_submission", "delivery_certificate"} <= justice
    # Outages were retried until they recovered.
    retried = {row["agency"] for row in rows if row["attempts"] > 1}
    assert {"narsa", "interior", "justice", "dgsn"} <= retried
    # An agency down for good: its dead letter was replayed once it came back.
    assert any(row["replayed"] and row["ok"] for row in by_service[
        "driving_licence_authentication"])
    # Agencies packaged since (`hub connector new`) are checked with their own samples.
    packaged = set(packaged_agencies())
    checked = {row["agency"] for row in every if row["service"] == AGENCY_CHECK}
    assert checked == set(report["agency_checks"]) == packaged - {
        "interior", "dgsn", "justice", "health", "narsa"}
    # The hub and every agency signed (and so verified) the messages.
    assert report["signed"] == {name: True for name in ("hub", *packaged)}
    # The demo made its own development PKI in its data directory.
    assert (tmp_path / "keys").is_dir() and any((tmp_path / "keys").iterdir())


def test_demo_of_one_service_brings_the_cases_it_needs(tmp_path: Path):
    names = {s.name for s in choose("consular_registration_update")}
    assert "registered by the post" in names  # the registration the update needs
    result = _demo("--only", "consular_registration_update", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert set(report["services"]) == {"consular_registration_new",
                                       "consular_registration_update"}
    assert report["ok"] is True
