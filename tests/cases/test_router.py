from __future__ import annotations

import pytest
import yaml

from hub.cases import router
from hub.errors import ConfigurationError, UnknownRoute, UnknownService
from hub.cases.router import StepState
from hub.services import ServiceCatalog, parse_definition

DEFINITION = yaml.safe_load("""
name: repatriation_test
version: "1"
reference_prefix: RPT
intake_schema: v1/services/driving_licence_authentication.json
states:
  submitted: {initial: true}
  checking: {}
  approved: {}
  rejected: {final: true}
  more_information_requested: {}
  closed: {final: true}
transitions:
  - {from: submitted, to: checking, by: [hub]}
  - {from: checking, to: approved, by: [hub]}
  - {from: checking, to: rejected, by: [hub]}
  - {from: checking, to: more_information_requested, by: [hub]}
  - {from: approved, to: closed, by: [staff]}
route:
  start_status: checking
  complete_status: approved
  steps:
    - {name: health, agency: health, operation: sanitary_clearance, input: [deceased],
       outcomes: {cleared: continue, refused: {status: rejected}}}
    - {name: police, agency: dgsn, operation: notify_border, input: {person: deceased},
       outcomes: {cleared: continue, identity_mismatch: {status: more_information_requested}}}
    - {name: burial, agency: interior, operation: burial_permit, after: [health, police],
       input: [burial], constants: {kind: repatriation},
       outcomes: {granted: continue, refused: {status: rejected}}}
    - {name: notice, agency: justice, operation: delivery_certificate, on_status: closed,
       outcomes: {received: continue}}
""")


@pytest.fixture
def definition():
    return parse_definition(DEFINITION, "test")


def names(steps):
    return [s.name for s in steps]


def test_start_dispatches_independent_steps_in_parallel(definition):
    decision = router.start(definition)
    assert decision.status == "checking"
    assert names(decision.dispatch) == ["health", "police"]


def test_dependent_step_waits_for_every_prerequisite(definition):
    states = {"health": StepState("answered", "cleared"), "police": StepState("queued")}
    assert router.on_answer(definition, "health", "cleared", states).dispatch == ()
    states["police"] = StepState("answered", "cleared")
    decision = router.on_answer(definition, "police", "cleared", states)
    assert names(decision.dispatch) == ["burial"]
    assert decision.status is None


def test_route_completes_when_every_start_step_continued(definition):
    states = {n: StepState("answered", o) for n, o in
              [("health", "cleared"), ("police", "cleared"), ("burial", "granted")]}
    decision = router.on_answer(definition, "burial", "granted", states)
    assert decision.status == "approved" and decision.dispatch == ()


def test_a_stopping_outcome_moves_the_case_and_dispatches_nothing(definition):
    states = {"health": StepState("answered", "refused"), "police": StepState("queued")}
    decision = router.on_answer(definition, "health", "refused", states)
    assert (decision.status, decision.dispatch) == ("rejected", ())


def test_unknown_outcome_or_step_is_an_unknown_route(definition):
    with pytest.raises(UnknownRoute, match="no rule for outcome 'maybe'"):
        router.on_answer(definition, "health", "maybe", {})
    with pytest.raises(UnknownRoute, match="no step"):
        router.on_answer(definition, "coroner", "ok", {})


def test_status_triggered_steps(definition):
    assert names(router.on_status(definition, "closed")) == ["notice"]
    assert router.on_status(definition, "approved") == ()


def test_payload_holds_only_selected_fields_renamed_and_constants(definition):
    case = {"deceased": {"cnie": "AB123456", "cause_of_death": "natural"},
            "burial": {"commune": "Fes"}, "applicant": {"email": "firm@example.org"}}
    police = definition.route.step("police")
    assert router.request_payload(police, case) == {
        "person": {"cnie": "AB123456", "cause_of_death": "natural"}}
    burial = definition.route.step("burial")
    assert router.request_payload(burial, case) == {"burial": {"commune": "Fes"},
                                                    "kind": "repatriation"}


def test_state_machine_checks_roles(definition):
    assert definition.allowed("approved", "closed", "staff")
    assert not definition.allowed("approved", "closed", "applicant")
    assert definition.next_statuses("checking", "hub") == ["approved", "rejected",
                                                          "more_information_requested"]


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["states"].update(other={"initial": True}), "exactly one initial"),
    (lambda d: d["transitions"].append({"from": "nowhere", "to": "closed", "by": ["hub"]}),
     "unknown status"),
    (lambda d: d["route"]["steps"][2].update(after=["ghost"]), "unknown step"),
    (lambda d: d["route"]["steps"][0]["outcomes"].update(odd={"status": "limbo"}),
     "unknown status"),
    (lambda d: d["route"].update(complete_status="done"), "unknown status"),
])
def test_inconsistent_definitions_are_refused(breakage, message):
    import copy

    broken = copy.deepcopy(DEFINITION)
    breakage(broken)
    with pytest.raises(ConfigurationError, match=message):
        parse_definition(broken, "broken.yaml")


def test_catalog_hides_flagged_services_until_enabled():
    flagged = parse_definition({**DEFINITION, "name": "passport_test", "feature_flag": "passport"},
                               "x")
    catalog = ServiceCatalog([flagged])
    with pytest.raises(UnknownService):
        catalog.get("passport_test")
    assert ServiceCatalog([flagged], features={"passport"}).get("passport_test") is flagged


def test_packaged_catalog_loads_and_routes_to_known_agencies():
    catalog = ServiceCatalog.load()
    assert "driving_licence_authentication" in catalog.names()
    assert "narsa" in catalog.agencies()
