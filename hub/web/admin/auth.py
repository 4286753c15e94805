"""Who may operate the hub: one function, `authorize`, decides for the console and the admin API.

Administrators operate (queues, dead letters, replays, pauses) and never read case contents.

An operator presents, as ``Authorization: Bearer <token>`` (API, scripts) or once on the
console's login page (a signed session cookie then carries who signed in):

- a **personal access token** issued by the hub (`security.tokens`, a JWT) whose role may
  operate (``admin``): the name in audit records is the token's subject. Other roles (staff,
  call centre, agencies) are refused: they do not run the hub. Needs the hub's signing key in
  ``$HUB_KEYS_DIR`` (see docs/security.md);
- or the deployment's **operator token**, for bootstrapping and break-glass access:
  ``HUB_ADMIN_TOKEN`` or, when unset, the content of ``$HUB_KEYS_DIR/admin-token`` (created on
  first use, mode 0600, never logged).
"""
from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import request, session

from hub.errors import InvalidToken, SecurityError

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


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def _from_token(hub: Any, token: str, name: str | None) -> Operator:
    """Whoever ``token`` names, if they may operate the hub."""
    if _looks_like_jwt(token):
        try:
            principal = hub.tokens.verify_token(token)
        except InvalidToken as exc:
            raise NotAuthorized(f"the access token is not valid: {exc.message}") from None
        if not principal.can_operate():
            raise NotAuthorized(f"role {principal.role!r} does not operate the hub")
        return Operator(name=principal.subject, role=principal.role)
    if check_token(hub.settings, token):
        return Operator(name=(name or "operator").strip()[:64] or "operator")
    raise NotAuthorized("wrong operator token")


def authorize(hub: Any) -> Operator:
    """The operator making this request, or `NotAuthorized`."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return _from_token(hub, header[len("Bearer "):].strip(),
                           request.headers.get("X-Operator") or "api")
    name = session.get(SESSION_KEY)
    if name:
        return Operator(name=str(name), role=str(session.get("role", "admin")))
    raise NotAuthorized("sign in as an operator")


def sign_in(hub: Any, name: str, token: str) -> Operator:
    """Check ``token`` (personal or operator token) and open a console session."""
    operator = _from_token(hub, (token or "").strip(), name)
    session.clear()
    session["role"] = operator.role
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
