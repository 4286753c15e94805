"""Who may operate the hub: one function, `authorize`, decides for the console and the admin API.

Administrators operate (queues, dead letters, replays, pauses) and never read case contents.

Today an operator presents the deployment's operator token, either as ``Authorization: Bearer
<token>`` (API, scripts) or once on the console's login page (the signed session cookie then
carries the operator's name). The token is ``HUB_ADMIN_TOKEN`` or, when unset, the content of
``$HUB_KEYS_DIR/admin-token`` (created on first use, mode 0600, never logged). When personal
tokens with roles are issued (`security.tokens`, role ``admin``), only `authorize` changes.
"""
from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import request, session

from hub.errors import SecurityError

SESSION_KEY = "operator"


class NotAuthorized(SecurityError):
    """The caller is not an authenticated operator."""

    code = "security.not_authorized"


@dataclass(frozen=True)
class Operator:
    """An authenticated operator; ``name`` goes into audit records as ``admin:<name>``."""

    name: str
    role: str = "admin"

    @property
    def actor(self) -> str:
        return f"admin:{self.name}"

    def can_operate(self) -> bool:
        return self.role == "admin"


def operator_token(settings: Any) -> str:
    """The deployment's operator token (see the module docstring)."""
    if settings.admin_token:
        return settings.admin_token
    path = Path(settings.keys_dir) / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text("utf-8").strip()


def check_token(settings: Any, token: str | None) -> bool:
    expected = operator_token(settings)
    return bool(token) and hmac.compare_digest(token.encode(), expected.encode())


def authorize(settings: Any) -> Operator:
    """The operator making this request, or `NotAuthorized`."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        if check_token(settings, header[len("Bearer "):].strip()):
            return Operator(name=request.headers.get("X-Operator", "api")[:64] or "api")
        raise NotAuthorized("the bearer token is not an operator token")
    name = session.get(SESSION_KEY)
    if name:
        return Operator(name=str(name))
    raise NotAuthorized("sign in as an operator")


def sign_in(settings: Any, name: str, token: str) -> Operator:
    if not check_token(settings, token):
        raise NotAuthorized("wrong operator token")
    operator = Operator(name=(name or "operator").strip()[:64] or "operator")
    session.clear()
    session[SESSION_KEY] = operator.name
    session["csrf"] = secrets.token_urlsafe(16)
    return operator


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(16)
    return str(session["csrf"])


def check_csrf() -> None:
    """Console forms carry the session's CSRF token; bearer-token API calls need none."""
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return
    sent = request.form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent, str(session.get("csrf", ""))):
        raise NotAuthorized("the form expired; reload the page")
