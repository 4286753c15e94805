"""The database behind replay protection: signed message ids seen per party, shared by every
process, and their purge.

`security.replay.ReplayGuard` refuses a stale message on its timestamp and a repeated one on its
id; the id store must be atomic across processes, so it is a table with a unique
``(party, message_id)`` key, written with ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the
``RETURNING`` row says whether this call inserted it: never rely on ``rowcount``, which psycopg
reports as -1 through the ORM).

Two stores, one protocol (`security.replay.SeenIds`):

- `SessionSeenIds(session)` records the id in the caller's transaction, so the mark commits with
  the effect of the message (an inbound callback whose processing fails and is retried by the
  agency is not refused as a replay of itself). Use it wherever a transaction is open.
- `StoreSeenIds(store)` commits each id in its own transaction (a connector verifying an answer
  outside any unit of work);
- `DeferredSeenIds` keeps the ids a thread verifies, for the caller to write them with the
  message's effect (`add_all_if_new`): the connector worker verifies a batch of answers before
  it opens the one transaction that applies them all, and writes their ids there, in one
  statement, instead of one transaction per answer.

    guard = ReplayGuard(SessionSeenIds(session), window_seconds=settings.replay_window)
    purge_seen(store, older_than=guard.retention)          # the scheduled job
"""
from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.errors import ConfigurationError, MalformedEnvelope, ReplayDetected
from hub.store import Store
from hub.store.models import SeenMessage, utcnow
from security.replay import MAX_ID_LENGTH


def _check_id(party: str, message_id: str) -> None:
    if not party or len(party) > 64 or not message_id or len(message_id) > MAX_ID_LENGTH:
        raise MalformedEnvelope(f"message id must be 1..{MAX_ID_LENGTH} characters from a named "
                                "party")


def add_if_new(session: Session, party: str, message_id: str) -> bool:
    """Record ``(party, message_id)`` in ``session``; False when it was already there."""
    _check_id(party, message_id)
    builder = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = builder(SeenMessage).values(
        party=party, message_id=message_id, seen_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["party", "message_id"]).returning(
        SeenMessage.message_id)
    return session.execute(statement).first() is not None


class SessionSeenIds:
    """`SeenIds` in the caller's unit of work (the mark commits with the message's effect)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_if_new(self, party: str, message_id: str) -> bool:
        return add_if_new(self.session, party, message_id)


class StoreSeenIds:
    """`SeenIds` committing every id at once, in its own transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add_if_new(self, party: str, message_id: str) -> bool:
        with self.store.transaction() as session:
            return add_if_new(session, party, message_id)


def add_all_if_new(session: Session, marks: list[tuple[str, str]]) -> None:
    """Record every ``(party, message_id)`` of ``marks`` in ``session`` (one statement); raise
    `ReplayDetected` if one was already there, or appears twice."""
    if not marks:
        return
    if len(set(marks)) != len(marks):
        party, message_id = next(m for m in marks if marks.count(m) > 1)
        raise ReplayDetected(f"message {message_id} from {party} was received twice",
                             reason="seen", party=party, message_id=message_id)
    builder = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    statement = builder(SeenMessage).values(
        [{"party": party, "message_id": message_id, "seen_at": now} for party, message_id in marks]
    ).on_conflict_do_nothing(index_elements=["party", "message_id"]).returning(
        SeenMessage.party, SeenMessage.message_id)
    new = {(row.party, row.message_id) for row in session.execute(statement)}
    for party, message_id in marks:
        if (party, message_id) not in new:
            raise ReplayDetected(f"message {message_id} from {party} was already received",
                                 reason="seen", party=party, message_id=message_id)


class DeferredSeenIds:
    """`SeenIds` that keep what this thread verifies, for a later transaction to write::

        with deferred.collecting() as marks:
            reply = connector.send(envelope)      # verifies the answer's signature and freshness
        ...
        add_all_if_new(session, marks)            # with the answer's effect; ReplayDetected

    An id already recorded is refused at once (a read, no write), so that a replayed answer is
    a replay before it is anything else; the write that decides, between two deliveries racing,
    is the caller's.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local = threading.local()

    @contextlib.contextmanager
    def collecting(self) -> Iterator[list[tuple[str, str]]]:
        marks: list[tuple[str, str]] = []
        self._local.marks = marks
        try:
            yield marks
        finally:
            self._local.marks = None

    def add_if_new(self, party: str, message_id: str) -> bool:
        marks = getattr(self._local, "marks", None)
        if marks is None:
            raise ConfigurationError("a deferred seen id was checked outside collecting()")
        _check_id(party, message_id)
        if self.store.scalar(select(SeenMessage.message_id).where(
                SeenMessage.party == party, SeenMessage.message_id == message_id)):
            return False
        marks.append((party, message_id))
        return True  # confirmed by add_all_if_new, in the transaction of the effect


def purge_seen(store: Store, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget ids seen before ``now - older_than`` (`ReplayGuard.retention`); returns how many."""
    cutoff = (now or utcnow()) - older_than
    with store.transaction() as session:
        result = session.execute(delete(SeenMessage).where(SeenMessage.seen_at < cutoff)
                                 .returning(SeenMessage.message_id))
        return len(result.all())
