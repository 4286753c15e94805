"""``hub audit``: the tamper-evident audit trail (docs/security.md, "Audit chain").

    hub audit seal                          chain audit records not chained yet
    hub audit checkpoint                    seal, then sign the chain's head (a scheduled job)
    hub audit verify [--from N] [--to M]    prove the chain, or say where it breaks (exit 1)
    hub audit export --case REF [-o FILE]   a signed bundle an agency verifies offline
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hub.cli.common import emit_json, settings
from hub.errors import HubError


def register(main: click.Group) -> None:
    main.add_command(audit)


@click.group()
def audit() -> None:
    """Audit chain: seal, checkpoint, verify, export."""


def _open() -> tuple[Any, Any]:
    from hub.keyset import HubKeys
    from hub.store import Store

    current = settings(quiet=True)
    try:
        keys = HubKeys.load(current)
        store = Store.from_url(current.database_url)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    return store, keys


@audit.command()
def seal() -> None:
    """Chain the audit records written since the last pass."""
    from hub.evidence.audit.chain import chain_pending

    store, _ = _open()
    try:
        click.echo(f"chained {chain_pending(store)} records")
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.dispose()


@audit.command()
def checkpoint() -> None:
    """Seal pending records and sign the chain's head (run it every few minutes)."""
    from hub.evidence.audit.chain import make_checkpoint

    store, keys = _open()
    try:
        made = make_checkpoint(store, keys.signer)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.dispose()
    if made is None:
        click.echo("nothing new since the last checkpoint")
    else:
        click.echo(f"checkpoint at position {made.position}: {made.hash}")


@audit.command()
@click.option("--from", "start", type=click.IntRange(min=1),
              help="First position to prove (starts from the last good checkpoint before it).")
@click.option("--to", "end", type=click.IntRange(min=1), help="Last position to prove.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(start: int | None, end: int | None, as_json: bool) -> None:
    """Prove the audit chain intact; exit 1 and say where it breaks otherwise."""
    from hub.evidence.audit.verify import verify_chain

    store, keys = _open()
    try:
        report = verify_chain(store, keys.trust, start=start, end=end)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.dispose()
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(f"positions {report.anchor + 1}..{report.end} "
                   f"(anchored at {'checkpoint ' + str(report.anchor) if report.anchor else 'the start'}): "
                   f"{report.checked} records, {report.checkpoints_verified} checkpoints verified, "
                   f"last good checkpoint {report.last_good_checkpoint or '-'}, "
                   f"{report.unsealed} not chained yet")
        for problem in report.problems:
            click.echo(f"BROKEN: {problem.describe()}")
        click.echo("intact" if report.intact else "the audit chain is BROKEN")
    if not report.intact:
        sys.exit(1)


@audit.command()
@click.option("--case", "reference", required=True, help="The case reference.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the bundle here (default: standard output).")
def export(reference: str, output: Path | None) -> None:
    """A signed bundle of the case's audit trail; verify it with docs/verify-audit-bundle.py."""
    from hub.evidence.audit.export import export_case

    store, keys = _open()
    try:
        bundle = export_case(store, keys, reference)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.dispose()
    text = json.dumps(bundle, indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"{len(bundle['payload']['records'])} records of {reference} -> {output}",
                   err=True)
