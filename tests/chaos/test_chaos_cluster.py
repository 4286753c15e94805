"""`hub chaos --cluster --quick` on three RabbitMQ nodes and a PostgreSQL primary with a
synchronous standby that the run starts itself: nodes and the primary are killed, nothing is
lost, nothing applied twice, and the hub never stalls for 30 s.

It starts its own servers on free ports beside the machine's (which it leaves alone), but loads
the machine for minutes: run it with the chaos tests (`make chaos`, ``pytest -m chaos -p
no:xdist``), never beside other tests.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from hub.chaos.nodes import missing_tools
from hub.testing.plugin import services_required

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

#: The run's own budget, below the test's timeout so that a stuck run still cleans up.
RUN_BUDGET_S = 720


def _require_tools() -> None:
    missing = missing_tools()
    if not missing:
        return
    message = (f"the cluster chaos run starts its own RabbitMQ nodes and PostgreSQL servers, and"
               f" this machine lacks {', '.join(missing)}")
    if services_required():
        pytest.fail(f"{message}, and HUB_REQUIRE_SERVICES=1 makes that a failure", pytrace=False)
    pytest.skip(f"{message}; set HUB_REQUIRE_SERVICES=1 to fail instead of skipping")


@pytest.mark.timeout(RUN_BUDGET_S + 180)
def test_quick_cluster_chaos_run_loses_nothing_and_fails_over() -> None:
    _require_tools()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from hub.cli import main; main()", "chaos", "--cluster",
         "--quick", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL)
    try:
        stdout, stderr = process.communicate(timeout=RUN_BUDGET_S)
    except subprocess.TimeoutExpired:
        # SIGTERM: the run stops its nodes and removes its folder before it exits.
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=150)
        pytest.fail(f"the cluster chaos run took more than {RUN_BUDGET_S}s:\n{stderr[-3000:]}")
    assert stdout, stderr[-3000:]
    report = json.loads(stdout)
    summary = {k: report[k] for k in (
        "exchanges", "lost", "duplicate_effects", "dead_letters", "dead_letters_without_reason",
        "audit_intact", "leftover_messages", "cases_missing", "broker_failovers",
        "database_failovers", "longest_stall_s", "disruption_error", "failures_without_load")}
    assert report["exchanges"] >= 3000, summary
    assert report["lost"] == 0, (summary, report["lost_samples"])
    assert report["duplicate_effects"] == 0, (summary, report["duplicate_detail"])
    assert report["dead_letters_without_reason"] == 0, report["dead_letter_samples"]
    assert report["audit_intact"], report["audit_problems"]
    assert report["audit_check"].startswith("hash chain verified"), report["audit_check"]
    assert report["leftover_messages"] == 0, report["leftover_queues"]
    assert report["cases_missing"] == 0 and report["cases_not_in_expected_status"] == 0, summary
    assert report["disruption_error"] is None, report["disruption_error"]
    # Every failure happened, each while exchanges were in flight.
    failures = [f["failure"] for f in report["failures"]]
    assert failures == ["sigkill", "kill_rabbitmq_node", "sigkill", "kill_queue_leader",
                        "sigkill", "fail_over_database"], failures
    assert report["failures_without_load"] == [], report["failures"]
    events = [e["event"] for e in report["events"]]
    assert events.count("rabbitmq_node_killed") == events.count("rabbitmq_node_back") == 2, events
    assert "database_primary_killed_standby_promoted" in events, events
    # The hub moved: processes reconnected to other nodes, the store to the promoted primary.
    assert report["broker_failovers"] >= 1, report["broker_failovers_by_process"]
    assert report["database_failovers"] >= 1, summary
    assert report["longest_stall_s"] < 30, (report["longest_stall_s"], report["failures"])
    # The agencies really misbehaved.
    assert report["agency_traffic"]["faults"].get("status", 0) > 0
    assert report["agency_traffic"]["faults"].get("timeout", 0) > 0
    assert report["ok"] is True and process.returncode == 0, summary
    assert "kept" not in report  # nothing left behind
