"""The consumer discipline, end to end on the embedded default, with `MockConnector`.

Each test runs the real relay, case worker, connector worker and recorder in threads; only the
agency is a mock, so what is proven is the hub's own behaviour: idempotency, retries, parking.
"""
from __future__ import annotations

import json
import threading
import uuid
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from connectors.base import MockConnector, Reply
from hub.delivery.broker import Message
from hub.cases.book import find_case
from hub.delivery.deadletters import plain_body, list_dead_letters, replay
from hub.demo.scenarios import licence_request
from hub.envelope import Envelope
from hub.errors import AgencyRefusal, AgencyUnavailable, SchemaViolation, UnknownService
from hub.store.models import (AuditRow, CaseEvent, CaseRow, DeadLetterRow, ExchangeRow,
                              OutboxRow, ProcessedMessage)
from hub.testing.plugin import FAST_RETRY, wait_for

SERVICE = "driving_licence_authentication"


class Agency:
    """A scripted agency: answers from a list of behaviours, then from ``default``."""

    def __init__(self, *script: Any, default: Any = "authentic") -> None:
        self.script = list(script)
        self.default = default
        self.lock = threading.Lock()

    def __call__(self, envelope: Envelope) -> Reply:
        with self.lock:
            step = self.script.pop(0) if self.script else self.default
        if isinstance(step, Exception):
            raise step
        return Reply(outcome=step, data={"licence_status": "valid"}, agency_reference="NV-1")


@pytest.fixture
def make_hub(hub_factory: Callable[..., Any]) -> Callable[..., tuple[Any, MockConnector]]:
    def make(agency: Agency, **options: Any) -> tuple[Any, MockConnector]:
        mock = MockConnector(agency, agency="narsa")
        hub = hub_factory(connectors={"narsa": lambda: mock},
                          agency_overrides={"narsa": {"retry": FAST_RETRY}}, **options)
        hub.setup()
        return hub, mock
    return make


def status_of(hub: Any, reference: str) -> str:
    with hub.store.session() as session:
        return find_case(session, reference).status


def count(hub: Any, model: Any, *where: Any) -> int:
    with hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def exchange_of(hub: Any, reference: str) -> ExchangeRow:
    with hub.store.session() as session:
        case = find_case(session, reference)
        return session.scalars(select(ExchangeRow).where(ExchangeRow.case_id == case.id)).one()


def test_answer_reaches_the_case_and_every_hop_is_audited(make_hub):
    hub, mock = make_hub(Agency("authentic"))
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request("authentic")).case.reference
        wait_for(lambda: status_of(hub, reference) == "verified", what="verified")
    exchange = exchange_of(hub, reference)
    assert (exchange.status, exchange.outcome, exchange.attempts) == ("answered", "authentic", 1)
    with hub.store.session() as session:
        actions = session.scalars(select(AuditRow.action).where(
            AuditRow.correlation_id == reference).order_by(AuditRow.id)).all()
    assert actions == ["received", "transitioned", "routed", "sent", "answered", "transitioned",
                       "applied"]
    # The agency received only what the route step selected, never the applicant's contact.
    assert set(mock.calls[0].payload) == {"licence", "holder", "requesting_authority"}


def test_an_answer_is_applied_by_the_worker_that_received_it(make_hub):
    """One hop per answer: the agency's answer reaches its case in the connector worker's own
    transaction; nothing goes through the outbox and the cases queue in between."""
    hub, _ = make_hub(Agency("authentic"))
    with hub.run(concurrency=1, cases=0):  # no case worker at all
        reference = hub.submit(SERVICE, licence_request("authentic")).case.reference
        wait_for(lambda: status_of(hub, reference) == "verified")
    with hub.store.session() as session:
        assert [row.routing_key for row in session.scalars(select(OutboxRow))] == [
            "agency.narsa"]
        processed = set(session.scalars(select(ProcessedMessage.consumer)))
    assert processed == {"connector.narsa"}
    assert count(hub, AuditRow, AuditRow.action == "applied") == 1


