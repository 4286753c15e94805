"""The console and the admin API: who may use them, what they show, what they do."""
from __future__ import annotations

import re

from sqlalchemy import select

from hub.ops import controls
from hub.store.models import AuditRow, DeadLetterRow, ExchangeRow

from .conftest import BEARER, TOKEN, csrf_of, licence, wait_for

PAGES = ["/admin/", "/admin/dead-letters?status=all", "/admin/records", "/admin/trace"]


def test_console_and_api_need_an_operator(client):
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert client.get("/admin/api/overview").status_code == 401
    assert client.get("/admin/api/overview",
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.post("/admin/login", data={"name": "ana", "token": "wrong"})
    assert response.status_code == 403 and b"wrong operator token" in response.data
    assert client.get("/admin/").status_code == 302


def test_forms_need_the_session_csrf_token(operator, ops_hub):
    response = operator.post("/admin/connectors/narsa/pause", data={})
    assert response.status_code == 403
    assert controls.paused_components(ops_hub.store) == set()
    response = operator.post("/admin/connectors/narsa/pause", data={"csrf": csrf_of(operator)})
    assert response.status_code == 302
    assert controls.paused_components(ops_hub.store) == {"connector.narsa"}


def test_login_refuses_open_redirects(client):
    response = client.post("/admin/login", data={"name": "ana", "token": TOKEN,
                                                 "next": "https://evil.example/"})
    assert response.headers["Location"] == "/admin/"


def test_pause_keeps_messages_waiting_and_resume_delivers_them(operator, ops_hub, agency):
    csrf = csrf_of(operator)
    operator.post("/admin/connectors/narsa/pause", data={"csrf": csrf})
    with ops_hub.run(concurrency=2):
        opened = [ops_hub.submit("driving_licence_authentication", licence(s))
                  for s in (100001, 100011)]
        queue = ops_hub.topology.agency_queue("narsa")
        wait_for(lambda: ops_hub.open_broker().depth(queue) == 2, what="two waiting")
        page = operator.get("/admin/").data.decode()
        row = re.search(rf'<tr data-queue="{re.escape(queue)}">(.*?)</tr>', page, re.S).group(1)
        assert re.search(r'class="n depth">2<', row)
        assert 'id="resume-narsa"' in page and agency.calls == []
        response = operator.post("/admin/api/connectors/narsa/resume", headers=BEARER)
        assert response.json == {"component": "connector.narsa", "paused": False}
        wait_for(lambda: len(agency.calls) == 2, what="both delivered after resume")

        def answered():  # type: ignore[no-untyped-def]
            with ops_hub.store.session() as session:
                return all(session.get(ExchangeRow, str(o.exchanges[0].id)).status == "answered"
                           for o in opened)

        wait_for(answered, what="both answered")
    with ops_hub.store.session() as session:
        actions = [(a.action, a.actor) for a in session.scalars(
            select(AuditRow).where(AuditRow.component == "admin"))]
    assert actions == [("paused", "admin:ana"), ("resumed", "admin:api")]


def _park_two(ops_hub, agency):  # type: ignore[no-untyped-def]
    agency.down.set()
    opened = [ops_hub.submit("driving_licence_authentication", licence(s))
              for s in (100001, 100011)]

    def parked():  # type: ignore[no-untyped-def]
        with ops_hub.store.session() as session:
            return len(session.scalars(select(DeadLetterRow)).all()) == 2

    wait_for(parked, what="two dead letters recorded")
    return opened


def test_dead_letters_listed_with_reason_then_bulk_replayed(operator, ops_hub, agency):
    with ops_hub.run(concurrency=1):
        opened = _park_two(ops_hub, agency)
        page = operator.get("/admin/dead-letters").data.decode()
        assert page.count('data-status="parked"') == 2
        assert "agency.unavailable" in page and "gave up after 2 attempts" in page
        listed = operator.get("/admin/api/dead-letters?code=agency.unavailable",
                              headers=BEARER).json
        assert {d["correlation_id"] for d in listed} == {o.case.reference for o in opened}
        assert operator.get("/admin/api/dead-letters?code=other", headers=BEARER).json == []

        agency.down.clear()
        response = operator.post("/admin/dead-letters/replay",
                                 data={"csrf": csrf_of(operator), "all": "1"})
        assert response.status_code == 302
        assert "Replayed 2 of 2" in operator.get("/admin/dead-letters").data.decode()

        def answered():  # type: ignore[no-untyped-def]
            with ops_hub.store.session() as session:
                return all(session.get(ExchangeRow, str(o.exchanges[0].id)).status == "answered"
                           for o in opened)

        wait_for(answered, what="replayed exchanges answered")
        # A second replay of the same parkings is refused: no double send.
        ids = [d["id"] for d in listed]
        again = operator.post("/admin/api/dead-letters/replay", json={"ids": ids},
                              headers=BEARER).json
        assert again == {"requested": 2, "replayed": [], "skipped": sorted(ids)}
    assert operator.get("/admin/api/dead-letters", headers=BEARER).json == []
    assert len(operator.get("/admin/api/dead-letters?status=replayed", headers=BEARER).json) == 2


def test_replay_api_refuses_a_malformed_request(operator):
    response = operator.post("/admin/api/dead-letters/replay", json={"ids": "1"}, headers=BEARER)
    assert response.status_code == 400 and response.json["error"]["code"] == "message.invalid"


def test_trace_shows_every_hop_of_a_case_and_of_a_message(operator, ops_hub, agency):
    agency.fail_next = 1
    with ops_hub.run(concurrency=1):
        opened = ops_hub.submit("driving_licence_authentication", licence())

        def answered():  # type: ignore[no-untyped-def]
            with ops_hub.store.session() as session:
                return session.get(ExchangeRow, str(opened.exchanges[0].id)).status == "answered"

        wait_for(answered, what="answered")
        wait_for(lambda: operator.get(f"/admin/api/trace/{opened.case.reference}",
                                      headers=BEARER).json["case"]["status"] == "verified",
                 what="case verified")
    reference, message_id = opened.case.reference, str(opened.exchanges[0].id)
    trace = operator.get(f"/admin/api/trace/{reference}", headers=BEARER).json
    actions = [h["action"] for h in trace["hops"] if h["source"] == "audit"]
    assert actions[0] == "received"
    assert {"routed", "retried", "sent", "answered", "applied", "transitioned"} <= set(actions)
    attempts = [h["action"] for h in trace["hops"] if h["source"] == "record"]
    assert attempts == ["attempt 1: retried", "attempt 2: succeeded"]
    # One hop per answer: the request is the only message published; its answer reached the
    # case in the connector worker's own transaction.
    assert [h["action"] for h in trace["hops"] if h["source"] == "outbox"].count("published") == 1
    assert trace["exchanges"][0]["status"] == "answered" and trace["exchanges"][0]["attempts"] == 2
    by_message = operator.get(f"/admin/api/trace/{message_id}", headers=BEARER).json
    assert by_message["case"]["reference"] == reference
    page = operator.get(f"/admin/trace?q={reference}").data.decode()
    assert 'id="case-status">verified<' in page and "attempt 1: retried" in page
    missing = operator.get("/admin/api/trace/DLA-2026-0000000", headers=BEARER)
    assert missing.status_code == 404
    assert "Nothing known" in operator.get("/admin/trace?q=nope").data.decode()


def test_no_personal_data_reaches_the_console(operator, ops_hub, agency):
    data = licence()
    secrets_in_case = [data["holder"]["cnie"], data["holder"]["last_name"],
                       data["holder"]["first_name"], data["holder"]["birth_date"],
                       data["applicant"]["email"], data["licence"]["number"]]
    agency.down.set()
    with ops_hub.run(concurrency=1):
        opened = ops_hub.submit("driving_licence_authentication", data)
        wait_for(lambda: operator.get("/admin/api/dead-letters", headers=BEARER).json,
                 what="parked")
    # An error reason quoting a value, as a schema error would.
    with ops_hub.store.transaction() as session:
        row = session.scalars(select(DeadLetterRow)).one()
        row.reason = f"holder.cnie: '{data['holder']['cnie']}' does not match the pattern"
    reference = opened.case.reference
    bodies = [operator.get(p).data.decode() for p in
              [*PAGES, f"/admin/trace?q={reference}", f"/admin/trace?q={opened.exchanges[0].id}"]]
    bodies += [operator.get(p, headers=BEARER).data.decode() for p in
               ["/admin/api/overview", "/admin/api/dead-letters", "/admin/api/records",
                f"/admin/api/trace/{reference}"]]
    for body in bodies:
        for value in secrets_in_case:
            assert value not in body
    assert reference in bodies[4] and "‹redacted›" in bodies[1]


def test_overview_and_records_pages_render_figures(operator, ops_hub):
    with ops_hub.run(concurrency=1):
        ops_hub.submit("driving_licence_authentication", licence())
        wait_for(lambda: operator.get("/admin/api/records", headers=BEARER).json,
                 what="one record")
    page = operator.get("/admin/").data.decode()
    assert '<tr data-agency="narsa">' in page and "<svg" in page
    assert 'class="circuit closed"' in page
    records = operator.get("/admin/records?agency=narsa&outcome=succeeded").data.decode()
    assert "verify_licence" in records and "succeeded" in records
    overview = operator.get("/admin/api/overview", headers=BEARER).json
    narsa = next(a for a in overview["agencies"] if a["agency"] == "narsa")
    assert narsa["succeeded"] == 1 and narsa["attempts"] == 1
    assert overview["queues"][0]["source"] == "adapter"
