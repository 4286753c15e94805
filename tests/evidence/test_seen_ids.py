"""Replay protection in the database: atomic seen ids on SQLite and PostgreSQL, their purge, and
the one-call verifier (signature -> certificate -> replay -> signed content only)."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree
from sqlalchemy import func, select

from hub.errors import ReplayDetected, SignatureInvalid, UntrustedCertificate
from hub.evidence.seen import SessionSeenIds, StoreSeenIds, purge_seen
from hub.store import Store
from hub.store.models import SeenMessage
from hub.evidence.verification import XROAD_ID, MessageVerifier
from security.jws import sign_json
from security.pki import issue
from security.keys import Signer
from security.xmldsig import SOAP11_NS, sign_soap, to_bytes


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    url = (request.getfixturevalue("postgres_url") if request.param == "postgres"
           else f"sqlite:///{tmp_path / 'hub.db'}")
    store = Store.from_url(url)
    store.upgrade()
    yield store
    store.dispose()


def test_a_message_id_is_accepted_once_per_party_even_when_racing(db):
    seen = StoreSeenIds(db)
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        results.append(seen.add_if_new("narsa", "m-1"))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 5 + [True]
    assert seen.add_if_new("dgsn", "m-1") is True  # ids are per party


def test_the_seen_mark_commits_with_the_effect_or_not_at_all(db):
    with pytest.raises(RuntimeError):
        with db.transaction() as session:
            assert SessionSeenIds(session).add_if_new("health", "cb-1")
            raise RuntimeError("processing failed before commit")
    # The agency's retry of the same message is not a replay of a message that had no effect.
    with db.transaction() as session:
        assert SessionSeenIds(session).add_if_new("health", "cb-1")
        assert not SessionSeenIds(session).add_if_new("health", "cb-1")


def test_purge_forgets_only_ids_older_than_the_retention(db):
    seen = StoreSeenIds(db)
    for n in range(3):
        seen.add_if_new("narsa", f"m-{n}")
    later = datetime.now(timezone.utc) + timedelta(minutes=10)
    assert purge_seen(db, older_than=timedelta(minutes=30), now=later) == 0
    assert purge_seen(db, older_than=timedelta(minutes=6), now=later) == 3
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(SeenMessage)) == 0


class Seen:
    def __init__(self) -> None:
        self.ids: set[tuple[str, str]] = set()

    def add_if_new(self, party: str, message_id: str) -> bool:
        if (party, message_id) in self.ids:
            return False
        self.ids.add((party, message_id))
        return True


@pytest.fixture
def verifier(trust, clock) -> MessageVerifier:
    trust.clock = clock
    return MessageVerifier(trust, window_seconds=300, skew_seconds=60, clock=clock)


def test_jws_is_verified_then_accepted_once(verifier, store, clock):
    seen = Seen()
    token = sign_json(b'{"decision":"cleared"}', store.signer("health"), message_id="h-1",
                      now=clock.now)
    verified = verifier.jws(token, "health", seen)
    assert verified.json() == {"decision": "cleared"}
    with pytest.raises(ReplayDetected) as caught:
        verifier.jws(token, "health", seen)
    assert caught.value.details["reason"] == "seen"
    stale = sign_json(b"{}", store.signer("health"), message_id="h-2",
                      now=clock.now - timedelta(minutes=6))
    with pytest.raises(ReplayDetected, match="older than"):
        verifier.jws(stale, "health", seen)
    future = sign_json(b"{}", store.signer("health"), message_id="h-3",
                       now=clock.now + timedelta(minutes=5))
    with pytest.raises(ReplayDetected, match="future"):
        verifier.jws(future, "health", seen)
    # Signed by another agency: refused before the replay store is touched.
    with pytest.raises(UntrustedCertificate):
        verifier.jws(sign_json(b"{}", store.signer("narsa"), message_id="h-4", now=clock.now),
                     "health", seen)
    with pytest.raises(SignatureInvalid, match="unsigned"):
        verifier.jws(b"", "health", seen)
    assert seen.ids == {("health", "h-1")}


def test_expired_certificate_is_refused(verifier, pki, trust, clock):
    old = issue(pki, "health", not_before=clock.now - timedelta(days=10),
                not_after=clock.now - timedelta(days=1))
    trust.add_certificate("health", old.cert)
    token = sign_json(b"{}", Signer("health", old.key, old.cert), message_id="h-9", now=clock.now)
    with pytest.raises(UntrustedCertificate, match="expired"):
        verifier.jws(token, "health", Seen())


def soap(message_id: str) -> etree._Element:
    return etree.fromstring(f"""<s:Envelope xmlns:s="{SOAP11_NS}"
        xmlns:xrd="http://x-road.eu/xsd/xroad.xsd"><s:Header><xrd:id>{message_id}</xrd:id>
        </s:Header><s:Body><r:Answer xmlns:r="urn:dgsn:identity:v1">confirmed</r:Answer></s:Body>
        </s:Envelope>""".encode())


def test_soap_is_verified_on_its_signed_id_and_timestamp_then_accepted_once(verifier, store):
    seen = Seen()
    message_id = str(uuid.uuid4())
    signed = to_bytes(sign_soap(soap(message_id), store.signer("dgsn"), sign_headers=[XROAD_ID]))
    verified = verifier.soap(signed, "dgsn", seen)
    assert verified.signed_xml.tag == f"{{{SOAP11_NS}}}Body"
    with pytest.raises(ReplayDetected, match="already received"):
        verifier.soap(signed, "dgsn", seen)
    # The id header exists but is not signed: the id could be rewritten to dodge the check.
    unsigned_id = to_bytes(sign_soap(soap(str(uuid.uuid4())), store.signer("dgsn")))
    with pytest.raises(SignatureInvalid, match="not signed"):
        verifier.soap(unsigned_id, "dgsn", seen)


def test_the_scheduled_purge_forgets_ids_past_the_hubs_replay_window(hub_factory):
    hub = hub_factory(env={"HUB_REPLAY_WINDOW": "120", "HUB_REPLAY_SKEW": "30"})
    hub.setup()
    seen = StoreSeenIds(hub.store)
    seen.add_if_new("narsa", "m-1")
    now = datetime.now(timezone.utc)
    assert purge_seen(hub.store, older_than=hub.settings.seen_id_retention,
                      now=now + timedelta(seconds=140)) == 0  # still inside 150 s
    assert purge_seen(hub.store, older_than=hub.settings.seen_id_retention,
                      now=now + timedelta(seconds=160)) == 1
    assert seen.add_if_new("narsa", "m-1")  # forgotten: its timestamp alone refuses it now


def test_deferred_ids_are_written_with_the_effect_and_a_repeat_is_a_replay(hub_factory):
    from hub.errors import ConfigurationError
    from hub.evidence.seen import DeferredSeenIds, add_all_if_new

    hub = hub_factory()
    hub.setup()
    deferred = DeferredSeenIds(hub.store)
    with pytest.raises(ConfigurationError):
        deferred.add_if_new("narsa", "m-0")  # only while a caller collects
    with deferred.collecting() as marks:
        assert deferred.add_if_new("narsa", "m-1") and deferred.add_if_new("narsa", "m-2")
    assert marks == [("narsa", "m-1"), ("narsa", "m-2")]
    with hub.store.session() as session:  # nothing written yet: the caller writes them
        assert session.scalar(select(func.count()).select_from(SeenMessage)) == 0
    with hub.store.transaction() as session:
        add_all_if_new(session, marks)
    with deferred.collecting() as again:
        assert not deferred.add_if_new("narsa", "m-1")  # already recorded: refused at once
    assert again == []
    with pytest.raises(ReplayDetected):  # two deliveries racing: the write decides
        with hub.store.transaction() as session:
            add_all_if_new(session, [("narsa", "m-3"), ("narsa", "m-2")])
    with pytest.raises(ReplayDetected):  # twice in one batch
        with hub.store.transaction() as session:
            add_all_if_new(session, [("narsa", "m-4"), ("narsa", "m-4")])
    with hub.store.session() as session:
        assert set(session.scalars(select(SeenMessage.message_id))) == {"m-1", "m-2"}
