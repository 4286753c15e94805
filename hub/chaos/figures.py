"""Throughput figures of a chaos run, from the store's own completion times: how long the hub
went without completing any exchange (the longest stall) and the exchanges per second before,
during and after each failure.

The completion time of an exchange is when the hub recorded its settlement: ``answered_at`` for
an answered exchange, ``updated_at`` for one parked as a dead letter. Times are wall-clock
seconds (epoch); failures carry the wall-clock times of their start and of the moment the
service was back.

    times = completion_times(hub.store)
    stall = longest_stall(times, start=first, end=last)
    rates = failure_rates(times, failures)
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Iterable

#: Seconds of running measured before and after a failure.
WINDOW_S = 10.0
#: A failure that is over at once (a process killed and restarted, a promotion in 0.2 s) is
#: still measured over this many seconds: what matters is how fast the hub recovers from it.
MIN_DURING_S = 5.0


@dataclass(frozen=True)
class Failure:
    """One thing broken on purpose: what, when (wall clock) and when it was back."""

    name: str
    started: float
    restored: float
    detail: dict[str, Any]


def completion_times(store: Any) -> list[float]:
    """Sorted wall-clock seconds at which each settled exchange was settled."""
    from sqlalchemy import select

    from hub.store.models import ExchangeRow

    with store.session() as session:
        rows = session.execute(select(ExchangeRow.status, ExchangeRow.answered_at,
                                      ExchangeRow.updated_at).where(
            ExchangeRow.status.in_(("answered", "dead_lettered")))).all()
    times = []
    for status, answered_at, updated_at in rows:
        moment = answered_at if status == "answered" and answered_at else updated_at
        if moment is not None:
            times.append(moment.timestamp())
    return sorted(times)


def count_between(times: list[float], start: float, end: float) -> int:
    """Completions in ``[start, end)`` (``times`` sorted)."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def rate(times: list[float], start: float, end: float) -> float | None:
    """Exchanges per second over ``[start, end)``; None for an empty window."""
    if end <= start:
        return None
    return round(count_between(times, start, end) / (end - start), 1)


def longest_stall(times: list[float], *, start: float, end: float,
                  idle: Iterable[float] = ()) -> tuple[float, float | None]:
    """The longest time within ``[start, end]`` with no exchange completing while work was due,
    and when it began.

    The edges count: a run that completes nothing for 40 s after ``start`` stalled 40 s.
    ``idle``: moments at which nothing was in flight (every submitted exchange settled); a gap
    that contains one is the hub waiting for work, not a stall."""
    inside = [t for t in times if start <= t <= end]
    edges = [start, *inside, end]
    quiet = sorted(idle)
    gap, began = 0.0, None
    for before, after in zip(edges, edges[1:]):
        if after - before <= gap:
            continue
        if bisect.bisect_left(quiet, after) > bisect.bisect_right(quiet, before):
            continue  # idle at some point in between
        gap, began = after - before, before
    return round(gap, 1), began


def failure_rates(times: list[float], failures: Iterable[Failure], *,
                  window: float = WINDOW_S, min_during: float = MIN_DURING_S,
                  origin: float = 0.0) -> list[dict[str, Any]]:
    """For each failure: exchanges/s over ``window`` seconds before it, while it lasted (at
    least ``min_during`` s), and over ``window`` seconds after. ``origin``: wall-clock time of
    the run's start, so that the report's ``at_s`` match its events."""
    out = []
    for failure in failures:
        during_end = max(failure.restored, failure.started + min_during)
        out.append({
            "failure": failure.name,
            "at_s": round(failure.started - origin, 1),
            "lasted_s": round(failure.restored - failure.started, 1),
            "before_per_s": rate(times, failure.started - window, failure.started),
            "during_per_s": rate(times, failure.started, during_end),
            "after_per_s": rate(times, during_end, during_end + window),
            **failure.detail,
        })
    return out
