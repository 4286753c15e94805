"""Operator switches shared by every process, and what worker processes say about themselves.

Switches live in the ``ops_controls`` table so that any number of worker processes on any number
of machines obey the console at once:

    pause(store, "connector.narsa", actor="admin:ops-1")   # workers stop taking NARSA messages
    resume(store, "connector.narsa", actor="admin:ops-1")
    set_maintenance(store, True, actor="admin:ops-1")       # /readyz answers 503 everywhere

A paused connector leaves its messages in the queue (they wait, they are not failed); resuming
delivers them. Heartbeats (``worker_heartbeats``) carry each process's circuit-breaker states
so the console can show them although the breakers live in the workers' memory.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.store import Store
from hub.store.models import OpsControlRow, WorkerHeartbeatRow, utcnow

MAINTENANCE = "maintenance"


def _pause_key(component: str) -> str:
    return f"pause:{component}"


def _set(store: Store, name: str, value: dict[str, Any] | None, *, actor: str,
         audit: AuditLog | None, action: str, details: dict[str, Any]) -> None:
    with store.transaction() as session:
        row = session.get(OpsControlRow, name)
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(OpsControlRow(name=name, value=value, updated_at=utcnow(),
                                      updated_by=actor))
        else:
            row.value, row.updated_at, row.updated_by = value, utcnow(), actor
        (audit or AuditLog()).append(session, AuditRecord(
            action=action, actor=actor, component="admin", details=details))


def pause(store: Store, component: str, *, actor: str, audit: AuditLog | None = None) -> None:
    _set(store, _pause_key(component), {"paused": True}, actor=actor, audit=audit,
         action="paused", details={"component": component})


def resume(store: Store, component: str, *, actor: str, audit: AuditLog | None = None) -> None:
    _set(store, _pause_key(component), None, actor=actor, audit=audit, action="resumed",
         details={"component": component})


def set_maintenance(store: Store, on: bool, *, actor: str, audit: AuditLog | None = None) -> None:
    _set(store, MAINTENANCE, {"on": True} if on else None, actor=actor, audit=audit,
         action="maintenance_on" if on else "maintenance_off", details={})


def controls(store: Store) -> dict[str, dict[str, Any]]:
    """Every switch that is on: name -> {value, updated_at, updated_by}."""
    with store.session() as session:
        return {row.name: {"value": row.value, "updated_at": row.updated_at,
                           "updated_by": row.updated_by}
                for row in session.scalars(select(OpsControlRow))}


def paused_components(store: Store) -> set[str]:
    return {name.removeprefix("pause:") for name in controls(store) if name.startswith("pause:")}


def in_maintenance(store: Store) -> bool:
    return MAINTENANCE in controls(store)


class ControlCache:
    """`paused_components` read at most once per ``ttl`` seconds (consumers ask per message).

    When the store cannot be read, the last answer stands: a database outage must neither pause
    every connector nor resume a paused one.
    """

    def __init__(self, store: Store, *, ttl: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._paused: set[str] = set()
        self._read_at = float("-inf")

    def paused(self, component: str) -> bool:
        with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                self._read_at = time.monotonic()
                try:
                    self._paused = paused_components(self.store)
                except Exception:  # noqa: BLE001 - any store failure: keep the last answer
                    pass
            return component in self._paused


def beat(store: Store, node: str, component: str, state: dict[str, Any]) -> None:
    """Upsert this process's heartbeat for ``component``."""
    with store.transaction() as session:
        row = session.get(WorkerHeartbeatRow, (node, component))
        if row is None:
            session.add(WorkerHeartbeatRow(node=node, component=component, state=state,
                                           seen_at=utcnow()))
        else:
            row.state, row.seen_at = state, utcnow()


def heartbeats(store: Store, *, fresh_within: float = 60.0) -> list[WorkerHeartbeatRow]:
    """Heartbeats seen in the last ``fresh_within`` seconds (older ones: processes gone)."""
    cutoff = utcnow() - timedelta(seconds=fresh_within)
    with store.session() as session:
        rows = list(session.scalars(select(WorkerHeartbeatRow)
                                    .where(WorkerHeartbeatRow.seen_at >= cutoff)
                                    .order_by(WorkerHeartbeatRow.node,
                                              WorkerHeartbeatRow.component)))
        session.expunge_all()
        return rows


def circuit_states(store: Store) -> dict[str, str]:
    """The worst circuit state each agency has in any live worker: open > half_open > closed."""
    rank = {"closed": 0, "half_open": 1, "open": 2}
    states: dict[str, str] = {}
    for row in heartbeats(store):
        for agency, state in (row.state.get("circuits") or {}).items():
            if rank.get(state, 0) >= rank.get(states.get(agency, "closed"), 0):
                states[agency] = state
    return states
