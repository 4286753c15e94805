"""Idempotent consumers: a message id is applied once per consumer, however often it arrives.

`mark_processed` inserts (consumer, message id) in the caller's transaction with ON CONFLICT DO
NOTHING. It returns False for a duplicate; the caller then skips the effect, and because the mark
commits with the effect, a crash can never leave one without the other.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.store.models import ProcessedMessage, utcnow


def mark_processed(session: Session, consumer: str, message_id: str) -> bool:
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = builder(ProcessedMessage).values(
        consumer=consumer, message_id=message_id, processed_at=utcnow()
    ).on_conflict_do_nothing(index_elements=["consumer", "message_id"]).returning(
        ProcessedMessage.message_id)
    # RETURNING, not rowcount: through the ORM session psycopg reports rowcount -1, which would
    # make every message look like a duplicate and silently skip its effect.
    return session.execute(statement).first() is not None


def was_processed(session: Session, consumer: str, message_id: str) -> bool:
    return session.scalar(select(ProcessedMessage.message_id).where(
        ProcessedMessage.consumer == consumer, ProcessedMessage.message_id == message_id)
    ) is not None
