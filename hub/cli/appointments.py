"""``hub appointments``: migrate the legacy appointment-booking platform's bookings."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from hub.cli.common import build_hub, emit_json


def register(main: click.Group) -> None:
    main.add_command(appointments)


@click.group()
def appointments() -> None:
    """Appointment slots and bookings."""


@appointments.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
def import_(csv_file: Path, dry_run: bool) -> None:
    """Import legacy bookings from CSV_FILE (columns: booking_id, post, service, date, time,
    last_name, first_name, email, phone, case_reference, status). Safe to run again: bookings
    already imported are left alone. Prints what was imported and every rejected row with its
    reasons; exits 1 when rows were rejected."""
    from hub.errors import HubError

    hub = build_hub()
    hub.setup()
    try:
        report = hub.appointment_book().import_legacy(csv_file.read_text("utf-8"),
                                                     dry_run=dry_run)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    emit_json({**report.as_json(), "dry_run": dry_run})
    if report.rejected:
        sys.exit(1)
