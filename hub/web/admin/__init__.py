"""The administrators' console (server-rendered HTML) and admin API (JSON), under ``/admin``.

    /admin/                      overview: queues, agencies, dead letters, throughput and errors
    /admin/dead-letters          filter, inspect, replay in bulk
    /admin/trace?q=REF|ID        every hop of a case or message, with its audit records
    /admin/records               operational records by window, agency, service, outcome
    /admin/api/...               the same as JSON for scripts (``Authorization: Bearer <token>``)

Operators authenticate as `hub.web.admin.auth` says; they see codes, counts, timings, ids and
digests, never case contents. `init_app` is called by `hub.web.app.create_app`.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from hub.keyset import load_or_create_secret
from hub.web.admin.api import blueprint as api
from hub.web.admin.auth import OperatorGate
from hub.web.admin.parts import install
from hub.web.admin.service import AdminConsole
from hub.web.admin.views import blueprint as console


def init_app(app: Flask, admin: AdminConsole, gate: OperatorGate, *, keys_dir: Path) -> None:
    """Register the console and the admin API on ``app``, over ``admin`` and behind ``gate``;
    the session key is kept in ``keys_dir``."""
    if not app.secret_key:
        # Shared by every web process of the deployment (same keys directory), so a session
        # survives a load balancer switching processes.
        app.secret_key = load_or_create_secret(keys_dir / "admin-session.key")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Strict")
    app.config.setdefault("SESSION_COOKIE_PATH", "/admin")
    install(app, admin, gate)
    app.register_blueprint(console)
    app.register_blueprint(api)
