"""The seventh service through the back-office and the deadlines: a judicial document received
from Justice, the post records the delivery (data with the move), a refusal counts as served on
the tenth day (the definition's deadline), and the certificate goes back to Justice."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from hub.cases.book import find_case
from hub.testing.agencies import wait_for_status
from hub.store.models import CaseEvent
from hub.web.app import create_app
from webkit import authenticator, bearer, staff_tokens

DOCUMENT = {
    "justice_reference": "MJ-2026-000145",
    "court": {"name": "Tribunal de première instance de Rabat", "code": "TPI-RABAT"},
    "court_case_number": "2026/1201/455",
    "document": {"type": "summons", "title": "Convocation", "issued_on": "2026-11-20",
                 "hearing_date": "2027-02-15"},
    "addressee": {"cnie": "AB123456", "last_name": "Alaoui", "first_name": "Sara",
                  "address": {"line1": "12 calle Mayor", "city": "Madrid", "country": "ES"}},
}


def _received(hub):
    """What the inbound endpoint does when Justice sends a document (case at the post)."""
    with hub.store.transaction() as session:
        opened = hub.cases.open(session, "judicial_documents", DOCUMENT,
                                actor="agency:justice", post="ES-MAD")
    hub.relay.wake()
    return opened.case.reference


def test_refused_document_is_deemed_served_on_the_tenth_day_and_certified(hub, mock_agencies):
    web = create_app(hub, authenticate=authenticator(staff_tokens())).test_client()
    reference = _received(hub)
    url = f"/api/v1/backoffice/cases/{reference}"
    assert web.get(url, headers=bearer("paris")).status_code == 403   # not Paris's district
    assert web.get(url, headers=bearer("madrid")).get_json()["status"] == "sent_to_post"

    summoned = web.post(url + "/transitions", headers=bearer("madrid"),
                        json={"to": "addressee_summoned"})
    assert summoned.status_code == 200
    # The post records the refusal with the data of the delivery; a malformed record is refused.
    bad = web.post(url + "/transitions", headers=bearer("madrid"), json={
        "to": "refused", "reason": "addressee_refused", "updates": {"delivery": {"outcome": "refused", "date": "1 Dec"}}})
    assert bad.status_code == 422
    assert bad.get_json()["error"]["fields"][0]["field"] == "delivery.date"
    refused = web.post(url + "/transitions", headers=bearer("madrid"), json={
        "to": "refused", "reason": "addressee_refused",
        "updates": {"delivery": {"outcome": "refused", "date": "2026-12-01",
                                 "notes": "Refused at the counter"}}})
    assert refused.status_code == 200 and refused.get_json()["status"] == "refused"

    refused_at = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    with hub.store.transaction() as session:
        case = find_case(session, reference)
        session.execute(update(CaseEvent).where(CaseEvent.case_id == case.id,
                                                CaseEvent.to_status == "refused")
                        .values(at=refused_at))
    sweeper = hub.deadline_sweeper()
    assert sweeper.sweep(refused_at + timedelta(days=9)).moved == []
    with hub.run(concurrency=1):
        assert sweeper.sweep(refused_at + timedelta(days=10)).moved == [reference]
        assert wait_for_status(hub, reference, "certificate_returned") == "certificate_returned"
    (certificate,) = mock_agencies.calls["justice"]
    assert certificate.payload["delivery"] == {"outcome": "deemed_served", "date": "2026-12-11",
                                               "notes": "Refused at the counter"}
    history = web.get(url, headers=bearer("central")).get_json()["history"]
    assert [h["status"] for h in history][-3:] == ["refused", "deemed_served",
                                                   "certificate_returned"]
    assert history[-2]["actor"] == "hub:deadlines"
