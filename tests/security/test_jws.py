"""security.jws: compact and detached JWS, and every way a token must be refused."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hub.envelope import Envelope, canonical_json
from hub.errors import ConfigurationError, MessageTooLarge, SignatureInvalid, UntrustedCertificate
from security.jws import sign_detached, sign_json, verify_detached, verify_jws
from security.keys import KeyStore, Signer
from security.pki import issue, revoke
from security.trust import TrustStore

PAYLOAD = canonical_json({"licence_number": "12/345678", "holder": {"cnie": "AB123456"}})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict[str, Any], payload: bytes, key: Any) -> str:
    """Sign whatever header we like, as an attacker (or a sloppy agency) would."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"


def good_header(signer: Signer, **extra: Any) -> dict[str, Any]:
    return {"alg": "ES256", "typ": "JOSE", "kid": signer.thumbprint, "x5t#S256": signer.thumbprint,
            "iat": 1_800_000_000, "jti": str(uuid.uuid4()), **extra}


def reason(exc: pytest.ExceptionInfo) -> str:
    return exc.value.details["reason"]


# -- happy paths -----------------------------------------------------------------------------------

def test_compact_round_trip_with_protected_headers(store: KeyStore, trust: TrustStore) -> None:
    signer = store.signer("narsa")
    now = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
    token = sign_json(PAYLOAD, signer, headers={"cty": "json"}, message_id="m-1", now=now)
    assert token.count(".") == 2
    verified = verify_jws(token, trust, "narsa")
    assert verified.payload == PAYLOAD
    assert verified.headers["alg"] == "ES256" and verified.headers["typ"] == "JOSE"
    assert verified.headers["kid"] == verified.headers["x5t#S256"] == signer.thumbprint
    assert verified.headers["cty"] == "json"
    assert verified.message_id == "m-1" and verified.issued_at == now
    assert verified.json()["holder"]["cnie"] == "AB123456"
    assert verified.certificate == store.certificate("narsa")


def test_message_id_defaults_to_a_fresh_uuid(store: KeyStore, trust: TrustStore) -> None:
    tokens = [sign_json(b"{}", store.signer("hub")) for _ in range(3)]
    ids = {verify_jws(token, trust, "hub").message_id for token in tokens}
    assert len(ids) == 3 and all(uuid.UUID(i) for i in ids)


def test_rsa_keys_use_rs256(rsa_store: KeyStore) -> None:
    token = sign_json(PAYLOAD, rsa_store.signer("narsa"))
    verified = verify_jws(token, rsa_store.trust_store(), "narsa")
    assert verified.headers["alg"] == "RS256" and verified.payload == PAYLOAD


def test_detached_signature_over_envelope_bytes(store: KeyStore, trust: TrustStore) -> None:
    env = Envelope.new(service="driving_licence_authentication", kind="request", sender="hub",
                       recipient="narsa", correlation_id="DLA-2026-7K3M9Q",
                       schema={"name": "narsa.verify_licence.request", "version": "1"},
                       payload={"licence_number": "12/345678"})
    signature = sign_detached(env.canonical_bytes(), store.signer("hub"), message_id=str(env.id))
    header, payload, sig = signature.split(".")
    assert payload == "" and header and sig
    stored = Envelope.from_bytes(env.with_signature(signature).with_attempt(3).to_bytes())
    verified = verify_detached(stored.signature, stored.canonical_bytes(), trust, "hub")
    assert verified.payload == env.canonical_bytes() and verified.message_id == str(env.id)
    changed = env.model_copy(update={"recipient": "dgsn"})
    with pytest.raises(SignatureInvalid, match="does not verify") as exc:
        verify_detached(signature, changed.canonical_bytes(), trust, "hub")
    assert reason(exc) == "bad_signature"


def test_attached_and_detached_are_not_interchangeable(store: KeyStore, trust: TrustStore) -> None:
    attached = sign_json(PAYLOAD, store.signer("hub"))
    detached = sign_detached(PAYLOAD, store.signer("hub"))
    with pytest.raises(SignatureInvalid, match="use verify_detached"):
        verify_jws(detached, trust, "hub")
    with pytest.raises(SignatureInvalid, match="expected a detached JWS"):
        verify_detached(attached, PAYLOAD, trust, "hub")


def test_caller_cannot_override_what_the_signer_sets(store: KeyStore) -> None:
    for name in ("alg", "kid", "typ", "jti", "x5c", "crit", "b64"):
        with pytest.raises(ConfigurationError, match="set by the signer"):
            sign_json(PAYLOAD, store.signer("hub"), headers={name: "x"})
    with pytest.raises(ConfigurationError, match="signs bytes"):
        sign_json({"a": 1}, store.signer("hub"))  # type: ignore[arg-type]


