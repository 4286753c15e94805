"""Whatever arrives, the verifiers answer with a hub error, never a library exception.

Set FUZZ_N (default 150 examples per test) for a longer hunt, e.g. ``FUZZ_N=3000``.
"""
from __future__ import annotations

import base64
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import HubError
from security.fieldcrypt import KeyRing
from security.jws import sign_json, verify_detached, verify_jws
from security.keys import KeyStore
from security.safexml import parse_xml
from security.tokens import TokenAuthority
from security.trust import TrustStore
from security.xmldsig import sign_soap, to_bytes, verify_xml

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_N", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def only_hub_errors(call) -> None:
    try:
        call()
    except HubError:
        pass


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@FUZZ
@given(st.binary(max_size=2000))
def test_xml_parser(data: bytes) -> None:
    only_hub_errors(lambda: parse_xml(data))


@FUZZ
@given(data=st.binary(max_size=2000))
def test_xml_verifier_on_noise(data: bytes, trust: TrustStore) -> None:
    only_hub_errors(lambda: verify_xml(data, trust, "hub", expected_reference="soap-body"))


@FUZZ
@given(data=st.data())
def test_xml_verifier_on_mutated_messages(data: st.DataObject, signed_soap: bytes,
                                          trust: TrustStore) -> None:
    message = bytearray(signed_soap)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(message) - 1))
        message[position] = data.draw(st.integers(min_value=0, max_value=255))
    only_hub_errors(lambda: verify_xml(bytes(message), trust, "hub",
                                       expected_reference="soap-body"))


VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                   st.lists(st.text(max_size=4), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                              st.integers()))
NAMES = ["alg", "kid", "typ", "iat", "jti", "crit", "b64", "x5t#S256", "zip", "x5c"]


@FUZZ
@given(header=st.dictionaries(st.sampled_from(NAMES), VALUES), payload=st.binary(max_size=64),
       signature=st.binary(max_size=80))
def test_jws_verifier_on_noise(header: dict, payload: bytes, signature: bytes,
                               trust: TrustStore) -> None:
    token = f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(signature)}"
    only_hub_errors(lambda: verify_jws(token, trust, "hub"))
    detached = f"{b64(json.dumps(header).encode())}..{b64(signature)}"
    only_hub_errors(lambda: verify_detached(detached, payload, trust, "hub"))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES, signature=st.binary(max_size=80))
def test_jws_verifier_with_one_spoiled_header(name: str, value: object, signature: bytes,
                                              store: KeyStore, trust: TrustStore) -> None:
    """A valid header with one parameter spoiled reaches each check in turn."""
    signer = store.signer("hub")
    header = {"alg": "ES256", "kid": signer.thumbprint, "iat": 1, "jti": "j", name: value}
    token = f"{b64(json.dumps(header).encode())}.{b64(b'{}')}.{b64(signature)}"
    only_hub_errors(lambda: verify_jws(token, trust, "hub"))
    genuine = sign_json(b"{}", signer).split(".")
    spliced = f"{b64(json.dumps(header).encode())}.{genuine[1]}.{genuine[2]}"
    only_hub_errors(lambda: verify_jws(spliced, trust, "hub"))


@FUZZ
@given(text=st.text(max_size=300))
def test_jws_and_token_verifiers_on_text(text: str, trust: TrustStore, store: KeyStore) -> None:
    only_hub_errors(lambda: verify_jws(text, trust, "hub"))
    only_hub_errors(lambda: TokenAuthority(store.signer("hub")).verify_token(text))


@FUZZ
@given(text=st.text(max_size=200))
def test_decrypt(text: str, ring: KeyRing) -> None:
    only_hub_errors(lambda: ring.decrypt(text, context=b"c"))
    only_hub_errors(lambda: ring.decrypt("enc:v1:" + ring.active_key_id + ":" + text, context=b"c"))


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture(scope="module")
def signed_soap(store: KeyStore) -> bytes:
    from lxml import etree
    env = etree.fromstring(b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                           b"<s:Body><a>AB123456</a></s:Body></s:Envelope>")
    return to_bytes(sign_soap(env, store.signer("hub")))


def test_a_signed_jws_still_verifies_here(store: KeyStore, trust: TrustStore) -> None:
    assert verify_jws(sign_json(b"{}", store.signer("hub")), trust, "hub").payload == b"{}"
