"""The cluster chaos run's process group: kills and restarts from two threads never leave a
process behind, and nothing starts once the group is stopping."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from hub.chaos import cluster
from hub.chaos.failover import RoleGroup


@pytest.fixture
def sleepers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RoleGroup:
    """A group whose "hub processes" sleep (a minute, far longer than the test)."""
    monkeypatch.setattr(cluster, "HUB", [sys.executable, "-c", "import time; time.sleep(60)"])
    group = RoleGroup(env={}, log_dir=tmp_path)
    yield group
    group.stop(5)


def test_kills_beside_the_supervisor_leave_one_process_per_role(sleepers: RoleGroup) -> None:
    sleepers.start(cluster.Role("worker-1", []))
    started: list[int] = []
    stop = threading.Event()
    spawned = []
    original = cluster.ProcessGroup.start

    def tracking_start(self: cluster.ProcessGroup, role: cluster.Role) -> None:
        original(self, role)
        spawned.append(self.processes[role.name])

    def supervise() -> None:
        while not stop.is_set():
            started.extend(sleepers.restart_dead())

    cluster.ProcessGroup.start = tracking_start  # type: ignore[method-assign]
    try:
        thread = threading.Thread(target=supervise)
        thread.start()
        for _ in range(10):
            sleepers.kill("worker-1")
        stop.set()
        thread.join()
    finally:
        cluster.ProcessGroup.start = original  # type: ignore[method-assign]
    sleepers.stop(5)
    # Every process ever started is gone: none was started beside the one tracked.
    assert [p.pid for p in spawned if p.poll() is None] == []
    assert len(spawned) == 10 + len(started)


def test_nothing_starts_once_stopped(sleepers: RoleGroup) -> None:
    sleepers.start(cluster.Role("relay-1", []))
    sleepers.stop(5)
    sleepers.start(cluster.Role("relay-2", []))
    assert "relay-2" not in sleepers.processes
    assert all(p.poll() is not None for p in sleepers.processes.values())
