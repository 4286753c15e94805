"""Base of the SOAP agency simulators (Interior, DGSN, Justice): a SOAP 1.1 endpoint that checks
the X-Road header and the XSD, answers from the request, and echoes the header as X-Road 4.0 says.

A subclass names its XSD namespace and one handler per request element::

    class DgsnSimulator(SoapSimulator):
        agency = "dgsn"
        namespace = "urn:ma:gov:dgsn:v1"
        handlers = {"VerifyIdentityRequest": "verify_identity"}

        def verify_identity(self, body: dict) -> tuple[str, dict]:
            return "VerifyIdentityResponse", {"checkId": ..., "result": "CONFIRMED", ...}

A handler gets the request body as a dict (local names; repeated elements as lists) and returns the
response element's name and content in XSD order, or raises `BusinessFault` (sent as a
``soapenv:Client`` fault whose detail carries the agency's code). Requests without a complete
X-Road header (protocol 4.0) or failing the XSD get a ``soapenv:Client`` fault too.

The response echoes the request's X-Road header elements in their order and adds ``requestHash``
(base64 SHA-512 of the request message as received). The idempotency key is the X-Road ``id``:
a repeat gets the first answer back (its echoed header rebuilt for the repeat), no second effect.
"""
from __future__ import annotations

import hashlib
from typing import Any

from flask import Flask, Response, g, request
from lxml import etree

from connectors.simulator import Fault, Outcome, Simulator
from connectors.xml import (PROTOCOL_VERSION, SOAP_ENV, XRoadHeader, body_of, echoed_header,
                            from_dict, local, parse_xml, serialize, soap_envelope, soap_fault,
                            to_dict, validate_xml, xml_schema)
from hub.errors import HubError, SchemaViolation

XML = "text/xml; charset=utf-8"


