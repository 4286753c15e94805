"""Consumers: the connector worker (one per agency) and the case worker.

Every consumer follows one discipline:

1. parse the envelope strictly and check its seal; a message that fails either is parked at once;
2. skip it if this consumer already applied that message id (idempotency);
3. do the work; commit its effects (processed mark, exchange, case, outbox, audit) in one
   transaction; only then ack;
4. on failure, classify: transient and not exhausted -> `retry` on the next rung of the ladder with
   the attempt counter advanced; otherwise -> `dead_letter` with the reason in the headers.

Nothing is acked that is not done, and nothing that fails is acked without being parked.

The connector worker takes its requests in batches (what the broker's prefetch window holds when
it is free), calls the agency for all of them at once (one connector per concurrent call, up to
the agency's ``concurrency``), and applies every answer to its case in **one** transaction: the
processed marks, the exchanges answered, the route's decisions, the status changes, the next
steps into the outbox and the audit records commit together, then the batch is acked. One hop per
answer: no queue between an agency's answer and its case. If that transaction fails, each answer
is applied again in a transaction of its own, so that one bad answer (a poison message) is
parked alone and the others commit. The case row lock keeps answers to one case in turn.

The case worker applies parked answers that an operator replays (``reply`` envelopes on the
cases queue, `hub.cases.answers`), one message at a time.
"""
from __future__ import annotations

import abc
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import Connector, Reply
from hub.addresses import case_routing_key
from hub.cases.answers import Answer, reply_envelope
from hub.cases.book import CaseBook
from hub.clock import utcnow
from hub.delivery import broker as b
from hub.delivery.broker import Broker, Delivery
from hub.delivery.circuit import CircuitBreaker
from hub.delivery.deadletters import park_headers, record
from hub.delivery.hops import Hop, Observer
from hub.delivery.idempotency import already_processed, mark_processed, mark_processed_many
from hub.delivery.retry import RetryPolicy
from hub.envelope import Envelope
from hub.errors import HubError, PermanentError, SecurityError, UnknownRoute, classify
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.evidence.seal import Seal
from hub.evidence.seen import DeferredSeenIds, add_all_if_new
from hub.masking import redact
from hub.store import Store
from hub.store.models import CaseRow, ExchangeRow

log = logging.getLogger(__name__)


