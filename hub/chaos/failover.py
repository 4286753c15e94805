"""`hub chaos --cluster`: the chaos run on the layout docs/operations.md prescribes beyond one
machine, three RabbitMQ nodes with quorum queues and a PostgreSQL primary with a synchronous
standby, losing nodes while exchanges flow.

What it sets up (all on this machine, beside its own RabbitMQ and PostgreSQL, in a temporary
folder; `hub.chaos.nodes`):

- three RabbitMQ nodes clustered with ``join_cluster``; the hub's quorum queues replicate on all
  three, their leaders on the node the topology was declared through;
- a PostgreSQL primary and a streaming standby in its ``synchronous_standby_names``; the hub's
  database URL names both (libpq's multi-host form, ``target_session_attrs=read-write``);
- the hub's processes: ``workers`` × ``hub worker``, ``relays`` × ``hub relay`` and ``web`` ×
  ``hub serve``, each given every RabbitMQ node with a different one first. A quarter of the
  cases is submitted through the web processes over HTTP (documents uploaded, then the request
  posted; a refused connection or a 503 is tried again on the other one, as a load balancer
  would), the rest by the run itself through the same intake code (``Hub.submit``), as in
  `hub.chaos.run`.

What breaks, each once, in order, when its share of the exchanges has settled (and at least
``spacing`` seconds after the previous one was over, so that each is measured apart): a worker is
SIGKILLed; a RabbitMQ node that leads none of the work queues is SIGKILLed, then started again;
the relay is SIGKILLed; the node that leads the work queues is SIGKILLed, then started again;
another worker is SIGKILLed; the PostgreSQL primary is SIGKILLed and the standby promoted
(``pg_ctl promote``), then the dead primary's place is rebuilt as the new standby. The agencies
misbehave all along (`hub.chaos.workload.inject_faults`). Killed hub processes are restarted, as
a supervisor would.

The verdict is `hub.chaos.verify.verdict` (lost, duplicate effects, dead letters without a
reason, audit) plus ``broker_failovers`` (hub processes that reconnected to another node, from
their logs), ``database_failovers`` (promotions after which the hub completed exchanges on the
promoted server), ``longest_stall_s`` and the exchanges/s around each failure
(`hub.chaos.figures`). Everything it started is stopped and removed, even when interrupted.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import yaml
from sqlalchemy import create_engine, func, select, text

from hub.chaos import cluster, figures, nodes, verify, workload
from hub.chaos.run import RETRY, ChaosOptions, Run, _base_env
from hub.errors import HubError, PermanentError, TransientError
from hub.store.models import AuditRow

log = logging.getLogger(__name__)

#: When each failure happens, as a share of the expected exchanges settled (each also waits for
#: the previous one to be over plus `ClusterOptions.spacing`).
SCHEDULE: tuple[tuple[float, str], ...] = (
    (0.03, "kill_worker"),
    (0.06, "kill_rabbitmq_node"),
    (0.15, "kill_relay"),
    (0.20, "kill_queue_leader"),
    (0.30, "kill_worker"),
    (0.35, "fail_over_database"),
)
#: Share of the cases held back until every failure has happened, so that each one hits a hub
#: under load rather than an idle one.
HELD_BACK = 0.15
#: The issue's bound on the longest time with no exchange completing.
STALL_LIMIT_S = 30.0
#: Seconds after which the run's relays send again a retried message not heard of since.
REDRIVE_AFTER_S = 45
#: Log line a hub process writes when it reconnects to another RabbitMQ node
#: (`hub.delivery.broker.rabbitmq.RabbitBroker._connect`).
FAILOVER_LOG = "RabbitMQ failover"


@dataclass
class ClusterOptions:
    exchanges: int = 10_000
    workers: int = 3
    relays: int = 2
    #: ``hub serve`` processes; a share of the cases is submitted through them over HTTP.
    web: int = 2
    #: Share of the cases submitted through the web processes (documents uploaded, then the
    #: request posted, as an applicant's browser does); the rest through `Hub.submit` in the
    #: run's own process, the same intake code without HTTP.
    web_share: float = 0.25
    #: Connector timeout (s); the simulated "timeout" answers 0.4 s after it.
    agency_timeout: float = 1.0
    backlog: int = 300
    submitters: int = 4
    settle_timeout: float = 900.0
    #: Seconds of undisturbed running between two failures.
    spacing: float = 8.0
    #: The management plugin on every node (ports in the report).
    management: bool = True
    replay: bool = True
    keep: bool = False
    progress: TextIO | None = None


@dataclass
class RoleGroup(cluster.ProcessGroup):
    """Hub processes whose environment differs per role (each its own first RabbitMQ node),
    driven from two threads: the run's supervisor loop restarts processes that died
    (`restart_dead`) while the disruption thread kills some (`kill`). One lock makes each of
    those a single step (else both restarted the same killed process and one copy, no longer
    tracked, outlived the run), and nothing starts once `stop` began."""

    role_env: dict[str, dict[str, str]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stopped: bool = False

    def start(self, role: cluster.Role) -> None:
        with self._lock:
            if self._stopped:
                return
            shared = self.env
            self.env = {**shared, **self.role_env.get(role.name, {})}
            try:
                super().start(role)
            finally:
                self.env = shared

    def kill(self, name: str) -> int:
        with self._lock:
            return super().kill(name)

    def restart_dead(self) -> list[str]:
        with self._lock:
            return super().restart_dead()

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._stopped = True
        super().stop(timeout)


class ClusterRun(Run):
    """One cluster chaos run (`run_cluster_chaos`)."""

    def __init__(self, options: ClusterOptions) -> None:
        super().__init__(ChaosOptions(
            exchanges=options.exchanges, workers=options.workers, backlog=options.backlog,
            submitters=options.submitters, settle_timeout=options.settle_timeout,
            replay=options.replay, keep=options.keep, progress=options.progress,
            agency_timeout=options.agency_timeout, broker_restart=None, database_restart=None))
        self.cluster_options = options
        self.wall_started = time.time()
        self.failures: list[figures.Failure] = []
        self.disruptions_done = threading.Event()
        self.disruption_error: str | None = None
        self.database_failovers: list[dict[str, Any]] = []
        #: Wall-clock moments at which nothing was in flight (see `figures.longest_stall`).
        self.idle_at: list[float] = []
        #: Set while the submitters hold the last cases back (`submit_all`).
        self.held_back = threading.Event()
        self.rabbit: nodes.RabbitCluster | None = None
        self.pg: nodes.PostgresPair | None = None
        #: Base URLs of the web processes, and the submission counters of `_submit_from`.
        self.web_urls: list[str] = []
        self.web_submissions = 0
        self._numbered = 0
        self._next_web = 0
        self._http = _session()

    # -- submissions: the last cases wait until every failure has happened -----------------------

    def submit_all(self, hub: Any, planned: list[workload.Planned]) -> None:
        cut = max(1, int(len(planned) * (1 - HELD_BACK)))
        super().submit_all(hub, planned[:cut])
        self.submitting_done.clear()
        self.held_back.set()
        while not self.disruptions_done.wait(0.5):
            if self.stopping.is_set():
                return
        self.held_back.clear()
        self.submissions_resumed = time.time()
        super().submit_all(hub, planned[cut:])

    def _submit_from(self, hub: Any, items: Any) -> None:
        """One submitting thread: as `Run._submit_from`, with every ``1 / web_share``-th case
        going through a web process."""
        every = round(1 / self.cluster_options.web_share) if self.web_urls and \
            self.cluster_options.web_share > 0 else 0
        while True:
            while (self.submitted_expected - self._settled > self.options.backlog
                   and not self.stopping.is_set()):
                time.sleep(0.05)
            with self._lock:
                item = next(items, None)
                self._numbered += 1
                through_web = bool(every) and self._numbered % every == 0
            if item is None or self.stopping.is_set():
                return
            delay = 0.1
            while True:
                try:
                    if through_web:
                        reference = self._submit_web(item)
                        self.web_submissions += 1
                    else:
                        reference = hub.submit(item.service, item.data(),
                                               actor="chaos").case.reference
                    break
                except HubError as exc:
                    if not exc.transient:  # a refused submission is a bug of the run or the hub
                        with self._lock:
                            self.submission_errors.append(f"{exc.code}: {exc.message}"[:300])
                        reference = None
                        break
                    with self._lock:
                        self.failed_submissions += 1
                    if self.stopping.is_set():
                        return
                    time.sleep(delay)  # the database or a web process is away: try again
                    delay = min(delay * 2, 2.0)
            if reference is None:
                continue
            with self._lock:
                self.ledger.append((reference, item))
                self.submitted_expected += len(item.outcomes)

    def _submit_web(self, item: workload.Planned) -> str:
        """Upload the case's documents and post the request to a web process; returns the case
        reference. Connection failures and 5xx are `TransientError` (tried again, the next web
        process first); any other refusal is a `PermanentError`."""
        import requests

        from hub.store.attachments import document_fields

        with self._lock:
            self._next_web += 1
            base = self.web_urls[self._next_web % len(self.web_urls)]
        data = item.data()
        try:
            for path, _ in list(document_fields(data)):
                uploaded = self._http.post(f"{base}/api/v1/attachments", data=CHAOS_PDF,
                                           headers={"Content-Type": "application/pdf"},
                                           timeout=30)
                _raise_for(uploaded, "document upload")
                _set_path(data, path, uploaded.json()["reference"])
            answer = self._http.post(f"{base}/api/v1/services/{item.service}/requests",
                                     json=data, timeout=30)
        except requests.RequestException as exc:
            raise TransientError(f"web process {base} unreachable: {exc}"[:300],
                                 code="chaos.web_unreachable") from None
        _raise_for(answer, "request")
        return str(answer.json()["reference"])

    # -- failures ---------------------------------------------------------------------------------

    def _in_flight(self) -> int:
        """Exchanges submitted and not yet settled (as last sampled)."""
        return max(0, self.submitted_expected - self._settled)

    def _failure(self, name: str, started: float, in_flight: int, **detail: Any) -> None:
        """Record a failure; ``in_flight``: exchanges submitted and not settled when it began.
        It found the hub idle only if nothing was in flight *and* the submitters were holding
        back (with cases still being submitted, an empty sample only means the hub was keeping
        up with the intake)."""
        self.failures.append(figures.Failure(name, started, time.time(), {
            **detail, "in_flight": in_flight,
            "idle": in_flight == 0 and self.held_back.is_set()}))

    def _kill_process(self, group: cluster.ProcessGroup, prefix: str) -> None:
        names = sorted(n for n in group.roles if n.startswith(prefix))
        done = sum(1 for f in self.failures if f.detail.get("process", "").startswith(prefix))
        name = names[done % len(names)]
        started, in_flight = time.time(), self._in_flight()
        pid = group.kill(name)
        self.event("sigkill", process=name, pid=pid)
        self._failure("sigkill", started, in_flight, process=name)

    def _kill_node(self, node: nodes.RabbitNode, why: str) -> None:
        assert self.rabbit is not None
        started, in_flight = time.time(), self._in_flight()
        node.kill()
        self.event("rabbitmq_node_killed", node=node.nodename, why=why)
        # Back only once its peers saw it go (as a machine that is repaired, not a blip).
        nodes.wait_until(lambda: node.nodename not in self.rabbit.running_nodes(), timeout=120,
                         what=f"{node.nodename} seen down by its peers")
        self.rabbit.restart(node)
        back = time.time()
        self.event("rabbitmq_node_back", node=node.nodename,
                   seconds=round(back - started, 1))
        self._failure("kill_queue_leader" if why == "leader" else "kill_rabbitmq_node", started,
                      in_flight, node=node.nodename)

    def _work_queue_leaders(self, hub: Any) -> dict[str, str]:
        assert self.rabbit is not None
        work = {spec.name for spec in hub.topology.queues}
        return {q: n for q, n in self.rabbit.leaders(hub.topology.namespace).items() if q in work}

    def _fail_over_database(self, hub: Any) -> None:
        assert self.pg is not None
        old, new = self.pg.primary, self.pg.standby
        started, in_flight = time.time(), self._in_flight()
        seconds = self.pg.fail_over()
        self.event("database_primary_killed_standby_promoted", killed=old.name, promoted=new.name,
                   seconds=round(seconds, 2))
        promoted_at = time.time()
        self._failure("fail_over_database", started, in_flight, killed=old.name,
                      promoted=new.name)
        rebuilt = self.pg.rebuild_standby()
        self.event("database_standby_rebuilt", standby=old.name, seconds=round(rebuilt, 1))
        self.database_failovers.append({"promoted": new.name, "port": new.port,
                                        "promoted_at": promoted_at})

    def disrupt_cluster(self, what: str, hub: Any, group: cluster.ProcessGroup) -> None:
        assert self.rabbit is not None
        if what == "kill_worker":
            self._kill_process(group, "worker")
        elif what == "kill_relay":
            self._kill_process(group, "relay")
        elif what in ("kill_rabbitmq_node", "kill_queue_leader"):
            leaders = self._work_queue_leaders(hub)
            counts: dict[str, int] = {}
            for leader in leaders.values():
                counts[leader] = counts.get(leader, 0) + 1
            if what == "kill_queue_leader":
                nodename = max(counts, key=lambda n: counts[n])
                self.event("work_queue_leaders", leaders=counts)
                self._kill_node(self.rabbit.node_named(nodename), "leader")
            else:
                # A node leading none of the work queues (the last such, whose first-in-line
                # processes must move), or the last node if every node leads some.
                spare = [n for n in self.rabbit.nodes if n.nodename not in counts]
                self._kill_node((spare or self.rabbit.nodes)[-1], "not a leader")
        elif what == "fail_over_database":
            self._fail_over_database(hub)
        else:
            raise ValueError(f"unknown disruption {what!r}")

    def _disrupt_on_schedule(self, hub: Any, group: cluster.ProcessGroup, total: int) -> None:
        """The failures, one after another, each at its share of the run (thread)."""
        try:
            last_over = time.monotonic()
            for share, what in SCHEDULE:
                while (self._settled < share * total
                       or time.monotonic() - last_over < self.cluster_options.spacing):
                    if self.stopping.wait(0.2):
                        return
                self.disrupt_cluster(what, hub, group)
                last_over = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - reported in the verdict, the run goes on
            log.exception("disruption failed")
            self.disruption_error = f"{type(exc).__name__}: {exc}"[:2000]
            self.event("disruption_failed", error=self.disruption_error[:300])
        finally:
            self.disruptions_done.set()

    # -- the run ----------------------------------------------------------------------------------

    def _drive_cluster(self, hub: Any, broker: Any, group: cluster.ProcessGroup,
                       total: int, planned: list[workload.Planned]) -> None:
        deadline = time.monotonic() + self.options.settle_timeout
        last_shown = 0.0
        while time.monotonic() < deadline:
            settled = self.settled(hub)
            if settled is not None:
                self._settled = settled
                if self._in_flight() == 0:
                    self.idle_at.append(time.time())
            for name in group.restart_dead():
                self.event("process_exited_and_restarted", process=name)
            if time.monotonic() - last_shown > 5:
                last_shown = time.monotonic()
                self.say(f"  settled {self._settled}/{total} exchanges,"
                         f" {len(self.ledger)}/{len(planned)} cases submitted")
            if (self.submitting_done.is_set() and self.disruptions_done.is_set()
                    and self.quiet(hub, broker)):
                break
            time.sleep(0.5)
        else:
            self.event("settle_timeout", seconds=self.options.settle_timeout)
        self.event("settled", exchanges=self._settled)

    def execute(self) -> dict[str, Any]:
        from connectors.registry import load_agencies, start_simulators
        from hub.config import Settings
        from hub.keyset import init_keys
        from hub.runtime import Hub
        from hub.services import ServiceCatalog

        options, copts = self.options, self.cluster_options
        missing = nodes.missing_tools()
        if missing:
            raise nodes.NodeError("the cluster chaos run needs " + ", ".join(missing))
        tag = secrets.token_hex(3)
        root = Path(tempfile.mkdtemp(prefix="hub-chaos-cluster-"))
        root.chmod(0o755)
        self.rabbit = nodes.RabbitCluster(root / "rabbit", management=copts.management, tag=tag)
        self.pg = nodes.PostgresPair(root / "pg", tag=tag)
        simulators: dict[str, Any] = {}
        group: RoleGroup | None = None
        hub = broker = None
        disrupter: threading.Thread | None = None
        report: dict[str, Any] = {}
        try:
            begin = time.monotonic()
            self.rabbit.start()
            self.event("rabbitmq_cluster_started", nodes=self.rabbit.running_nodes(),
                       seconds=round(time.monotonic() - begin, 1))
            begin = time.monotonic()
            self.pg.start()
            self.event("postgresql_started", primary=self.pg.primary.name,
                       standby=self.pg.standby.name, seconds=round(time.monotonic() - begin, 1))
            admin = create_engine(self.pg.url("postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text('CREATE DATABASE "hub_chaos"'))
            admin.dispose()
            database_url = self.pg.url("hub_chaos")

            catalog = ServiceCatalog.load()
            planned = workload.plan(catalog, options.exchanges)
            needed = workload.agencies_of(planned, catalog)
            keys_dir = root / "keys"
            init_keys(keys_dir)
            simulators = start_simulators(
                {n: c for n, c in load_agencies().items() if n in needed}, free_ports=True,
                options={n: {"keys_dir": str(keys_dir)} for n in needed})
            agencies_file = root / "agencies.yaml"
            agencies_file.write_text(yaml.safe_dump({
                name: {"base_url": sim.url, "timeout": options.agency_timeout, "retry": RETRY,
                       "circuit_breaker": {"failure_threshold": 25, "reset_timeout": 2.0}}
                for name, sim in simulators.items()}))
            env = {"HUB_DATA_DIR": str(root), "HUB_DATABASE_URL": database_url,
                   "HUB_BROKER_NAMESPACE": f"chaos{tag}", "HUB_AGENCIES_FILE": str(agencies_file),
                   "HUB_RELAY_POLL_INTERVAL": "0.05", "HUB_LOG_LEVEL": "WARNING",
                   "HUB_RABBITMQ_MANAGEMENT_URL": "off",
                   # Retry rungs here last 2 s at most and the backlog is a few hundred
                   # exchanges: a retried message quiet for 45 s is stranded (hub.redrive).
                   "HUB_REDRIVE_AFTER": str(REDRIVE_AFTER_S), "HUB_REDRIVE_INTERVAL": "5"}
            # The run's own hub (submissions, progress, verdict) is connected through node 1,
            # so the work queues are declared there: node 1 leads them.
            hub = Hub(Settings.from_env({**env, "HUB_BROKER_URL": self.rabbit.urls(0)}))
            hub.setup()
            broker = hub.open_broker()
            group = RoleGroup(env={**_base_env(), **env}, log_dir=root)
            roles = [f"worker-{n + 1}" for n in range(copts.workers)] + \
                    [f"relay-{n + 1}" for n in range(copts.relays)] + \
                    [f"web-{n + 1}" for n in range(copts.web)]
            for n, name in enumerate(roles):
                group.role_env[name] = {"HUB_BROKER_URL": self.rabbit.urls(n)}
                if name.startswith("web"):
                    port = nodes.free_port()
                    group.role_env[name].update({"HUB_HTTP_HOST": "127.0.0.1",
                                                 "HUB_HTTP_PORT": str(port)})
                    self.web_urls.append(f"http://127.0.0.1:{port}")
                group.start(cluster.Role(name, [COMMANDS[name.split("-")[0]]]))
            for url in self.web_urls:
                nodes.wait_until(lambda url=url: _answers(self._http, f"{url}/healthz"),
                                 timeout=120, what=f"web process {url} answering")
            armed = workload.inject_faults(simulators, timeout=options.agency_timeout)
            total = workload.expected_exchanges(planned)
            self.event("started", workers=copts.workers, relays=copts.relays, web=copts.web,
                       cases=len(planned), exchanges=total, agencies=sorted(needed),
                       first_nodes={name: self.rabbit.nodes[n % len(self.rabbit.nodes)].nodename
                                    for n, name in enumerate(roles)})
            workload_started = time.time()
            threading.Thread(target=self.submit_all, args=(hub, planned), name="chaos-submit",
                             daemon=True).start()
            disrupter = threading.Thread(target=self._disrupt_on_schedule,
                                         args=(hub, group, total), name="chaos-disrupt",
                                         daemon=True)
            disrupter.start()
            self._drive_cluster(hub, broker, group, total, planned)
            workload_over = time.time()
            parked_before = self._replay_parked(hub, broker, simulators)
            self.stopping.set()
            group.stop()
            self.event("processes_stopped")

            report = verify.verdict(hub, self.ledger, simulators, broker)
            report.update(self._cluster_figures(hub, group, broker, workload_started,
                                                workload_over))
            report.update({
                "dead_letters_replayed_at_end": parked_before if options.replay else 0,
                "processes_killed": group.kills,
                "faults_armed": {name: sorted({"timeout" if f.kind == "latency" else f.kind
                                               for f in faults})
                                 for name, faults in armed.items()},
                "agency_traffic": verify.agency_requests(simulators, armed),
                "events": self.events,
                "duration_s": round(time.monotonic() - self.started, 1),
                "submissions_retried": self.failed_submissions,
                "submitted_through_web": self.web_submissions,
                "submission_errors": self.submission_errors[:20],
                "disruption_error": self.disruption_error,
                "workers": copts.workers, "relays": copts.relays, "web": copts.web,
                "broker": "rabbitmq cluster (3 nodes, quorum queues)",
                "database": "postgresql primary + synchronous standby",
                "layout": self._layout(),
            })
            report["exchanges_per_s"] = round(
                report["exchanges"] / max(workload_over - workload_started, 1), 1)
            report["ok"] = self._ok(report)
            return report
        finally:
            self._clean_up(hub, broker, group, simulators, disrupter, root, report)

    # -- figures ----------------------------------------------------------------------------------

    def _cluster_figures(self, hub: Any, group: cluster.ProcessGroup, broker: Any,
                         workload_started: float, workload_over: float) -> dict[str, Any]:
        times = figures.completion_times(hub.store)
        # Stalls are counted while work was due: from the first completion until every case was
        # submitted and every failure over (after it only the queues drain, the last retries of
        # agency faults finishing one by one, which is no stall of the hub), and never across
        # a moment when nothing was in flight.
        resumed = getattr(self, "submissions_resumed", workload_over)
        end = max(resumed, max((f.restored for f in self.failures), default=resumed))
        first = times[0] if times else workload_started
        stall, stall_at = figures.longest_stall(times, start=first, end=min(end, workload_over),
                                                idle=self.idle_at)
        process_failovers = self._failovers_in_logs(group.log_dir)
        with hub.store.session() as session:
            redriven = session.scalar(select(func.count()).select_from(AuditRow).where(
                AuditRow.action == "redriven"))
        return {
            # Messages a retry left stranded in the broker, sent again from the outbox.
            "redriven": redriven,
            "broker_failovers": sum(process_failovers.values()) + getattr(broker, "failovers", 0),
            "broker_failovers_by_process": process_failovers,
            "database_failovers": self._confirmed_database_failovers(hub, times),
            "longest_stall_s": stall,
            "longest_stall_at_s": (round(stall_at - self.wall_started, 1)
                                   if stall_at is not None else None),
            "stall_limit_s": STALL_LIMIT_S,
            "failures": figures.failure_rates(times, self.failures, origin=self.wall_started),
            # A failure that found nothing in flight proved nothing (the run was paced badly).
            "failures_without_load": [f.name for f in self.failures if f.detail.get("idle")],
        }

    @staticmethod
    def _failovers_in_logs(log_dir: Path) -> dict[str, int]:
        """Per hub process, how often it reconnected to another RabbitMQ node (its log lines)."""
        counts: dict[str, int] = {}
        for path in sorted(log_dir.glob("*.log")):
            with contextlib.suppress(OSError):
                found = sum(1 for line in path.read_text(errors="replace").splitlines()
                            if FAILOVER_LOG in line)
                if found:
                    counts[path.stem] = found
        return counts

    def _confirmed_database_failovers(self, hub: Any, times: list[float]) -> int:
        """Promotions after which the hub completed exchanges, the hub's store being connected
        to the promoted server at the end (0 when it is not: the fail-over did not take)."""
        assert self.pg is not None
        try:
            with hub.store.session() as session:
                port = session.execute(text("SELECT inet_server_port()")).scalar()
        except Exception:  # noqa: BLE001 - no database: nothing confirmed
            return 0
        if port != self.pg.primary.port:
            return 0
        return sum(1 for failover in self.database_failovers
                   if figures.count_between(times, failover["promoted_at"], float("inf")))

    def _layout(self) -> dict[str, Any]:
        assert self.rabbit is not None and self.pg is not None
        return {
            "rabbitmq": [{"node": n.nodename, "amqp": n.amqp_port, "distribution": n.dist_port,
                          "management": n.management_port if n.management else None,
                          "killed": n.kills} for n in self.rabbit.nodes],
            "postgresql": {"primary": f"{self.pg.primary.name}:{self.pg.primary.port}",
                           "standby": f"{self.pg.standby.name}:{self.pg.standby.port}",
                           "promotions": self.pg.promotions},
        }

    @staticmethod
    def _ok(report: dict[str, Any]) -> bool:
        return (report["lost"] == 0 and report["duplicate_effects"] == 0
                and report["dead_letters_without_reason"] == 0 and report["audit_intact"]
                and report["leftover_messages"] == 0 and report["cases_missing"] == 0
                and not report["submission_errors"] and report["disruption_error"] is None
                and report["broker_failovers"] >= 1 and report["database_failovers"] >= 1
                and not report["failures_without_load"]
                and len(report["failures"]) == len(SCHEDULE)
                and report["longest_stall_s"] < STALL_LIMIT_S)

    # -- clean-up -----------------------------------------------------------------------------

    def _clean_up(self, hub: Any, broker: Any, group: RoleGroup | None,
                  simulators: dict[str, Any], disrupter: threading.Thread | None, root: Path,
                  report: dict[str, Any]) -> None:
        """Stop everything this run started and remove its folder. A second SIGTERM or Ctrl-C
        while this runs is ignored: half a clean-up would leave servers behind."""
        with _signals_held():
            self.stopping.set()
            self.disruptions_done.set()
            steps: list[tuple[str, Callable[[], None]]] = [
                ("hub processes", group.stop if group is not None else lambda: None),
                ("disruptions", lambda: disrupter.join(5) if disrupter is not None else None),
                ("simulators", lambda: [s.stop() for s in simulators.values()]),
                ("broker connection", broker.close if broker is not None else lambda: None),
                ("hub", hub.close if hub is not None else lambda: None),
                ("RabbitMQ nodes", self.rabbit.stop if self.rabbit else lambda: None),
                ("PostgreSQL servers", self.pg.stop if self.pg else lambda: None),
            ]
            for what, step in steps:
                try:
                    step()
                except Exception:  # noqa: BLE001 - every step is tried
                    log.exception("chaos clean-up: stopping the %s failed", what)
            if self.options.keep:
                report["kept"] = {"folder": str(root)}
            else:
                shutil.rmtree(root, ignore_errors=True)


#: The hub command of each kind of process.
COMMANDS = {"worker": "worker", "relay": "relay", "web": "serve"}
#: The smallest document the intake accepts as a PDF (its magic bytes; nothing parses it).
CHAOS_PDF = b"%PDF-1.4\n% hub chaos\n%%EOF\n"


def _session() -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment
    return session


def _answers(http: Any, url: str) -> bool:
    try:
        return http.get(url, timeout=2).status_code == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _raise_for(response: Any, what: str) -> None:
    """An HTTP answer as the hub's errors: 5xx transient (tried again), other refusals
    permanent (a bug of the run or the hub: reported)."""
    if response.status_code < 400:
        return
    detail = f"{what}: HTTP {response.status_code} {response.text[:200]}"
    if response.status_code >= 500:
        raise TransientError(detail, code="chaos.web_unavailable")
    raise PermanentError(detail, code="chaos.web_refused")


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data["a"]["b"]`` for ``path`` ``"a.b"``."""
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


@contextlib.contextmanager
def _signals_held() -> Any:
    """Ignore SIGINT and SIGTERM for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,
                                                                    signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_cluster_chaos(options: ClusterOptions) -> dict[str, Any]:
    """Run it; returns the report (`hub.chaos.verify.verdict`'s keys and the cluster's)."""
    return ClusterRun(options).execute()


__all__ = ["ClusterOptions", "run_cluster_chaos", "SCHEDULE", "STALL_LIMIT_S"]
