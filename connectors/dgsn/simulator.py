"""DGSN simulator: identity checks and border notices over SOAP, answered from the request.

Rules: `connectors.dgsn.register`. Run it alone with ``hub simulators --only dgsn``.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any

from connectors.dgsn import register
from connectors.soap_simulator import SoapSimulator


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class DgsnSimulator(SoapSimulator):
    agency = "dgsn"
    namespace = "urn:ma:gov:dgsn:v1"
    path = "/dgsn/soap"
    handlers = {"VerifyIdentityRequest": "verify_identity",
                "BorderNoticeRequest": "notify_border"}

    def routes(self, app: Any) -> None:
        self._serial = itertools.count(1)
        super().routes(app)

    def _reference(self, prefix: str) -> str:
        return f"{prefix}-{datetime.now(timezone.utc).year}-{next(self._serial):06d}"

    def verify_identity(self, body: dict) -> tuple[str, dict]:
        result, fields = register.identity(body["person"])
        return "VerifyIdentityResponse", {"checkId": self._reference("ID"), "result": result,
                                          "mismatchedField": fields or None,
                                          "checkedAt": _now()}

    def notify_border(self, body: dict) -> tuple[str, dict]:
        transport = body["transport"]
        result, _ = register.identity(body["deceased"])
        reason = None
        if result != "CONFIRMED":
            outcome, reason = "IDENTITY_MISMATCH", f"identity {result.lower()}"
        elif not register.is_entry_point(transport["borderPost"]):
            outcome, reason = "REFUSED", "not a Moroccan entry point"
        else:
            outcome = "CLEARED"
        return "BorderNoticeResponse", {"noticeId": self._reference("BN"), "result": outcome,
                                        "borderPost": transport["borderPost"], "reason": reason,
                                        "recordedAt": _now()}
