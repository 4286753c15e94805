from __future__ import annotations

import os
import stat

import pytest

from hub.broker.topology import QueueSpec, Topology, topic_matches
from hub.config import Settings
from hub.envelope import Envelope
from hub.errors import ConfigurationError, SignatureInvalid
from hub.seal import HmacSeal, load_or_create_key


@pytest.mark.parametrize("pattern, key, matches", [
    ("agency.narsa", "agency.narsa", True),
    ("agency.*", "agency.narsa", True),
    ("agency.*", "agency.narsa.extra", False),
    ("case.#", "case", True),
    ("case.#", "case.dla.reply", True),
    ("case.*.reply", "case.dla.reply", True),
    ("case.*.reply", "case.dla.event", False),
    ("#", "anything.at.all", True),
])
def test_topic_matching(pattern, key, matches):
    assert topic_matches(pattern, key) is matches


def test_hub_topology_names_queues_by_agency_and_delay():
    topology = Topology.for_hub("hub", {"narsa": (1.0, 2.0, 2.0)}, case_retry_delays=(0.5,))
    spec = topology.queue("hub.agency.narsa")
    assert spec.retry_queue(0) == "hub.agency.narsa.retry.1000ms"
    assert spec.dead_letter_queue == "hub.agency.narsa.dlq"
    names = topology.all_queue_names()
    assert names.count("hub.agency.narsa.retry.2000ms") == 1  # capped rungs share a queue
    assert topology.owner_of("hub.agency.narsa.retry.2000ms") is spec
    assert topology.owner_of("hub.cases.dlq").name == "hub.cases"


def test_settings_defaults_are_the_embedded_quick_start(tmp_path):
    settings = Settings.from_env({"HUB_DATA_DIR": str(tmp_path)})
    assert settings.broker_url == f"sqlite:///{tmp_path}/broker.db"
    assert settings.database_url == f"sqlite:///{tmp_path}/hub.db"
    assert settings.keys_dir == tmp_path / "keys"


def test_settings_read_agency_urls_and_mask_credentials(tmp_path):
    settings = Settings.from_env({"HUB_DATA_DIR": str(tmp_path),
                                  "HUB_AGENCY_NARSA_URL": "http://narsa.example:8443",
                                  "HUB_BROKER_URL": "amqp://user:secret@mq:5672/%2F"})
    assert settings.agency_urls == {"narsa": "http://narsa.example:8443"}
    assert "secret" not in settings.describe()["broker_url"]


@pytest.mark.parametrize("name, value", [("HUB_PREFETCH", "many"), ("HUB_PREFETCH", "0"),
                                         ("HUB_REQUIRE_SERVICES", "perhaps")])
def test_bad_settings_are_configuration_errors(tmp_path, name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({"HUB_DATA_DIR": str(tmp_path), name: value})


def envelope() -> Envelope:
    return Envelope.new(service="driving_licence_authentication", kind="request", sender="hub",
                        recipient="narsa", correlation_id="DLA-2026-7K3M9QX",
                        schema={"name": "narsa.verify_licence.request", "version": "1"},
                        payload={"holder": {"cnie": "AB123456"}})


def test_seal_detects_any_change_but_not_a_retry(tmp_path):
    seal = HmacSeal(load_or_create_key(tmp_path / "seal.key"))
    sealed = seal.seal(envelope())
    seal.check(sealed)
    seal.check(sealed.with_attempt(3))
    tampered = Envelope.from_dict({**sealed.to_dict(), "payload": {"holder": {"cnie": "ZZ999999"}}})
    with pytest.raises(SignatureInvalid, match="altered"):
        seal.check(tampered)
    with pytest.raises(SignatureInvalid, match="not sealed"):
        seal.check(envelope())
    other = HmacSeal(b"k" * 32)
    with pytest.raises(SignatureInvalid):
        other.check(sealed)


def test_seal_key_is_created_once_and_private(tmp_path):
    path = tmp_path / "keys" / "seal.key"
    first = load_or_create_key(path)
    assert load_or_create_key(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
