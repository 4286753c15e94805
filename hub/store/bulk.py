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

from sqlalchemy import event, inspect, insert
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import ConfigurationError
from hub.store.encrypted import PENDING, encrypted_attributes

_PENDING = "hub.store.bulk"


def append_row(session: Session, model: Any, values: dict[str, Any]) -> None:
    """Queue one row of ``model``'s table for the commit of ``session``'s transaction."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
    pending.setdefault(model.__table__, []).append(values)


def append_object(session: Session, row: Any) -> None:
    """Queue a new ORM object (not added to the session) to be inserted with the appended rows;
    its values are read when they are written, so changes made to it until then count. Its
    `Encrypted` values are encrypted then, with the session's store keys."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
    pending.setdefault(row.__table__, []).append(row)


def values_of(row: Any, session: Session) -> dict[str, Any]:
    """The column values of a new ORM object, its `Encrypted` attributes encrypted with the
    keys of the store of ``session`` (where it is written)."""
    mapper = inspect(type(row))
    values = {attr.columns[0].key: row.__dict__[attr.key]
              for attr in mapper.column_attrs if attr.key in row.__dict__}
    encrypted = encrypted_attributes(type(row))
    assigned = row.__dict__.get(PENDING) or set()
    for name in sorted(assigned):
        descriptor = encrypted[name]
        stored, key_id = _cipher(session).encrypt_json(descriptor.plain_pending(row),
                                                       context=descriptor.context(row))
        descriptor.record_stored(row, stored, key_id)
        values[mapper.attrs[descriptor.column].columns[0].key] = stored
        values[mapper.attrs[descriptor.key_column].columns[0].key] = key_id
    assigned.clear()
    return values


def insert_now(session: Session, row: Any) -> None:
    """Insert a new ORM object with one Core statement, now (not through the unit of work)."""
    session.connection().execute(insert(row.__table__), [values_of(row, session)])


def write_pending(session: Session) -> None:
    """Write the queued rows now (the commit does it; a caller that must see them earlier in
    the same transaction may call it)."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()
    connection = session.connection()
    for table, rows in pending.items():
        values = [row if isinstance(row, dict) else values_of(row, session) for row in rows]
        # Rows with the same columns go in one statement; SQLAlchemy groups them into
        # multi-row VALUES ("insertmanyvalues") on PostgreSQL and SQLite alike.
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for value in values:
            groups.setdefault(frozenset(value), []).append(value)
        for group in groups.values():
            connection.execute(insert(table), group)


def _cipher(session: Session) -> Any:
    privacy = getattr(session.info.get("store"), "privacy", None)
    if privacy is None:
        raise ConfigurationError("this store has no data keys, so it cannot write personal data")
    return privacy


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
