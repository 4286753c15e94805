"""Driving one load run against processes already started, and collecting its completions.

    figures = drive(group, spec, completions=hub_completions(db_url, base), scenario="hub")

The load generator runs in its own process (`bench.load`). The measurement window opens after
its warm-up and closes at the end of its run: CPU of the processes under test is counted over
exactly that window. After the run, `drive` waits for the work still in flight to finish (up to
``drain``) before it reads the completions.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from bench.load import LoadSpec
from bench.measure import Figures, summarize
from bench.procs import MachineSampler, ProcessGroup, machine_cpu_seconds

#: Reads completions: returns {key: done time}.
Completions = Callable[[], dict[str, float]]


def drive(group: ProcessGroup, spec: LoadSpec, *, scenario: str, completions: Completions | None,
          drain: float = 30.0, on_window: Callable[[], None] | None = None,
          after_load: Callable[[], None] | None = None,
          observe: ProcessGroup | None = None) -> Figures:
    """Run ``spec`` and summarize it. ``completions`` None means the load generator's response
    times are the completions (synchronous calls). ``observe``: processes whose CPU is reported
    beside (the shared simulator), not counted as the scenario's own."""
    scratch = Path(tempfile.mkdtemp(prefix="hub-bench-load-"))
    spec_path, out_path = scratch / "spec.json", scratch / "out.json"
    spec_path.write_text(json.dumps(asdict(spec)))
    started = time.time()
    loadgen = group.start("loadgen", ["-m", "bench.load", str(spec_path), str(out_path)],
                          ready="START", measured=False, timeout=120)
    t0 = float(loadgen.ready_line.split()[1])  # type: ignore[attr-defined]
    # The window opens after the warm-up, on the load generator's clock.
    time.sleep(max(0.0, t0 + spec.warmup - time.time()))
    group.check_alive()
    group.mark()
    if observe is not None:
        observe.mark()
    machine_start = machine_cpu_seconds()
    sampler = MachineSampler()
    sampler.mark()
    if on_window:
        on_window()
    time.sleep(max(0.0, t0 + spec.warmup + spec.duration - time.time()))
    group.end()
    if observe is not None:
        observe.end()
    machine = (machine_cpu_seconds() - machine_start) / max(1e-6, spec.duration)
    breakdown = sampler.end()
    code = loadgen.popen.wait(timeout=spec.duration + 120)
    if code != 0 or not out_path.exists():
        raise RuntimeError(f"load generator failed ({code}):\n{loadgen.log_tail()}")
    load: dict[str, Any] = json.loads(out_path.read_text())
    if load["records"] and all(not r[3] for r in load["records"]):
        raise RuntimeError(f"{scenario}: every request was refused, e.g."
                           f" {load['error_samples'][:2]}")
    if after_load:
        after_load()
    if completions is None:
        done = {key: answered for key, _s, answered, ok in load["records"] if ok}
    else:
        expected = sum(1 for r in load["records"] if r[3])
        deadline = time.time() + drain
        done = completions()
        while len(done) < expected and time.time() < deadline:
            time.sleep(0.25)
            done = completions()
    usage = group.usage()
    for child in list(group.children):
        if child is loadgen:
            group.children.remove(child)
    figures = summarize(scenario, load, done, usage, machine, mode=spec.mode,
                        offered_rate=spec.rate if spec.mode == "open" else None)
    figures.usage["machine"] = breakdown
    if observe is not None:
        other = observe.usage()
        figures.usage["observed"] = other.as_dict()["by_role"]
    _ = started
    return figures


def _seconds(value: Any) -> float:
    """A completion time as epoch seconds (SQLite hands timestamps back as text)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime, timezone

        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    return value.timestamp()


def sql_completions(url: str, sql: str, params: dict[str, Any]) -> Completions:
    """Completions read from a database: ``sql`` returns (key, done) rows, ``done`` a float or
    a timestamp."""
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    engine = create_engine(normalize_url(url), pool_size=1)

    def read() -> dict[str, float]:
        with engine.connect() as db:
            rows = db.execute(text(sql), params).all()
        return {key: _seconds(done) for key, done in rows}

    return read


HUB_DONE_SQL = ("SELECT c.reference, e.at FROM case_events e JOIN cases c ON c.id = e.case_id"
                " WHERE e.id > :base AND e.to_status IN ('verified', 'rejected',"
                " 'more_information_requested')")
HUB_COUNT_SQL = ("SELECT count(*) FROM case_events WHERE id > :base AND to_status IN"
                 " ('verified', 'rejected', 'more_information_requested')")
HUB_BASE_SQL = "SELECT coalesce(max(id), 0) FROM case_events"
CELERY_DONE_SQL = "SELECT request_id, written_at FROM bench_results WHERE id > :base"
CELERY_COUNT_SQL = "SELECT count(*) FROM bench_results WHERE id > :base"
CELERY_BASE_SQL = "SELECT coalesce(max(id), 0) FROM bench_results"


def scalar(url: str, sql: str) -> int:
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    engine = create_engine(normalize_url(url))
    with engine.connect() as db:
        value = db.execute(text(sql)).scalar()
    engine.dispose()
    return int(value or 0)
