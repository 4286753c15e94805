"""Dead letters: messages the hub could not process, parked with their reason, never dropped.

The path of a message that fails for good (permanent error, or retries exhausted):

1. the consumer parks it on its queue's dead-letter queue (``<queue>.dlq``) with headers saying
   why (`hub.delivery.broker.H_ERROR_CODE`, `H_ERROR`, `H_COMPONENT`, `H_ATTEMPT`, ...), then acks it;
2. the `DeadLetterRecorder` drains every dead-letter queue into the ``dead_letters`` table (one
   row per parking, idempotent), marks the exchange ``dead_lettered`` and audits it, then acks;
3. an operator lists, inspects and replays them (``hub dlq list|show|replay``, the console):
   a replay puts the original bytes back on the original work queue through the outbox, with the
   attempt counter reset, so the message is delivered once more and, thanks to idempotency, its
   effect still happens at most once.

Until the recorder has run, a dead letter is visible as the depth of the broker's ``.dlq`` queue.
This is how NServiceBus' error queue and ServiceControl work: the broker keeps it safe, the
store makes it searchable.

The parked body is stored encrypted (`hub.store.privacy`, context ``message:<id>``) and the reason is
redacted (`hub.masking.redact`): a validation error may quote the value that failed.
`plain_body` gives the plain bytes back to whoever may see them (``hub dlq show --body``, replay).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.delivery import broker as b
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.delivery.broker import Broker, Delivery, Topology
from hub.envelope import Envelope
from hub.errors import HubError, UnknownRoute
from hub.masking import redact
from hub.store.privacy import privacy_of
from hub.store import Store
from hub.store.models import DeadLetterRow, ExchangeRow, OutboxRow, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetterView:
    """What `hub dlq list` and the console show (no payload: it may hold personal data)."""

    id: int
    message_id: str
    queue: str
    correlation_id: str | None
    error_code: str
    reason: str
    component: str
    attempts: int
    status: str
    replay_count: int
    dead_lettered_at: str

    @classmethod
    def of(cls, row: DeadLetterRow) -> "DeadLetterView":
        return cls(id=row.id, message_id=row.message_id, queue=row.queue,
                   correlation_id=row.correlation_id, error_code=row.error_code,
                   reason=row.reason, component=row.component, attempts=row.attempts,
                   status=row.status, replay_count=row.replay_count,
                   dead_lettered_at=row.dead_lettered_at)


def park_headers(error: HubError, *, component: str, queue: str, routing_key: str,
                 attempt: int) -> dict[str, object]:
    now = datetime.now(timezone.utc).isoformat()
    return {
        b.H_ERROR_CODE: error.code,
        b.H_ERROR: error.message[:1000],
        b.H_COMPONENT: component,
        b.H_ATTEMPT: attempt,
        b.H_ORIGINAL_QUEUE: queue,
        b.H_ORIGINAL_ROUTING_KEY: routing_key,
        b.H_DEAD_LETTERED_AT: now,
    }


def _insert_ignore(session: Session, values: dict) -> bool:
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = builder(DeadLetterRow).values(**values).on_conflict_do_nothing(
        index_elements=["message_id", "dead_lettered_at"]).returning(DeadLetterRow.id)
    return session.execute(statement).first() is not None  # see hub.idempotency: not rowcount


def record(session: Session, audit: AuditLog, *, body: bytes, message_id: str, queue: str,
           routing_key: str, headers: dict, actor: str = "hub:recorder",
           encrypted_with: str | None = None) -> bool:
    """Store one parked message; False when it was already recorded.

    ``body`` is the plain message, sealed here; ``encrypted_with`` names the key of a body that is
    already sealed (an outbox row that could not be opened is parked as it was)."""
    correlation_id = None
    envelope = None
    if encrypted_with is None:
        try:
            envelope = Envelope.from_bytes(body)
            correlation_id = envelope.correlation_id
        except HubError:
            pass  # a malformed message is parked too: keep its bytes as they came
    dead_lettered_at = str(headers.get(b.H_DEAD_LETTERED_AT) or utcnow().isoformat())
    message_id = message_id or (str(envelope.id) if envelope else "unknown")
    if encrypted_with is None:
        body, encrypted_with = privacy_of(session).encrypt_body(body, message_id=message_id)
    if b.H_ERROR in headers:
        headers = {**headers, b.H_ERROR: redact(str(headers[b.H_ERROR]), limit=1000)}
    inserted = _insert_ignore(session, dict(
        message_id=message_id,
        queue=str(headers.get(b.H_ORIGINAL_QUEUE) or queue.removesuffix(".dlq")),
        routing_key=str(headers.get(b.H_ORIGINAL_ROUTING_KEY) or routing_key),
        correlation_id=correlation_id,
        error_code=str(headers.get(b.H_ERROR_CODE) or "unknown"),
        reason=str(headers.get(b.H_ERROR) or "no reason recorded"),
        component=str(headers.get(b.H_COMPONENT) or "unknown"),
        attempts=int(headers.get(b.H_ATTEMPT) or 0),
        headers=headers, body=body, body_key=encrypted_with, dead_lettered_at=dead_lettered_at,
        recorded_at=utcnow(), status="parked", replay_count=0,
    ))
    if not inserted:
        return False
    if envelope is not None:
        exchange = session.get(ExchangeRow, str(envelope.id))
        if exchange is not None and exchange.status != "answered":
            exchange.status = "dead_lettered"
            exchange.error_code = str(headers.get(b.H_ERROR_CODE) or "unknown")
            exchange.error = str(headers.get(b.H_ERROR) or "")[:2000]  # redacted above
    audit.append(session, AuditRecord(
        action="dead_lettered", actor=actor, component="recorder",
        outcome=str(headers.get(b.H_ERROR_CODE) or "unknown"), message_id=message_id,
        correlation_id=correlation_id, digest=envelope.digest() if envelope else None,
        details={"queue": queue, "component": headers.get(b.H_COMPONENT),
                 "attempts": headers.get(b.H_ATTEMPT)}))
    return True


class DeadLetterRecorder:
    """Drains every dead-letter queue of the topology into the store."""

    component = "recorder"

    def __init__(self, store: Store, broker_factory: Callable[[], Broker], audit: AuditLog,
                 topology: Topology, *, poll_interval: float = 1.0) -> None:
        self.store = store
        self.broker_factory = broker_factory
        self.audit = audit
        self.queues = [spec.dead_letter_queue for spec in topology.queues]
        self.poll_interval = poll_interval
        self._broker: Broker | None = None

    def _record(self, delivery: Delivery) -> None:
        message = delivery.message
        with self.store.transaction() as session:
            record(session, self.audit, body=message.body, message_id=message.message_id,
                   queue=delivery.queue, routing_key=message.routing_key,
                   headers=dict(message.headers))
        delivery.ack()

    def drain(self) -> int:
        """Record everything parked right now; returns how many messages were taken."""
        if self._broker is None:
            self._broker = self.broker_factory()
        taken = 0
        for queue in self.queues:
            while True:
                delivery = self._broker.get(queue)
                if delivery is None:
                    break
                try:
                    self._record(delivery)
                    taken += 1
                finally:
                    if not delivery.settled:
                        delivery.release()
        return taken

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.drain()
            except HubError as exc:
                log.warning("dead-letter recorder pass failed, will retry: %s", exc.message)
                if self._broker is not None:
                    self._broker.close()
                    self._broker = None
            stop.wait(self.poll_interval)
        if self._broker is not None:
            self._broker.close()
            self._broker = None


def list_dead_letters(store: Store, *, status: str | None = "parked", queue: str | None = None,
                      error_code: str | None = None, correlation_id: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[DeadLetterView]:
    query = select(DeadLetterRow).order_by(DeadLetterRow.id)
    if status:
        query = query.where(DeadLetterRow.status == status)
    if queue:
        query = query.where(DeadLetterRow.queue == queue)
    if error_code:
        query = query.where(DeadLetterRow.error_code == error_code)
    if correlation_id:
        query = query.where(DeadLetterRow.correlation_id == correlation_id)
    with store.session() as session:
        return [DeadLetterView.of(r) for r in session.scalars(query.limit(limit).offset(offset))]


def plain_body(store: Store, row: DeadLetterRow) -> bytes:
    """The parked message's plain bytes (personal data: audit who reads them)."""
    if row.body_key is None:
        return bytes(row.body)
    if store.privacy is None:
        raise UnknownRoute("this process has no data keys to open parked messages")
    return store.privacy.decrypt_body(row.body, row.body_key, message_id=row.message_id)


