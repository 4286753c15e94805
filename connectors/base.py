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

A connector is built with its agency's `AgencyConfig` and a `ConnectorDeps` (the hub's node id,
message signing, mutual-TLS session): ``NarsaConnector(config, ConnectorDeps(signing=signing))``.
`HttpConnector` is what the REST and SOAP bases share (operations, the pooled session).

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
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from connectors.config import AgencyConfig
from connectors.http import connector_session
from hub.config import DEFAULT_NODE_ID
from hub.envelope import Envelope
from hub.errors import HubError, UnknownRoute

if TYPE_CHECKING:
    import requests

    from connectors.signing import MessageSigning


@dataclass(frozen=True)
class ConnectorDeps:
    """What a connector receives from the hub besides its agency's configuration.

    Built by the composition root (`hub.runtime.Hub.connector_dependencies`); tests and the
    conformance kit build one directly (``ConnectorDeps(node_id=NODE_ID, signing=signing)``).
    Frozen: a connector reads its dependencies, it never swaps them.
    """

    #: The hub's X-Road client identifier (``HUB_NODE_ID``), sent in every request.
    node_id: str = DEFAULT_NODE_ID
    #: Message signing (XML-DSig, JWS) with replay protection; None: unsigned exchanges
    #: (development without keys).
    signing: MessageSigning | None = None
    #: Opens the pinned mutual-TLS session to the agency (``HUB_AGENCY_TLS``); None: a plain
    #: pooled session with the agency's own TLS options (`connectors.http.connector_session`).
    tls_session: Callable[[], requests.Session] | None = None


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

    def __init__(self, config: AgencyConfig, deps: ConnectorDeps | None = None) -> None:
        self.config = config
        self.deps = deps if deps is not None else ConnectorDeps()

    @property
    def node_id(self) -> str:
        """The hub's X-Road client identifier, as this connector sends it."""
        return self.deps.node_id

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


class HttpConnector(Connector):
    """What the REST and SOAP connectors share: declared operations, named in the envelope's
    schema (``<agency>.<operation>.request``), and one pooled HTTP session to the agency, opened
    by `start` and closed by `close`."""

    #: The agency's operations by name (`connectors.rest.RestOperation`,
    #: `connectors.soap.SoapOperation`).
    operations: ClassVar[dict[str, Any]] = {}
    #: Opened by the subclass's `start` (`open_session`).
    _session: requests.Session

    def open_session(self) -> requests.Session:
        """The session to the agency: pinned mutual TLS when the hub gives one, else a pooled
        session with the agency's own TLS options."""
        return connector_session(self.config.concurrency, self.config.options,
                                 self.deps.tls_session)

    def close(self) -> None:
        session = getattr(self, "_session", None)  # None: never started
        if session is not None:
            session.close()

    def operation_of(self, envelope: Envelope) -> str:
        """The operation an envelope asks for; `UnknownRoute` when the agency has none."""
        name = envelope.schema_ref.name
        prefix, suffix = f"{self.agency}.", ".request"
        if name.startswith(prefix) and name.endswith(suffix):
            operation = name[len(prefix):-len(suffix)]
            if operation in self.operations:
                return operation
        raise UnknownRoute(f"{self.agency} has no operation for schema {name!r}", schema=name)


Handler = Callable[[Envelope], "Reply"]


class MockConnector(Connector):
    """A connector whose answers come from ``handler``: for routing and worker tests.

    The handler returns a `Reply` or raises a `HubError` (e.g. ``AgencyTimeout()``) to exercise
    retries and dead letters. Every call is recorded in ``calls``.
    """

    def __init__(self, handler: Handler, agency: str = "mock",
                 config: AgencyConfig | None = None) -> None:
        if config is None:
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
