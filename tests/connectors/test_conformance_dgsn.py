"""DGSN's connector against its simulator: the conformance kit, plus DGSN's own wire details."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import person, transport


class TestDgsnConformance(ConnectorConformance):
    agency = "dgsn"
    samples = [
        Sample("verify_identity", {"person": person()}, "confirmed", data={"checked_at": None}),
        Sample("verify_identity", {"person": person("Z12345")}, "not_found",
               data={"checked_at": None}),
        Sample("verify_identity", {"person": person("AB123450")}, "mismatch",
               data={"mismatched_fields": ["lastName", "firstName"], "checked_at": None}),
        Sample("notify_border", {"person": person(), "transport": transport()}, "cleared",
               data={"border_post": "CMN", "recorded_at": None}),
        Sample("notify_border", {"person": person("AB123450"), "transport": transport()},
               "identity_mismatch", data={"border_post": "CMN", "reason": "identity mismatch",
                                          "recorded_at": None}),
        Sample("notify_border", {"person": person(), "transport": transport("LHR")}, "refused",
               data={"border_post": "LHR", "reason": "not a Moroccan entry point",
                     "recorded_at": None}),
    ]
    invalid_requests = [
        Sample("verify_identity", {"person": person("123")}),
        Sample("notify_border", {"person": person(), "transport": transport() | {
            "expected_arrival_date": "05/12/2026"}}),
    ]
