"""``hub worker --case-threads N`` runs N case-worker threads (the benchmark deploys 4)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from click.testing import CliRunner

from hub.cli import main


class _Runner:
    def __init__(self) -> None:
        import threading

        self.threads: list = []
        self.stop_event = threading.Event()


class _FakeHub:
    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def setup(self) -> None:
        pass

    @contextlib.contextmanager
    def run(self, **options: Any) -> Iterator[_Runner]:
        self.runs.append(options)
        yield _Runner()


def _invoke(monkeypatch: Any, *args: str) -> dict[str, Any]:
    import hub.cli.run as run

    fake = _FakeHub()
    monkeypatch.setattr(run, "build_hub", lambda: fake)
    monkeypatch.setattr(run, "wait_for_signal", lambda stop: stop.set())
    # The service's process tuning (GC, switch interval) is not for the test runner's process.
    monkeypatch.setattr(run, "settle_process", lambda: None)
    result = CliRunner().invoke(main, ["worker", *args])
    assert result.exit_code == 0, result.output
    return fake.runs[0]


def test_case_threads_reach_the_runtime(monkeypatch: Any) -> None:
    assert _invoke(monkeypatch, "--case-threads", "4")["cases"] == 4


def test_one_case_thread_by_default_and_none_without_cases(monkeypatch: Any) -> None:
    assert _invoke(monkeypatch)["cases"] == 1
    assert _invoke(monkeypatch, "--no-cases", "--case-threads", "3")["cases"] == 0
