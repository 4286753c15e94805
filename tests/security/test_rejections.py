"""Every hostile or unacceptable message, sent through the hub's real entry points.

One crafted message per rejection, one table per entry point:

- Justice -> hub SOAP (``POST /inbound/v1/justice``, real socket): XML-DSig, X-Road id, XML limits;
- Health -> hub callback (``POST /inbound/v1/health/clearances/<id>``, real socket): detached JWS;
- agency answers arriving at the connectors (simulators with fault injection or another key);
- messages on the broker consumed by the workers (sealed envelopes);
- the applicants' intake API (Flask test client, the entry point of the pages too).

For each refusal the test checks the precise status and code (the SOAP fault's detail code for
Justice; the localized field list for applicants), the audit record of the refusal (``rejected``
at the front door, ``dead_lettered`` for what came from the broker), that nothing was
half-written (no case, no queued answer, no seen id burned), and for broker-borne input the dead
letter with its reason, as ``hub dlq list`` shows it.

Certificates: besides the development PKI of the hub's fixture, each test PKI holds an expired
and a revoked (CRL) certificate for the agencies, and a foreign CA issues certificates with the
same party names. ``HUB_REPLAY_WINDOW`` is short and ``HUB_MAX_MESSAGE_BYTES`` small so that a
stale message and an oversized one are cheap to make.
"""
from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import func, select

from connectors.signing import JWS_HEADER
from connectors.xml import SOAP_ENV, XROAD, XRoadHeader, parse_xml
from hub.delivery.broker import Message
from hub.delivery.deadletters import plain_body, list_dead_letters
from hub.testing.samples import certificates, deceased
from hub.demo.scenarios import licence_request, sample_request
from hub.envelope import canonical_json
from hub.keyset import init_keys
from hub.store.models import AuditRow, CaseRow, DeadLetterRow, OutboxRow, SeenMessage
from hub.testing.plugin import wait_for
from security.jws import sign_detached
from security.keys import KeyStore, Signer
from security.pki import init_pki, issue, revoke
from security.xmldsig import sign_soap, to_bytes

WINDOW = 120            # HUB_REPLAY_WINDOW of these tests (seconds)
LIMIT = 64 * 1024       # HUB_MAX_MESSAGE_BYTES of these tests
AGENCIES = ("justice", "health", "narsa", "dgsn")
JUDICIAL = "urn:ma:gov:maec:econsulat:judicial:v1"
XROAD_ID = f"{{{XROAD}}}id"
WSU_ID = ("{http://docs.oasis-open.org/wss/2004/01/"
          "oasis-200401-wss-wssecurity-utility-1.0.xsd}Id")


# -- the world: a hub with live simulators, and certificates it must refuse ---------------------

@dataclass
class Credentials:
    """Signers an attacker (or a careless agency) could use, per party."""

    good: dict[str, Signer]
    expired: dict[str, Signer]
    revoked: dict[str, Signer]
    foreign: dict[str, Signer]

    def signer(self, kind: str, party: str) -> Signer:
        return getattr(self, kind)[party]


def make_credentials(keys_dir: Path, tmp_path: Path) -> Credentials:
    """Before the hub starts (it reads the CRL once): an expired and a revoked certificate per
    agency from our CA, and certificates with the same names from a foreign CA."""
    init_keys(keys_dir)
    now = datetime.now(timezone.utc)
    expired, revoked = {}, {}
    for party in AGENCIES:
        old = issue(keys_dir, party, not_before=now - timedelta(days=30),
                    not_after=now - timedelta(days=1))
        expired[party] = Signer(party, old.key, old.cert)
        withdrawn = issue(keys_dir, party)
        revoke(keys_dir, cert=withdrawn.cert)
        revoked[party] = Signer(party, withdrawn.key, withdrawn.cert)
    foreign_dir = tmp_path / "foreign-ca" / "keys"
    init_pki(foreign_dir, ["hub", *AGENCIES])
    foreign = KeyStore.load(foreign_dir, own=["hub", *AGENCIES])
    good = KeyStore.load(keys_dir, own=list(AGENCIES))
    return Credentials(good={p: good.signer(p) for p in AGENCIES}, expired=expired,
                       revoked=revoked, foreign={p: foreign.signer(p) for p in
                                                 ("hub", *AGENCIES)})


@pytest.fixture
def credentials(tmp_path: Path) -> Credentials:
    return make_credentials(tmp_path / "data" / "keys", tmp_path)  # the hub fixture's keys


#: A test service asking Health only, so that nothing else moves while a callback is refused.
CLEARANCE_ONLY = Path(__file__).parent.parent / "data" / "clearance_only"


