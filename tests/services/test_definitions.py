"""Every service definition loads, keeps the exchange contract, and has a sound state machine."""
from __future__ import annotations

from collections import deque

import pytest
import yaml

from connectors.registry import packaged_agencies
from exchanges_doc import operations
from hub.demo.scenarios import SAMPLES, sample_request
from hub.errors import ConfigurationError, SchemaViolation, UnknownService
from hub.schemas import field_errors, json_schema_validator, validate
from hub.services import LOCAL_AGENCY, ServiceCatalog, parse_definition

ALL_FEATURES = {"remote_passport"}
SEVEN = {"repatriation_of_remains", "driving_licence_authentication",
         "consular_registration_new", "consular_registration_renewal",
         "consular_registration_update", "registration_certificate"}  # + judicial_documents


@pytest.fixture(scope="module")
def catalog() -> ServiceCatalog:
    return ServiceCatalog.load(features=ALL_FEATURES)


def definitions():
    return list(ServiceCatalog.load(features=ALL_FEATURES))


def test_every_service_of_this_part_is_defined(catalog):
    assert SEVEN <= set(catalog.names())
    assert "remote_passport_application" in catalog.names()


def contracts() -> dict[tuple[str, str], tuple[frozenset[str], frozenset[str], frozenset[str]]]:
    """(agency, operation) -> (payload names, outcomes, answer data fields): the agencies'
    contracts (``operations`` in each ``agency.yaml``) and the hub's local operations
    (docs/exchanges.md, "Local operations")."""
    found = {key: (op.payload, op.outcomes, frozenset())
             for key, op in operations("Local operations (hub)").items()}
    for name, config in packaged_agencies().items():
        for operation, contract in config.operations.items():
            found[(name, operation)] = (frozenset(contract.payload), frozenset(contract.outcomes),
                                        frozenset(contract.data))
    return found


@pytest.mark.parametrize("definition", definitions(), ids=lambda d: d.name)
def test_agency_steps_use_declared_operations_and_answer_every_outcome(definition):
    known = contracts()
    for step in definition.route.steps if definition.route else ():
        contract = known.get((step.agency, step.operation))
        assert contract is not None, f"{definition.name}.{step.name}: {step.agency}." \
                                     f"{step.operation} is declared nowhere (agency.yaml)"
        payload, outcomes, data = contract
        # A rule for every outcome the agency may answer, and none it never answers.
        assert set(step.outcomes) == outcomes, step.name
        sent = {path.split(".")[0] for path in (*step.input, *step.constants)}
        assert sent <= payload, f"{step.name} sends {sorted(sent - payload)}"
        # The answer's fields a step keeps in the case are fields the agency answers.
        assert set(step.keep) <= data, f"{step.name} keeps {sorted(set(step.keep) - data)}"


@pytest.mark.parametrize("definition", definitions(), ids=lambda d: d.name)
def test_state_machine_is_sound(definition):
    states = definition.states
    # Every status can be reached from the initial one.
    seen, queue = {definition.initial_status}, deque([definition.initial_status])
    while queue:
        current = queue.popleft()
        for t in definition.transitions:
            if t.from_ == current and t.to not in seen:
                seen.add(t.to)
                queue.append(t.to)
    assert seen == set(states), f"unreachable: {set(states) - seen}"
    for name, info in states.items():
        outgoing = [t for t in definition.transitions if t.from_ == name]
        if info.final:
            assert not outgoing, f"final status {name} has transitions"
        else:
            assert outgoing, f"status {name} is a dead end but not final"
    assert any(s.final for s in states.values())
    # Rejection and requests for more information exist in every service (issue 3).
    assert "rejected" in states
    assert "more_information_requested" in states or definition.route is None
    if definition.route is not None:
        assert definition.allowed(definition.initial_status, definition.route.start_status, "hub")


@pytest.mark.parametrize("service", sorted(SAMPLES))
def test_sample_requests_validate(catalog, service):
    definition = catalog.get(service)
    assert field_errors(json_schema_validator(definition.intake_schema),
                        sample_request(service)) == []


def _errors(catalog, service, data):
    return {(e["field"], e["code"]) for e in
            field_errors(json_schema_validator(catalog.get(service).intake_schema), data)}


@pytest.mark.parametrize("cnie, ok", [("AB123456", True), ("A12345", True), ("B1234567", False),
                                      ("ab123456", False), ("ABC12345", False), ("AB1234", False),
                                      ("AB12345X", False)])
def test_cnie_format(catalog, cnie, ok):
    data = sample_request("consular_registration_new")
    data["person"]["cnie"] = cnie
    assert (("person.cnie", "pattern") not in _errors(catalog, "consular_registration_new",
                                                       data)) is ok


@pytest.mark.parametrize("number, ok", [("AB1234567", True), ("A12345678", False),
                                        ("AB123456", False), ("ab1234567", False)])
def test_passport_format(catalog, number, ok):
    data = sample_request("consular_registration_new")
    data["person"]["passport_number"] = number
    assert (("person.passport_number", "pattern") not in
            _errors(catalog, "consular_registration_new", data)) is ok


@pytest.mark.parametrize("phone, ok", [("+212522123456", True),   # fixed line, 05
                                       ("+212612345678", True),   # mobile, 06
                                       ("+212712345678", True),   # mobile, 07
                                       ("+212812345678", False), ("+21261234567", False),
                                       ("0612345678", False), ("+33612345678", False)])
