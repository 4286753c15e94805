"""Signed exchanges end to end on RabbitMQ and PostgreSQL: with a PKI the hub and every agency
sign what they send (XML-DSig for Interior, DGSN, Justice; JWS for Health and NARSA, Health's
callbacks included) and verify what they receive."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from hub.cases.book import find_case
from hub.demo.scenarios import licence_request, repatriation_request

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def world(rabbitmq_url, postgres_url, agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub(broker_url=rabbitmq_url, database_url=postgres_url)


def test_every_agency_signed_both_ways(world) -> None:  # type: ignore[no-untyped-def]
    assert world.hub.signing is not None
    repatriation = world.hub.submit("repatriation_of_remains", repatriation_request())
    licence = world.hub.submit("driving_licence_authentication", licence_request("authentic"))
    world.wait_for_status(repatriation.case.reference, "agencies_cleared")
    world.wait_for_status(licence.case.reference, "verified")
    for agency in ("dgsn", "interior"):
        assert all("ds:Signature" in r.body or "Signature" in r.body
                   for r in world.simulators[agency].received())
    assert [c["status"] for c in world.simulators["health"].callbacks] == [202]

    justice = world.simulators["justice"]
    answer = justice.send_document(world.server.url, {
        "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
        "courtCaseNumber": "2026/1201/455",
        "document": {"type": "SUMMONS", "title": "Convocation", "issuedOn": "2026-11-20"},
        "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                      "address": {"line1": "12 calle Mayor", "city": "Madrid", "country": "ES"}}})
    reference = answer["caseReference"]
    world.wait_for_status(reference, "sent_to_post")
    with world.hub.store.transaction() as session:
        world.hub.cases.transition(session, find_case(session, reference), "served_in_person",
                                   role="staff", actor="staff:ES-MAD", updates={"delivery": {
                                       "outcome": "served_in_person", "date": "2026-12-01"}})
    world.hub.relay.wake()
    world.wait_for_status(reference, "certificate_returned")


def test_unsigned_health_callback_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    world.simulators["health"].options["callback_url"] = None  # the test calls back itself
    opened = world.hub.submit("repatriation_of_remains", repatriation_request())
    world.wait_for_status(opened.case.reference, "under_review")
    exchange = None
    for _ in range(200):
        exchange = world.exchanges(opened.case.reference).get("sanitary_clearance")
        if exchange is not None and exchange.status == "acknowledged":
            break
        import time
        time.sleep(0.05)
    decision = {"clearanceId": "SC-2026-000001", "requestId": exchange.id, "result": "CLEARED",
                "decidedAt": "2026-11-29T10:00:00Z"}
    response = requests.post(
        f"{world.server.url}/inbound/v1/health/clearances/{exchange.id}",
        data=json.dumps(decision), timeout=5,
        headers={"Content-Type": "application/json", "X-Road-Client": "MA/GOV/SANTE/CLEARANCES",
                 "X-Road-Id": str(uuid.uuid4()),
                 "Authorization": f"Bearer {world.tokens['health']}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "security.signature"
