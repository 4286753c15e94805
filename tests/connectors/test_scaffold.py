"""``hub connector new``: the scaffold of a new agency passes the conformance kit unchanged.

The project's packages are copied to a scratch directory, the scaffold writes the new agency
there (through the real CLI), and pytest runs the generated conformance test in a subprocess
whose import path puts the copy first.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "connectors", "schemas", "mappings", "security")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for package in PACKAGES:
        if (ROOT / package).is_dir():
            shutil.copytree(ROOT / package, tmp_path / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests" / "connectors").mkdir(parents=True)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["hub.testing.conformance"]\n')
    return tmp_path


@pytest.mark.parametrize("protocol", ["soap", "rest"])
def test_scaffolded_connector_passes_the_kit_unchanged(project: Path, protocol: str) -> None:
    name = f"equipment_{protocol}"
    result = CliRunner().invoke(main, ["connector", "new", name, f"--{protocol}",
                                       "--title", "Ministry of Equipment",
                                       "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert f"connectors/{name}/connector.py" in result.output
    env = {**os.environ, "PYTHONPATH": str(project)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"tests/connectors/test_conformance_{name}.py"],
        cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
    # It really ran against the copy, and every kit test ran or was skipped for a reason.
    assert "error" not in run.stdout.lower()


def test_scaffold_refuses_to_overwrite_and_bad_names(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["connector", "new", "dgsn", "--soap", "--root",
                                str(project)]).exit_code != 0
    assert runner.invoke(main, ["connector", "new", "Bad-Name", "--rest", "--root",
                                str(project)]).exit_code != 0
    assert runner.invoke(main, ["connector", "new", "neworg", "--root",
                                str(project)]).exit_code != 0


def test_operation_name_reaches_every_generated_file(project: Path) -> None:
    result = CliRunner().invoke(main, ["connector", "new", "civil_registry", "--soap",
                                       "--operation", "check_birth_record",
                                       "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert "hub keys add civil_registry" in result.output
    written = {p.relative_to(project).as_posix(): p.read_text("utf-8")
               for p in project.rglob("*") if p.is_file() and "civil_registry" in str(p)}
    assert {"mappings/civil_registry/check_birth_record.request.yaml",
            "mappings/civil_registry/check_birth_record.reply.yaml",
            "connectors/civil_registry/samples.yaml"} <= set(written)
    text = "\n".join(written.values())
    assert "check_record" not in text and "CheckRecord" not in text
    assert 'SoapOperation("CheckBirthRecord", service_code="checkBirthRecord")' in text
    assert "name: civil_registry.check_birth_record.reply" in text
    assert 'element name="CheckBirthRecordRequest"' in text
    assert "operations:\n  check_birth_record:" in written["connectors/civil_registry/agency.yaml"]
    bad = CliRunner().invoke(main, ["connector", "new", "other", "--rest", "--operation",
                                    "CheckRecord", "--root", str(project)])
    assert bad.exit_code != 0 and "operation name 'CheckRecord'" in bad.output
    assert not (project / "connectors" / "other").exists(), "nothing written for a bad name"


def test_the_kit_fails_a_broken_mapping_of_the_answer_data(project: Path) -> None:
    """Mapping the wrong field of the agency's answer into the canonical data, or leaving one
    out, passes an outcome-only check; the kit's data checks catch both."""
    assert CliRunner().invoke(main, ["connector", "new", "broken", "--rest",
                                     "--root", str(project)]).exit_code == 0
    reply = project / "mappings" / "broken" / "check_record.reply.yaml"
    reply.write_text(reply.read_text("utf-8").replace(
        "- {to: data.checked_at, from: checkedAt}",
        "- {to: data.checked_at, from: checkedAt}\n  - {to: data.checked_by, from: checkId}"),
        "utf-8")
    env = {**os.environ, "PYTHONPATH": str(project)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-k", "promised or contract", "tests/connectors/test_conformance_broken.py"],
        cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode != 0, run.stdout[-3000:]
    assert "data.checked_by ('RC-" in run.stdout          # a field no sample promises
    assert "the reply mapping writes data ['checked_at', 'checked_by']" in run.stdout
