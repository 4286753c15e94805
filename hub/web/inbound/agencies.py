"""What every agency calling the hub goes through: who is calling, is the message signed by
that agency and fresh, and the agency's connector that reads what it sent.

Used by the inbound routes of each agency (`hub.web.inbound.health`, `hub.web.inbound.justice`);
the routes are put on one blueprint by `hub.web.inbound.inbound_blueprint`.
"""
from __future__ import annotations

import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from flask import Flask, Response, current_app, request

from connectors.base import Connector
from connectors.registry import AgencyConfig
from connectors.signing import MessageSigning, replace_body
from connectors.xml import parse_xml, serialize
from hub.cases.book import CaseBook
from hub.errors import HubError, MalformedEnvelope, PermanentError, SecurityError
from hub.evidence.audit.log import AuditLog
from hub.evidence.seal import Seal
from hub.evidence.seen import SessionSeenIds
from hub.store import Store
from hub.web.problems import audit_as, problem, status_for
from security.tls import party_from_peer
from security.trust import TrustStore

log = logging.getLogger(__name__)

#: Exchange statuses that may still receive an answer by callback (queued: the agency called
#: back before the connector worker recorded its acknowledgement).
WAITING = ("queued", "acknowledged")


class AlreadyAnswered(PermanentError):
    """The exchange was already answered: a repeated or late callback has no effect."""

    code = "inbound.already_answered"


@dataclass(frozen=True)
class InboundParts:
    """What the inbound routes use, given by the app factory (`install`)."""

    #: The agencies' configurations (protocol, ``options.client``: their X-Road identity).
    agencies: Mapping[str, AgencyConfig]
    #: Each agency's bearer credential (``HUB_AGENCY_<NAME>_TOKEN``); none: it cannot call.
    agency_tokens: Mapping[str, str]
    #: Our CA and the agencies' certificates: who a TLS client certificate names.
    trust: TrustStore
    #: Verifies what agencies sign and signs what the hub answers, with replay protection.
    signing: MessageSigning
    #: Builds the agency's connector, which reads what the agency sends.
    new_connector: Callable[[str], Connector]
    store: Store
    #: Opens the cases agencies submit (Justice's judicial documents).
    cases: CaseBook
    audit: AuditLog
    seal: Seal
    #: The hub's X-Road client identifier.
    node_id: str
    max_message_bytes: int
    #: Called once a transaction queued messages (the relay sends them at once).
    on_change: Callable[[], None]


INBOUND = "hub.inbound"


def install(app: Flask, inbound: InboundParts) -> None:
    """Give the inbound routes of ``app`` what they use (called once by the app factory)."""
    app.extensions[INBOUND] = inbound


def inbound() -> InboundParts:
    """The current app's `InboundParts`."""
    found = current_app.extensions[INBOUND]
    if not isinstance(found, InboundParts):
        raise TypeError(f"app.extensions[{INBOUND!r}] is not InboundParts")
    return found


# -- who is calling -------------------------------------------------------------------------------

def authenticate(agency: str, *, client: str | None = None) -> str:
    """Check that the caller is ``agency``; returns its X-Road client identity.

    ``client`` is the identity the message itself names (SOAP header); REST callers name it in
    the ``X-Road-Client`` header. Raises `SecurityError` (401) on any mismatch.
    """
    audit_as(f"inbound.{agency}", f"agency:{agency}")
    parts = inbound()
    config = parts.agencies.get(agency)
    expected_client = (config.options.get("client") if config is not None else None)
    token = parts.agency_tokens.get(agency)
    if config is None or not expected_client or not token:
        raise SecurityError(f"{agency} is not allowed to call the hub (no identity or"
                            f" credential configured)", code="inbound.not_configured")
    presented = client if client is not None else request.headers.get("X-Road-Client", "")
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if presented != expected_client or scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.encode("utf-8"), token.encode("utf-8")):
        log.warning("inbound call refused for %s", agency, extra={"agency": agency})
        raise SecurityError("unknown caller or wrong credential", code="inbound.unauthenticated")
    _check_client_certificate(agency)
    return presented


def _check_client_certificate(agency: str) -> None:
    """Over mutual TLS terminated by the hub's own server, the client certificate must be one
    our CA issued to ``agency`` (in date, not revoked, TLS pins if configured). Behind a server
    or proxy that does not pass the certificate on, the bearer credential and the message
    signature are what identify the agency."""
    sock = request.environ.get("werkzeug.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    der = getpeercert(binary_form=True) if getpeercert is not None else None
    if der is None:
        return
    party = party_from_peer(der, inbound().trust)
    if party != agency:
        log.warning("inbound call for %s with the TLS certificate of %s", agency, party)
        raise SecurityError(f"the client certificate names {party}, not {agency}",
                            code="inbound.wrong_client_certificate")


def verify_message(agency: str, body: bytes, headers: Any, *, fresh: bool = True) -> Any:
    """The verified message: for SOAP agencies the envelope bytes whose Body is replaced by
    exactly what was signed (XML-DSig); for REST ones the `VerifiedJws` of the body (detached
    JWS in ``X-JWS-Signature``). Raises `SignatureInvalid` / `UntrustedCertificate`, and
    `ReplayDetected` when ``fresh`` (REST callers check freshness themselves, in the transaction
    of the message's effect: `check_fresh`)."""
    parts = inbound()
    signing = parts.signing
    # The agency's protocol decides how its messages are read, never the bytes it sent.
    if parts.agencies[agency].protocol == "soap":
        verified = signing.verify_soap(body, agency, fresh=fresh)
        return serialize(replace_body(parse_xml(body, error=MalformedEnvelope),
                                      verified.signed_xml))
    return signing.verify_body(headers, body, agency, fresh=False)


def check_fresh(session: Any, agency: str, verified: Any) -> None:
    """Refuse a replayed JWS (`ReplayDetected`); the seen id commits with ``session``, so a
    callback whose processing fails is not refused when the agency retries it."""
    inbound().signing.check_fresh(agency, verified.message_id, verified.issued_at,
                               seen=SessionSeenIds(session))


_connectors_lock = threading.Lock()


def agency_connector(agency: str) -> Any:
    """The app's connector of ``agency`` (started once), used to read what the agency sends."""
    cache: dict[str, Connector] = current_app.extensions.setdefault("inbound_connectors", {})
    with _connectors_lock:
        if agency not in cache:
            connector = inbound().new_connector(agency)
            connector.start()
            cache[agency] = connector
        return cache[agency]


# -- Health: decisions by callback -----------------------------------------------------------------


def already_answered(error: AlreadyAnswered) -> tuple[Response, int]:
    return problem(409, error.code, error.message)


def inbound_error(error: HubError) -> tuple[Response, int]:
    # Same JSON problem as the rest of the front; the status comes from the error class.
    extra = {"fields": error.errors} if hasattr(error, "errors") else {}
    if error.details.get("reason"):
        extra["reason"] = error.details["reason"]  # unsigned, expired, revoked, seen, stale...
    return problem(status_for(error), error.code, error.message, **extra)
