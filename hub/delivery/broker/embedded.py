"""Embedded broker: a durable queue in one SQLite file, for one machine and the quick start.

URL: ``sqlite:///path/to/broker.db`` (``sqlite:///:memory:`` is refused: it would not be durable).
Options: ``visibility_timeout`` (seconds a delivered, unsettled message stays invisible; default
60), ``poll_interval`` (longest idle wait between polls; default 0.1).

Supports what the RabbitMQ adapter supports, with the same meaning:

- topic exchange semantics (``*`` and ``#`` bindings), publish fails when nothing is bound;
- durability: a publish returns after the transaction commits (WAL, ``synchronous=FULL``);
- at-least-once delivery: a delivered message is leased for the visibility timeout; a consumer
  that dies or drops its connection without settling it loses the lease and the message comes back
  flagged redelivered; a settle with a lost lease fails loudly;
- retry rungs: ``retry`` makes the message invisible for the delay, then back on its work queue;
- dead letters: ``dead_letter`` moves the row to ``<queue>.dlq`` with its headers, atomically;
- poison protection: a message delivered more than ``delivery_limit`` times without being
  settled is moved to the DLQ with error code ``broker.delivery_limit``.

Several processes may share the file; claims use ``BEGIN IMMEDIATE`` so a message is leased once.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from hub.delivery.broker import base as b
from hub.delivery.broker.base import Broker, Delivery, Handler, Headers, Message
from hub.delivery.broker.topology import Topology, topic_matches
from hub.errors import BrokerUnavailable, ConfigurationError, UnknownRoute

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS bindings (
    pattern TEXT NOT NULL,
    queue TEXT NOT NULL,
    PRIMARY KEY (pattern, queue)
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    available_at REAL NOT NULL,
    lease_until REAL,
    lease_token TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
"""

# Publishers in this process wake consumers of the same file at once instead of at the next poll.
_wakeups: dict[str, threading.Condition] = {}
_wakeups_lock = threading.Lock()


def _wakeup_for(path: str) -> threading.Condition:
    with _wakeups_lock:
        return _wakeups.setdefault(path, threading.Condition())


class EmbeddedDelivery(Delivery):
    def __init__(self, broker: "EmbeddedBroker", seq: int, token: str, message: Message,
                 queue: str, redelivered: bool) -> None:
        super().__init__(message, queue, redelivered)
        self._broker = broker
        self._seq = seq
        self._token = token

    def ack(self) -> None:
        self._settle()
        self._broker._settle(self, "DELETE FROM messages WHERE seq = ? AND lease_token = ?",
                             (self._seq, self._token))

    def retry(self, step: int, delay: float, *, headers: Headers, body: bytes | None = None) -> None:
        self._settle()
        spec = self._broker.topology.owner_of(self.queue)
        ceiling = spec.retry_delays[spec.step_for(step)]
        available = time.time() + min(max(delay, 0.0), ceiling)
        merged = json.dumps({**self.message.headers, **headers})
        self._broker._settle(
            self,
            "UPDATE messages SET available_at = ?, lease_until = NULL, lease_token = NULL,"
            " headers = ?, body = COALESCE(?, body) WHERE seq = ? AND lease_token = ?",
            (available, merged, body, self._seq, self._token))

    def dead_letter(self, *, headers: Headers) -> None:
        self._settle()
        spec = self._broker.topology.owner_of(self.queue)
        merged = json.dumps({**self.message.headers, **headers})
        self._broker._settle(
            self,
            "UPDATE messages SET queue = ?, available_at = ?, lease_until = NULL, lease_token = NULL,"
            " headers = ?, deliveries = 0 WHERE seq = ? AND lease_token = ?",
            (spec.dead_letter_queue, time.time(), merged, self._seq, self._token))

    def release(self) -> None:
        self._settle()
        self._broker._settle(
            self, "UPDATE messages SET lease_until = NULL, lease_token = NULL"
                  " WHERE seq = ? AND lease_token = ?", (self._seq, self._token))


