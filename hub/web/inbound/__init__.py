"""Inbound agency endpoints (agency -> hub): one Flask blueprint, built by `inbound_blueprint`
and registered by `init_app` for the app factory (`hub.web.app.create_app`) with the parts the
routes use (`hub.web.inbound.agencies.InboundParts`), with the routes of each agency calling in.

    POST /inbound/v1/health/clearances/<exchange id>   Health's decision on a sanitary clearance
         -> 202 {"status": "queued", "exchange": ..., "message_id": ...}
         401 unknown caller / bad credential, 404 unknown exchange, 409 already answered,
         422 decision failing Health's schema
    GET  /inbound/v1/justice?wsdl                       the hub's WSDL for Justice
    GET  /inbound/v1/justice/schemas/<name>             the schemas that WSDL imports
    POST /inbound/v1/justice                            SOAP SubmitJudicialDocument
         -> the case reference and the post that will serve the document (`hub.web.inbound.justice`)

Callers are authenticated per agency (`hub.web.inbound.agencies.authenticate`): the X-Road client identity they present
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

Health's callback: `hub.web.inbound.health`; Justice's SOAP service: `hub.web.inbound.justice`.
"""
from __future__ import annotations

from flask import Blueprint, Flask

from hub.errors import HubError
from hub.web.inbound import health, justice
from hub.web.inbound.agencies import (AlreadyAnswered, InboundParts, already_answered,
                                      inbound_error, install)


def inbound_blueprint() -> Blueprint:
    """A new blueprint with every agency's inbound routes (one per app: Flask blueprints
    cannot take routes once registered)."""
    blueprint = Blueprint("inbound", __name__, url_prefix="/inbound/v1")
    blueprint.register_error_handler(AlreadyAnswered, already_answered)
    blueprint.register_error_handler(HubError, inbound_error)
    health.register(blueprint)
    justice.register(blueprint)
    return blueprint


def init_app(app: Flask, parts: InboundParts) -> None:
    """Register the inbound routes on ``app``, with what they use."""
    install(app, parts)
    app.register_blueprint(inbound_blueprint())
