"""Redrive: a message retried and then never heard of again is sent again from the outbox; one
that was processed, parked, recently active or already redriven is not."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import pytest
from sqlalchemy import select, update

from hub.delivery import broker as b
from hub.evidence.audit.log import AuditRecord
from hub.addresses import agency_routing_key
from hub.envelope import Envelope, SchemaRef
from hub.delivery.idempotency import mark_processed
from hub.store.bulk import write_pending
from hub.store.outbox import enqueue
from hub.delivery.redrive import H_REDRIVEN, Redriver, consumer_of
from hub.store.models import AuditRow, DeadLetterRow, OutboxRow, utcnow

AFTER = 60.0


def _request(n: int = 1) -> Envelope:
    return Envelope.new(correlation_id=f"DLA-2026-ABCDE{n:02d}", kind="request",
                        service="driving_licence_authentication", sender="ES-MAD",
                        recipient="narsa",
                        schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                        payload={"licence": {"number": "12/3456781"}})


@pytest.fixture
def hub(hub_factory: Callable[..., Any]) -> Any:
    hub = hub_factory()
    hub.setup()
    return hub


def sent(hub: Any, n: int = 1) -> str:
    """A request in the outbox, published by the relay: its message id."""
    envelope = _request(n)
    with hub.store.transaction() as session:
        enqueue(session, hub.seal.seal(envelope), agency_routing_key("narsa"))
    assert hub.relay.run_once() >= 1
    return str(envelope.id)


def retried(hub: Any, message_id: str, *, seconds_ago: float) -> None:
    """What a consumer records when it sends a message to a retry rung, ``seconds_ago``."""
    with hub.store.transaction() as session:
        hub.audit.append(session, AuditRecord(
            action="retried", actor="hub:connector.narsa", component="connector.narsa",
            outcome="agency.unavailable", message_id=message_id, details={"attempt": 1}))
        write_pending(session)  # audit records are written at commit; here, now
        session.execute(update(AuditRow).where(AuditRow.message_id == message_id,
                                               AuditRow.action == "retried")
                        .values(at=utcnow() - timedelta(seconds=seconds_ago)))


def unsent(hub: Any) -> list[Any]:
    with hub.store.session() as session:
        return list(session.scalars(select(OutboxRow).where(OutboxRow.sent_at.is_(None))))


def test_consumers_of_routing_keys() -> None:
    assert consumer_of("agency.narsa") == "connector.narsa"
    assert consumer_of("case.driving_licence_authentication.reply") == "cases"
    assert consumer_of("something.else") is None


def test_a_message_quiet_since_its_retry_is_sent_again_once(hub: Any) -> None:
    message_id = sent(hub)
    retried(hub, message_id, seconds_ago=AFTER + 5)
    redriver = Redriver(hub.store, hub.audit, after=AFTER)
    assert redriver.sweep() == 1
    (row,) = unsent(hub)
    assert (row.message_id, row.routing_key) == (message_id, agency_routing_key("narsa"))
    assert row.headers[H_REDRIVEN] == 1
    with hub.store.session() as session:
        actions = list(session.scalars(select(AuditRow.action).where(
            AuditRow.message_id == message_id).order_by(AuditRow.id)))
    assert actions[-1] == "redriven"
    # The redrive is the message's latest trace: no second copy.
    assert redriver.sweep() == 0
    # The relay sends it: the work queue has it again, same id, flagged.
    assert hub.relay.run_once() == 1
    with hub.open_broker() as broker:
        delivery = broker.get(hub.topology.agency_queue("narsa"))
        delivery_again = broker.get(hub.topology.agency_queue("narsa"))
    ids = [d.message.message_id for d in (delivery, delivery_again) if d is not None]
    assert ids == [message_id, message_id]
    assert delivery_again.message.headers[H_REDRIVEN] == 1
    assert b.H_ATTEMPT not in delivery_again.message.headers


def test_recent_processed_or_parked_messages_are_left_alone(hub: Any) -> None:
    recent, processed, parked, replayed = (sent(hub, n) for n in range(1, 5))
    retried(hub, recent, seconds_ago=AFTER - 20)
    for message_id in (processed, parked, replayed):
        retried(hub, message_id, seconds_ago=AFTER + 5)
    with hub.store.transaction() as session:
        mark_processed(session, "connector.narsa", processed)
        for message_id, status in ((parked, "parked"), (replayed, "replayed")):
            session.add(DeadLetterRow(message_id=message_id, queue="q", routing_key="agency.narsa",
                                      error_code="agency.unavailable", reason="gave up",
                                      component="connector.narsa", body=b"{}", status=status,
                                      dead_lettered_at=utcnow().isoformat()))
    assert Redriver(hub.store, hub.audit, after=AFTER).sweep() == 1
    assert [row.message_id for row in unsent(hub)] == [replayed]  # replayed, then stranded


def test_a_retry_older_than_the_horizon_is_not_redriven(hub: Any) -> None:
    message_id = sent(hub)
    retried(hub, message_id, seconds_ago=7200)
    assert Redriver(hub.store, hub.audit, after=AFTER, horizon=3600).sweep() == 0
    assert Redriver(hub.store, hub.audit, after=AFTER, horizon=10_000).sweep() == 1


@pytest.mark.postgres
def test_redrive_on_postgresql(hub_factory: Callable[..., Any], postgres_url: str,
                               tmp_path: Any) -> None:
    hub = hub_factory(database_url=postgres_url, broker_url=f"sqlite:///{tmp_path / 'q.db'}")
    hub.setup()
    message_id = sent(hub)
    retried(hub, message_id, seconds_ago=AFTER + 5)
    first, second = (Redriver(hub.store, hub.audit, after=AFTER) for _ in range(2))
    assert first.sweep() + second.sweep() == 1
    assert [row.message_id for row in unsent(hub)] == [message_id]
