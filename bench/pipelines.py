"""The pipelines under test: the hub (RabbitMQ + PostgreSQL, or the embedded default) and the
Celery pipeline, each started as separate processes on fresh resources.

    with hub_deployment(ctx, workers=2) as hub:       # web + relay + 2 worker processes
        peak = run_closed(ctx, hub)
        half = run_open(ctx, hub, rate=peak.throughput / 2)
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Iterator

from bench import drive as d
from bench import workload
from bench.context import Context
from bench.infra import delete_queues, fresh_database, new_namespace
from bench.load import LoadSpec
from bench.measure import Figures
from bench.procs import ProcessGroup

ROLES = ["-m", "bench.roles"]
#: The closed loop's ceiling on requests per second (sizes the uploads made ahead of a run).
MAX_RATE = 3000
HUB_INTAKE = "/api/v1/services/driving_licence_authentication/requests"


@dataclass
class Deployment:
    """Processes of one pipeline and how to read its completions."""

    name: str
    group: ProcessGroup
    intake_url: str
    intake_path: str
    database_url: str
    done_sql: str
    count_sql: str
    base_sql: str
    env: dict[str, str] = field(default_factory=dict)
    #: The intake refuses requests naming documents nobody uploaded (the hub's does).
    needs_uploads: bool = False

    def base(self) -> int:
        return d.scalar(self.database_url, self.base_sql)


def hub_env(ctx: Context, *, database_url: str | None, namespace: str, data_dir: str,
            embedded: bool = False) -> dict[str, str]:
    env = {
        "HUB_DATA_DIR": data_dir, "HUB_BROKER_NAMESPACE": namespace,
        "HUB_AGENCY_NARSA_URL": ctx.simulator_url, "HUB_LOG_LEVEL": "WARNING",
        # The run's PKI: the hub seals envelopes, signs its requests to NARSA and verifies the
        # answers with the keys the simulator trusts.
        "HUB_KEYS_DIR": ctx.keys_dir,
        # PostgreSQL wakes the relay at each commit (LISTEN/NOTIFY), so the default poll is
        # only a fallback there; SQLite cannot wake a relay in another process: it polls.
        "HUB_RELAY_POLL_INTERVAL": str(ctx.profile.embedded_relay_poll if embedded
                                       else ctx.profile.relay_poll),
    }
    if not embedded:
        env["HUB_BROKER_URL"] = ctx.amqp_url
        env["HUB_DATABASE_URL"] = database_url or ""
    return env


@contextlib.contextmanager
def hub_deployment(ctx: Context, *, workers: int, embedded: bool = False,
                   database_url: str | None = None) -> Iterator[Deployment]:
    """The hub as in production: ``hub serve`` (intake), ``hub relay`` and ``workers`` times
    ``hub worker`` (connector threads, case worker, dead-letter recorder). Embedded: the
    default SQLite store and queue, one web process and one worker process with the relay."""
    data_dir = tempfile.mkdtemp(prefix="hub-bench-data-")
    namespace = new_namespace("hub")
    with contextlib.ExitStack() as stack:
        if database_url is None and not embedded:
            database_url = stack.enter_context(fresh_database("hub"))
        env = hub_env(ctx, database_url=database_url, namespace=namespace, data_dir=data_dir,
                      embedded=embedded)
        from hub.config import Settings
        from hub.runtime import Hub

        hub = Hub(Settings.from_env(env))
        hub.setup()  # schema, topology and the seal key, before any process needs them
        db_url = hub.settings.database_url
        hub.close()
        group = ProcessGroup(env)
        try:
            web = group.start("web", [*ROLES, "hub-web", json.dumps({"threads": 8})],
                              wait=False)
            if not embedded:
                group.start("relay", [*ROLES, "hub-relay"], wait=False)
            for _ in range(1 if embedded else workers):
                group.start("worker", [*ROLES, "hub-worker", json.dumps(
                    {"concurrency": ctx.profile.concurrency, "agencies": ["narsa"],
                     "cases": ctx.profile.case_threads,
                     "with_relay": embedded})], wait=False)
            group.await_ready()
            yield Deployment(
                name="hub_embedded" if embedded else f"hub_w{workers}", group=group,
                intake_url=web.ready_line.split()[1],  # type: ignore[attr-defined]
                intake_path=HUB_INTAKE, database_url=db_url, done_sql=d.HUB_DONE_SQL,
                count_sql=d.HUB_COUNT_SQL, base_sql=d.HUB_BASE_SQL, env=env,
                needs_uploads=True)
        finally:
            group.stop()
            if not embedded:
                hub = Hub(Settings.from_env(env))
                with contextlib.suppress(Exception):
                    with hub.open_broker() as broker:
                        broker.delete_topology()
                hub.close()
            shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def celery_deployment(ctx: Context, *, workers: int, pool: str = "threads"
                      ) -> Iterator[Deployment]:
    """The Celery pipeline: one intake process and ``workers`` Celery worker processes, each
    with as many threads as the hub's worker has connector threads."""
    from bench.celery_pipeline import create_tables

    queue = f"{new_namespace('celery')}.celery"
    with fresh_database("celery") as database_url:
        create_tables(database_url)
        env = {"BENCH_CELERY_BROKER": ctx.amqp_url, "BENCH_CELERY_QUEUE": queue,
               "BENCH_CELERY_DB": database_url, "HUB_AGENCY_NARSA_URL": ctx.simulator_url,
               "BENCH_CELERY_KEYS_DIR": ctx.keys_dir}
        group = ProcessGroup(env)
        try:
            web = group.start("web", [*ROLES, "celery-web", json.dumps({"threads": 8})],
                              wait=False)
            for _ in range(workers):
                group.start("worker", [*ROLES, "celery-worker", json.dumps(
                    {"concurrency": ctx.profile.concurrency, "pool": pool})], wait=False)
            group.await_ready()
            yield Deployment(
                name=f"celery_w{workers}", group=group,
                intake_url=web.ready_line.split()[1],  # type: ignore[attr-defined]
                intake_path="/requests", database_url=database_url,
                done_sql=d.CELERY_DONE_SQL, count_sql=d.CELERY_COUNT_SQL,
                base_sql=d.CELERY_BASE_SQL, env=env)
        finally:
            group.stop()
            delete_queues(ctx.amqp_url, [queue, "celery"], [queue, "celery"])


