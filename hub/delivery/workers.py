"""Consumers: the connector worker (one per agency) and the case worker.

Both follow one discipline, in `Consumer.on_delivery`:

1. parse the envelope strictly and check its seal; a message that fails either is parked at once;
2. skip it if this consumer already applied that message id (idempotency);
3. do the work; commit its effects (processed mark, exchange, reply in the outbox, audit) in one
   transaction; only then ack;
4. on failure, classify: transient and not exhausted -> `retry` on the next rung of the ladder with
   the attempt counter advanced; otherwise -> `dead_letter` with the reason in the headers.

Nothing is acked that is not done, and nothing that fails is acked without being parked.
"""
from __future__ import annotations

import abc
import logging
import threading
from typing import Callable

from hub.delivery import broker as b
from hub.cases.answers import queue_answer
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.delivery.broker import Broker, Delivery
from hub.cases.book import CaseBook
from hub.delivery.circuit import CircuitBreaker
from hub.delivery.deadletters import park_headers
from hub.envelope import Envelope
from hub.errors import HubError, PermanentError, UnknownRoute, classify
from hub.delivery.idempotency import mark_processed, was_processed
from hub.delivery.hops import Hop, Observer
from hub.masking import redact
from hub.delivery.retry import RetryPolicy
from hub.evidence.seal import Seal
from hub.store import Store
from hub.store.models import ExchangeRow, utcnow

log = logging.getLogger(__name__)


