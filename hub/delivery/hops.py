"""The seam between the core and operations: consumers report hops and ask whether to pause.

The core never imports metrics, the console or the operational-records table; it calls one
`Observer`, injected by `hub.runtime.Hub`. The base class does nothing, so a consumer built
without one behaves exactly as before::

    worker = ConnectorWorker(..., observer=StoreObserver(store, node="web-1"))

`Observer.record` is called *inside* the transaction that settles an attempt (the effect on
success, the failure audit on failure), so an operational record commits with what it describes
and never describes something that rolled back.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy.orm import Session


@dataclass
class Hop:
    """One attempt at one hop, as a consumer saw it (X-Road's operational monitoring fields)."""

    component: str
    message_id: str
    attempt: int = 1
    correlation_id: str | None = None
    agency: str | None = None
    service: str | None = None
    operation: str | None = None
    #: succeeded | pending | retried | dead_lettered
    outcome: str = "succeeded"
    answer: str | None = None
    fault_code: str | None = None
    fault_reason: str | None = None
    created_at: datetime | None = None
    received_at: datetime | None = None
    request_out_at: datetime | None = None
    response_in_at: datetime | None = None
    request_bytes: int | None = None
    response_bytes: int | None = None

    def describe(self, envelope: Any) -> None:
        """Fill what the envelope says (case, service, operation, agency of a request)."""
        self.correlation_id = envelope.correlation_id
        self.service = envelope.service
        self.created_at = envelope.created_at
        name = envelope.schema_ref.name
        self.agency = envelope.recipient if envelope.kind == "request" else envelope.sender
        self.operation = (name.removeprefix(f"{self.agency}.").removesuffix(".request")
                          .removesuffix(".reply"))

    def settled(self, outcome: str, **changes: Any) -> "Hop":
        return replace(self, outcome=outcome, **changes)


class Observer:
    """No-op observer: the default for consumers built outside `hub.runtime.Hub`."""

    def record(self, session: Session, hop: Hop) -> None:
        """Keep ``hop`` (called inside the transaction that settles it)."""

    def paused(self, component: str) -> bool:
        """Whether an operator paused ``component`` (e.g. ``connector.narsa``)."""
        return False

    def run(self, stop: threading.Event, components: Iterable[str] = ()) -> None:
        """Background duties of a process running ``components`` (heartbeats); returns at once
        here, when ``stop`` is set in observers that have duties."""
