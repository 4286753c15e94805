"""Each service submitted, routed to its agencies (MockConnectors) and driven to a final status."""
from __future__ import annotations

from sqlalchemy import select

from hub.testing.agencies import staff_moves, wait_for_status
from hub.cases.book import find_case
from hub.demo.scenarios import sample_request
from hub.store.models import CaseEvent, ExchangeRow


def _history(hub, reference):
    with hub.store.session() as session:
        case = find_case(session, reference)
        return [e.to_status for e in session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id))]


def _exchanges(hub, reference):
    with hub.store.session() as session:
        case = find_case(session, reference)
        return list(session.scalars(select(ExchangeRow).where(ExchangeRow.case_id == case.id)
                                    .order_by(ExchangeRow.created_at)))


def test_driving_licence_authentication_to_attestation(mock_hub):
    hub = mock_hub()
    with hub.run(concurrency=1):
        ref = hub.submit("driving_licence_authentication",
                         sample_request("driving_licence_authentication")).case.reference
        assert wait_for_status(hub, ref, "verified") == "verified"
    staff_moves(hub, ref, "attestation_issued")
    assert _history(hub, ref) == ["submitted", "verifying", "verified", "attestation_issued"]


def test_repatriation_health_and_dgsn_in_parallel_then_interior(mock_hub, mock_agencies):
    hub = mock_hub()
    with hub.run(concurrency=1):
        ref = hub.submit("repatriation_of_remains",
                         sample_request("repatriation_of_remains")).case.reference
        assert wait_for_status(hub, ref, "agencies_cleared") == "agencies_cleared"
    staff_moves(hub, ref, "authorisation_issued")
    assert _history(hub, ref)[-1] == "authorisation_issued"

    exchanges = {e.step: e for e in _exchanges(hub, ref)}
    assert {s: e.outcome for s, e in exchanges.items()} == {
        "sanitary_clearance": "cleared", "border_notice": "cleared", "burial_permit": "granted"}
    # Interior is asked only once both Health and DGSN have answered.
    assert exchanges["burial_permit"].created_at >= max(
        exchanges["sanitary_clearance"].answered_at, exchanges["border_notice"].answered_at)

    # Data minimisation: the cause of death reaches Health only; documents travel as references.
    health = mock_agencies.calls["health"][0].payload
    assert health["deceased"]["cause_of_death"] == "myocardial infarction"
    assert health["certificates"]["death"].startswith("att_")
    border = mock_agencies.calls["dgsn"][0].payload
    assert "cause_of_death" not in str(border) and set(border) == {"person", "transport"}
    interior = mock_agencies.calls["interior"][0].payload
    assert set(interior) == {"deceased", "burial", "family_contact"}
    assert "cause_of_death" not in interior["deceased"]


def test_repatriation_more_information_then_a_new_round(mock_hub, mock_agencies):
    hub = mock_hub()
    data = sample_request("repatriation_of_remains")
    del data["documents"]["non_contagion_certificate"]
    with hub.run(concurrency=1):
        ref = hub.submit("repatriation_of_remains", data).case.reference
        assert wait_for_status(hub, ref, "more_information_requested") == \
            "more_information_requested"
        # The applicant supplies the missing certificate: the route runs again (round 2).
        documents = {**data["documents"], "non_contagion_certificate": "att_" + "n" * 20}
        with hub.store.transaction() as session:
            hub.cases.transition(session, find_case(session, ref), "under_review",
                                 role="applicant", actor="applicant",
                                 reason="information_supplied",
                                 updates={"documents": documents})
        assert wait_for_status(hub, ref, "agencies_cleared") == "agencies_cleared"
    rounds = {(e.step, e.round): e.outcome for e in _exchanges(hub, ref)}
    assert rounds[("sanitary_clearance", 1)] == "more_information"
    assert rounds[("sanitary_clearance", 2)] == "cleared"
    assert rounds[("burial_permit", 2)] == "granted"


