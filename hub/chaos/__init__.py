"""`hub chaos`: N exchanges through real worker processes while things break, then a count of
what was lost, from sources that do not trust each other.

What breaks (each once, at fixed points of the run's progress so a run of any size sees all):

- the agencies misbehave all along: 10% answer HTTP 5xx, 5% answer after the connector's
  timeout (the agency *did* the work; only the answer is lost, so a retry tests idempotency),
  1% answer with a bad signature where the agency signs its answers;
- a connector worker, the relay and another connector worker are killed with SIGKILL (three
  kills; each is restarted, as a supervisor would);
- every connection to RabbitMQ is cut (a TCP proxy sits between the workers and the broker);
- RabbitMQ is restarted (``rabbitmqctl stop_app`` / ``start_app``);
- PostgreSQL is restarted (``pg_ctlcluster ... restart``).

What is counted at the end, each from its own source:

- the simulators' request logs and effect counters (what the agencies did),
- the store (cases, exchanges, dead letters), against the run's own ledger of submissions,
- the queues (nothing may be left in a work, retry or dead-letter queue),
- the audit trail (`hub.chaos.verify.audit_check`).

    report = run_chaos(ChaosOptions(exchanges=1000))
    assert report["lost"] == 0 and report["duplicate_effects"] == 0

The run creates its own database and broker namespace and removes them afterwards. It restarts
the machine's RabbitMQ and PostgreSQL: run it alone (``make chaos``), never beside other tests.
"""
from __future__ import annotations

from hub.chaos.run import ChaosOptions, run_chaos

__all__ = ["ChaosOptions", "run_chaos"]
