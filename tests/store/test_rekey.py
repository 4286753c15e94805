"""Data-key rotation: a new key, every sealed row and document re-encrypted, the old key retired.

No sleeping: the settle time of the job is 0 here (no other process holds the old key).
"""
from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from hub.cases.book import find_case
from hub.cli import main
from hub.delivery.deadletters import get_dead_letter, list_dead_letters, plain_body
from hub.demo.scenarios import licence_request, repatriation_request
from hub.keyset import HubKeys
from hub.testing.agencies import staff_moves, wait_for_status
from hub.store.outbox import enqueue
from hub.envelope import Envelope, SchemaRef
from hub.store.rekey import Progress, rotate_and_reencrypt
from hub.runtime import Hub
from hub.testing.plugin import wait_for

CAUSE = "pulmonary embolism after surgery"
PDF = b"%PDF-1.7\n" + b"rotation test document\n" * 40

KEY_COLUMNS = {"cases": "data_key", "exchanges": "reply_key", "appointments": "holder_key",
               "outbox": "body_key", "dead_letters": "body_key", "attachments": "data_key"}


def _traffic(hub: Any) -> dict[str, str]:
    """Cases run to their end, a parked message and a stored document, under the first key."""
    with hub.run(concurrency=1):
        repatriation = hub.submit("repatriation_of_remains",
                                  repatriation_request(cause=CAUSE)).case.reference
        licence = hub.submit("driving_licence_authentication",
                             licence_request("authentic", serial=554433)).case.reference
        assert wait_for_status(hub, repatriation, "agencies_cleared") == "agencies_cleared"
        assert wait_for_status(hub, licence, "verified") == "verified"
        with hub.store.transaction() as session:
            enqueue(session, hub.seal.seal(Envelope.new(
                correlation_id=licence, service="driving_licence_authentication",
                kind="request", sender="ES-MAD", recipient="nowhere",
                schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                payload={"holder": {"cnie": "QL551237"}})), "agency.nowhere")
        hub.relay.wake()
        wait_for(lambda: list_dead_letters(hub.store), what="the message parked")
    staff_moves(hub, licence, "attestation_issued")
    with hub.store.transaction() as session:
        document = hub.attachments.put(session, PDF, declared_type="application/pdf",
                                       uploaded_by="applicant")
        case = find_case(session, repatriation)
        document.case_id = case.id
        case_id = case.id
    return {"repatriation": repatriation, "licence": licence, "document": document.id,
            "case_id": case_id}


