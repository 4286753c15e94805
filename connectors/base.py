"""The connector interface: one small class per agency with one verb, ``send(envelope) -> Reply``.

A connector translates a canonical `Envelope` to its agency's wire format (through the agency's
mapping files), signs and delivers it, verifies and parses the answer, and maps it back to a
`Reply`. Every lower-level error (requests, zeep, lxml, JSON) is converted here into a
`hub.errors.HubError`, because the class decides retry versus dead letter:

    connection refused, reset, HTTP 5xx/429, SOAP server fault   -> AgencyUnavailable  (retry)
    no answer within ``timeout``                                   -> AgencyTimeout      (retry)
    an answer that cannot be parsed                                -> BadAgencyReply     (retry)
    HTTP 4xx business refusal, SOAP client fault                   -> AgencyRefusal      (park)
    request or answer failing its schema                           -> SchemaViolation    (park)
    answer unsigned, badly signed, replayed                        -> SecurityError      (park)

Lifecycle: ``start()`` builds clients (once), ``send()`` is called many times, ``close()`` frees
them; a connector is a context manager. Connectors are not shared between threads.

    >>> connector = MockConnector(lambda env: Reply(outcome="authentic"))
    >>> with connector:
    ...     connector.send(envelope).outcome
    'authentic'
"""
from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from hub.envelope import Envelope
from hub.errors import HubError

if TYPE_CHECKING:
    from connectors.registry import AgencyConfig


@dataclass(frozen=True)
class Reply:
    """An agency's answer, in canonical form.

    ``outcome`` is a word from the agency's vocabulary as mapped (e.g. ``authentic``); the route
    of the service says what each outcome does to the case. ``pending`` means the agency only
    acknowledged the request and will answer later by calling the hub back (Health).
    """

    outcome: str
    data: dict[str, Any] = field(default_factory=dict)
    agency_reference: str | None = None
    pending: bool = False
    #: SHA-256 of the agency's answer as received on the wire (evidence for the audit trail).
    wire_digest: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class WireStats:
    """Sizes of the last exchange on the wire, for operational records. A connector sets
    ``self.last_wire`` when it sends (request size) and when the answer arrives."""

    request_bytes: int | None = None
    response_bytes: int | None = None
    status: int | None = None


class Connector(abc.ABC):
    """Base class of every agency connector."""

    #: What the last `send` put on and took off the wire (None when the connector does not say).
    last_wire: WireStats | None = None

    def __init__(self, config: "AgencyConfig", **dependencies: Any) -> None:
        self.config = config
        self.dependencies = dependencies

    @property
    def agency(self) -> str:
        return self.config.name

    def start(self) -> None:
        """Build clients and load what is needed once (schemas, WSDL, keys)."""

    @abc.abstractmethod
    def send(self, envelope: Envelope) -> Reply:
        """Deliver one request and return the agency's answer. Raise `HubError` on failure."""

    def close(self) -> None:
        """Release clients and connections."""

    def __enter__(self) -> "Connector":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Handler = Callable[[Envelope], "Reply"]


class MockConnector(Connector):
    """A connector whose answers come from ``handler``: for routing and worker tests.

    The handler returns a `Reply` or raises a `HubError` (e.g. ``AgencyTimeout()``) to exercise
    retries and dead letters. Every call is recorded in ``calls``.
    """

    def __init__(self, handler: Handler, agency: str = "mock",
                 config: "AgencyConfig | None" = None) -> None:
        if config is None:
            from connectors.registry import AgencyConfig

            config = AgencyConfig(name=agency, title=agency, protocol="rest",
                                  connector="connectors.base:MockConnector")
        super().__init__(config)
        self._handler = handler
        self._lock = threading.Lock()
        self.calls: list[Envelope] = []
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True

    def send(self, envelope: Envelope) -> Reply:
        with self._lock:
            self.calls.append(envelope)
        try:
            return self._handler(envelope)
        except HubError:
            raise
        except Exception as exc:  # a test handler's bug must still look like a connector error
            raise HubError(f"mock handler failed: {exc!r}", code="internal.unexpected") from exc

    def close(self) -> None:
        self.closed = True
