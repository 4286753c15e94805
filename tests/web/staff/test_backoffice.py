"""The back-office: post scoping, read-only call centre, transitions, signed outcome documents."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.cases.book import find_case
from hub.testing.agencies import wait_for_status
from hub.store.models import AuditRow, CaseEvent
from webkit import submit, PDF, PNG, bearer


@pytest.fixture
def web(staff_app):
    return staff_app.test_client()


@pytest.fixture
def two_posts(web):
    madrid = submit(web, "consular_registration_new", post="ES-MAD")
    paris = submit(web, "consular_registration_new", post="FR-PAR")
    return madrid, paris


def references(web, who):
    response = web.get("/api/v1/backoffice/cases", headers=bearer(who))
    assert response.status_code == 200
    return {c["reference"] for c in response.get_json()["cases"]}


def test_a_post_lists_only_its_district_and_central_lists_all(web, two_posts):
    madrid, paris = two_posts
    assert references(web, "madrid") == {madrid["reference"]}
    assert references(web, "paris") == {paris["reference"]}
    assert references(web, "central") == {madrid["reference"], paris["reference"]}
    assert references(web, "callcentre") == {madrid["reference"], paris["reference"]}


def test_a_post_cannot_read_or_change_another_posts_case(web, hub, two_posts):
    _, paris = two_posts
    url = f"/api/v1/backoffice/cases/{paris['reference']}"
    assert web.get(url, headers=bearer("madrid")).status_code == 403
    moved = web.post(url + "/transitions", headers=bearer("madrid"),
                     json={"to": "more_information_requested", "reason": "document_missing"})
    assert moved.status_code == 403
    assert moved.get_json()["error"]["code"] == "security.forbidden"
    with hub.store.session() as session:
        assert find_case(session, paris["reference"]).status == "identity_check"
    # Its own post can.
    assert web.get(url, headers=bearer("paris")).get_json()["contents"] is True


def test_the_call_centre_reads_status_only(web, hub, two_posts):
    madrid, _ = two_posts
    url = f"/api/v1/backoffice/cases/{madrid['reference']}"
    body = web.get(url, headers=bearer("callcentre")).get_json()
    assert body["status"] == "identity_check" and body["contents"] is False
    assert {"data", "exchanges", "documents", "next"}.isdisjoint(body)
    assert "Alaoui" not in str(body)
    with hub.store.session() as session:
        views = session.execute(select(AuditRow.actor, AuditRow.details).where(
            AuditRow.action == "viewed", AuditRow.correlation_id == madrid["reference"])).all()
    assert [details["view"] for _, details in views] == ["status"]  # audited, as what it was
    moved = web.post(url + "/transitions", headers=bearer("callcentre"),
                     json={"to": "rejected"})
    assert moved.status_code == 403


def test_reading_contents_is_audited_with_the_reader(web, hub, two_posts):
    madrid, _ = two_posts
    body = web.get(f"/api/v1/backoffice/cases/{madrid['reference']}",
                   headers=bearer("madrid")).get_json()
    assert body["data"]["person"]["last_name"] == "Alaoui"
    assert {d["field"] for d in body["documents"]} >= {"documents.photo_1"}
    with hub.store.session() as session:
        viewers = set(session.scalars(select(AuditRow.actor).where(
            AuditRow.action == "viewed", AuditRow.correlation_id == madrid["reference"])))
    assert viewers == {"post_staff:u-madrid"}


@pytest.mark.parametrize("headers, status", [({}, 401), (bearer("nobody"), 401),
                                             ({"Authorization": "Basic eDp5"}, 401),
                                             (bearer("admin"), 403)])
def test_only_staff_with_a_valid_token_get_in(web, headers, status):
    assert web.get("/api/v1/backoffice/cases", headers=headers).status_code == status


def test_illegal_transitions_are_409_and_change_nothing(web, hub, two_posts):
    madrid, _ = two_posts
    url = f"/api/v1/backoffice/cases/{madrid['reference']}/transitions"
    response = web.post(url, headers=bearer("madrid"), json={"to": "registered"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "case.illegal_transition"
    malformed = web.post(url, headers=bearer("madrid"), json={"to": 3, "colour": "red"})
    assert malformed.status_code == 422
    assert {f["field"] for f in malformed.get_json()["error"]["fields"]} == {"to", "colour"}
    with hub.store.session() as session:
        case = find_case(session, madrid["reference"])
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert len(events) == 2  # submitted, identity_check


def test_more_information_request_reaches_the_applicant_in_their_language(web, two_posts):
    madrid, _ = two_posts
    web.post(f"/api/v1/backoffice/cases/{madrid['reference']}/transitions",
             headers=bearer("madrid"),
             json={"to": "more_information_requested", "reason": "document_unreadable"})
    view = web.get(f"/api/v1/cases/{madrid['reference']}?lang=fr",
                   headers={"X-Tracking-Secret": madrid["secret"]}).get_json()
    assert view["status"] == "more_information_requested" and view["can_answer"]
    assert view["reason"] == "document_unreadable"


def test_a_reason_is_a_code_not_free_text(web, hub, two_posts):
    """History and audit are not encrypted: a typed sentence could carry a name or a number."""
    madrid, _ = two_posts
    moved = web.post(f"/api/v1/backoffice/cases/{madrid['reference']}/transitions",
                     headers=bearer("madrid"),
                     json={"to": "more_information_requested",
                           "reason": "Mr Alaoui's CNIE AB123457 is unreadable"})
    assert moved.status_code == 422
    assert [f["field"] for f in moved.get_json()["error"]["fields"]] == ["reason"]
    with hub.store.session() as session:
        assert find_case(session, madrid["reference"]).status == "identity_check"


def test_issuing_needs_the_signed_document_which_the_applicant_then_downloads(
        web, hub, mock_agencies):
    created = submit(web, "driving_licence_authentication")
    second = submit(web, "driving_licence_authentication")
    with hub.run(concurrency=1):
        for case in (created, second):
            assert wait_for_status(hub, case["reference"], "verified") == "verified"
    url = f"/api/v1/backoffice/cases/{created['reference']}"
    detail = web.get(url, headers=bearer("madrid")).get_json()
    assert any(n["status"] == "attestation_issued" and n["outcome_document"]
               for n in detail["next"])
    assert [e["outcome"] for e in detail["exchanges"]] == ["authentic"]

    missing = web.post(url + "/transitions", headers=bearer("madrid"),
                       json={"to": "attestation_issued"})
    assert missing.status_code == 422
    assert missing.get_json()["error"]["fields"][0]["field"] == "outcome_document"

    not_pdf = web.post("/api/v1/backoffice/documents", headers=bearer("madrid"), data=PNG,
                       content_type="image/png")
    assert not_pdf.status_code == 415
    assert web.post("/api/v1/backoffice/documents", headers=bearer("callcentre"), data=PDF,
                    content_type="application/pdf").status_code == 403
    signed = web.post("/api/v1/backoffice/documents", headers=bearer("madrid"), data=PDF,
                      content_type="application/pdf").get_json()["reference"]
    issued = web.post(url + "/transitions", headers=bearer("madrid"),
                      json={"to": "attestation_issued", "outcome_document": signed})
    assert issued.status_code == 200 and issued.get_json()["status"] == "attestation_issued"
    # A document issued for one case cannot be issued again for another.
    reused = web.post(f"/api/v1/backoffice/cases/{second['reference']}/transitions",
                      headers=bearer("madrid"),
                      json={"to": "attestation_issued", "outcome_document": signed})
    assert reused.status_code == 422
    assert reused.get_json()["error"]["fields"][0]["code"] == "document_unknown"

    secret = {"X-Tracking-Secret": created["secret"]}
    view = web.get(f"/api/v1/cases/{created['reference']}", headers=secret).get_json()
    assert view["outcome_documents"] == [signed]
    download = web.get(f"/api/v1/cases/{created['reference']}/documents/{signed}",
                       headers=secret)
    assert download.status_code == 200 and download.data == PDF
    # The applicant's own uploads are not served back through tracking.
    staff_view = web.get(url, headers=bearer("central")).get_json()
    own = [d["reference"] for d in staff_view["documents"] if d["kind"] == "applicant"]
    assert len(own) == 3
    assert all(web.get(f"/api/v1/cases/{created['reference']}/documents/{ref}",
                       headers=secret).status_code == 404 for ref in own)


@pytest.mark.parametrize("query", ["offset=99999999999999999999999", "limit=0", "limit=abc"])
def test_paging_out_of_range_is_a_field_error_not_a_crash(web, query):
    # Found by the OpenAPI fuzzing: a huge offset overflowed the database integer.
    response = web.get(f"/api/v1/backoffice/cases?{query}", headers=bearer("central"))
    assert response.status_code == 422


def test_a_move_that_lists_reasons_needs_one_of_them(web, hub, two_posts):
    """Reasons are data (``staff_reasons`` per status): a rejection without one, or with one
    that fits another move, is refused and changes nothing."""
    madrid, _ = two_posts
    url = f"/api/v1/backoffice/cases/{madrid['reference']}/transitions"
    definition = hub.catalog.get("consular_registration_new")
    assert "appointment_needed" not in definition.states["rejected"].staff_reasons
    for body, code in (({"to": "rejected"}, "required"),
                       ({"to": "rejected", "reason": "document_unreadable"}, "enum"),
                       ({"to": "rejected", "reason": "appointment_needed"}, "enum")):
        refused = web.post(url, headers=bearer("madrid"), json=body)
        assert refused.status_code == 422, body
        (error,) = refused.get_json()["error"]["fields"]
        assert (error["field"], error["code"]) == ("reason", code)
    with hub.store.session() as session:
        assert find_case(session, madrid["reference"]).status == "identity_check"
    detail = web.get(f"/api/v1/backoffice/cases/{madrid['reference']}",
                     headers=bearer("madrid")).get_json()
    offered = {n["status"]: n["reasons"] for n in detail["next"]}
    assert offered["rejected"] == list(definition.states["rejected"].staff_reasons)
    assert offered["more_information_requested"] != offered["rejected"]
    assert next(n for n in detail["next"] if n["status"] == "rejected")["final"] is True


def test_the_applicant_reads_the_reason_of_a_rejection_in_their_language(web, two_posts):
    madrid, _ = two_posts
    moved = web.post(f"/api/v1/backoffice/cases/{madrid['reference']}/transitions",
                     headers=bearer("madrid"),
                     json={"to": "rejected", "reason": "identity_not_established"})
    assert moved.status_code == 200, moved.get_json()
    for lang, label in (("fr", "L'identité n'a pas pu être établie"),
                        ("ar", "تعذر إثبات الهوية")):
        view = web.get(f"/api/v1/cases/{madrid['reference']}?lang={lang}",
                       headers={"X-Tracking-Secret": madrid["secret"]}).get_json()
        assert view["status"] == "rejected" and view["final"] is True
        assert (view["reason"], view["reason_label"]) == ("identity_not_established", label)
        assert view["history"][-1]["reason_label"] == label
    page = web.post("/ar/track", data={"reference": madrid["reference"],
                                       "secret": madrid["secret"]}).get_data(as_text=True)
    assert 'id="reason" data-reason="identity_not_established">تعذر إثبات الهوية<' in page


def test_a_move_to_a_status_without_reasons_takes_none(web, hub, mock_agencies):
    created = submit(web, "driving_licence_authentication")
    with hub.run(concurrency=1):
        assert wait_for_status(hub, created["reference"], "verified") == "verified"
    signed = web.post("/api/v1/backoffice/documents", headers=bearer("madrid"), data=PDF,
                      content_type="application/pdf").get_json()["reference"]
    refused = web.post(f"/api/v1/backoffice/cases/{created['reference']}/transitions",
                       headers=bearer("madrid"), json={"to": "attestation_issued",
                                                       "reason": "document_missing",
                                                       "outcome_document": signed})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"][0]["code"] == "unexpected"
