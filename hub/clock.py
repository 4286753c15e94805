"""Time in the hub: every instant is UTC, aware.

    utcnow()                  # what the hub writes
    aware(row.created_at)     # what it reads back: SQLite hands naive datetimes back
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime (a naive one is UTC: the hub writes nothing else)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment
