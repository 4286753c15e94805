"""The whole benchmark in one run: every scenario, the ratios that matter, the targets.

    results = run_suite(Context(QUICK, amqp_url, postgres_url))

Order: the hub first (its peak sets the common load), then the baselines. Latency is measured
at one common offered load, half of the hub's peak, for every scenario that can carry it (a
scenario whose own peak is lower is measured at half of its own peak, and says so).
"""
from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from typing import Any

import psutil

from bench import pipelines, scale, scenarios
from bench.context import Context
from bench.measure import Figures

TARGETS = {
    "hub_celery_ratio": (">=", 1.0, "hub/Celery throughput, same run"),
    "hub_cpu_ms_per_exchange": ("<=", 5.0, "CPU of the hub's processes per exchange (ms)"),
    "embedded_throughput": (">=", 200.0, "embedded default, exchanges per second"),
    "hub_p99_added_ms": ("<=", 50.0, "p99 latency added by the hub at half of peak (ms)"),
    "scale_ratio_1e6": (">=", 0.85, "throughput at 10^6 stored cases / at 10^3"),
    "hub_throughput": (">=", 500.0, "signed exchanges per second end to end (stretch)"),
    "soak_rss_slope_mb_per_min": ("<=", 0.5, "hub worker memory slope over the soak (MB/min)"),
}

HUB_INCLUDES = ("HTTP intake (waitress + Flask: JSON Schema validation, envelope sealed (JWS), case"
                " + history + exchange + outbox + audit in one transaction, concurrent requests"
                " sharing commits), outbox relay (a batch published, its confirms awaited once),"
                " RabbitMQ quorum queue, connector worker (batches: parse + seal check,"
                " idempotency, map, OpenAPI validation, request signed (JWS), HTTP call to the"
                " simulator, answer signature verified, validated and mapped; one transaction per"
                " batch: processed marks + seen answer ids + exchange answered + route decision +"
                " status change + history + audit + operational record), audit chain; PostgreSQL")
CELERY_INCLUDES = ("HTTP intake (waitress + Flask: same JSON Schema, apply_async with publisher"
                   " confirms), Celery worker (threads pool, acks_late) through the same NARSA"
                   " connector (map, OpenAPI validation, request signed (JWS), HTTP call, answer"
                   " signature verified, validated and mapped), result row written to PostgreSQL"
                   " (idempotent on the request id)")
DIRECT_INCLUDES = ("the load generator POSTs NARSA's wire request (made with the hub's mapping,"
                   " signed with a detached JWS) to the simulator, verifies the answer's signature"
                   " and parses it; keep-alive connections, no hub")


def message_bytes(keys_dir: str) -> int:
    """Size of a sealed request envelope of the workload (the hub's JWS seal over the run's
    keys): the raw broker scenario's message."""
    from bench import workload
    from hub.config import Settings
    from hub.envelope import Envelope, SchemaRef
    from hub.keyset import HubKeys
    from hub.evidence.seal import JwsSeal

    keys = HubKeys.load(Settings.from_env({"HUB_KEYS_DIR": keys_dir}))
    envelope = Envelope.new(correlation_id="DLA-2026-ABCDEFG", service=workload.SERVICE,
                            kind="request", sender="ES-MAD", recipient="narsa",
                            schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                            payload=workload.canonical_payload(workload.intake_request(1)))
    return len(JwsSeal(keys.signer, keys.trust).seal(envelope).to_bytes())


def _latency_rate(common: float, own_peak: float) -> float:
    return common if own_peak >= common * 1.1 else max(5.0, round(own_peak / 2, 1))


