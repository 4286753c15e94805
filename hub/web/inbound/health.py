"""Inbound agency endpoints (agency -> hub), one Flask blueprint registered by `hub.web.app.create_app`.

    POST /inbound/v1/health/clearances/<exchange id>   Health's decision on a sanitary clearance
         -> 202 {"status": "queued", "exchange": ..., "message_id": ...}
         401 unknown caller / bad credential, 404 unknown exchange, 409 already answered,
         422 decision failing Health's schema
    GET  /inbound/v1/justice?wsdl                       the hub's WSDL for Justice
    GET  /inbound/v1/justice/schemas/<name>             the schemas that WSDL imports
    POST /inbound/v1/justice                            SOAP SubmitJudicialDocument
         -> the case reference and the post that will serve the document (`hub.web.inbound.justice`)

Callers are authenticated per agency (`authenticate`): the X-Road client identity they present
must be the agency's (``options.client`` in its ``agency.yaml``) and they must present the
agency's bearer credential (``HUB_AGENCY_<NAME>_TOKEN``); an agency without a configured
credential cannot call the hub. Then the message itself is verified (`verify_message`): its
signature (detached JWS for Health, XML-DSig for Justice) against the agency's certificate in the
trust store, and its freshness (signed timestamp inside ``HUB_REPLAY_WINDOW``, signed message id
never seen before). Only what the signature covers is read.

Over mutual TLS terminated by the hub's own server, the client certificate must also be the
agency's (`_check_client_certificate`).

Refusals (all audited as ``rejected`` by `hub.web.app`, with nothing else stored): 401
``inbound.unauthenticated`` / ``inbound.wrong_client_certificate`` / ``security.signature`` /
``security.certificate`` / ``security.replay``, 400 ``message.malformed`` / ``message.hostile``,
413 ``message.too_large``, 415 ``request.unsupported_media_type``, 404, 409, 422 as above.

A Health decision is correlated to its exchange (the request's ``X-Road-Id``), read and mapped by
the Health connector (`HealthConnector.parse_answer`: schema and mapping files, no logic here), and
queued for the case worker as a ``reply`` envelope with its audit record, in one transaction
(`hub.cases.answers.queue_answer`, exactly as the connector worker does with synchronous answers). The
``processed_messages`` mark makes a second decision for the same exchange a 409 with no effect.
"""
from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from connectors.xml import request_hash
from hub.cases.answers import queue_answer, request_of
from hub.errors import (BadAgencyReply, HubError, MalformedEnvelope, SecurityError, UnknownRoute,
                        PermanentError, UnsupportedMediaType)
from hub.delivery.idempotency import mark_processed
from hub.store.models import CaseRow, ExchangeRow

log = logging.getLogger(__name__)

blueprint = Blueprint("inbound", __name__, url_prefix="/inbound/v1")

#: Exchange statuses that may still receive an answer by callback (queued: the agency called
#: back before the connector worker recorded its acknowledgement).
WAITING = ("queued", "acknowledged")


class AlreadyAnswered(PermanentError):
    """The exchange was already answered: a repeated or late callback has no effect."""

    code = "inbound.already_answered"


def _hub() -> Any:
    return current_app.extensions["hub"]


# -- who is calling -------------------------------------------------------------------------------

