"""The hub's signed SOAP, exactly as it went over the wire, verifies with xmlsec1 (and with the
documented `docs/verify-xml.sh`, which adds the Body-coverage and CRL checks xmlsec1 lacks).

Two messages, both taken from a real socket: a request the hub's DGSN connector sent (as the
DGSN simulator received it) and the hub's answer to Justice's SubmitJudicialDocument (as the
Justice client received it). A byte changed in either makes xmlsec1 fail.
"""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from connectors.xml import XROAD
from hub.demo.scenarios import sample_request
from hub.testing.plugin import wait_for
from security.xmldsig import SOAP11_NS, WSU_NS, sign_soap, to_bytes

SOAP_ID_ARGS = ["--id-attr:Id", f"{SOAP11_NS}:Body", "--id-attr:Id", f"{WSU_NS}:Timestamp",
                "--id-attr:Id", f"{XROAD}:id"]
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify-xml.sh"


def xmlsec1_verify(xmlsec1: str, keys_dir: Path, data: bytes, tmp_path: Path
                   ) -> subprocess.CompletedProcess:
    path = tmp_path / f"{uuid.uuid4()}.xml"
    path.write_bytes(data)
    return subprocess.run([xmlsec1, "--verify", "--trusted-pem", str(keys_dir / "ca.cert.pem"),
                           *SOAP_ID_ARGS, str(path)], capture_output=True, text=True, timeout=30)


def assert_verifies_as_sent(xmlsec1: str, keys_dir: Path, data: bytes, tmp_path: Path,
                            changed: tuple[bytes, bytes]) -> None:
    result = xmlsec1_verify(xmlsec1, keys_dir, data, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stderr + result.stdout
    path = tmp_path / "wire.xml"
    path.write_bytes(data)
    script = subprocess.run(["sh", str(SCRIPT), str(path), str(keys_dir / "ca.cert.pem"),
                             str(keys_dir / "crl.pem"), f"{XROAD}:id"],
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stdout + script.stderr
    old, new = changed
    assert old in data
    tampered = xmlsec1_verify(xmlsec1, keys_dir, data.replace(old, new, 1), tmp_path)
    assert tampered.returncode != 0


@pytest.fixture
def world(agency_hub):  # type: ignore[no-untyped-def]
    return agency_hub()


def test_a_request_the_hub_sent_to_an_agency_verifies_with_xmlsec1(world, xmlsec1, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference = world.hub.submit("consular_registration_new",
                                 sample_request("consular_registration_new")).case.reference
    dgsn = world.simulators["dgsn"]
    [received] = wait_for(lambda: [r for r in dgsn.received() if reference in r.body],
                          what="the signed request at DGSN")
    wire = received.body.encode("utf-8")  # the bytes as the agency read them off the socket
    assert b"ds:Signature" in wire or b"Signature" in wire
    cnie = sample_request("consular_registration_new")["person"]["cnie"].encode()
    assert_verifies_as_sent(xmlsec1, world.keys_dir, wire, tmp_path, (cnie, b"ZZ999999"))


def test_the_hubs_answer_to_justice_verifies_with_xmlsec1(world, xmlsec1, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zeep

    from connectors.soap import LocalTransport
    from connectors.xml import XRoadHeader
    from security.keys import KeyStore

    url = f"{world.server.url}/inbound/v1/justice"
    session = requests.Session()
    session.trust_env = False
    client = zeep.Client(f"{url}?wsdl", transport=LocalTransport(
        session=session, timeout=5, allowed=(world.server.url,)))
    header = XRoadHeader(client="MA/GOV/JUSTICE/NOTIFICATIONS",
                         service="MA/GOV/MAEC/ECONSULAT-HUB/submitJudicialDocument/v1",
                         id=str(uuid.uuid4()), issue="MJ-2026-424242")
    message = client.create_message(client.service, "SubmitJudicialDocument",
                                    _soapheaders=header.elements(),
                                    justiceReference="MJ-2026-424242", **{
        "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
        "courtCaseNumber": "2026/1201/455",
        "document": {"type": "SUMMONS", "title": "Convocation", "issuedOn": "2026-11-20"},
        "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                      "address": {"line1": "12 calle Mayor", "city": "Madrid",
                                  "country": "ES"}}})
    justice = KeyStore.load(world.keys_dir, own=["justice"]).signer("justice")
    response = requests.post(url, data=to_bytes(sign_soap(
        message, justice, sign_headers=[f"{{{XROAD}}}id"])), timeout=10, headers={
        "Content-Type": "text/xml; charset=utf-8",
        "Authorization": f"Bearer {world.tokens['justice']}"})
    assert response.status_code == 200, response.text[:300]
    assert_verifies_as_sent(xmlsec1, world.keys_dir, response.content, tmp_path,
                            (b"RECEIVED", b"REJECTED"))