def run(ctx: Context, deployment: Deployment, *, rate: float | None = None,
        duration: float | None = None, offset: int = 0, scenario: str | None = None) -> Figures:
    """A closed-loop (peak) run, or an open-loop run at ``rate`` requests per second."""
    from hub.store import normalize_url

    base = deployment.base()
    duration = duration or ctx.profile.duration
    documents, limit = "", 0
    if deployment.needs_uploads:
        # Enough uploads for the run: every request of an open loop, and a closed loop up to
        # MAX_RATE requests/s (more than any pipeline here reaches on 2 cores).
        documents = new_namespace("doc").replace(".", "-").replace("_", "-")
        limit = int((ctx.profile.warmup + duration) * (rate or MAX_RATE)) + ctx.profile.window
        workload.provision_documents(deployment.database_url, documents, offset, limit)
    spec = LoadSpec(
        target="intake", url=deployment.intake_url, path=deployment.intake_path,
        mode="open" if rate else "closed", rate=rate or 0.0, window=ctx.profile.window,
        warmup=ctx.profile.warmup, duration=duration,
        senders=ctx.profile.intake_senders, probe_url=normalize_url(deployment.database_url),
        probe_sql=deployment.count_sql, probe_base=base, offset=offset, documents=documents,
        limit=limit)
    return d.drive(deployment.group, spec, scenario=scenario or deployment.name,
                   completions=d.sql_completions(deployment.database_url, deployment.done_sql,
                                                 {"base": base}),
                   drain=ctx.profile.drain, observe=ctx.simulator)


def peak_and_half(ctx: Context, deployment: Deployment, *, latency: bool = True
                  ) -> dict[str, Figures]:
    runs = {"peak": run(ctx, deployment)}
    ctx.say(f"{deployment.name} peak: {runs['peak'].throughput:.0f}/s")
    if latency:
        rate = max(5.0, round(runs["peak"].throughput / 2, 1))
        runs["half"] = run(ctx, deployment, rate=rate, offset=10**6)
        ctx.say(f"{deployment.name} at {rate}/s: p50 {runs['half'].p50_ms or 0:.1f}"
                f" p99 {runs['half'].p99_ms or 0:.1f} ms")
    return runs


