"""security.tls: real mutual TLS against an http.server on 127.0.0.1, with pinning and CRLs."""
from __future__ import annotations

import contextlib
import ssl
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import requests

from hub.errors import ConfigurationError, UntrustedCertificate
from security.keys import KeyStore, TlsFiles
from security.pki import issue, revoke
from security.tls import (
    PinnedAdapter,
    check_pin,
    client_context,
    party_from_peer,
    pinned_session,
    server_context,
)
from security.trust import TrustStore


class Agency:
    """A TLS server standing in for an agency; it records who called it."""

    def __init__(self, files: TlsFiles, trust: TrustStore) -> None:
        self.callers: list[str] = []
        agency = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                try:
                    party = party_from_peer(self.request.getpeercert(binary_form=True), trust)
                except UntrustedCertificate as exc:
                    party = f"refused:{exc.details['reason']}"
                agency.callers.append(party)
                body = party.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = server_context(files).wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}/verify"


@contextlib.contextmanager
def agency_server(files: TlsFiles, trust: TrustStore) -> Iterator[Agency]:
    agency = Agency(files, trust)
    agency.thread.start()
    try:
        yield agency
    finally:
        agency.httpd.shutdown()
        agency.httpd.server_close()
        agency.thread.join(timeout=5)


@pytest.fixture
def narsa(store: KeyStore, trust: TrustStore) -> Iterator[Agency]:
    with agency_server(store.tls_files("narsa", "tls-server"), trust) as agency:
        yield agency


@pytest.fixture
def hub_context(store: KeyStore) -> ssl.SSLContext:
    return client_context(store.tls_files("hub", "tls-client"))


def test_mutual_tls_with_a_matching_pin(store: KeyStore, narsa: Agency, hub_context) -> None:
    session = pinned_session("narsa", {store.tls_pin("narsa")}, hub_context)
    for host in ("localhost", "127.0.0.1"):
        response = session.get(narsa.url(host), timeout=10)
        assert response.status_code == 200 and response.text == "hub"
    assert narsa.callers == ["hub", "hub"]


def test_pin_mismatch_stops_before_the_request_is_sent(store: KeyStore, narsa: Agency,
                                                        hub_context) -> None:
    session = pinned_session("narsa", {store.tls_pin("dgsn")}, hub_context)
    with pytest.raises(UntrustedCertificate, match="does not match its pin") as exc:
        session.get(narsa.url(), timeout=10)
    assert exc.value.details == {"reason": "pin_mismatch", "party": "narsa"}
    assert narsa.callers == []


def test_server_certificate_from_another_ca(other_store: KeyStore, trust: TrustStore,
                                            store: KeyStore, hub_context) -> None:
    with agency_server(other_store.tls_files("narsa", "tls-server"),
                       other_store.trust_store()) as impostor:
        session = pinned_session("narsa", {other_store.tls_pin("narsa")}, hub_context)
        with pytest.raises(UntrustedCertificate, match="failed verification") as exc:
            session.get(impostor.url(), timeout=10)
        assert exc.value.details["reason"] == "tls_verify"
        assert impostor.callers == []


def test_client_without_certificate_is_refused(store: KeyStore, narsa: Agency) -> None:
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cafile=str(store.layout.ca_cert))
    session = pinned_session("narsa", {store.tls_pin("narsa")}, anonymous)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        session.get(narsa.url(), timeout=10)
    assert narsa.callers == []


def test_client_certificate_from_another_ca_is_refused(store: KeyStore, other_store: KeyStore,
                                                       narsa: Agency, tmp_path: Path) -> None:
    foreign = other_store.tls_files("hub", "tls-client")
    context = client_context(replace(foreign, ca=store.layout.ca_cert, crl=store.layout.crl))
    session = pinned_session("narsa", {store.tls_pin("narsa")}, context)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        session.get(narsa.url(), timeout=10)
    assert narsa.callers == []


def test_revoked_client_certificate_is_refused_during_the_handshake(fresh_pki: Path) -> None:
    issue(fresh_pki, "hub", "tls-client", save=True)
    store = KeyStore.load(fresh_pki)
    trust = store.trust_store()
    with agency_server(store.tls_files("narsa", "tls-server"), trust) as narsa:
        session = pinned_session("narsa", {store.tls_pin("narsa")},
                                 client_context(store.tls_files("hub", "tls-client")))
        assert session.get(narsa.url(), timeout=10).text == "hub"
    revoke(fresh_pki, "hub", "tls-client")
    store = KeyStore.load(fresh_pki)
    with agency_server(store.tls_files("narsa", "tls-server"), store.trust_store()) as narsa:
        revoked = client_context(store.tls_files("hub", "tls-client"), check_crl=False)
        session = pinned_session("narsa", {store.tls_pin("narsa")}, revoked)
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            session.get(narsa.url(), timeout=10)
        assert narsa.callers == []


def test_unsafe_overrides_are_refused(store: KeyStore, narsa: Agency, hub_context) -> None:
    session = pinned_session("narsa", {store.tls_pin("narsa")}, hub_context)
    with pytest.raises(ConfigurationError, match="verify=False"):
        session.get(narsa.url(), verify=False, timeout=10)
    with pytest.raises(ConfigurationError, match="not cert="):
        session.get(narsa.url(), cert=str(store.tls_files("hub", "tls-client").cert), timeout=10)
    with pytest.raises(ConfigurationError, match="plain http"):
        session.get(f"http://127.0.0.1:{narsa.port}/", timeout=10)
    with pytest.raises(ConfigurationError, match="no TLS pins"):
        PinnedAdapter("narsa", [], hub_context)
    assert narsa.callers == []


def test_contexts_are_strict(store: KeyStore, tmp_path: Path) -> None:
    context = client_context(store.tls_files("hub", "tls-client"))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    server = server_context(store.tls_files("narsa", "tls-server"))
    assert server.verify_mode == ssl.CERT_REQUIRED
    files = store.tls_files("narsa", "tls-server")
    with pytest.raises(ConfigurationError, match="CRL .* is missing"):
        server_context(replace(files, crl=tmp_path / "absent.pem"))
    with pytest.raises(ConfigurationError, match="cannot load TLS certificate"):
        server_context(replace(files, key=store.tls_files("dgsn", "tls-server").key))


def test_party_from_peer(store: KeyStore, trust: TrustStore) -> None:
    from cryptography.hazmat.primitives import serialization
    der = store.certificate("justice", "tls-client").public_bytes(serialization.Encoding.DER)
    assert party_from_peer(der, trust) == "justice"
    with pytest.raises(UntrustedCertificate, match="no client certificate"):
        party_from_peer(None, trust)
    server_der = store.certificate("justice", "tls-server").public_bytes(serialization.Encoding.DER)
    with pytest.raises(UntrustedCertificate) as exc:
        party_from_peer(server_der, trust)  # a server certificate cannot authenticate a client
    assert exc.value.details["reason"] == "wrong_usage"
    trust.pin("justice", "bm90LXRoZS1waW4=", usage="tls-client")
    with pytest.raises(UntrustedCertificate, match="pinned"):
        party_from_peer(der, trust)
    with pytest.raises(UntrustedCertificate, match="presented no TLS certificate"):
        check_pin(b"", {"x"}, "narsa")
