"""NARSA simulator: a real HTTP server answering licence verifications like the agency would.

Answers are drawn from the request (see `connectors.narsa.register`), remembered per
``X-Road-Id`` (a repeat gets the first answer and causes no second effect; the same id with a
different body is refused with 409, see `connectors.simulator`), and every request is logged. Run it alone with
``hub simulators --only narsa``.
"""
from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone

from flask import Flask, Response, request

from connectors.narsa import register
from connectors.simulator import Outcome, Simulator
from connectors.xml import request_hash
from hub.envelope import canonical_json
from hub.schemas import openapi_validator, field_errors

OPENAPI = "v1/agencies/narsa.openapi.yaml"


def _error(status: int, code: str, message: str) -> Outcome:
    return Outcome(status, canonical_json({"error": {"code": code, "message": message}}))


class NarsaSimulator(Simulator):
    agency = "narsa"

    def routes(self, app: Flask) -> None:
        self._serial = itertools.count(1)
        self._validator = openapi_validator(OPENAPI, "VerificationRequest")

        @app.post("/api/v1/licence-verifications")
        def verify() -> Response:
            key = request.headers.get("X-Road-Id")
            response = self.answer(key, lambda: self._verify(key))
            response.headers["X-Road-Id"] = key or ""
            response.headers["X-Road-Client"] = request.headers.get("X-Road-Client", "")
            response.headers["X-Road-Request-Hash"] = request_hash(request.get_data())
            return response

    def invalid_response(self) -> Response:
        # Parseable JSON whose result is not one NARSA's schema allows.
        return Response(canonical_json({"verificationId": "NV-2026-000001", "result": "MAYBE",
                                        "checkedAt": "2026-01-01T00:00:00Z"}),
                        status=200, content_type="application/json")

    def _verify(self, key: str | None) -> Outcome:
        if not key or not request.headers.get("X-Road-Client"):
            return _error(400, "MISSING_XROAD_HEADERS", "X-Road-Client and X-Road-Id are required")
        raw = request.get_data()
        try:
            document = json.loads(raw)
        except ValueError:
            return _error(400, "INVALID_JSON", "the body is not JSON")
        errors = field_errors(self._validator, document)
        if errors:
            return _error(422, "INVALID_REQUEST",
                          "; ".join(f"{e['field']}: {e['code']}" for e in errors))
        result, reason, status = register.lookup(document["licenceNumber"])
        now = datetime.now(timezone.utc).replace(microsecond=0)
        answer: dict = {
            "verificationId": f"NV-{now.year}-{next(self._serial):06d}",
            "result": result,
            "checkedAt": now.isoformat().replace("+00:00", "Z"),
        }
        if reason:
            answer["reason"] = reason
        if result == "AUTHENTIC":
            issued = register.issue_date(document["licenceNumber"])
            answer["licence"] = {
                "status": status,
                "categories": [
                    {"code": c["code"], "issuedOn": c.get("issuedOn", issued.isoformat()),
                     "validUntil": (issued + timedelta(days=3652)).isoformat()}
                    for c in document.get("categories") or [{"code": "B"}]
                ],
                "issuingCentre": document.get("issuingCentre") or f"Centre {document['licenceNumber'][:2]}",
            }
        return Outcome(200, canonical_json(answer))
