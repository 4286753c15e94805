"""Encryption at rest: after real traffic, no table of the database holds personal data in clear.

Cases of the services that carry the most sensitive data (repatriation with a cause of death, a
driving licence, a consular registration then a certificate that looks the registration up) are
run to their end with mock agencies; a message is parked on the way; then every row of every
table is read with plain SQL (no model, no keys) and searched for each known personal value and
its normalized spellings. On SQLite and on PostgreSQL.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from sqlalchemy import inspect, select, text

from hub.addresses import agency_routing_key
from hub.cases.book import find_case
from hub.delivery.deadletters import get_dead_letter, list_dead_letters, plain_body
from hub.demo.scenarios import (certificate_request, licence_request, registration_request,
                                repatriation_request)
from hub.envelope import Envelope, SchemaRef
from hub.keyset import normalize_document
from hub.testing.agencies import staff_moves, wait_for_status
from hub.store.outbox import enqueue
from hub.store.privacy import cases_with_document
from hub.store.models import CaseIdentity, CaseRow, ExchangeRow
from hub.testing.plugin import wait_for

# Distinctive values, so that a hit can only be a leak.
CNIE = "QX482913"
PASSPORT = "QP7730521"
DECEASED_CNIE = "BK902741"
CAUSE = "ruptured abdominal aortic aneurysm"
PERSONAL = {
    "cnie": CNIE, "passport": PASSPORT, "deceased cnie": DECEASED_CNIE, "cause of death": CAUSE,
    "last name": "Oumghar", "first name": "Zineb", "birth date": "1971-08-14",
    "deceased name": "Belkhayat", "deceased first name": "Abdelilah",
    "deceased birth date": "1939-04-27", "date of death": "2025-10-09",
    "family contact": "Rachida Belkhayat", "family phone": "+212661234987",
    "family address": "27 derb Sidi Bouloukat", "email": "z.oumghar@example.net",
    "phone": "+34699887766", "licence holder cnie": "QL551237", "spouse": "Hamid Tazarine",
    "residence address": "Calle Ibiza 48", "residence permit": "Y7654321K",
}


def _registration() -> dict[str, Any]:
    data = registration_request(cnie=CNIE)
    data["person"].update(passport_number=PASSPORT, last_name="Oumghar", first_name="Zineb",
                          birth_date="1971-08-14")
    data["civil"]["spouse_name"] = "Hamid Tazarine"
    data["residence"]["address"]["line1"] = "Calle Ibiza 48"
    data["residence"]["permit"]["number"] = "Y7654321K"
    data["contact"] = {"email": "z.oumghar@example.net", "phone": "+34699887766"}
    return data


def _certificate() -> dict[str, Any]:
    data = certificate_request(cnie=CNIE)
    data["person"].update(cnie=CNIE, passport_number=PASSPORT,
                          last_name="Oumghar", first_name="Zineb", birth_date="1971-08-14")
    data["contact"] = {"email": "z.oumghar@example.net", "phone": "+34699887766"}
    return data


def _repatriation() -> dict[str, Any]:
    data = repatriation_request(cnie=DECEASED_CNIE, cause=CAUSE)
    data["deceased"].update(last_name="Belkhayat", first_name="Abdelilah",
                            birth_date="1939-04-27", date_of_death="2025-10-09")
    data["family_contact"].update(name="Rachida Belkhayat", phone="+212661234987")
    data["family_contact"]["address"]["line1"] = "27 derb Sidi Bouloukat"
    data["transport"]["receiver_name"] = "Rachida Belkhayat"
    return data


def _licence() -> dict[str, Any]:
    data = licence_request("authentic", serial=734512)
    data["holder"].update(cnie="QL551237", last_name="Oumghar", first_name="Zineb",
                          birth_date="1971-08-14")
    data["applicant"] = {"email": "z.oumghar@example.net", "phone": "+34699887766"}
    return data


def _variants(value: str) -> set[str]:
    """The spellings a leak could take: as typed, cased, normalized, digits only, JSON-escaped."""
    found = {value, value.upper(), value.lower(), normalize_document(value),
             json.dumps(value)[1:-1]}
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) >= 8:
        found.add(digits)
    return {v for v in found if len(v) >= 6}


def _raw_text(engine: Any) -> Iterator[tuple[str, str]]:
    """(table, text of one row) for every row of every table, read without models or keys."""
    for table in inspect(engine).get_table_names():
        with engine.connect() as conn:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                parts = []
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    if isinstance(value, bytes):
                        parts.append(value.decode("latin-1"))
                    elif isinstance(value, (dict, list)):
                        parts.append(json.dumps(value, ensure_ascii=False))
                    else:
                        parts.append(str(value))
                yield table, "\x1f".join(parts)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'at-rest.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_no_personal_value_in_clear_in_any_table(mock_hub: Any, database_url: str) -> None:
    hub = mock_hub(database_url=database_url)
    with hub.run(concurrency=1):
        registration = hub.submit("consular_registration_new", _registration()).case.reference
        repatriation = hub.submit("repatriation_of_remains", _repatriation()).case.reference
        licence = hub.submit("driving_licence_authentication", _licence()).case.reference
        assert wait_for_status(hub, registration, "identity_verified") == "identity_verified"
        assert wait_for_status(hub, repatriation, "agencies_cleared") == "agencies_cleared"
        assert wait_for_status(hub, licence, "verified") == "verified"
        staff_moves(hub, registration, "registered")
        staff_moves(hub, repatriation, "authorisation_issued")
        staff_moves(hub, licence, "attestation_issued")
        # The certificate's local check finds the registration through the blind index.
        certificate = hub.submit("registration_certificate", _certificate()).case.reference
        assert wait_for_status(hub, certificate, "eligible") == "eligible"
        # A message nobody can route is parked with its (personal) payload.
        with hub.store.transaction() as session:
            enqueue(session, hub.seal.seal(Envelope.new(
                correlation_id=licence, service="driving_licence_authentication",
                kind="request", sender="ES-MAD", recipient="nowhere",
                schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                payload={"holder": {"cnie": "QL551237", "last_name": "Oumghar"}})),
                agency_routing_key("nowhere"))
        hub.relay.wake()
        wait_for(lambda: list_dead_letters(hub.store), what="the message parked")

    # The application still reads everything in clear, through the keys.
    with hub.store.session() as session:
        case = find_case(session, repatriation)
        assert case.data["deceased"]["cause_of_death"] == CAUSE
        assert case.data_key == hub.keys.data.active_key_id
        replies = session.scalars(select(ExchangeRow).where(ExchangeRow.case_id == case.id))
        assert all(r.reply_key == hub.keys.data.active_key_id for r in replies)
        digests = set(session.scalars(select(CaseIdentity.digest).join(
            CaseRow, CaseRow.id == CaseIdentity.case_id).where(CaseRow.reference == registration)))
        assert hub.keys.index.digest("cnie", CNIE) in digests
        # Search by document number, however it is typed, without decrypting any case.
        assert cases_with_document(session, "cnie", f"{CNIE[:4].lower()}-{CNIE[4:]}") == \
            sorted([registration, certificate])
        assert cases_with_document(session, "passport", CNIE) == []
    parked = get_dead_letter(hub.store, list_dead_letters(hub.store)[0].id)
    assert b"QL551237" in plain_body(hub.store, parked)

    leaks = []
    scanned = set()
    for table, row_text in _raw_text(hub.store.engine):
        scanned.add(table)
        for what, value in PERSONAL.items():
            for variant in _variants(value):
                if variant in row_text:
                    leaks.append((table, what, variant))
    assert {"cases", "case_events", "exchanges", "outbox", "dead_letters", "audit_records",
            "operational_records", "case_identities"} <= scanned
    assert leaks == []
    # The scan finds a value that is in clear (so an empty result above means something).
    with hub.store.engine.begin() as conn:
        conn.execute(text("UPDATE case_events SET reason = :v WHERE id = (SELECT min(id) FROM "
                          "case_events)"), {"v": f"note about {CNIE.lower()}"})
    assert any(CNIE.lower() in row_text for _, row_text in _raw_text(hub.store.engine))


def test_a_sealed_value_moved_to_another_row_does_not_open(mock_hub: Any) -> None:
    """The context binds each token to its row: copying one case's data into another fails."""
    hub = mock_hub()
    first = hub.submit("driving_licence_authentication", _licence()).case.reference
    second = hub.submit("driving_licence_authentication", _licence()).case.reference
    with hub.store.engine.begin() as conn:
        stolen = conn.execute(text("SELECT data FROM cases WHERE reference = :r"),
                              {"r": first}).scalar_one()
        conn.execute(text("UPDATE cases SET data = :d WHERE reference = :r"),
                     {"d": stolen if isinstance(stolen, str) else json.dumps(stolen),
                      "r": second})
    with hub.store.session() as session:
        assert find_case(session, first).data["holder"]["cnie"] == "QL551237"
        with pytest.raises(Exception, match="failed authentication"):
            _ = find_case(session, second).data


