"""Justice's outbound connector (delivery certificates) against its simulator: the kit."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import certificate


class TestJusticeConformance(ConnectorConformance):
    agency = "justice"
    simulator_options = {"known_references": ["MJ-2026-000001"]}
    samples = [
        Sample("delivery_certificate", certificate("MJ-2026-000001"), "received"),
        Sample("delivery_certificate", certificate("MJ-2026-000001", "refused"), "received",
               name="delivery_certificate-refused-document"),
        Sample("delivery_certificate", certificate("XX-9999"), "rejected"),
    ]
    invalid_requests = [
        Sample("delivery_certificate", certificate("lower case reference")),
    ]
