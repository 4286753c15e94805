"""The chaos run itself: set up, drive the workload, break things on schedule, settle, verify."""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO

import yaml
from sqlalchemy import create_engine, func, select, text

from connectors.registry import load_agencies, start_simulators
from hub.chaos import cluster, verify, workload
from hub.config import Settings
from hub.delivery.broker import Broker
from hub.delivery.deadletters import list_dead_letters, replay
from hub.errors import HubError
from hub.keyset import init_keys
from hub.runtime import Hub
from hub.services import ServiceCatalog
from hub.store import normalize_url
from hub.store.models import ExchangeRow, OutboxRow
from hub.testing.netproxy import TcpProxy

log = logging.getLogger(__name__)

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: Retry ladder of the run: long enough (about 20 s in all) to ride out a restart.
RETRY = {"base_delay": 0.2, "max_delay": 2.0, "max_attempts": 14, "jitter": 0.5}


@dataclass
class ChaosOptions:
    exchanges: int = 10_000
    workers: int = 2
    amqp_url: str = DEFAULT_AMQP
    #: A PostgreSQL URL whose user may create databases; the run creates its own and drops it.
    postgres_url: str = DEFAULT_POSTGRES
    #: Shell commands restarting the broker and the database; None skips that disruption.
    broker_restart: str | None = cluster.BROKER_RESTART
    database_restart: str | None = cluster.DATABASE_RESTART
    #: Connector timeout (s); the simulated "timeout" answers 0.4 s after it.
    agency_timeout: float = 1.0
    #: Most exchanges in flight before submissions wait (keeps the run flowing, not a backlog).
    backlog: int = 300
    #: Threads submitting cases (the intake's concurrency).
    submitters: int = 4
    settle_timeout: float = 900.0
    replay: bool = True
    keep: bool = False
    progress: TextIO | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Run:
    def __init__(self, options: ChaosOptions) -> None:
        self.options = options
        self.started = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self.ledger: list[tuple[str, workload.Planned]] = []
        self.submitted_expected = 0
        self.submitting_done = threading.Event()
        self.failed_submissions = 0
        self.submission_errors: list[str] = []
        self.stopping = threading.Event()
        self._settled = 0
        self._lock = threading.Lock()

    # -- reporting ------------------------------------------------------------------------------

    def event(self, name: str, **detail: Any) -> None:
        entry = {"at_s": round(time.monotonic() - self.started, 1), "event": name, **detail}
        self.events.append(entry)
        self.say(f"[{entry['at_s']:7.1f}s] {name} {detail if detail else ''}")

    def say(self, line: str) -> None:
        if self.options.progress is not None:
            self.options.progress.write(line + "\n")
            self.options.progress.flush()

    # -- the store's view of progress ------------------------------------------------------------

    def settled(self, hub: Hub) -> int | None:
        try:
            with hub.store.session() as session:
                return session.scalar(select(func.count()).select_from(ExchangeRow).where(
                    ExchangeRow.status.in_(("answered", "dead_lettered"))))
        except Exception:  # noqa: BLE001 - the database may be restarting
            return None

    def quiet(self, hub: Hub, broker: Broker) -> bool:
        """Every expected exchange settled, nothing unsent, every queue empty."""
        try:
            with hub.store.session() as session:
                unsettled = session.scalar(select(func.count()).select_from(ExchangeRow).where(
                    ExchangeRow.status.in_(("queued", "acknowledged"))))
                total = session.scalar(select(func.count()).select_from(ExchangeRow))
                unsent = session.scalar(select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.sent_at.is_(None)))
            if unsettled or unsent or total < self.submitted_expected:
                return False
            return not any(broker.depth(q) for q in hub.topology.all_queue_names())
        except Exception:  # noqa: BLE001 - broker or database restarting: not quiet yet
            return False

    # -- submissions ----------------------------------------------------------------------------

    def submit_all(self, hub: Hub, planned: list[workload.Planned]) -> None:
        """Submit every planned case from ``options.submitters`` threads (intake is served by
        many web threads too), holding back while too many exchanges are in flight."""
        items = iter(planned)
        threads = [threading.Thread(target=self._submit_from, args=(hub, items),
                                    name=f"chaos-submit-{n}", daemon=True)
                   for n in range(self.options.submitters)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.submitting_done.set()

    def _submit_from(self, hub: Hub, items: Iterator[workload.Planned]) -> None:
        while True:
            while (self.submitted_expected - self._settled > self.options.backlog
                   and not self.stopping.is_set()):
                time.sleep(0.05)
            with self._lock:
                item = next(items, None)
            if item is None or self.stopping.is_set():
                return
            delay = 0.1
            while True:
                try:
                    opened = hub.submit(item.service, item.data(), actor="chaos")
                    break
                except HubError as exc:
                    if not exc.transient:  # a refused submission is a bug of the run or the hub
                        with self._lock:
                            self.submission_errors.append(f"{exc.code}: {exc.message}"[:300])
                        opened = None
                        break
                    with self._lock:
                        self.failed_submissions += 1
                    time.sleep(delay)  # the database is restarting: the intake retries
                    delay = min(delay * 2, 2.0)
            if opened is None:
                continue
            with self._lock:
                self.ledger.append((opened.case.reference, item))
                self.submitted_expected += len(item.outcomes)

    # -- disruptions ----------------------------------------------------------------------------

    def disrupt(self, what: str, group: cluster.ProcessGroup, proxy: TcpProxy) -> None:
        options = self.options
        if what == "kill_worker":
            workers = sorted(n for n in group.roles if n.startswith("worker"))
            name = workers[sum(1 for e in self.events if e["event"] == "sigkill"
                               and e["process"].startswith("worker")) % len(workers)]
            self.event("sigkill", process=name, pid=group.kill(name))
        elif what == "kill_relay":
            self.event("sigkill", process="relay", pid=group.kill("relay"))
        elif what == "cut_connections":
            self.event("connections_cut", sockets=proxy.cut())
        elif what == "restart_broker":
            if options.broker_restart is None:
                self.event("broker_restart_skipped")
                return
            begin = time.monotonic()
            cluster.run_command(options.broker_restart)
            host, port = proxy.target
            cluster.wait_port(host, port)
            self.event("broker_restarted", seconds=round(time.monotonic() - begin, 1))
        elif what == "restart_database":
            if options.database_restart is None:
                self.event("database_restart_skipped")
                return
            begin = time.monotonic()
            cluster.run_command(options.database_restart)
            url = urllib.parse.urlsplit(normalize_url(options.postgres_url))
            cluster.wait_port(url.hostname or "127.0.0.1", url.port or 5432)
            self.event("database_restarted", seconds=round(time.monotonic() - begin, 1))

    def _drive(self, hub: Hub, broker: Broker, group: cluster.ProcessGroup, proxy: TcpProxy,
               planned: list[workload.Planned]) -> None:
        """Until everything submitted has settled: disrupt on schedule, restart what died."""
        total = workload.expected_exchanges(planned)
        schedule = workload.milestones(total)
        deadline = time.monotonic() + self.options.settle_timeout
        last_shown = 0.0
        while time.monotonic() < deadline:
            settled = self.settled(hub)
            if settled is not None:
                self._settled = settled
            while schedule and self._settled >= schedule[0][0] * total:
                self.disrupt(schedule.pop(0)[1], group, proxy)
            for name in group.restart_dead():
                self.event("process_exited_and_restarted", process=name)
            if time.monotonic() - last_shown > 5:
                last_shown = time.monotonic()
                self.say(f"  settled {self._settled}/{total} exchanges,"
                         f" {len(self.ledger)}/{len(planned)} cases submitted")
            if self.submitting_done.is_set() and not schedule and self.quiet(hub, broker):
                break
            time.sleep(0.5)
        else:
            self.event("settle_timeout", seconds=self.options.settle_timeout)
        self.event("settled", exchanges=self._settled)

    def _replay_parked(self, hub: Hub, broker: Broker, simulators: dict[str, Any]) -> int:
        """As an operator would once the agencies are back: replay what was parked, wait for it
        to settle. Returns how many dead letters were parked before."""

        parked = [d.id for d in list_dead_letters(hub.store, limit=1_000_000)]
        if self.options.replay and parked:
            for simulator in simulators.values():
                simulator.clear_faults()
            replayed = replay(hub.store, hub.audit, parked, actor="operator:chaos")
            self.event("dead_letters_replayed", count=len(replayed))
            wait = self.options.settle_timeout / 2
        else:
            wait = 30.0  # let the recorders store whatever was parked last
        end = time.monotonic() + wait
        while time.monotonic() < end and not self.quiet(hub, broker):
            time.sleep(0.5)
        return len(parked)

    # -- the whole run --------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:

        options = self.options
        tag = secrets.token_hex(4)
        namespace, database = f"chaos{tag}", f"hub_chaos_{tag}"
        root = Path(tempfile.mkdtemp(prefix="hub-chaos-"))
        # pre-ping: the run restarts PostgreSQL, which kills the pooled admin connection.
        admin = create_engine(normalize_url(options.postgres_url), isolation_level="AUTOCOMMIT",
                              pool_pre_ping=True)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        base, _, _ = normalize_url(options.postgres_url).rpartition("/")
        database_url = f"{base}/{database}"
        catalog = ServiceCatalog.load()
        planned = workload.plan(catalog, options.exchanges)
        needed = workload.agencies_of(planned, catalog)
        # One development PKI for the run: the hub processes find it in $HUB_DATA_DIR/keys, the
        # simulators sign their answers with it and verify the hub's requests, as agencies would.
        keys_dir = root / "keys"
        init_keys(keys_dir)
        simulators = start_simulators({n: c for n, c in load_agencies().items() if n in needed},
                                      free_ports=True,
                                      options={n: {"keys_dir": str(keys_dir)} for n in needed})
        amqp = urllib.parse.urlsplit(options.amqp_url)
        proxy = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672)
        # The workers reach RabbitMQ through the proxy, so that the run can cut them off.
        credentials = amqp.netloc.rpartition("@")[0]
        proxied = urllib.parse.urlunsplit(amqp._replace(
            netloc=f"{credentials}@127.0.0.1:{proxy.port}" if credentials
            else f"127.0.0.1:{proxy.port}"))
        agencies_file = root / "agencies.yaml"
        agencies_file.write_text(yaml.safe_dump({
            name: {"base_url": sim.url, "timeout": options.agency_timeout, "retry": RETRY,
                   "circuit_breaker": {"failure_threshold": 25, "reset_timeout": 2.0}}
            for name, sim in simulators.items()}))
        env = {"HUB_DATA_DIR": str(root), "HUB_DATABASE_URL": database_url,
               "HUB_BROKER_NAMESPACE": namespace, "HUB_AGENCIES_FILE": str(agencies_file),
               "HUB_RELAY_POLL_INTERVAL": "0.05", "HUB_LOG_LEVEL": "WARNING"}
        hub = Hub(Settings.from_env({**env, "HUB_BROKER_URL": options.amqp_url}))
        group = cluster.ProcessGroup(env={**_base_env(), **env, "HUB_BROKER_URL": proxied},
                                     log_dir=root)
        broker = None
        report: dict[str, Any] = {}
        try:
            hub.setup()
            broker = hub.open_broker()
            for n in range(options.workers):
                group.start(cluster.Role(f"worker-{n + 1}", ["worker"]))
            group.start(cluster.Role("relay", ["relay"]))
            armed = workload.inject_faults(simulators, timeout=options.agency_timeout)
            self.event("started", workers=options.workers, cases=len(planned),
                       exchanges=workload.expected_exchanges(planned),
                       agencies=sorted(needed))
            threading.Thread(target=self.submit_all, args=(hub, planned), name="chaos-submit",
                             daemon=True).start()
            self._drive(hub, broker, group, proxy, planned)
            parked_before = self._replay_parked(hub, broker, simulators)
            self.stopping.set()
            group.stop()
            self.event("workers_stopped")
            report = verify.verdict(hub, self.ledger, simulators, broker)
            report.update({
                "ok": (report["lost"] == 0 and report["duplicate_effects"] == 0
                       and report["dead_letters_without_reason"] == 0 and report["audit_intact"]
                       and report["leftover_messages"] == 0 and report["cases_missing"] == 0
                       and not self.submission_errors),
                "dead_letters_replayed_at_end": parked_before if options.replay else 0,
                "processes_killed": group.kills,
                "faults_armed": {name: sorted({"timeout" if f.kind == "latency" else f.kind
                                               for f in faults})
                                 for name, faults in armed.items()},
                "faults_not_injected": {
                    name: "bad_signature: this simulator does not sign its answers"
                    for name, faults in armed.items()
                    if not any(f.kind == "bad_signature" for f in faults)},
                "agency_traffic": verify.agency_requests(simulators, armed),
                "events": self.events,
                "duration_s": round(time.monotonic() - self.started, 1),
                "submissions_retried": self.failed_submissions,
                "submission_errors": self.submission_errors[:20],
                "workers": options.workers,
                "broker": "rabbitmq", "database": "postgresql",
            })
            report["exchanges_per_s"] = round(report["exchanges"] / max(report["duration_s"], 1), 1)
            return report
        finally:
            self.stopping.set()
            group.stop()
            proxy.close()
            for simulator in simulators.values():
                simulator.stop()
            if broker is not None:
                try:
                    if not options.keep:
                        broker.delete_topology()
                finally:
                    broker.close()
            hub.close()
            if not options.keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                shutil.rmtree(root, ignore_errors=True)
            else:
                report["kept"] = {"data_dir": str(root), "database": database,
                                  "namespace": namespace}
            admin.dispose()


def _base_env() -> dict[str, str]:

    return {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}


def run_chaos(options: ChaosOptions) -> dict[str, Any]:
    """Run it; returns the report (see `hub.chaos.verify.verdict` for the keys)."""
    return Run(options).execute()