def test_a_poison_answer_in_a_batch_is_parked_alone_and_the_rest_commit(make_hub, monkeypatch):
    from hub.delivery.workers import ConnectorWorker

    batches: list[int] = []
    settle = ConnectorWorker._settle

    def spy(self: ConnectorWorker, answered: list[Any]) -> None:
        batches.append(len(answered))
        settle(self, answered)

    monkeypatch.setattr(ConnectorWorker, "_settle", spy)
    # One answer of six has an outcome the route has no rule for.
    hub, mock = make_hub(Agency("authentic", "authentic", "authentic_probably", "authentic",
                                "authentic", "authentic"))
    references = [hub.submit(SERVICE, licence_request("authentic", serial=700000 + n))
                  .case.reference for n in range(6)]  # queued before any worker runs
    with hub.run(concurrency=3):
        wait_for(lambda: list_dead_letters(hub.store)
                 and sum(status_of(hub, r) == "verified" for r in references) == 5,
                 what="five cases verified and one answer parked")
    assert max(batches) > 1  # the poison came in a batch with others
    assert len(mock.calls) == 6  # nobody was asked twice
    [parked] = list_dead_letters(hub.store)
    assert (parked.queue, parked.error_code) == (hub.topology.cases_queue, "route.unknown")
    assert count(hub, AuditRow, AuditRow.action == "applied") == 5
    with hub.store.session() as session:  # every request is done: none waits for a retry
        assert session.scalar(select(func.count()).select_from(ProcessedMessage)) == 6


def test_duplicate_delivery_has_no_second_effect(make_hub):
    hub, mock = make_hub(Agency("authentic"))
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request("authentic")).case.reference
        wait_for(lambda: status_of(hub, reference) == "verified")
        with hub.store.session() as session:
            request = session.scalars(select(OutboxRow).where(
                OutboxRow.routing_key == "agency.narsa")).one()
        with hub.open_broker() as broker:
            body = hub.store.privacy.decrypt_body(request.body, request.body_key,
                                                  message_id=request.message_id)
            broker.publish(Message(body=body, message_id=request.message_id,
                                   routing_key=request.routing_key))  # delivered a second time
            wait_for(lambda: broker.depth(hub.topology.agency_queue("narsa")) == 0)
    assert len(mock.calls) == 1
    assert count(hub, CaseEvent, CaseEvent.to_status == "verified") == 1
    assert count(hub, AuditRow, AuditRow.action == "applied") == 1
    assert list_dead_letters(hub.store) == []  # deduplicated, not parked


def test_transient_failures_are_retried_then_succeed(make_hub):
    hub, mock = make_hub(Agency(AgencyUnavailable("503"), AgencyUnavailable("503"), "authentic"))
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request("authentic")).case.reference
        wait_for(lambda: status_of(hub, reference) == "verified")
    assert len(mock.calls) == 3
    assert [c.attempt for c in mock.calls] == [0, 1, 2]
    assert exchange_of(hub, reference).attempts == 3
    assert count(hub, AuditRow, AuditRow.action == "retried") == 2
    assert count(hub, DeadLetterRow) == 0


def test_exhausted_retries_park_the_request_then_replay_delivers_it_once(make_hub):
    agency = Agency(default=AgencyUnavailable("NARSA answered HTTP 503"))
    hub, mock = make_hub(agency)
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request("authentic")).case.reference
        wait_for(lambda: list_dead_letters(hub.store), what="a dead letter")
        [parked] = list_dead_letters(hub.store)
        assert parked.error_code == "agency.unavailable"
        assert parked.reason.startswith("gave up after 4 attempts")
        assert parked.component == "connector.narsa"
        assert parked.attempts == 4
        assert parked.correlation_id == reference
        assert exchange_of(hub, reference).status == "dead_lettered"
        assert len(mock.calls) == FAST_RETRY["max_attempts"]
        agency.default = "authentic"  # the agency is back
        assert replay(hub.store, hub.audit, [parked.id], actor="operator:test") == [parked.id]
        assert replay(hub.store, hub.audit, [parked.id], actor="operator:test") == []  # once
        hub.relay.wake()
        wait_for(lambda: status_of(hub, reference) == "verified", what="replayed and verified")
    assert len(mock.calls) == FAST_RETRY["max_attempts"] + 1
    assert mock.calls[-1].attempt == 0
    assert count(hub, AuditRow, AuditRow.action == "replayed") == 1


def test_business_refusal_is_parked_at_once(make_hub):
    hub, mock = make_hub(Agency(AgencyRefusal("HTTP 400 INVALID_REQUEST")))
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request("authentic")).case.reference
        wait_for(lambda: list_dead_letters(hub.store))
    [parked] = list_dead_letters(hub.store)
    assert (parked.error_code, parked.attempts) == ("agency.refused", 1)
    assert len(mock.calls) == 1
    assert status_of(hub, reference) == "verifying"  # waits for a person, not silently failed


def test_unknown_outcome_parks_the_reply_not_the_request(make_hub):
    hub, _ = make_hub(Agency("authentic_probably"))
    with hub.run(concurrency=1):
        hub.submit(SERVICE, licence_request("authentic"))
        wait_for(lambda: list_dead_letters(hub.store))
    [parked] = list_dead_letters(hub.store)
    assert parked.queue == hub.topology.cases_queue
    assert parked.error_code == "route.unknown"
    # Stored redacted (a reason may quote a personal value); the code says what went wrong.
    assert "has no rule for outcome" in parked.reason
    assert "authentic_probably" not in parked.reason