def get_dead_letter(store: Store, dead_letter_id: int) -> DeadLetterRow:
    with store.session() as session:
        row = session.get(DeadLetterRow, dead_letter_id)
        if row is None:
            raise UnknownRoute(f"no dead letter {dead_letter_id}")
        session.expunge(row)
        return row


def replay(store: Store, audit: AuditLog, ids: Iterable[int], *, actor: str,
           progress: Callable[[int], None] | None = None) -> list[int]:
    """Send parked messages back to their work queue (through the outbox); returns replayed ids.

    The body goes back as it was parked (same envelope id, so the agency and our consumers can
    deduplicate) with its attempt counter reset. Only ``parked`` dead letters are replayed: a
    second replay of the same parking is refused, so a double click cannot double-send.
    """
    replayed: list[int] = []
    for dead_letter_id in ids:
        with store.transaction() as session:
            row = session.get(DeadLetterRow, dead_letter_id, with_for_update=True)
            if row is None or row.status != "parked":
                continue
            envelope = None
            body = plain_body(store, row)
            try:
                envelope = Envelope.from_bytes(body).with_attempt(0)
                body = envelope.to_bytes()  # the seal does not cover the attempt counter
                exchange = session.get(ExchangeRow, str(envelope.id))
                if exchange is not None and exchange.status == "dead_lettered":
                    exchange.status = "queued"
            except HubError:
                pass  # replayed as it came: the consumer parks it again, audited
            sealed, key_id = privacy_of(session).encrypt_body(body, message_id=row.message_id)
            session.add(OutboxRow(message_id=row.message_id, routing_key=row.routing_key,
                                  queue=row.queue, headers={b.H_REPLAYED_FROM: row.id},
                                  body=sealed, body_key=key_id))
            row.status = "replayed"
            row.replay_count += 1
            row.replayed_at = utcnow()
            audit.append(session, AuditRecord(
                action="replayed", actor=actor, component="dlq", message_id=row.message_id,
                correlation_id=row.correlation_id,
                digest=envelope.digest() if envelope else None,
                details={"dead_letter": row.id, "queue": row.queue}))
        replayed.append(dead_letter_id)
        if progress is not None:
            progress(len(replayed))
    return replayed


def discard(store: Store, audit: AuditLog, dead_letter_id: int, *, actor: str, reason: str) -> bool:
    """Mark a dead letter as deliberately not replayed (kept for evidence)."""
    with store.transaction() as session:
        row = session.get(DeadLetterRow, dead_letter_id, with_for_update=True)
        if row is None or row.status != "parked":
            return False
        row.status = "discarded"
        audit.append(session, AuditRecord(
            action="discarded", actor=actor, component="dlq", message_id=row.message_id,
            correlation_id=row.correlation_id, details={"dead_letter": row.id, "reason": reason}))
        return True
