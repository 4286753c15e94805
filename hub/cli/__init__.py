"""The ``hub`` command. Each group of subcommands lives in its own module of this package.

    hub demo            end-to-end demo on the embedded default
    hub serve           the web front (intake, inbound, admin)
    hub worker          connector workers, case worker and dead-letter recorder
    hub relay           the outbox relay
    hub simulators      the agency simulators
    hub dlq ...         list, show, replay dead letters
    hub db upgrade      apply database migrations
    hub deadlines ...   apply deadlines once (sweep) or run the scheduler (run)
    hub appointments import FILE   migrate the legacy platform's bookings
    hub staff token     an access token for the back-office
    hub connector new   scaffold a new agency connector (--soap or --rest)
    hub keys ...        create, inspect, rotate and revoke keys
    hub audit ...       seal, checkpoint, verify and export the audit chain
    hub retention run   anonymize closed cases past their retention (--dry-run to list them)
"""
from __future__ import annotations

import importlib

import click

#: Modules that register commands on `main`; each defines ``register(main)``.
COMMAND_MODULES = (
    "hub.cli.run",
    "hub.cli.dlq",
    "hub.cli.db",
    "hub.cli.chaos",
    "hub.cli.deadlines",
    "hub.cli.appointments",
    "hub.cli.staff",
    "hub.cli.connector",
    "hub.cli.keys",
    "hub.cli.audit",
    "hub.cli.retention",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="econsulat-hub", prog_name="hub")
def main() -> None:
    """econsulat-hub: the interagency data-exchange hub of eConsulat."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main)
