"""Health's asynchronous connector against its simulator: the kit, callbacks included."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import certificates, deceased, transport


def clearance(cause: str = "cardiac arrest", non_contagion: bool = True) -> dict:
    return {"deceased": deceased(cause=cause), "certificates": certificates(non_contagion),
            "transport": {k: v for k, v in transport().items()
                          if k in ("expected_arrival_date", "border_post")}}


class TestHealthConformance(ConnectorConformance):
    agency = "health"
    callback_path = "/inbound/v1/health/clearances/{id}"
    simulator_options = {"callback_delay": 0}
    samples = [
        Sample("sanitary_clearance", clearance(), "cleared", data={"decided_at": None}),
        Sample("sanitary_clearance", clearance("Cholera"), "refused",
               data={"reason": "notifiable_disease", "decided_at": None}),
        Sample("sanitary_clearance", clearance("Fièvre jaune"), "refused",
               name="sanitary_clearance-refused-fr",
               data={"reason": "notifiable_disease", "decided_at": None}),
        Sample("sanitary_clearance", clearance(non_contagion=False), "more_information",
               data={"reason": "missing_certificate", "missing_documents": ["non_contagion"],
                     "decided_at": None}),
    ]
    invalid_requests = [
        Sample("sanitary_clearance", {**clearance(), "deceased": deceased(
            place_of_death={"city": "Madrid", "country": "Spain"})}),
    ]