# -- refusals --------------------------------------------------------------------------------------

def test_alg_none_is_refused(store: KeyStore, trust: TrustStore) -> None:
    header = good_header(store.signer("hub"), alg="none")
    unsigned = f"{b64(json.dumps(header).encode())}.{b64(PAYLOAD)}."
    with pytest.raises(SignatureInvalid, match="unsigned") as exc:
        verify_jws(unsigned, trust, "hub")
    assert reason(exc) == "unsigned"
    with pytest.raises(SignatureInvalid, match="alg 'none'") as exc:
        verify_jws(unsigned + "c2ln", trust, "hub")
    assert reason(exc) == "alg_none"
    header["alg"] = "NONE"
    with pytest.raises(SignatureInvalid, match="alg 'none'"):
        verify_jws(f"{b64(json.dumps(header).encode())}.{b64(PAYLOAD)}.c2ln", trust, "hub")


def test_hmac_with_the_public_key_as_secret_is_refused(store: KeyStore, trust: TrustStore) -> None:
    header = good_header(store.signer("hub"), alg="HS256")
    token = f"{b64(json.dumps(header).encode())}.{b64(PAYLOAD)}.c2ln"
    with pytest.raises(SignatureInvalid, match="'HS256' is not accepted") as exc:
        verify_jws(token, trust, "hub")
    assert reason(exc) == "alg"


def test_alg_that_does_not_fit_the_key_type(store: KeyStore, rsa_store: KeyStore,
                                            trust: TrustStore) -> None:
    header = good_header(store.signer("hub"), alg="RS256")  # EC certificate, RSA algorithm
    token = craft(header, PAYLOAD, rsa_store.signer("hub").key)
    with pytest.raises(SignatureInvalid, match="does not fit hub's EC key") as exc:
        verify_jws(token, trust, "hub")
    assert reason(exc) == "alg_mismatch"


def test_unknown_kid(store: KeyStore, other_store: KeyStore, trust: TrustStore) -> None:
    token = sign_json(PAYLOAD, other_store.signer("narsa"))  # same name, other CA
    with pytest.raises(UntrustedCertificate, match="not a known certificate of narsa") as exc:
        verify_jws(token, trust, "narsa")
    assert reason(exc) == "unknown_kid"


def test_token_of_another_party(store: KeyStore, trust: TrustStore) -> None:
    with pytest.raises(UntrustedCertificate) as exc:
        verify_jws(sign_json(PAYLOAD, store.signer("narsa")), trust, "health")
    assert reason(exc) == "unknown_kid"


def test_bad_signature(store: KeyStore, trust: TrustStore) -> None:
    header, _, signature = sign_json(PAYLOAD, store.signer("narsa")).split(".")
    forged = f"{header}.{b64(PAYLOAD.replace(b'AB123456', b'ZZ999999'))}.{signature}"
    with pytest.raises(SignatureInvalid, match="does not verify") as exc:
        verify_jws(forged, trust, "narsa")
    assert reason(exc) == "bad_signature"
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_jws(f"{header}.{b64(PAYLOAD)}.{signature[:-4]}AAAA", trust, "narsa")


@pytest.mark.parametrize("value", ["", b"", PAYLOAD.decode(), "a.b", "a.b.c.d", "..", "!!!.e30.x"])
def test_unsigned_or_garbage_input(value: Any, trust: TrustStore) -> None:
    with pytest.raises(SignatureInvalid):
        verify_jws(value, trust, "hub")


@pytest.mark.parametrize("extra", [{"typ": "at+jwt"}, {"typ": "JWT"}, {"jwk": {"kty": "EC"}},
                                   {"x5c": ["MIIB"]}, {"jku": "https://evil.example/keys"},
                                   {"crit": ["exp"], "exp": 1}, {"b64": False, "crit": ["b64"]}])
def test_header_parameters_that_change_the_meaning_are_refused(extra: dict, store: KeyStore,
                                                              trust: TrustStore) -> None:
    signer = store.signer("hub")
    token = craft(good_header(signer, **extra), PAYLOAD, signer.key)
    with pytest.raises(SignatureInvalid, match="refused|not a message signature"):
        verify_jws(token, trust, "hub")


def test_crafted_token_with_a_clean_header_verifies(store: KeyStore, trust: TrustStore) -> None:
    """The crafting helper itself is sound: the refusals above are about the headers."""
    signer = store.signer("hub")
    token = craft(good_header(signer), PAYLOAD, signer.key)
    assert verify_jws(token, trust, "hub").payload == PAYLOAD


