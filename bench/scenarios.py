"""The scenarios: raw broker, direct calls, the hub (RabbitMQ + PostgreSQL, and embedded), the
Celery pipeline. `bench.scale` adds the growth and soak runs.

Every function starts its processes on fresh resources, runs a closed-loop load to find the peak
and an open-loop load at half of that peak for latency, and cleans up (processes by pid, the
PostgreSQL database dropped, the RabbitMQ namespace deleted).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from bench import drive as d
from bench.context import Context
from bench.infra import delete_queues, new_namespace
from bench.load import LoadSpec
from bench.measure import Figures
from bench.procs import ProcessGroup

ROLES = ["-m", "bench.roles"]
INTAKE_PATH = "/api/v1/services/driving_licence_authentication/requests"


def _spec(ctx: Context, **fields: Any) -> LoadSpec:
    base = dict(warmup=ctx.profile.warmup, duration=ctx.profile.duration)
    base.update(fields)
    return LoadSpec(**base)


def half_rate(peak: float) -> float:
    return max(5.0, round(peak / 2, 1))


# -- the PKI and the simulator, shared by every scenario --------------------------------------

@contextlib.contextmanager
def dev_pki(ctx: Context) -> Iterator[str]:
    """One development PKI for the run (`hub.keyset.init_keys`: CA, the hub's and the agencies'
    keys and certificates, data keys) in a temporary directory, removed afterwards."""
    from hub.keyset import init_keys

    with tempfile.TemporaryDirectory(prefix="hub-bench-keys-") as keys_dir:
        init_keys(Path(keys_dir))
        ctx.keys_dir = keys_dir
        try:
            yield keys_dir
        finally:
            ctx.keys_dir = ""


@contextlib.contextmanager
def simulator(ctx: Context) -> Iterator[str]:
    """The NARSA simulator on the run's PKI: it verifies the JWS of every request (signed by
    the hub's key) and signs every answer, as the agency would."""
    if not ctx.keys_dir:
        raise RuntimeError("the simulator needs the run's PKI: enter dev_pki(ctx) first")
    group = ProcessGroup()
    child = group.start("simulator", [*ROLES, "simulator", json.dumps(
        {"threads": 4, "keys_dir": ctx.keys_dir})])
    ctx.simulator = group
    ctx.simulator_url = child.ready_line.split()[1]  # type: ignore[attr-defined]
    try:
        yield ctx.simulator_url
    finally:
        group.stop()


# -- 1. raw broker ----------------------------------------------------------------------------

def raw_broker(ctx: Context, message_bytes: int, *, rate: float | None = None) -> dict[str, Any]:
    import pika

    queue = f"{new_namespace('raw')}.raw"
    connection = pika.BlockingConnection(pika.URLParameters(ctx.amqp_url))
    connection.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    connection.close()
    runs: dict[str, Figures] = {}
    try:
        common = rate
        for label, mode in (("peak", "closed"), ("half", "open")):
            rate = None
            if label == "half":
                rate = common or half_rate(runs["peak"].throughput)
            out = tempfile.mktemp(prefix="hub-bench-raw-", suffix=".json")
            with ProcessGroup() as group:
                consumer = group.start("consumer", [*ROLES, "raw-consumer", json.dumps(
                    {"url": ctx.amqp_url, "queue": queue, "out": out})])
                spec = _spec(ctx, target="amqp", url=ctx.amqp_url, queue=queue, mode=mode,
                             rate=rate or 0.0, senders=ctx.profile.direct_concurrency,
                             window=ctx.profile.direct_concurrency,
                             message_bytes=message_bytes)

                def wait_drained() -> None:
                    _wait_queue_empty(ctx.amqp_url, queue)
                    group.stop()

                figures = d.drive(group, spec, scenario="raw_broker", completions=lambda: _raw(out),
                                  drain=5, after_load=wait_drained)
                _ = consumer
            runs[label] = figures
            ctx.say(f"raw broker {label}: {figures.throughput:.0f} msg/s"
                    f" p99 {figures.p99_ms or 0:.1f} ms")
    finally:
        delete_queues(ctx.amqp_url, [queue])
    return _scenario(runs, includes="pika publish with publisher confirms (one blocking channel"
                     " per publisher thread), quorum queue, consume with manual acks;"
                     f" {message_bytes}-byte messages")


def _raw(path: str) -> dict[str, float]:
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return {key: received for key, _sent, received in json.load(handle)}


def _wait_queue_empty(url: str, queue: str, timeout: float = 60.0) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if channel.queue_declare(queue, passive=True).method.message_count == 0:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # the last unacked deliveries
    connection.close()


# -- 2. direct calls --------------------------------------------------------------------------

def direct(ctx: Context, *, rate: float | None = None, label: str = "peak") -> Figures:
    mode = "open" if rate else "closed"
    with ProcessGroup() as group:
        figures = d.drive(group, _spec(
            ctx, target="direct", url=ctx.simulator_url, path="/api/v1/licence-verifications",
            mode=mode, rate=rate or 0.0, senders=ctx.profile.direct_concurrency,
            window=ctx.profile.direct_concurrency, keys_dir=ctx.keys_dir), scenario="direct",
            completions=None, observe=ctx.simulator)
    ctx.say(f"direct {label}: {figures.throughput:.0f} calls/s p99 {figures.p99_ms or 0:.1f} ms")
    return figures


def _scenario(runs: dict[str, Figures], *, includes: str, **extra: Any) -> dict[str, Any]:
    """One scenario's object: peak throughput, latency at half of the peak, CPU and memory."""
    peak, half = runs["peak"], runs.get("half")
    return {
        "throughput": round(peak.throughput, 1),
        "p50_ms": half.p50_ms if half else peak.p50_ms,
        "p95_ms": half.p95_ms if half else peak.p95_ms,
        "p99_ms": half.p99_ms if half else peak.p99_ms,
        "latency_at_rate": half.offered_rate if half else None,
        "cpu_cores": round(peak.cpu_cores, 2),
        "cpu_ms_per_request": round(peak.cpu_ms_per_request, 2)
        if peak.cpu_ms_per_request is not None else None,
        "other_load_cores": peak.usage.get("machine", {}).get("other"),
        "peak_rss_mb": round(max(peak.peak_rss_mb, half.peak_rss_mb if half else 0.0), 1),
        "machine_cpu_cores": round(peak.machine_cpu_cores, 2),
        "includes": includes,
        "runs": {label: fig.as_dict() for label, fig in runs.items()},
        **extra,
    }
