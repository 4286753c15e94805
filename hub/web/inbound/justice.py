"""The hub's SOAP service for the Ministry of Justice: judicial documents to serve abroad.

Justice calls ``SubmitJudicialDocument`` (WSDL served at ``/inbound/v1/justice?wsdl``, messages
in ``schemas/v1/agencies/justice-inbound.xsd``) with the X-Road 4.0 header. The hub:

1. parses the message safely and authenticates the caller (`hub.web.inbound.agencies.authenticate`: Justice's
   X-Road client identity and credential; signatures plug into `hub.web.inbound.agencies.verify_message`);
2. validates the body against the XSD and maps it to case data with
   ``mappings/justice/submit_judicial_document.inbound.yaml``;
3. opens a ``judicial_documents`` case at the post covering the addressee's address
   (`hub.cases.posts.post_for_address`; none: the central directorate). The case id derives from the
   Justice reference, so a document sent twice opens one case and gets the same answer;
4. answers with the case reference and the post, echoing the X-Road header with
   ``requestHash``.

Failures are SOAP 1.1 faults: ``soapenv:Client`` with a detail code for what the caller must
fix, ``soapenv:Server`` (HTTP 500) for what may succeed later. A client fault carries the HTTP
status of the same refusal on the REST endpoints, so that no refusal looks like a server error:

=================================  ======  ==========================================
refusal                            status  detail code
=================================  ======  ==========================================
not ``text/xml``                   415     ``UNSUPPORTED_MEDIA_TYPE``
larger than HUB_MAX_MESSAGE_BYTES  413     ``MESSAGE_TOO_LARGE``
DTD, entities, PI, too deep        400     ``HOSTILE_INPUT``
not well-formed, no X-Road header  400     ``MALFORMED_MESSAGE`` / ``MISSING_XROAD_HEADER``
wrong credential or client         401     ``UNAUTHENTICATED``
unsigned, bad or wrapped signature 401     ``SIGNATURE_INVALID``
unknown/expired/revoked signer     401     ``UNTRUSTED_CERTIFICATE``
id seen before, stale timestamp    401     ``REPLAY_DETECTED``
unknown operation                  404     ``UNKNOWN_OPERATION``
fails the XSD                      422     ``INVALID_REQUEST``
=================================  ======  ==========================================

Every refusal is audited (``rejected``, `hub.web.app.note_rejection`); nothing else is stored.
"""
from __future__ import annotations

import uuid
from functools import lru_cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, request
from lxml import etree
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from connectors.xml import (LOCAL_SCHEMAS, PROTOCOL_VERSION, SOAP_ENV, XRoadHeader, body_of,
                            echoed_header, from_dict, local, parse_xml, serialize, soap_envelope,
                            soap_fault, to_dict, validate_xml, xml_schema)
from hub.errors import (HostileInput, HubError, MalformedEnvelope, MessageTooLarge,
                        ReplayDetected, SecurityError, SchemaViolation, SignatureInvalid,
                        UnknownRoute, UnsupportedMediaType, UntrustedCertificate)
from hub.mapping import Mapping
from hub.cases.posts import post_for_address
from hub.store.models import CaseRow
from hub.web.inbound.agencies import authenticate, inbound, verify_message
from hub.web.problems import audit_as, note_rejection, status_for
from security import safexml

NAMESPACE = "urn:ma:gov:maec:econsulat:judicial:v1"
SERVICE = "judicial_documents"
OPERATION = "submitJudicialDocument"
WSDL = "v1/agencies/justice-inbound.wsdl"
XSD = "v1/agencies/justice-inbound.xsd"
XML = "text/xml; charset=utf-8"
#: Case ids of judicial documents are uuid5(this, Justice's reference): one case per document.
CASE_NAMESPACE = uuid.UUID("6f1d3c52-2f9b-4d0e-9a55-1d1a3b7c2e10")
#: Files the served WSDL imports, by the name they are served under.
SCHEMA_FILES = {
    "justice-inbound.xsd": ("schemas", "v1/agencies/justice-inbound.xsd"),
    "xroad.xsd": ("schemas", "v1/xroad/xroad.xsd"),
    "identifiers.xsd": ("schemas", "v1/xroad/identifiers.xsd"),
    "xml.xsd": ("local", "http://www.w3.org/2009/01/xml.xsd"),
}


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/justice", "justice_wsdl", wsdl, methods=["GET"])
    blueprint.add_url_rule("/justice/schemas/<name>", "justice_schema", schema, methods=["GET"])
    blueprint.add_url_rule("/justice", "justice_soap", submit, methods=["POST"])


# -- the WSDL and its schemas, addressed to wherever the hub is reached -------------------------

def _base() -> str:
    return request.host_url.rstrip("/") + "/inbound/v1/justice"


def wsdl() -> Response:
    if "wsdl" not in {k.lower() for k in request.args}:
        return Response("ask for ?wsdl\n", status=400, content_type="text/plain")
    document = _load(("schemas", WSDL))
    base = _base()
    for node in document.iter("{http://www.w3.org/2001/XMLSchema}import"):
        name = node.get("schemaLocation", "").rsplit("/", 1)[-1]
        node.set("schemaLocation", f"{base}/schemas/{name}")
    for node in document.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
        node.set("location", base)
    return Response(serialize(document), content_type=XML)


def schema(name: str) -> Response:
    if name not in SCHEMA_FILES:
        raise UnknownRoute(f"no schema {name}")
    document = _load(SCHEMA_FILES[name])
    base = _base()
    for node in document.iter("{http://www.w3.org/2001/XMLSchema}import"):
        location = node.get("schemaLocation", "")
        served = location.rsplit("/", 1)[-1]
        if served in SCHEMA_FILES:
            node.set("schemaLocation", f"{base}/schemas/{served}")
    return Response(serialize(document), content_type=XML)


