"""Turning a load run into figures: throughput, latency percentiles, CPU and memory.

    result = summarize("hub", load, completions, usage, machine_cores)

``completions`` maps each request's key to the time its work was done (the case reached its
final status, the result row was written, the response came back, the message was consumed).
Throughput counts completions inside the measurement window (after warm-up); latency is counted
for requests *scheduled* inside the window, from their scheduled start to their completion.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.procs import Usage


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of an ascending list; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0.0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass
class Figures:
    """One measured run of one scenario."""

    scenario: str
    mode: str                       # closed (peak) | open (fixed rate)
    offered_rate: float | None      # open loop: requests per second offered
    throughput: float               # completions per second in the window
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    submitted: int
    completed: int
    errors: int
    unfinished: int
    duration: float
    cpu_cores: float                # CPU of the processes under test, in cores
    peak_rss_mb: float              # sum of their peak resident sets
    machine_cpu_cores: float        # the whole machine (includes RabbitMQ, PostgreSQL, load)
    #: CPU milliseconds of the processes under test per completed request: the cost of the
    #: work itself, which other load on the machine does not change much.
    cpu_ms_per_request: float | None = None
    #: Requests completed at any time of the run (warm-up and drain included): that work got
    #: done, whatever fell inside the window on a slow machine.
    completed_total: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("throughput", "p50_ms", "p95_ms", "p99_ms", "cpu_cores", "peak_rss_mb",
                    "machine_cpu_cores", "duration", "offered_rate", "cpu_ms_per_request"):
            if isinstance(data[key], float):
                data[key] = round(data[key], 2)
        return data


def summarize(scenario: str, load: dict[str, Any], completions: dict[str, float],
              usage: Usage, machine_cores: float, *, mode: str,
              offered_rate: float | None = None) -> Figures:
    t_warm, t_end = load["t_warm"], load["t_end"]
    duration = t_end - t_warm
    in_window = 0
    latencies: list[float] = []
    submitted = completed = unfinished = completed_total = 0
    for key, scheduled, _answered, ok in load["records"]:
        if not ok:
            continue
        done = completions.get(key)
        completed_total += done is not None
        if done is not None and t_warm <= done < t_end:
            in_window += 1
        if not (t_warm <= scheduled < t_end):
            continue
        submitted += 1
        if done is None:
            unfinished += 1
        else:
            completed += 1
            latencies.append(max(0.0, done - scheduled) * 1000)
    latencies.sort()
    throughput = in_window / duration if duration > 0 else 0.0
    return Figures(
        scenario=scenario, mode=mode, offered_rate=offered_rate,
        throughput=throughput,
        cpu_ms_per_request=usage.cpu_cores / throughput * 1000 if throughput else None,
        p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99), submitted=submitted, completed=completed,
        errors=int(load["errors"]), unfinished=unfinished, duration=duration,
        cpu_cores=usage.cpu_cores, peak_rss_mb=usage.peak_rss_mb,
        machine_cpu_cores=machine_cores, usage=usage.as_dict(), completed_total=completed_total,
        error_samples=list(load.get("error_samples", [])))
