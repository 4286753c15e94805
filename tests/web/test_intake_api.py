"""The intake API: precise statuses for bad input, nothing half-written, tracking by secret."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from hub.demo_scenarios import licence_request
from hub.store.models import AuditRow, CaseRow, OutboxRow
from hub.web import create_app

URL = "/api/v1/services/driving_licence_authentication/requests"


@pytest.fixture
def hub(hub_factory):
    hub = hub_factory()
    hub.setup()
    return hub


@pytest.fixture
def client(hub):
    return create_app(hub).test_client()


def rows(hub, model) -> int:
    with hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_submit_returns_reference_and_secret_and_queues_the_exchange(client, hub):
    response = client.post(URL, json=licence_request("authentic"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "verifying"
    assert body["reference"].startswith("DLA-")
    assert len(body["secret"]) >= 16
    assert rows(hub, OutboxRow) == 1
    assert response.headers["X-Correlation-Id"]


def test_field_errors_are_listed_with_422_and_nothing_is_stored(client, hub):
    bad = licence_request("authentic")
    bad["holder"]["birth_date"] = "3 Feb 1990"
    bad["applicant"]["email"] = "not-an-email"
    del bad["licence"]["number"]
    response = client.post(URL, json=bad)
    assert response.status_code == 422
    fields = {(f["field"], f["code"]) for f in response.get_json()["error"]["fields"]}
    assert fields == {("holder.birth_date", "format"), ("applicant.email", "format"),
                      ("licence.number", "required")}
    assert (rows(hub, CaseRow), rows(hub, OutboxRow), rows(hub, AuditRow)) == (0, 0, 0)


@pytest.mark.parametrize("data, content_type, status, code", [
    ("post=ES-MAD", "application/x-www-form-urlencoded", 415, "request.unsupported_media_type"),
    ("{not json", "application/json", 400, "message.malformed"),
    ('{"a":1,"a":2}', "application/json", 400, "message.malformed"),
    ("[1,2,3]", "application/json", 400, "message.malformed"),
    ('{"x":"' + "y" * 1_100_000 + '"}', "application/json", 413, "message.too_large"),
])
def test_unacceptable_bodies_get_precise_errors(client, hub, data, content_type, status, code):
    response = client.post(URL, data=data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert rows(hub, CaseRow) == 0


def test_unknown_service_is_404(client):
    response = client.post("/api/v1/services/time_travel/requests", json={})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "service.unknown"


def test_tracking_needs_the_secret_and_is_audited(client, hub):
    created = client.post(URL, json=licence_request("authentic")).get_json()
    url = f"/api/v1/cases/{created['reference']}"
    denied = client.get(url, headers={"X-Tracking-Secret": "wrong"})
    assert denied.status_code == 401
    unknown = client.get("/api/v1/cases/DLA-2026-0000000", headers={"X-Tracking-Secret": "x"})
    assert unknown.status_code in (401, 404)
    tracked = client.get(url, headers={"X-Tracking-Secret": created["secret"]})
    assert tracked.status_code == 200
    body = tracked.get_json()
    assert body["status"] == "verifying"
    assert [h["status"] for h in body["history"]] == ["submitted", "verifying"]
    assert "holder" not in json.dumps(body)  # status and history only, no personal data
    with hub.store.session() as session:
        viewed = session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "viewed"))
    assert viewed == 1


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "alive"}
