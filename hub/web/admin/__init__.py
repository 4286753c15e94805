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

from typing import Any

from hub.keyset import load_or_create_secret
from hub.web.admin.api import blueprint as api
from hub.web.admin.views import blueprint as console


def init_app(app: Any) -> None:

    hub = app.extensions["hub"]
    if not app.secret_key:
        # Shared by every web process of the deployment (same keys directory), so a session
        # survives a load balancer switching processes.
        app.secret_key = load_or_create_secret(hub.settings.keys_dir / "admin-session.key")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Strict")
    app.config.setdefault("SESSION_COOKIE_PATH", "/admin")
    app.extensions["queue_inspector"] = hub.queue_inspector()
    app.register_blueprint(console)
    app.register_blueprint(api)
