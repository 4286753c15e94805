"""The benchmark harness runs end to end and reports what the issue asks for (never timing)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import percentile, slope
from bench.report import BEGIN, END, markdown, write_docs

KEYS = {"hub_direct_ratio", "hub_celery_ratio", "hub_raw_ratio", "hub_throughput",
        "hub_p99_added_ms", "embedded_throughput", "hub_cpu_ms_per_exchange",
        "pg_cpu_ms_per_exchange", "scale_ratio_1e6"}
SCENARIOS = {"raw_broker", "direct", "hub", "hub_embedded", "celery", "scale"}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) is None


def test_slope_of_a_line_and_of_flat_memory() -> None:
    assert slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert slope([(0, 80.0), (1, 80.0), (2, 80.0)]) == 0.0
    assert slope([(1, 5.0)]) == 0.0


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_every_scenario_runs_and_reports_the_json_keys(rabbitmq_url: str, postgres_url: str,
                                                       tmp_path: Path) -> None:
    # postgres_url / rabbitmq_url: skip (or fail under HUB_REQUIRE_SERVICES) without services.
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", "--root",
                          str(tmp_path)], capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    assert KEYS <= set(results)
    assert SCENARIOS <= set(results)
    for name in ("raw_broker", "direct", "hub", "hub_embedded", "celery"):
        scenario = results[name]
        for field in ("throughput", "p50_ms", "p95_ms", "p99_ms", "cpu_cores", "peak_rss_mb"):
            assert field in scenario, (name, field)
        for label, run in scenario["runs"].items():
            # Work was done and none refused. What falls inside a one-second window depends on
            # the machine's speed and load, so only the whole run's completions are asserted.
            assert run["errors"] == 0, (name, label, run)
            assert run["completed_total"] > 0, (name, label, run)
    assert set(results["hub"]["by_workers"]) == {"1"}
    assert results["hub"]["cpu_cores"] > 0 and results["hub"]["peak_rss_mb"] > 0
    assert results["scale"]["points"][0]["stored_cases"] == 100
    # The grown chain (filled records included) is sealed, checkpointed and verifies intact.
    audit = results["scale"]["points"][0]["audit"]
    assert audit["available"] and audit["intact"] and audit["full_records_checked"] > 600
    assert results["meta"]["signed"] is True
    assert set(results["targets"]) >= {"hub_celery_ratio", "hub_cpu_ms_per_exchange",
                                       "embedded_throughput", "hub_p99_added_ms",
                                       "scale_ratio_1e6", "hub_throughput"}
    assert results["scale_ratio_1e6"] is None  # the smoke run stores 100 cases, never 10^6
    page = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert BEGIN in page and END in page and "python -m bench --smoke" in page
    assert (tmp_path / "docs" / "img" / "bench-throughput-latency.png").stat().st_size > 1000


def test_a_saturated_baseline_is_flagged_not_reported() -> None:
    from bench.suite import p99_added

    hub = {"p99_ms": 40.0}
    assert p99_added(hub, {"p99_ms": 10.0, "offered_rate": 30.0, "throughput": 30.0}) == (
        30.0, None)
    added, flag = p99_added(hub, {"p99_ms": 90.0, "offered_rate": 30.0, "throughput": 12.0})
    assert added is None and "saturated" in flag
    added, flag = p99_added(hub, {"p99_ms": 55.0, "offered_rate": 30.0, "throughput": 30.0})
    assert added is None and "slower" in flag


def test_scale_ratio_compares_with_the_smallest_size() -> None:
    from bench.suite import scale_ratio

    points = {"points": [{"stored_cases": 10**3, "throughput": 80.0},
                         {"stored_cases": 10**6, "throughput": 70.0}]}
    assert scale_ratio(points, 10**6) == 0.875
    assert scale_ratio({"points": points["points"][:1]}, 10**6) is None


def test_docs_keep_what_people_wrote_outside_the_markers(tmp_path: Path) -> None:
    results = json.loads((Path(__file__).parent / "sample_results.json").read_text())
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir(parents=True)
    page.write_text(f"# Benchmarks\n\nMethod by hand.\n\n{BEGIN}\nold table\n{END}\n\n"
                    "## Profile findings\n\nkept\n")
    write_docs(results, tmp_path, "python -m bench --quick")
    text = page.read_text()
    assert "Method by hand." in text and "## Profile findings\n\nkept" in text
    assert "old table" not in text
    assert markdown(results, "python -m bench --quick") in text
