"""``hub chaos``: exchanges through real worker processes while agencies fail, workers are
killed, connections cut, RabbitMQ and PostgreSQL restarted; then what was lost, from
independent sources. Exit status 0 only when nothing was lost or applied twice.

``hub chaos --cluster``: the same on three RabbitMQ nodes and a PostgreSQL primary with a
synchronous standby that the run starts on this machine, losing nodes and the primary
(`hub.chaos.failover`)."""
from __future__ import annotations

import signal
import sys

import click

from hub.cli.common import emit_json, settings


#: Exchanges of ``hub chaos --cluster --quick`` (CI): enough load for every failure to land on a
#: busy hub, within the CI budget.
QUICK_CLUSTER = 3000


def register(main: click.Group) -> None:
    main.add_command(chaos)


@click.command()
@click.option("--exchanges", "-n", type=int, default=10_000, show_default=True,
              help="How many agency exchanges to run.")
@click.option("--quick", is_flag=True, help="1,000 exchanges (the test suite's run); with"
              f" --cluster {QUICK_CLUSTER:,}.")
@click.option("--cluster", is_flag=True, help="Start three RabbitMQ nodes and a PostgreSQL"
              " primary with a synchronous standby on this machine (beside its own servers, which"
              " it leaves alone), and kill nodes and the primary instead of restarting services.")
@click.option("--workers", type=int, help="Worker processes (each runs every connector, a case"
              " worker, a recorder). Default: 2, with --cluster 3.")
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
def chaos(exchanges: int, quick: bool, cluster: bool, workers: int | None, amqp_url: str | None,
          postgres_url: str | None, no_broker_restart: bool, no_database_restart: bool,
          broker_restart_command: str | None, database_restart_command: str | None,
          no_replay: bool, keep: bool, as_json: bool) -> None:
    """Run the chaos test against RabbitMQ and PostgreSQL and report what was lost."""
    from hub.chaos import ChaosOptions, run_chaos
    from hub.chaos import cluster as services
    from hub.chaos.run import DEFAULT_AMQP, DEFAULT_POSTGRES

    # SIGTERM (a CI timeout, an operator) ends the run through its clean-up: processes stopped,
    # database dropped, queues deleted (with --cluster: every node stopped, its folder removed).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    current = settings(quiet=True)
    if cluster:
        _cluster(exchanges=QUICK_CLUSTER if quick else exchanges, workers=workers or 3,
                 replay=not no_replay, keep=keep, as_json=as_json,
                 ignored=[name for name, value in (
                     ("--amqp-url", amqp_url), ("--postgres-url", postgres_url),
                     ("--no-broker-restart", no_broker_restart),
                     ("--no-database-restart", no_database_restart),
                     ("--broker-restart-command", broker_restart_command),
                     ("--database-restart-command", database_restart_command)) if value])
        return
    workers = workers or 2
    if amqp_url is None:
        amqp_url = current.broker_url if current.broker_url.startswith("amqp") else DEFAULT_AMQP
    if postgres_url is None:
        postgres_url = (current.database_url.rpartition("/")[0] + "/postgres"
                        if current.database_url.startswith("postgres") else DEFAULT_POSTGRES)
    options = ChaosOptions(
        exchanges=1000 if quick else exchanges, workers=workers, amqp_url=amqp_url,
        postgres_url=postgres_url,
        broker_restart=None if no_broker_restart else (broker_restart_command
                                                      or services.BROKER_RESTART),
        database_restart=None if no_database_restart else (database_restart_command
                                                           or services.DATABASE_RESTART),
        replay=not no_replay, keep=keep, progress=sys.stderr)
    report = run_chaos(options)
    if as_json:
        emit_json(report)
    else:
        _print(report)
    sys.exit(0 if report["ok"] else 1)


def _cluster(*, exchanges: int, workers: int, replay: bool, keep: bool, as_json: bool,
             ignored: list[str]) -> None:
    from hub.chaos.failover import ClusterOptions, run_cluster_chaos
    from hub.chaos.nodes import NodeError

    if ignored:
        raise click.UsageError(f"{', '.join(ignored)}: not with --cluster (the run starts its own"
                               " RabbitMQ nodes and PostgreSQL servers)")
    # Ctrl-C ends the run through its clean-up too, even when a script started it in the
    # background (where SIGINT is ignored unless asked for): servers must not outlive the run.
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(128 + signum))
    try:
        report = run_cluster_chaos(ClusterOptions(exchanges=exchanges, workers=workers,
                                                  replay=replay, keep=keep, progress=sys.stderr))
    except NodeError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json(report)
    else:
        _print(report)
        _print_cluster(report)
    sys.exit(0 if report["ok"] else 1)


def _print_cluster(report: dict) -> None:
    lines = [
        f"broker failovers     {report['broker_failovers']}"
        f" {report['broker_failovers_by_process']}",
        f"database failovers   {report['database_failovers']}",
        f"redriven             {report['redriven']} (retried, then stranded in the broker)",
        f"longest stall        {report['longest_stall_s']} s (at {report['longest_stall_at_s']} s;"
        f" limit {report['stall_limit_s']} s)",
        "exchanges/s around each failure (before / during / after):",
        *(f"  {f['at_s']:7.1f}s {f['failure']:20} lasted {f['lasted_s']:5.1f} s"
          f"  {f['before_per_s']} / {f['during_per_s']} / {f['after_per_s']}"
          for f in report["failures"]),
    ]
    if report.get("disruption_error"):
        lines.append(f"disruption error     {report['disruption_error']}")
    click.echo("\n".join(lines))


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
