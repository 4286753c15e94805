"""``hub deadlines``: apply the service definitions' timers (lapses, tenth-day rule, reminders)."""
from __future__ import annotations

import threading

import click

from hub.cli.common import as_of, build_hub, emit_json, wait_for_signal


def register(main: click.Group) -> None:
    main.add_command(deadlines)


@click.group()
def deadlines() -> None:
    """Deadlines of cases (scheduled with APScheduler, jobs kept in the database)."""


@deadlines.command()
@click.option("--now", "now_text", help="Pretend it is this UTC time (ISO 8601), e.g. to check"
              " what a sweep would do on a date; default: now.")
def sweep(now_text: str | None) -> None:
    """Apply every deadline that has passed and send due reminders, once."""
    now = as_of(now_text)
    hub = build_hub()
    hub.setup()
    report = hub.deadline_sweeper().sweep(now)
    emit_json({"moved": report.moved, "reminded": report.reminded, "skipped": report.failed})


@deadlines.command()
@click.option("--interval", default=15.0, show_default=True, help="Minutes between sweeps.")
def run(interval: float) -> None:
    """Run the scheduler (deadline sweep, purge of unclaimed documents) until SIGTERM."""
    hub = build_hub()
    hub.setup()
    scheduler = hub.scheduler(interval_minutes=interval)
    scheduler.start()
    click.echo(f"scheduler running: {', '.join(scheduler.jobs())}", err=True)
    stop = threading.Event()
    try:
        wait_for_signal(stop)
    finally:
        scheduler.shutdown()
