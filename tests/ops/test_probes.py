"""/healthz, /readyz (checks, time limits, cache, maintenance) and /metrics."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from prometheus_client.parser import text_string_to_metric_families

from hub.web.health import Readiness, check_certificates
from hub.ops import controls

from .conftest import licence, wait_for


def _samples(client):  # type: ignore[no-untyped-def]
    text = client.get("/metrics").data.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_healthz_answers_without_touching_dependencies(client, ops_hub):
    ops_hub.store.dispose()
    ops_hub.settings.keys_dir.joinpath("hub", "signing.key.pem").unlink()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "alive"}


def test_readyz_ready_when_every_check_passes(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert set(response.json["checks"]) == {"database", "broker", "keys", "certificates"}
    assert all(check["ok"] for check in response.json["checks"].values())


def test_readyz_503_names_the_failing_check(client, ops_hub):
    ops_hub.settings.keys_dir.joinpath("hub", "signing.key.pem").unlink()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not_ready"
    assert not response.json["checks"]["keys"]["ok"]
    assert "signing.key.pem" in response.json["checks"]["keys"]["detail"]
    assert response.json["checks"]["database"]["ok"]


def test_readyz_maintenance_switch_and_setting(client, ops_hub, hub_factory):
    controls.set_maintenance(ops_hub.store, True, actor="admin:test")
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json["status"] == "maintenance"
    controls.set_maintenance(ops_hub.store, False, actor="admin:test")
    assert client.get("/readyz").status_code == 200

    from hub.web.app import create_app

    other = hub_factory(env={"HUB_MAINTENANCE": "1"})
    other.setup()
    response = create_app(other).test_client().get("/readyz")
    assert response.status_code == 503 and response.json["status"] == "maintenance"


def test_readyz_checks_have_a_time_limit_and_the_verdict_is_cached(ops_hub):
    calls = []
    release = threading.Event()

    def hung():  # type: ignore[no-untyped-def]
        calls.append("hung")
        release.wait(5)
        return "late"

    readiness = Readiness(ops_hub.store, {"hung": hung, "fine": lambda: "ok"}, timeout=0.2,
                          ttl=60)
    try:
        verdict = readiness.verdict()
        assert verdict["status"] == "not_ready"
        assert verdict["checks"]["hung"] == {"ok": False, "detail": "no answer within 0.2s",
                                             "ms": 200.0}
        assert verdict["checks"]["fine"]["ok"]
        assert readiness.verdict() is verdict and calls == ["hung"]  # cached: not re-run
    finally:
        release.set()


def _certificate(tmp_path, days: float):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=30)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_certificate_expiry_fails_readiness(ops_hub):
    keys = ops_hub.settings.keys_dir
    (keys / "tls").mkdir()
    (keys / "tls" / "hub.crt").write_bytes(_certificate(keys, days=400))
    (keys / "tls" / "hub.key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    min_days = ops_hub.settings.certificate_min_days
    assert "first to expire: tls/hub.crt in" in check_certificates(keys, min_days)
    (keys / "agency.pem").write_bytes(_certificate(keys, days=2))
    try:
        check_certificates(keys, min_days)
    except RuntimeError as exc:
        assert "agency.pem expires in 2" in str(exc) or "agency.pem expires in 1" in str(exc)
    else:
        raise AssertionError("a certificate expiring in 2 days must fail readiness")


def test_metrics_count_attempts_by_agency_service_outcome(client, ops_hub, agency):
    agency.down.set()
    with ops_hub.run(concurrency=1):
        ops_hub.submit("driving_licence_authentication", licence(100001))
        wait_for(lambda: _samples(client).get(("hub_dead_letters", (
            ("queue", ops_hub.topology.agency_queue("narsa")), ("status", "parked")))) == 1,
            what="the dead letter counted")
        agency.down.clear()
        ops_hub.submit("driving_licence_authentication", licence(100011))
        wait_for(lambda: _samples(client).get(("hub_exchange_attempts_total", (
            ("agency", "narsa"), ("outcome", "succeeded"),
            ("service", "driving_licence_authentication")))) == 1, what="the success counted")
    samples = _samples(client)
    key = (("agency", "narsa"), ("service", "driving_licence_authentication"))

    def labelled(outcome):  # type: ignore[no-untyped-def]
        return tuple(sorted((*key, ("outcome", outcome))))

    assert samples[("hub_exchange_attempts_total", labelled("retried"))] == 1
    assert samples[("hub_exchange_attempts_total", labelled("dead_lettered"))] == 1
    assert samples[("hub_exchange_duration_seconds_count", labelled("succeeded"))] == 1
    assert samples[("hub_exchange_duration_seconds_bucket",
                    tuple(sorted((*labelled("succeeded"), ("le", "+Inf")))))] == 1
    assert samples[("hub_exchanges", (("agency", "narsa"), ("status", "answered")))] == 1
    assert samples[("hub_exchanges", (("agency", "narsa"), ("status", "dead_lettered")))] == 1
    queue = ops_hub.topology.agency_queue("narsa")
    assert samples[("hub_queue_messages", (("kind", "work"), ("queue", queue)))] == 0
    assert samples[("hub_queue_messages", (("kind", "dlq"), ("queue", queue + ".dlq")))] == 0
    assert samples[("hub_circuit_state", (("agency", "narsa"), ("state", "closed")))] == 1
    assert samples[("hub_component_paused", (("component", "connector.narsa"),))] == 0
    assert samples[("hub_metrics_source_up", (("source", "store"),))] == 1
    assert samples[("hub_metrics_source_up", (("source", "broker"),))] == 1
    assert samples[("hub_outbox_unsent", ())] == 0


def test_metrics_show_queue_depth_while_a_connector_is_paused(client, ops_hub):
    controls.pause(ops_hub.store, "connector.narsa", actor="admin:test")
    with ops_hub.run(concurrency=1):
        for serial in (100001, 100011, 100021):
            ops_hub.submit("driving_licence_authentication", licence(serial))
        queue = ops_hub.topology.agency_queue("narsa")
        wait_for(lambda: _samples(client).get(
            ("hub_queue_messages", (("kind", "work"), ("queue", queue)))) == 3, what="depth 3")
        # The worker's first heartbeat may come a moment after its first message waits.
        samples = wait_for(lambda: (s := _samples(client)).get(("hub_workers_alive", ())) == 1
                           and s, what="one worker alive")
        assert samples[("hub_component_paused", (("component", "connector.narsa"),))] == 1


def test_metrics_answer_with_the_broker_down(client, ops_hub, tmp_path):
    import os

    os.chmod(tmp_path, 0o700)
    broker_file = ops_hub.settings.broker_url.split("sqlite:///", 1)[1]
    os.remove(broker_file)
    os.makedirs(broker_file)  # the broker's file is now a directory: unreadable
    time.sleep(0.01)
    samples = _samples(client)
    assert samples[("hub_metrics_source_up", (("source", "broker"),))] == 0
    assert samples[("hub_metrics_source_up", (("source", "store"),))] == 1
