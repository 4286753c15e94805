"""Mutual TLS with per-agency pinning, end to end: the hub's real connectors reach a REST agency
(NARSA) and a SOAP agency (DGSN) whose simulators serve HTTPS with the development PKI, require a
client certificate from our CA and accept only the hub's; the hub checks each agency's server
key against its pin before sending a byte."""
from __future__ import annotations

import ssl
from dataclasses import replace

import pytest
import requests

from hub.delivery.deadletters import list_dead_letters
from hub.demo.scenarios import licence_request, sample_request
from hub.testing.plugin import wait_for
from security.keys import KeyStore
from security.pki import init_pki
from security.tls import client_context, pinned_session

@pytest.fixture
def world(agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub(tls=("narsa", "dgsn"))


def test_rest_and_soap_agencies_are_reached_over_pinned_mutual_tls(world) -> None:  # type: ignore[no-untyped-def]
    for agency in ("narsa", "dgsn"):
        assert world.simulators[agency].url.startswith("https://")
        assert world.hub.agencies.get(agency).base_url.startswith("https://")
    licence = world.hub.submit("driving_licence_authentication", licence_request("authentic"))
    world.wait_for_status(licence.case.reference, "verified")
    registration = world.hub.submit("consular_registration_new",
                                    sample_request("consular_registration_new"))
    wait_for(lambda: any(e.agency == "dgsn" and e.status == "answered"
                         for e in world.exchanges(registration.case.reference).values()),
             what="DGSN's answer over mutual TLS")
    for agency in ("narsa", "dgsn"):
        simulator = world.simulators[agency]
        assert simulator.received(), f"{agency} was not called"
        assert set(simulator.peers) == {"hub"}  # every call came with the hub's certificate
    assert list_dead_letters(world.hub.store) == []


def test_a_server_key_that_does_not_match_the_pin_is_refused_before_sending(agency_hub) -> None:  # type: ignore[no-untyped-def]
    world = agency_hub(tls=("narsa",), env={"HUB_AGENCY_NARSA_TLS_PIN": "A" * 43 + "="})
    reference = world.hub.submit("driving_licence_authentication",
                                 licence_request("authentic")).case.reference
    [dead] = wait_for(lambda: list_dead_letters(world.hub.store), what="the request parked")
    assert dead.correlation_id == reference
    assert dead.error_code == "security.certificate" and "does not match its pin" in dead.reason
    assert world.simulators["narsa"].received() == []  # nothing was sent to the impostor


def test_callers_without_the_hubs_client_certificate_are_refused(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    narsa = world.simulators["narsa"]
    url = f"{narsa.url}/api/v1/licence-verifications"
    store = KeyStore.load(world.keys_dir, own=[])
    pin = {store.tls_pin("narsa")}

    # No client certificate at all: the handshake fails.
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cafile=str(store.layout.ca_cert))
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        pinned_session("narsa", pin, anonymous).post(url, data=b"{}", timeout=10)

    # A client certificate from another CA, with the hub's name: the handshake fails too.
    foreign_dir = tmp_path / "foreign" / "keys"
    init_pki(foreign_dir, ["hub"])
    foreign = KeyStore.load(foreign_dir, own=[]).tls_files("hub", "tls-client")
    context = client_context(replace(foreign, ca=store.layout.ca_cert, crl=store.layout.crl))
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        pinned_session("narsa", pin, context).post(url, data=b"{}", timeout=10)

    # Our CA's certificate of another party (DGSN): through the handshake, then refused.
    dgsn = client_context(store.tls_files("dgsn", "tls-client"))
    response = pinned_session("narsa", pin, dgsn).post(url, data=b"{}", timeout=10)
    assert response.status_code == 403
    assert narsa.received() == []
    assert narsa.peers == ["dgsn"]


ALL = ("interior", "dgsn", "justice", "health", "narsa")


def test_every_agency_both_ways_over_mutual_tls(agency_hub) -> None:  # type: ignore[no-untyped-def]
    """Hub -> Health, DGSN, Interior, NARSA, Justice and Health -> hub (callback), Justice -> hub
    (document): every connection mutually authenticated, every certificate the right party's."""
    from hub.demo.scenarios import repatriation_request

    world = agency_hub(tls=ALL)
    assert world.server.url.startswith("https://")
    repatriation = world.hub.submit("repatriation_of_remains", repatriation_request())
    world.wait_for_status(repatriation.case.reference, "agencies_cleared")
    assert [c["status"] for c in world.simulators["health"].callbacks] == [202]
    answer = world.simulators["justice"].send_document(world.server.url, {
        "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
        "courtCaseNumber": "2026/1201/455",
        "document": {"type": "SUMMONS", "title": "Convocation", "issuedOn": "2026-11-20"},
        "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                      "address": {"line1": "12 calle Mayor", "city": "Madrid", "country": "ES"}}})
    assert answer["status"] == "RECEIVED"
    for agency in ("interior", "dgsn", "health"):
        assert set(world.simulators[agency].peers) == {"hub"}, agency


def test_the_hub_refuses_an_inbound_call_with_another_partys_certificate(agency_hub) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from hub.store.models import AuditRow

    world = agency_hub(tls=ALL)
    store = KeyStore.load(world.keys_dir, own=[])
    url = f"{world.server.url}/inbound/v1/health/clearances/some-exchange"
    headers = {"Content-Type": "application/json", "X-Road-Client": "MA/GOV/SANTE/CLEARANCES",
               "X-Road-Id": "x-1", "Authorization": f"Bearer {world.tokens['health']}"}
    # DGSN's certificate (our CA, in date) carrying Health's credential: refused, and audited.
    dgsn = pinned_session("hub", {store.tls_pin("hub")},
                          client_context(store.tls_files("dgsn", "tls-client")))
    response = dgsn.post(url, data=b"{}", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "inbound.wrong_client_certificate"
    with world.hub.store.session() as session:
        [row] = session.scalars(select(AuditRow).where(AuditRow.action == "rejected")).all()
    assert (row.component, row.outcome) == ("inbound.health", "inbound.wrong_client_certificate")
    # No certificate at all: not even the handshake.
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cafile=str(store.layout.ca_cert))
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        pinned_session("hub", {store.tls_pin("hub")}, anonymous).post(url, data=b"{}",
                                                                     timeout=10)
