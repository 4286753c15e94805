"""A route step keeps named fields of its agency's answer in the case (``keep:``): declared in
the service definition, merged into the case data when the answer is applied (so encrypted at
rest with it), accepted by the intake schema on every later update, refused with a precise
message where the definition or its schema cannot hold them."""
from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text

from hub.cases.book import find_case
from hub.demo.scenarios import licence_request
from hub.errors import ConfigurationError
from hub.services import ANSWERS_KEY, parse_definition
from hub.testing.agencies import wait_for_status

LICENCE = "driving_licence_authentication"


def _definition(keep: list[str], *, agency: str = "narsa",
                schema: str = "v1/services/driving_licence_authentication.json") -> dict:
    return yaml.safe_load(f"""
        name: kept
        version: "1"
        reference_prefix: KPT
        intake_schema: {schema}
        states: {{submitted: {{initial: true}}, checking: {{}}, done: {{final: true}},
                 rejected: {{final: true}}}}
        transitions:
          - {{from: submitted, to: checking, by: [hub]}}
          - {{from: checking, to: done, by: [hub]}}
          - {{from: checking, to: rejected, by: [hub]}}
        route:
          start_status: checking
          complete_status: done
          steps:
            - name: check
              agency: {agency}
              operation: {"find_record" if agency == "hub" else "verify_licence"}
              input: [licence]
              outcomes: {{authentic: continue, not_authentic: {{status: rejected}},
                          unknown: {{status: rejected}}}}
              keep: {keep}
    """)


def test_the_step_keeps_only_what_it_names_and_replaces_an_earlier_answer():
    definition = parse_definition(_definition(["licence_status", "reason"]), "test")
    data = {"licence": {"number": "X"}}
    first = definition.with_answer_kept(data, "check", {"licence_status": "valid",
                                                        "checked_at": "2026-12-01T10:00:00Z"})
    assert first == {**data, ANSWERS_KEY: {"check": {"licence_status": "valid"}}}
    assert data == {"licence": {"number": "X"}}, "pure: the case data given is not changed"
    again = definition.with_answer_kept(first, "check", {"reason": "checksum"})
    assert again[ANSWERS_KEY] == {"check": {"reason": "checksum"}}
    # A step that keeps nothing leaves the case data (and its encryption) alone.
    assert parse_definition(_definition([]), "test").with_answer_kept(
        data, "check", {"licence_status": "valid"}) is None


@pytest.mark.parametrize("keep, agency, schema, message", [
    (["Licence-Status"], "narsa", "v1/services/driving_licence_authentication.json",
     "keeps 'Licence-Status'"),
    (["status"], "hub", "v1/services/driving_licence_authentication.json",
     "a local check answers no data to keep"),
    (["licence_status"], "narsa", "v1/services/registration_certificate.json",
     'refuses agency_answers'),
])
def test_a_definition_that_cannot_keep_its_answers_is_refused(keep, agency, schema, message):
    with pytest.raises(ConfigurationError, match=message) as refused:
        parse_definition(_definition(keep, agency=agency, schema=schema), "kept.yaml")
    assert "kept.yaml" in refused.value.message
    if "refuses" in message:  # it says what to add to the schema
        assert '"patternProperties"' in refused.value.message


def test_narsa_answer_is_kept_in_the_case_encrypted_and_later_updates_still_validate(mock_hub):
    hub = mock_hub()
    with hub.run(concurrency=1):
        authentic = hub.submit(LICENCE, licence_request("authentic", serial=200001,
                                                        status="suspended")).case.reference
        forged = hub.submit(LICENCE, licence_request("not_authentic",
                                                     serial=200002)).case.reference
        assert wait_for_status(hub, authentic, "verified") == "verified"
        assert wait_for_status(hub, forged, "rejected") == "rejected"
    with hub.store.session() as session:
        case = find_case(session, authentic)
        assert case.data[ANSWERS_KEY] == {"licence_check": {"licence_status": "suspended"}}
        assert find_case(session, forged).data[ANSWERS_KEY] == {
            "licence_check": {"reason": "checksum"}}
        # The intake schema accepts the case data as it now is: staff and applicant updates
        # (which validate the merged data) keep working.
        hub.cases.validate_intake(hub.catalog.get(LICENCE), case.data)
        stored = session.execute(text("SELECT data FROM cases WHERE reference = :r"),
                                 {"r": authentic}).scalar_one()
    assert "suspended" not in str(stored) and ANSWERS_KEY not in str(stored), \
        "kept answers are encrypted at rest with the rest of the case data"
