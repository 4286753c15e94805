"""Growth and endurance: throughput and latency as stored cases grow (10^3 .. 10^6), audit
verification time as the chain grows, and worker memory over a soak.

Stored cases are added in bulk by SQL (``generate_series``), each with the rows a real finished
case leaves behind: two status events, one answered exchange, six audit records, two
processed-message marks and two sent outbox rows, so every index the hub uses grows the same way.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from bench import pipelines
from bench.context import Context
from bench.infra import fresh_database
from bench.measure import slope
from bench.procs import rss_bytes

FILL_SQL = [
    """INSERT INTO cases (id, reference, service, service_version, status, post, language, data,
         secret_hash, route_round, created_at, updated_at, version)
       SELECT md5('case' || n)::uuid::text, 'FILL-' || n, 'driving_licence_authentication', '1',
         'verified', 'ES-MAD', 'fr', '{"post": "ES-MAD", "filled": true}'::json,
         md5('secret' || n), 1, now() - interval '1 day', now() - interval '1 day', 3
       FROM generate_series(:lo, :hi - 1) AS n""",
    """INSERT INTO case_events (case_id, at, from_status, to_status, actor, reason)
       SELECT md5('case' || n)::uuid::text, now() - interval '1 day', s.f, s.t, 'hub', 'filled'
       FROM generate_series(:lo, :hi - 1) AS n,
            (VALUES (NULL, 'submitted'), ('submitted', 'verifying'), ('verifying', 'verified'))
            AS s(f, t)""",
    """INSERT INTO exchanges (id, case_id, step, round, agency, operation, status, outcome,
         attempts, request_digest, reply_digest, reply, created_at, sent_at, answered_at,
         updated_at)
       SELECT md5('exchange' || n)::uuid::text, md5('case' || n)::uuid::text, 'licence_check', 1,
         'narsa', 'verify_licence', 'answered', 'authentic', 1, md5('rq' || n) || md5('x'),
         md5('rp' || n) || md5('y'), '{"data": {}}'::json, now(), now(), now(), now()
       FROM generate_series(:lo, :hi - 1) AS n""",
    """INSERT INTO audit_records (at, actor, action, component, message_id, correlation_id,
         digest, outcome, details)
       SELECT now() - interval '1 day', 'hub', a.action, a.component,
         md5('exchange' || n)::uuid::text, 'FILL-' || n, md5(a.action || n) || md5('z'), 'ok',
         '{}'::json
       FROM generate_series(:lo, :hi - 1) AS n,
            (VALUES ('received', 'intake'), ('transitioned', 'cases'), ('routed', 'router'),
                    ('sent', 'connector.narsa'), ('answered', 'connector.narsa'),
                    ('applied', 'cases')) AS a(action, component)""",
    """INSERT INTO processed_messages (consumer, message_id, processed_at)
       SELECT c.consumer, md5(c.consumer || n)::uuid::text, now()
       FROM generate_series(:lo, :hi - 1) AS n,
            (VALUES ('connector.narsa'), ('cases')) AS c(consumer)""",
    """INSERT INTO outbox (message_id, routing_key, queue, headers, body, created_at, sent_at)
       SELECT md5(o.k || n)::uuid::text, o.k, NULL, '{}'::json, convert_to(repeat('x', 900), 'UTF8'),
         now(), now()
       FROM generate_series(:lo, :hi - 1) AS n,
            (VALUES ('agency.narsa'), ('case.driving_licence_authentication.reply')) AS o(k)""",
]


def fill(database_url: str, lo: int, hi: int, chunk: int = 100_000) -> None:
    """Add stored cases numbered ``lo`` .. ``hi - 1`` (in chunks), then refresh statistics."""
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    engine = create_engine(normalize_url(database_url))
    for start in range(lo, hi, chunk):
        with engine.begin() as db:
            for sql in FILL_SQL:
                db.execute(text(sql), {"lo": start, "hi": min(hi, start + chunk)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def chain_filled(store: Any, timeout: float = 1800.0) -> float:
    """Chain the audit records the fill added, and wait until none is left: the hub's own
    chainer (in the relay process) would otherwise spend the measurement on the fill's backlog.
    `chain_pending` returns at once while another chainer holds the chain's head, so one call is
    not enough: loop until nothing is unchained. Seconds taken."""
    from hub.evidence.audit.chain import chain_pending, unchained_count

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        chain_pending(store, batch=20_000)
        with store.session() as session:
            if unchained_count(session) == 0:
                break
        time.sleep(0.2)
    return time.perf_counter() - started


def audit_verification(store: Any, keys: Any, since: int | None) -> dict[str, Any]:
    """Seal what is pending, sign a checkpoint, then time a full verification of the chain and
    the incremental one from ``since`` (the previous point's checkpoint: what a daily check
    re-hashes). Both must find the chain intact."""
    from hub.evidence.audit.chain import make_checkpoint, chain_pending
    from hub.evidence.audit.verify import verify_chain

    chain_pending(store, batch=20_000)
    checkpoint = make_checkpoint(store, keys.signer)
    started = time.perf_counter()
    full = verify_chain(store, keys.trust)
    full_seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "available": True, "records": full.end, "full_seconds": round(full_seconds, 3),
        "full_records_checked": full.checked, "intact": full.intact,
        "checkpoint": checkpoint.position if checkpoint else None}
    if since:
        started = time.perf_counter()
        incremental = verify_chain(store, keys.trust, start=since + 1)
        out.update({"incremental_seconds": round(time.perf_counter() - started, 3),
                    "incremental_from": incremental.anchor,
                    "incremental_records_checked": incremental.checked,
                    "intact": out["intact"] and incremental.intact})
    return out


def scale(ctx: Context, workers: int) -> dict[str, Any]:
    """Throughput and latency at each size of ``ctx.profile.scale_sizes``, on one database that
    grows between the measurements."""
    from hub.config import Settings
    from hub.keyset import HubKeys
    from hub.store import Store

    points = []
    with fresh_database("scale") as url:
        stored = 0
        since: int | None = None
        with pipelines.hub_deployment(ctx, workers=workers, database_url=url) as deployment:
            keys = HubKeys.load(Settings.from_env(deployment.env))
            store = Store.from_url(url)
            for size in ctx.profile.scale_sizes:
                started = time.perf_counter()
                fill(url, stored, size)
                fill_seconds = time.perf_counter() - started
                chain_seconds = chain_filled(store)
                stored = size
                peak = pipelines.run(ctx, deployment, duration=ctx.profile.scale_duration,
                                     offset=size, scenario=f"scale_{size}")
                half = pipelines.run(ctx, deployment, duration=ctx.profile.scale_duration,
                                     rate=max(5.0, round(peak.throughput / 2, 1)),
                                     offset=size + 500_000, scenario=f"scale_{size}_half")
                audit = audit_verification(store, keys, since)
                since = audit["checkpoint"] or since
                points.append({"stored_cases": size, "throughput": round(peak.throughput, 1),
                               "p50_ms": half.p50_ms, "p95_ms": half.p95_ms,
                               "p99_ms": half.p99_ms, "latency_at_rate": half.offered_rate,
                               "fill_seconds": round(fill_seconds, 1),
                               "chain_seconds": round(chain_seconds, 1), "audit": audit,
                               "cpu_cores": round(peak.cpu_cores, 2),
                               "peak_rss_mb": round(peak.peak_rss_mb, 1)})
                ctx.say(f"scale {size:>9,}: {peak.throughput:.0f}/s, p99 {half.p99_ms or 0:.0f} ms"
                        f" at {half.offered_rate}/s; audit chain of {audit['records']:,}"
                        f" verified in {audit['full_seconds']} s"
                        + (f", {audit['incremental_records_checked']:,} since the last"
                           f" checkpoint in {audit['incremental_seconds']} s"
                           if "incremental_seconds" in audit else ""))
            store.dispose()
    return {"workers": workers, "points": points,
            "includes": "the hub scenario (RabbitMQ + PostgreSQL) on one database grown by bulk"
                        " SQL between measurements (the filled audit records chained before the"
                        " measurement); after it, a signed checkpoint, then the whole audit chain"
                        " verified, and incrementally from the previous point's checkpoint"}


def soak(ctx: Context, workers: int, rate: float) -> dict[str, Any]:
    """Fixed-rate load for ``ctx.profile.soak_minutes``; worker RSS sampled every 5 s; the slope
    (MB per minute, least squares after the first minute) says whether memory is flat."""
    minutes = ctx.profile.soak_minutes
    samples: list[tuple[float, float]] = []
    with pipelines.hub_deployment(ctx, workers=workers) as deployment:
        pids = deployment.group.pids("worker")
        stop = threading.Event()
        started = time.time()

        def sample() -> None:
            while not stop.is_set():
                mb = sum(rss_bytes(pid) for pid in pids) / 2**20 / max(1, len(pids))
                samples.append(((time.time() - started) / 60, mb))
                stop.wait(5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            figures = pipelines.run(ctx, deployment, rate=rate, duration=minutes * 60,
                                    offset=3_000_000, scenario="soak")
        finally:
            stop.set()
            sampler.join(10)
    settled = [(t, mb) for t, mb in samples if t >= 1.0] or samples
    per_minute = slope(settled)
    ctx.say(f"soak {minutes:.0f} min at {rate}/s: worker RSS slope {per_minute:+.2f} MB/min")
    return {"minutes": minutes, "rate": rate, "workers": workers,
            "rss_slope_mb_per_min": round(per_minute, 3),
            "rss_start_mb": round(settled[0][1], 1) if settled else None,
            "rss_end_mb": round(settled[-1][1], 1) if settled else None,
            "samples": [[round(t, 2), round(mb, 1)] for t, mb in samples],
            "throughput": round(figures.throughput, 1), "p99_ms": figures.p99_ms,
            "completed": figures.completed, "unfinished": figures.unfinished}
