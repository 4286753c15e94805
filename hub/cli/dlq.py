"""``hub dlq``: list, show, replay and discard dead letters."""
from __future__ import annotations

import sys

import click

from hub.cli.common import build_hub, emit_json


def register(main: click.Group) -> None:
    main.add_command(dlq)


@click.group()
def dlq() -> None:
    """Dead letters: messages parked with their reason."""


def _hub_with_drain():  # type: ignore[no-untyped-def]
    hub = build_hub()
    hub.setup()
    # Record whatever the broker holds that the recorder has not stored yet.
    hub.recorder().drain()
    return hub


@dlq.command("list")
@click.option("--status", default="parked", show_default=True,
              type=click.Choice(["parked", "replayed", "discarded", "all"]))
@click.option("--queue", help="Only this work queue (e.g. hub.agency.narsa).")
@click.option("--code", "error_code", help="Only this error code (e.g. agency.unavailable).")
@click.option("--case", "correlation_id", help="Only this case reference.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_(status: str, queue: str | None, error_code: str | None, correlation_id: str | None,
          limit: int, as_json: bool) -> None:
    """List dead letters (newest last)."""
    from hub.delivery.deadletters import list_dead_letters

    hub = _hub_with_drain()
    rows = list_dead_letters(hub.store, status=None if status == "all" else status, queue=queue,
                             error_code=error_code, correlation_id=correlation_id, limit=limit)
    if as_json:
        emit_json([r.__dict__ for r in rows])
        return
    if not rows:
        click.echo("no dead letters")
        return
    for r in rows:
        click.echo(f"{r.id:>6}  {r.status:9} {r.queue:28} {r.error_code:22} {r.correlation_id or '-':18}"
                   f" attempts={r.attempts}  {r.reason[:80]}")


@dlq.command()
@click.argument("dead_letter_id", type=int)
@click.option("--body", is_flag=True, help="Also print the parked message (may hold personal data;"
              " the access is audited).")
def show(dead_letter_id: int, body: bool) -> None:
    """Show one dead letter: reason, component, headers."""
    from hub.evidence.audit.log import AuditRecord
    from hub.delivery.deadletters import DeadLetterView, get_dead_letter, plain_body

    hub = _hub_with_drain()
    try:
        row = get_dead_letter(hub.store, dead_letter_id)
    except Exception as exc:  # noqa: BLE001 - UnknownRoute: print it plainly
        raise click.ClickException(str(exc)) from None
    view = DeadLetterView.of(row).__dict__
    view["headers"] = row.headers
    if body:
        view["body"] = plain_body(hub.store, row).decode("utf-8", "replace")
        with hub.store.transaction() as session:
            hub.audit.append(session, AuditRecord(
                action="viewed", actor="operator:cli", component="dlq",
                message_id=row.message_id, correlation_id=row.correlation_id,
                details={"dead_letter": row.id, "view": "body"}))
    emit_json(view)


@dlq.command()
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every parked dead letter"
              " (narrow it with --queue/--code).")
@click.option("--queue", help="With --all: only this work queue.")
@click.option("--code", "error_code", help="With --all: only this error code.")
def replay(ids: tuple[int, ...], replay_all: bool, queue: str | None,
           error_code: str | None) -> None:
    """Send dead letters back to their work queue (delivered once more, applied at most once)."""
    from hub.delivery.deadletters import list_dead_letters, replay as do_replay

    if not ids and not replay_all:
        raise click.UsageError("name dead-letter ids, or use --all")
    hub = _hub_with_drain()
    if replay_all:
        ids = tuple(r.id for r in list_dead_letters(hub.store, queue=queue,
                                                    error_code=error_code, limit=1_000_000))
    with click.progressbar(length=len(ids), label="replaying", file=sys.stderr
                           ) as bar:
        done = do_replay(hub.store, hub.audit, ids, actor="operator:cli",
                         progress=lambda n: bar.update(1))
    # Publish now rather than waiting for a relay process.
    while hub.relay.run_once():
        pass
    click.echo(f"replayed {len(done)} of {len(ids)} dead letters"
               + (f"; not parked (already replayed or discarded): "
                  f"{sorted(set(ids) - set(done))}" if len(done) < len(ids) else ""))


@dlq.command()
@click.argument("dead_letter_id", type=int)
@click.option("--reason", required=True, help="Why it will not be replayed (kept in the audit).")
def discard(dead_letter_id: int, reason: str) -> None:
    """Mark a dead letter as not to be replayed (it stays stored as evidence)."""
    from hub.delivery.deadletters import discard as do_discard

    hub = _hub_with_drain()
    if not do_discard(hub.store, hub.audit, dead_letter_id, actor="operator:cli", reason=reason):
        raise click.ClickException(f"dead letter {dead_letter_id} is not parked")
    click.echo(f"discarded {dead_letter_id}")
