"""The chaos run's throughput figures: stalls and rates around failures, from completion times."""
from __future__ import annotations

from hub.chaos.figures import Failure, count_between, failure_rates, longest_stall, rate


def test_count_and_rate_over_half_open_windows() -> None:
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert count_between(times, 0.0, 1.0) == 2
    assert count_between(times, 1.0, 2.5) == 3
    assert rate(times, 0.0, 2.0) == 2.0
    assert rate(times, 3.0, 3.0) is None


def test_longest_stall_is_the_widest_gap_edges_included() -> None:
    times = [10.0, 11.0, 12.0, 30.5, 31.0]
    assert longest_stall(times, start=10.0, end=31.0) == (18.5, 12.0)
    # Nothing completing for a while after the start is a stall too.
    assert longest_stall(times, start=0.0, end=31.0) == (18.5, 12.0)
    assert longest_stall(times, start=-20.0, end=31.0) == (30.0, -20.0)
    # Completions outside the window do not shorten a gap inside it.
    assert longest_stall([1.0, 50.0], start=10.0, end=20.0) == (10.0, 10.0)


def test_a_gap_while_nothing_was_in_flight_is_no_stall() -> None:
    times = [10.0, 11.0, 30.0, 31.0, 33.0]
    # Idle at 20 s (everything submitted had settled): the 19 s gap was waiting for work.
    assert longest_stall(times, start=10.0, end=33.0, idle=[20.0]) == (2.0, 31.0)
    # Idle moments outside a gap do not excuse it.
    assert longest_stall(times, start=10.0, end=33.0, idle=[10.5, 32.0]) == (19.0, 11.0)


def test_rates_before_during_and_after_a_failure() -> None:
    # 10/s for 10 s, nothing for 4 s while the failure lasts, then 5/s.
    times = [i / 10 for i in range(100)] + [14 + i / 5 for i in range(50)]
    (figures,) = failure_rates(times, [Failure("kill_leader", started=10.0, restored=14.0,
                                               detail={"node": "n1"})],
                               window=5.0, min_during=2.0, origin=0.0)
    assert figures == {"failure": "kill_leader", "at_s": 10.0, "lasted_s": 4.0,
                       "before_per_s": 10.0, "during_per_s": 0.0, "after_per_s": 5.0,
                       "node": "n1"}


def test_a_failure_over_at_once_is_measured_over_the_minimum_window() -> None:
    times = [10.5, 11.0, 11.5, 12.0]
    (figures,) = failure_rates(times, [Failure("sigkill", 10.0, 10.1, {})], window=5.0,
                               min_during=2.0)
    assert figures["during_per_s"] == 1.5  # three completions in [10, 12)
    assert figures["after_per_s"] == 0.2  # one in [12, 17)
