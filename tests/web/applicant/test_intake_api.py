"""The intake API: precise statuses for bad input, nothing half-written, tracking by secret."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select

from webkit import JPEG, PDF, PNG, upload, with_uploaded_documents
from hub.cases.book import find_case
from hub.demo.scenarios import licence_request, sample_request
from hub.store.models import AttachmentRow, AuditRow, CaseRow, OutboxRow

URL = "/api/v1/services/driving_licence_authentication/requests"


def rows(hub, model) -> int:
    with hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def submitted(client, service="driving_licence_authentication", data=None):
    data = with_uploaded_documents(client, data or sample_request(service))
    response = client.post(f"/api/v1/services/{service}/requests", json=data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_submit_returns_reference_and_secret_and_queues_the_exchange(client, hub):
    response = client.post(URL, json=with_uploaded_documents(client, licence_request("authentic")))
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "verifying"
    assert body["reference"].startswith("DLA-")
    assert len(body["secret"]) >= 16
    assert rows(hub, OutboxRow) == 1
    assert response.headers["X-Correlation-Id"]
    # The documents now belong to the case, under the field that names them.
    with hub.store.session() as session:
        case = find_case(session, body["reference"])
        fields = {a.field for a in hub.attachments.for_case(session, case.id)}
    assert fields == {"documents.licence_front", "documents.licence_back", "documents.cnie_copy"}


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
    assert (rows(hub, CaseRow), rows(hub, OutboxRow)) == (0, 0)
    # The only record is the audit of the refusal itself (a digest, no field values).
    with hub.store.session() as session:
        [audited] = session.scalars(select(AuditRow)).all()
    assert (audited.action, audited.outcome) == ("rejected", "message.schema")


def test_field_errors_are_localized_and_name_the_field(client):
    bad = sample_request("consular_registration_new")
    bad["person"]["cnie"] = "ab12"
    response = client.post("/api/v1/services/consular_registration_new/requests?lang=es",
                           json=bad)
    assert response.status_code == 422
    (error,) = [f for f in response.get_json()["error"]["fields"] if f["field"] == "person.cnie"]
    assert error["code"] == "pattern"
    assert error["label"] in error["message"] and "AB123456" in error["message"]


def test_unknown_documents_and_posts_are_field_errors_and_nothing_is_stored(client, hub):
    data = sample_request("registration_certificate", post="XX-NOP")  # well-formed, no such post
    response = client.post("/api/v1/services/registration_certificate/requests", json=data)
    assert response.status_code == 422
    codes = {(f["field"], f["code"]) for f in response.get_json()["error"]["fields"]}
    assert codes == {("post", "unknown_post"), ("documents.id_copy", "document_unknown"),
                     ("documents.residence_permit_copy", "document_unknown"),
                     ("documents.address_proof", "document_unknown")}
    assert rows(hub, CaseRow) == 0


def test_a_document_cannot_be_claimed_by_two_requests(client, hub):
    data = with_uploaded_documents(client, sample_request("registration_certificate"))
    assert client.post("/api/v1/services/registration_certificate/requests",
                       json=data).status_code == 201
    again = client.post("/api/v1/services/registration_certificate/requests", json=data)
    assert again.status_code == 422
    assert {f["code"] for f in again.get_json()["error"]["fields"]} == {"document_unknown"}


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


@pytest.mark.parametrize("accept, title", [
    ("fr-FR,fr;q=0.9", "Ce type de contenu n’est pas accepté."),
    ("ar", "هذا النوع من المحتوى غير مقبول."),
    ("xx", "Ce type de contenu n’est pas accepté."),  # unknown language: the hub's default
])
def test_refusals_carry_a_title_in_the_callers_language(client, accept, title):
    response = client.post(URL, data="post=ES-MAD", headers={"Accept-Language": accept},
                           content_type="application/x-www-form-urlencoded")
    error = response.get_json()["error"]
    assert response.status_code == 415 and error["code"] == "request.unsupported_media_type"
    assert error["title"] == title and error["message"]  # localized, and still precise
    assert response.headers["Content-Language"] == {"x": "fr"}.get(accept[0], accept[:2])


def test_unknown_service_is_404(client):
    response = client.post("/api/v1/services/time_travel/requests", json={})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "service.unknown"


@pytest.mark.parametrize("content, content_type", [(PDF, "application/pdf"), (PNG, "image/png"),
                                                   (JPEG, "image/jpeg"),
                                                   (PDF, "application/octet-stream")])
def test_documents_are_accepted_by_content_and_stored_encrypted(client, hub, content,
                                                                content_type):
    response = client.post("/api/v1/attachments", data=content, content_type=content_type)
    assert response.status_code == 201
    body = response.get_json()
    with hub.store.session() as session:
        row = session.get(AttachmentRow, body["reference"])
    stored = (hub.attachments.root / row.storage_key).read_bytes()
    assert content not in stored and len(stored) > len(content)  # encrypted at rest
    assert body["content_type"] == row.content_type != "application/octet-stream"


@pytest.mark.parametrize("content, content_type, status, code", [
    (b"MZ\x90\x00 an executable", "application/pdf", 415, "document.unsupported_type"),
    (PNG, "application/pdf", 415, "document.type_mismatch"),
    (PDF, "text/plain", 415, "request.unsupported_media_type"),
    (b"%PDF-" + b"x" * (5 * 1024 * 1024), "application/pdf", 413, "message.too_large"),
])
def test_documents_are_refused_by_content_type_and_size(client, hub, content, content_type,
                                                         status, code):
    response = client.post("/api/v1/attachments", data=content, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert rows(hub, AttachmentRow) == 0


def test_tracking_needs_the_secret_and_is_audited(client, hub):
    created = submitted(client)
    url = f"/api/v1/cases/{created['reference']}"
    denied = client.get(url, headers={"X-Tracking-Secret": "wrong"})
    assert denied.status_code == 401
    unknown = client.get("/api/v1/cases/DLA-2026-0000000", headers={"X-Tracking-Secret": "x"})
    assert unknown.status_code in (401, 404)
    tracked = client.get(url + "?lang=ar", headers={"X-Tracking-Secret": created["secret"]})
    assert tracked.status_code == 200
    body = tracked.get_json()
    assert body["status"] == "verifying"
    assert [h["status"] for h in body["history"]] == ["submitted", "verifying"]
    assert body["language"] == "ar"
    assert "holder" not in json.dumps(body)  # status and history only, no personal data
    with hub.store.session() as session:
        viewed = session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "viewed"))
    assert viewed == 1


def _request_information(hub, reference):
    with hub.store.transaction() as session:
        hub.cases.transition(session, find_case(session, reference),
                             "more_information_requested", role="staff", actor="staff:t",
                             reason="address_proof_unreadable")


def test_answering_a_request_for_information_reruns_the_route(client, hub):
    created = submitted(client, "consular_registration_new")
    headers = {"X-Tracking-Secret": created["secret"]}
    url = f"/api/v1/cases/{created['reference']}"
    # Not waiting for anything yet: answering is a conflict.
    early = client.post(url + "/answers", json={"updates": {}}, headers=headers)
    assert early.status_code == 409
    _request_information(hub, created["reference"])
    view = client.get(url, headers=headers).get_json()
    assert view["can_answer"] and view["reason"] == "address_proof_unreadable"

    # A wrong answer is refused whole; a good one merges into the request.
    bad = client.post(url + "/answers", headers=headers,
                      json={"updates": {"documents": {"address_proof": "att_" + "x" * 20}}})
    assert bad.status_code == 422
    assert bad.get_json()["error"]["fields"][0]["field"] == "documents.address_proof"
    proof = upload(client, JPEG, "image/jpeg")
    good = client.post(url + "/answers", headers=headers,
                       json={"updates": {"documents": {"address_proof": proof}}})
    assert good.status_code == 200
    assert good.get_json()["status"] == "identity_check"
    with hub.store.session() as session:
        case = find_case(session, created["reference"])
        assert case.data["documents"]["address_proof"] == proof
        assert case.data["documents"]["photo_1"].startswith("att_")  # kept
        assert case.route_round == 2


def test_withdrawal(client, hub):
    created = submitted(client)
    headers = {"X-Tracking-Secret": created["secret"]}
    url = f"/api/v1/cases/{created['reference']}/withdrawal"
    assert client.post(url, headers={"X-Tracking-Secret": "nope"}).status_code == 401
    response = client.post(url, headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "withdrawn"
    again = client.post(url, headers=headers)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "case.illegal_transition"


def test_the_guide_comes_from_the_definitions(client):
    listed = client.get("/api/v1/services?lang=fr").get_json()
    names = {s["name"] for s in listed["services"]}
    assert {"driving_licence_authentication", "consular_registration_new"} <= names
    guide = client.get("/api/v1/services/registration_certificate?lang=ar").get_json()
    assert guide["direction"] == "rtl"
    assert guide["fees"]["amount"] == 70
    required = {d["field"] for d in guide["documents"] if d["required"]}
    assert required == {"documents.id_copy", "documents.residence_permit_copy",
                        "documents.address_proof"}
    schema = client.get("/api/v1/services/registration_certificate/schema").get_json()
    # Bundled: usable by any JSON Schema validator, without the hub's registry.
    assert '"$ref": "urn:' not in json.dumps(schema)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    assert list(validator.iter_errors(sample_request("registration_certificate"))) == []
    assert list(validator.iter_errors(sample_request("registration_certificate", copies=9)))


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "alive"}
