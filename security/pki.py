"""Development PKI: one CA, and for the hub and every agency a signing and two TLS credentials.

The hub signs messages (XML-DSig, JWS) with a *signing* key and talks to agencies over mutual TLS
with a *TLS server* and a *TLS client* certificate. In production those come from the national
PKI; for development, tests and the quick start, ``hub keys init`` calls `init_pki`, which builds
the same shape from a throw-away CA so that every code path (chain, expiry, revocation, pinning)
is exercised for real.

    >>> layout = init_pki(Path("/tmp/hub/keys"), ["hub", "narsa"])      # doctest: +SKIP
    >>> layout.cert_path("narsa", "signing")                             # doctest: +SKIP
    PosixPath('/tmp/hub/keys/narsa/signing.cert.pem')

File layout (``keys_dir`` is ``$HUB_DATA_DIR/keys`` by default, never inside the repository)::

    keys_dir/                      0700
      pki.json                     manifest: algorithm, parties, creation time
      ca.key.pem                   CA private key (0600). Not read at run time: keep it offline.
      ca.cert.pem                  CA certificate, the trust anchor given to agencies
      crl.pem                      CRL signed by the CA: empty at first, `revoke` adds entries;
                                   re-signed (new nextUpdate, 30 days) by every `init_pki`,
                                   `revoke` and `refresh_crl`, since verifiers refuse a stale one
      <party>/                     one per party: hub, interior, dgsn, health, narsa, justice
        signing.key.pem            0600; signs XML-DSig and JWS
        signing.cert.pem           CN=<party>, O=<org>, C=MA, SAN URI urn:econsulat:party:<party>
        tls-server.key.pem         0600
        tls-server.cert.pem        SAN DNS localhost, IP 127.0.0.1; EKU serverAuth
        tls-client.key.pem         0600
        tls-client.cert.pem        SAN URI urn:econsulat:party:<party>; EKU clientAuth

Every key is PEM (PKCS#8, unencrypted: the directory's permissions protect it in development).
Keys are EC P-256 by default (``algorithm="ec"``: ES256 / ecdsa-sha256) or RSA 3072
(``algorithm="rsa"``: RS256 / rsa-sha256).

`init_pki` is idempotent: files that exist are kept, missing ones are made with the existing CA
(so adding a party is another call with a longer list); ``force=True`` throws everything away and
starts a new CA. `revoke` puts a certificate on the CRL; `issue` makes an extra certificate with
chosen validity dates (short-lived or already expired) for tests and rotation drills.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigurationError

Algorithm = Literal["ec", "rsa"]
Purpose = Literal["signing", "tls-server", "tls-client"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

PURPOSES: tuple[Purpose, ...] = ("signing", "tls-server", "tls-client")
DEFAULT_PARTIES: tuple[str, ...] = ("hub", "interior", "dgsn", "health", "narsa", "justice")
#: Organisation names written in the subject's O attribute.
ORGANISATIONS: dict[str, str] = {
    "hub": "ECONSULAT-HUB",
    "interior": "MININT",
    "dgsn": "DGSN",
    "health": "MINSANTE",
    "narsa": "NARSA",
    "justice": "MINJUSTICE",
}
CA_NAME = "econsulat-hub development CA"
SAN_URI_PREFIX = "urn:econsulat:party:"
MANIFEST = "pki.json"
#: How long a CRL is declared current. Verifiers refuse a stale CRL, so `revoke` re-signs it.
CRL_VALIDITY = timedelta(days=30)

_PARTY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def party_uri(party: str) -> str:
    """The SAN URI that names a party in its certificates: ``urn:econsulat:party:<party>``."""
    return SAN_URI_PREFIX + party


def check_party(party: str) -> str:
    # Party names become directory names and certificate subjects: keep them boring.
    if not isinstance(party, str) or not _PARTY_RE.match(party):
        raise ConfigurationError(f"invalid party name {party!r}: lowercase letters, digits, - or _")
    return party


@dataclass(frozen=True)
class PkiLayout:
    """Where the files of a PKI live. Pure path arithmetic: nothing is read."""

    keys_dir: Path
    parties: tuple[str, ...] = DEFAULT_PARTIES
    algorithm: Algorithm = "ec"

    @property
    def ca_key(self) -> Path:
        return self.keys_dir / "ca.key.pem"

    @property
    def ca_cert(self) -> Path:
        return self.keys_dir / "ca.cert.pem"

    @property
    def crl(self) -> Path:
        return self.keys_dir / "crl.pem"

    @property
    def manifest(self) -> Path:
        return self.keys_dir / MANIFEST

    def party_dir(self, party: str) -> Path:
        return self.keys_dir / check_party(party)

    def key_path(self, party: str, purpose: Purpose) -> Path:
        return self.party_dir(party) / f"{_purpose(purpose)}.key.pem"

    def cert_path(self, party: str, purpose: Purpose) -> Path:
        return self.party_dir(party) / f"{_purpose(purpose)}.cert.pem"

    @classmethod
    def read(cls, keys_dir: Path) -> "PkiLayout":
        """The layout recorded in ``keys_dir/pki.json``; parties found on disk if it is absent."""
        keys_dir = Path(keys_dir)
        manifest = keys_dir / MANIFEST
        if manifest.is_file():
            try:
                doc = json.loads(manifest.read_text("utf-8"))
                return cls(keys_dir, tuple(check_party(p) for p in doc["parties"]),
                           doc.get("algorithm", "ec"))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(f"{manifest} is unreadable: {exc}") from None
        parties = tuple(sorted(p.parent.name for p in keys_dir.glob("*/signing.cert.pem")))
        return cls(keys_dir, parties)


@dataclass(frozen=True)
class Issued:
    """A freshly issued key and certificate (in memory; `issue` may also have written them)."""

    party: str
    purpose: Purpose
    key: PrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


# -- public operations -----------------------------------------------------------------------------

def init_pki(keys_dir: Path, parties: Sequence[str] = DEFAULT_PARTIES, *,
             algorithm: Algorithm = "ec", days: int = 825, force: bool = False,
             now: datetime | None = None) -> PkiLayout:
    """Create (or complete) a development PKI under ``keys_dir`` and return its layout.

    Existing files are never overwritten unless ``force`` is true, in which case the whole
    directory is replaced by a new CA and new credentials.
    """
    if algorithm not in ("ec", "rsa"):
        raise ConfigurationError(f"unknown key algorithm {algorithm!r}: use 'ec' or 'rsa'")
    if days < 1:
        raise ConfigurationError(f"days must be >= 1, got {days}")
    keys_dir = Path(keys_dir)
    wanted = tuple(dict.fromkeys(check_party(p) for p in parties))
    if "hub" not in wanted:
        wanted = ("hub", *wanted)
    now = _now(now)

    if force and keys_dir.exists():
        shutil.rmtree(keys_dir)
    previous = PkiLayout.read(keys_dir) if (keys_dir / MANIFEST).is_file() else None
    if previous is not None and previous.algorithm != algorithm:
        raise ConfigurationError(
            f"{keys_dir} holds an {previous.algorithm!r} PKI; refusing to mix in {algorithm!r} "
            "keys (pass force=True to replace it)")
    _mkdir_private(keys_dir)
    all_parties = tuple(dict.fromkeys((*(previous.parties if previous else ()), *wanted)))
    layout = PkiLayout(keys_dir, all_parties, algorithm)

    if layout.ca_key.exists() != layout.ca_cert.exists():
        raise ConfigurationError(f"{keys_dir} has half a CA (key or certificate missing); "
                                 "pass force=True to start again")
    if not layout.ca_cert.exists():
        ca_key = _new_key(algorithm)
        # The CA outlives every certificate it signs, so leaf validity never exceeds the anchor's.
        ca_cert = _build_ca(ca_key, now, days + 365)
        _write_private(layout.ca_key, _key_pem(ca_key))
        _write_public(layout.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key, ca_cert = _load_ca(layout)
    # Re-signing keeps the same entries but renews nextUpdate: verifiers refuse a stale CRL.
    _write_crl(layout, ca_key, ca_cert, _read_crl(layout, ca_cert), now)

    for party in all_parties:
        _mkdir_private(layout.party_dir(party))
        for purpose in PURPOSES:
            key_path, cert_path = layout.key_path(party, purpose), layout.cert_path(party, purpose)
            if key_path.exists() and cert_path.exists():
                continue
            key = _new_key(algorithm)
            cert = _build_leaf(party, purpose, key.public_key(), ca_key, ca_cert,
                               not_before=now - timedelta(minutes=5),
                               not_after=now + timedelta(days=days))
            _write_private(layout.key_path(party, purpose), _key_pem(key), replace=True)
            _write_public(layout.cert_path(party, purpose),
                          cert.public_bytes(serialization.Encoding.PEM), replace=True)

    _write_public(layout.manifest, json.dumps({
        "algorithm": algorithm, "parties": list(all_parties),
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }, indent=2).encode("utf-8") + b"\n", replace=True)
    return layout


def issue(keys_dir: Path, party: str, purpose: Purpose = "signing", *,
          not_before: datetime | None = None, not_after: datetime | None = None,
          save: bool = False) -> Issued:
    """Issue a new key and certificate for ``party`` from the CA in ``keys_dir``.

    The validity window is free, so tests can make an expired or not-yet-valid certificate::

        old = issue(keys_dir, "narsa", not_before=now - timedelta(days=10),
                    not_after=now - timedelta(days=1))

    With ``save=True`` the result replaces the party's files for that purpose (a rotation).
    """
    layout = PkiLayout.read(keys_dir)
    check_party(party)
    now = _now(None)
    not_before = not_before or now - timedelta(minutes=5)
    not_after = not_after or now + timedelta(days=1)
    if not_after <= not_before:
        raise ConfigurationError("not_after must be later than not_before")
    ca_key, ca_cert = _load_ca(layout)
    key = _new_key(layout.algorithm)
    cert = _build_leaf(party, _purpose(purpose), key.public_key(), ca_key, ca_cert,
                       not_before=not_before, not_after=not_after)
    if save:
        _mkdir_private(layout.party_dir(party))
        _write_private(layout.key_path(party, purpose), _key_pem(key), replace=True)
        _write_public(layout.cert_path(party, purpose),
                      cert.public_bytes(serialization.Encoding.PEM), replace=True)
    return Issued(party, purpose, key, cert)


def revoke(keys_dir: Path, party: str | None = None, purpose: Purpose = "signing", *,
           cert: x509.Certificate | None = None, now: datetime | None = None) -> int:
    """Put a certificate on the CA's CRL (``crl.pem``) and return its serial number.

    By default the certificate revoked is the party's current one for ``purpose``; pass ``cert``
    to revoke another (for instance one made by `issue`). Re-revoking is harmless.
    """
    layout = PkiLayout.read(keys_dir)
    now = _now(now)
    if cert is None:
        if party is None:
            raise ConfigurationError("revoke needs a party or a certificate")
        path = layout.cert_path(party, purpose)
        if not path.is_file():
            raise ConfigurationError(f"no {purpose} certificate for {party} at {path}")
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    ca_key, ca_cert = _load_ca(layout)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise ConfigurationError("certificate was not issued by this CA; it cannot be revoked here"
                                 ) from None
    entries = list(_read_crl(layout, ca_cert))
    if all(entry.serial_number != cert.serial_number for entry in entries):
        entries.append(x509.RevokedCertificateBuilder()
                       .serial_number(cert.serial_number)
                       .revocation_date(now)
                       .build())
    _write_crl(layout, ca_key, ca_cert, entries, now)
    return cert.serial_number


# -- building blocks -------------------------------------------------------------------------------

def refresh_crl(keys_dir: Path, *, now: datetime | None = None) -> None:
    """Re-sign ``crl.pem`` with the same entries and a new ``nextUpdate`` (run it periodically)."""
    layout = PkiLayout.read(keys_dir)
    ca_key, ca_cert = _load_ca(layout)
    _write_crl(layout, ca_key, ca_cert, _read_crl(layout, ca_cert), _now(now))


def _purpose(purpose: str) -> Purpose:
    if purpose not in PURPOSES:
        raise ConfigurationError(f"unknown certificate purpose {purpose!r}: one of {PURPOSES}")
    return purpose  # type: ignore[return-value]


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    # X.509 times have second precision; truncating keeps comparisons in tests exact.
    return now.astimezone(timezone.utc).replace(microsecond=0)


def _new_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(party: str, unit: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "MA"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATIONS.get(party, party.upper()))]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, party))
    return x509.Name(attrs)


def _build_ca(key: PrivateKey, now: datetime, days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "MA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ECONSULAT-HUB"),
                      x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))


def _build_leaf(party: str, purpose: Purpose, public_key: object, ca_key: PrivateKey,
                ca_cert: x509.Certificate, *, not_before: datetime,
                not_after: datetime) -> x509.Certificate:
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    if purpose == "signing":
        usage = dict(digital_signature=True, content_commitment=True, key_encipherment=False)
        eku = None
        san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(party_uri(party))]
    else:
        # RSA key exchange (TLS 1.2 without ECDHE) would need keyEncipherment; EC keys never do.
        usage = dict(digital_signature=True, content_commitment=False, key_encipherment=is_rsa)
        if purpose == "tls-server":
            eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
            san = [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1")),
                   x509.UniformResourceIdentifier(party_uri(party))]
        else:
            eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
            san = [x509.UniformResourceIdentifier(party_uri(party))]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateBuilder()
               .subject_name(_name(party, purpose))
               .issuer_name(ca_cert.subject)
               .public_key(public_key)  # type: ignore[arg-type]
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(**usage, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.SubjectAlternativeName(san), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                              critical=False))
    if eku is not None:
        builder = builder.add_extension(eku, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _load_ca(layout: PkiLayout) -> tuple[PrivateKey, x509.Certificate]:
    if not layout.ca_key.is_file() or not layout.ca_cert.is_file():
        raise ConfigurationError(f"no CA in {layout.keys_dir}: run `hub keys init`")
    try:
        key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    except ValueError as exc:
        raise ConfigurationError(f"CA files in {layout.keys_dir} are unreadable: {exc}") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ConfigurationError("CA key must be EC or RSA")
    return key, cert


def _read_crl(layout: PkiLayout, ca_cert: x509.Certificate) -> list[x509.RevokedCertificate]:
    if not layout.crl.is_file():
        return []
    try:
        crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
    except ValueError as exc:
        raise ConfigurationError(f"{layout.crl} is unreadable: {exc}") from None
    return list(crl)


def _write_crl(layout: PkiLayout, ca_key: PrivateKey, ca_cert: x509.Certificate,
               entries: list[x509.RevokedCertificate], now: datetime) -> None:
    number = 1
    if layout.crl.is_file():
        try:
            previous = x509.load_pem_x509_crl(layout.crl.read_bytes())
            number = 1 + previous.extensions.get_extension_for_class(
                x509.CRLNumber).value.crl_number
        except (ValueError, x509.ExtensionNotFound):
            pass
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject)
               .last_update(now - timedelta(minutes=5))
               .next_update(now + CRL_VALIDITY)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                              critical=False))
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_public(layout.crl, crl.public_bytes(serialization.Encoding.PEM), replace=True)


def _mkdir_private(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    # Created 0600 from the start (O_EXCL, mode at open): a key is never readable by others, even
    # for the instant between write and chmod.
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists() and not replace:
        tmp.unlink()
        raise ConfigurationError(f"{path} exists; refusing to overwrite it")
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes, *, replace: bool = False) -> None:
    if path.exists() and not replace:
        raise ConfigurationError(f"{path} exists; refusing to overwrite it")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
