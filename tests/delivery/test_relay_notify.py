"""On PostgreSQL a relay in another process is woken by the commit, not by its next poll."""
from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
from sqlalchemy import text

from hub.addresses import agency_routing_key
from hub.envelope import Envelope, SchemaRef
from hub.delivery.relay import NOTIFY_CHANNEL
from hub.store.outbox import enqueue
from hub.store import Store
from hub.testing.plugin import wait_for

#: Far longer than the test waits: a row published in time was published because of a wake-up.
POLL_NEVER = "600"


def _request() -> Envelope:
    return Envelope.new(correlation_id="DLA-2026-ABCDEF1", service="driving_licence_authentication",
                        kind="request", sender="ES-MAD", recipient="narsa",
                        schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                        payload={"licence": {"number": "12/3456781"}})


@pytest.mark.postgres
def test_a_commit_elsewhere_wakes_the_relay(hub_factory: Callable[..., Any], postgres_url: str,
                                            tmp_path: Any) -> None:
    hub = hub_factory(database_url=postgres_url, broker_url=f"sqlite:///{tmp_path / 'q.db'}",
                      env={"HUB_RELAY_POLL_INTERVAL": POLL_NEVER})
    hub.setup()
    stop = threading.Event()
    relay = threading.Thread(target=hub.relay.run, args=(stop,), daemon=True)
    relay.start()
    # Another process's writer: its own engine, nothing shared with the relay but the database.
    writer = Store.from_url(postgres_url)
    writer.privacy = hub.store.privacy  # another process of the same hub has the same data keys
    try:
        # The relay's first pass and its LISTEN happen at start; let them settle first.
        def listening() -> bool:
            with writer.engine.connect() as conn:  # a new snapshot of the activity view
                return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE query = :q"),
                                    {"q": f"LISTEN {NOTIFY_CHANNEL}"}).scalar() == 1

        wait_for(listening, timeout=10, what="the relay listening")
        queue = hub.topology.agency_queue("narsa")
        with writer.transaction() as session:
            enqueue(session, hub.seal.seal(_request()), agency_routing_key("narsa"))
        with hub.open_broker() as broker:
            wait_for(lambda: broker.depth(queue) == 1, timeout=10, what="the row published")
        wait_for(lambda: hub.relay.published == 1, timeout=10, what="the row marked sent")
    finally:
        stop.set()
        relay.join(10)
        writer.dispose()


def test_sqlite_has_no_trigger_and_still_publishes(hub_factory: Callable[..., Any]) -> None:
    hub = hub_factory(env={"HUB_RELAY_POLL_INTERVAL": "0.05"})
    hub.setup()
    with hub.store.transaction() as session:
        enqueue(session, hub.seal.seal(_request()), agency_routing_key("narsa"))
    assert hub.relay.run_once() == 1
