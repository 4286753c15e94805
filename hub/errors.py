"""One exception hierarchy for the whole hub.

Lower-level errors (pika, SQLAlchemy, requests, zeep, lxml, signxml) never leak past the adapter or
connector that met them: they are converted here, at the boundary, into a `HubError`. The class
decides what happens next, so the tree is drawn once::

    HubError
    ├── TransientError              retry with backoff (delay queue), dead letter once exhausted
    │   ├── AgencyUnavailable       connection refused/reset, HTTP 5xx/429, SOAP server fault
    │   ├── AgencyTimeout           no answer within the connector's timeout
    │   ├── BadAgencyReply          the agency answered with something unparseable
    │   ├── BrokerUnavailable       the broker cannot be reached or refused a publish
    │   ├── StoreUnavailable        the database cannot be reached
    │   └── CircuitOpen             the agency's circuit breaker is open
    └── PermanentError              never retried: straight to the dead-letter queue
        ├── InvalidMessage          the message itself is wrong
        │   ├── MalformedEnvelope   not JSON, wrong fields or types
        │   ├── MessageTooLarge     over the configured byte limit
        │   ├── SchemaViolation     payload fails its JSON Schema / XSD
        │   └── HostileInput        XXE, entity expansion, DTD, excessive depth
        ├── SecurityError           not attributable or not fresh
        │   ├── SignatureInvalid    missing, wrong, or not covering what is used
        │   ├── UntrustedCertificate unknown, expired or revoked certificate
        │   ├── ReplayDetected      message id seen before, or timestamp outside the window
        │   └── InvalidToken        access token missing, malformed, expired or not ours (HTTP 401)
        ├── UnknownService          no definition for the service named
        ├── UnknownRoute            no route/step/agency for the message
        ├── AgencyRefusal           the agency refused the request on business grounds (4xx, client fault)
        ├── IllegalTransition       a case cannot move from its status to the one asked
        └── ConfigurationError      the hub is misconfigured (missing key, bad route file)

Every error carries a stable ``code`` (e.g. ``agency.timeout``) used in dead-letter headers, audit
records, metrics and localized API messages, and optional ``details`` (a JSON-able dict, never
personal data).
"""
from __future__ import annotations

from typing import Any


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    code: str = "hub.error"
    #: Whether a later attempt may succeed. Decides retry versus dead letter.
    transient: bool = False

    def __init__(self, message: str = "", *, code: str | None = None, **details: Any) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code
        self.message = message or (self.__class__.__doc__ or self.code).strip().splitlines()[0]
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class TransientError(HubError):
    """A failure that may go away: retry with backoff."""

    code = "transient"
    transient = True


class AgencyUnavailable(TransientError):
    """The agency could not be reached or answered with a server error."""

    code = "agency.unavailable"


class AgencyTimeout(TransientError):
    """The agency did not answer in time."""

    code = "agency.timeout"


class BadAgencyReply(TransientError):
    """The agency answered with a body that cannot be parsed or understood."""

    code = "agency.bad_reply"


class BrokerUnavailable(TransientError):
    """The message broker cannot be reached or did not confirm a publish."""

    code = "broker.unavailable"


class StoreUnavailable(TransientError):
    """The database cannot be reached."""

    code = "store.unavailable"


class CircuitOpen(TransientError):
    """The agency's circuit breaker is open; the call was not attempted."""

    code = "agency.circuit_open"


class PermanentError(HubError):
    """A failure that will not go away by retrying: dead-letter it."""

    code = "permanent"


class InvalidMessage(PermanentError):
    """The message is not acceptable."""

    code = "message.invalid"


class MalformedEnvelope(InvalidMessage):
    """The envelope is not well-formed JSON or has wrong fields."""

    code = "message.malformed"


class MessageTooLarge(InvalidMessage):
    """The message exceeds the configured size limit."""

    code = "message.too_large"


class SchemaViolation(InvalidMessage):
    """The payload does not validate against its schema."""

    code = "message.schema"

    def __init__(self, message: str = "", *, errors: list[dict[str, Any]] | None = None, **details: Any):
        super().__init__(message, **details)
        #: Field-level errors: ``[{"field": "holder.cnie", "code": "pattern", "message": ...}]``
        self.errors = errors or []

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "errors": self.errors}


class HostileInput(InvalidMessage):
    """The input uses a construct the hub refuses (DTD, entities, excessive depth)."""

    code = "message.hostile"


class SecurityError(PermanentError):
    """The message cannot be attributed or is not fresh."""

    code = "security.error"


class SignatureInvalid(SecurityError):
    """The signature is missing, wrong, or does not cover what is used."""

    code = "security.signature"


class UntrustedCertificate(SecurityError):
    """The signer's certificate is unknown, expired or revoked."""

    code = "security.certificate"


class ReplayDetected(SecurityError):
    """The message was seen before or its timestamp is outside the accepted window."""

    code = "security.replay"


class InvalidToken(SecurityError):
    """The access token is missing, malformed, expired, or was not issued for this hub."""

    code = "security.token"


class UnknownService(PermanentError):
    """No service of that name is defined."""

    code = "service.unknown"


class UnknownRoute(PermanentError):
    """No route, step or agency matches the message."""

    code = "route.unknown"


class AgencyRefusal(PermanentError):
    """The agency refused the request on business grounds."""

    code = "agency.refused"


class IllegalTransition(PermanentError):
    """The case cannot move from its current status to the one asked."""

    code = "case.illegal_transition"


class ConfigurationError(PermanentError):
    """The hub is misconfigured."""

    code = "config.error"


def classify(exc: BaseException) -> HubError:
    """Return ``exc`` as a `HubError`; anything unexpected counts as permanent.

    Unknown exceptions are bugs or unforeseen input: retrying them would only repeat the failure
    and delay the operator's attention, so they are parked as dead letters with their type name.
    """
    if isinstance(exc, HubError):
        return exc
    err = PermanentError(f"unexpected {type(exc).__name__}: {exc}", code="internal.unexpected")
    err.__cause__ = exc
    return err
