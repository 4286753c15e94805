"""security.trust: every reason a certificate is refused, and the ways it is accepted."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.errors import ConfigurationError, UntrustedCertificate
from security.keys import KeyStore
from security.pki import CRL_VALIDITY, issue, revoke
from security.trust import PartyTrust, TrustStore, cert_thumbprint, load_certificate, spki_pin


def _reason(excinfo: pytest.ExceptionInfo[UntrustedCertificate]) -> str:
    return excinfo.value.details["reason"]


def test_a_party_certificate_is_accepted(store: KeyStore, trust: TrustStore) -> None:
    cert = store.certificate("narsa")
    assert trust.verify_certificate("narsa", cert) is cert


def test_ca_issued_certificate_not_yet_known_is_accepted_for_its_party(pki: Path,
                                                                       trust: TrustStore) -> None:
    rotated = issue(pki, "narsa").cert  # e.g. a renewed certificate, not yet distributed
    assert trust.verify_certificate("narsa", rotated) is rotated


def test_unknown_party(store: KeyStore, trust: TrustStore) -> None:
    with pytest.raises(UntrustedCertificate, match="no trust configured") as exc:
        trust.verify_certificate("ministry-of-magic", store.certificate("narsa"))
    assert _reason(exc) == "unknown_party"


def test_foreign_ca_with_the_same_names_is_refused(other_store: KeyStore,
                                                   trust: TrustStore) -> None:
    foreign = other_store.certificate("narsa")
    assert foreign.issuer == trust.ca.subject  # same DN: only the signature tells them apart
    with pytest.raises(UntrustedCertificate, match="not issued by the hub's trusted CA") as exc:
        trust.verify_certificate("narsa", foreign)
    assert _reason(exc) == "untrusted_issuer"


def test_wrong_party(store: KeyStore, trust: TrustStore) -> None:
    with pytest.raises(UntrustedCertificate, match="names urn:econsulat:party:dgsn, not "
                       "urn:econsulat:party:narsa") as exc:
        trust.verify_certificate("narsa", store.certificate("dgsn"))
    assert _reason(exc) == "wrong_party"


def test_tls_certificate_cannot_sign(store: KeyStore, trust: TrustStore) -> None:
    with pytest.raises(UntrustedCertificate, match="TLS certificate") as exc:
        trust.verify_certificate("narsa", store.certificate("narsa", "tls-client"))
    assert _reason(exc) == "wrong_usage"
    assert trust.verify_certificate("narsa", store.certificate("narsa", "tls-client"),
                                    usage="tls-client")
    with pytest.raises(UntrustedCertificate, match="not valid for tls-server"):
        trust.verify_certificate("narsa", store.certificate("narsa", "tls-client"),
                                 usage="tls-server")


def test_expired_and_not_yet_valid(store: KeyStore, trust: TrustStore, clock) -> None:
    cert = store.certificate("narsa")
    with pytest.raises(UntrustedCertificate, match="expired on") as exc:
        trust.verify_certificate("narsa", cert, at=cert.not_valid_after_utc + timedelta(seconds=1))
    assert _reason(exc) == "expired"
    with pytest.raises(UntrustedCertificate, match="not valid before") as exc:
        trust.verify_certificate("narsa", cert, at=cert.not_valid_before_utc - timedelta(seconds=1))
    assert _reason(exc) == "not_yet_valid"
    # The injected clock is the default moment.
    clock.now = cert.not_valid_before_utc - timedelta(days=1)
    with pytest.raises(UntrustedCertificate, match="not valid before"):
        TrustStore(store.ca, crl=store.crl, parties=trust.parties, clock=clock).verify_certificate(
            "narsa", cert)


def test_expired_certificate_issued_for_tests(pki: Path, trust: TrustStore) -> None:
    now = datetime.now(timezone.utc)
    old = issue(pki, "narsa", not_before=now - timedelta(days=3), not_after=now - timedelta(days=1))
    with pytest.raises(UntrustedCertificate) as exc:
        trust.verify_certificate("narsa", old.cert)
    assert _reason(exc) == "expired"


def test_revoked(fresh_pki: Path) -> None:
    victim = issue(fresh_pki, "narsa").cert
    before = KeyStore.load(fresh_pki).trust_store()
    assert before.verify_certificate("narsa", victim)
    revoke(fresh_pki, cert=victim)
    after = KeyStore.load(fresh_pki).trust_store()
    with pytest.raises(UntrustedCertificate, match="was revoked on") as exc:
        after.verify_certificate("narsa", victim)
    assert _reason(exc) == "revoked"
    # A revoked certificate stays revoked even when it is among the party's known certificates.
    after.add_certificate("narsa", victim)
    with pytest.raises(UntrustedCertificate, match="revoked"):
        after.verify_certificate("narsa", victim)


def test_stale_crl_refuses_ca_issued_certificates(store: KeyStore, trust: TrustStore) -> None:
    later = store.crl.next_update_utc + timedelta(seconds=1)
    assert later < store.certificate("narsa").not_valid_after_utc  # the CRL ages first
    with pytest.raises(UntrustedCertificate, match="the CRL expired") as exc:
        trust.verify_certificate("narsa", store.certificate("narsa"), at=later)
    assert _reason(exc) == "crl_stale"
    assert CRL_VALIDITY.days >= 1
    lenient = TrustStore(store.ca, crl=store.crl, parties=trust.parties, require_fresh_crl=False)
    assert lenient.verify_certificate("narsa", store.certificate("narsa"), at=later)


def test_crl_from_another_ca_is_refused(store: KeyStore, other_store: KeyStore) -> None:
    with pytest.raises(ConfigurationError, match="not signed by the trusted CA"):
        TrustStore(store.ca, crl=other_store.crl)


def test_pinning(store: KeyStore, pki: Path, trust: TrustStore) -> None:
    cert = store.certificate("narsa")
    trust.pin("narsa", spki_pin(cert))
    assert trust.verify_certificate("narsa", cert)
    renewed = issue(pki, "narsa").cert  # same CA and name, new key: refused while pinned
    with pytest.raises(UntrustedCertificate, match="does not match the signing key pinned") as exc:
        trust.verify_certificate("narsa", renewed)
    assert _reason(exc) == "pin_mismatch"
    # TLS pins are separate: signing pins do not constrain TLS keys.
    assert trust.verify_certificate("narsa", store.certificate("narsa", "tls-client"),
                                    usage="tls-client")


def _self_signed(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_explicitly_trusted_certificate_from_outside_our_ca(store: KeyStore) -> None:
    agency_own = _self_signed("health-gateway")
    health = PartyTrust(certificates=(agency_own,), accept_ca_issued=False)
    trust = TrustStore(store.ca, crl=store.crl, parties={"health": health})
    assert trust.verify_certificate("health", agency_own)
    assert trust.certificate_for("health", cert_thumbprint(agency_own)) is agency_own
    with pytest.raises(UntrustedCertificate, match="not among the certificates trusted") as exc:
        trust.verify_certificate("health", store.certificate("health"))
    assert _reason(exc) == "unknown"


def test_party_of_reads_the_san(store: KeyStore, trust: TrustStore) -> None:
    assert trust.party_of(store.certificate("justice", "tls-client")) == "justice"
    assert trust.party_of(_self_signed("x")) is None


def test_load_certificate_accepts_pem_and_der_and_refuses_garbage(store: KeyStore) -> None:
    from cryptography.hazmat.primitives import serialization
    cert = store.certificate("hub")
    assert load_certificate(cert.public_bytes(serialization.Encoding.PEM)) == cert
    assert load_certificate(cert.public_bytes(serialization.Encoding.DER)) == cert
    with pytest.raises(UntrustedCertificate, match="unreadable certificate"):
        load_certificate(b"\x30\x03junk")


def test_issuer_cache_does_not_skip_time_checks(store: KeyStore, trust: TrustStore) -> None:
    cert = issue(store.layout.keys_dir, "narsa").cert
    assert trust.verify_certificate("narsa", cert)  # populates the issuer cache
    with pytest.raises(UntrustedCertificate, match="expired"):
        trust.verify_certificate("narsa", cert, at=cert.not_valid_after_utc + timedelta(days=1))


def test_damaged_certificate_fields_are_untrusted_not_crashes(store: KeyStore,
                                                             trust: TrustStore) -> None:
    """cryptography parses fields lazily; a damaged issuer must still end as a refusal."""
    from cryptography.hazmat.primitives import serialization
    der = bytearray(store.certificate("hub").public_bytes(serialization.Encoding.DER))
    issuer = bytes(der).find(b"econsulat-hub development CA")
    der[issuer - 2] = 0x05  # the string's tag inside the issuer Name becomes NULL
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
    except ValueError:
        pytest.skip("this cryptography version parses eagerly")
    with pytest.raises(UntrustedCertificate) as exc:
        trust.verify_certificate("hub", cert)
    assert _reason(exc) == "unreadable"
    with pytest.raises(UntrustedCertificate, match="unreadable"):
        load_certificate(bytes(der))
