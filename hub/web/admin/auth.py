"""Who may operate the hub: one gate, `OperatorGate.authorize`, decides for the console and the
admin API.

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
from typing import Callable

from flask import request, session

from hub.config import Settings
from hub.errors import InvalidToken, SecurityError
from security.tokens import Principal

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


def operator_token(settings: Settings) -> str:
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


def check_token(settings: Settings, token: str | None) -> bool:
    expected = operator_token(settings)
    return bool(token) and hmac.compare_digest(token.encode(), expected.encode())


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


@dataclass(frozen=True)
class OperatorGate:
    """Decides who operates the hub: personal access tokens checked by ``verify_token``
    (`security.tokens.TokenAuthority.verify_token`), or the deployment's operator token
    (``HUB_ADMIN_TOKEN`` or the keys directory's, from ``settings``)."""

    verify_token: Callable[[str], Principal]
    settings: Settings

    def _from_token(self, token: str, name: str | None) -> Operator:
        """Whoever ``token`` names, if they may operate the hub."""
        if _looks_like_jwt(token):
            try:
                principal = self.verify_token(token)
            except InvalidToken as exc:
                raise NotAuthorized(f"the access token is not valid: {exc.message}") from None
            if not principal.can_operate():
                raise NotAuthorized(f"role {principal.role!r} does not operate the hub")
            return Operator(name=principal.subject, role=principal.role)
        if check_token(self.settings, token):
            return Operator(name=(name or "operator").strip()[:64] or "operator")
        raise NotAuthorized("wrong operator token")

    def authorize(self) -> Operator:
        """The operator making this request, or `NotAuthorized`."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self._from_token(header[len("Bearer "):].strip(),
                                    request.headers.get("X-Operator") or "api")
        name = session.get(SESSION_KEY)
        if name:
            return Operator(name=str(name), role=str(session.get("role", "admin")))
        raise NotAuthorized("sign in as an operator")

    def sign_in(self, name: str, token: str) -> Operator:
        """Check ``token`` (personal or operator token) and open a console session."""
        operator = self._from_token((token or "").strip(), name)
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
