"""Transactional outbox: a case change and the messages it causes commit together.

Writers call `hub.store.outbox.enqueue` inside their unit of work; nothing touches the broker
there. The `OutboxRelay` publishes committed rows with publisher confirms, in id order, and marks them sent.
A crash between publish and mark publishes the row again on restart: consumers are idempotent on
the message id, so the effect stays single.

Several relays may run against PostgreSQL: each claims a batch with ``FOR UPDATE SKIP LOCKED``.
On SQLite the claim serializes on the database lock, which is what one machine needs.

Wake-ups: a writer in the relay's own process calls `OutboxRelay.wake`; on PostgreSQL every
commit that adds outbox rows also notifies channel ``hub_outbox`` (a trigger, migration 0002),
which the relay listens to, so a relay in another process starts at once instead of at its next
poll. Polling stays as the fallback: a lost notification only delays a row, never loses it.

Bodies are stored encrypted (`hub.store.privacy`: envelopes carry personal data): `enqueue`
encrypts the body under the data keys with the message id as context, the relay decrypts it to
publish.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import psycopg
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.delivery.broker import Broker, Message
from hub.delivery.deadletters import park_headers, record
from hub.errors import HubError, PermanentError
from hub.evidence.audit.log import AuditLog
from hub.store import Store
from hub.store.models import OutboxRow, utcnow

log = logging.getLogger(__name__)

#: PostgreSQL channel notified when outbox rows commit (see migration 0006_outbox_notify).
NOTIFY_CHANNEL = "hub_outbox"


class OutboxRelay:
    """Publishes committed outbox rows. `run` loops until stopped; `run_once` does one batch."""

    component = "relay"

    def __init__(self, store: Store, broker_factory: Callable[[], Broker], audit: AuditLog, *,
                 batch: int = 200, poll_interval: float = 0.2) -> None:
        self.store = store
        self.audit = audit
        self.broker_factory = broker_factory
        self.batch = batch
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._broker: Broker | None = None
        self.published = 0

    def wake(self) -> None:
        """Ask for a pass now (an in-process writer just committed rows)."""
        self._wake.set()

    def _listen(self, stop: threading.Event) -> None:
        """PostgreSQL: turn ``hub_outbox`` notifications into wake-ups until ``stop``."""

        # The engine's own connection arguments, as SQLAlchemy hands them to psycopg: a
        # multi-host URL (``?host=h1:p1&host=h2:p2&target_session_attrs=read-write``, a primary
        # and its standby) then reaches the server that takes writes, as the pool does, and after
        # a fail-over the next LISTEN goes to the promoted primary. (The URL rendered back to a
        # string is not libpq's syntax for several hosts: the listener never connected.)
        engine = self.store.engine
        _, params = engine.dialect.create_connect_args(engine.url)
        params = {k: v for k, v in params.items() if k != "context"}
        params.setdefault("connect_timeout", 5)
        while not stop.is_set():
            try:
                with psycopg.connect(autocommit=True, **params) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake.set()  # rows committed while we were not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error as exc:
                # The database went away: polling carries on meanwhile; listen again shortly.
                log.info("outbox relay: notifications unavailable (%s); polling", exc)
                stop.wait(1.0)

    def _claim(self, session: Session) -> list[Any]:
        """Unsent rows, oldest first, as plain rows of the outbox's columns: the relay only reads
        them (an ORM instance per message was a fifth of the relay's CPU)."""
        query = (select(*OutboxRow.__table__.c).where(OutboxRow.sent_at.is_(None))
                 .order_by(OutboxRow.id).limit(self.batch))
        if self.store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(session.execute(query).all())

    def run_once(self) -> int:
        """Publish one batch; returns how many rows were handed over (published or parked)."""
        if self._broker is None:
            self._broker = self.broker_factory()
        done: list[int] = []
        with self.store.transaction() as session:
            rows = self._claim(session)
            try:
                self._publish(session, rows, done)
            finally:
                # Mark what the broker confirmed, even when a later publish of the batch failed.
                if done:
                    session.execute(update(OutboxRow).where(OutboxRow.id.in_(done))
                                    .values(sent_at=utcnow()))
        self.published += len(done)
        return len(done)

    def _publish(self, session: Session, rows: list[Any], done: list[int]) -> None:
        assert self._broker is not None
        routed = [row for row in rows if not row.queue]
        try:
            # One durable hand-over for the batch (one commit on the embedded broker).
            self._broker.publish_many(self._message(row) for row in routed)
            done.extend(row.id for row in routed)
            routed = []
        except PermanentError:
            pass  # a poison row: isolate it below, row by row
        for row in routed + [row for row in rows if row.queue]:
            try:
                if row.queue:
                    self._broker.send_to_queue(row.queue, self._message(row))
                else:
                    self._broker.publish(self._message(row))
            except PermanentError as exc:
                # Nothing is bound for this message (a configuration error): park it in the
                # store with the reason instead of blocking every message behind it.
                self._park(session, row, exc)
            done.append(row.id)

    def _park(self, session: Session, row: Any, error: HubError) -> None:

        log.error("outbox row %s cannot be published: %s", row.id, error.message,
                  extra={"message_id": row.message_id, "error_code": error.code})
        headers = park_headers(error, component=self.component, queue=row.queue or "(outbox)",
                               routing_key=row.routing_key, attempt=1)
        try:
            body, body_key = self._body(row), None
        except HubError:
            body, body_key = row.body, row.body_key  # kept sealed as it was: evidence
        record(session, self.audit, body=body, message_id=row.message_id,
               queue=row.queue or "(outbox)", routing_key=row.routing_key,
               headers={**(row.headers or {}), **headers}, actor="hub:relay",
               encrypted_with=body_key)

    def run(self, stop: threading.Event) -> None:
        if self.store.dialect == "postgresql":
            threading.Thread(target=self._listen, args=(stop,), name="relay-listen",
                             daemon=True).start()
        while not stop.is_set():
            # Cleared before the pass, not after the wait: a wake-up arriving between the two
            # would otherwise be lost and its rows wait for the next poll.
            self._wake.clear()
            try:
                count = self.run_once()
            except HubError as exc:
                log.warning("outbox relay pass failed, will retry: %s", exc.message,
                            extra={"error_code": exc.code})
                if self._broker is not None:
                    self._broker.close()
                    self._broker = None
                stop.wait(min(1.0, self.poll_interval * 5))
                continue
            if count < self.batch:
                self._wake.wait(self.poll_interval)
        if self._broker is not None:
            self._broker.close()
            self._broker = None


    def _body(self, row: Any) -> bytes:
        if row.body_key is None:
            return row.body  # written in clear (before encryption at rest)
        if self.store.privacy is None:
            raise PermanentError("the relay has no data keys to open outbox bodies",
                                 code="config.keys")
        return self.store.privacy.decrypt_body(row.body, row.body_key, message_id=row.message_id)

    def _message(self, row: Any) -> Message:
        return Message(body=self._body(row), message_id=row.message_id,
                       routing_key=row.routing_key, headers=dict(row.headers or {}))