@pytest.fixture
def world(agency_hub, credentials, tmp_path: Path):  # type: ignore[no-untyped-def]
    world = agency_hub(extra_definitions=[CLEARANCE_ONLY],
                       env={"HUB_REPLAY_WINDOW": str(WINDOW), "HUB_MAX_MESSAGE_BYTES": str(LIMIT)})
    # A JWS names its certificate by thumbprint, so the hub must know the expired and revoked
    # ones for their dates and the CRL to be what refuses them (rather than "unknown kid").
    for party in AGENCIES:
        for signer in (credentials.expired[party], credentials.revoked[party]):
            world.hub.keys.trust.add_certificate(party, signer.cert)
    return world


def count(world: Any, model: Any, *where: Any) -> int:
    with world.hub.store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def rejections(world: Any) -> list[AuditRow]:
    with world.hub.store.session() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.action == "rejected")))


def assert_audited_once(world: Any, *, component: str, code: str, status: int,
                        reason: str | None) -> AuditRow:
    [row] = rejections(world)
    assert (row.component, row.outcome, row.details["status"]) == (component, code, status)
    assert row.details.get("reason") == reason
    assert row.actor.startswith("agency:")
    return row


# -- Justice -> hub: SOAP with XML-DSig --------------------------------------------------------

DOCUMENT = {
    "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
    "courtCaseNumber": "2026/1201/455",
    "document": {"type": "SUMMONS", "title": "Convocation", "issuedOn": "2026-11-20"},
    "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                  "address": {"line1": "12 calle Mayor", "city": "Madrid", "country": "ES"}},
}


class Justice:
    """Builds SubmitJudicialDocument messages as Justice's zeep client would, then signs them
    (or not) with whichever key the attack calls for."""

    def __init__(self, world: Any, credentials: Credentials) -> None:
        import zeep

        from connectors.soap import LocalTransport

        self.world, self.credentials = world, credentials
        self.url = f"{world.server.url}/inbound/v1/justice"
        session = requests.Session()
        session.trust_env = False
        self.client = zeep.Client(f"{self.url}?wsdl", transport=LocalTransport(
            session=session, timeout=5, allowed=(world.server.url,)))

    def message(self, message_id: str | None = None) -> etree._Element:
        reference = f"MJ-2026-{uuid.uuid4().int % 10**6:06d}"
        header = XRoadHeader(client="MA/GOV/JUSTICE/NOTIFICATIONS",
                             service="MA/GOV/MAEC/ECONSULAT-HUB/submitJudicialDocument/v1",
                             id=message_id or str(uuid.uuid4()), issue=reference)
        return self.client.create_message(self.client.service, "SubmitJudicialDocument",
                                          _soapheaders=header.elements(),
                                          justiceReference=reference, **DOCUMENT)

    def signed(self, kind: str = "good", *, now: datetime | None = None,
               message_id: str | None = None) -> etree._Element:
        return sign_soap(self.message(message_id), self.credentials.signer(kind, "justice"),
                         sign_headers=[XROAD_ID], now=now)

    def post(self, data: bytes, content_type: str = "text/xml; charset=utf-8"
             ) -> requests.Response:
        return requests.post(self.url, data=data, timeout=10, headers={
            "Content-Type": content_type,
            "Authorization": f"Bearer {self.world.tokens['justice']}"})


def wrapped(signed: etree._Element) -> etree._Element:
    """XSW: the signed Body moved into a header wrapper, a forged Body (same shape, another
    addressee, no Id) in its place; every signed byte is still there and still verifies."""
    document = copy.deepcopy(signed)
    body = document.find(f"{{{SOAP_ENV}}}Body")
    forged = copy.deepcopy(body)
    forged.attrib.pop(WSU_ID, None)
    forged.find(".//{*}city").text = "Girona"
    wrapper = etree.SubElement(document.find(f"{{{SOAP_ENV}}}Header"), "{urn:attacker}Wrapper")
    document.remove(body)
    wrapper.append(body)
    document.append(forged)
    return document


ENVELOPE_OPEN = b'<soapenv:Envelope xmlns:soapenv="' + SOAP_ENV.encode() + b'"><soapenv:Body>'
ENVELOPE_CLOSE = b"</soapenv:Body></soapenv:Envelope>"
XXE = (b'<?xml version="1.0"?><!DOCTYPE soapenv:Envelope [<!ENTITY xxe SYSTEM '
       b'"file:///etc/passwd">]><soapenv:Envelope xmlns:soapenv="' + SOAP_ENV.encode()
       + b'"><soapenv:Body><x>&xxe;</x></soapenv:Body></soapenv:Envelope>')
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;")
                                                 * 10) for i in range(1, 10))
          + b']><soapenv:Envelope xmlns:soapenv="' + SOAP_ENV.encode()
          + b'"><soapenv:Body><x>&lol9;</x></soapenv:Body></soapenv:Envelope>')
