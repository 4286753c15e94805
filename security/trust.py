"""Which certificates the hub believes, per party, and why it refuses the others.

A `TrustStore` answers one question: *may this certificate speak for this party, at this time?*
It is built once (usually by `security.keys.KeyStore.trust_store`) and consulted for every
signed message and every pinned TLS connection::

    trust = TrustStore(ca_cert, crl=crl, parties={"narsa": PartyTrust(certificates=(narsa_cert,))})
    trust.verify_certificate("narsa", cert_from_message)      # returns the cert or raises

A certificate is accepted for a party when it is either one of the party's *known* certificates
(exchanged out of band, e.g. an agency's own self-signed certificate) or, when the party accepts
CA-issued certificates, signed by our CA and naming the party (SAN URI
``urn:econsulat:party:<party>`` and CN ``<party>``). Then, whatever the route:

- it is valid at the moment asked (``at``, default: the injected clock),
- it is not on the CA's CRL (and the CRL itself is current),
- its public key matches one of the party's SPKI pins, if the party has pins.

Every refusal is an `UntrustedCertificate` whose ``details["reason"]`` is one of
``unknown_party``, ``unknown``, ``untrusted_issuer``, ``wrong_party``, ``wrong_usage``,
``not_yet_valid``, ``expired``, ``revoked``, ``crl_stale``, ``pin_mismatch``, ``unreadable``.

Pins are ``base64(SHA-256(SubjectPublicKeyInfo DER))``, the format of HPKP and of curl's
``--pinnedpubkey sha256//<pin>``; `spki_pin` computes one. Kid / ``x5t#S256`` values are
``base64url(SHA-256(certificate DER))`` without padding (`cert_thumbprint`).
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigurationError, UntrustedCertificate
from security.pki import party_uri

Clock = Callable[[], datetime]
Usage = Literal["signing", "tls-server", "tls-client"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def spki_pin(cert: x509.Certificate) -> str:
    """``base64(SHA-256(SubjectPublicKeyInfo))`` of a certificate: the value one pins."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def cert_thumbprint(cert: x509.Certificate) -> str:
    """``base64url(SHA-256(DER))`` without padding: the JWS ``x5t#S256`` and our ``kid``."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def describe(cert: x509.Certificate) -> str:
    """Subject and serial, for error messages (certificates carry no personal data here)."""
    try:
        subject = cert.subject.rfc4514_string()
    except ValueError:
        subject = "<unreadable subject>"
    return f"{subject} (serial {cert.serial_number:x})"


@dataclass(frozen=True)
class PartyTrust:
    """How one party is recognised.

    ``certificates``: certificates known for the party (any issuer). ``accept_ca_issued``: also
    accept any certificate our CA issued in the party's name. ``pins`` (signing keys) and
    ``tls_pins`` (TLS keys): if not empty, the certificate's SPKI pin must be one of these,
    whatever the route.
    """

    certificates: tuple[x509.Certificate, ...] = ()
    accept_ca_issued: bool = True
    pins: frozenset[str] = frozenset()
    tls_pins: frozenset[str] = frozenset()

    def pins_for(self, usage: str) -> frozenset[str]:
        return self.pins if usage == "signing" else self.tls_pins


@dataclass
class TrustStore:
    """Per-party trust decisions; see the module docstring. Configure at start-up, then share."""

    ca: x509.Certificate | None
    crl: x509.CertificateRevocationList | None = None
    parties: dict[str, PartyTrust] = field(default_factory=dict)
    clock: Clock = utc_now
    #: Refuse every CA-issued certificate while the CRL is past its next-update time.
    require_fresh_crl: bool = True

    def __post_init__(self) -> None:
        self.parties = dict(self.parties)
        if self.crl is not None:
            if self.ca is None:
                raise ConfigurationError("a CRL needs the CA certificate that signed it")
            if self.crl.issuer != self.ca.subject or not self.crl.is_signature_valid(
                    self.ca.public_key()):  # type: ignore[arg-type]
                raise ConfigurationError("the CRL is not signed by the trusted CA")
        self._revoked = {entry.serial_number: entry.revocation_date_utc
                         for entry in (self.crl or ())}
        # Issuer signature and name checks do not depend on time: remember what passed.
        self._issued_ok: set[tuple[str, bytes]] = set()

    # -- configuration ------------------------------------------------------------------------

    def add_certificate(self, party: str, cert: x509.Certificate) -> "TrustStore":
        current = self.parties.get(party, PartyTrust())
        if cert not in current.certificates:
            self.parties[party] = replace(current, certificates=(*current.certificates, cert))
        return self

    def pin(self, party: str, *pins: str, usage: Usage = "signing") -> "TrustStore":
        """Require the party's certificates for ``usage`` to carry one of these SPKI pins."""
        current = self.parties.get(party, PartyTrust())
        if usage == "signing":
            self.parties[party] = replace(current, pins=current.pins | frozenset(pins))
        else:
            self.parties[party] = replace(current, tls_pins=current.tls_pins | frozenset(pins))
        return self

    # -- questions ----------------------------------------------------------------------------

    def knows(self, party: str) -> bool:
        return party in self.parties

    def certificate_for(self, party: str, thumbprint: str) -> x509.Certificate | None:
        """The party's known certificate whose `cert_thumbprint` is ``thumbprint``, if any."""
        trust = self.parties.get(party)
        if trust is None:
            return None
        for cert in trust.certificates:
            if cert_thumbprint(cert) == thumbprint:
                return cert
        return None

    def pins_for(self, party: str, usage: Usage = "signing") -> frozenset[str]:
        trust = self.parties.get(party)
        return trust.pins_for(usage) if trust else frozenset()

    def verify_certificate(self, party: str, cert: x509.Certificate, *, at: datetime | None = None,
                           usage: Usage = "signing") -> x509.Certificate:
        """Return ``cert`` if it may speak for ``party`` at ``at``; else `UntrustedCertificate`.

        ``usage`` selects the extended key usage required of CA-issued certificates and which pins
        apply (signing pins, or TLS pins for ``tls-server``/``tls-client``).
        """
        trust = self.parties.get(party)
        if trust is None:
            raise _refuse("unknown_party", f"no trust configured for party {party!r}", party)
        at = (at or self.clock()).astimezone(timezone.utc)
        try:
            return self._verify(party, trust, cert, at, usage)
        except ValueError as exc:
            # cryptography parses certificate fields lazily: a damaged field fails on first use.
            raise _refuse("unreadable", f"certificate is malformed: {exc}", party) from None

    def _verify(self, party: str, trust: PartyTrust, cert: x509.Certificate, at: datetime,
                usage: Usage) -> x509.Certificate:
        known = cert in trust.certificates
        issued_by_ca = self._issued_by_ca(cert)
        if not known:
            if not trust.accept_ca_issued:
                raise _refuse("unknown", f"certificate {describe(cert)} is not among the "
                              f"certificates trusted for {party}", party)
            if not issued_by_ca:
                raise _refuse("untrusted_issuer", f"certificate {describe(cert)} was not issued "
                              "by the hub's trusted CA", party)
            self._check_names(party, cert)
            self._check_usage(party, cert, usage)
        if at < cert.not_valid_before_utc:
            raise _refuse("not_yet_valid", f"certificate {describe(cert)} is not valid before "
                          f"{cert.not_valid_before_utc.isoformat()} (checked at "
                          f"{at.isoformat()})", party)
        if at > cert.not_valid_after_utc:
            raise _refuse("expired", f"certificate {describe(cert)} expired on "
                          f"{cert.not_valid_after_utc.isoformat()} (checked at "
                          f"{at.isoformat()})", party)
        if issued_by_ca:
            self._check_revocation(party, cert, at)
        pins = trust.pins_for(usage)
        if pins and spki_pin(cert) not in pins:
            raise _refuse("pin_mismatch", f"public key of {describe(cert)} does not match the "
                          f"{usage} key pinned for {party}", party)
        return cert

    def party_of(self, cert: x509.Certificate) -> str | None:
        """The party a certificate names in its SAN URI (no trust decision: verify it after)."""
        for uri in _san_uris(cert):
            if uri.startswith(party_uri("")):
                return uri[len(party_uri("")):]
        return None

    # -- checks -------------------------------------------------------------------------------

    def _issued_by_ca(self, cert: x509.Certificate) -> bool:
        if self.ca is None or cert.issuer != self.ca.subject:
            return False
        key = ("ca", cert.fingerprint(_SHA256))
        if key in self._issued_ok:
            return True
        try:
            cert.verify_directly_issued_by(self.ca)
        except (InvalidSignature, ValueError, TypeError):
            return False
        self._issued_ok.add(key)
        return True

    def _check_names(self, party: str, cert: x509.Certificate) -> None:
        uris = _san_uris(cert)
        cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if party_uri(party) not in uris or cns != [party]:
            named = ", ".join(uris) or (cns[0] if cns else "nobody")
            raise _refuse("wrong_party", f"certificate {describe(cert)} names {named}, "
                          f"not {party_uri(party)}", party)

    def _check_usage(self, party: str, cert: x509.Certificate, usage: Usage) -> None:
        # A TLS key that leaks must not be able to sign messages, and the other way round.
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            if not ku.digital_signature:
                raise _refuse("wrong_usage", f"certificate {describe(cert)} may not sign", party)
        except x509.ExtensionNotFound:
            pass
        try:
            eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            eku = set()
        wanted = {"signing": None, "tls-server": ExtendedKeyUsageOID.SERVER_AUTH,
                  "tls-client": ExtendedKeyUsageOID.CLIENT_AUTH}[usage]
        tls_usages = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        if wanted is None and eku & tls_usages:
            raise _refuse("wrong_usage", f"certificate {describe(cert)} is a TLS certificate, "
                          "not a signing certificate", party)
        if wanted is not None and wanted not in eku:
            raise _refuse("wrong_usage", f"certificate {describe(cert)} is not valid for {usage}",
                          party)

    def _check_revocation(self, party: str, cert: x509.Certificate, at: datetime) -> None:
        if self.crl is None:
            return
        next_update = self.crl.next_update_utc
        if self.require_fresh_crl and next_update is not None and at > next_update:
            raise _refuse("crl_stale", f"the CRL expired on {next_update.isoformat()}; "
                          "refusing CA-issued certificates until it is renewed", party)
        revoked_on = self._revoked.get(cert.serial_number)
        if revoked_on is not None:
            raise _refuse("revoked", f"certificate {describe(cert)} was revoked on "
                          f"{revoked_on.isoformat()}", party)


_SHA256 = hashes.SHA256()


def _san_uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _refuse(reason: str, message: str, party: str) -> UntrustedCertificate:
    return UntrustedCertificate(message, reason=reason, party=party)


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a PEM or DER certificate; refuse garbage with `UntrustedCertificate`."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
        # Fields are parsed lazily; touch the ones trust decisions read so damage shows here.
        _ = (cert.issuer, cert.subject, cert.serial_number, cert.not_valid_before_utc,
             cert.not_valid_after_utc, cert.public_key(), cert.extensions)
        return cert
    except ValueError as exc:
        raise UntrustedCertificate(f"unreadable certificate: {exc}", reason="unreadable") from None
