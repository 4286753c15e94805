"""security.keys: load once, hand out signers and trust, fail clearly when keys are missing."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.errors import ConfigurationError
from security.keys import KeyStore, Signer
from security.pki import PkiLayout, issue
from security.trust import cert_thumbprint, spki_pin


def test_load_gives_signers_only_for_own_parties(pki: Path) -> None:
    store = KeyStore.load(pki)  # default: the hub only
    signer = store.signer("hub")
    assert signer.party == "hub" and signer.key_type == "ec"
    assert signer.thumbprint == cert_thumbprint(signer.cert)
    assert b"BEGIN CERTIFICATE" in signer.cert_pem
    with pytest.raises(ConfigurationError, match="private signing key of 'narsa' is not loaded"):
        store.signer("narsa")
    # ...but every party's certificates are known.
    assert store.certificate("narsa").subject == store.certificate("narsa", "signing").subject
    assert set(store.parties) == {"hub", "interior", "dgsn", "health", "narsa", "justice"}


def test_missing_directory_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="hub keys init"):
        KeyStore.load(tmp_path / "nowhere")


def test_missing_ca_or_party_is_a_configuration_error(fresh_pki: Path) -> None:
    with pytest.raises(ConfigurationError, match="no signing certificate for justice"):
        KeyStore.load(fresh_pki, own=["justice"])
    PkiLayout.read(fresh_pki).ca_cert.unlink()
    with pytest.raises(ConfigurationError, match="missing certificate .*ca.cert.pem.*keys init"):
        KeyStore.load(fresh_pki)


def test_private_key_readable_by_others_is_refused(fresh_pki: Path) -> None:
    key = PkiLayout.read(fresh_pki).key_path("hub", "signing")
    os.chmod(key, 0o644)
    with pytest.raises(ConfigurationError, match="readable by other users"):
        KeyStore.load(fresh_pki)


def test_corrupt_files_are_configuration_errors(fresh_pki: Path) -> None:
    layout = PkiLayout.read(fresh_pki)
    layout.key_path("hub", "signing").write_bytes(b"not a key")
    with pytest.raises(ConfigurationError, match="not an unencrypted PEM private key"):
        KeyStore.load(fresh_pki)
    layout.cert_path("narsa", "signing").write_bytes(b"garbage")
    with pytest.raises(ConfigurationError, match="not a PEM certificate"):
        KeyStore.load(fresh_pki, own=[])


def test_signer_refuses_a_key_that_does_not_match_its_certificate(fresh_pki: Path) -> None:
    other = issue(fresh_pki, "hub")
    store = KeyStore.load(fresh_pki)
    with pytest.raises(ConfigurationError, match="do not match"):
        Signer("hub", other.key, store.certificate("hub"))


def test_tls_files_and_pins(store: KeyStore) -> None:
    files = store.tls_files("narsa", "tls-server")
    assert files.cert.name == "tls-server.cert.pem" and files.key.name == "tls-server.key.pem"
    assert files.ca == store.layout.ca_cert and files.crl == store.layout.crl
    assert store.tls_pin("narsa") == spki_pin(store.certificate("narsa", "tls-server"))
    assert store.tls_pin("narsa") != store.tls_pin("narsa", "tls-client")


def test_trust_store_knows_every_party_and_our_ca(store: KeyStore) -> None:
    trust = store.trust_store(pins={"narsa": ["pin"]}, tls_pins={"dgsn": ["tlspin"]})
    assert trust.ca == store.ca and trust.crl is not None
    for party in store.parties:
        assert trust.certificate_for(party, cert_thumbprint(store.certificate(party))) is not None
    assert trust.pins_for("narsa") == {"pin"}
    assert trust.pins_for("dgsn", "tls-server") == {"tlspin"}
    assert trust.pins_for("dgsn") == frozenset()
