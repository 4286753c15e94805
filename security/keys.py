"""Load the hub's keys and certificates once, at start-up, and hand them out.

`KeyStore.load` reads the directory `security.pki` lays out (``$HUB_DATA_DIR/keys``): the CA
certificate, the CRL, every party's certificates, and the private signing keys of the parties
*this process* acts as (``own``: the hub itself by default; an agency simulator passes its own
name). Nothing is parsed again per message: signers, certificates and the trust store are built
here and shared. The CA's private key is never read: a running hub has no use for it.

    store = KeyStore.load(settings.keys_dir)               # ConfigurationError if absent
    signer = store.signer("hub")                           # key + certificate, ready to sign
    trust = store.trust_store()                            # who may sign for which agency
    files = store.tls_files("hub", "tls-client")           # paths for ssl.SSLContext
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hub.errors import ConfigurationError
from security.pki import PURPOSES, PkiLayout, PrivateKey, Purpose
from security.trust import Clock, PartyTrust, TrustStore, cert_thumbprint, spki_pin, utc_now

KeyType = Literal["ec", "rsa"]
_HINT = "run `hub keys init` (or point HUB_KEYS_DIR at the keys)"


@dataclass(frozen=True)
class Signer:
    """A party's private signing key with its certificate; what `xmldsig` and `jws` sign with."""

    party: str
    key: PrivateKey
    cert: x509.Certificate
    #: Computed once: ``base64url(SHA-256(cert DER))``, the JWS ``kid`` and ``x5t#S256``.
    thumbprint: str = field(init=False)
    key_type: KeyType = field(init=False)
    cert_pem: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            key_type: KeyType = "ec"
        elif isinstance(self.key, rsa.RSAPrivateKey):
            key_type = "rsa"
        else:
            raise ConfigurationError(f"signing key of {self.party} must be EC or RSA")
        if self.key.public_key().public_numbers() != self.cert.public_key().public_numbers():  # type: ignore[union-attr]
            raise ConfigurationError(f"signing key and certificate of {self.party} do not match")
        object.__setattr__(self, "key_type", key_type)
        object.__setattr__(self, "thumbprint", cert_thumbprint(self.cert))
        object.__setattr__(self, "cert_pem", self.cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class TlsFiles:
    """Paths ``ssl.SSLContext`` loads: own certificate and key, the CA, and the CRL."""

    cert: Path
    key: Path
    ca: Path
    crl: Path


class KeyStore:
    """Everything read from the keys directory, parsed once. Build it with `KeyStore.load`."""

    def __init__(self, layout: PkiLayout, ca: x509.Certificate,
                 crl: x509.CertificateRevocationList | None,
                 certificates: Mapping[tuple[str, Purpose], x509.Certificate],
                 signers: Mapping[str, Signer]) -> None:
        self.layout = layout
        self.ca = ca
        self.crl = crl
        self._certificates = dict(certificates)
        self._signers = dict(signers)

    @classmethod
    def load(cls, keys_dir: Path, *, own: Iterable[str] = ("hub",)) -> "KeyStore":
        """Read ``keys_dir``; load private signing keys only for the parties in ``own``."""
        keys_dir = Path(keys_dir)
        if not keys_dir.is_dir():
            raise ConfigurationError(f"keys directory {keys_dir} does not exist: {_HINT}")
        layout = PkiLayout.read(keys_dir)
        ca = _read_cert(layout.ca_cert)
        crl = None
        if layout.crl.is_file():
            try:
                crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
            except ValueError as exc:
                raise ConfigurationError(f"{layout.crl} is unreadable: {exc}") from None
        certificates: dict[tuple[str, Purpose], x509.Certificate] = {}
        for party in layout.parties:
            for purpose in PURPOSES:
                path = layout.cert_path(party, purpose)
                if path.is_file():
                    certificates[(party, purpose)] = _read_cert(path)
        signers: dict[str, Signer] = {}
        for party in own:
            cert = certificates.get((party, "signing"))
            if cert is None:
                raise ConfigurationError(f"no signing certificate for {party} in {keys_dir}: "
                                         f"run `hub keys add {party}` (a party packaged since"
                                         f" the keys were made), or {_HINT}")
            key = _read_key(layout.key_path(party, "signing"))
            signers[party] = Signer(party, key, cert)
        return cls(layout, ca, crl, certificates, signers)

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(party for party, _ in self._certificates))

    def signer(self, party: str = "hub") -> Signer:
        try:
            return self._signers[party]
        except KeyError:
            raise ConfigurationError(
                f"the private signing key of {party!r} is not loaded "
                f"(loaded: {', '.join(self._signers) or 'none'}; KeyStore.load(..., own=[...]))"
            ) from None

    def certificate(self, party: str, purpose: Purpose = "signing") -> x509.Certificate:
        try:
            return self._certificates[(party, purpose)]
        except KeyError:
            raise ConfigurationError(f"no {purpose} certificate for {party!r} in "
                                     f"{self.layout.keys_dir}: {_HINT}") from None

    def tls_files(self, party: str, purpose: Literal["tls-server", "tls-client"]) -> TlsFiles:
        self.certificate(party, purpose)  # fail early and clearly when absent
        key = self.layout.key_path(party, purpose)
        if not key.is_file():
            raise ConfigurationError(f"no {purpose} key for {party!r} at {key}: {_HINT}")
        return TlsFiles(cert=self.layout.cert_path(party, purpose), key=key,
                        ca=self.layout.ca_cert, crl=self.layout.crl)

    def tls_pin(self, party: str, purpose: Purpose = "tls-server") -> str:
        """SPKI pin of a party's certificate on disk (development; production pins are config)."""
        return spki_pin(self.certificate(party, purpose))

    def trust_store(self, *, clock: Clock = utc_now,
                    pins: Mapping[str, Iterable[str]] | None = None,
                    tls_pins: Mapping[str, Iterable[str]] | None = None) -> TrustStore:
        """A trust store knowing every party's signing certificate, our CA and its CRL.

        ``pins`` / ``tls_pins``: SPKI pins per party for signing / TLS keys (production config;
        `tls_pin` gives the development values).
        """
        parties = {
            party: PartyTrust(certificates=(cert,), accept_ca_issued=True,
                              pins=frozenset((pins or {}).get(party, ())),
                              tls_pins=frozenset((tls_pins or {}).get(party, ())))
            for (party, purpose), cert in self._certificates.items() if purpose == "signing"
        }
        return TrustStore(self.ca, crl=self.crl, parties=parties, clock=clock)


def _read_cert(path: Path) -> x509.Certificate:
    if not path.is_file():
        raise ConfigurationError(f"missing certificate {path}: {_HINT}")
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a PEM certificate: {exc}") from None


def _read_key(path: Path) -> PrivateKey:
    if not path.is_file():
        raise ConfigurationError(f"missing private key {path}: {_HINT}")
    if path.stat().st_mode & 0o077:
        # Refuse rather than warn: a key readable by others may already be someone else's key.
        raise ConfigurationError(f"private key {path} is readable by other users; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ConfigurationError(f"{path}: only EC and RSA keys are supported")
    return key