@pytest.mark.parametrize("body, code", [
    (b"this is not an envelope", "message.malformed"),
    (b"{" + b'"x":"' + b"y" * 2_000_000 + b'"}', "message.too_large"),
])
def test_unreadable_messages_are_parked_with_their_reason(make_hub, body, code):
    hub, mock = make_hub(Agency())
    with hub.run(concurrency=1):
        with hub.open_broker() as broker:
            broker.publish(Message(body=body, message_id=str(uuid.uuid4()),
                                   routing_key="agency.narsa"))
        wait_for(lambda: list_dead_letters(hub.store))
    [parked] = list_dead_letters(hub.store)
    assert parked.error_code == code
    assert mock.calls == []
    with hub.store.session() as session:
        row = session.get(DeadLetterRow, parked.id)
        # The original bytes are kept for evidence and replay, encrypted at rest.
        assert row.body != body and row.body_key == hub.keys.data.active_key_id
        assert plain_body(hub.store, row) == body


def test_a_message_altered_in_the_broker_is_detected_and_parked(make_hub):
    hub, mock = make_hub(Agency())
    with hub.store.transaction() as session:
        opened = hub.cases.open(session, SERVICE, licence_request("authentic"), actor="test")
    with hub.store.session() as session:
        row = session.scalars(select(OutboxRow)).one()
    document = json.loads(hub.store.privacy.decrypt_body(row.body, row.body_key,
                                                      message_id=row.message_id))
    document["payload"]["holder"]["cnie"] = "ZZ999999"  # someone edits the queued message
    with hub.open_broker() as broker:
        broker.publish(Message(body=json.dumps(document).encode(), message_id=row.message_id,
                               routing_key=row.routing_key))
    with hub.run(relay=False, concurrency=1):
        wait_for(lambda: list_dead_letters(hub.store))
    [parked] = list_dead_letters(hub.store)
    assert parked.error_code == "security.signature"
    assert parked.correlation_id == opened.case.reference
    assert mock.calls == []


def test_unroutable_outbox_row_is_parked_and_does_not_block_the_others(make_hub):
    hub, _ = make_hub(Agency())
    with hub.store.transaction() as session:
        hub.cases.open(session, SERVICE, licence_request("authentic"), actor="test")
        session.add(OutboxRow(message_id=str(uuid.uuid4()), routing_key="agency.nowhere",
                              headers={}, body=b"{}"))
    assert hub.relay.run_once() == 2
    [parked] = list_dead_letters(hub.store)
    assert parked.error_code == "route.unknown"
    assert parked.component == "relay"
    with hub.open_broker() as broker:
        assert broker.depth(hub.topology.agency_queue("narsa")) == 1
    assert count(hub, OutboxRow, OutboxRow.sent_at.is_(None)) == 0


def test_invalid_submission_writes_nothing(make_hub):
    hub, _ = make_hub(Agency())
    bad = licence_request("authentic")
    bad["holder"]["cnie"] = "123"
    del bad["requesting_authority"]
    with pytest.raises(SchemaViolation) as caught:
        hub.submit(SERVICE, bad)
    fields = {(e["field"], e["code"]) for e in caught.value.errors}
    assert fields == {("holder.cnie", "pattern"), ("requesting_authority", "required")}
    with pytest.raises(UnknownService):
        hub.submit("time_travel_permit", {})
    for model in (CaseRow, CaseEvent, ExchangeRow, OutboxRow, AuditRow):
        assert count(hub, model) == 0


def test_more_information_reruns_the_route_as_a_new_round(make_hub):
    hub, mock = make_hub(Agency("unknown", "authentic"))
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request("unknown")).case.reference
        wait_for(lambda: status_of(hub, reference) == "more_information_requested")
        with hub.store.transaction() as session:
            case = find_case(session, reference)
            hub.cases.transition(session, case, "verifying", role="applicant",
                                 actor="applicant", reason="licence number corrected",
                                 updates={"licence": {"number": "12/3456781",
                                                      "categories": [{"code": "B"}]}})
        hub.relay.wake()
        wait_for(lambda: status_of(hub, reference) == "verified")
    assert [c.payload["licence"]["number"] for c in mock.calls][-1] == "12/3456781"
    with hub.store.session() as session:
        rounds = session.scalars(select(ExchangeRow.round).order_by(ExchangeRow.round)).all()
    assert rounds == [1, 2]
