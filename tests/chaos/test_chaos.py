"""`hub chaos --quick` on RabbitMQ and PostgreSQL: nothing lost, nothing applied twice.

It kills worker processes, cuts the broker connections and restarts RabbitMQ and PostgreSQL:
run it alone (`make chaos`, i.e. ``pytest -m chaos -p no:xdist``), never beside other tests.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from hub.testing.plugin import amqp_url, postgres_admin_url

pytestmark = [pytest.mark.chaos, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_quick_chaos_run_loses_nothing(rabbitmq_url, postgres_url):
    if not (shutil.which("rabbitmqctl") and shutil.which("pg_ctlcluster")):
        pytest.skip("the chaos run restarts RabbitMQ and PostgreSQL with rabbitmqctl and"
                    " pg_ctlcluster, which this machine does not have")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    result = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", "chaos", "--quick", "--json",
         "--amqp-url", amqp_url(), "--postgres-url", postgres_admin_url()],
        capture_output=True, text=True, timeout=840, env=env, stdin=subprocess.DEVNULL)
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    summary = {k: report[k] for k in ("exchanges", "lost", "duplicate_effects", "dead_letters",
                                      "dead_letters_without_reason", "audit_intact",
                                      "leftover_messages", "cases_missing")}
    assert report["exchanges"] >= 1000, summary
    assert report["lost"] == 0, (summary, report["lost_samples"])
    assert report["duplicate_effects"] == 0, (summary, report["duplicate_detail"])
    assert report["dead_letters_without_reason"] == 0, report["dead_letter_samples"]
    assert report["audit_intact"], report["audit_problems"]
    assert report["audit_check"].startswith("hash chain verified"), report["audit_check"]
    assert report["leftover_messages"] == 0, report["leftover_queues"]
    assert report["cases_missing"] == 0 and report["cases_not_in_expected_status"] == 0
    assert report["processes_killed"] == 3
    events = [e["event"] for e in report["events"]]
    for expected in ("connections_cut", "broker_restarted", "database_restarted"):
        assert expected in events, events
    # The agencies really misbehaved, and the hub really retried.
    assert report["agency_traffic"]["faults"].get("status", 0) > 0
    assert report["agency_traffic"]["faults"].get("timeout", 0) > 0
    assert report["agency_traffic"]["faults"].get("bad_signature", 0) > 0  # agencies sign now
    assert report["agency_traffic"]["requests"] > report["exchanges"]
    assert result.returncode == 0, summary
