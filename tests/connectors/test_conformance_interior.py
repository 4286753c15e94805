"""Interior's connector against its simulator: the conformance kit."""
from __future__ import annotations

from hub.testing.conformance import ConnectorConformance, Sample
from hub.testing.samples import burial, deceased, family_contact


def permit(commune: str = "Casablanca") -> dict:
    return {"deceased": deceased(), "burial": burial(commune), "family_contact": family_contact()}


class TestInteriorConformance(ConnectorConformance):
    agency = "interior"
    samples = [
        Sample("burial_permit", permit("Casablanca"), "granted",
               data={"commune": "Casablanca", "permit_number": None, "decided_at": None}),
        Sample("burial_permit", permit("Fès"), "granted", name="burial_permit-accents",
               data={"commune": "Fès", "permit_number": None, "decided_at": None}),
        Sample("burial_permit", permit("Springfield"), "refused",
               data={"commune": "Springfield",
                     "reason": "commune not in the register of Moroccan communes",
                     "decided_at": None}),
    ]
    invalid_requests = [
        Sample("burial_permit", {**permit(), "family_contact": {**family_contact(),
                                                                "phone": "call me"}}),
    ]
