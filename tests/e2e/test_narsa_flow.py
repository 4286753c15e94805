"""The driving-licence flow against the real NARSA simulator over loopback HTTP.

Runs twice: on the embedded default (SQLite store and queue) and on RabbitMQ + PostgreSQL.
Covers the three answers, an outage that recovers through retries, and an outage that never
does: dead letter, then ``hub dlq replay`` after the agency is back delivers it exactly once.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from hub.cases.book import find_case
from hub.cli import main
from hub.delivery.deadletters import list_dead_letters
from hub.demo.scenarios import licence_request
from hub.testing.plugin import FAST_RETRY, wait_for

SERVICE = "driving_licence_authentication"


@pytest.fixture(params=["embedded", "rabbitmq+postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path) -> dict[str, str]:
    if request.param == "embedded":
        return {}
    return {"broker_url": request.getfixturevalue("rabbitmq_url"),
            "database_url": request.getfixturevalue("postgres_url")}


@pytest.fixture
def hub(hub_factory, narsa_simulator, deployment) -> Any:
    hub = hub_factory(**deployment, agency_overrides={
        "narsa": {"base_url": narsa_simulator.url, "retry": FAST_RETRY, "timeout": 2}})
    hub.setup()
    return hub


def status(hub: Any, reference: str) -> str:
    with hub.store.session() as session:
        return find_case(session, reference).status



@pytest.mark.parametrize("answer, final", [("authentic", "verified"),
                                           ("not_authentic", "rejected"),
                                           ("unknown", "more_information_requested")])
def test_each_answer_drives_the_case(hub, narsa_simulator, answer, final):
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, licence_request(answer)).case.reference
        wait_for(lambda: status(hub, reference) == final, what=final)
    [seen] = narsa_simulator.received()
    assert seen.xroad_client == hub.settings.node_id
    assert narsa_simulator.effect_count(seen.idempotency_key) == 1


def test_outage_that_recovers_is_retried_with_one_effect(hub, narsa_simulator):
    data = licence_request("authentic", serial=222222)
    narsa_simulator.inject("status", status=503, count=2, match=data["licence"]["number"])
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, data).case.reference
        wait_for(lambda: status(hub, reference) == "verified")
    requests = narsa_simulator.received()
    assert [r.status for r in requests] == [503, 503, 200]
    assert len({r.idempotency_key for r in requests}) == 1  # the same exchange, retried
    assert narsa_simulator.effect_count(requests[0].idempotency_key) == 1


def test_outage_that_never_recovers_is_parked_then_replayed_once(hub, narsa_simulator,
                                                                    monkeypatch, tmp_path):
    data = licence_request("authentic", serial=333333)
    narsa_simulator.inject("status", status=503, match=data["licence"]["number"])
    with hub.run(concurrency=1):
        reference = hub.submit(SERVICE, data).case.reference
        wait_for(lambda: list_dead_letters(hub.store), what="dead letter")
        assert status(hub, reference) == "verifying"
        assert len(narsa_simulator.received()) == FAST_RETRY["max_attempts"]

        narsa_simulator.clear_faults()  # NARSA is back
        for key, value in {"HUB_BROKER_URL": hub.settings.broker_url,
                           "HUB_DATABASE_URL": hub.settings.database_url,
                           "HUB_DATA_DIR": str(hub.settings.data_dir),
                           "HUB_BROKER_NAMESPACE": hub.settings.broker_namespace,
                           "HUB_AGENCY_NARSA_URL": narsa_simulator.url}.items():
            monkeypatch.setenv(key, value)
        runner = CliRunner()
        listed = runner.invoke(main, ["dlq", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        [parked] = json.loads(listed.output)
        assert parked["error_code"] == "agency.unavailable"
        assert parked["correlation_id"] == reference
        replayed = runner.invoke(main, ["dlq", "replay", str(parked["id"])])
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 of 1" in replayed.output
        wait_for(lambda: status(hub, reference) == "verified", what="verified after replay")
        again = runner.invoke(main, ["dlq", "replay", str(parked["id"])])
        assert "replayed 0 of 1" in again.output

    statuses = [r.status for r in narsa_simulator.received()]
    assert statuses == [503] * FAST_RETRY["max_attempts"] + [200]
    key = narsa_simulator.received()[-1].idempotency_key
    assert narsa_simulator.effect_count(key) == 1