def test_moroccan_phone_format(catalog, phone, ok):
    data = sample_request("repatriation_of_remains")
    data["family_contact"]["phone"] = phone
    assert (("family_contact.phone", "pattern") not in
            _errors(catalog, "repatriation_of_remains", data)) is ok


@pytest.mark.parametrize("phone, ok", [("+34612345678", True), ("+33140000000", True),
                                       ("+212612345678", True), ("0034612345678", False),
                                       ("+3461234", False)])
def test_phones_abroad_are_accepted_for_citizens_abroad(catalog, phone, ok):
    data = sample_request("consular_registration_new")
    data["contact"]["phone"] = phone
    assert (("contact.phone", "pattern") not in
            _errors(catalog, "consular_registration_new", data)) is ok


def test_required_documents_depend_on_the_applicant(catalog):
    minor = sample_request("consular_registration_new", age_group="minor_under_12")
    errors = _errors(catalog, "consular_registration_new", minor)
    assert ("documents.family_book_extract", "required") in errors
    assert ("legal_representative", "required") in errors
    assert not any(f == "documents.cnie_copy" for f, _ in errors)

    nameless = sample_request("repatriation_of_remains")
    del nameless["deceased"]["cnie"]
    nameless["deceased"]["other_id"] = {"kind": "residence_card", "number": "X123456",
                                        "issuing_country": "FR"}
    errors = _errors(catalog, "repatriation_of_remains", nameless)
    assert {("close_relative", "required"), ("documents.relative_id_copy", "required")} <= errors


def test_unexpected_fields_are_refused(catalog):
    data = sample_request("registration_certificate", favourite_colour="blue")
    with pytest.raises(SchemaViolation) as caught:
        validate(json_schema_validator(catalog.get("registration_certificate").intake_schema),
                 data, what="request")
    assert {"field": "favourite_colour", "code": "unexpected"} in [
        {k: e[k] for k in ("field", "code")} for e in caught.value.errors]


def test_feature_flag_hides_the_passport_service():
    assert "remote_passport_application" not in ServiceCatalog.load().names()
    with pytest.raises(UnknownService):
        ServiceCatalog.load().get("remote_passport_application")


def _definition(**changes):
    base = yaml.safe_load("""
        name: sample
        version: "1"
        reference_prefix: SMP
        intake_schema: v1/services/registration_certificate.json
        states: {submitted: {initial: true}, waiting: {}, refused: {}, served: {final: true},
                 rejected: {final: true}}
        transitions:
          - {from: submitted, to: waiting, by: [hub]}
          - {from: waiting, to: refused, by: [staff]}
          - {from: refused, to: served, by: [hub]}
          - {from: waiting, to: rejected, by: [staff]}
    """)
    base.update(changes)
    return parse_definition(base, "test")


def test_deadlines_are_data_and_checked_when_loaded():
    ok = _definition(deadlines=[{"status": "refused", "after_days": 10, "to": "served",
                                 "remind_before_days": [3]}])
    assert ok.deadlines[0].after_days == 10
    with pytest.raises(ConfigurationError, match="transition the hub may make"):
        _definition(deadlines=[{"status": "waiting", "after_days": 10, "to": "rejected"}])
    with pytest.raises(ConfigurationError, match="unknown status"):
        _definition(deadlines=[{"status": "nowhere", "after_days": 10, "to": "served"}])
    with pytest.raises(ConfigurationError, match="reminders"):
        _definition(deadlines=[{"status": "refused", "after_days": 10, "to": "served",
                                "remind_before_days": [10]}])


def test_local_steps_are_checked_when_loaded():
    route = {"start_status": "waiting", "complete_status": "refused", "steps": [
        {"name": "check", "agency": "hub", "operation": "find_record",
         "input": {"person": "person"}, "outcomes": {"current": "continue"}}]}
    with pytest.raises(ConfigurationError, match="give a rule for each"):
        _definition(route=route)
    route["steps"][0]["operation"] = "guess"
    with pytest.raises(ConfigurationError, match="no local operation"):
        _definition(route=route)


def test_the_agencies_a_catalog_needs_exclude_local_checks(catalog):
    assert LOCAL_AGENCY not in catalog.agencies()
    assert {"narsa", "dgsn", "health", "interior"} <= catalog.agencies()


def test_services_whose_agencies_are_not_configured_are_offline_with_the_reason(hub_factory):
    from connectors.registry import AgencyConfig

    narsa_only = {"narsa": AgencyConfig(name="narsa", title="narsa", protocol="rest",
                                        connector="connectors.base:MockConnector")}
    hub = hub_factory(agencies=narsa_only)
    assert "driving_licence_authentication" in hub.catalog.names()
    assert "consular_registration_update" in hub.catalog.names()  # local checks only
    assert "repatriation_of_remains" not in hub.catalog.names()
    with pytest.raises(UnknownService, match="no configuration for agencies dgsn, health"):
        hub.catalog.get("repatriation_of_remains")
    # A catalog given explicitly must be complete: that is a configuration error.
    with pytest.raises(ConfigurationError):
        hub_factory(agencies=narsa_only, catalog=ServiceCatalog.load())