def _load(source: tuple[str, str]) -> etree._Element:
    kind, where = source
    if kind == "local":
        data = LOCAL_SCHEMAS[where].read_bytes()
    else:
        data = resources.files("schemas").joinpath(*where.split("/")).read_bytes()
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True,
                                                  load_dtd=False))


# -- SubmitJudicialDocument -------------------------------------------------------------------

@lru_cache(maxsize=1)
def _inbound_mapping() -> Mapping:
    return Mapping.packaged("justice", "submit_judicial_document.inbound")


def submit() -> Response:
    audit_as("inbound.justice", "agency:justice")
    limit = inbound().max_message_bytes
    raw = b""
    envelope: etree._Element | None = None
    try:
        if request.mimetype != "text/xml":
            raise UnsupportedMediaType("SOAP 1.1 messages are sent as text/xml")
        try:
            raw = request.get_data()
        except RequestEntityTooLarge:
            raise MessageTooLarge(f"the message exceeds {limit} bytes", limit=limit) from None
        # DTDs, entities, processing instructions, depth and size refused before anything reads it.
        envelope = safexml.parse_xml(raw, max_bytes=limit, what="request")
        header = XRoadHeader.from_envelope(envelope)
        if header is None or header.protocol_version != PROTOCOL_VERSION:
            raise MalformedEnvelope("the X-Road 4.0 header (client, service, id,"
                                    " protocolVersion) is required", code="MISSING_XROAD_HEADER")
        authenticate("justice", client=header.client)
        envelope = parse_xml(verify_message("justice", raw, request.headers), what="request",
                             error=MalformedEnvelope)
        body = body_of(envelope, what="request", error=MalformedEnvelope)
        if (local(body.tag) != "SubmitJudicialDocumentRequest"
                or etree.QName(body).namespace != NAMESPACE
                or OPERATION not in header.service.split("/")):
            raise UnknownRoute(f"no operation {body.tag} / {header.service}",
                               code="UNKNOWN_OPERATION")
        validate_xml(xml_schema(XSD), body, what="judicial document")
        data = _inbound_mapping().apply(to_dict(body))
        case = open_document(data)
    except HubError as error:
        return _fault(error, envelope, raw)
    answer = from_dict(etree.Element(f"{{{NAMESPACE}}}SubmitJudicialDocumentResponse",
                                     nsmap={None: NAMESPACE}), NAMESPACE, {
        "caseReference": case["reference"], "post": case["post"], "status": "RECEIVED",
        "receivedAt": case["received_at"]})
    document = soap_envelope(answer, echoed_header(envelope, raw))
    document = inbound().signing.sign_soap(document)
    return Response(serialize(document), content_type=XML)


def open_document(data: dict[str, Any]) -> dict[str, Any]:
    """Open the case of a judicial document once; a repeat returns the case already opened."""
    parts = inbound()
    case_id = str(uuid.uuid5(CASE_NAMESPACE, data["justice_reference"]))
    address = data["addressee"]["address"]
    post = post_for_address(address["country"], address["city"])
    try:
        with parts.store.transaction() as session:
            existing = session.get(CaseRow, case_id)
            if existing is None:
                opened = parts.cases.open(session, SERVICE, data, actor="agency:justice",
                                        post=post.code if post else None, case_id=case_id)
                found = _summary(opened.case)
            else:
                found = _summary(existing)
    except IntegrityError:  # the same document, sent twice at once: the other call opened it
        with parts.store.session() as session:
            found = _summary(session.get(CaseRow, case_id))
    parts.on_change()
    return found


def _summary(case: CaseRow) -> dict[str, Any]:
    return {"reference": case.reference, "post": case.post,
            "received_at": case.created_at.isoformat().replace("+00:00", "Z")}


#: Detail codes of client faults by error class (most specific first); others keep their code.
FAULT_CODES: list[tuple[type[HubError], str]] = [
    (SchemaViolation, "INVALID_REQUEST"),
    (MessageTooLarge, "MESSAGE_TOO_LARGE"),
    (UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (HostileInput, "HOSTILE_INPUT"),
    (SignatureInvalid, "SIGNATURE_INVALID"),
    (UntrustedCertificate, "UNTRUSTED_CERTIFICATE"),
    (ReplayDetected, "REPLAY_DETECTED"),
    (SecurityError, "UNAUTHENTICATED"),
]


def _fault(error: HubError, envelope: etree._Element | None, raw: bytes) -> Response:
    client = not error.transient
    code = error.code
    for cls, name in FAULT_CODES:
        if isinstance(error, cls):
            code = name
            break
    if code == MalformedEnvelope.code:
        code = "MALFORMED_MESSAGE"
    detail = from_dict(etree.Element(f"{{{NAMESPACE}}}BusinessFault", nsmap={None: NAMESPACE}),
                       NAMESPACE, {"code": code, "message": error.message[:500]})
    header = echoed_header(envelope, raw) if envelope is not None and envelope.find(
        f"{{{SOAP_ENV}}}Header") is not None else []
    document = soap_fault("Client" if client else "Server", error.message[:500], detail=detail,
                          header=header)
    status = status_for(error) if client else 500
    # Audited under the hub's own code (the same on every entry point), not the SOAP detail code.
    note_rejection(status, error.code, reason=error.details.get("reason"))
    return Response(serialize(document), status=status, content_type=XML)
