"""Transactional outbox: a case change and the messages it causes commit together.

Writers call `enqueue` inside their unit of work; nothing touches the broker there. The
`OutboxRelay` publishes committed rows with publisher confirms, in id order, and marks them sent.
A crash between publish and mark publishes the row again on restart: consumers are idempotent on
the message id, so the effect stays single.

Several relays may run against PostgreSQL: each claims a batch with ``FOR UPDATE SKIP LOCKED``.
On SQLite the claim serializes on the database lock, which is what one machine needs.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.broker import Broker, Message
from hub.envelope import Envelope
from hub.errors import HubError
from hub.seal import Seal
from hub.store import Store
from hub.store.models import OutboxRow, utcnow

log = logging.getLogger(__name__)


def enqueue(session: Session, seal: Seal, envelope: Envelope, routing_key: str, *,
            queue: str | None = None, headers: dict | None = None) -> OutboxRow:
    """Add a sealed envelope to the outbox in the caller's transaction."""
    sealed = envelope if envelope.signature else seal.seal(envelope)
    row = OutboxRow(message_id=str(envelope.id), routing_key=routing_key, queue=queue,
                    headers=dict(headers or {}), body=sealed.to_bytes())
    session.add(row)
    return row


class OutboxRelay:
    """Publishes committed outbox rows. `run` loops until stopped; `run_once` does one batch."""

    component = "relay"

    def __init__(self, store: Store, broker_factory: Callable[[], Broker], *, batch: int = 200,
                 poll_interval: float = 0.2) -> None:
        self.store = store
        self.broker_factory = broker_factory
        self.batch = batch
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._broker: Broker | None = None
        self.published = 0

    def wake(self) -> None:
        """Ask for a pass now (an in-process writer just committed rows)."""
        self._wake.set()

    def _claim(self, session: Session) -> list[OutboxRow]:
        query = (select(OutboxRow).where(OutboxRow.sent_at.is_(None))
                 .order_by(OutboxRow.id).limit(self.batch))
        if self.store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def run_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        if self._broker is None:
            self._broker = self.broker_factory()
        sent: list[int] = []
        with self.store.transaction() as session:
            rows = self._claim(session)
            try:
                for row in rows:
                    message = Message(body=row.body, message_id=row.message_id,
                                      routing_key=row.routing_key, headers=dict(row.headers or {}))
                    if row.queue:
                        self._broker.send_to_queue(row.queue, message)
                    else:
                        self._broker.publish(message)
                    sent.append(row.id)
            finally:
                # Mark what the broker confirmed, even when a later publish of the batch failed.
                if sent:
                    session.execute(update(OutboxRow).where(OutboxRow.id.in_(sent))
                                    .values(sent_at=utcnow()))
        self.published += len(sent)
        return len(sent)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
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
                self._wake.clear()
        if self._broker is not None:
            self._broker.close()
            self._broker = None
