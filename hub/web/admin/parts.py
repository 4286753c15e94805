"""What the console and the admin API use: the `AdminConsole` and the `OperatorGate`, put in
``app.extensions`` by `hub.web.admin.init_app` and read through the typed accessors below.

Shared by both blueprints (`hub.web.admin.views`, `hub.web.admin.api`), this module imports
neither.
"""
from __future__ import annotations

from flask import Flask, current_app

from hub.web.admin.auth import OperatorGate
from hub.web.admin.service import AdminConsole

CONSOLE = "hub.admin.console"
GATE = "hub.admin.gate"


def install(app: Flask, console: AdminConsole, gate: OperatorGate) -> None:
    app.extensions[CONSOLE] = console
    app.extensions[GATE] = gate


def console() -> AdminConsole:
    """The current app's `AdminConsole`."""
    found = current_app.extensions[CONSOLE]
    if not isinstance(found, AdminConsole):
        raise TypeError(f"app.extensions[{CONSOLE!r}] is not an AdminConsole")
    return found


def gate() -> OperatorGate:
    """The current app's `OperatorGate`."""
    found = current_app.extensions[GATE]
    if not isinstance(found, OperatorGate):
        raise TypeError(f"app.extensions[{GATE!r}] is not an OperatorGate")
    return found