EXTERNAL_DTD = (b'<?xml version="1.0"?><!DOCTYPE soapenv:Envelope SYSTEM '
                b'"http://203.0.113.9/evil.dtd">' + ENVELOPE_OPEN + b"<x/>" + ENVELOPE_CLOSE)
STYLESHEET = (b'<?xml version="1.0"?><?xml-stylesheet href="http://203.0.113.9/x.xsl"?>'
              + ENVELOPE_OPEN + b"<x/>" + ENVELOPE_CLOSE)
DEEP_XML = ENVELOPE_OPEN + b"<d>" * 100 + b"</d>" * 100 + ENVELOPE_CLOSE
BIG_XML = ENVELOPE_OPEN + b"<!--" + b"x" * LIMIT + b"-->" + ENVELOPE_CLOSE


def stale() -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=WINDOW + 30)


#: attack -> (how to build it from a `Justice`, HTTP status, fault detail code, audited hub code,
#: audited reason)
JUSTICE_ATTACKS: dict[str, tuple[Callable[[Justice], tuple[bytes, str]], int, str, str,
                                 str | None]] = {
    "unsigned": (lambda j: (to_bytes(j.message()), "text/xml"),
                 401, "SIGNATURE_INVALID", "security.signature", "unsigned"),
    "unknown certificate (foreign CA)": (lambda j: (to_bytes(j.signed("foreign")), "text/xml"),
                                         401, "UNTRUSTED_CERTIFICATE", "security.certificate",
                                         "untrusted_issuer"),
    "expired certificate": (lambda j: (to_bytes(j.signed("expired")), "text/xml"),
                            401, "UNTRUSTED_CERTIFICATE", "security.certificate", "expired"),
    "revoked certificate (CRL)": (lambda j: (to_bytes(j.signed("revoked")), "text/xml"),
                                  401, "UNTRUSTED_CERTIFICATE", "security.certificate",
                                  "revoked"),
    "signature wrapping": (lambda j: (to_bytes(wrapped(j.signed())), "text/xml"),
                           401, "SIGNATURE_INVALID", "security.signature", "body_not_signed"),
    "timestamp outside the window": (lambda j: (to_bytes(j.signed(now=stale())), "text/xml"),
                                     401, "REPLAY_DETECTED", "security.replay", "stale"),
    "XXE external entity": (lambda j: (XXE, "text/xml"),
                            400, "HOSTILE_INPUT", "message.hostile", None),
    "billion laughs": (lambda j: (LAUGHS, "text/xml"),
                       400, "HOSTILE_INPUT", "message.hostile", None),
    "external DTD": (lambda j: (EXTERNAL_DTD, "text/xml"),
                     400, "HOSTILE_INPUT", "message.hostile", None),
    "processing instruction": (lambda j: (STYLESHEET, "text/xml"),
                               400, "HOSTILE_INPUT", "message.hostile", None),
    "too deep": (lambda j: (DEEP_XML, "text/xml"), 400, "HOSTILE_INPUT", "message.hostile", None),
    "not well-formed": (lambda j: (ENVELOPE_OPEN + b"<x>", "text/xml"),
                        400, "MALFORMED_MESSAGE", "message.malformed", None),
    "oversized": (lambda j: (BIG_XML, "text/xml"),
                  413, "MESSAGE_TOO_LARGE", "message.too_large", None),
    "wrong content type": (lambda j: (to_bytes(j.signed()), "application/json"),
                           415, "UNSUPPORTED_MEDIA_TYPE", "request.unsupported_media_type", None),
}


@pytest.mark.parametrize("attack", list(JUSTICE_ATTACKS))
def test_justice_endpoint_refuses(world, credentials, attack: str) -> None:  # type: ignore[no-untyped-def]
    build, status, detail_code, code, reason = JUSTICE_ATTACKS[attack]
    justice = Justice(world, credentials)
    data, content_type = build(justice)
    response = justice.post(data, content_type)

    assert response.status_code == status, response.text[:500]
    fault = parse_xml(response.content)
    assert fault.findtext(".//faultcode") == "soapenv:Client"
    assert fault.findtext(f".//{{{JUDICIAL}}}code") == detail_code
    assert b"/etc/passwd" not in response.content and b"lollol" not in response.content
    assert_audited_once(world, component="inbound.justice", code=code, status=status,
                        reason=reason)
    assert count(world, CaseRow) == 0 and count(world, OutboxRow) == 0
    assert count(world, SeenMessage) == 0  # a refused message burns no id


