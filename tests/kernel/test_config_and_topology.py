from __future__ import annotations

import pytest

from hub.delivery.broker.topology import Topology, topic_matches
from hub.config import Settings
from hub.errors import ConfigurationError


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
                                         ("HUB_CONSUMER_BATCH", "0"),
                                         ("HUB_MAINTENANCE", "perhaps")])
def test_bad_settings_are_configuration_errors(tmp_path, name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({"HUB_DATA_DIR": str(tmp_path), name: value})



def test_security_settings_have_safe_defaults_and_read_agency_pins(tmp_path):
    defaults = Settings.from_env({"HUB_DATA_DIR": str(tmp_path)})
    assert (defaults.signature_algorithm, defaults.key_algorithm) == ("ecdsa-p256", "ec")
    assert (defaults.replay_window, defaults.token_ttl) == (300.0, 900)
    assert not defaults.uses_agency_tls("narsa")
    settings = Settings.from_env({
        "HUB_DATA_DIR": str(tmp_path), "HUB_SIGNATURE_ALGORITHM": "RSA-SHA256",
        "HUB_AGENCY_NARSA_TLS_PIN": "pinA=, pinB=", "HUB_AGENCY_DGSN_SIGNING_PIN": "pinC=",
        "HUB_AGENCY_DGSN_TLS": "1", "HUB_AGENCY_NARSA_URL": "https://narsa.example",
        "HUB_RETENTION_REPATRIATION_OF_REMAINS_DAYS": "30", "HUB_RETENTION_DAYS": "400"})
    assert settings.key_algorithm == "rsa"
    assert settings.agency_tls_pins == {"narsa": frozenset({"pinA=", "pinB="})}
    assert settings.agency_signing_pins == {"dgsn": frozenset({"pinC="})}
    assert settings.uses_agency_tls("dgsn") and not settings.uses_agency_tls("narsa")
    assert settings.agency_urls == {"narsa": "https://narsa.example"}
    assert settings.retention_for("repatriation_of_remains") == 30
    assert settings.retention_for("some_future_service") == 400
    assert Settings.from_env({"HUB_DATA_DIR": str(tmp_path),
                              "HUB_AGENCY_TLS": "yes"}).uses_agency_tls("health")


@pytest.mark.parametrize("name, value", [("HUB_SIGNATURE_ALGORITHM", "hmac-sha256"),
                                         ("HUB_TOKEN_TTL", "86400"), ("HUB_REPLAY_WINDOW", "0")])
def test_bad_security_settings_are_refused(tmp_path, name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({"HUB_DATA_DIR": str(tmp_path), name: value})
