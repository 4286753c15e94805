"""Mutual TLS between the hub and the agencies, with per-agency key pinning.

Outbound (the hub calls an agency): a client context presents the hub's TLS client certificate
and trusts only our CA (never the system store); `pinned_session` adds a check of the server's
public key against the agency's pins before a single byte of the request is sent::

    files = store.tls_files("hub", "tls-client")
    session = pinned_session("narsa", trust.pins_for("narsa", "tls-server") or
                             {store.tls_pin("narsa")}, client_context(files))
    session.post("https://narsa.example/verify", data=body, timeout=10)

Inbound (an agency calls the hub): `server_context` requires a client certificate issued by our
CA and not revoked (the CRL is checked during the handshake); `party_from_peer` then names and
re-checks the caller from that certificate::

    httpd.socket = server_context(store.tls_files("hub", "tls-server")).wrap_socket(
        httpd.socket, server_side=True)
    party = party_from_peer(handler.request.getpeercert(binary_form=True), trust)

TLS 1.2 is the floor. A pin mismatch or a certificate that fails verification raises
`UntrustedCertificate` (permanent: retrying will not change the certificate); other connection
failures stay ``requests`` exceptions for the connector to classify (usually `AgencyUnavailable`).
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Iterable

import requests
from cryptography import x509
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from hub.errors import ConfigurationError, UntrustedCertificate
from security.keys import TlsFiles
from security.trust import TrustStore, describe, load_certificate, spki_pin


def server_context(files: TlsFiles, *, require_client_cert: bool = True,
                   check_crl: bool = True) -> ssl.SSLContext:
    """Server side: our certificate; clients must present one issued by our CA, not revoked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, files)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    _load_trust(ctx, files, check_crl)
    return ctx


def client_context(files: TlsFiles, *, check_crl: bool = True) -> ssl.SSLContext:
    """Client side: present our certificate; trust only our CA; check the host name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, files)
    _load_trust(ctx, files, check_crl)
    return ctx


def _load_chain(ctx: ssl.SSLContext, files: TlsFiles) -> None:
    try:
        ctx.load_cert_chain(certfile=str(files.cert), keyfile=str(files.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load TLS certificate {files.cert}: {exc}") from None


def _load_trust(ctx: ssl.SSLContext, files: TlsFiles, check_crl: bool) -> None:
    try:
        ctx.load_verify_locations(cafile=str(files.ca))
        if check_crl:
            if not Path(files.crl).is_file():
                raise ConfigurationError(f"CRL {files.crl} is missing (check_crl=False to skip)")
            # OpenSSL reads CRLs from a PEM "CA file" too; the flag makes the check mandatory.
            ctx.load_verify_locations(cafile=str(files.crl))
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load CA/CRL for TLS: {exc}") from None


def check_pin(der: bytes | None, pins: Iterable[str], party: str) -> x509.Certificate:
    """Raise `UntrustedCertificate` unless the DER certificate's SPKI pin is in ``pins``."""
    if not der:
        raise UntrustedCertificate(f"{party} presented no TLS certificate", reason="no_certificate",
                                   party=party)
    cert = load_certificate(der)
    if spki_pin(cert) not in set(pins):
        raise UntrustedCertificate(f"TLS key of {party} ({describe(cert)}) does not match its pin",
                                   reason="pin_mismatch", party=party)
    return cert


def party_from_peer(der: bytes | None, trust: TrustStore) -> str:
    """Name the party behind an inbound mTLS connection from its client certificate, and check it
    (CA, party name, client usage, dates, CRL, TLS pins) with the trust store."""
    if not der:
        raise UntrustedCertificate("the caller presented no client certificate",
                                   reason="no_certificate")
    cert = load_certificate(der)
    party = trust.party_of(cert)
    if party is None:
        raise UntrustedCertificate(f"client certificate {describe(cert)} names no party",
                                   reason="unknown")
    trust.verify_certificate(party, cert, usage="tls-client")
    return party


def _pinned_pool_class(party: str, pins: frozenset[str]) -> type[HTTPSConnectionPool]:
    class PinnedHTTPSConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            # After the handshake (chain and host name already verified by the context), before
            # the request is written: a wrong key never sees the message.
            check_pin(self.sock.getpeercert(binary_form=True), pins, party)  # type: ignore[union-attr]

    class PinnedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = PinnedHTTPSConnection

    return PinnedHTTPSConnectionPool


class PinnedAdapter(HTTPAdapter):
    """A requests adapter for one agency: our SSL context, and the agency's SPKI pins checked."""

    def __init__(self, party: str, pins: Iterable[str], ssl_context: ssl.SSLContext,
                 **kwargs: Any) -> None:
        self.party = party
        self.pins = frozenset(pins)
        if not self.pins:
            raise ConfigurationError(f"no TLS pins configured for {party}")
        self.ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block=block, ssl_context=self.ssl_context,
                                 **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "https": _pinned_pool_class(self.party, self.pins),
        }

    def build_connection_pool_key_attributes(
            self, request: Any, verify: Any, cert: Any = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        self._refuse_overrides(verify, cert)
        return host_params, {"ssl_context": self.ssl_context, "cert_reqs": "CERT_REQUIRED"}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would point the pool at certifi's public CAs; our context already holds the
        # only CA we trust and our client certificate.
        self._refuse_overrides(verify, cert)
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def _refuse_overrides(self, verify: Any, cert: Any) -> None:
        if verify is not True:
            raise ConfigurationError(f"verify={verify!r} is not allowed on a pinned connection")
        if cert:
            raise ConfigurationError("the client certificate comes from the SSL context, not cert=")

    def send(self, request: requests.PreparedRequest, *args: Any,  # type: ignore[override]
             **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, *args, **kwargs)
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
                raise UntrustedCertificate(f"TLS certificate of {self.party} failed verification: "
                                           f"{_reason(exc)}", reason="tls_verify",
                                           party=self.party) from None
            raise


class _RefusePlainHttp(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any,  # type: ignore[override]
             **kwargs: Any) -> requests.Response:
        raise ConfigurationError(f"plain http:// to an agency is refused: {request.url}")


def pinned_session(party: str, pins: Iterable[str],
                   ssl_context: ssl.SSLContext) -> requests.Session:
    """A `requests.Session` that speaks only pinned mTLS to ``party``."""
    session = requests.Session()
    session.trust_env = False  # no proxy or CA bundle from the environment
    session.mount("https://", PinnedAdapter(party, pins, ssl_context))
    session.mount("http://", _RefusePlainHttp())
    return session


def _reason(exc: Exception) -> str:
    text = str(exc)
    marker = "certificate verify failed"
    return text[text.find(marker):].split(")")[0] if marker in text else text[:200]