def test_repatriation_refused_for_a_contagious_disease(mock_hub):
    hub = mock_hub()
    data = sample_request("repatriation_of_remains")
    data["deceased"]["cause_of_death"] = "Cholera"
    with hub.run(concurrency=1):
        ref = hub.submit("repatriation_of_remains", data).case.reference
        assert wait_for_status(hub, ref, "rejected") == "rejected"
    assert "burial_permit" not in {e.step for e in _exchanges(hub, ref)}


def test_registration_new_renewal_then_update_and_certificate(mock_hub, mock_agencies):
    hub = mock_hub()
    with hub.run(concurrency=1):
        new = hub.submit("consular_registration_new",
                         sample_request("consular_registration_new")).case.reference
        renewal = hub.submit("consular_registration_renewal", sample_request(
            "consular_registration_renewal", person={**sample_request(
                "consular_registration_new")["person"], "cnie": "K654321"})).case.reference
        assert wait_for_status(hub, new, "identity_verified") == "identity_verified"
        assert wait_for_status(hub, renewal, "identity_verified") == "identity_verified"
    staff_moves(hub, new, "registered")
    staff_moves(hub, renewal, "registered")
    # DGSN received exactly the canonical person, nothing of the contact or residence.
    assert all(set(c.payload) == {"person"} for c in mock_agencies.calls["dgsn"])

    # Update and certificate: no agency, the hub checks the registration itself, at once.
    update = hub.submit("consular_registration_update",
                        sample_request("consular_registration_update"))
    certificate = hub.submit("registration_certificate",
                             sample_request("registration_certificate"))
    assert update.case.status == "registration_confirmed"
    assert certificate.case.status == "eligible"
    staff_moves(hub, update.case.reference, "record_updated")
    staff_moves(hub, certificate.case.reference, "certificate_issued")
    assert _history(hub, certificate.case.reference) == [
        "submitted", "registration_check", "eligible", "certificate_issued"]
    (check,) = _exchanges(hub, certificate.case.reference)
    assert (check.agency, check.operation, check.outcome) == ("hub", "find_record", "current")


def test_certificate_refused_without_a_current_registration(mock_hub):
    hub = mock_hub()
    with hub.run(concurrency=1):
        ref = hub.submit("consular_registration_new",
                         sample_request("consular_registration_new")).case.reference
        assert wait_for_status(hub, ref, "identity_verified") == "identity_verified"
    # Verified but not yet registered: no certificate.
    early = hub.submit("registration_certificate", sample_request("registration_certificate"))
    assert early.case.status == "rejected"
    staff_moves(hub, ref, "registered")
    # Registered at Madrid: no certificate from Paris, nor for someone else with the same CNIE.
    elsewhere = hub.submit("registration_certificate",
                           sample_request("registration_certificate", post="FR-PAR"))
    other = sample_request("registration_certificate")
    other["person"]["last_name"] = "Bennani"
    assert elsewhere.case.status == "rejected"
    assert hub.submit("registration_certificate", other).case.status == "rejected"
    # A lapsed registration is no longer current.
    with hub.store.transaction() as session:
        hub.cases.transition(session, find_case(session, ref), "lapsed", role="hub",
                             actor="hub:deadlines")
    assert hub.submit("registration_certificate",
                      sample_request("registration_certificate")).case.status == "rejected"


def test_identity_answers_drive_registration(mock_hub):
    hub = mock_hub()
    base = sample_request("consular_registration_new")
    with hub.run(concurrency=1):
        mismatch = hub.submit("consular_registration_new", sample_request(
            "consular_registration_new", person={**base["person"], "cnie": "AB123450"}))
        unknown = hub.submit("consular_registration_new", sample_request(
            "consular_registration_new", person={**base["person"], "cnie": "ZB123456"}))
        assert wait_for_status(hub, mismatch.case.reference, "more_information_requested") == \
            "more_information_requested"
        assert wait_for_status(hub, unknown.case.reference, "rejected") == "rejected"
