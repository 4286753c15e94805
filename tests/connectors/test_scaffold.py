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