def authenticate(agency: str, *, client: str | None = None) -> str:
    """Check that the caller is ``agency``; returns its X-Road client identity.

    ``client`` is the identity the message itself names (SOAP header); REST callers name it in
    the ``X-Road-Client`` header. Raises `SecurityError` (401) on any mismatch.
    """
    from hub.web.app import audit_as

    audit_as(f"inbound.{agency}", f"agency:{agency}")
    hub = _hub()
    config = hub.agencies.get(agency)
    expected_client = (config.options.get("client") if config is not None else None)
    token = hub.settings.agency_tokens.get(agency)
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
    from security.tls import party_from_peer

    sock = request.environ.get("werkzeug.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    der = getpeercert(binary_form=True) if getpeercert is not None else None
    if der is None:
        return
    party = party_from_peer(der, _hub().keys.trust)
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
    hub = _hub()
    signing = hub.signing
    # The agency's protocol decides how its messages are read, never the bytes it sent.
    if hub.agencies.get(agency).protocol == "soap":
        from connectors.signing import replace_body
        from connectors.xml import parse_xml, serialize

        verified = signing.verify_soap(body, agency, fresh=fresh)
        return serialize(replace_body(parse_xml(body, error=MalformedEnvelope),
                                      verified.signed_xml))
    return signing.verify_body(headers, body, agency, fresh=False)


def check_fresh(session: Any, agency: str, verified: Any) -> None:
    """Refuse a replayed JWS (`ReplayDetected`); the seen id commits with ``session``, so a
    callback whose processing fails is not refused when the agency retries it."""
    from hub.evidence.seen import SessionSeenIds

    _hub().signing.check_fresh(agency, verified.message_id, verified.issued_at,
                               seen=SessionSeenIds(session))


_connectors_lock = threading.Lock()


def agency_connector(agency: str) -> Any:
    """The app's connector of ``agency`` (started once), used to read what the agency sends."""
    cache = current_app.extensions.setdefault("inbound_connectors", {})
    with _connectors_lock:
        if agency not in cache:
            connector = _hub().new_connector(agency)
            connector.start()
            cache[agency] = connector
        return cache[agency]


# -- Health: decisions by callback -----------------------------------------------------------------

@blueprint.post("/health/clearances/<exchange_id>")
def health_clearance(exchange_id: str) -> tuple[Response, int]:
    authenticate("health")
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("a decision is sent as application/json")
    verified = verify_message("health", request.get_data(), request.headers)
    return _answer_by_callback("health", exchange_id, verified)


def _answer_by_callback(agency: str, exchange_id: str, verified: Any) -> tuple[Response, int]:
    hub = _hub()
    component = f"inbound.{agency}"
    raw = verified.payload
    with hub.store.transaction() as session:
        check_fresh(session, agency, verified)
        exchange = session.scalars(select(ExchangeRow).where(ExchangeRow.id == exchange_id)
                                   .with_for_update()).first()
        if exchange is None or exchange.agency != agency:
            raise UnknownRoute(f"no {agency} exchange {exchange_id} is waiting for an answer",
                               code="inbound.unknown_exchange")
        if exchange.status not in WAITING or not mark_processed(session, component, exchange_id):
            raise AlreadyAnswered(f"exchange {exchange_id} was already answered;"
                                  f" this callback has no effect", status=exchange.status)
        try:
            reply = agency_connector(agency).parse_answer(exchange.operation, raw)
        except BadAgencyReply as exc:
            raise MalformedEnvelope(exc.message) from None
        if reply.pending:
            raise MalformedEnvelope("a callback must carry a decision, not an acknowledgement")
        case = session.get(CaseRow, exchange.case_id)
        answer = queue_answer(session, audit=hub.audit, seal=hub.seal,
                              request=request_of(exchange, case, node_id=hub.settings.node_id),
                              reply=reply, component=component)
    hub.relay.wake()
    response = jsonify(status="queued", exchange=exchange_id, message_id=str(answer.id))
    response.headers["X-Road-Id"] = request.headers.get("X-Road-Id", "")
    response.headers["X-Road-Client"] = request.headers.get("X-Road-Client", "")
    response.headers["X-Road-Request-Hash"] = request_hash(raw)
    return response, 202


@blueprint.errorhandler(AlreadyAnswered)
def _already_answered(error: AlreadyAnswered) -> tuple[Response, int]:
    from hub.web.app import problem

    return problem(409, error.code, error.message)


@blueprint.errorhandler(HubError)
def _inbound_error(error: HubError) -> tuple[Response, int]:
    # Same JSON problem as the rest of the front; the status comes from the error class.
    from hub.web.app import problem, status_for

    extra = {"fields": error.errors} if hasattr(error, "errors") else {}
    if error.details.get("reason"):
        extra["reason"] = error.details["reason"]  # unsigned, expired, revoked, seen, stale...
    return problem(status_for(error), error.code, error.message, **extra)


def register_justice() -> None:
    """Attach the Justice SOAP endpoint (kept in its own module) to this blueprint."""
    from hub.web.inbound import justice as inbound_justice

    inbound_justice.register(blueprint)


register_justice()