def _signed_envelope(j: Justice, body: etree._Element, *, header: bool = True) -> bytes:
    from connectors.xml import soap_envelope

    elements = XRoadHeader(client="MA/GOV/JUSTICE/NOTIFICATIONS",
                           service="MA/GOV/MAEC/ECONSULAT-HUB/submitJudicialDocument/v1",
                           id=str(uuid.uuid4()), issue="MJ-2026-000001").elements()
    envelope = soap_envelope(body, elements if header else [])
    return to_bytes(sign_soap(envelope, j.credentials.good["justice"],
                              sign_headers=[XROAD_ID] if header else []))


def _invalid_document(j: Justice) -> bytes:
    message = j.message()
    message.find(".//{*}country").text = "Spain"  # the XSD wants an ISO 3166 code
    return to_bytes(sign_soap(message, j.credentials.good["justice"], sign_headers=[XROAD_ID]))


#: refusal -> (build, bearer token to present, HTTP status, detail code, audited code)
JUSTICE_CALLER_REFUSALS: dict[str, tuple[Callable[[Justice], bytes], str | None, int, str,
                                         str]] = {
    "wrong credential": (lambda j: to_bytes(j.signed()), "not-the-token", 401,
                         "UNAUTHENTICATED", "inbound.unauthenticated"),
    "no X-Road header": (lambda j: _signed_envelope(j, etree.Element(
        f"{{{JUDICIAL}}}SubmitJudicialDocumentRequest"), header=False), None, 400,
        "MISSING_XROAD_HEADER", "MISSING_XROAD_HEADER"),
    "unknown operation": (lambda j: _signed_envelope(j, etree.Element(
        f"{{{JUDICIAL}}}DeleteEverythingRequest")), None, 404, "UNKNOWN_OPERATION",
        "UNKNOWN_OPERATION"),
    "document failing the XSD": (_invalid_document, None, 422, "INVALID_REQUEST",
                                 "message.schema"),
}


@pytest.mark.parametrize("refusal", list(JUSTICE_CALLER_REFUSALS))
def test_justice_refusals_of_the_caller_and_the_document_are_audited(world, credentials,  # type: ignore[no-untyped-def]
                                                                     refusal: str) -> None:
    build, token, status, detail_code, code = JUSTICE_CALLER_REFUSALS[refusal]
    justice = Justice(world, credentials)
    response = requests.post(justice.url, data=build(justice), timeout=10, headers={
        "Content-Type": "text/xml", "Authorization": f"Bearer {token or world.tokens['justice']}"})
    assert response.status_code == status, response.text[:300]
    assert parse_xml(response.content).findtext(f".//{{{JUDICIAL}}}code") == detail_code
    assert_audited_once(world, component="inbound.justice", code=code, status=status,
                        reason=None)
    assert count(world, CaseRow) == 0


def test_justice_replay_by_message_id_is_refused_and_opens_nothing_more(world, credentials) -> None:  # type: ignore[no-untyped-def]
    justice = Justice(world, credentials)
    first = to_bytes(justice.signed())
    assert justice.post(first).status_code == 200
    message_id = parse_xml(first).findtext(f".//{XROAD_ID}")
    # The very bytes again, and the same id freshly signed: both are the message seen before.
    for again in (first, to_bytes(justice.signed(message_id=message_id))):
        response = justice.post(again)
        assert response.status_code == 401
        assert parse_xml(response.content).findtext(f".//{{{JUDICIAL}}}code") == "REPLAY_DETECTED"
    assert count(world, CaseRow) == 1
    refused = rejections(world)
    assert [(r.outcome, r.details["reason"]) for r in refused] == [("security.replay", "seen")] * 2


# -- Health -> hub: decisions by callback, detached JWS --------------------------------------------

