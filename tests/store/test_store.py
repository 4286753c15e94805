"""The store on SQLite and PostgreSQL: migrations, idempotency marks, the outbox relay."""
from __future__ import annotations

import threading
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select

from hub.delivery.broker import Topology, open_broker
from hub.delivery.broker.topology import QueueSpec
from hub.cli import main
from hub.delivery.idempotency import mark_processed, was_processed
from hub.delivery.relay import OutboxRelay
from hub.evidence.audit.log import AuditLog
from hub.store import Store
from hub.store.migrate import current
from hub.store.models import OutboxRow

TABLES = {"cases", "case_events", "exchanges", "outbox", "processed_messages", "audit_records",
          "dead_letters"}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'hub.db'}"


def test_migrations_create_every_table_and_are_idempotent(database_url):
    store = Store.from_url(database_url)
    store.upgrade()
    store.upgrade()
    assert TABLES <= set(inspect(store.engine).get_table_names())
    assert current(store.engine) is not None
    store.dispose()


def test_cli_db_upgrade(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "(was empty)" in result.output
    assert CliRunner().invoke(main, ["db", "current"]).output.strip() != "empty"


def test_processed_mark_is_once_per_consumer(database_url):
    store = Store.from_url(database_url)
    store.upgrade()
    with store.transaction() as session:
        assert mark_processed(session, "cases", "m-1") is True
        assert mark_processed(session, "cases", "m-1") is False
        assert mark_processed(session, "connector.narsa", "m-1") is True
    with store.session() as session:
        assert was_processed(session, "cases", "m-1")
        assert not was_processed(session, "cases", "m-2")
    store.dispose()


def test_a_failed_unit_of_work_leaves_nothing(database_url):
    store = Store.from_url(database_url)
    store.upgrade()
    with pytest.raises(RuntimeError):
        with store.transaction() as session:
            session.add(OutboxRow(message_id="m", routing_key="k", headers={}, body=b"{}"))
            mark_processed(session, "cases", "m")
            raise RuntimeError("crash before commit")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 0
        assert not was_processed(session, "cases", "m")
    store.dispose()


def test_two_relays_on_postgres_publish_every_row_exactly_once(postgres_url, rabbitmq_url,
                                                                namespace):
    store = Store.from_url(postgres_url)
    store.upgrade()
    topology = Topology(namespace, (QueueSpec(f"{namespace}.work", ("work.#",), (1.0,)),))
    with open_broker(rabbitmq_url, topology) as broker:
        broker.declare()
    with store.transaction() as session:
        session.add_all(OutboxRow(message_id=str(uuid.uuid4()), routing_key="work.x",
                                  headers={}, body=b'{"n":%d}' % n) for n in range(300))
    relays = [OutboxRelay(store, lambda: open_broker(rabbitmq_url, topology), AuditLog(),
                          batch=25) for _ in range(2)]

    def drain(relay: OutboxRelay) -> None:
        while relay.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert sum(r.published for r in relays) == 300
        with open_broker(rabbitmq_url, topology) as broker:
            seen = set()
            while (delivery := broker.get(f"{namespace}.work")) is not None:
                seen.add(delivery.message.message_id)
                delivery.ack()
        assert len(seen) == 300
        with store.session() as session:
            assert session.scalar(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.sent_at.is_(None))) == 0
    finally:
        with open_broker(rabbitmq_url, topology) as broker:
            broker.delete_topology()
        store.dispose()


def test_migrations_and_models_agree(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hub.cases.scheduler import JOB_TABLE
    from hub.store.models import Base

    def ours(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        # APScheduler owns its job table (created by our migration, described by its own code).
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", None) != JOB_TABLE

    store = Store.from_url(f"sqlite:///{tmp_path / 'hub.db'}")
    store.upgrade()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": ours})
        differences = compare_metadata(context, Base.metadata)
    store.dispose()
    assert differences == []


def test_a_read_only_unit_of_work_on_sqlite_does_not_queue_behind_a_writer(tmp_path):
    # Writers begin IMMEDIATE and hold the write lock until they commit; a read-only unit of
    # work begins DEFERRED and reads the last committed state meanwhile (WAL).
    store = Store.from_url(f"sqlite:///{tmp_path / 'hub.db'}")
    store.upgrade()
    with store.transaction() as session:
        mark_processed(session, "cases", "m-1")
    writing, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.transaction() as session:
            mark_processed(session, "cases", "m-2")
            writing.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        seen: list[tuple[bool, bool]] = []

        def reader() -> None:
            with store.transaction(read_only=True) as session:
                seen.append((was_processed(session, "cases", "m-1"),
                             was_processed(session, "cases", "m-2")))

        read = threading.Thread(target=reader)
        read.start()
        read.join(10)
        # Done while the writer still holds the lock: committed m-1, not the uncommitted m-2.
        assert seen == [(True, False)] and not release.is_set()
    finally:
        release.set()
        thread.join(10)
    with store.transaction(read_only=True) as session:
        assert was_processed(session, "cases", "m-2")
    store.dispose()


def test_an_idle_postgres_connection_the_server_dropped_is_replaced_before_use(postgres_url,
                                                                              monkeypatch):
    import hub.store as store_module
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    store = Store.from_url(postgres_url, pool_size=1, max_overflow=0)
    pings: list[int] = []
    real_ping = store.engine.dialect.do_ping
    monkeypatch.setattr(store.engine.dialect, "do_ping",
                        lambda conn: (pings.append(1), real_ping(conn))[1])
    with store.transaction() as session:
        backend = session.scalar(text("SELECT pg_backend_pid()"))
    with store.transaction() as session:  # returned a moment ago: used without a ping
        assert session.scalar(text("SELECT pg_backend_pid()")) == backend
    assert pings == []
    admin = create_engine(normalize_url(postgres_url))
    with admin.begin() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    admin.dispose()
    monkeypatch.setattr(store_module, "IDLE_PING_SECONDS", 0.0)  # the connection is "idle" now
    with store.transaction() as session:  # the ping finds it dead; a new connection serves
        assert session.scalar(text("SELECT pg_backend_pid()")) != backend
    assert pings
    store.dispose()
