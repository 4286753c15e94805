"""The store: SQLAlchemy 2 over SQLite (default) or PostgreSQL (production).

    store = Store.from_url("postgresql+psycopg://127.0.0.1/hub")
    store.upgrade()                       # Alembic migrations to head
    with store.transaction() as session:  # one atomic unit of work
        session.add(row)

Every database error is converted to `StoreUnavailable` (transient: connection lost, locked,
serialization failure) at this boundary, so consumers retry rather than crash.

SQLite: WAL journal, foreign keys on, and every transaction begins ``IMMEDIATE`` so two writers
queue on the lock instead of deadlocking when they upgrade a read lock.
"""
from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import ConfigurationError, HubError, StoreUnavailable
from hub.store.models import Base
from hub.store.bulk import attach as attach_bulk_rows
from hub.store.privacy import attach as attach_privacy


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Store:
    def __init__(self, engine: Engine, *, privacy: Any = None) -> None:
        self.engine = engine
        #: The data keys personal data is sealed with (`hub.store.privacy.Privacy`); the hub sets it.
        #: Without it the store refuses to read or write personal data.
        self.privacy = privacy
        # Sessions know their store, so the flush hook of `hub.store.privacy` finds the keys;
        # the hooks are attached to this store's sessions only.
        self._sessions = sessionmaker(engine, expire_on_commit=False, info={"store": self})
        attach_privacy(self._sessions)
        attach_bulk_rows(self._sessions)
        self._after_commit: list[Any] = []
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> "Store":
        url = normalize_url(url)
        if url.startswith("sqlite"):
            path = url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                   **engine_options)
            _configure_sqlite(engine)
        elif url.startswith("postgresql"):
            engine_options.setdefault("pool_size", 10)
            engine_options.setdefault("max_overflow", 10)
            engine = create_engine(url, **engine_options)
            if not engine_options.get("pool_pre_ping"):
                _ping_idle_connections(engine)
        else:
            raise ConfigurationError(f"unsupported database URL {url.split(':', 1)[0]!r}:"
                                     " use sqlite:/// or postgresql://")
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error.

        ``read_only``: the unit of work only reads. On SQLite it then begins ``DEFERRED``
        instead of ``IMMEDIATE``, so it does not queue for the write lock behind every writer's
        commit (a WAL reader never blocks and is never blocked); a read-only unit of work never
        upgrades to a write, so the deadlock ``IMMEDIATE`` prevents cannot happen.
        """
        session = self._sessions()
        try:
            with session.begin():
                if read_only and self.dialect == "sqlite":
                    session.connection(execution_options={_DEFERRED: True})
                yield session
        except HubError:
            raise
        except DBAPIError as exc:
            # Integrity errors and the like are the caller's business (idempotency relies on
            # them); lost connections, locks and serialization failures are worth a retry.
            if isinstance(exc, OperationalError) or exc.connection_invalidated or _is_transient(exc):
                raise StoreUnavailable(f"database unavailable: {exc.orig!r}") from None
            raise
        finally:
            session.close()

    def scalar(self, statement: Any) -> Any:
        """The first value of a read-only statement, on a pooled connection of its own: for a
        single lookup, without a session and its unit of work."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(statement).scalar()
        except DBAPIError as exc:
            raise StoreUnavailable(f"database unavailable: {exc.orig!r}") from None

    def session(self) -> Session:
        """A session for reads outside a unit of work; close it (use ``with``)."""
        return self._sessions()

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        from hub.store.migrate import upgrade

        upgrade(self.engine, revision, privacy=self.privacy)

    def create_all(self) -> None:
        """Create tables straight from the models (throw-away test databases only)."""
        Base.metadata.create_all(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    # PostgreSQL serialization failure / deadlock / lock timeout: retry the unit of work.
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003",
                    "08006"}


#: Execution option of `Store.transaction(read_only=True)` on SQLite: begin DEFERRED.
_DEFERRED = "hub_sqlite_deferred"

#: A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 2.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle in the pool.

    A restarted or failed-over database leaves dead connections in the pool; ``pool_pre_ping``
    catches them by sending ``SELECT 1`` before *every* unit of work, a round trip per
    transaction that profiles showed on every message. Connections returned less than
    `IDLE_PING_SECONDS` ago were alive a moment ago, so only idle ones are pinged; a dead one is
    replaced before use (the pool retries the checkout). A connection that dies under load
    fails its statement instead, and the caller's unit of work is retried (`StoreUnavailable`)
    on a fresh connection, since SQLAlchemy invalidates the pool on a disconnect.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("checked_in_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure: this connection is unusable
            raise DisconnectionError(f"idle connection is gone: {exc!r}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE below is what really runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: a consumer acks the broker right after this commit returns, so the
        # commit must survive a power cut too or an acknowledged effect could vanish.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        deferred = conn.get_execution_options().get(_DEFERRED)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

