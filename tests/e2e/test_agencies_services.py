"""Every consular service's route through the agency connectors, end to end on RabbitMQ and
PostgreSQL, with the service definitions and sample requests of `hub.demo.scenarios`.

Each case's data is chosen from the simulators' documented rules (docs/exchanges.md), so each
test knows every agency's answer in advance. Judicial documents (Justice -> hub -> Justice) are
in test_agencies_justice.py.
"""
from __future__ import annotations

import pytest

from connectors.dgsn import register as dgsn_register
from hub.cases.book import find_case
from hub.demo.scenarios import licence_request, repatriation_request, sample_request

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def world(rabbitmq_url, postgres_url, agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub(broker_url=rabbitmq_url, database_url=postgres_url)


def _outcomes(world, reference: str) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    return {step: row.outcome for step, row in world.exchanges(reference).items()}


REPATRIATION = [
    ("cleared by all", {}, "agencies_cleared",
     {"sanitary_clearance": "cleared", "border_notice": "cleared", "burial_permit": "granted"}),
    ("contagious disease", {"cause": "cholera"}, "rejected",
     {"sanitary_clearance": "refused"}),
    ("no non-contagion certificate", {"non_contagion": False}, "more_information_requested",
     {"sanitary_clearance": "more_information"}),
    ("identity mismatch", {"cnie": "BK456780"}, "more_information_requested",
     {"border_notice": "identity_mismatch"}),
    ("not an entry point", {"border_post": "Heathrow"}, "rejected",
     {"border_notice": "refused"}),
    ("commune unknown", {"commune": "Springfield"}, "rejected",
     {"sanitary_clearance": "cleared", "border_notice": "cleared", "burial_permit": "refused"}),
]


def test_repatriation_of_remains(world) -> None:  # type: ignore[no-untyped-def]
    # All cases at once, as a post would submit them: each must still get its own answers.
    opened = {name: world.hub.submit("repatriation_of_remains", repatriation_request(**options))
              for name, options, _, _ in REPATRIATION}
    for name, _, status, outcomes in REPATRIATION:
        reference = opened[name].case.reference
        world.wait_for_status(reference, status)
        found = _outcomes(world, reference)
        assert {step: found.get(step) for step in outcomes} == outcomes, name
        # The cause of death reached Health only (Law 09-08: proportionality).
        cause = opened[name].case.data["deceased"]["cause_of_death"]
        for agency in ("dgsn", "interior"):
            assert all(cause not in r.body for r in world.simulators[agency].received()), name


def test_repatriation_health_answers_by_callback_once(world) -> None:  # type: ignore[no-untyped-def]
    health = world.simulators["health"]
    health.inject("duplicate_callback", count=1)
    opened = world.hub.submit("repatriation_of_remains", repatriation_request())
    world.wait_for_status(opened.case.reference, "agencies_cleared")
    clearance = world.exchanges(opened.case.reference)["sanitary_clearance"]
    assert health.effect_count(clearance.id) == 1
    assert [c["status"] for c in health.callbacks if c["exchange_id"] == clearance.id][0] == 202


def test_driving_licence_authentication(world) -> None:  # type: ignore[no-untyped-def]
    expected = {"authentic": "verified", "not_authentic": "rejected",
                "unknown": "more_information_requested"}
    opened = {answer: world.hub.submit("driving_licence_authentication",
                                       licence_request(answer, serial=200000 + n))
              for n, answer in enumerate(expected)}
    for answer, status in expected.items():
        world.wait_for_status(opened[answer].case.reference, status)
        assert _outcomes(world, opened[answer].case.reference) == {"licence_check": answer}


IDENTITY = [("AB123457", "identity_verified", "confirmed"),
            ("AB123450", "more_information_requested", "mismatch"),
            ("Z12345", "rejected", "not_found")]


def test_identity_checked_by_dgsn(world) -> None:  # type: ignore[no-untyped-def]
    opened = {}
    for service in ("consular_registration_new", "consular_registration_renewal"):
        for cnie, status, outcome in IDENTITY:
            assert dgsn_register.identity({"cnie": cnie})[0].lower() == outcome
            data = sample_request(service)
            data["person"] = {**data["person"], "cnie": cnie}
            opened[(service, cnie)] = (world.hub.submit(service, data), status, outcome)
    for (service, cnie), (case, status, outcome) in opened.items():
        world.wait_for_status(case.case.reference, status)
        assert _outcomes(world, case.case.reference) == {"identity_check": outcome}, service


def test_update_and_certificate_need_a_current_registration(world) -> None:  # type: ignore[no-untyped-def]
    hub = world.hub
    for service in ("consular_registration_update", "registration_certificate"):
        early = hub.submit(service, sample_request(service))
        world.wait_for_status(early.case.reference, "rejected")
    registration = hub.submit("consular_registration_new", sample_request(
        "consular_registration_new"))
    world.wait_for_status(registration.case.reference, "identity_verified")
    with hub.store.transaction() as session:
        hub.cases.transition(session, find_case(session, registration.case.reference),
                             "registered", role="staff", actor="staff:ES-MAD")
    update = hub.submit("consular_registration_update",
                        sample_request("consular_registration_update"))
    world.wait_for_status(update.case.reference, "registration_confirmed")
    certificate = hub.submit("registration_certificate",
                             sample_request("registration_certificate"))
    world.wait_for_status(certificate.case.reference, "eligible")
