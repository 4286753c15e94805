"""security.replay: the freshness window and the seen-id check."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from hub.errors import ConfigurationError, MalformedEnvelope, ReplayDetected
from security.replay import InMemorySeenIds, ReplayGuard, SeenIds


@pytest.fixture
def guard(clock) -> ReplayGuard:
    return ReplayGuard(InMemorySeenIds(), window_seconds=300, skew_seconds=60, clock=clock)


def reason(exc: pytest.ExceptionInfo) -> str:
    return exc.value.details["reason"]


def test_fresh_message_is_accepted_once(guard: ReplayGuard, clock) -> None:
    guard.check("narsa", "m-1", clock.now)
    with pytest.raises(ReplayDetected, match="already received") as exc:
        guard.check("narsa", "m-1", clock.now)
    assert reason(exc) == "seen" and exc.value.details["message_id"] == "m-1"


def test_ids_are_scoped_per_party(guard: ReplayGuard, clock) -> None:
    guard.check("narsa", "m-1", clock.now)
    guard.check("health", "m-1", clock.now)  # another sender may use the same id


def test_stale_message(guard: ReplayGuard, clock) -> None:
    guard.check("narsa", "edge", clock.now - timedelta(seconds=300))
    with pytest.raises(ReplayDetected, match="older than the 300s window") as exc:
        guard.check("narsa", "old", clock.now - timedelta(seconds=301))
    assert reason(exc) == "stale"


def test_future_message_beyond_the_skew(guard: ReplayGuard, clock) -> None:
    guard.check("narsa", "slightly-ahead", clock.now + timedelta(seconds=60))
    with pytest.raises(ReplayDetected, match="in the future") as exc:
        guard.check("narsa", "far-ahead", clock.now + timedelta(seconds=61))
    assert reason(exc) == "future"


def test_a_refused_timestamp_does_not_burn_the_id(guard: ReplayGuard, clock) -> None:
    with pytest.raises(ReplayDetected):
        guard.check("narsa", "m-2", clock.now - timedelta(hours=1))
    guard.check("narsa", "m-2", clock.now)  # the genuine, fresh message still goes through


def test_window_moves_with_the_clock(guard: ReplayGuard, clock) -> None:
    sent = clock.now
    clock.advance(299)
    guard.check("dgsn", "a", sent)
    clock.advance(2)
    with pytest.raises(ReplayDetected):
        guard.check("dgsn", "b", sent)


def test_expired_ws_security_timestamp(guard: ReplayGuard, clock) -> None:
    with pytest.raises(ReplayDetected, match="expired at") as exc:
        guard.check("interior", "m", clock.now - timedelta(seconds=200),
                    expires=clock.now - timedelta(seconds=100))
    assert reason(exc) == "expired"
    guard.check("interior", "m", clock.now - timedelta(seconds=200),
                expires=clock.now + timedelta(seconds=100))


def test_timestamp_forms(guard: ReplayGuard, clock) -> None:
    guard.check("p", "epoch", int(clock.now.timestamp()))
    guard.check("p", "text", clock.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    guard.check("p", "offset", clock.now.astimezone(timezone(timedelta(hours=1))))
    for bad in (datetime(2026, 1, 1), "yesterday", True, None):
        with pytest.raises(MalformedEnvelope):
            guard.check("p", f"bad-{bad!r}", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("message_id", ["", "x" * 129, None])
def test_message_id_is_checked(guard: ReplayGuard, clock, message_id) -> None:
    with pytest.raises(MalformedEnvelope, match="message id"):
        guard.check("p", message_id, clock.now)


def test_configuration_is_checked(clock) -> None:
    with pytest.raises(ConfigurationError, match="add_if_new"):
        ReplayGuard(lambda party, mid: True, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ReplayGuard(InMemorySeenIds(), window_seconds=0)
    assert ReplayGuard(InMemorySeenIds(), window_seconds=300, skew_seconds=60).retention == \
        timedelta(seconds=360)


def test_any_store_with_add_if_new_fits(clock) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def add_if_new(self, party: str, message_id: str) -> bool:
            self.calls.append((party, message_id))
            return len(self.calls) == 1

    store = Recorder()
    assert isinstance(store, SeenIds)
    guard = ReplayGuard(store, clock=clock)
    guard.check("justice", "j-1", clock.now)
    with pytest.raises(ReplayDetected):
        guard.check("justice", "j-1", clock.now)
    assert store.calls == [("justice", "j-1"), ("justice", "j-1")]


def test_in_memory_store_is_atomic_under_threads() -> None:
    seen = InMemorySeenIds()
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        results.append(seen.add_if_new("narsa", "same"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(results) == 16


def test_in_memory_store_is_bounded() -> None:
    seen = InMemorySeenIds(max_entries=3)
    for i in range(5):
        assert seen.add_if_new("p", str(i))
    assert len(seen) == 3
    assert not seen.add_if_new("p", "4")
