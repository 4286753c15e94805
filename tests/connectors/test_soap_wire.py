"""SOAP on the wire: hardened XML parsing, X-Road 4.0 headers, the echo checks of the connector."""
from __future__ import annotations

import pytest
from lxml import etree

from hub.testing.conformance import NODE_ID, envelope_for
from connectors.dgsn.simulator import DgsnSimulator
from connectors.base import ConnectorDeps
from connectors.registry import build_connector, load_agencies
from connectors.xml import (XROAD, XRoadHeader, parse_xml, request_hash, serialize,
                            soap_envelope, validate_xml, xml_schema)
from hub.errors import BadAgencyReply, HostileInput, SchemaViolation

from hub.testing.samples import person

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>
<l>&b;</l>"""


@pytest.mark.parametrize("document", [XXE, LAUGHS, b"<!doctype html><html/>"])
def test_doctype_and_entities_are_hostile(document: bytes) -> None:
    with pytest.raises(HostileInput):
        parse_xml(document)


def test_unparseable_xml_is_the_callers_error_class() -> None:
    with pytest.raises(BadAgencyReply):
        parse_xml(b"<a><b></a>")
    with pytest.raises(SchemaViolation):
        parse_xml(b"<a>", error=SchemaViolation)


def test_xroad_header_round_trip_and_validates_against_the_protocol_schema() -> None:
    header = XRoadHeader(client=NODE_ID, service="MA/GOV/DGSN/IDENTITY/verifyIdentity/v1",
                         id="5f0c", user_id="ES-MAD", issue="RR-2026-ABCDEF1")
    elements = header.elements()
    assert [etree.QName(e).localname for e in elements] == [
        "client", "service", "id", "userId", "issue", "protocolVersion"]
    schema = xml_schema("v1/xroad/xroad.xsd")
    for element in elements:
        validate_xml(schema, element, what="header")
    assert elements[0].get("{http://x-road.eu/xsd/identifiers}objectType") == "SUBSYSTEM"
    assert elements[1].get("{http://x-road.eu/xsd/identifiers}objectType") == "SERVICE"
    parsed = XRoadHeader.from_envelope(parse_xml(serialize(soap_envelope(None, elements))))
    assert parsed == header


def test_simulator_echoes_the_header_in_order_with_the_request_hash() -> None:
    with DgsnSimulator() as simulator:
        config = load_agencies()["dgsn"].with_overrides(base_url=simulator.url)
        with build_connector(config, ConnectorDeps(node_id=NODE_ID)) as connector:
            envelope = envelope_for("dgsn", "verify_identity", {"person": person()})
            connector.send(envelope)
            sent = simulator.requests[0].body.encode("utf-8")
            response = simulator.app.test_client().post("/dgsn/soap", data=sent)
    answer = parse_xml(response.get_data())
    header = answer.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    names = [etree.QName(e).localname for e in header]
    assert names == ["client", "service", "id", "userId", "issue", "protocolVersion",
                     "requestHash"]
    digest = header.find(f"{{{XROAD}}}requestHash")
    assert digest.text == request_hash(sent)
    assert digest.get("algorithmId") == "http://www.w3.org/2001/04/xmlenc#sha512"
    assert XRoadHeader.from_envelope(answer).id == str(envelope.id)


class _WrongEcho(DgsnSimulator):
    """Answers for another message id: the connector must not take it."""

    def echoed_header(self, request_envelope, raw):  # type: ignore[no-untyped-def]
        elements = super().echoed_header(request_envelope, raw)
        for element in elements:
            if etree.QName(element).localname == "id":
                element.text = "another-message"
        return elements


class _NoHash(DgsnSimulator):
    def echoed_header(self, request_envelope, raw):  # type: ignore[no-untyped-def]
        return super().echoed_header(request_envelope, raw)[:-1]


@pytest.mark.parametrize("simulator_class", [_WrongEcho, _NoHash])
def test_connector_refuses_an_answer_to_another_request(simulator_class: type) -> None:
    with simulator_class() as simulator:
        config = load_agencies()["dgsn"].with_overrides(base_url=simulator.url)
        with build_connector(config, ConnectorDeps(node_id=NODE_ID)) as connector:
            with pytest.raises(BadAgencyReply):
                connector.send(envelope_for("dgsn", "verify_identity", {"person": person()}))


def test_request_without_xroad_header_is_a_client_fault() -> None:
    with DgsnSimulator() as simulator:
        body = etree.Element("{urn:ma:gov:dgsn:v1}VerifyIdentityRequest")
        response = simulator.app.test_client().post("/dgsn/soap",
                                                    data=serialize(soap_envelope(body)))
    assert response.status_code == 500
    fault = parse_xml(response.get_data())
    assert fault.findtext(".//faultcode") == "soapenv:Client"
    assert b"MISSING_XROAD_HEADER" in response.get_data()


def test_hostile_request_to_a_simulator_is_refused() -> None:
    with DgsnSimulator() as simulator:
        response = simulator.app.test_client().post("/dgsn/soap", data=XXE)
    assert response.status_code == 500
    assert b"DOCTYPE" in response.get_data()
    assert simulator.received() == []
