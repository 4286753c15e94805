"""Keys in the runtime: `hub keys init`, loading once, the JWS seal, clear refusals."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.config import Settings
from hub.envelope import Envelope
from hub.errors import ConfigurationError, SignatureInvalid, UntrustedCertificate
from hub.keyset import HubKeys, init_keys
from hub.evidence.seal import JwsSeal
from security.fieldcrypt import DATA_KEYS_FILE
from security.keys import Signer
from security.pki import issue


def envelope() -> Envelope:
    return Envelope.new(service="driving_licence_authentication", kind="request", sender="hub",
                        recipient="narsa", correlation_id="DLA-2026-7K3M9QX",
                        schema={"name": "narsa.verify_licence.request", "version": "1"},
                        payload={"holder": {"cnie": "AB123456"}})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"HUB_DATA_DIR": str(tmp_path / "data"),
                              "HUB_KEYS_DIR": str(tmp_path / "keys")})


def test_keys_init_makes_everything_private_and_is_idempotent(settings):
    runner = CliRunner()
    env = {"HUB_DATA_DIR": str(settings.data_dir), "HUB_KEYS_DIR": str(settings.keys_dir)}
    first = runner.invoke(main, ["keys", "init"], env=env)
    assert first.exit_code == 0, first.output
    ring = (settings.keys_dir / DATA_KEYS_FILE).read_bytes()
    hub_key = (settings.keys_dir / "hub" / "signing.key.pem").read_bytes()
    again = runner.invoke(main, ["keys", "init"], env=env)
    assert again.exit_code == 0
    assert (settings.keys_dir / DATA_KEYS_FILE).read_bytes() == ring
    assert (settings.keys_dir / "hub" / "signing.key.pem").read_bytes() == hub_key
    assert stat.S_IMODE(os.stat(settings.keys_dir).st_mode) == 0o700
    for name in (DATA_KEYS_FILE, "blind-index.key", "hub/signing.key.pem", "ca.key.pem"):
        assert stat.S_IMODE(os.stat(settings.keys_dir / name).st_mode) == 0o600, name
    # --force replaces the PKI but keeps the data keys: what is stored stays readable.
    forced = runner.invoke(main, ["keys", "init", "--force"], env=env)
    assert forced.exit_code == 0
    assert (settings.keys_dir / "hub" / "signing.key.pem").read_bytes() != hub_key
    assert (settings.keys_dir / DATA_KEYS_FILE).read_bytes() == ring
    status = runner.invoke(main, ["keys", "status"], env=env)
    assert "hub        signing     valid" in status.output


def test_a_hub_without_keys_refuses_to_start_naming_the_command(settings):
    from hub.runtime import Hub

    with pytest.raises(ConfigurationError, match="hub keys init"):
        Hub(settings)
    result = CliRunner().invoke(main, ["dlq", "list"], env={
        "HUB_DATA_DIR": str(settings.data_dir), "HUB_KEYS_DIR": str(settings.keys_dir)})
    assert result.exit_code != 0 and "hub keys init" in result.output


def test_keys_of_the_other_algorithm_are_refused(settings):
    init_keys(settings.keys_dir, algorithm="ec")
    rsa = Settings.from_env({"HUB_DATA_DIR": str(settings.data_dir),
                             "HUB_KEYS_DIR": str(settings.keys_dir),
                             "HUB_SIGNATURE_ALGORITHM": "rsa-sha256"})
    with pytest.raises(ConfigurationError, match="--algorithm rsa"):
        HubKeys.load(rsa)


def test_a_revoked_hub_certificate_stops_the_hub_at_start(settings):
    init_keys(settings.keys_dir)
    HubKeys.load(settings)
    CliRunner().invoke(main, ["keys", "revoke", "hub", "--purpose", "signing"], env={
        "HUB_DATA_DIR": str(settings.data_dir), "HUB_KEYS_DIR": str(settings.keys_dir)})
    with pytest.raises(UntrustedCertificate, match="revoked"):
        HubKeys.load(settings)


def test_seal_detects_any_change_but_not_a_retry(settings):
    init_keys(settings.keys_dir)
    keys = HubKeys.load(settings)
    seal = JwsSeal(keys.signer, keys.trust)
    sealed = seal.seal(envelope())
    seal.check(sealed)
    seal.check(sealed.with_attempt(3))
    tampered = Envelope.from_dict({**sealed.to_dict(), "payload": {"holder": {"cnie": "ZZ999999"}}})
    with pytest.raises(SignatureInvalid, match="does not verify"):
        seal.check(tampered)
    with pytest.raises(SignatureInvalid, match="not sealed"):
        seal.check(envelope())
    # A valid seal lifted onto another envelope covers the wrong bytes.
    other = seal.seal(envelope())
    with pytest.raises(SignatureInvalid):
        seal.check(other.with_signature(sealed.signature))


def test_seal_made_with_another_key_is_refused(settings):
    init_keys(settings.keys_dir)
    keys = HubKeys.load(settings)
    # Same CA, same party name, but not the hub's current certificate: not accepted for the seal.
    stray = issue(settings.keys_dir, "hub")
    forged = JwsSeal(Signer("hub", stray.key, stray.cert), keys.trust).seal(envelope())
    with pytest.raises(UntrustedCertificate, match="not a known certificate"):
        JwsSeal(keys.signer, keys.trust).check(forged)



def test_keys_init_covers_every_packaged_agency_and_add_completes_an_installation(settings):
    from connectors.registry import packaged_agencies
    from security.pki import PkiLayout

    runner = CliRunner()
    env = {"HUB_DATA_DIR": str(settings.data_dir), "HUB_KEYS_DIR": str(settings.keys_dir)}
    assert runner.invoke(main, ["keys", "add", "narsa"], env=env).exit_code != 0  # no keys yet
    # An installation made before some agency was packaged: its PKI lacks that agency.
    init_keys(settings.keys_dir, parties=["hub", "narsa"])
    ca = (settings.keys_dir / "ca.cert.pem").read_bytes()
    added = runner.invoke(main, ["keys", "add", "dgsn"], env=env)
    assert added.exit_code == 0, added.output
    assert (settings.keys_dir / "dgsn" / "signing.cert.pem").is_file()
    assert (settings.keys_dir / "ca.cert.pem").read_bytes() == ca, "the same CA issued it"
    from security.keys import KeyStore

    HubKeys.load(settings).trust.verify_certificate(
        "dgsn", KeyStore.load(settings.keys_dir, own=["dgsn"]).signer("dgsn").cert)
    unknown = runner.invoke(main, ["keys", "add", "atlantis"], env=env)
    assert unknown.exit_code != 0 and "no packaged agency 'atlantis'" in unknown.output
    # `hub keys init` on it completes every packaged agency, keeping what exists.
    assert runner.invoke(main, ["keys", "init"], env=env).exit_code == 0
    assert set(PkiLayout.read(settings.keys_dir).parties) == {"hub", *packaged_agencies()}
    assert (settings.keys_dir / "ca.cert.pem").read_bytes() == ca