class BusinessFault(Exception):
    """Raised by a handler: the agency refuses the request (a ``soapenv:Client`` fault)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SoapSimulator(Simulator):
    namespace: str = ""
    #: Request element local name -> name of the handler method.
    handlers: dict[str, str] = {}
    path: str = "/soap"

    @property
    def xsd(self) -> str:
        return f"v1/agencies/{self.agency}.xsd"

    def routes(self, app: Flask) -> None:
        self._schema = xml_schema(self.xsd)

        @app.post(self.path)
        def soap() -> Response:
            raw = request.get_data(cache=True)
            envelope = header = None
            try:
                envelope = parse_xml(raw, what="request", error=SchemaViolation)
                header = XRoadHeader.from_envelope(envelope)
                body = body_of(envelope, what="request", error=SchemaViolation)
                fingerprint = hashlib.sha256(etree.tostring(body, method="c14n")).hexdigest()
            except HubError as exc:
                return self._xml(soap_fault("Client", exc.message), 500)
            if self.signing is not None:
                try:
                    self.signing.verify_soap(raw, "hub", signed_id=header is not None)
                except HubError as exc:
                    return self._xml(soap_fault("Client", exc.message, detail=self._detail(
                        "SIGNATURE_INVALID", exc.message)), 500)
            key = header.id if header is not None else None
            response = self.answer(key, lambda: self._decide(envelope, header),
                                   fingerprint=fingerprint,
                                   client=header.client if header is not None else None)
            return self._with_echo(response, envelope, raw)

    # -- deciding ---------------------------------------------------------------------------------

    def _decide(self, envelope: etree._Element, header: XRoadHeader | None) -> Outcome:
        if header is None or header.protocol_version != PROTOCOL_VERSION:
            return self._client_fault("MISSING_XROAD_HEADER",
                                      "client, service, id and protocolVersion 4.0 are required")
        body = body_of(envelope, what="request")
        handler = self.handlers.get(local(body.tag))
        if handler is None or etree.QName(body).namespace != self.namespace:
            return self._client_fault("UNKNOWN_OPERATION", f"no operation for {body.tag}")
        try:
            validate_xml(self._schema, body, what="request")
        except SchemaViolation as exc:
            return self._client_fault("INVALID_REQUEST", exc.message)
        try:
            name, content = getattr(self, handler)(to_dict(body))
        except BusinessFault as fault:
            return self._client_fault(fault.code, fault.message)
        element = from_dict(etree.Element(f"{{{self.namespace}}}{name}",
                                          nsmap={None: self.namespace}), self.namespace, content)
        return Outcome(200, serialize(soap_envelope(element)), content_type=XML)

    def _detail(self, code: str, message: str) -> etree._Element:
        return from_dict(etree.Element(f"{{{self.namespace}}}BusinessFault"), self.namespace,
                         {"code": code, "message": message[:500]})

    def _client_fault(self, code: str, message: str) -> Outcome:
        detail = self._detail(code, message)
        return Outcome(500, serialize(soap_fault("Client", message[:500], detail=detail)),
                       content_type=XML)

    # -- the X-Road echo ---------------------------------------------------------------------------

    def _with_echo(self, response: Response, request_envelope: etree._Element | None,
                   raw: bytes) -> Response:
        """Put the request's X-Road header (same order) and its requestHash on an XML answer."""
        if request_envelope is None or "xml" not in (response.content_type or ""):
            return response
        try:
            answer = parse_xml(response.get_data(), what="answer")
        except HubError:
            return response  # a malformed-answer fault is sent as it is
        header = answer.find(f"{{{SOAP_ENV}}}Header")
        if header is None:
            return response
        for element in self.echoed_header(request_envelope, raw):
            header.append(element)
        response.set_data(serialize(self.sign_answer(answer)))
        return self.replay_or_remember(response)

    def echoed_header(self, request_envelope: etree._Element, raw: bytes) -> list[etree._Element]:
        return echoed_header(request_envelope, raw)

    def sign_answer(self, answer: etree._Element) -> etree._Element:
        """The answer as sent: signed when the simulator has keys; the ``bad_signature`` fault
        alters the Body after signing."""
        if self.signing is None:
            return answer
        signed = self.signing.sign_soap(answer, now=g.get("signed_at"))
        if g.get("wrapped"):
            return _wrapped(signed)
        if g.get("bad_signature"):
            body = signed.find(f"{{{SOAP_ENV}}}Body")
            for node in body.iter():
                if isinstance(node.tag, str) and node.text and node.text.strip():
                    node.text = node.text + "0"
                    break
        return signed

    # -- faults -----------------------------------------------------------------------------------

    def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "soap_fault":
            return self._xml(soap_fault("Server", "injected server fault"), 500)
        if fault.kind == "malformed":
            return Response(b"<?xml version='1.0'?><soapenv:Envelope xmlns:soapenv=",
                            status=200, content_type=XML)
        return super().fault_response(fault)

    def invalid_response(self) -> Response:
        # A well-formed answer whose body element the agency's XSD does not know.
        element = etree.Element(f"{{{self.namespace}}}UnexpectedAnswer")
        etree.SubElement(element, f"{{{self.namespace}}}result").text = "MAYBE"
        return self._xml(soap_envelope(element), 200)

    @staticmethod
    def _xml(envelope: etree._Element, status: int) -> Response:
        return Response(serialize(envelope), status=status, content_type=XML)


def _wrapped(signed: etree._Element) -> etree._Element:
    """Signature wrapping (XSW): the signed Body moved into a header wrapper, where every signed
    byte still verifies, and a forged Body (first text changed, no Id) where a reader looks."""
    import copy

    body = signed.find(f"{{{SOAP_ENV}}}Body")
    forged = copy.deepcopy(body)
    for name in list(forged.attrib):
        if etree.QName(name).localname == "Id":
            del forged.attrib[name]
    for node in forged.iter():
        if isinstance(node.tag, str) and node.text and node.text.strip():
            node.text = "FORGED"
            break
    wrapper = etree.SubElement(signed.find(f"{{{SOAP_ENV}}}Header"), "{urn:attacker}Wrapper")
    signed.remove(body)
    wrapper.append(body)
    signed.append(forged)
    return signed


def response_body(answer: Response | bytes) -> dict[str, Any]:
    """The body of a SOAP answer as a dict (tests and tools)."""
    data = answer.get_data() if isinstance(answer, Response) else answer
    return to_dict(body_of(parse_xml(data), what="answer"))