class Health:
    """A repatriation case waiting for Health's decision, and callbacks crafted for it."""

    def __init__(self, world: Any, credentials: Credentials) -> None:
        self.world, self.credentials = world, credentials
        world.simulators["health"].options["callback_url"] = None  # the test calls back itself
        opened = world.hub.submit("clearance_only", {
            "deceased": deceased(), "certificates": certificates(True),
            "transport": {"expected_arrival_date": "2026-12-05", "border_post": "CMN"}})
        self.reference = opened.case.reference

        def acknowledged() -> Any:
            exchange = world.exchanges(self.reference).get("clearance")
            return exchange if exchange is not None and exchange.status == "acknowledged" else None

        self.exchange = wait_for(acknowledged, what="Health's acknowledgement")
        self.url = (f"{world.server.url}/inbound/v1/health/clearances/{self.exchange.id}")
        self.outbox = count(world, OutboxRow)
        self.seen = count(world, SeenMessage)

    def decision(self, result: str = "CLEARED") -> bytes:
        return canonical_json({"clearanceId": "SC-2026-000001", "requestId": self.exchange.id,
                               "result": result, "decidedAt": "2026-11-29T10:00:00Z"})

    def headers(self, signed: bytes | None, kind: str = "good", *, now: datetime | None = None,
                content_type: str = "application/json") -> dict[str, str]:
        message_id = str(uuid.uuid4())
        headers = {"Content-Type": content_type, "X-Road-Client": "MA/GOV/SANTE/CLEARANCES",
                   "X-Road-Id": message_id,
                   "Authorization": f"Bearer {self.world.tokens['health']}"}
        if signed is not None:
            headers[JWS_HEADER] = sign_detached(signed, self.credentials.signer(kind, "health"),
                                                message_id=message_id, now=now)
        return headers

    def post(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.url, data=body, headers=headers, timeout=10)


def _health_signed(body: Callable[[Health], bytes], **options: Any
                   ) -> Callable[[Health], tuple[bytes, dict[str, str]]]:
    def build(h: Health) -> tuple[bytes, dict[str, str]]:
        data = body(h)
        return data, h.headers(data, **options)
    return build


DEEP_JSON = b'{"a":' * 40 + b"1" + b"}" * 40

#: attack -> (build(health) -> (body, headers), HTTP status, code, reason)
HEALTH_ATTACKS: dict[str, tuple[Callable[[Health], tuple[bytes, dict[str, str]]], int, str,
                                str | None]] = {
    "unsigned": (lambda h: (h.decision(), h.headers(None)), 401, "security.signature", "unsigned"),
    "unknown certificate (foreign CA)": (_health_signed(lambda h: h.decision(), kind="foreign"),
                                         401, "security.certificate", "unknown_kid"),
    "expired certificate": (_health_signed(lambda h: h.decision(), kind="expired"),
                            401, "security.certificate", "expired"),
    "revoked certificate (CRL)": (_health_signed(lambda h: h.decision(), kind="revoked"),
                                  401, "security.certificate", "revoked"),
    "signed decision swapped for another": (
        lambda h: (h.decision("REFUSED"), h.headers(h.decision("CLEARED"))),
        401, "security.signature", "bad_signature"),
    "timestamp outside the window": (_health_signed(lambda h: h.decision(), now=stale()),
                                     401, "security.replay", "stale"),
    "too deep (signed)": (_health_signed(lambda h: DEEP_JSON), 400, "message.malformed", None),
    "not JSON (signed)": (_health_signed(lambda h: b'{"result": "CLEA'), 400,
                          "message.malformed", None),
    "XXE sent as JSON (signed)": (_health_signed(lambda h: XXE), 400, "message.malformed", None),
    "oversized": (_health_signed(lambda h: b'{"pad":"' + b"x" * LIMIT + b'"}'), 413,
                  "message.too_large", None),
    "wrong content type": (_health_signed(lambda h: h.decision(), content_type="text/plain"),
                           415, "request.unsupported_media_type", None),
}


@pytest.mark.parametrize("attack", list(HEALTH_ATTACKS))
def test_health_callback_refuses(world, credentials, attack: str) -> None:  # type: ignore[no-untyped-def]
    build, status, code, reason = HEALTH_ATTACKS[attack]
    health = Health(world, credentials)
    body, headers = build(health)
    response = health.post(body, headers)

    assert response.status_code == status, response.text[:500]
    assert response.json()["error"]["code"] == code
    assert_audited_once(world, component="inbound.health", code=code, status=status,
                        reason=reason)
    # Nothing half-written: no answer queued, the exchange still waits, no id burned.
    assert count(world, OutboxRow) == health.outbox
    assert world.exchanges(health.reference)["clearance"].status == "acknowledged"
    assert count(world, SeenMessage) == health.seen


def test_health_replay_by_message_id_is_refused(world, credentials) -> None:  # type: ignore[no-untyped-def]
    health = Health(world, credentials)
    body = health.decision()
    headers = health.headers(body)
    assert health.post(body, headers).status_code == 202
    again = health.post(body, headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "security.replay"
    [row] = rejections(world)
    assert (row.outcome, row.details["reason"]) == ("security.replay", "seen")
    # The first decision was applied to its case, once; the replay changed nothing.
    assert count(world, OutboxRow) == health.outbox
    assert world.exchanges(health.reference)["clearance"].status == "answered"
    with world.hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "applied", AuditRow.correlation_id == health.reference)) == 1


