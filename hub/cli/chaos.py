"""``hub chaos``: exchanges through real worker processes while agencies fail, workers are
killed, connections cut, RabbitMQ and PostgreSQL restarted; then what was lost, from
independent sources. Exit status 0 only when nothing was lost or applied twice."""
from __future__ import annotations

import signal
import sys

import click

from hub.cli.common import emit_json, settings


def register(main: click.Group) -> None:
    main.add_command(chaos)


@click.command()
@click.option("--exchanges", "-n", type=int, default=10_000, show_default=True,
              help="How many agency exchanges to run.")
@click.option("--quick", is_flag=True, help="1,000 exchanges (the test suite's run).")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Worker processes (each runs every connector, a case worker, a recorder).")
@click.option("--amqp-url", help="RabbitMQ (default: HUB_BROKER_URL when amqp, else local).")
@click.option("--postgres-url", help="A PostgreSQL URL allowed to create databases"
              " (default: HUB_DATABASE_URL's server when PostgreSQL, else local).")
@click.option("--no-broker-restart", is_flag=True, help="Skip the RabbitMQ restart.")
@click.option("--no-database-restart", is_flag=True, help="Skip the PostgreSQL restart.")
@click.option("--broker-restart-command", help="Shell command restarting RabbitMQ.")
@click.option("--database-restart-command", help="Shell command restarting PostgreSQL.")
@click.option("--no-replay", is_flag=True, help="Leave dead letters parked at the end.")
@click.option("--keep", is_flag=True, help="Keep the run's database, queues and logs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def chaos(exchanges: int, quick: bool, workers: int, amqp_url: str | None,
          postgres_url: str | None, no_broker_restart: bool, no_database_restart: bool,
          broker_restart_command: str | None, database_restart_command: str | None,
          no_replay: bool, keep: bool, as_json: bool) -> None:
    """Run the chaos test against RabbitMQ and PostgreSQL and report what was lost."""
    from hub.chaos import ChaosOptions, run_chaos
    from hub.chaos import cluster
    from hub.chaos.run import DEFAULT_AMQP, DEFAULT_POSTGRES

    # SIGTERM (a CI timeout, an operator) ends the run through its clean-up: processes stopped,
    # database dropped, queues deleted.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    current = settings(quiet=True)
    if amqp_url is None:
        amqp_url = current.broker_url if current.broker_url.startswith("amqp") else DEFAULT_AMQP
    if postgres_url is None:
        postgres_url = (current.database_url.rpartition("/")[0] + "/postgres"
                        if current.database_url.startswith("postgres") else DEFAULT_POSTGRES)
    options = ChaosOptions(
        exchanges=1000 if quick else exchanges, workers=workers, amqp_url=amqp_url,
        postgres_url=postgres_url,
        broker_restart=None if no_broker_restart else (broker_restart_command
                                                      or cluster.BROKER_RESTART),
        database_restart=None if no_database_restart else (database_restart_command
                                                           or cluster.DATABASE_RESTART),
        replay=not no_replay, keep=keep, progress=sys.stderr)
    report = run_chaos(options)
    if as_json:
        emit_json(report)
    else:
        _print(report)
    sys.exit(0 if report["ok"] else 1)


def _print(report: dict) -> None:
    lines = [
        f"exchanges            {report['exchanges']} (expected {report['exchanges_expected']}),"
        f" {report['exchanges_per_s']}/s over {report['duration_s']} s",
        f"lost                 {report['lost']}",
        f"duplicate effects    {report['duplicate_effects']}  {report['duplicate_detail']}",
        f"dead letters         {report['dead_letters']} {report['dead_letter_reasons']}"
        f" (without reason: {report['dead_letters_without_reason']};"
        f" replayed at the end: {report['dead_letters_replayed_at_end']})",
        f"left in queues       {report['leftover_messages']}",
        f"audit intact         {report['audit_intact']}  ({report['audit_check']})",
        f"cases                {report['cases']}, not in their expected status:"
        f" {report['cases_not_in_expected_status']}",
        f"agency traffic       {report['agency_traffic']}",
        f"processes killed     {report['processes_killed']}",
        "events               " + "; ".join(f"{e['at_s']}s {e['event']}" for e in report["events"]),
        "verdict              " + ("OK" if report["ok"] else "FAILED"),
    ]
    click.echo("\n".join(lines))
