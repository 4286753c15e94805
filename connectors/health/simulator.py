"""Ministry of Health simulator: acknowledges a sanitary-clearance request at once (202) and
posts the decision to the hub's callback after ``callback_delay`` seconds.

Options: ``callback_url`` (the hub's base URL, e.g. ``http://127.0.0.1:8080``), ``callback_delay``
(seconds, default 0.2), ``client`` (Health's X-Road identity), ``token`` (bearer credential for
the hub, until message signatures replace it). Rules: `connectors.health.register`.

The decision is an effect of the request: a repeated request (same ``X-Road-Id``) gets the first
acknowledgement back and no second callback. A callback the hub cannot take (connection refused,
5xx) is retried a few times; a 4xx is final. Every callback attempt is logged in ``callbacks``.
The ``duplicate_callback`` fault posts the same decision twice (two deliveries, as a buggy agency
would), to prove the hub applies it once.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from flask import Flask, Response, g, request

from connectors.health import register
from connectors.simulator import Fault, Outcome, Simulator
from connectors.xml import request_hash
from hub.envelope import canonical_json
from hub.errors import HubError
from hub.schemas import field_errors, openapi_validator

OPENAPI = "v1/agencies/health.openapi.yaml"
CLIENT = "MA/GOV/SANTE/CLEARANCES"
CALLBACK_PATH = "/inbound/v1/health/clearances/{id}"


def _error(status: int, code: str, message: str) -> Outcome:
    return Outcome(status, canonical_json({"error": {"code": code, "message": message}}))


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class HealthSimulator(Simulator):
    agency = "health"

    def routes(self, app: Flask) -> None:
        self._serial = itertools.count(1)
        self._validator = openapi_validator(OPENAPI, "ClearanceRequest")
        self.callbacks: list[dict[str, Any]] = []
        self._timers: list[threading.Timer] = []

        @app.post("/api/v1/sanitary-clearances")
        def clearance() -> Response:
            key = request.headers.get("X-Road-Id")
            refused = self.verify_json_request()
            if refused is not None:
                return Response(canonical_json({"error": {"code": "SIGNATURE_INVALID",
                                                          "message": refused}}),
                                status=401, content_type="application/json")
            response = self.answer(key, lambda: self._accept(key))
            response.headers["X-Road-Id"] = key or ""
            response.headers["X-Road-Client"] = request.headers.get("X-Road-Client", "")
            response.headers["X-Road-Request-Hash"] = request_hash(request.get_data())
            return self.sign_json_response(response)

    def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "duplicate_callback":
            g.duplicate_callback = True  # this request's decision is delivered twice
            return None
        return super().fault_response(fault)

    def invalid_response(self) -> Response:
        return Response(canonical_json({"clearanceId": "SC-2026-000001", "status": "MAYBE"}),
                        status=202, content_type="application/json")

    def _accept(self, key: str | None) -> Outcome:
        if not key or not request.headers.get("X-Road-Client"):
            return _error(400, "MISSING_XROAD_HEADERS", "X-Road-Client and X-Road-Id are required")
        try:
            document = json.loads(request.get_data())
        except ValueError:
            return _error(400, "INVALID_JSON", "the body is not JSON")
        errors = field_errors(self._validator, document)
        if errors:
            return _error(422, "INVALID_REQUEST",
                          "; ".join(f"{e['field']}: {e['code']}" for e in errors))
        clearance_id = f"SC-{datetime.now(timezone.utc).year}-{next(self._serial):06d}"
        result, reason, missing = register.decide(document)
        decision: dict[str, Any] = {"clearanceId": clearance_id, "requestId": key,
                                    "result": result, "decidedAt": _now()}
        if reason:
            decision["reason"] = reason
        if missing:
            decision["missingDocuments"] = missing
        self._schedule(key, canonical_json(decision), 2 if g.get("duplicate_callback") else 1)
        return Outcome(202, canonical_json({"clearanceId": clearance_id, "status": "PENDING"}))

    # -- callbacks --------------------------------------------------------------------------------

    def _schedule(self, exchange_id: str, body: bytes, deliveries: int) -> None:
        base = self.options.get("callback_url")
        if not base:
            return  # nobody to call back: the decision stays with the ministry
        url = base.rstrip("/") + CALLBACK_PATH.format(id=exchange_id)

        def deliver() -> None:
            for _ in range(deliveries):
                self.post_callback(url, exchange_id, body)

        timer = threading.Timer(float(self.options.get("callback_delay", 0.2)), deliver)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def callback_headers(self, body: bytes) -> dict[str, str]:
        """Headers of a callback; the seam where the decision gets signed."""
        headers = {"Content-Type": "application/json",
                   "X-Road-Client": str(self.options.get("client", CLIENT)),
                   "X-Road-Id": str(uuid.uuid4())}
        if self.options.get("token"):
            headers["Authorization"] = f"Bearer {self.options['token']}"
        if self.signing is not None:
            headers.update(self.signing.sign_body(body, headers["X-Road-Id"]))
        return headers

    def post_callback(self, url: str, exchange_id: str, body: bytes, *, attempts: int = 5) -> int:
        """Deliver one decision (retrying what may succeed later); returns the last status."""
        headers = self.callback_headers(body)
        status = 0
        for attempt in range(attempts):
            try:
                with self.hub_session() as session:
                    status = session.post(url, data=body, headers=headers,
                                          timeout=5).status_code
            except (requests.RequestException, OSError, HubError):  # refused handshake, pin
                status = 0
            with self._lock:
                self.callbacks.append({"exchange_id": exchange_id, "status": status,
                                       "attempt": attempt + 1, "message_id": headers["X-Road-Id"]})
            if 0 < status < 500:
                return status
            time.sleep(0.2 * 2 ** attempt)
        return status

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.callbacks.clear()

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        super().stop()