class Consumer(abc.ABC):
    """Base of every queue consumer: reading, failure handling and the consume loop."""

    component = "consumer"

    def __init__(self, *, queue: str, store: Store, audit: AuditLog, seal: Seal,
                 policy: RetryPolicy, broker_factory: Callable[[], Broker],
                 max_message_bytes: int, prefetch: int = 16,
                 on_commit: Callable[[], None] | None = None,
                 observer: Observer | None = None) -> None:
        self.queue = queue
        self.store = store
        self.audit = audit
        self.seal = seal
        self.policy = policy
        self.broker_factory = broker_factory
        self.max_message_bytes = max_message_bytes
        self.prefetch = prefetch
        self.on_commit = on_commit or (lambda: None)
        #: Operations seam: operational records, pause switches (no-op by default).
        self.observer = observer or Observer()
        self.processed = 0
        self.failed = 0
        #: The broker connection of `run` (acks of a batch go through it together).
        self.broker: Broker | None = None

    # -- reading ------------------------------------------------------------------------------

    def open(self, delivery: Delivery) -> "Work | None":
        """The checked envelope of ``delivery`` with its attempt, or None when it was parked
        (unreadable, altered, not sealed by the hub)."""
        attempt = int(delivery.message.headers.get(b.H_ATTEMPT) or 0)
        hop = Hop(component=self.component, message_id=delivery.message.message_id,
                  attempt=attempt + 1, received_at=utcnow())
        envelope: Envelope | None = None
        try:
            envelope = Envelope.from_bytes(delivery.message.body,
                                           max_bytes=self.max_message_bytes)
            hop.describe(envelope)
            self.seal.check(envelope)
            return Work(delivery, envelope.with_attempt(attempt), attempt, hop)
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
            self.fail(Work(delivery, envelope, attempt, hop), classify(exc))
            return None

    # -- failures -----------------------------------------------------------------------------

    def fail(self, work: "Work", error: HubError) -> None:
        """Send ``work``'s message to its next retry rung or park it, audited."""
        self.failed += 1
        delivery, envelope, attempt = work.delivery, work.envelope, work.attempt
        if delivery.settled:
            # The work committed but the ack failed (connection lost): the broker redelivers
            # and idempotency makes the second delivery a no-op.
            log.warning("%s: settle of %s failed after commit: %s", self.component,
                        delivery.message.message_id, error.message)
            return
        retry = error.transient and not self.policy.exhausted(attempt)
        log.log(logging.INFO if retry else logging.WARNING,
                "%s: message %s failed (%s): %s", self.component, delivery.message.message_id,
                error.code, error.message,
                extra={"correlation_id": envelope.correlation_id if envelope else None})
        self._audit_failure(work, error, retry)
        try:
            if retry:
                headers = {b.H_ATTEMPT: attempt + 1, b.H_ERROR_CODE: error.code,
                           b.H_ERROR: error.message[:1000], b.H_COMPONENT: self.component}
                body = envelope.with_attempt(attempt + 1).to_bytes() if envelope else None
                delivery.retry(attempt, self.policy.delay(attempt), headers=headers, body=body)
            else:
                if error.transient:
                    error = PermanentError(f"gave up after {attempt + 1} attempts: {error.message}",
                                           code=error.code)
                delivery.dead_letter(headers=park_headers(
                    error, component=self.component, queue=self.queue,
                    routing_key=delivery.message.routing_key, attempt=attempt + 1))
        except HubError as exc:
            # Could not hand it to the retry rung or the DLQ: leave it unsettled, the broker
            # gives it back (connection loss requeues; the embedded lease lapses).
            log.error("%s: could not settle failed message %s: %s", self.component,
                      delivery.message.message_id, exc.message)

    def _audit_failure(self, work: "Work", error: HubError, retry: bool) -> None:
        envelope = work.envelope
        try:
            with self.store.transaction() as session:
                if envelope is not None:
                    exchange = session.get(ExchangeRow, str(envelope.id))
                    if exchange is not None and exchange.status in ("queued", "acknowledged"):
                        exchange.attempts = work.attempt + 1
                        exchange.error_code = error.code
                        exchange.error = redact(error.message, limit=2000)  # at rest: no values
                self.observer.record(session, work.hop.settled(
                    "retried" if retry else "dead_lettered", fault_code=error.code,
                    fault_reason=error.message))
                self.audit.append(session, AuditRecord(
                    action="retried" if retry else "failed", actor=f"hub:{self.component}",
                    component=self.component, outcome=error.code,
                    message_id=work.delivery.message.message_id,
                    correlation_id=envelope.correlation_id if envelope else None,
                    digest=envelope.digest() if envelope else None,
                    details={"attempt": work.attempt + 1, "error": error.message[:300]}))
        except HubError as exc:
            # The store is down: the message still goes to its rung or the DLQ (never lost);
            # the recorder audits the parking once the store is back.
            log.error("%s: could not audit failure of %s: %s", self.component,
                      work.delivery.message.message_id, exc.message)

    # -- the loop -----------------------------------------------------------------------------

    @abc.abstractmethod
    def handle(self, deliveries: list[Delivery]) -> None:
        """Do the work of a batch of deliveries and settle each of them."""

    #: Most deliveries handled together (one transaction); 1: one at a time.
    max_batch = 1

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop``; while an operator pauses this component, take nothing (the
        messages wait in the queue) and hand back what was prefetched."""
        broker = self.broker = self.broker_factory()
        try:
            while not stop.is_set():
                if self.observer.paused(self.component):
                    stop.wait(0.5)
                    continue
                leave = threading.Event()

                def check() -> None:
                    if stop.is_set() or self.observer.paused(self.component):
                        leave.set()

                def deliver(batch: list[Delivery]) -> None:
                    check()
                    if leave.is_set():
                        for delivery in batch:
                            delivery.release()
                        return
                    self.handle(batch)

                broker.consume_batches(self.queue, deliver, stop=leave,
                                       max_batch=self.max_batch, prefetch=self.prefetch,
                                       idle=check)
        finally:
            self.broker = None
            broker.close()


@dataclass
class Work:
    """One message being handled: its delivery, checked envelope, attempt and hop record."""

    delivery: Delivery
    envelope: Envelope | None
    attempt: int
    hop: Hop
    reply: Reply | None = None
    error: HubError | None = None
    #: Signed message ids of the answer, to record with its effect (replay protection).
    seen: list[tuple[str, str]] = field(default_factory=list)

    @property
    def message_id(self) -> str:
        return str(self.envelope.id) if self.envelope else self.delivery.message.message_id


class ConnectorWorker(Consumer):
    """Delivers requests to one agency and applies its answers to their cases (one hop)."""

    def __init__(self, *, connectors: Sequence[Connector], breaker: CircuitBreaker,
                 cases: CaseBook, cases_queue: str, max_batch: int = 32,
                 seen: DeferredSeenIds | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if not connectors:
            raise ValueError("a connector worker needs at least one connector")
        self.connectors = list(connectors)
        self.agency = self.connectors[0].agency
        self.component = f"connector.{self.agency}"
        self.breaker = breaker
        self.cases = cases
        self.cases_queue = cases_queue
        self.max_batch = max_batch
        #: Where the connectors' signature checks leave the ids of the answers they verified:
        #: written with the batch's effect, one statement for the batch (None: the connectors
        #: record them themselves).
        self.seen = seen
        #: Connectors are not shared between threads: a call borrows one.
        self._idle: queue.SimpleQueue[Connector] = queue.SimpleQueue()
        self._calls: ThreadPoolExecutor | None = None

    def run(self, stop: threading.Event) -> None:
        started: list[Connector] = []
        try:
            for connector in self.connectors:
                connector.start()  # builds clients once
                started.append(connector)
                self._idle.put(connector)
            with ThreadPoolExecutor(max_workers=len(self.connectors),
                                    thread_name_prefix=f"{self.component}-call") as calls:
                self._calls = calls
                super().run(stop)
        finally:
            self._calls = None
            for connector in started:
                connector.close()

    # -- a batch ------------------------------------------------------------------------------

    def handle(self, deliveries: list[Delivery]) -> None:
        batch = [work for work in map(self.open, deliveries) if work is not None]
        batch = [work for work in batch if self._is_request(work)]
        if not batch:
            return
        # A transaction, not a bare session: a database that is restarting then surfaces as
        # StoreUnavailable (retried) instead of an unexpected error (parked). Read-only: on
        # SQLite it does not wait for the write lock behind other threads' commits.
        try:
            with self.store.transaction(read_only=True) as session:
                done = already_processed(session, self.component,
                                         [w.message_id for w in batch])
        except HubError as exc:
            for work in batch:
                self.fail(work, exc)
            return
        duplicates = [w for w in batch if w.message_id in done]
        if duplicates:
            self._acknowledge(duplicates)  # delivered again after their effect committed
        batch = [w for w in batch if w.message_id not in done]
        self._call_agency(batch)
        answered = [w for w in batch if w.reply is not None]
        for work in batch:
            if work.error is not None:
                self.fail(work, work.error)
        if answered:
            self._settle(answered)

    def _is_request(self, work: Work) -> bool:
        assert work.envelope is not None
        if work.envelope.kind == "request":
            return True
        self.fail(work, UnknownRoute(f"{self.component} only sends requests, got a"
                                     f" {work.envelope.kind}"))
        return False

    def _call_agency(self, batch: list[Work]) -> None:
        """Call the agency for every request of the batch at once (each on its own connector);
        each work gets its reply or its error."""
        if len(batch) == 1 or self._calls is None:
            for work in batch:
                self._call(work)
            return
        for future in [self._calls.submit(self._call, work) for work in batch]:
            future.result()

    def _call(self, work: Work) -> None:
        assert work.envelope is not None
        connector = self._idle.get()
        try:
            self.breaker.before_call()
            connector.last_wire = None
            work.hop.request_out_at = utcnow()
            try:
                if self.seen is None:
                    work.reply = connector.send(work.envelope)
                else:
                    with self.seen.collecting() as marks:
                        work.reply = connector.send(work.envelope)
                    work.seen = marks
            finally:
                work.hop.response_in_at = utcnow()
                wire = connector.last_wire
                if wire is not None:
                    work.hop.request_bytes = wire.request_bytes
                    work.hop.response_bytes = wire.response_bytes
            self.breaker.record_success()
        except Exception as exc:  # noqa: BLE001 - classified, and settled by the caller
            work.error = classify(exc)
            self.breaker.record_failure(work.error)  # an open circuit's refusal counts for nothing
        finally:
            self._idle.put(connector)

    # -- answers --------------------------------------------------------------------------------

    def _settle(self, answered: list[Work]) -> None:
        """Apply every answer of the batch in one transaction, then ack them all; if that
        fails, apply them one by one so that only the bad ones fail."""
        try:
            with self.store.transaction() as session:
                self._apply(session, answered)
        except Exception as exc:  # noqa: BLE001 - classified below
            if len(answered) > 1:
                log.info("%s: a batch of %d answers failed (%s); applying them one by one",
                         self.component, len(answered), classify(exc).code)
                for work in answered:
                    self._settle_alone(work)
                return
            self._settle_alone(answered[0], classify(exc))
            return
        self._acknowledge(answered)

    def _settle_alone(self, work: Work, error: HubError | None = None) -> None:
        if error is None:
            try:
                with self.store.transaction() as session:
                    self._apply(session, [work])
                self._acknowledge([work])
                return
            except Exception as exc:  # noqa: BLE001 - classified
                error = classify(exc)
        if error.transient or isinstance(error, SecurityError):
            # Transient: the agency is asked again (it answers a repeat the same). An answer
            # that cannot be trusted (a replay) is never kept: its request is parked.
            self.fail(work, error)
            return
        # The agency answered, but its answer cannot be applied (e.g. an outcome the route has
        # no rule for): keep the request done and park the answer, with the reason, where a
        # replay brings it back to the case worker once the route is fixed.
        try:
            with self.store.transaction() as session:
                self._park_answer(session, work, error)
        except Exception as exc:  # noqa: BLE001 - the request goes back instead
            self.fail(work, classify(exc))
            return
        self._acknowledge([work])

    def _acknowledge(self, works: list[Work]) -> None:
        try:
            if self.broker is not None:
                self.broker.ack_many([w.delivery for w in works])
            else:
                for work in works:
                    work.delivery.ack()
        except HubError as exc:
            # Committed but not acked (connection lost): the broker redelivers and the
            # processed marks make the second delivery a no-op.
            log.warning("%s: ack after commit failed: %s", self.component, exc.message)
        self.processed += len(works)
        self.on_commit()

    def _apply(self, session: Session, works: list[Work]) -> None:
        """Record the batch's deliveries and apply their answers, in ``session``."""
        fresh = mark_processed_many(session, self.component, [w.message_id for w in works])
        works = [w for w in works if w.message_id in fresh]
        if not works:
            return
        # A signed answer seen before is a replay: the batch fails, and applied alone this
        # answer fails with ReplayDetected (its request is parked), the others commit.
        add_all_if_new(session, [mark for w in works for mark in w.seen])
        exchanges = {row.id: row for row in session.scalars(
            select(ExchangeRow).where(ExchangeRow.id.in_([w.message_id for w in works])))}
        # Cases locked in id order: two workers locking overlapping cases cannot deadlock. Their
        # exchanges are read once the locks are held (another worker may just have answered a
        # parallel step of the same case).
        case_ids = sorted({row.case_id for row in exchanges.values()})
        cases = {row.id: row for row in session.scalars(
            select(CaseRow).where(CaseRow.id.in_(case_ids)).order_by(CaseRow.id)
            .with_for_update())}
        self.cases.load_rounds(session, cases.values())
        now = utcnow()
        for work in works:
            assert work.envelope is not None and work.reply is not None
            envelope, reply = work.envelope, work.reply
            exchange = exchanges.get(work.message_id)
            self.audit.append(session, AuditRecord(
                action="sent", actor=f"hub:{self.component}", component=self.component,
                message_id=work.message_id, correlation_id=envelope.correlation_id,
                digest=envelope.digest(), details={"attempt": envelope.attempt + 1}))
            if exchange is not None:
                exchange.attempts = envelope.attempt + 1
                exchange.sent_at = exchange.sent_at or now
            self.observer.record(session, work.hop.settled(
                "pending" if reply.pending else "succeeded", answer=reply.outcome))
            if reply.pending:
                # The answer comes by callback; it may even have arrived already (then the
                # exchange is no longer queued and keeps what the callback recorded).
                if exchange is not None and exchange.status == "queued":
                    exchange.status = "acknowledged"
                continue
            if exchange is None:
                raise UnknownRoute(f"an answer to unknown exchange {work.message_id}")
            answer = Answer.from_reply(work.message_id, reply)
            self.cases.record_answer(session, answer, agency=self.agency,
                                     component=self.component,
                                     correlation_id=envelope.correlation_id)
            self.cases.apply_answer(session, answer, actor=f"agency:{self.agency}",
                                    exchange=exchange, case=cases[exchange.case_id])

    def _park_answer(self, session: Session, work: Work, error: HubError) -> None:
        assert work.envelope is not None and work.reply is not None
        if not mark_processed(session, self.component, work.message_id):
            return  # another delivery of the same request got there first
        answer = Answer.from_reply(work.message_id, work.reply)
        reply = self.seal.seal(reply_envelope(work.envelope, answer))
        self.cases.record_answer(session, answer, agency=self.agency, component=self.component,
                                 correlation_id=work.envelope.correlation_id)
        self.observer.record(session, work.hop.settled(
            "succeeded", answer=work.reply.outcome))
        headers = park_headers(error, component="cases", queue=self.cases_queue,
                               routing_key=case_routing_key(work.envelope.service, "reply"),
                               attempt=1)
        record(session, self.audit, body=reply.to_bytes(), message_id=str(reply.id),
               queue=self.cases_queue,
               routing_key=case_routing_key(work.envelope.service, "reply"),
               headers=headers, actor=f"hub:{self.component}")
        log.warning("%s: the answer to %s cannot be applied (%s); parked for a replay",
                    self.component, work.message_id, error.code,
                    extra={"correlation_id": work.envelope.correlation_id})


class CaseWorker(Consumer):
    """Applies parked answers brought back by a replay (``reply`` envelopes), one at a time."""

    component = "cases"

    def __init__(self, *, cases: CaseBook, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cases = cases

    def handle(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            work = self.open(delivery)
            if work is not None:
                self._apply(work)

    def _apply(self, work: Work) -> None:
        envelope = work.envelope
        assert envelope is not None
        try:
            if envelope.kind != "reply":
                raise UnknownRoute(f"the case worker has no handler for a {envelope.kind}")
            with self.store.transaction() as session:
                if mark_processed(session, self.component, str(envelope.id)):
                    self.cases.apply_reply(session, envelope, actor=f"agency:{envelope.sender}")
        except Exception as exc:  # noqa: BLE001 - classified
            self.fail(work, classify(exc))
            return
        try:
            work.delivery.ack()
        except HubError as exc:
            log.warning("cases: ack after commit failed: %s", exc.message)
        self.processed += 1
        self.on_commit()
