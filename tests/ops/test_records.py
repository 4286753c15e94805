"""Operational records: one per attempt, written with what they describe, queryable."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.ops import records
from hub.store.models import ExchangeRow, OperationalRecordRow, utcnow

from .conftest import licence, wait_for


def _records(hub):  # type: ignore[no-untyped-def]
    with hub.store.session() as session:
        return list(session.scalars(select(OperationalRecordRow).order_by(OperationalRecordRow.id)))


def test_each_attempt_leaves_a_record_with_hop_timestamps_fault_and_answer(ops_hub, agency):
    agency.fail_next = 1
    with ops_hub.run(concurrency=1):
        opened = ops_hub.submit("driving_licence_authentication", licence())
        wait_for(lambda: any(r.outcome == "succeeded" for r in _records(ops_hub)),
                 what="an answered attempt")
    failed, answered = _records(ops_hub)[:2]
    exchange_id = str(opened.exchanges[0].id)
    for record in (failed, answered):
        assert record.message_id == exchange_id
        assert record.correlation_id == opened.case.reference
        assert (record.agency, record.service, record.operation, record.component) == (
            "narsa", "driving_licence_authentication", "verify_licence", "connector.narsa")
        assert record.created_at <= record.received_at <= record.request_out_at
        assert record.request_out_at <= record.response_in_at <= record.finished_at
        assert record.duration_ms is not None and record.duration_ms >= 0
        assert record.node
    assert (failed.attempt, failed.outcome, failed.fault_code, failed.answer) == (
        1, "retried", "agency.unavailable", None)
    assert "503" in failed.fault_reason
    assert (answered.attempt, answered.outcome, answered.fault_code, answered.answer) == (
        2, "succeeded", None, "authentic")


def test_exhausted_attempts_are_recorded_as_dead_lettered(ops_hub, agency):
    agency.down.set()
    with ops_hub.run(concurrency=1):
        opened = ops_hub.submit("driving_licence_authentication", licence())
        wait_for(lambda: any(r.outcome == "dead_lettered" for r in _records(ops_hub)),
                 what="the parked attempt")
    outcomes = [(r.attempt, r.outcome) for r in _records(ops_hub)]
    assert outcomes == [(1, "retried"), (2, "dead_lettered")]
    assert opened.case.reference == _records(ops_hub)[-1].correlation_id


def test_query_health_series_and_throughput(ops_hub, agency):
    with ops_hub.run(concurrency=1):
        for serial in (100001, 100011, 100021):
            ops_hub.submit("driving_licence_authentication", licence(serial))
        wait_for(lambda: len(_records(ops_hub)) == 3, what="three records")
    hour_ago = utcnow() - timedelta(hours=1)
    assert len(records.find(ops_hub.store, records.RecordQuery(agency="narsa", since=hour_ago))) == 3
    assert records.find(ops_hub.store, records.RecordQuery(outcome="retried")) == []
    assert records.find(ops_hub.store, records.RecordQuery(since=utcnow() + timedelta(minutes=1))) == []
    case = _records(ops_hub)[0].correlation_id
    assert [r.correlation_id for r in records.find(
        ops_hub.store, records.RecordQuery(correlation_id=case))] == [case]

    health = records.agency_health(ops_hub.store, ["narsa", "dgsn"], since=hour_ago)
    assert health["narsa"].attempts == 3 and health["narsa"].success_rate == 1.0
    assert health["narsa"].p50_ms is not None and health["narsa"].p99_ms >= health["narsa"].p50_ms
    assert health["dgsn"].attempts == 0 and health["dgsn"].success_rate is None

    [series] = records.series(ops_hub.store)
    assert (series.agency, series.outcome, series.count, series.observed) == (
        "narsa", "succeeded", 3, 3)
    assert list(series.buckets) == sorted(series.buckets) and series.buckets[-1] == 3

    points = records.throughput(ops_hub.store, since=hour_ago, bucket_seconds=60)
    assert 60 <= len(points) <= 62
    assert sum(p.succeeded for p in points) == 3 and sum(p.failed for p in points) == 0


def test_percentile_by_nearest_rank():
    assert records.percentile([], 0.5) is None
    assert records.percentile([5.0], 0.99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert (records.percentile(values, 0.5), records.percentile(values, 0.95),
            records.percentile(values, 0.99)) == (50.0, 95.0, 99.0)


def test_records_commit_only_with_the_effect(ops_hub, agency):
    """A duplicate delivery of an applied message makes no second record (no second effect)."""
    with ops_hub.run(concurrency=1):
        opened = ops_hub.submit("driving_licence_authentication", licence())
        wait_for(lambda: _records(ops_hub), what="the record")
        with ops_hub.store.session() as session:
            exchange = session.get(ExchangeRow, str(opened.exchanges[0].id))
            assert exchange is not None
        # Deliver the very same request again: the worker sees it was processed and skips it.
        from hub.delivery.broker import Message
        from hub.store.models import OutboxRow

        with ops_hub.store.session() as session:
            row = session.scalars(select(OutboxRow).where(
                OutboxRow.message_id == str(opened.exchanges[0].id))).one()
        with ops_hub.open_broker() as broker:
            body = ops_hub.store.privacy.decrypt_body(row.body, row.body_key,
                                                   message_id=row.message_id)  # as relayed
            broker.publish(Message(body=body, message_id=row.message_id,
                                   routing_key=row.routing_key))
            wait_for(lambda: broker.depth(ops_hub.topology.agency_queue("narsa")) == 0,
                     what="the duplicate consumed")
    assert len(_records(ops_hub)) == 1
    assert len(agency.calls) == 1
