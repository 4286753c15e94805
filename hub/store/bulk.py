"""Rows a unit of work only appends (audit records, operational records, case history), written
in one multi-row INSERT per table when it commits, instead of one ORM object each.

Nothing reads these rows back in the transaction that writes them, so building an ORM instance
per row, tracking it and flushing it one statement at a time bought nothing and cost most of a
consumer's CPU (profiles of the benchmark: the ORM unit of work was about half of the hub's
CPU). Rows are plain dicts of column values::

    append_row(session, AuditRow, {"at": now, "actor": "hub", ...})
    # ... at commit: INSERT INTO audit_records (...) VALUES (...), (...), ...

The hook is attached by `hub.store.Store` to its own session factory (`attach`); the rows are
written after the ORM's own pending changes (they may refer to a case inserted in the same
transaction), in the order they were appended, so ids follow that order. A transaction that
rolls back drops them with everything else.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session, sessionmaker

_PENDING = "hub.store.bulk"


def append_row(session: Session, model: Any, values: dict[str, Any]) -> None:
    """Queue one row of ``model``'s table for the commit of ``session``'s transaction."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
    pending.setdefault(model.__table__, []).append(values)


def write_pending(session: Session) -> None:
    """Write the queued rows now (the commit does it; a caller that must see them earlier in
    the same transaction may call it)."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()
    connection = session.connection()
    for table, rows in pending.items():
        # One statement for the batch; SQLAlchemy groups the rows into multi-row VALUES
        # ("insertmanyvalues") on PostgreSQL and SQLite alike.
        connection.execute(insert(table), rows)


def _discard(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


def attach(sessions: sessionmaker) -> None:
    """Write queued rows at the commit of every session ``sessions`` makes."""
    event.listen(sessions, "before_commit", write_pending)
    event.listen(sessions, "after_rollback", _discard)
    event.listen(sessions, "after_soft_rollback", _discard)


def checkpoint(session: Session) -> dict[Any, int]:
    """How many rows are queued per table now (see `rollback_to`)."""
    return {table: len(rows) for table, rows in session.info.get(_PENDING, {}).items()}


def rollback_to(session: Session, mark: dict[Any, int]) -> None:
    """Drop the rows queued since ``mark`` (a savepoint of the transaction rolled back)."""
    for table, rows in session.info.get(_PENDING, {}).items():
        del rows[mark.get(table, 0):]
