"""Justice's outbound connector (delivery certificates) against its simulator: the kit."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import certificate


class TestJusticeConformance(ConnectorConformance):
    agency = "justice"
    simulator_options = {"known_references": ["MJ-2026-000001"]}
    samples = [
        Sample("delivery_certificate", certificate("MJ-2026-000001"), "received",
               data={"received_at": None}),
        Sample("delivery_certificate", certificate("MJ-2026-000001", "refused"), "received",
               name="delivery_certificate-refused-document", data={"received_at": None}),
        Sample("delivery_certificate", certificate("XX-9999"), "rejected",
               data={"reason": "no judicial document was sent under this reference",
                     "received_at": None}),
    ]
    invalid_requests = [
        Sample("delivery_certificate", certificate("lower case reference")),
    ]