@pytest.mark.parametrize("with_keys", [True, False], ids=["upgrade-with-keys", "reencrypt-later"])
def test_rows_stored_in_clear_before_the_migration_are_sealed(hub_factory: Any, database_url: str,
                                                             with_keys: bool) -> None:
    from hub.store import Store

    hub = hub_factory(database_url=database_url)
    hub.store.upgrade("0008_audit_chain")  # the schema of the release before encryption at rest
    data = _licence()
    with hub.store.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO cases (id, reference, service, service_version, status, post, language,"
            " data, route_round, created_at, updated_at, version) VALUES ('c-1', 'DLA-2025-"
            "ABCDEF1', 'driving_licence_authentication', '1', 'verified', 'ES-MAD', 'fr', "
            f"{'CAST(:data AS JSON)' if database_url.startswith('postgres') else ':data'},"
            " 1, '2025-01-01 00:00:00', '2025-01-01 00:00:00', 1)"), {"data": json.dumps(data)})
        conn.execute(text("INSERT INTO outbox (message_id, routing_key, headers, body, created_at)"
                          " VALUES ('m-1', 'agency.narsa', '{}', :body, '2025-01-01 00:00:00')"),
                     {"body": json.dumps({"payload": data["holder"]}).encode()})
    if with_keys:
        hub.setup()  # Hub.setup upgrades with the data keys: the migration seals the rows
    else:
        bare = Store.from_url(hub.settings.database_url)  # `hub db upgrade` without keys
        bare.upgrade()
        bare.dispose()
        assert any("QL551237" in row for _, row in _raw_text(hub.store.engine))
        report = hub.reencryption().run()  # what `hub keys reencrypt` runs
        assert report.moved["cases"] == 1 and report.moved["outbox"] == 1
    assert not any("QL551237" in row or "Oumghar" in row
                   for _, row in _raw_text(hub.store.engine))
    with hub.store.session() as session:
        case = session.get(CaseRow, "c-1")
        assert case.data == data and case.data_key == hub.keys.data.active_key_id
        assert set(session.scalars(select(CaseIdentity.path).where(
            CaseIdentity.case_id == "c-1"))) == {"holder.cnie", "licence.number"}


def test_identity_digests_are_rewritten_only_when_the_documents_change(mock_hub: Any) -> None:
    hub = mock_hub()
    with hub.store.transaction() as session:
        reference = hub.cases.open(session, "driving_licence_authentication",
                                   licence_request("authentic", serial=445566),
                                   actor="test").case.reference

    def identities() -> dict[str, tuple[int, str]]:
        with hub.store.session() as session:
            case = find_case(session, reference)
            return {row.path: (row.id, row.digest) for row in session.scalars(
                select(CaseIdentity).where(CaseIdentity.case_id == case.id))}

    first = identities()
    assert first
    with hub.store.transaction() as session:  # data changed, documents not: rows kept
        case = find_case(session, reference)
        case.data = {**case.data, "note": "changed"}
    assert identities() == first
    with hub.store.transaction() as session:  # a document changed: digests rewritten
        case = find_case(session, reference)
        data = json.loads(json.dumps(case.data))
        data["holder"]["cnie"] = "ZX998877"
        case.data = data
    assert identities() != first
    with hub.store.session() as session:
        assert cases_with_document(session, "cnie", "ZX998877") == [reference]