def test_a_callback_the_hub_failed_to_take_may_be_retried(world, credentials) -> None:  # type: ignore[no-untyped-def]
    """The seen id commits with the callback's effect: a callback refused for another reason
    (here an exchange that is not waiting) is not a replay when the agency sends it again."""
    health = Health(world, credentials)
    body = health.decision()
    headers = health.headers(body)
    wrong = requests.post(health.url.rsplit("/", 1)[0] + f"/{uuid.uuid4()}", data=body,
                          headers=headers, timeout=10)
    assert wrong.status_code == 404
    assert count(world, SeenMessage) == health.seen
    assert health.post(body, headers).status_code == 202


# -- agency answers at the connectors ----------------------------------------------------------

def _sign_with(kind: str) -> Callable[[Any, Credentials, str], None]:
    def apply(simulator: Any, credentials: Credentials, agency: str) -> None:
        simulator._signing = replace(simulator.signing, signer=credentials.signer(kind, agency))
    return apply


def _unsigned(simulator: Any, credentials: Credentials, agency: str) -> None:
    simulator._signing = None  # the agency answers without a signature


def _fault(kind: str) -> Callable[[Any, Credentials, str], None]:
    def apply(simulator: Any, credentials: Credentials, agency: str) -> None:
        simulator.inject(kind, count=None if kind == "malformed" else 1)
    return apply


REQUESTS = {"narsa": ("driving_licence_authentication", lambda: licence_request("authentic")),
            "dgsn": ("consular_registration_new",
                     lambda: sample_request("consular_registration_new"))}

#: (agency, attack) -> (what to do to the simulator, dead letter code, words of its reason)
ANSWER_ATTACKS: dict[tuple[str, str], tuple[Callable[[Any, Credentials, str], None], str, str]] = {
    ("narsa", "altered after signing"): (_fault("bad_signature"), "security.signature",
                                         "does not verify"),
    ("narsa", "unsigned"): (_unsigned, "security.signature", "unsigned"),
    ("narsa", "unknown certificate (foreign CA)"): (_sign_with("foreign"), "security.certificate",
                                                    "not a known certificate"),
    ("narsa", "revoked certificate (CRL)"): (_sign_with("revoked"), "security.certificate",
                                             "revoked"),
    ("narsa", "expired certificate"): (_sign_with("expired"), "security.certificate", "expired"),
    ("narsa", "replayed answer"): (_fault("replay"), "security.replay", "already received"),
    ("narsa", "timestamp outside the window"): (_fault("stale_signature"), "security.replay",
                                                "older than the 120s window"),
    ("narsa", "malformed body"): (_fault("malformed"), "agency.bad_reply", "unparseable"),
    ("dgsn", "altered after signing"): (_fault("bad_signature"), "security.signature",
                                        "verification failed"),
    ("dgsn", "unsigned"): (_unsigned, "security.signature", "not signed"),
    ("dgsn", "expired certificate"): (_sign_with("expired"), "security.certificate", "expired"),
    ("dgsn", "unknown certificate (foreign CA)"): (_sign_with("foreign"), "security.certificate",
                                                   "not issued by the hub's trusted CA"),
    ("dgsn", "revoked certificate (CRL)"): (_sign_with("revoked"), "security.certificate",
                                            "revoked"),
    ("dgsn", "signature wrapping"): (_fault("wrapped"), "security.signature",
                                     "does not cover the SOAP Body"),
    ("dgsn", "replayed answer"): (_fault("replay"), "security.replay", "already received"),
    ("dgsn", "timestamp outside the window"): (_fault("stale_signature"), "security.replay",
                                               "older than the 120s window"),
    ("dgsn", "malformed body"): (_fault("malformed"), "agency.bad_reply", "not well-formed"),
}


@pytest.mark.parametrize("agency, attack", list(ANSWER_ATTACKS))
def test_agency_answers_that_cannot_be_trusted_are_parked(world, credentials, agency: str,  # type: ignore[no-untyped-def]
                                                          attack: str) -> None:
    tamper, code, words = ANSWER_ATTACKS[(agency, attack)]
    simulator = world.simulators[agency]
    service, request = REQUESTS[agency]
    if attack == "replayed answer":  # an answer to replay: a first exchange that goes through
        first = world.hub.submit(service, request()).case.reference
        wait_for(lambda: any(e.status == "answered" for e in world.exchanges(first).values()),
                 what="a first answer")
    tamper(simulator, credentials, agency)
    reference = world.hub.submit(service, request()).case.reference

    def parked() -> Any:
        return [d for d in list_dead_letters(world.hub.store) if d.correlation_id == reference]

    [dead] = wait_for(parked, what=f"the {agency} request parked")
    assert dead.queue == world.hub.topology.agency_queue(agency)
    assert dead.error_code == code and words in dead.reason, dead.reason
    exchange = next(e for e in world.exchanges(reference).values() if e.agency == agency)
    assert (exchange.status, exchange.error_code) == ("dead_lettered", code)
    with world.hub.store.session() as session:
        audited = session.scalars(select(AuditRow).where(
            AuditRow.action == "dead_lettered", AuditRow.correlation_id == reference)).all()
        answered = session.scalars(select(AuditRow).where(
            AuditRow.action == "answered", AuditRow.correlation_id == reference)).all()
    assert [a.outcome for a in audited] == [code]
    assert answered == []  # nothing of the answer reached the case