def _key_ids_in_rows(hub: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with hub.store.engine.connect() as conn:
        for table, column in KEY_COLUMNS.items():
            found[table] = {row[0] for row in conn.execute(
                text(f'SELECT DISTINCT {column} FROM "{table}"')) if row[0] is not None}
    return found


def _raw_mentions(hub: Any, fragment: str) -> list[str]:
    tables = []
    with hub.store.engine.connect() as conn:
        for table in inspect(hub.store.engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                flat = " ".join(v.tobytes().decode("latin-1") if isinstance(v, memoryview)
                                else v.decode("latin-1") if isinstance(v, bytes)
                                else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
                                for v in row)
                if fragment in flat:
                    tables.append(table)
    return tables


def _readable(hub: Any, made: dict[str, str]) -> None:
    with hub.store.session() as session:
        case = find_case(session, made["repatriation"])
        assert case.data["deceased"]["cause_of_death"] == CAUSE
        content, _ = hub.attachments.read(session, made["document"], case_id=made["case_id"])
        assert content == PDF
    parked = get_dead_letter(hub.store, list_dead_letters(hub.store)[0].id)
    assert b"QL551237" in plain_body(hub.store, parked)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rotation.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_rotation_reencrypts_every_row_and_retires_the_old_key(mock_hub: Any,
                                                              database_url: str) -> None:
    hub = mock_hub(database_url=database_url)
    made = _traffic(hub)
    old = hub.keys.data.active_key_id
    assert old in set().union(*_key_ids_in_rows(hub).values())
    lines: list[Progress] = []

    report = rotate_and_reencrypt(hub.reencryption(batch=3), settle=0,
                                  progress=lambda p: lines.append(Progress(p.total, p.done)))

    new = hub.keys.data.active_key_id
    assert new != old and report.complete and report.retired == [old]
    assert report.moved["cases"] == 2 and report.moved["attachments"] == 1
    assert report.moved["outbox"] >= 1 and report.moved["dead_letters"] == 1
    assert lines[0].done == 0 and lines[-1].done == lines[0].total  # progress went to the end
    assert all(ids <= {new} for ids in _key_ids_in_rows(hub).values())
    assert _raw_mentions(hub, f"enc:v1:{old}:") == []
    assert old not in hub.keys.data.key_ids
    assert old not in (hub.settings.keys_dir / "data-keys.json").read_text()
    _readable(hub, made)
    # Another process (a restart) reads everything with the ring on disk.
    again = Hub(hub.settings, store=None, agencies=hub.agencies,
                keys=HubKeys.load(hub.settings))
    try:
        _readable(again, made)
    finally:
        again.close()


def test_an_interrupted_reencryption_resumes_where_it_stopped(mock_hub: Any,
                                                             database_url: str) -> None:
    hub = mock_hub(database_url=database_url)
    made = _traffic(hub)
    old = hub.keys.data.active_key_id
    stop = threading.Event()

    def interrupt(progress: Progress) -> None:
        if progress.done >= 2:
            stop.set()  # e.g. SIGTERM during a deployment: the batch in hand commits, no more

    first = rotate_and_reencrypt(hub.reencryption(batch=1), settle=0, progress=interrupt,
                                 stop=stop)
    new = hub.keys.data.active_key_id
    assert not first.complete and first.retired == []
    assert old in hub.keys.data.key_ids  # still needed by the rows not moved yet
    left = hub.reencryption().pending()
    assert 0 < sum(left.values())
    assert old in set().union(*_key_ids_in_rows(hub).values())
    _readable(hub, made)  # meanwhile, rows under either key are read as usual

    # A new run (`hub keys reencrypt`) finds what is left by the rows' key ids.
    resumed = rotate_and_reencrypt(hub.reencryption(batch=50), rotate=False, settle=0)
    assert resumed.complete and resumed.retired == [old]
    assert sum(resumed.moved.values()) == sum(left.values())
    assert hub.keys.data.active_key_id == new
    assert all(ids <= {new} for ids in _key_ids_in_rows(hub).values())
    _readable(hub, made)


def test_traffic_during_a_rotation_is_sealed_with_the_new_key(mock_hub: Any) -> None:
    hub = mock_hub()
    old = hub.keys.data.active_key_id
    hub.keys.data.rotate()
    reference = hub.submit("driving_licence_authentication",
                           licence_request("authentic", serial=554434)).case.reference
    with hub.store.session() as session:
        assert find_case(session, reference).data_key == hub.keys.data.active_key_id != old


def test_a_row_sealed_with_an_unknown_key_blocks_retirement_but_not_the_others(
        mock_hub: Any) -> None:
    hub = mock_hub()
    made = _traffic(hub)
    old = hub.keys.data.active_key_id
    with hub.store.engine.begin() as conn:  # a reply sealed with a key this ring never had
        conn.execute(text("UPDATE exchanges SET reply = replace(reply, :old, 'kgone') WHERE id = "
                          "(SELECT min(id) FROM exchanges WHERE reply LIKE '%enc:v1:%')"),
                     {"old": old})
    report = rotate_and_reencrypt(hub.reencryption(batch=10), settle=0)
    assert not report.complete and len(report.failed) == 1
    assert report.failed[0].startswith("exchanges:")
    assert report.retired == [] and old in hub.keys.data.key_ids
    _readable(hub, made)


def test_hub_keys_rotate_cli_prints_progress_and_retires(mock_hub: Any) -> None:
    hub = mock_hub()
    made = _traffic(hub)
    old = hub.keys.data.active_key_id
    env = {"HUB_DATA_DIR": str(hub.settings.data_dir), "HUB_LOG_LEVEL": "ERROR"}
    result = CliRunner().invoke(main, ["keys", "rotate", "--batch", "2", "--settle", "0"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert "re-encrypting with" in result.stderr and "(100%)" in result.stderr
    assert f"retired: {old}" in result.stdout
    # This process's ring sees the new key when it meets it (it reloads the file).
    hub.keys.data.reload()
    assert old not in hub.keys.data.key_ids
    _readable(hub, made)
    again = CliRunner().invoke(main, ["keys", "reencrypt"], env=env)
    assert again.exit_code == 0, again.output
    assert "re-encrypted 0 rows" in again.stdout
