"""Idempotent consumers: a message id is applied once per consumer, however often it arrives.

`mark_processed` inserts (consumer, message id) in the caller's transaction with ON CONFLICT DO
NOTHING. It returns False for a duplicate; the caller then skips the effect, and because the mark
commits with the effect, a crash can never leave one without the other.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.store.models import ProcessedMessage, utcnow


@lru_cache(maxsize=4)
def _mark_statement(dialect: str) -> Any:
    # Built once with bound parameters: a statement built per message with literal values cost
    # its construction and cache-key traversal every time (both consumers, every message).
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    return builder(ProcessedMessage).values(
        consumer=bindparam("consumer"), message_id=bindparam("message_id"),
        processed_at=bindparam("processed_at"),
    ).on_conflict_do_nothing(index_elements=["consumer", "message_id"]).returning(
        ProcessedMessage.message_id)


_WAS_PROCESSED = select(ProcessedMessage.message_id).where(
    ProcessedMessage.consumer == bindparam("consumer"),
    ProcessedMessage.message_id == bindparam("message_id"))


def mark_processed(session: Session, consumer: str, message_id: str) -> bool:
    statement = _mark_statement(session.get_bind().dialect.name)
    # RETURNING, not rowcount: through the ORM session psycopg reports rowcount -1, which would
    # make every message look like a duplicate and silently skip its effect.
    return session.execute(statement, {"consumer": consumer, "message_id": message_id,
                                       "processed_at": utcnow()}).first() is not None


def was_processed(session: Session, consumer: str, message_id: str) -> bool:
    return session.scalar(_WAS_PROCESSED, {"consumer": consumer,
                                           "message_id": message_id}) is not None


def mark_processed_many(session: Session, consumer: str, message_ids: list[str]) -> set[str]:
    """Mark several message ids at once (one statement); returns those marked now, i.e. not
    already processed by ``consumer``."""
    if not message_ids:
        return set()
    builder = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    statement = builder(ProcessedMessage).values(
        [{"consumer": consumer, "message_id": message_id, "processed_at": now}
         for message_id in message_ids]
    ).on_conflict_do_nothing(index_elements=["consumer", "message_id"]).returning(
        ProcessedMessage.message_id)
    return set(session.scalars(statement))


def already_processed(session: Session, consumer: str, message_ids: list[str]) -> set[str]:
    """Which of ``message_ids`` ``consumer`` has already applied (one query)."""
    if not message_ids:
        return set()
    return set(session.scalars(select(ProcessedMessage.message_id).where(
        ProcessedMessage.consumer == consumer, ProcessedMessage.message_id.in_(message_ids))))
