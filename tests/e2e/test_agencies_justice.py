"""Judicial documents end to end on RabbitMQ and PostgreSQL: Justice sends a document (SOAP, Zeep
client of the hub's WSDL), the hub opens a case at the post covering the address, the post
records the delivery, and the hub returns the certificate to Justice (SOAP, Justice connector)."""
from __future__ import annotations

import pytest

from hub.cases.book import find_case

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def _document(reference: str | None = None, city: str = "Madrid") -> dict:
    found = {
        "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
        "courtCaseNumber": "2026/1201/455",
        "document": {"type": "SUMMONS", "title": "Convocation", "issuedOn": "2026-11-20"},
        "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                      "address": {"line1": "12 calle Mayor", "city": city, "country": "ES"}},
    }
    if reference:
        found["justiceReference"] = reference
    return found


def _record_delivery(world, reference: str, status: str, outcome: str) -> None:  # type: ignore[no-untyped-def]
    hub = world.hub
    with hub.store.transaction() as session:
        case = find_case(session, reference)
        hub.cases.transition(session, case, status, role="staff", actor="staff:ES-MAD",
                             updates={"delivery": {"outcome": outcome, "date": "2026-12-01",
                                                   "received_by": "Sara Alaoui"}})
    hub.relay.wake()


@pytest.fixture
def world(rabbitmq_url, postgres_url, agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub(broker_url=rabbitmq_url, database_url=postgres_url)


def test_document_served_and_certificate_returned(world) -> None:  # type: ignore[no-untyped-def]
    justice = world.simulators["justice"]
    answer = justice.send_document(world.server.url, _document())
    reference = answer["caseReference"]
    world.wait_for_status(reference, "sent_to_post")
    with world.hub.store.transaction() as session:
        world.hub.cases.transition(session, find_case(session, reference), "addressee_summoned",
                                   role="staff", actor="staff:ES-MAD")
    _record_delivery(world, reference, "served_in_person", "served_in_person")
    case = world.wait_for_status(reference, "certificate_returned")
    certificate = world.exchanges(reference)["delivery_certificate"]
    assert (certificate.status, certificate.outcome) == ("answered", "received")
    assert certificate.reply["agency_reference"].startswith("AC-")
    assert case.data["delivery"]["outcome"] == "served_in_person"
    # Justice saw the certificate once, for the document it sent.
    seen = justice.received(certificate.id)
    assert len(seen) == 1 and answer["justiceReference"] in seen[0].body
    assert justice.effect_count(certificate.id) == 1


def test_refused_then_deemed_served_after_ten_days(world) -> None:  # type: ignore[no-untyped-def]
    answer = world.simulators["justice"].send_document(world.server.url, _document())
    reference = answer["caseReference"]
    world.wait_for_status(reference, "sent_to_post")
    _record_delivery(world, reference, "refused", "refused")
    world.wait_for_status(reference, "refused")
    assert "delivery_certificate" not in world.exchanges(reference)  # not before the tenth day
    _record_delivery(world, reference, "deemed_served", "deemed_served")
    world.wait_for_status(reference, "certificate_returned")
    assert "DEEMED_SERVED" in world.simulators["justice"].received(
        world.exchanges(reference)["delivery_certificate"].id)[0].body


def test_certificate_for_an_unknown_document_is_rejected(world) -> None:  # type: ignore[no-untyped-def]
    justice = world.simulators["justice"]
    answer = justice.send_document(world.server.url, _document())
    justice.sent.clear()  # Justice no longer knows the reference (e.g. a register mix-up)
    reference = answer["caseReference"]
    world.wait_for_status(reference, "sent_to_post")
    _record_delivery(world, reference, "not_found", "not_found")
    world.wait_for_status(reference, "certificate_rejected")
    assert world.exchanges(reference)["delivery_certificate"].outcome == "rejected"


def test_justice_outage_is_retried_without_a_second_effect(world) -> None:  # type: ignore[no-untyped-def]
    justice = world.simulators["justice"]
    answer = justice.send_document(world.server.url, _document())
    reference = answer["caseReference"]
    world.wait_for_status(reference, "sent_to_post")
    justice.inject("soap_fault", count=2)
    _record_delivery(world, reference, "served_at_home", "served_at_home")
    world.wait_for_status(reference, "certificate_returned")
    certificate = world.exchanges(reference)["delivery_certificate"]
    assert certificate.attempts == 3
    assert justice.effect_count(certificate.id) == 1