@pytest.mark.parametrize("drop", ["iat", "jti", "kid"])
def test_iat_jti_and_kid_are_required(drop: str, store: KeyStore, trust: TrustStore) -> None:
    signer = store.signer("hub")
    header = good_header(signer)
    del header[drop]
    with pytest.raises(SignatureInvalid, match=f"no .*{drop}"):
        verify_jws(craft(header, PAYLOAD, signer.key), trust, "hub")


def test_thumbprint_and_kid_must_agree(store: KeyStore, trust: TrustStore) -> None:
    signer = store.signer("hub")
    token = craft(good_header(signer, **{"x5t#S256": "other"}), PAYLOAD, signer.key)
    with pytest.raises(SignatureInvalid, match="different certificates"):
        verify_jws(token, trust, "hub")


def test_expired_certificate(store: KeyStore, trust: TrustStore) -> None:
    now = datetime.now(timezone.utc)
    old = issue(store.layout.keys_dir, "health", not_before=now - timedelta(days=9),
                not_after=now - timedelta(days=2))
    trust.add_certificate("health", old.cert)  # it used to be a known certificate
    token = sign_json(PAYLOAD, Signer("health", old.key, old.cert))
    with pytest.raises(UntrustedCertificate, match="expired") as exc:
        verify_jws(token, trust, "health")
    assert reason(exc) == "expired"
    assert verify_jws(token, trust, "health", at=now - timedelta(days=3)).payload == PAYLOAD


def test_revoked_certificate(fresh_pki: Path) -> None:
    store = KeyStore.load(fresh_pki, own=["narsa"])
    token = sign_json(PAYLOAD, store.signer("narsa"))
    assert verify_jws(token, store.trust_store(), "narsa")
    revoke(fresh_pki, "narsa")
    with pytest.raises(UntrustedCertificate, match="revoked"):
        verify_jws(token, KeyStore.load(fresh_pki, own=[]).trust_store(), "narsa")


def test_size_limit(store: KeyStore, trust: TrustStore) -> None:
    token = sign_json(b'"' + b"x" * 5000 + b'"', store.signer("hub"))
    with pytest.raises(MessageTooLarge):
        verify_jws(token, trust, "hub", max_bytes=1024)
    assert verify_jws(token, trust, "hub", max_bytes=8192).payload.startswith(b'"xxx')


# -- the recipes docs/security.md gives agencies ---------------------------------------------------

def test_agency_recipe_with_plain_joserfc(store: KeyStore) -> None:
    """What an agency runs with only joserfc, cryptography and our certificate."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from joserfc import jws as jose
    from joserfc.jwk import ECKey
    from joserfc.jws import JWSRegistry

    token = sign_json(PAYLOAD, store.signer("hub"))
    detached = sign_detached(PAYLOAD, store.signer("hub"))
    cert = x509.load_pem_x509_certificate(store.layout.cert_path("hub", "signing").read_bytes())
    key = ECKey.import_key(cert.public_key())
    registry = JWSRegistry(algorithms=["ES256"], strict_check_header=False)  # iat, jti headers
    obj = jose.deserialize_compact(token, key, registry=registry)
    assert obj.payload == PAYLOAD
    thumbprint = b64(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())
    assert obj.headers()["kid"] == thumbprint
    verified = jose.deserialize_compact(detached, key, registry=registry, payload=PAYLOAD)
    assert verified.payload == PAYLOAD


def _run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parents[2] / "docs" / "verify-jws.sh"
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=30)


def test_agency_recipe_with_openssl(store: KeyStore, tmp_path: Path) -> None:
    if not shutil.which("openssl") or not shutil.which("sh"):
        pytest.skip("openssl or sh not installed: docs/verify-jws.sh untested")
    cert = str(store.layout.cert_path("hub", "signing"))
    token = tmp_path / "token"
    token.write_text(sign_json(PAYLOAD, store.signer("hub")))
    ok = _run_script(str(token), cert, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "Verified OK" in ok.stdout and PAYLOAD.decode() in ok.stdout
    header, _, signature = token.read_text().split(".")
    token.write_text(f"{header}.{b64(b'{}')}.{signature}")
    assert _run_script(str(token), cert, cwd=tmp_path).returncode != 0
    token.write_text(sign_detached(PAYLOAD, store.signer("hub")))
    body = tmp_path / "payload"
    body.write_bytes(PAYLOAD)
    assert _run_script(str(token), cert, str(body), cwd=tmp_path).returncode == 0
    body.write_bytes(PAYLOAD + b" ")
    assert _run_script(str(token), cert, str(body), cwd=tmp_path).returncode != 0
    other = str(store.layout.cert_path("narsa", "signing"))
    refused = _run_script(str(token), other, str(tmp_path / "payload"), cwd=tmp_path)
    assert refused.returncode != 0 and "kid is not the thumbprint" in refused.stderr
