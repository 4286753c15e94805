"""Audit chain designs under concurrent writers: the async sealer against inline chaining.

Each writer thread runs transactions shaped like the hub's: an audit record, an idempotency mark,
and a few milliseconds of other work before the commit (other statements, a lock wait). Inline
chaining holds the chain head's lock from the audit append to the commit; the sealer design
writes without it and chains afterwards in batches. Prints transactions per second for both.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any

from sqlalchemy import create_engine, text

from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.evidence.audit.chain import InlineChain, chain_pending
from hub.delivery.idempotency import mark_processed
from hub.store import Store, normalize_url

#: Work a transaction does after its audit append, before it commits (seconds).
WORK = 0.003


def _fresh_database(url: str) -> tuple[str, Any]:
    if url.startswith("sqlite"):
        return url, None
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    name = f"hub_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = normalize_url(url).rpartition("/")[0]
    return f"{base}/{name}", (admin, name)


def _drop(cleanup: Any) -> None:
    if cleanup is None:
        return
    admin, name = cleanup
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _run(url: str, log: AuditLog, writers: int, records: int, sealer: bool) -> float:
    store = Store.from_url(url)
    store.upgrade()
    stop = threading.Event()
    per_writer = records // writers

    def writer(k: int) -> None:
        for i in range(per_writer):
            with store.transaction() as session:
                log.append(session, AuditRecord(action="sent", actor="hub:bench",
                                                component="bench", message_id=str(uuid.uuid4()),
                                                correlation_id=f"BEN-2026-{k:07d}"))
                mark_processed(session, f"bench-{k}", str(i))
                time.sleep(WORK)

    def seal_loop() -> None:
        while not stop.is_set():
            chain_pending(store)
            stop.wait(0.05)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    sealing = threading.Thread(target=seal_loop) if sealer else None
    start = time.perf_counter()
    if sealing:
        sealing.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    stop.set()
    if sealing:
        sealing.join()
    chain_pending(store)
    store.dispose()
    return per_writer * writers / elapsed


def run_chain_comparison(url: str, *, writers: int = 8, records: int = 2000) -> None:
    kind = url.split(":", 1)[0]
    for name, log, sealer in (("sealer", AuditLog(), True),
                              ("inline", AuditLog(chain=InlineChain()), False)):
        fresh, cleanup = _fresh_database(url)
        try:
            rate = _run(fresh, log, writers, records, sealer)
        finally:
            _drop(cleanup)
        print(f"audit chain {name:6} on {kind:10} {writers} writers: {rate:7.0f} transactions/s "
              f"({WORK * 1000:.0f} ms of work per transaction)")
