"""``hub retention``: remove the personal data of closed cases whose retention is over."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from hub.cli.common import build_hub, emit_json


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
    from hub.retention import RetentionSweeper

    try:
        now = datetime.fromisoformat(now_text) if now_text else datetime.now(timezone.utc)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2029-03-01T00:00:00+00:00") from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    hub = build_hub()
    try:
        hub.setup()
        report = RetentionSweeper(hub).run(now, dry_run=dry_run)
    finally:
        hub.close()
    emit_json(report.as_dict())
