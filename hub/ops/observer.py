"""`StoreObserver`: the observer `hub.runtime.Hub` injects into its consumers.

- `record` appends an operational record in the settling transaction (`hub.ops.records`);
- `paused` answers from the shared switches, read at most once a second (`hub.ops.controls`);
- `run` writes this process's heartbeat (circuit-breaker states of the agencies it serves)
  every ``heartbeat_interval`` seconds, so the console sees breakers living in other processes.
"""
from __future__ import annotations

import logging
import threading
from typing import Iterable, Mapping

from sqlalchemy.orm import Session

from hub.delivery.circuit import CircuitBreaker
from hub.errors import HubError
from hub.ops import controls, records
from hub.delivery.hops import Hop, Observer
from hub.store import Store

log = logging.getLogger(__name__)


class StoreObserver(Observer):
    def __init__(self, store: Store, *, breakers: Mapping[str, CircuitBreaker] | None = None,
                 node: str | None = None, heartbeat_interval: float = 5.0,
                 control_ttl: float = 1.0) -> None:
        self.store = store
        self.breakers = dict(breakers or {})
        self.node = node or records.node_name()
        self.heartbeat_interval = heartbeat_interval
        self._controls = controls.ControlCache(store, ttl=control_ttl)

    def record(self, session: Session, hop: Hop) -> None:
        records.add(session, hop, node=self.node)

    def paused(self, component: str) -> bool:
        return self._controls.paused(component)

    def heartbeat(self, components: Iterable[str]) -> None:
        names = sorted(set(components))
        agencies = [c.removeprefix("connector.") for c in names if c.startswith("connector.")]
        state = {"components": names,
                 "circuits": {a: self.breakers[a].state for a in agencies if a in self.breakers},
                 "paused": sorted(c for c in names if self.paused(c))}
        controls.beat(self.store, self.node, "worker", state)

    def run(self, stop: threading.Event, components: Iterable[str] = ()) -> None:
        names = list(components)
        while not stop.is_set():
            try:
                self.heartbeat(names)
            except HubError as exc:
                log.warning("heartbeat failed: %s", exc.message, extra={"component": "ops"})
            stop.wait(self.heartbeat_interval)
