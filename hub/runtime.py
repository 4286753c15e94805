"""The composition root: builds the hub's parts from `Settings` and runs them.

    hub = Hub(Settings.from_env())
    hub.setup()                              # migrations + broker topology
    with hub.run():                          # relay, case worker, connector workers, recorder
        opened = hub.submit("driving_licence_authentication", data, actor="applicant")

Every part receives its dependencies from here (store, broker factory, keys, seal, audit,
connector), so tests swap any of them: ``Hub(settings, connectors={"narsa": lambda: MockConnector(...)})``.
Keys (`hub.keyset.HubKeys`: signing key, trust store, data keys) are loaded once, here; a hub
without keys refuses to start and names ``hub keys init``.
In production each kind of part runs in its own processes (``hub worker``, ``hub relay``,
``hub serve``), any number of each; `run` puts them all in one process for the quick start.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterable, Iterator, Mapping

import requests

from connectors.base import Connector, ConnectorDeps
from connectors.registry import AgencyConfig, build_connector, load_agencies
from connectors.signing import MessageSigning
from hub.appointments.book import AppointmentBook
from hub.cases.book import CaseBook, OpenedCase
from hub.cases.deadlines import DeadlineSweeper
from hub.cases.retention import RetentionSweeper
from hub.cases.scheduler import Job, Scheduler
from hub.cases.staff import StaffDesk
from hub.cases.submissions import Submissions
from hub.config import Settings
from hub.delivery.broker import Broker, open_broker
from hub.delivery.broker.topology import Topology
from hub.delivery.circuit import CircuitBreaker
from hub.delivery.deadletters import DeadLetterRecorder
from hub.delivery.hops import Observer
from hub.delivery.relay import OutboxRelay
from hub.delivery.retry import RetryPolicy
from hub.delivery.workers import CaseWorker, ConnectorWorker
from hub.errors import ConfigurationError
from hub.evidence.audit.chain import AuditChainer
from hub.evidence.audit.log import AuditLog
from hub.evidence.seal import JwsSeal, Seal
from hub.evidence.seen import DeferredSeenIds, StoreSeenIds, purge_seen
from hub.evidence.verification import MessageVerifier
from hub.delivery.redrive import Redriver
from hub.keyset import HubKeys
from hub.ops.observer import StoreObserver
from hub.ops.queues import ManagementApi, QueueInspector
from hub.services import ServiceCatalog
from hub.store import Store
from hub.store.group import GroupCommit
from hub.store.attachments import AttachmentStore, open_cipher, purge_unclaimed_documents
from hub.store.privacy import Privacy
from hub.store.rekey import Reencryption
from security.tls import client_context, pinned_session
from security.tokens import TokenAuthority

log = logging.getLogger(__name__)

#: The case worker's own retry ladder (store contention, a lost connection).
CASE_RETRY = RetryPolicy(base_delay=0.5, max_delay=10.0, max_attempts=6)


def settle_process(gen0: int = 10_000, gen1: int = 50, gen2: int = 100,
                   switch_interval: float = 0.02) -> None:
    """For a long-running process (``hub serve``, ``hub worker``, ``hub relay``) once it has
    started: freeze what start-up allocated, collect garbage less often, switch threads less.

    Start-up leaves hundreds of thousands of long-lived objects (schemas, mappings, SQLAlchemy
    metadata, the catalogue) that every full collection would traverse again; `gc.freeze` moves
    them out of the collector's sight. Each message allocates thousands of short-lived objects
    (ORM states, envelopes), which CPython's default threshold of 700 collected over and over.
    A hub process runs a dozen threads that mostly wait on sockets (they give the GIL up there
    anyway); forcing a switch every 5 ms (the default) among the few that compute only adds
    hand-overs. Measured on the benchmark (docs/benchmarks.md): about a tenth less CPU per
    exchange for the collector settings, 5-15 % more throughput for the switch interval, with
    the same latency at half of the peak. Cycles are still collected.
    """

    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    sys.setswitchinterval(switch_interval)


class Hub:
    def __init__(self, settings: Settings, *, store: Store | None = None,
                 agencies: Mapping[str, AgencyConfig] | None = None,
                 agency_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 connectors: Mapping[str, Callable[[], Connector]] | None = None,
                 catalog: ServiceCatalog | None = None, seal: Seal | None = None,
                 features: Iterable[str] = (), observer: Observer | None = None,
                 keys: HubKeys | None = None) -> None:
        self.settings = settings
        settings.ensure_dirs()
        #: Loaded once for the life of the process; parts receive what they need from it.
        self.keys = keys or HubKeys.load(settings)
        self.store = store or Store.from_url(settings.database_url)
        #: Personal data is sealed with the data keys at every flush (`hub.store.privacy`).
        self.privacy = Privacy.of(self.keys)
        self.store.privacy = self.privacy
        self.agencies = dict(agencies or load_agencies(
            overrides_file=settings.agencies_file, urls=settings.agency_urls,
            overrides=agency_overrides))
        self.catalog = catalog or ServiceCatalog.load(
            features=set(features) | set(settings.features))
        missing = self.catalog.agencies() - set(self.agencies)
        if missing and catalog is not None:
            raise ConfigurationError(f"services route to agencies without configuration:"
                                     f" {sorted(missing)}")
        if missing:
            # The packaged catalog may hold services whose agency connectors are not deployed
            # (yet): those services are not offered; asking for one says why.
            self.catalog = self.catalog.offline_without(set(self.agencies))
        self.topology = Topology.for_hub(
            settings.broker_namespace,
            {name: RetryPolicy.from_mapping(config.retry.model_dump()).ladder for name, config in self.agencies.items()},
            case_retry_delays=CASE_RETRY.ladder)
        self.audit = AuditLog()
        self.seal = seal or JwsSeal(self.keys.signer, self.keys.trust)
        #: Issues and verifies the short-lived access tokens of staff, agencies and operators.
        self.tokens = TokenAuthority(self.keys.signer)
        self.relay = OutboxRelay(self.store, self.open_broker, self.audit,
                                 batch=settings.relay_batch,
                                 poll_interval=settings.relay_poll_interval)
        self.cases = CaseBook(self.catalog, self.audit, self.seal, node_id=settings.node_id)
        #: Concurrent submissions share commits (`hub.store.group`).
        self.intake_commits = GroupCommit(self.store)
        self.attachments = AttachmentStore(
            settings.attachments_dir or settings.data_dir / "attachments",
            open_cipher(self.keys.data), max_bytes=settings.max_attachment_bytes)
        self._connector_factories = dict(connectors or {})
        self.breakers = {
            name: CircuitBreaker(name, failure_threshold=config.circuit_breaker.failure_threshold,
                                 reset_timeout=config.circuit_breaker.reset_timeout)
            for name, config in self.agencies.items()
        }
        if observer is None:

            observer = StoreObserver(self.store, breakers=self.breakers)
        #: Operations seam (operational records, pause switches, heartbeats).
        self.observer = observer

    # -- plumbing ------------------------------------------------------------------------------

    def open_broker(self) -> Broker:
        return open_broker(self.settings.broker_url, self.topology,
                           visibility_timeout=self.settings.visibility_timeout)

    def setup(self) -> None:
        """Bring the database schema to head and declare the broker topology (idempotent)."""
        self.store.upgrade()
        with self.open_broker() as broker:
            broker.declare()

    def new_connector(self, agency: str) -> Connector:
        if agency in self._connector_factories:
            return self._connector_factories[agency]()
        config = self.agencies.get(agency)
        if config is None:
            raise ConfigurationError(f"no agency named {agency!r}")
        return build_connector(config, self.connector_dependencies(agency))

    def connector_dependencies(self, agency: str) -> ConnectorDeps:
        """What a connector of ``agency`` receives: the hub's identity, its message signing
        (signing key, the trust store that verifies the agency's answers, replay protection)
        and, when ``HUB_AGENCY_TLS`` covers the agency, its pinned mutual-TLS session."""
        tls_session = None
        if self.settings.uses_agency_tls(agency):
            tls_session = functools.partial(self.agency_tls_session, agency)
        return ConnectorDeps(node_id=self.settings.node_id, signing=self.signing,
                             tls_session=tls_session)

    def agency_tls_session(self, agency: str) -> requests.Session:
        """A session speaking only pinned mutual TLS to ``agency``: the hub's TLS client
        certificate, our CA and CRL, and the agency's server key pinned
        (``HUB_AGENCY_<NAME>_TLS_PIN``; without one, the key of the agency's certificate in the
        keys directory, which is what development and the tests use)."""

        store = self.keys.store
        pins = self.settings.agency_tls_pins.get(agency) or {store.tls_pin(agency)}
        return pinned_session(agency, pins, client_context(store.tls_files("hub", "tls-client")))

    @property
    def signing(self) -> MessageSigning:
        """The hub's message signing (XML-DSig, JWS) over the keys loaded at start, with replay
        protection: ``HUB_REPLAY_WINDOW`` and the database's seen message ids."""
        if not hasattr(self, "_signing"):

            self._signing = MessageSigning(
                party="hub", signer=self.keys.signer, trust=self.keys.trust,
                verifier=MessageVerifier.from_settings(self.keys.trust, self.settings),
                seen=StoreSeenIds(self.store))
        return self._signing

    # -- use cases: each receives the parts it uses, by name -----------------------------------

    def submissions(self) -> Submissions:
        """The applicant's use cases (submit, upload, track, answer, withdraw)."""
        return Submissions(self.store, self.catalog, self.cases, self.audit, self.attachments,
                           self.relay.wake, appointments=self.appointment_book(),
                           commits=self.intake_commits)

    def staff_desk(self) -> StaffDesk:
        """The staff's use cases (their cases, moves, outcome documents)."""
        return StaffDesk(self.store, self.catalog, self.cases, self.audit, self.attachments,
                         self.relay.wake)

    def appointment_book(self) -> AppointmentBook:
        """Slots, bookings and the import of the legacy platform's bookings."""
        return AppointmentBook(self.store, self.catalog, self.audit)

    def deadline_sweeper(self) -> DeadlineSweeper:
        """Applies the services' deadlines (``hub deadlines run``, the scheduler)."""
        return DeadlineSweeper(self.store, self.catalog, self.cases, self.audit, self.relay.wake)

    def retention_sweeper(self) -> RetentionSweeper:
        """Anonymizes closed cases past their retention (``hub retention run``, the
        scheduler)."""
        return RetentionSweeper(self.store, self.catalog, self.audit, self.attachments,
                                retention_for=self.settings.retention_for,
                                message_retention_days=self.settings.message_retention_days)

    def reencryption(self, *, batch: int = 200) -> Reencryption:
        """Moves sealed rows and documents to the active data key (``hub keys rotate``)."""
        return Reencryption(self.store, self.privacy, self.attachments, batch=batch)

    def queue_inspector(self, *, ttl: float | None = None) -> QueueInspector:
        """Figures of the topology's queues (console, ``/metrics``), cached ``ttl`` seconds
        (default ``HUB_METRICS_CACHE_SECONDS``)."""
        return QueueInspector(
            self.store, self.topology, self.open_broker,
            management=ManagementApi.for_settings(self.settings.broker_url,
                                                  self.settings.rabbitmq_management_url),
            ttl=self.settings.metrics_cache_seconds if ttl is None else ttl)

    def submit(self, service: str, data: dict[str, Any], *, actor: str = "applicant",
               language: str = "fr") -> OpenedCase:
        """Open a case and queue its first exchanges, in one transaction."""
        with self.store.transaction() as session:
            opened = self.cases.open(session, service, data, actor=actor, language=language)
        self.relay.wake()
        return opened

    # -- parts ---------------------------------------------------------------------------------

    def _consumer_options(self, queue: str, policy: RetryPolicy) -> dict[str, Any]:
        return dict(queue=queue, store=self.store, audit=self.audit, seal=self.seal,
                    policy=policy, broker_factory=self.open_broker,
                    max_message_bytes=self.settings.max_message_bytes,
                    prefetch=self.settings.prefetch, on_commit=self.relay.wake,
                    observer=self.observer)

    def connector_worker(self, agency: str, *, concurrency: int | None = None
                         ) -> ConnectorWorker:
        """The worker of ``agency``: up to ``concurrency`` calls at once (default: the agency's
        configured concurrency), each on a connector of its own."""
        config = self.agencies[agency]
        calls = concurrency or config.concurrency
        seen = DeferredSeenIds(self.store)
        return ConnectorWorker(
            connectors=[self._worker_connector(agency, seen) for _ in range(calls)], seen=seen,
            breaker=self.breakers[agency], cases=self.cases,
            cases_queue=self.topology.cases_queue,
            max_batch=min(self.settings.consumer_batch, self.settings.prefetch),
            **self._consumer_options(self.topology.agency_queue(agency),
                                     RetryPolicy.from_mapping(config.retry.model_dump())))

    def _worker_connector(self, agency: str, seen: DeferredSeenIds) -> Connector:
        """A connector for the worker of ``agency``: the ids of the answers it verifies are left
        in ``seen``, for the worker to write with their effect."""
        if agency in self._connector_factories:
            return self._connector_factories[agency]()
        deps = self.connector_dependencies(agency)
        if deps.signing is not None:
            deps = dataclasses.replace(deps, signing=dataclasses.replace(deps.signing, seen=seen))
        return build_connector(self.agencies[agency], deps)

    def case_worker(self) -> CaseWorker:
        return CaseWorker(cases=self.cases,
                          **self._consumer_options(self.topology.cases_queue, CASE_RETRY))

    def recorder(self) -> DeadLetterRecorder:
        return DeadLetterRecorder(self.store, self.open_broker, self.audit, self.topology)

    def redriver(self) -> Redriver | None:
        """Sends again messages stranded after a retry (`hub.delivery.redrive`); None when
        turned off (``HUB_REDRIVE_AFTER=0``). Runs beside the relay."""
        if self.settings.redrive_after <= 0:
            return None
        return Redriver(self.store, self.audit, after=self.settings.redrive_after,
                        interval=self.settings.redrive_interval)

    def chainer(self) -> AuditChainer:
        """Chains committed audit records (one pass every ``HUB_AUDIT_SEAL_INTERVAL``)."""
        return AuditChainer(self.store, interval=self.settings.audit_chain_interval)

    def scheduler(self, *, interval_minutes: float = 15.0) -> Scheduler:
        """The recurring jobs of a hub (``hub deadlines run``): the deadline sweep every
        ``interval_minutes`` (and at start), the purge of unclaimed documents and expired seen
        message ids every 6 hours, the retention job daily, and the continuation of an
        unfinished re-encryption hourly."""
        return Scheduler(self.store.engine, [
            Job("deadlines.sweep", timedelta(minutes=interval_minutes), self._sweep_deadlines,
                at_start=True),
            Job("documents.purge", timedelta(hours=6), self._purge),
            Job("retention.run", timedelta(hours=24), self._apply_retention),
            Job("keys.reencrypt", timedelta(hours=1), self._continue_reencryption),
        ])

    def _sweep_deadlines(self) -> None:
        report = self.deadline_sweeper().sweep()
        log.info("deadline sweep: %d moved, %d reminded, %d skipped", len(report.moved),
                 len(report.reminded), len(report.failed))

    def _purge(self) -> None:
        removed = purge_unclaimed_documents(
            self.store, self.attachments,
            unclaimed_for=timedelta(hours=self.settings.unclaimed_attachment_hours))
        forgotten = purge_seen(self.store, older_than=self.settings.seen_id_retention)
        log.info("purge: %d unclaimed document files removed, %d seen message ids forgotten",
                 removed, forgotten)

    def _apply_retention(self) -> None:
        report = self.retention_sweeper().run()
        log.info("retention: %d cases anonymized, %d skipped, %d messages purged",
                 len(report.anonymized), len(report.skipped), report.messages_purged)

    def _continue_reencryption(self) -> None:
        """Carry on a re-encryption a ``hub keys rotate`` left unfinished (keys are retired by
        the command only, which knows when every process has switched to the new key)."""
        job = self.reencryption()
        if any(job.pending().values()):
            report = job.run()
            log.info("re-encryption: %d rows moved, %d left", sum(report.moved.values()),
                     report.remaining)

    @contextlib.contextmanager
    def run(self, *, relay: bool = True, cases: int = 1, recorder: bool = True,
            agencies: Iterable[str] | None = None, concurrency: int | None = None,
            chainer: bool | None = None) -> Iterator["Runner"]:
        """Run parts in threads of this process until the block ends (then drain and stop).

        The audit chainer runs beside the relay (``chainer`` None: where the relay runs): every
        deployment has a relay, and a chainer in each worker process would only compete for
        the same lock."""
        runner = Runner()
        components: list[str] = []
        if relay if chainer is None else chainer:
            runner.add("audit-chainer", self.chainer().run)
        if relay:
            runner.add("relay", self.relay.run)
            components.append("relay")
            redriver = self.redriver()
            if redriver is not None:
                runner.add("redriver", redriver.run)
        for n in range(cases):
            runner.add(f"cases-{n}", self.case_worker().run)
            components.append("cases")
        for agency in (self.agencies if agencies is None else agencies):
            runner.add(f"connector-{agency}",
                       self.connector_worker(agency, concurrency=concurrency).run)
            components.append(f"connector.{agency}")
        if recorder:
            runner.add("recorder", self.recorder().run)
            components.append("recorder")
        if components:
            runner.add("ops-heartbeat", lambda stop: self.observer.run(stop, components))
        runner.start()
        try:
            yield runner
        finally:
            runner.stop()

    def close(self) -> None:
        self.store.dispose()


@dataclass
class Runner:
    """Threads running parts of the hub; `stop` lets each finish its message, then joins."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    _parts: list[tuple[str, Callable[[threading.Event], None]]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def add(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self._parts.append((name, target))

    def start(self) -> None:
        for name, target in self._parts:
            thread = threading.Thread(target=self._guard, args=(name, target), name=name,
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def _guard(self, name: str, target: Callable[[threading.Event], None]) -> None:
        # A part that crashes is restarted: one bad moment must not silently stop a worker.
        while not self.stop_event.is_set():
            try:
                target(self.stop_event)
                return
            except Exception:  # noqa: BLE001
                log.exception("part %s crashed; restarting in 1s", name)
                self.stop_event.wait(1.0)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