def run_suite(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    started = time.time()
    res: dict[str, Any] = {"meta": {
        "mode": p.name, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        # Every path signs: the hub (seal, request JWS, answer verified), the Celery pipeline
        # and the direct calls (request JWS, answer verified), on one PKI per run.
        "signed": True,
        "warmup_s": p.warmup, "duration_s": p.duration, "window": p.window,
        "connector_threads_per_worker": p.concurrency}}
    with scenarios.dev_pki(ctx), scenarios.simulator(ctx):
        # 3. the hub, 1, 2 and 4 worker processes: peak, then latency at half of that peak.
        hub: dict[str, Any] = {}
        for workers in p.hub_workers:
            with pipelines.hub_deployment(ctx, workers=workers) as deployment:
                runs = pipelines.peak_and_half(ctx, deployment)
            hub[str(workers)] = scenarios._scenario(
                runs, includes=HUB_INCLUDES,
                workers=workers)
        best = max(hub, key=lambda w: hub[w]["throughput"])
        hub_peak = hub[best]["throughput"]
        common = max(5.0, round(hub_peak / 2, 1))
        res["hub"] = {"best_workers": int(best), **hub[best], "by_workers": hub}

        # 1. raw broker, 2. direct calls.
        res["raw_broker"] = scenarios.raw_broker(ctx, message_bytes(ctx.keys_dir),
                                                 rate=common)
        direct_runs = {"peak": scenarios.direct(ctx)}
        direct_runs["half"] = scenarios.direct(ctx, rate=common, label=f"at {common}/s")
        res["direct"] = scenarios._scenario(direct_runs, includes=DIRECT_INCLUDES)

        # 4. embedded default.
        with pipelines.hub_deployment(ctx, workers=1, embedded=True) as deployment:
            runs = {"peak": pipelines.run(ctx, deployment)}
            rate = _latency_rate(common, runs["peak"].throughput)
            runs["half"] = pipelines.run(ctx, deployment, rate=rate, offset=10**6)
        ctx.say(f"embedded: {runs['peak'].throughput:.0f}/s, p99 {runs['half'].p99_ms or 0:.0f} ms")
        res["hub_embedded"] = scenarios._scenario(
            runs, includes="the hub scenario on the embedded default: SQLite store and SQLite"
            " queue (synchronous=FULL), one web process and one worker process with the relay")

        # 5. Celery pipeline, same number of worker processes as the hub's best.
        with pipelines.celery_deployment(ctx, workers=int(best)) as deployment:
            runs = {"peak": pipelines.run(ctx, deployment)}
            rate = _latency_rate(common, runs["peak"].throughput)
            runs["half"] = pipelines.run(ctx, deployment, rate=rate, offset=10**6)
        ctx.say(f"celery: {runs['peak'].throughput:.0f}/s, p99 {runs['half'].p99_ms or 0:.0f} ms")
        res["celery"] = scenarios._scenario(
            runs, includes=CELERY_INCLUDES,
            workers=int(best))

        # 6. scale, then the curves and the soak (full mode).
        res["scale"] = scale.scale(ctx, int(best))
        if p.curve:
            res["curves"] = curves(ctx, int(best), hub_peak)
        if p.soak_minutes:
            res["soak"] = scale.soak(ctx, int(best), common)

    half_hub = res["hub"]["runs"]["half"]
    half_direct = res["direct"]["runs"]["half"]
    peak_run = res["hub"]["runs"]["peak"]
    added, added_flag = p99_added(half_hub, half_direct)
    res.update({
        "hub_throughput": hub_peak,
        "hub_direct_ratio": _ratio(hub_peak, res["direct"]["throughput"]),
        "hub_celery_ratio": _ratio(hub_peak, res["celery"]["throughput"]),
        "hub_raw_ratio": _ratio(hub_peak, res["raw_broker"]["throughput"]),
        "hub_p99_added_ms": added,
        "hub_p99_added_flag": added_flag,
        "embedded_throughput": res["hub_embedded"]["throughput"],
        # CPU of the hub's own processes over the peak window / completed exchanges, and that
        # of PostgreSQL beside it: the figures other load on the machine changes least.
        "hub_cpu_ms_per_exchange": peak_run.get("cpu_ms_per_request"),
        "pg_cpu_ms_per_exchange": _per_exchange(
            peak_run["usage"].get("machine", {}).get("postgresql"), peak_run["throughput"]),
        "celery_cpu_ms_per_request": res["celery"]["runs"]["peak"].get("cpu_ms_per_request"),
        "scale_ratio_1e6": scale_ratio(res["scale"], 10**6),
    })
    if "soak" in res:
        res["soak_rss_slope_mb_per_min"] = res["soak"]["rss_slope_mb_per_min"]
    res["targets"] = targets(res)
    res["meta"]["seconds"] = round(time.time() - started, 1)
    return res


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _per_exchange(cores: float | None, throughput: float) -> float | None:
    return round(cores * 1000 / throughput, 2) if cores is not None and throughput else None


def p99_added(hub: dict[str, Any], direct: dict[str, Any]) -> tuple[float | None, str | None]:
    """The hub's p99 minus the direct calls' at the same rate, or None with the reason when
    that difference means nothing: the direct baseline could not carry the rate itself (its
    latency is then its own queue, and the difference can even come out negative)."""
    if hub["p99_ms"] is None or direct["p99_ms"] is None:
        return None, "not measured"
    offered = direct.get("offered_rate") or 0.0
    if offered and direct["throughput"] < 0.9 * offered:
        return None, (f"direct baseline saturated ({direct['throughput']:.1f}/s of"
                      f" {offered:.1f}/s offered)")
    added = round(hub["p99_ms"] - direct["p99_ms"], 2)
    if added < 0:
        return None, (f"direct baseline slower than the hub (p99 {direct['p99_ms']:.1f} ms):"
                      " the machine was busier during the baseline")
    return added, None


def scale_ratio(scale: dict[str, Any], size: int) -> float | None:
    """Throughput at ``size`` stored cases over throughput at the smallest size measured."""
    points = {p["stored_cases"]: p["throughput"] for p in scale.get("points", [])}
    if size not in points or not points:
        return None
    return _ratio(points[size], points[min(points)])


def targets(res: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, (op, bound, what) in TARGETS.items():
        value = res.get(key)
        holds = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out[key] = {"target": f"{op} {bound:g}", "value": value, "holds": holds, "what": what}
    return out


def curves(ctx: Context, workers: int, hub_peak: float) -> dict[str, list[dict[str, Any]]]:
    """Throughput and latency against offered load (fractions of the hub's peak)."""
    levels = [max(5.0, round(hub_peak * f, 1)) for f in ctx.profile.curve]
    out: dict[str, list[dict[str, Any]]] = {"hub": [], "celery": [], "direct": []}

    def point(fig: Figures) -> dict[str, Any]:
        return {"offered": fig.offered_rate, "throughput": round(fig.throughput, 1),
                "p50_ms": fig.p50_ms, "p99_ms": fig.p99_ms, "unfinished": fig.unfinished}

    with pipelines.hub_deployment(ctx, workers=workers) as deployment:
        for n, rate in enumerate(levels):
            out["hub"].append(point(pipelines.run(ctx, deployment, rate=rate,
                                                  offset=4_000_000 + n * 100_000)))
    with pipelines.celery_deployment(ctx, workers=workers) as deployment:
        for n, rate in enumerate(levels):
            out["celery"].append(point(pipelines.run(ctx, deployment, rate=rate,
                                                     offset=5_000_000 + n * 100_000)))
    for rate in levels:
        out["direct"].append(point(scenarios.direct(ctx, rate=rate, label=f"at {rate}/s")))
    ctx.say("curves: " + ", ".join(f"{k}: {[p['throughput'] for p in v]}" for k, v in out.items()))
    return out


