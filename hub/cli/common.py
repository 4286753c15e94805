"""Helpers shared by the CLI modules: settings, the hub, signals, output."""
from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from hub.config import Settings
from hub.errors import HubError
from hub.logs import configure

if TYPE_CHECKING:  # imported when a command builds a hub: ``hub --help`` stays fast
    from hub.runtime import Hub


def settings(*, quiet: bool = False) -> Settings:
    """Settings from the environment, with logging configured (WARNING when ``quiet`` and the
    operator did not choose a level)."""
    import os

    try:
        current = Settings.from_env()
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    level = current.log_level if (not quiet or os.environ.get("HUB_LOG_LEVEL")) else "WARNING"
    configure(level, current.log_format)
    return current


def build_hub(**options: Any) -> Hub:
    from hub.runtime import Hub

    try:
        return Hub(settings(), **options)
    except HubError as exc:
        raise click.ClickException(exc.message) from None


def wait_for_signal(stop: threading.Event) -> None:
    """Block until SIGINT or SIGTERM, then set ``stop`` (graceful drain)."""
    def handler(signum: int, _frame: Any) -> None:
        click.echo(f"received {signal.Signals(signum).name}, draining...", err=True)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.is_set():
        stop.wait(0.5)


def as_of(now_text: str | None) -> datetime:
    """The ``--now`` option of the timed commands: an ISO 8601 time (UTC if no zone), or now."""
    try:
        now = datetime.fromisoformat(now_text) if now_text else datetime.now(timezone.utc)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2029-03-01T00:00:00+00:00",
                                 param_hint="--now") from None
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def progress_stream() -> Any:
    return sys.stderr