class EmbeddedBroker(Broker):
    def __init__(self, url: str, topology: Topology, *, visibility_timeout: float = 60.0,
                 poll_interval: float = 0.1, synchronous: str = "FULL") -> None:
        super().__init__(topology)
        path = url.split("sqlite:///", 1)[-1] if url.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise ConfigurationError("embedded broker needs a file: sqlite:///path/to/broker.db")
        self.path = str(Path(path).expanduser().resolve())
        self.visibility_timeout = visibility_timeout
        self.poll_interval = poll_interval
        self.synchronous = synchronous
        self._wakeup = _wakeup_for(self.path)
        self._conn: sqlite3.Connection | None = None
        # One connection per broker object, used by whichever thread holds the lock: sqlite3
        # may crash the process when a connection is closed while another thread runs on it.
        self._lock = threading.RLock()
        self._patterns: list[tuple[str, str]] | None = None

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        self._conn = conn
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], Any], *, attempts: int = 5) -> Any:
        """Run ``fn`` in one write transaction, reconnecting with backoff if the file is lost."""
        delay = 0.05
        for attempt in range(attempts):
            try:
                with self._lock:
                    conn = self._connect()
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = fn(conn)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                    return result
            except (sqlite3.OperationalError, sqlite3.ProgrammingError,
                    sqlite3.DatabaseError) as exc:
                self._drop_connection()
                if attempt == attempts - 1:
                    raise BrokerUnavailable(f"embedded broker unavailable: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def _drop_connection(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass

    def sever(self) -> None:
        """Close the connection under the feet of its users (as a lost file handle would): the
        next operation fails, reconnects and goes on. For tests of connection loss."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def close(self) -> None:
        self._drop_connection()

    # -- topology -----------------------------------------------------------------------------

    def declare(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for statement in _SCHEMA.strip().split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            for name in self.topology.all_queue_names():
                conn.execute("INSERT OR IGNORE INTO queues(name) VALUES (?)", (name,))
            for spec in self.topology.queues:
                for pattern in spec.bindings:
                    conn.execute("INSERT OR IGNORE INTO bindings(pattern, queue) VALUES (?, ?)",
                                 (pattern, spec.name))

        self._run(work)
        self._patterns = None

    def _bound_queues(self, conn: sqlite3.Connection, routing_key: str) -> list[str]:
        if self._patterns is None:
            self._patterns = list(conn.execute("SELECT pattern, queue FROM bindings"))
        return sorted({queue for pattern, queue in self._patterns
                       if topic_matches(pattern, routing_key)})

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, message: Message) -> None:
        self.publish_many([message])

    def publish_many(self, messages: Any) -> None:
        batch = list(messages)
        if not batch:
            return

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            for message in batch:
                queues = self._bound_queues(conn, message.routing_key)
                if not queues:
                    raise UnknownRoute(f"no queue is bound to routing key {message.routing_key!r}",
                                       routing_key=message.routing_key)
                for queue in queues:
                    self._insert(conn, queue, message, now)

        self._run(work)
        self._notify()

    def send_to_queue(self, queue: str, message: Message) -> None:
        def work(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone() is None:
                raise UnknownRoute(f"no queue named {queue!r}", queue=queue)
            self._insert(conn, queue, message, time.time())

        self._run(work)
        self._notify()

    @staticmethod
    def _insert(conn: sqlite3.Connection, queue: str, message: Message, now: float) -> None:
        conn.execute(
            "INSERT INTO messages(queue, message_id, routing_key, headers, body, available_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (queue, message.message_id, message.routing_key, json.dumps(message.headers),
             message.body, now))

    def _notify(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    # -- consuming ----------------------------------------------------------------------------

    def get(self, queue: str) -> EmbeddedDelivery | None:
        taken = self.get_many(queue, 1)
        return taken[0] if taken else None

    def get_many(self, queue: str, limit: int) -> list[EmbeddedDelivery]:
        """Lease up to ``limit`` ready messages of ``queue``, oldest first, in one transaction
        (one commit for the batch: on this broker every commit waits for the disk)."""
        token = uuid.uuid4().hex

        def work(conn: sqlite3.Connection) -> Any:
            now = time.time()
            self._park_poison(conn, queue, now)
            return conn.execute(
                "UPDATE messages SET lease_until = ?, lease_token = ?, deliveries = deliveries + 1"
                " WHERE seq IN (SELECT seq FROM messages WHERE queue = ? AND available_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY seq LIMIT ?)"
                " RETURNING seq, message_id, routing_key, headers, body, deliveries",
                (now + self.visibility_timeout, token, queue, now, now, limit)).fetchall()

        rows = sorted(self._run(work))
        return [EmbeddedDelivery(self, seq, token, Message(
                    body=bytes(body), message_id=message_id, routing_key=routing_key,
                    headers=json.loads(headers)), queue, redelivered=deliveries > 1)
                for seq, message_id, routing_key, headers, body, deliveries in rows]

    def ack_many(self, deliveries: Any) -> None:
        """Acknowledge leased deliveries of this broker in one transaction."""
        mine = [d for d in deliveries if isinstance(d, EmbeddedDelivery) and d._broker is self]
        others = [d for d in deliveries if d not in mine]
        for delivery in mine:
            delivery._settle()
        if mine:
            def work(conn: sqlite3.Connection) -> int:
                return sum(conn.execute("DELETE FROM messages WHERE seq = ? AND lease_token = ?",
                                        (d._seq, d._token)).rowcount for d in mine)

            if self._run(work) != len(mine):
                raise BrokerUnavailable("a lease was lost before its message was acknowledged;"
                                        " it will be delivered again")
            self._notify()
        for delivery in others:
            delivery.ack()

    def _park_poison(self, conn: sqlite3.Connection, queue: str, now: float) -> None:
        """Move messages delivered too often without being settled to the DLQ."""
        try:
            spec = self.topology.owner_of(queue)
        except KeyError:
            return
        if queue != spec.name:
            return  # dead-letter queues themselves are drained by people, never parked again
        poison = conn.execute(
            "SELECT seq, headers, deliveries FROM messages WHERE queue = ? AND deliveries >= ?"
            " AND available_at <= ? AND (lease_until IS NULL OR lease_until <= ?) LIMIT 10",
            (queue, spec.delivery_limit + 1, now, now)).fetchall()
        for seq, headers, deliveries in poison:
            merged = {**json.loads(headers),
                      b.H_ERROR_CODE: b.DELIVERY_LIMIT_CODE,
                      b.H_ERROR: f"delivered {deliveries} times without being settled (its"
                                 " consumer keeps failing on it)",
                      b.H_COMPONENT: "broker", b.H_ORIGINAL_QUEUE: queue,
                      b.H_DEAD_LETTERED_AT: datetime.now(timezone.utc).isoformat()}
            conn.execute("UPDATE messages SET queue = ?, headers = ?, deliveries = 0,"
                         " lease_until = NULL, lease_token = NULL WHERE seq = ?",
                         (spec.dead_letter_queue, json.dumps(merged), seq))

    def _settle(self, delivery: EmbeddedDelivery, sql: str, params: tuple[Any, ...]) -> None:
        def work(conn: sqlite3.Connection) -> int:
            return conn.execute(sql, params).rowcount

        if self._run(work) != 1:
            # The lease expired and another consumer may hold the message now: the work done
            # here must be idempotent, and this settle must not pretend it succeeded.
            raise BrokerUnavailable(
                f"lease on message {delivery.message.message_id} was lost before it was settled")
        self._notify()

    def consume(self, queue: str, handler: Handler, *, stop: threading.Event,
                prefetch: int = 16, idle: Callable[[], None] | None = None) -> None:
        wait = 0.002
        while not stop.is_set():
            try:
                delivery = self.get(queue)
            except BrokerUnavailable:
                stop.wait(min(wait * 10, 1.0))
                continue
            if delivery is None:
                if idle is not None:
                    idle()
                with self._wakeup:
                    self._wakeup.wait(wait)
                wait = min(wait * 2, self.poll_interval)
                continue
            wait = 0.002
            try:
                handler(delivery)
            finally:
                if not delivery.settled:
                    try:
                        delivery.release()
                    except BrokerUnavailable:
                        pass  # the lease will lapse and the message comes back anyway

    def consume_batches(self, queue: str, handler: Any, *, stop: threading.Event,
                        max_batch: int = 32, prefetch: int = 64,
                        idle: Callable[[], None] | None = None) -> None:
        wait = 0.002
        while not stop.is_set():
            try:
                batch = self.get_many(queue, max(1, min(max_batch, prefetch)))
            except BrokerUnavailable:
                stop.wait(min(wait * 10, 1.0))
                continue
            if not batch:
                if idle is not None:
                    idle()
                with self._wakeup:
                    self._wakeup.wait(wait)
                wait = min(wait * 2, self.poll_interval)
                continue
            wait = 0.002
            try:
                handler(list(batch))
            finally:
                for delivery in batch:
                    if not delivery.settled:
                        try:
                            delivery.release()
                        except BrokerUnavailable:
                            pass  # the lease will lapse and the message comes back anyway

    # -- inspection ---------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        return self._run(lambda conn: conn.execute(
            "SELECT COUNT(*) FROM messages WHERE queue = ?", (queue,)).fetchone()[0])

    def oldest_age(self, queue: str) -> float | None:
        """Seconds since the oldest message of the queue became available (None when empty)."""
        first = self._run(lambda conn: conn.execute(
            "SELECT MIN(available_at) FROM messages WHERE queue = ?", (queue,)).fetchone()[0])
        return None if first is None else max(0.0, time.time() - first)

    def purge(self, queue: str) -> int:
        count = self._run(lambda conn: conn.execute(
            "DELETE FROM messages WHERE queue = ?", (queue,)).rowcount)
        return count

    def delete_topology(self) -> None:
        names = self.topology.all_queue_names()

        def work(conn: sqlite3.Connection) -> None:
            for name in names:
                conn.execute("DELETE FROM messages WHERE queue = ?", (name,))
                conn.execute("DELETE FROM bindings WHERE queue = ?", (name,))
                conn.execute("DELETE FROM queues WHERE name = ?", (name,))

        self._run(work)
        self._patterns = None
