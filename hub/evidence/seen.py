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
- `StoreSeenIds(store)` commits each id in its own transaction (connectors verifying an answer
  before the worker opens its unit of work).

    guard = ReplayGuard(SessionSeenIds(session), window_seconds=settings.replay_window)
    purge_seen(store, older_than=guard.retention)          # the scheduled job
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.errors import MalformedEnvelope
from hub.store import Store
from hub.store.models import SeenMessage, utcnow
from security.replay import MAX_ID_LENGTH


def add_if_new(session: Session, party: str, message_id: str) -> bool:
    """Record ``(party, message_id)`` in ``session``; False when it was already there."""
    if not party or len(party) > 64 or not message_id or len(message_id) > MAX_ID_LENGTH:
        raise MalformedEnvelope(f"message id must be 1..{MAX_ID_LENGTH} characters from a named "
                                "party")
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


def purge_seen(store: Store, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget ids seen before ``now - older_than`` (`ReplayGuard.retention`); returns how many."""
    cutoff = (now or utcnow()) - older_than
    with store.transaction() as session:
        result = session.execute(delete(SeenMessage).where(SeenMessage.seen_at < cutoff)
                                 .returning(SeenMessage.message_id))
        return len(result.all())
