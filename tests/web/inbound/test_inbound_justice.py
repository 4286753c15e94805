"""Justice -> hub: judicial documents over SOAP, through the WSDL the hub serves.

Zeep is the client of the hub's own WSDL (the Justice simulator's `send_document`, and directly
here), on the embedded broker and SQLite with the hub's web front on loopback.
"""
from __future__ import annotations

import uuid

import pytest
import requests
import zeep

from connectors.justice.simulator import _Signatures
from connectors.signing import MessageSigning
from lxml import etree
from sqlalchemy import func, select

from connectors.soap import LocalTransport
from connectors.xml import XROAD, XRoadHeader, parse_xml, serialize, soap_envelope
from hub.store.models import CaseRow


def document(city: str = "Madrid", country: str = "ES", **changes) -> dict:  # type: ignore[no-untyped-def]
    return {
        "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
        "courtCaseNumber": "2026/1201/455",
        "document": {"type": "SUMMONS", "title": "Convocation a l'audience",
                     "issuedOn": "2026-11-20", "hearingDate": "2027-01-15"},
        "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                      "birthDate": "1990-02-03",
                      "address": {"line1": "12 calle Mayor", "postalCode": "28013",
                                  "city": city, "country": country}},
        **changes,
    }


@pytest.fixture
def world(agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub()


def test_zeep_client_of_the_hub_wsdl_opens_a_case_at_the_post(world) -> None:  # type: ignore[no-untyped-def]
    justice = world.simulators["justice"]
    answer = justice.send_document(world.server.url, document(city="Girona"))
    assert answer["status"] == "RECEIVED"
    assert answer["post"] == "ES-GIR"
    case = world.wait_for_status(answer["caseReference"], "sent_to_post")
    assert case.service == "judicial_documents"
    assert case.post == "ES-GIR"
    assert case.data["document"]["type"] == "summons"
    assert case.data["addressee"]["address"]["city"] == "Girona"
    assert justice.sent[answer["justiceReference"]] == answer["caseReference"]


def test_city_without_post_goes_to_the_country_general_consulate(world) -> None:  # type: ignore[no-untyped-def]
    answer = world.simulators["justice"].send_document(world.server.url, document(city="Toledo"))
    assert answer["post"] == "ES-MAD"


def test_same_document_twice_opens_one_case(world) -> None:  # type: ignore[no-untyped-def]
    justice = world.simulators["justice"]
    first = justice.send_document(world.server.url, document())
    again = justice.send_document(world.server.url, {
        **document(), "justiceReference": first["justiceReference"]})
    assert again["caseReference"] == first["caseReference"]
    with world.hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseRow)) == 1


def _client(world, token: str | None):  # type: ignore[no-untyped-def]
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    transport = LocalTransport(session=session, timeout=5, allowed=(world.server.url,))
    # Signed with Justice's own key, as the ministry (and its simulator) would.
    signing = MessageSigning.load(world.keys_dir, "justice")
    return zeep.Client(f"{world.server.url}/inbound/v1/justice?wsdl", transport=transport,
                       wsse=_Signatures(signing))


def _header(client_id: str = "MA/GOV/JUSTICE/NOTIFICATIONS") -> list:
    return XRoadHeader(client=client_id,
                       service="MA/GOV/MAEC/ECONSULAT-HUB/submitJudicialDocument/v1",
                       id=str(uuid.uuid4()), issue="MJ-2026-777777").elements()


def test_invalid_document_is_a_client_fault_with_a_code(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world, world.tokens["justice"])
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.SubmitJudicialDocument(
            _soapheaders=_header(), justiceReference="MJ-2026-777777",
            **document(country="Spain"))
    assert caught.value.code.endswith("Client")
    assert b"INVALID_REQUEST" in etree.tostring(caught.value.detail)


@pytest.mark.parametrize("token,client_id", [
    (None, "MA/GOV/JUSTICE/NOTIFICATIONS"),
    ("wrong", "MA/GOV/JUSTICE/NOTIFICATIONS"),
    ("right", "MA/GOV/OTHER/MEMBER"),
])
def test_unauthenticated_callers_are_refused(world, token, client_id) -> None:  # type: ignore[no-untyped-def]
    client = _client(world, world.tokens["justice"] if token == "right" else token)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.SubmitJudicialDocument(
            _soapheaders=_header(client_id), justiceReference="MJ-2026-777777", **document())
    assert b"UNAUTHENTICATED" in etree.tostring(caught.value.detail)
    with world.hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseRow)) == 0


def test_hostile_xml_and_missing_header_are_refused(world) -> None:  # type: ignore[no-untyped-def]
    url = f"{world.server.url}/inbound/v1/justice"
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    response = requests.post(url, data=hostile, headers={"Content-Type": "text/xml"}, timeout=5)
    assert response.status_code == 400  # a client fault, never a server error
    assert parse_xml(response.content).findtext(".//faultcode") == "soapenv:Client"
    assert b"HOSTILE_INPUT" in response.content
    bare = serialize(soap_envelope(etree.Element(
        "{urn:ma:gov:maec:econsulat:judicial:v1}SubmitJudicialDocumentRequest")))
    response = requests.post(url, data=bare, headers={"Content-Type": "text/xml"}, timeout=5)
    assert b"MISSING_XROAD_HEADER" in response.content


def test_answer_echoes_the_xroad_header_with_the_request_hash(world) -> None:  # type: ignore[no-untyped-def]
    client = _client(world, world.tokens["justice"])
    header = _header()
    message = client.create_message(client.service, "SubmitJudicialDocument",
                                    _soapheaders=header, justiceReference="MJ-2026-123123",
                                    **document())
    raw = serialize(message)
    response = requests.post(f"{world.server.url}/inbound/v1/justice", data=raw, timeout=5,
                             headers={"Content-Type": "text/xml",
                                      "Authorization": f"Bearer {world.tokens['justice']}"})
    assert response.status_code == 200
    answer = parse_xml(response.content)
    echoed = answer.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    names = [etree.QName(e).localname for e in echoed if etree.QName(e).namespace == XROAD]
    assert names == ["client", "service", "id", "issue", "protocolVersion", "requestHash"]
    assert echoed.find("{*}Security/{http://www.w3.org/2000/09/xmldsig#}Signature") is not None
    from connectors.xml import request_hash

    assert echoed.find(f"{{{XROAD}}}requestHash").text == request_hash(raw)


def test_wsdl_is_addressed_to_the_hub(world) -> None:  # type: ignore[no-untyped-def]
    wsdl = requests.get(f"{world.server.url}/inbound/v1/justice?wsdl", timeout=5)
    assert wsdl.status_code == 200
    assert f'location="{world.server.url}/inbound/v1/justice"'.encode() in wsdl.content
    assert b"http://x-road.eu/xsd/identifiers.xsd" not in requests.get(
        f"{world.server.url}/inbound/v1/justice/schemas/xroad.xsd", timeout=5).content
