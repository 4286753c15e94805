"""Interior simulator: burial permits over SOAP, answered from the request.

Rule: `connectors.interior.register` (granted in a known Moroccan commune, refused elsewhere).
Run it alone with ``hub simulators --only interior``.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any

from connectors.interior import register
from connectors.soap_simulator import SoapSimulator


class InteriorSimulator(SoapSimulator):
    agency = "interior"
    namespace = "urn:ma:gov:interior:v1"
    path = "/interior/soap"
    handlers = {"BurialPermitRequest": "burial_permit"}

    def routes(self, app: Any) -> None:
        self._serial = itertools.count(1)
        super().routes(app)

    def burial_permit(self, body: dict) -> tuple[str, dict]:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        serial = next(self._serial)
        commune = body["burial"]["commune"]
        granted = register.is_commune(commune)
        return "BurialPermitResponse", {
            "permitId": f"BP-{now.year}-{serial:06d}",
            "decision": "GRANTED" if granted else "REFUSED",
            "commune": commune,
            "permitNumber": f"PI/{now.year}/{serial:05d}" if granted else None,
            "reason": None if granted else "commune not in the register of Moroccan communes",
            "decidedAt": now.isoformat().replace("+00:00", "Z"),
        }
