"""NARSA's connector against its simulator: the conformance kit."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import licence, person


class TestNarsaConformance(ConnectorConformance):
    agency = "narsa"
    samples = [
        Sample("verify_licence", licence("authentic"), "authentic",
               data={"licence_status": "valid", "categories": None, "checked_at": None}),
        Sample("verify_licence", licence("not_authentic"), "not_authentic",
               data={"reason": "checksum", "checked_at": None}),
        Sample("verify_licence", licence("unknown"), "unknown",
               data={"reason": "not_in_register", "checked_at": None}),
    ]
    invalid_requests = [
        Sample("verify_licence", {**licence("authentic"), "holder": person("12")}),
    ]
