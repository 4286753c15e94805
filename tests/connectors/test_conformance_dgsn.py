"""DGSN's connector against its simulator: the conformance kit, plus DGSN's own wire details."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import person, transport


class TestDgsnConformance(ConnectorConformance):
    agency = "dgsn"
    samples = [
        Sample("verify_identity", {"person": person()}, "confirmed"),
        Sample("verify_identity", {"person": person("Z12345")}, "not_found"),
        Sample("verify_identity", {"person": person("AB123450")}, "mismatch"),
        Sample("notify_border", {"person": person(), "transport": transport()}, "cleared"),
        Sample("notify_border", {"person": person("AB123450"), "transport": transport()},
               "identity_mismatch"),
        Sample("notify_border", {"person": person(), "transport": transport("LHR")}, "refused"),
    ]
    invalid_requests = [
        Sample("verify_identity", {"person": person("123")}),
        Sample("notify_border", {"person": person(), "transport": transport() | {
            "expected_arrival_date": "05/12/2026"}}),
    ]
