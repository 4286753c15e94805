"""security.pki: the development PKI's files, certificates, idempotence, CRL and extra issues."""
from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigurationError
from security.pki import (
    DEFAULT_PARTIES,
    PURPOSES,
    PkiLayout,
    init_pki,
    issue,
    party_uri,
    refresh_crl,
    revoke,
)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _crl(layout: PkiLayout) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(layout.crl.read_bytes())


def test_layout_has_ca_crl_manifest_and_three_credentials_per_party(pki: Path) -> None:
    layout = PkiLayout.read(pki)
    assert layout.parties == DEFAULT_PARTIES
    assert layout.algorithm == "ec"
    assert json.loads(layout.manifest.read_text())["parties"] == list(DEFAULT_PARTIES)
    for path in (layout.ca_key, layout.ca_cert, layout.crl):
        assert path.is_file()
    for party in DEFAULT_PARTIES:
        for purpose in PURPOSES:
            assert layout.key_path(party, purpose).is_file()
            assert layout.cert_path(party, purpose).is_file()


def test_private_keys_are_0600_and_directories_0700(pki: Path) -> None:
    layout = PkiLayout.read(pki)
    keys = [layout.ca_key] + [layout.key_path(p, u) for p in DEFAULT_PARTIES for u in PURPOSES]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(pki.stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.party_dir("narsa").stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in layout.key_path("hub", "signing").read_bytes()


def test_signing_certificate_names_the_party_and_is_issued_by_the_ca(pki: Path) -> None:
    layout = PkiLayout.read(pki)
    ca = _cert(layout.ca_cert)
    cert = _cert(layout.cert_path("narsa", "signing"))
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "narsa"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "NARSA"
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "MA"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [party_uri("narsa")]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    ca_bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca_bc.ca and ca.not_valid_after_utc > cert.not_valid_after_utc


def test_tls_certificates_have_localhost_and_the_right_extended_usage(pki: Path) -> None:
    layout = PkiLayout.read(pki)
    server = _cert(layout.cert_path("dgsn", "tls-server"))
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    client = _cert(layout.cert_path("dgsn", "tls-client"))
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    # Three different keys per party: a leaked TLS key cannot sign messages.
    pins = {_cert(layout.cert_path("dgsn", p)).public_key().public_bytes(
        *_spki_args()) for p in PURPOSES}
    assert len(pins) == 3


def _spki_args() -> tuple:
    from cryptography.hazmat.primitives import serialization
    return serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def test_init_is_idempotent_and_adds_missing_parties_with_the_same_ca(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_pki(keys, ["hub", "narsa"])
    layout = PkiLayout.read(keys)
    before = {p: p.read_bytes() for p in keys.rglob("*.pem") if p.name != "crl.pem"}
    layout = init_pki(keys, ["hub", "narsa", "health"])
    after = {p: p.read_bytes() for p in keys.rglob("*.pem") if p.name != "crl.pem"}
    assert all(after[p] == data for p, data in before.items()), "existing files were rewritten"
    assert layout.parties == ("hub", "narsa", "health")
    _cert(layout.cert_path("health", "signing")).verify_directly_issued_by(_cert(layout.ca_cert))


def test_init_always_includes_the_hub(tmp_path: Path) -> None:
    layout = init_pki(tmp_path / "keys", ["narsa"])
    assert layout.parties[0] == "hub"
    assert layout.cert_path("hub", "signing").is_file()


def test_force_replaces_the_ca(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = _cert(init_pki(keys, ["hub"]).ca_cert)
    second = _cert(init_pki(keys, ["hub"], force=True).ca_cert)
    assert first.serial_number != second.serial_number


def test_refuses_to_mix_algorithms_without_force(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_pki(keys, ["hub"])
    with pytest.raises(ConfigurationError, match="refusing to mix"):
        init_pki(keys, ["hub"], algorithm="rsa")


def test_rsa_pki_makes_rsa_keys(rsa_pki: Path) -> None:
    layout = PkiLayout.read(rsa_pki)
    assert layout.algorithm == "rsa"
    assert isinstance(_cert(layout.cert_path("narsa", "signing")).public_key(), rsa.RSAPublicKey)


@pytest.mark.parametrize("name", ["../etc", "NARSA", "", "a b", "x" * 40])
def test_party_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid party name"):
        init_pki(tmp_path / "keys", [name])


def test_half_a_ca_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    layout = init_pki(keys, ["hub"])
    layout.ca_key.unlink()
    with pytest.raises(ConfigurationError, match="half a CA"):
        init_pki(keys, ["hub"])


def test_issue_makes_certificates_with_chosen_dates(fresh_pki: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old = issue(fresh_pki, "narsa", not_before=now - timedelta(days=10),
                not_after=now - timedelta(days=1))
    assert old.cert.not_valid_after_utc == now - timedelta(days=1)
    old.cert.verify_directly_issued_by(_cert(PkiLayout.read(fresh_pki).ca_cert))
    assert b"BEGIN PRIVATE KEY" in old.key_pem() and b"BEGIN CERTIFICATE" in old.cert_pem()
    with pytest.raises(ConfigurationError, match="later than"):
        issue(fresh_pki, "narsa", not_before=now, not_after=now - timedelta(seconds=1))


def test_issue_with_save_replaces_the_party_files(fresh_pki: Path) -> None:
    layout = PkiLayout.read(fresh_pki)
    before = layout.cert_path("narsa", "signing").read_bytes()
    new = issue(fresh_pki, "narsa", save=True)
    assert layout.cert_path("narsa", "signing").read_bytes() == new.cert_pem() != before
    assert stat.S_IMODE(layout.key_path("narsa", "signing").stat().st_mode) == 0o600


def test_revoke_adds_the_serial_to_a_crl_signed_by_the_ca(fresh_pki: Path) -> None:
    layout = PkiLayout.read(fresh_pki)
    ca = _cert(layout.ca_cert)
    assert len(list(_crl(layout))) == 0
    serial = revoke(fresh_pki, "narsa", "signing")
    assert serial == _cert(layout.cert_path("narsa", "signing")).serial_number
    crl = _crl(layout)
    assert crl.is_signature_valid(ca.public_key())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    extra = issue(fresh_pki, "hub")
    revoke(fresh_pki, cert=extra.cert)
    revoke(fresh_pki, cert=extra.cert)  # twice is harmless
    revoked = sorted(e.serial_number for e in _crl(layout))
    assert revoked == sorted([serial, extra.cert.serial_number])
    number = _crl(layout).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    refresh_crl(fresh_pki)
    refreshed = _crl(layout)
    assert len(list(refreshed)) == 2
    assert refreshed.extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number == number + 1


def test_revoke_refuses_foreign_certificates(fresh_pki: Path, other_pki: Path) -> None:
    foreign = _cert(PkiLayout.read(other_pki).cert_path("narsa", "signing"))
    with pytest.raises(ConfigurationError, match="not issued by this CA"):
        revoke(fresh_pki, cert=foreign)
    with pytest.raises(ConfigurationError, match="no signing certificate"):
        revoke(fresh_pki, "justice")