# -- the broker: sealed envelopes consumed by the workers ---------------------------------------

def _forged_seal(document: dict, credentials: Credentials, other: dict) -> dict:
    from hub.envelope import Envelope
    from hub.evidence.seal import JwsSeal

    envelope = Envelope.from_dict({**document, "signature": None})
    return JwsSeal(credentials.foreign["hub"], None).seal(envelope).to_dict()  # type: ignore[arg-type]


#: attack -> (change to the queued message's JSON document or bytes, dead letter code, words)
BROKER_ATTACKS: dict[str, tuple[Callable[[dict, Credentials, dict], Any], str, str]] = {
    "payload altered": (lambda d, c, o: {**d, "payload": {**d["payload"], "holder": {
        **d["payload"]["holder"], "cnie": "ZZ999999"}}}, "security.signature", "does not verify"),
    "unsigned": (lambda d, c, o: {**d, "signature": None}, "security.signature", "not sealed"),
    "sealed by an unknown key": (_forged_seal, "security.certificate", "not a known certificate"),
    "seal of another message": (lambda d, c, o: {**d, "signature": o["signature"]},
                                "security.signature", "does not verify"),
    "too deep": (lambda d, c, o: b'{"a":' * 40 + b"1" + b"}" * 40, "message.malformed",
                 "nests deeper"),
    "not JSON": (lambda d, c, o: b"<envelope/>", "message.malformed", "not valid JSON"),
    "oversized": (lambda d, c, o: {**d, "payload": {**d["payload"], "pad": "x" * LIMIT}},
                  "message.too_large", "limit"),
}


@pytest.mark.parametrize("attack", list(BROKER_ATTACKS))
def test_broker_messages_that_cannot_be_trusted_are_dead_lettered(hub_factory, credentials,  # type: ignore[no-untyped-def]
                                                                  tmp_path, attack: str) -> None:
    from connectors.base import MockConnector, Reply
    from hub.cli import main

    change, code, words = BROKER_ATTACKS[attack]
    mock = MockConnector(lambda env: Reply(outcome="authentic"), agency="narsa")
    hub = hub_factory(connectors={"narsa": lambda: mock},
                      env={"HUB_MAX_MESSAGE_BYTES": str(LIMIT)})
    hub.setup()
    with hub.store.transaction() as session:
        hub.cases.open(session, "driving_licence_authentication", licence_request("authentic"),
                       actor="test")
        hub.cases.open(session, "driving_licence_authentication", licence_request("authentic"),
                       actor="test")
    with hub.store.session() as session:
        queued, other = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    plain = [json.loads(hub.store.privacy.decrypt_body(row.body, row.body_key,
                                                    message_id=row.message_id))
             for row in (queued, other)]  # as the relay would publish them (stored encrypted)
    changed = change(plain[0], credentials, plain[1])
    body = changed if isinstance(changed, bytes) else json.dumps(changed).encode()
    with hub.open_broker() as broker:
        broker.publish(Message(body=body, message_id=queued.message_id,
                               routing_key=queued.routing_key))
    with hub.run(relay=False, concurrency=1):
        [dead] = wait_for(lambda: list_dead_letters(hub.store), what="the message parked")
    assert dead.error_code == code and words in dead.reason, dead.reason
    assert mock.calls == []  # the agency never saw it
    with hub.store.session() as session:
        kept = session.get(DeadLetterRow, dead.id)  # kept as it came, for evidence (encrypted)
        assert plain_body(hub.store, kept) == body
        [audited] = session.scalars(select(AuditRow).where(
            AuditRow.action == "dead_lettered")).all()
        assert audited.outcome == code
        assert session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action.in_(("sent", "answered", "applied")))) == 0
    listed = CliRunner().invoke(main, ["dlq", "list", "--json"], env={
        "HUB_DATA_DIR": str(hub.settings.data_dir), "HUB_DATABASE_URL": hub.settings.database_url,
        "HUB_BROKER_URL": hub.settings.broker_url,
        "HUB_BROKER_NAMESPACE": hub.settings.broker_namespace})
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["error_code"], row["message_id"]) == (code, queued.message_id)


