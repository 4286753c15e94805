"""``hub retention``: remove the personal data of closed cases whose retention is over."""
from __future__ import annotations


import click

from hub.cli.common import as_of, build_hub, emit_json


def register(main: click.Group) -> None:
    main.add_command(retention)


@click.group()
def retention() -> None:
    """Retention of personal data (periods per service: hub/data/retention.yaml)."""


@retention.command()
@click.option("--dry-run", is_flag=True, help="List the cases that would be anonymized; change "
              "nothing.")
@click.option("--now", "now_text", help="Pretend it is this UTC time (ISO 8601); default: now.")
def run(dry_run: bool, now_text: str | None) -> None:
    """Anonymize closed cases past their retention (audited), purge old messages, once."""
    now = as_of(now_text)
    hub = build_hub()
    try:
        hub.setup()
        report = hub.retention_sweeper().run(now, dry_run=dry_run)
    finally:
        hub.close()
    emit_json(report.as_dict())
