"""A database URL that lists a primary and its standby (libpq's multi-host form, as SQLAlchemy
writes it): the store and the outbox relay's LISTEN both reach the server that takes writes.

The "standby" here is a port where nothing listens, tried first: libpq moves on to the next host
as it does past a standby that refuses writes (`target_session_attrs=read-write`). A real
primary killed and a standby promoted is `tests/ops/test_chaos_cluster.py`.
"""
from __future__ import annotations

import threading
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from hub.addresses import agency_routing_key
from hub.chaos.nodes import free_port
from hub.envelope import Envelope, SchemaRef
from hub.delivery.relay import NOTIFY_CHANNEL
from hub.store.outbox import enqueue
from hub.store import Store, normalize_url
from hub.testing.plugin import wait_for

#: Far longer than the test waits: a row published in time was published because of a wake-up.
POLL_NEVER = "600"


def multihost(url: str) -> str:
    """``url`` with a dead host first, in SQLAlchemy's form of libpq's multi-host URL."""
    parts = urlsplit(normalize_url(url))
    return (f"{parts.scheme}://{parts.username or 'postgres'}@{parts.path}"
            f"?host=127.0.0.1:{free_port()}&host={parts.hostname}:{parts.port or 5432}"
            "&target_session_attrs=read-write")


def _request() -> Envelope:
    return Envelope.new(correlation_id="DLA-2026-ABCDEF2", service="driving_licence_authentication",
                        kind="request", sender="ES-MAD", recipient="narsa",
                        schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                        payload={"licence": {"number": "12/3456781"}})


@pytest.mark.postgres
def test_the_store_connects_through_a_multihost_url(postgres_url: str) -> None:
    store = Store.from_url(multihost(postgres_url))
    try:
        store.create_all()
        with store.transaction() as session:
            assert session.execute(text("SELECT NOT pg_is_in_recovery()")).scalar() is True
    finally:
        store.dispose()


@pytest.mark.postgres
def test_the_relay_listens_through_a_multihost_url(hub_factory: Callable[..., Any],
                                                   postgres_url: str, tmp_path: Any) -> None:
    url = multihost(postgres_url)
    hub = hub_factory(database_url=url, broker_url=f"sqlite:///{tmp_path / 'q.db'}",
                      env={"HUB_RELAY_POLL_INTERVAL": POLL_NEVER})
    hub.setup()
    stop = threading.Event()
    relay = threading.Thread(target=hub.relay.run, args=(stop,), daemon=True)
    relay.start()
    writer = Store.from_url(url)  # another process's writer, through the same list of hosts
    writer.privacy = hub.store.privacy
    try:
        def listening() -> bool:
            with writer.engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE query = :q"
                                         " AND datname = current_database()"),
                                    {"q": f"LISTEN {NOTIFY_CHANNEL}"}).scalar() == 1

        wait_for(listening, timeout=10, what="the relay listening")
        with writer.transaction() as session:
            enqueue(session, hub.seal.seal(_request()), agency_routing_key("narsa"))
        wait_for(lambda: hub.relay.published == 1, timeout=10,
                 what="the row published on the notification")
    finally:
        stop.set()
        relay.join(10)
        writer.dispose()
