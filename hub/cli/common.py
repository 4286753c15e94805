"""Helpers shared by the CLI modules: settings, the hub, signals, output."""
from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from hub.config import Settings
from hub.errors import HubError
from hub.logs import configure


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


def build_hub(**options: Any) -> Any:
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


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def progress_stream() -> Any:
    return sys.stderr