# -- applicants: the intake API --------------------------------------------------------------

URL = "/api/v1/services/consular_registration_new/requests"

#: attack -> (body, content type, status, code)
INTAKE_ATTACKS: dict[str, tuple[bytes, str, int, str]] = {
    "wrong content type": (b"post=ES-MAD", "application/x-www-form-urlencoded", 415,
                           "request.unsupported_media_type"),
    "XML with an external entity": (XXE, "application/xml", 415,
                                    "request.unsupported_media_type"),
    "not JSON": (b"{not json", "application/json", 400, "message.malformed"),
    "duplicate keys": (b'{"a":1,"a":2}', "application/json", 400, "message.malformed"),
    "too deep": (b"[" * 100 + b"]" * 100, "application/json", 400, "message.malformed"),
    "oversized": (b'{"x":"' + b"y" * (1024 * 1024 + 10) + b'"}', "application/json", 413,
                  "message.too_large"),
}


@pytest.mark.parametrize("attack", list(INTAKE_ATTACKS))
def test_intake_refuses(mock_hub, attack: str) -> None:  # type: ignore[no-untyped-def]
    from hub.web.app import create_app

    body, content_type, status, code = INTAKE_ATTACKS[attack]
    hub = mock_hub()
    response = create_app(hub).test_client().post(URL, data=body, content_type=content_type,
                                                  headers={"Accept-Language": "es"})
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    with hub.store.session() as session:
        [row] = session.scalars(select(AuditRow).where(AuditRow.action == "rejected")).all()
        assert (row.component, row.outcome, row.details["status"]) == ("web.intake", code, status)
        assert session.scalar(select(func.count()).select_from(CaseRow)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 0


def test_intake_field_errors_are_localized_audited_and_store_nothing(mock_hub) -> None:  # type: ignore[no-untyped-def]
    from hub.web.app import create_app

    hub = mock_hub()
    bad = sample_request("consular_registration_new")
    bad["person"]["cnie"] = "ab12"
    response = create_app(hub).test_client().post(URL, json=bad,
                                                  headers={"Accept-Language": "ar"})
    assert response.status_code == 422
    [error] = [f for f in response.get_json()["error"]["fields"] if f["field"] == "person.cnie"]
    assert error["code"] == "pattern" and error["label"] in error["message"]
    with hub.store.session() as session:
        [row] = session.scalars(select(AuditRow).where(AuditRow.action == "rejected")).all()
        assert (row.outcome, row.details["status"]) == ("message.schema", 422)
        assert row.digest and "ab12" not in json.dumps(row.details)  # a digest, not the data
        assert session.scalar(select(func.count()).select_from(CaseRow)) == 0


# -- no 500s: damaged messages, whatever the damage ---------------------------------------------

def _mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """Seeded damage to a valid message: flipped bytes, cuts, duplicated and dropped slices."""
    import random

    rng = random.Random(seed)
    out = []
    for n in range(count):
        buffer = bytearray(data)
        kind = n % 4
        at = rng.randrange(len(buffer))
        if kind == 0:
            buffer[at] = rng.randrange(256)
        elif kind == 1:
            del buffer[at:]
        elif kind == 2:
            end = min(len(buffer), at + rng.randrange(1, 200))
            buffer[at:at] = buffer[at:end]
        else:
            del buffer[at:at + rng.randrange(1, 50)]
        out.append(bytes(buffer))
    return out


def test_damaged_justice_messages_never_cause_a_server_error(world, credentials) -> None:  # type: ignore[no-untyped-def]
    justice = Justice(world, credentials)
    statuses = []
    for damaged in _mutations(to_bytes(justice.signed()), 60, seed=20261129):
        response = justice.post(damaged)
        assert response.status_code < 500, (response.status_code, response.text[:300])
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert parse_xml(response.content).findtext(".//faultcode") == "soapenv:Client"
    refused = [s for s in statuses if s != 200]
    assert refused and len(rejections(world)) == len(refused)  # every refusal audited
    assert count(world, CaseRow) == len(statuses) - len(refused)


def test_damaged_health_callbacks_never_cause_a_server_error(world, credentials) -> None:  # type: ignore[no-untyped-def]
    health = Health(world, credentials)
    body = health.decision()
    statuses = []
    for damaged in _mutations(body, 40, seed=20261130):
        response = health.post(damaged, health.headers(damaged))  # validly signed damage
        assert response.status_code < 500, (response.status_code, response.text[:300])
        statuses.append(response.status_code)
    refused = [s for s in statuses if s >= 400]
    assert refused and len(rejections(world)) == len(refused)
