"""The audit chain: sealing by one sealer while many write, checkpoints, verification that says
where a chain breaks, and the signed export an agency verifies offline."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select, update

from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.evidence.audit.chain import (GENESIS, InlineChain, leaf_of, link, make_checkpoint,
                             record_document, chain_pending)
from hub.evidence.audit.export import export_case
from hub.evidence.audit.verify import verify_chain
from hub.cli import main
from hub.config import Settings
from hub.keyset import HubKeys, init_keys
from hub.store import Store
from hub.store.models import AuditCheckpoint, AuditChainHead, AuditRow

VERIFIER = Path(__file__).resolve().parents[2] / "docs" / "verify-audit-bundle.py"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> HubKeys:
    root = tmp_path_factory.mktemp("audit")
    settings = Settings.from_env({"HUB_DATA_DIR": str(root)})
    init_keys(settings.keys_dir, parties=["hub", "narsa"])
    return HubKeys.load(settings)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = (request.getfixturevalue("postgres_url") if request.param == "postgres"
           else f"sqlite:///{tmp_path / 'hub.db'}")
    db = Store.from_url(url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    db = Store.from_url(f"sqlite:///{tmp_path / 'hub.db'}")
    db.upgrade()
    yield db
    db.dispose()


def write(store: Store, n: int, *, case: str = "DLA-2026-AAAAAAA", log: AuditLog | None = None
          ) -> None:
    log = log or AuditLog()
    for i in range(n):
        with store.transaction() as session:
            log.append(session, AuditRecord(action="sent", actor="hub:test", component="test",
                                            message_id=f"m-{i}", correlation_id=case,
                                            digest="ab" * 32, details={"n": i}))


def position_of(store: Store, n: int) -> AuditRow:
    with store.session() as session:
        return session.scalars(select(AuditRow).where(AuditRow.chain_position == n)).one()


def test_concurrent_writers_are_chained_without_gaps_by_one_chainer(store, keys):
    stop = threading.Event()

    def chainer() -> None:
        while not stop.is_set():
            chain_pending(store, batch=7)
            stop.wait(0.005)

    def writer(k: int) -> None:
        write(store, 15, case=f"DLA-2026-{k:07d}")

    sealing = [threading.Thread(target=chainer) for _ in range(2)]  # two chainers compete
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in sealing + writers:
        t.start()
    for t in writers:
        t.join(60)
    stop.set()
    for t in sealing:
        t.join(60)
    chain_pending(store)
    with store.session() as session:
        positions = sorted(session.scalars(select(AuditRow.chain_position)))
        head = session.get(AuditChainHead, 1)
    assert positions == list(range(1, 91))
    assert head.position == 90
    report = verify_chain(store, keys.trust)
    assert report.intact, [p.describe() for p in report.problems]
    assert (report.checked, report.unsealed) == (90, 0)


def test_the_hash_is_previous_hash_then_record_digest(sqlite_store):
    write(sqlite_store, 2)
    chain_pending(sqlite_store)
    first, second = position_of(sqlite_store, 1), position_of(sqlite_store, 2)
    assert first.chain_hash == link(GENESIS, leaf_of(record_document(first)))
    assert second.chain_hash == link(first.chain_hash, leaf_of(record_document(second)))


def test_an_altered_record_is_found_with_its_id_and_both_hashes(store, keys):
    write(store, 6)
    chain_pending(store)
    victim = position_of(store, 4)
    with store.transaction() as session:
        session.execute(update(AuditRow).where(AuditRow.id == victim.id)
                        .values(outcome="refused"))  # someone rewrites history
    report = verify_chain(store, keys.trust)
    [problem] = report.problems
    assert (problem.kind, problem.position, problem.record_id) == ("record_altered", 4, victim.id)
    assert problem.found == victim.chain_hash and problem.expected != victim.chain_hash
    result = CliRunner().invoke(main, ["audit", "verify"], env=_env(store, keys))
    assert result.exit_code == 1
    assert f"record_altered at position 4 (record id {victim.id}): expected " in result.output


def test_rewriting_a_chain_consistently_is_caught_at_the_next_checkpoint(sqlite_store, keys):
    write(sqlite_store, 5)
    make_checkpoint(sqlite_store, keys.signer)
    write(sqlite_store, 3)
    chain_pending(sqlite_store)
    # Rewrite record 2 and recompute every later hash: the chain alone looks intact...
    with sqlite_store.transaction() as session:
        rows = list(session.scalars(select(AuditRow).order_by(AuditRow.chain_position)))
        rows[1].outcome = "refused"
        previous = rows[0].chain_hash
        for row in rows[1:]:
            session.flush()
            row.chain_hash = link(previous, leaf_of(record_document(row)))
            previous = row.chain_hash
        session.get(AuditChainHead, 1).hash = previous
    report = verify_chain(sqlite_store, keys.trust)
    # ... but the signed checkpoint at position 5 says otherwise.
    [problem] = report.problems
    assert (problem.kind, problem.position) == ("checkpoint_mismatch", 5)


def test_deleted_records_and_a_cut_end_are_reported(sqlite_store, keys):
    write(sqlite_store, 6)
    chain_pending(sqlite_store)
    with sqlite_store.transaction() as session:
        session.execute(delete(AuditRow).where(AuditRow.chain_position.in_([3, 6])))
    kinds = [(p.kind, p.position) for p in verify_chain(sqlite_store, keys.trust).problems]
    assert ("record_missing", 3) in kinds and ("record_altered", 4) in kinds
    assert ("head_mismatch", 6) in kinds


def test_a_forged_checkpoint_is_refused(sqlite_store, keys):
    write(sqlite_store, 3)
    make_checkpoint(sqlite_store, keys.signer)
    with sqlite_store.transaction() as session:
        session.execute(update(AuditCheckpoint).values(hash="00" * 32))
    kinds = [p.kind for p in verify_chain(sqlite_store, keys.trust).problems]
    assert "checkpoint_signature" in kinds


def test_a_range_starts_from_the_last_good_checkpoint(sqlite_store, keys):
    write(sqlite_store, 4)
    assert make_checkpoint(sqlite_store, keys.signer).position == 4
    assert make_checkpoint(sqlite_store, keys.signer) is None  # nothing new to sign
    write(sqlite_store, 4)
    assert make_checkpoint(sqlite_store, keys.signer).position == 8
    write(sqlite_store, 2)
    chain_pending(sqlite_store)
    report = verify_chain(sqlite_store, keys.trust, start=6)
    assert report.intact
    assert (report.anchor, report.checked, report.last_good_checkpoint) == (4, 6, 8)
    # An alteration before the anchor is outside the range; the full check finds it.
    with sqlite_store.transaction() as session:
        session.execute(update(AuditRow).where(AuditRow.chain_position == 2)
                        .values(actor="someone-else"))
    assert verify_chain(sqlite_store, keys.trust, start=6).intact
    assert [p.position for p in verify_chain(sqlite_store, keys.trust).problems] == [2]


def test_inline_chaining_gives_the_same_chain(tmp_path, keys):
    store = Store.from_url(f"sqlite:///{tmp_path / 'inline.db'}")
    store.upgrade()
    write(store, 4, log=AuditLog(chain=InlineChain()))
    assert chain_pending(store) == 0  # nothing left for the sealer
    assert verify_chain(store, keys.trust).intact
    store.dispose()


def _env(store: Store, keys: HubKeys) -> dict[str, str]:
    return {"HUB_DATABASE_URL": str(store.engine.url.render_as_string(hide_password=False)),
            "HUB_DATA_DIR": str(keys.store.layout.keys_dir.parent),
            "HUB_KEYS_DIR": str(keys.store.layout.keys_dir)}


def run_verifier(bundle: dict, keys: HubKeys, tmp_path: Path, ca: Path | None = None,
                 crl: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    layout = keys.store.layout
    return subprocess.run([sys.executable, str(VERIFIER), str(path), "--ca",
                           str(ca or layout.ca_cert), "--crl", str(crl or layout.crl)],
                          capture_output=True, text=True, timeout=60)


def test_an_exported_case_verifies_offline_and_tampering_does_not(store, keys, tmp_path):
    write(store, 3, case="DLA-2026-OTHER01")
    write(store, 2, case="DLA-2026-THECASE")
    make_checkpoint(store, keys.signer)
    write(store, 3, case="DLA-2026-OTHER01")
    write(store, 1, case="DLA-2026-THECASE")  # not covered yet: the export checkpoints first
    result = CliRunner().invoke(main, ["audit", "export", "--case", "DLA-2026-THECASE", "-o",
                                       str(tmp_path / "out.json")], env=_env(store, keys))
    assert result.exit_code == 0, result.output
    bundle = json.loads((tmp_path / "out.json").read_text("utf-8"))
    payload = bundle["payload"]
    assert [r["correlation_id"] for r in payload["records"]] == ["DLA-2026-THECASE"] * 3
    # Other cases appear as leaf digests only.
    assert "DLA-2026-OTHER01" not in json.dumps(payload["segments"])
    ok = run_verifier(bundle, keys, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 audit records of case DLA-2026-THECASE verified" in ok.stdout

    altered = json.loads(json.dumps(bundle))
    altered["payload"]["records"][0]["outcome"] = "never_sent"
    assert "REFUSED" in run_verifier(altered, keys, tmp_path).stdout
    resigned = json.loads(json.dumps(bundle))  # alter a chained record: the chain breaks
    for segment in resigned["payload"]["segments"]:
        for item in segment["links"]:
            if "leaf" in item:
                item["leaf"] = "00" * 32
    assert "REFUSED" in run_verifier(resigned, keys, tmp_path).stdout


def test_an_export_is_refused_against_another_ca(sqlite_store, keys, tmp_path):
    write(sqlite_store, 2, case="DLA-2026-THECASE")
    bundle = export_case(sqlite_store, keys, "DLA-2026-THECASE")
    other = tmp_path / "other"
    init_keys(other, parties=["hub"])
    result = run_verifier(bundle, keys, tmp_path, ca=other / "ca.cert.pem",
                          crl=other / "crl.pem")
    assert result.returncode == 1
    assert "not issued by the given CA" in result.stdout


def test_checkpoint_and_seal_commands(sqlite_store, keys):
    write(sqlite_store, 2)
    runner = CliRunner()
    assert "chained 2 records" in runner.invoke(main, ["audit", "seal"],
                                                env=_env(sqlite_store, keys)).output
    assert "checkpoint at position 2" in runner.invoke(main, ["audit", "checkpoint"],
                                                       env=_env(sqlite_store, keys)).output
    report = json.loads(runner.invoke(main, ["audit", "verify", "--json"],
                                      env=_env(sqlite_store, keys)).output)
    assert report["intact"] and report["last_good_checkpoint"] == 2
    with sqlite_store.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 1


def test_an_altered_audit_row_and_an_altered_broker_message_are_both_detected(hub_factory):
    from connectors.base import MockConnector, Reply
    from hub.delivery.broker import Message
    from hub.delivery.deadletters import list_dead_letters
    from hub.demo.scenarios import licence_request
    from hub.store.models import OutboxRow
    from hub.testing.plugin import wait_for

    mock = MockConnector(lambda env: Reply(outcome="authentic"), agency="narsa")
    hub = hub_factory(connectors={"narsa": lambda: mock})
    hub.setup()
    with hub.store.transaction() as session:
        opened = hub.cases.open(session, "driving_licence_authentication",
                                licence_request("authentic"), actor="test")
    with hub.store.session() as session:
        queued = session.scalars(select(OutboxRow)).one()
    document = json.loads(hub.store.privacy.decrypt_body(queued.body, queued.body_key,
                                                      message_id=queued.message_id))
    document["payload"]["licence"]["number"] = "99/999999"  # edited in the broker
    with hub.open_broker() as broker:
        broker.publish(Message(body=json.dumps(document).encode(), message_id=queued.message_id,
                               routing_key=queued.routing_key))
    with hub.run(relay=False, concurrency=1, chainer=True):
        wait_for(lambda: list_dead_letters(hub.store), what="the altered message parked")
    [parked] = list_dead_letters(hub.store)
    assert (parked.error_code, parked.correlation_id) == ("security.signature",
                                                          opened.case.reference)
    assert mock.calls == []
    assert verify_chain(hub.store, hub.keys.trust).intact  # the chainer chained every record
    with hub.store.transaction() as session:
        routed = session.scalars(select(AuditRow).where(AuditRow.action == "routed")).one()
        routed.details = {**routed.details, "agency": "dgsn"}  # and the trail is edited too
    [problem] = verify_chain(hub.store, hub.keys.trust).problems
    assert (problem.kind, problem.record_id) == ("record_altered", routed.id)
