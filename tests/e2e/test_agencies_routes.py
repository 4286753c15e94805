"""Every agency operation through a route, end to end on RabbitMQ and PostgreSQL.

A test-only service (``agency_routes/agency_operations.yaml``) runs the repatriation flow's
exchanges through the real connectors and simulators: DGSN identity and Health clearance in
parallel (Health answering by callback to the hub's web front), then Interior's burial permit,
then DGSN's notice to the border post. The real services' routes are in
test_agencies_services.py and test_agencies_justice.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.testing.samples import burial, certificates, deceased, family_contact, transport

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

ROUTES = Path(__file__).parent / "agency_routes"


def repatriation(**changes) -> dict:  # type: ignore[no-untyped-def]
    data = {"deceased": deceased(), "certificates": certificates(), "transport": transport(),
            "burial": burial(), "family_contact": family_contact()}
    data.update(changes)
    return data


@pytest.fixture
def world(rabbitmq_url, postgres_url, agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub(broker_url=rabbitmq_url, database_url=postgres_url,
                      extra_definitions=[ROUTES])


CASES = [
    ("all agree", repatriation(), "checked",
     {"identity": "confirmed", "clearance": "cleared", "burial": "granted",
      "border": "cleared"}),
    ("unknown identity", repatriation(deceased=deceased("Z12345")), "refused",
     {"identity": "not_found"}),
    ("contagious", repatriation(deceased=deceased(cause="Ebola virus disease")), "refused",
     {"clearance": "refused"}),
    ("no non-contagion certificate", repatriation(certificates=certificates(False)),
     "more_information", {"clearance": "more_information"}),
    ("commune abroad", repatriation(burial=burial("Lyon")), "refused",
     {"identity": "confirmed", "clearance": "cleared", "burial": "refused"}),
    ("not an entry point", repatriation(transport=transport("LHR")), "refused",
     {"burial": "granted", "border": "refused"}),
]


@pytest.mark.parametrize("name,data,status,outcomes", CASES, ids=[c[0] for c in CASES])
def test_route_through_every_connector(world, name, data, status, outcomes) -> None:  # type: ignore[no-untyped-def]
    opened = world.hub.submit("agency_operations", data)
    world.wait_for_status(opened.case.reference, status)
    exchanges = world.exchanges(opened.case.reference)
    for step, outcome in outcomes.items():
        assert exchanges[step].outcome == outcome, step


def test_what_each_agency_saw(world) -> None:  # type: ignore[no-untyped-def]
    opened = world.hub.submit("agency_operations", repatriation())
    world.wait_for_status(opened.case.reference, "checked")
    exchanges = world.exchanges(opened.case.reference)
    dgsn, health = world.simulators["dgsn"], world.simulators["health"]
    # Data minimisation: the cause of death reaches Health only.
    for step in ("identity", "border"):
        (seen,) = dgsn.received(exchanges[step].id)
        assert "cardiac" not in seen.body.lower()
        assert opened.case.reference in seen.body  # X-Road issue: the case reference
    (seen,) = health.received(exchanges["clearance"].id)
    assert "cardiac arrest" in seen.body
    assert [c["status"] for c in health.callbacks] == [202]
    for step, row in exchanges.items():
        agency = world.simulators[row.agency]
        assert agency.effect_count(row.id) == 1, step


def test_outages_are_retried_with_one_effect(world) -> None:  # type: ignore[no-untyped-def]
    world.simulators["interior"].inject("soap_fault", count=2)
    world.simulators["health"].inject("status", status=503, count=1)
    world.simulators["dgsn"].inject("reset", count=1)
    opened = world.hub.submit("agency_operations", repatriation())
    world.wait_for_status(opened.case.reference, "checked")
    exchanges = world.exchanges(opened.case.reference)
    assert exchanges["burial"].attempts == 3
    for row in exchanges.values():
        assert world.simulators[row.agency].effect_count(row.id) == 1


def test_duplicate_health_callback_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    health = world.simulators["health"]
    health.inject("duplicate_callback", count=1)
    opened = world.hub.submit("agency_operations", repatriation())
    world.wait_for_status(opened.case.reference, "checked")
    clearance = world.exchanges(opened.case.reference)["clearance"]
    statuses = sorted(c["status"] for c in health.callbacks
                      if c["exchange_id"] == clearance.id)
    assert statuses in ([202], [202, 409])  # the second may still be on its way
    assert clearance.outcome == "cleared"
