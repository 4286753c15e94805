"""Retention: closed cases past their service's period lose their personal data, audited, and the
audit chain still verifies. Time is passed explicitly (a case's closing is moved into the past)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner
from sqlalchemy import func, select, text, update

from hub.evidence.audit.chain import chain_pending
from hub.evidence.audit.verify import verify_chain
from hub.cases.book import find_case
from hub.cli import main
from hub.demo.scenarios import licence_request, repatriation_request
from hub.testing.agencies import staff_moves, wait_for_status
from hub.store.models import (AttachmentRow, AuditRow, CaseEvent, CaseIdentity, ExchangeRow,
                              OutboxRow)

NOW = datetime(2031, 6, 1, tzinfo=timezone.utc)
CAUSE = "acute respiratory failure"
PDF = b"%PDF-1.7\nretention\n"


def _closed(hub, reference, at):
    """Pretend the case reached its final status at ``at``."""
    with hub.store.transaction() as session:
        case = find_case(session, reference)
        session.execute(update(CaseEvent).where(CaseEvent.case_id == case.id,
                                                CaseEvent.to_status == case.status).values(at=at))


def _cases(hub):
    """A repatriation (365 days) and a licence (730 days), both closed; one open licence."""
    with hub.run(concurrency=1):
        repatriation = hub.submit("repatriation_of_remains",
                                  repatriation_request(cause=CAUSE)).case.reference
        licence = hub.submit("driving_licence_authentication",
                             licence_request("authentic", serial=661001)).case.reference
        still_open = hub.submit("driving_licence_authentication",
                                licence_request("authentic", serial=661002)).case.reference
        for reference, status in ((repatriation, "agencies_cleared"), (licence, "verified"),
                                  (still_open, "verified")):
            assert wait_for_status(hub, reference, status) == status
    staff_moves(hub, repatriation, "authorisation_issued")
    staff_moves(hub, licence, "attestation_issued")
    with hub.store.transaction() as session:
        document = hub.attachments.put(session, PDF, declared_type="application/pdf",
                                       uploaded_by="applicant")
        document.case_id = find_case(session, repatriation).id
    # Closed 400 days before NOW: past the repatriation's 365 days, within the licence's 730.
    for reference in (repatriation, licence):
        _closed(hub, reference, NOW - timedelta(days=400))
    return repatriation, licence, still_open, document.storage_key


def test_closed_cases_past_retention_are_anonymized_and_audited(mock_hub):
    hub = mock_hub()
    repatriation, licence, still_open, storage_key = _cases(hub)
    assert hub.settings.retention_for("repatriation_of_remains") == 365

    dry = hub.retention_sweeper().run(NOW, dry_run=True)
    assert [item.reference for item in dry.anonymized] == [repatriation]
    with hub.store.session() as session:  # a dry run changes nothing
        assert find_case(session, repatriation).data["deceased"]["cause_of_death"] == CAUSE

    report = hub.retention_sweeper().run(NOW)
    assert [item.reference for item in report.anonymized] == [repatriation]
    assert report.documents_removed == 1
    assert not (hub.attachments.root / storage_key).exists()
    with hub.store.session() as session:
        case = find_case(session, repatriation)
        assert case.data == {} and case.anonymized_at is not None
        assert case.status == "authorisation_issued"  # what happened stays
        history = session.scalars(select(CaseEvent.to_status).where(
            CaseEvent.case_id == case.id)).all()
        assert history[-1] == "authorisation_issued"
        assert session.scalar(select(func.count()).select_from(CaseIdentity).where(
            CaseIdentity.case_id == case.id)) == 0
        assert all(e.reply is None for e in session.scalars(
            select(ExchangeRow).where(ExchangeRow.case_id == case.id)))
        assert session.scalar(select(func.count()).select_from(AttachmentRow).where(
            AttachmentRow.case_id == case.id)) == 0
        exchange_ids = set(session.scalars(select(ExchangeRow.id).where(
            ExchangeRow.case_id == case.id)))
        assert not set(session.scalars(select(OutboxRow.message_id))) & exchange_ids
        [audit] = session.scalars(select(AuditRow).where(AuditRow.action == "anonymized")).all()
        assert audit.correlation_id == repatriation and audit.actor == "hub:retention"
        assert audit.details["retention_days"] == 365 and len(audit.digest) == 64
        # The licence (730 days) and the open case keep their data.
        assert find_case(session, licence).data["holder"]["cnie"]
        assert find_case(session, still_open).anonymized_at is None

    # Idempotent: nothing more to do at the same time; the licence's turn comes later.
    assert hub.retention_sweeper().run(NOW).anonymized == []
    later = hub.retention_sweeper().run(NOW + timedelta(days=331))
    assert [item.reference for item in later.anonymized] == [licence]

    # The chain covers digests, not data: it still verifies from its start.
    chain_pending(hub.store)
    report = verify_chain(hub.store, hub.keys.trust)
    assert report.intact, [p.describe() for p in report.problems]
    result = CliRunner().invoke(main, ["audit", "verify"], env=_env(hub))
    assert result.exit_code == 0, result.output


def test_the_cause_of_death_is_gone_even_from_raw_rows_of_old_keys(mock_hub):
    """After anonymization not even the ciphertext of the data is kept (only its digest)."""
    hub = mock_hub()
    repatriation, *_ = _cases(hub)
    with hub.store.engine.connect() as conn:
        before = conn.execute(text("SELECT data FROM cases WHERE reference = :r"),
                              {"r": repatriation}).scalar_one()
    hub.retention_sweeper().run(NOW)
    with hub.store.engine.connect() as conn:
        after = conn.execute(text("SELECT data FROM cases WHERE reference = :r"),
                             {"r": repatriation}).scalar_one()
        digests = conn.execute(text("SELECT digest FROM audit_records WHERE action = "
                                    "'anonymized'")).scalars().all()
    assert after != before and len(str(after)) < len(str(before))
    with hub.store.session() as session:
        assert find_case(session, repatriation).data == {}
    assert len(digests) == 1


def test_hub_retention_run_dry_run_then_run(mock_hub):
    hub = mock_hub()
    repatriation, *_ = _cases(hub)
    env = _env(hub)
    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run", "--now", NOW.isoformat()],
                             env=env)
    assert dry.exit_code == 0, dry.output
    listed = json.loads(dry.stdout)
    assert listed["dry_run"] and [c["reference"] for c in listed["anonymized"]] == [repatriation]
    with hub.store.session() as session:
        assert find_case(session, repatriation).anonymized_at is None
    done = CliRunner().invoke(main, ["retention", "run", "--now", NOW.isoformat()], env=env)
    assert done.exit_code == 0, done.output
    assert [c["reference"] for c in json.loads(done.stdout)["anonymized"]] == [repatriation]
    with hub.store.session() as session:
        assert find_case(session, repatriation).anonymized_at is not None


def test_sent_messages_are_purged_after_the_message_retention(mock_hub):
    hub = mock_hub()
    _cases(hub)
    with hub.store.transaction() as session:
        sent = session.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.sent_at.is_not(None)))
        session.execute(update(OutboxRow).values(sent_at=NOW - timedelta(days=91)))
    assert sent > 0
    report = hub.retention_sweeper().run(NOW)
    with hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 0
    assert report.messages_purged > 0


def test_the_scheduler_registers_the_retention_job(mock_hub):
    hub = mock_hub()
    scheduler = hub.scheduler(interval_minutes=60)
    scheduler.start()
    try:
        assert "retention.run" in scheduler.jobs()
    finally:
        scheduler.shutdown()


def _env(hub):
    return {"HUB_DATA_DIR": str(hub.settings.data_dir), "HUB_LOG_LEVEL": "ERROR",
            "HUB_DATABASE_URL": hub.settings.database_url}

