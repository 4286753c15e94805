"""Health's decisions arriving by callback: authentication, correlation, duplicates, schema.

Runs the hub on the embedded broker and SQLite with its web front on loopback, the Health
simulator calling it back, and a test-only route (tests/e2e/agency_routes) that asks Health only.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from hub.testing.samples import certificates, deceased
from hub.store.models import AuditRow
from hub.testing.plugin import wait_for

#: A test service asking Health only (its definition is data, as every service is).
CLEARANCE_ONLY = Path(__file__).parents[2] / "data" / "clearance_only"


def clearance(cause: str = "cardiac arrest", non_contagion: bool = True) -> dict:
    return {"deceased": deceased(cause=cause), "certificates": certificates(non_contagion),
            "transport": {"expected_arrival_date": "2026-12-05", "border_post": "CMN"}}


@pytest.fixture
def world(agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub(extra_definitions=[CLEARANCE_ONLY])


def _callback(world, exchange_id: str, body: dict, *, token: str | None = None,  # type: ignore[no-untyped-def]
              client: str = "MA/GOV/SANTE/CLEARANCES") -> requests.Response:
    from connectors.signing import MessageSigning

    message_id = str(uuid.uuid4())
    raw = json.dumps(body).encode()
    # Signed by Health's own key, as the real agency (and its simulator) would.
    signing = MessageSigning.load(world.keys_dir, "health")
    headers = {"Content-Type": "application/json", "X-Road-Client": client,
               "X-Road-Id": message_id,
               "Authorization": f"Bearer {token or world.tokens['health']}",
               **signing.sign_body(raw, message_id)}
    return requests.post(f"{world.server.url}/inbound/v1/health/clearances/{exchange_id}",
                         data=raw, headers=headers, timeout=5)


@pytest.mark.parametrize("cause,non_contagion,outcome,status", [
    ("cardiac arrest", True, "cleared", "cleared"),
    ("cholera", True, "refused", "refused"),
    ("cardiac arrest", False, "more_information", "more_information"),
])
def test_decision_by_callback_moves_the_case(world, cause, non_contagion, outcome,  # type: ignore[no-untyped-def]
                                             status) -> None:
    opened = world.hub.submit("clearance_only", clearance(cause, non_contagion))
    world.wait_for_status(opened.case.reference, status)
    exchange = world.exchanges(opened.case.reference)["clearance"]
    assert (exchange.status, exchange.outcome) == ("answered", outcome)
    assert exchange.reply["agency_reference"].startswith("SC-")
    health = world.simulators["health"]
    # The simulator logs its callback once the hub's 202 is back, which may be after the case
    # moved: wait for the log, not for time.
    wait_for(lambda: health.callbacks, what="the callback logged")
    assert [c["status"] for c in health.callbacks] == [202]
    assert health.effect_count(exchange.id) == 1


def test_duplicate_callback_has_no_second_effect(world) -> None:  # type: ignore[no-untyped-def]
    health = world.simulators["health"]
    health.inject("duplicate_callback", count=1)
    opened = world.hub.submit("clearance_only", clearance())
    world.wait_for_status(opened.case.reference, "cleared")
    exchange = world.exchanges(opened.case.reference)["clearance"]
    calls: list = []
    for _ in range(200):  # the second delivery follows the first
        calls = [c for c in health.callbacks if c["exchange_id"] == exchange.id]
        if len(calls) >= 2:
            break
        time.sleep(0.05)
    assert [c["status"] for c in calls] == [202, 409]
    with world.hub.store.session() as session:
        actions = list(session.scalars(select(AuditRow.action).where(
            AuditRow.action.in_(("answered", "applied")),
            AuditRow.correlation_id == opened.case.reference)))
    assert sorted(actions) == ["answered", "applied"]  # the decision applied once


def test_unknown_exchange_is_404_and_answered_exchange_is_409(world) -> None:  # type: ignore[no-untyped-def]
    decision = {"clearanceId": "SC-2026-000009", "requestId": str(uuid.uuid4()),
                "result": "CLEARED", "decidedAt": "2026-11-29T10:00:00Z"}
    unknown = _callback(world, decision["requestId"], decision)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "inbound.unknown_exchange"
    opened = world.hub.submit("clearance_only", clearance())
    world.wait_for_status(opened.case.reference, "cleared")
    exchange = world.exchanges(opened.case.reference)["clearance"]
    again = _callback(world, exchange.id, {**decision, "requestId": exchange.id})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "inbound.already_answered"


@pytest.mark.parametrize("change,code", [
    ({"token": "not-the-token"}, "inbound.unauthenticated"),
    ({"client": "MA/GOV/SOMEONE/ELSE"}, "inbound.unauthenticated"),
])
def test_callers_are_authenticated(world, change, code) -> None:  # type: ignore[no-untyped-def]
    refused = _callback(world, str(uuid.uuid4()), {}, **change)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == code


def test_decision_failing_the_schema_is_422_and_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    world.simulators["health"].options["callback_url"] = None  # the test calls back itself
    opened = world.hub.submit("clearance_only", clearance())
    world.wait_for_status(opened.case.reference, "checking")
    for _ in range(100):
        exchange = world.exchanges(opened.case.reference)["clearance"]
        if exchange.status == "acknowledged":
            break
        time.sleep(0.05)
    assert exchange.status == "acknowledged"
    bad = _callback(world, exchange.id, {"clearanceId": "SC-2026-000001", "requestId": exchange.id,
                                         "result": "PROBABLY", "decidedAt": "2026-11-29T10:00:00Z"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "message.schema"
    good = _callback(world, exchange.id, {"clearanceId": "SC-2026-000001",
                                          "requestId": exchange.id, "result": "REFUSED",
                                          "reason": "NOTIFIABLE_DISEASE",
                                          "decidedAt": "2026-11-29T10:00:00Z"})
    assert good.status_code == 202
    assert good.headers["X-Road-Request-Hash"]
    world.wait_for_status(opened.case.reference, "refused")


def test_an_agency_without_credential_cannot_call(world) -> None:  # type: ignore[no-untyped-def]
    world.hub.settings.agency_tokens.pop("health")
    refused = _callback(world, str(uuid.uuid4()), {})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "inbound.not_configured"
