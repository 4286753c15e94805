"""`mark_processed` on both stores: the first mark wins, every later one reports a duplicate.

Regression: on PostgreSQL the mark used the insert's rowcount, which psycopg reports as -1 for
ORM-enabled inserts, so every message looked already processed and no effect was ever applied.
"""
from __future__ import annotations

import pytest

from hub.delivery.idempotency import mark_processed, was_processed
from hub.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    url = (f"sqlite:///{tmp_path / 'hub.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    built = Store.from_url(url)
    built.upgrade()
    yield built
    built.dispose()


def test_first_mark_wins(store: Store) -> None:
    with store.transaction() as session:
        assert mark_processed(session, "inbound.health", "exchange-1")
        assert not mark_processed(session, "inbound.health", "exchange-1")
        assert mark_processed(session, "inbound.justice", "exchange-1")
    with store.transaction() as session:
        assert not mark_processed(session, "inbound.health", "exchange-1")
        assert was_processed(session, "inbound.health", "exchange-1")
        assert not was_processed(session, "inbound.health", "exchange-2")
