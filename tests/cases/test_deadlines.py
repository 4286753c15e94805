"""Deadlines from data: lapse after three years with reminders, the tenth-day rule, the
scheduler with its persistent job store, the purge of unclaimed documents."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from sqlalchemy import func, select, text, update

from hub.cases.book import find_case
from hub.cases.deadlines import due
from hub.store.attachments import purge_unclaimed_documents
from hub.demo.scenarios import sample_request
from hub.testing.agencies import staff_moves, wait_for_status
from hub.services import ServiceCatalog, parse_definition
from hub.store.models import AttachmentRow, CaseEvent, NotificationRow

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)


def _registration(hub):
    with hub.run(concurrency=1):
        ref = hub.submit("consular_registration_new",
                         sample_request("consular_registration_new")).case.reference
        assert wait_for_status(hub, ref, "identity_verified") == "identity_verified"
    staff_moves(hub, ref, "registered")
    _entered(hub, ref, "registered", T0)
    return ref


#: The scheduler's jobs: deadlines, unclaimed documents, retention, unfinished re-encryption.
JOBS = ["deadlines.sweep", "documents.purge", "keys.reencrypt", "retention.run"]


def _entered(hub, reference, status, at):
    """Pretend the case entered ``status`` at ``at`` (tests cannot wait three years)."""
    with hub.store.transaction() as session:
        case = find_case(session, reference)
        session.execute(update(CaseEvent).where(CaseEvent.case_id == case.id,
                                                CaseEvent.to_status == status).values(at=at))


def _status(hub, reference):
    with hub.store.session() as session:
        return find_case(session, reference).status


def test_due_is_pure_and_the_move_wins_over_reminders():
    definition = ServiceCatalog.load().get("consular_registration_new")
    lapse = T0 + timedelta(days=1095)
    assert due(definition, "registered", T0, T0 + timedelta(days=900)) == []
    assert [d.days_before for d in due(definition, "registered", T0,
                                       lapse - timedelta(days=90))] == [90]
    assert [d.days_before for d in due(definition, "registered", T0,
                                       lapse - timedelta(days=1))] == [90, 30]
    (move,) = due(definition, "registered", T0, lapse)
    assert (move.days_before, move.deadline.to) == (None, "lapsed")
    assert due(definition, "identity_verified", T0, lapse) == []


def test_a_registration_lapses_after_three_years_with_reminders_before(mock_hub):
    hub = mock_hub()
    ref = _registration(hub)
    sweeper = hub.deadline_sweeper()
    assert sweeper.sweep(T0 + timedelta(days=365)).reminded == []
    assert sweeper.sweep(T0 + timedelta(days=1005)).reminded == [ref]       # 90 days before
    assert sweeper.sweep(T0 + timedelta(days=1006)).reminded == []          # once only
    assert sweeper.sweep(T0 + timedelta(days=1066)).reminded == [ref]       # 30 days before
    view = _tracking(hub, ref)
    assert [(n["to"], n["days_before"]) for n in view.notices] == [("lapsed", 90), ("lapsed", 30)]
    assert _status(hub, ref) == "registered"

    report = sweeper.sweep(T0 + timedelta(days=1095))
    assert report.moved == [ref] and _status(hub, ref) == "lapsed"
    assert sweeper.sweep(T0 + timedelta(days=2000)).moved == []             # idempotent
    with hub.store.session() as session:
        case = find_case(session, ref)
        last = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                               .order_by(CaseEvent.id.desc())).first()
        assert (last.to_status, last.actor, last.reason) == (
            "lapsed", "hub:deadlines", "registration_lapsed")
        assert session.scalar(select(func.count()).select_from(NotificationRow)) == 2
    # A lapsed registration is no longer current: no certificate on it.
    assert hub.submit("registration_certificate",
                      sample_request("registration_certificate")).case.status == "rejected"


def _tracking(hub, reference):
    with hub.store.session() as session:
        return hub.submissions().view(session, find_case(session, reference))


def test_the_tenth_day_rule_is_data(mock_hub, tmp_path):
    """A refused document counts as served on the tenth day: a definition with that deadline,
    loaded from a data directory, is applied by the sweep with no code of its own."""
    definition = yaml.safe_load("""
        name: served_documents
        version: "1"
        reference_prefix: SDT
        intake_schema: v1/services/registration_certificate.json
        states: {received: {initial: true}, summoned: {}, refused: {},
                 deemed_served: {final: true}, served_in_person: {final: true}}
        transitions:
          - {from: received, to: summoned, by: [staff]}
          - {from: summoned, to: refused, by: [staff]}
          - {from: summoned, to: served_in_person, by: [staff]}
          - {from: refused, to: deemed_served, by: [hub]}
        deadlines:
          - {status: refused, after_days: 10, to: deemed_served, reason: deemed_served_after_refusal}
    """)
    (tmp_path / "served_documents.yaml").write_text(yaml.safe_dump(definition), "utf-8")
    catalog = ServiceCatalog.load(extra_dirs=[tmp_path])
    hub = mock_hub(catalog=catalog)
    ref = hub.submit("served_documents", sample_request("registration_certificate")
                     ).case.reference
    staff_moves(hub, ref, "summoned", "refused")
    _entered(hub, ref, "refused", T0)
    sweeper = hub.deadline_sweeper()
    assert sweeper.sweep(T0 + timedelta(days=9, hours=23)).moved == []
    assert sweeper.sweep(T0 + timedelta(days=10)).moved == [ref]
    assert _status(hub, ref) == "deemed_served"
    parse_definition(definition, "again")  # still a valid definition on its own


def test_the_scheduler_keeps_its_jobs_in_the_database_and_runs_the_sweep(mock_hub):
    hub = mock_hub()
    with hub.run(concurrency=1):
        ref = hub.submit("driving_licence_authentication", sample_request(
            "driving_licence_authentication")).case.reference
        assert wait_for_status(hub, ref, "verified") == "verified"
    staff_moves(hub, ref, "more_information_requested", reason="document_unreadable")
    _entered(hub, ref, "more_information_requested", datetime.now(timezone.utc)
             - timedelta(days=91))
    scheduler = hub.scheduler(interval_minutes=60)
    scheduler.start()
    try:
        assert scheduler.jobs() == JOBS
        deadline = time.monotonic() + 20
        while _status(hub, ref) != "abandoned" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(hub, ref) == "abandoned"
    finally:
        scheduler.shutdown()
    with hub.store.session() as session:
        stored = set(session.scalars(text("SELECT id FROM scheduled_jobs")))
    assert stored == set(JOBS)
    # A new scheduler (a restarted process) finds its jobs and replaces them, not duplicates.
    again = hub.scheduler(interval_minutes=60)
    again.start()
    try:
        assert again.jobs() == JOBS
    finally:
        again.shutdown()


def test_unclaimed_documents_and_orphan_files_are_purged(mock_hub):
    hub = mock_hub()
    pdf = b"%PDF-1.4 test\n%%EOF"
    with hub.store.transaction() as session:
        old = hub.attachments.put(session, pdf, declared_type="application/pdf",
                                  uploaded_by="applicant")
        kept = hub.attachments.put(session, pdf, declared_type="application/pdf",
                                   uploaded_by="applicant")
        old.created_at = datetime.now(timezone.utc) - timedelta(hours=30)
        old_key, kept_key = old.storage_key, kept.storage_key
    orphan = hub.attachments.root / "zz" / "att_orphan.bin"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"never committed")
    stale = time.time() - 30 * 3600
    os.utime(orphan, (stale, stale))

    assert purge_unclaimed_documents(hub.store, hub.attachments, unclaimed_for=timedelta(hours=hub.settings.unclaimed_attachment_hours)) == 2
    with hub.store.session() as session:
        assert {r.id for r in session.scalars(select(AttachmentRow))} == {kept.id}
    root: Path = hub.attachments.root
    assert not (root / old_key).exists() and not orphan.exists()
    assert (root / kept_key).exists()


def test_hub_deadlines_sweep_applies_what_is_due_on_a_given_date(hub_factory, tmp_path):
    import json

    from click.testing import CliRunner

    from hub.cli import main

    hub = hub_factory()
    hub.setup()
    ref = hub.submit("driving_licence_authentication",
                     sample_request("driving_licence_authentication")).case.reference
    staff_moves(hub, ref, "more_information_requested")
    _entered(hub, ref, "more_information_requested", T0)
    env = {"HUB_DATA_DIR": str(hub.settings.data_dir), "HUB_LOG_LEVEL": "ERROR"}
    early = CliRunner().invoke(main, ["deadlines", "sweep", "--now", "2026-03-15T00:00:00"],
                               env=env)
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["reminded"] == [ref]      # 30 days before the 90th day
    late = CliRunner().invoke(main, ["deadlines", "sweep", "--now", "2026-04-11T00:00:00"],
                              env=env)
    assert json.loads(late.stdout) == {"moved": [ref], "reminded": [], "skipped": []}
    assert _status(hub, ref) == "abandoned"
