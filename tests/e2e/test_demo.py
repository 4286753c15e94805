"""``hub demo`` is the README's main job: it must pass, and say so in one JSON object."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_json_reports_every_exchange_reaching_its_outcome(tmp_path: Path):
    hub = Path(sys.executable).with_name("hub")
    env = {**os.environ, "HUB_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(hub), "demo", "--json"], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    rows = report["exchanges"]
    assert rows, "the demo ran no exchange"
    for row in rows:
        assert {"service", "agency", "case_reference", "expected_outcome",
                "actual_outcome"} <= set(row)
        assert row["actual_outcome"] == row["expected_outcome"]
    services = {row["service"] for row in rows}
    assert "driving_licence_authentication" in services