class Consumer(abc.ABC):
    """Base of every queue consumer; subclasses implement `process`."""

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
        #: The attempt in progress (one consumer runs in one thread).
        self.hop: Hop | None = None
        self.processed = 0
        self.failed = 0

    @abc.abstractmethod
    def process(self, envelope: Envelope, delivery: Delivery) -> None:
        """Do the work for one checked envelope, commit it, then ack ``delivery``."""

    def on_delivery(self, delivery: Delivery) -> None:
        attempt = int(delivery.message.headers.get(b.H_ATTEMPT) or 0)
        envelope: Envelope | None = None
        self.hop = Hop(component=self.component, message_id=delivery.message.message_id,
                       attempt=attempt + 1, received_at=utcnow())
        try:
            envelope = Envelope.from_bytes(delivery.message.body, max_bytes=self.max_message_bytes)
            self.hop.describe(envelope)
            self.seal.check(envelope)
            self.process(envelope.with_attempt(attempt), delivery)
            self.processed += 1
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
            self.failed += 1
            self._fail(delivery, classify(exc), envelope, attempt)

    def _fail(self, delivery: Delivery, error: HubError, envelope: Envelope | None,
              attempt: int) -> None:
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
        self._audit_failure(envelope, delivery, error, attempt, retry)
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

    def _audit_failure(self, envelope: Envelope | None, delivery: Delivery, error: HubError,
                       attempt: int, retry: bool) -> None:
        try:
            with self.store.transaction() as session:
                if envelope is not None:
                    exchange = session.get(ExchangeRow, str(envelope.id))
                    if exchange is not None and exchange.status in ("queued", "acknowledged"):
                        exchange.attempts = attempt + 1
                        exchange.error_code = error.code
                        exchange.error = redact(error.message, limit=2000)  # at rest: no values
                if self.hop is not None:
                    self.observer.record(session, self.hop.settled(
                        "retried" if retry else "dead_lettered", fault_code=error.code,
                        fault_reason=error.message))
                self.audit.append(session, AuditRecord(
                    action="retried" if retry else "failed", actor=f"hub:{self.component}",
                    component=self.component, outcome=error.code,
                    message_id=delivery.message.message_id,
                    correlation_id=envelope.correlation_id if envelope else None,
                    digest=envelope.digest() if envelope else None,
                    details={"attempt": attempt + 1, "error": error.message[:300]}))
        except HubError as exc:
            # The store is down: the message still goes to its rung or the DLQ (never lost);
            # the recorder audits the parking once the store is back.
            log.error("%s: could not audit failure of %s: %s", self.component,
                      delivery.message.message_id, exc.message)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop``; while an operator pauses this component, take nothing (the
        messages wait in the queue) and hand back what was prefetched."""
        broker = self.broker_factory()
        try:
            while not stop.is_set():
                if self.observer.paused(self.component):
                    stop.wait(0.5)
                    continue
                leave = threading.Event()

                def check() -> None:
                    if stop.is_set() or self.observer.paused(self.component):
                        leave.set()

                def deliver(delivery: Delivery) -> None:
                    check()
                    if leave.is_set():
                        delivery.release()
                        return
                    self.on_delivery(delivery)

                broker.consume(self.queue, deliver, stop=leave, prefetch=self.prefetch,
                               idle=check)
        finally:
            broker.close()


class ConnectorWorker(Consumer):
    """Delivers requests to one agency through its connector and queues the answers."""

    def __init__(self, *, connector: object, breaker: CircuitBreaker, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.connector = connector
        self.breaker = breaker
        self.component = f"connector.{connector.agency}"  # type: ignore[attr-defined]

    def run(self, stop: threading.Event) -> None:
        with self.connector:  # type: ignore[attr-defined]  # start() builds clients once
            super().run(stop)

    def process(self, envelope: Envelope, delivery: Delivery) -> None:
        message_id = str(envelope.id)
        if envelope.kind != "request":
            raise UnknownRoute(f"{self.component} only sends requests, got a {envelope.kind}")
        # A transaction, not a bare session: a database that is restarting then surfaces as
        # StoreUnavailable (retried) instead of an unexpected error (parked). Read-only: on
        # SQLite it does not wait for the write lock behind other threads' commits.
        with self.store.transaction(read_only=True) as session:
            done = was_processed(session, self.component, message_id)
        if done:
            delivery.ack()
            return
        self.breaker.before_call()
        hop = self.hop or Hop(component=self.component, message_id=message_id)
        self.connector.last_wire = None  # type: ignore[attr-defined]
        hop.request_out_at = utcnow()
        try:
            reply = self.connector.send(envelope)  # type: ignore[attr-defined]
        except Exception as exc:
            self._note_wire(hop)
            self.breaker.record_failure(classify(exc))
            raise
        self._note_wire(hop)
        self.breaker.record_success()
        with self.store.transaction() as session:
            if mark_processed(session, self.component, message_id):
                exchange = session.get(ExchangeRow, message_id)
                self.audit.append(session, AuditRecord(
                    action="sent", actor=f"hub:{self.component}", component=self.component,
                    message_id=message_id, correlation_id=envelope.correlation_id,
                    digest=envelope.digest(), details={"attempt": envelope.attempt + 1}))
                if exchange is not None:
                    exchange.attempts = envelope.attempt + 1
                    exchange.sent_at = exchange.sent_at or utcnow()
                self.observer.record(session, hop.settled(
                    "pending" if reply.pending else "succeeded", answer=reply.outcome))
                if reply.pending:
                    # The answer comes by callback; it may even have arrived already (then the
                    # exchange is no longer queued and keeps what the callback recorded).
                    if exchange is not None and exchange.status == "queued":
                        exchange.status = "acknowledged"
                else:
                    queue_answer(session, audit=self.audit, seal=self.seal, request=envelope,
                                 reply=reply, component=self.component)
        delivery.ack()
        self.on_commit()

    def _note_wire(self, hop: Hop) -> None:
        hop.response_in_at = utcnow()
        wire = getattr(self.connector, "last_wire", None)
        if wire is not None:
            hop.request_bytes = wire.request_bytes
            hop.response_bytes = wire.response_bytes


class CaseWorker(Consumer):
    """Applies answers and agency events to cases."""

    component = "cases"

    def __init__(self, *, cases: CaseBook, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cases = cases

    def process(self, envelope: Envelope, delivery: Delivery) -> None:
        if envelope.kind not in ("reply",):
            raise UnknownRoute(f"the case worker has no handler for a {envelope.kind}")
        with self.store.transaction() as session:
            if mark_processed(session, self.component, str(envelope.id)):
                self.cases.apply_reply(session, envelope, actor=f"agency:{envelope.sender}")
        delivery.ack()
        self.on_commit()
