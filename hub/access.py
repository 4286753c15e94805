"""Who is calling the back-office, and what they may see and do: the one seam to access control.

A request carries ``Authorization: Bearer <token>``; `principal_from_request` asks the app's
authenticator (``app.extensions["hub.authenticate"]``: a callable ``token -> Principal`` that
raises `SecurityError` for a bad token) and returns the `Principal`, whose pure methods decide::

    role         read case status   read contents   change case
    post_staff   own post's cases   own post        own post
    central      all                all             all
    call_centre  all                -               -
    others       -                  -               -

`Principal` has the fields and checks of the ``security`` package's token principal, so the
authenticator can be its token authority (`TokenAuthority.verify_token`) unchanged. Without an
authenticator every back-office request is refused (401).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from flask import current_app, request

from hub.errors import AccessDenied, SecurityError

Authenticate = Callable[[str], "Principal"]
STAFF_ROLES = ("post_staff", "central", "call_centre")


@dataclass(frozen=True)
class Principal:
    """Who is calling, as a verified token says. Every check is pure."""

    subject: str
    role: str
    post: str | None = None
    case: str | None = None
    agency: str | None = None
    token_id: str = ""
    expires_at: datetime | None = None

    def can_read_case(self, case_post: str | None, case_ref: str) -> bool:
        """May see that the case exists and its status."""
        if self.role in ("central", "call_centre"):
            return True
        if self.role == "post_staff":
            return self.post is not None and self.post == case_post
        return self.role == "applicant" and self.case == case_ref

    def can_read_case_contents(self, case_post: str | None, case_ref: str) -> bool:
        """May see the personal data and documents of the case."""
        if self.role == "central":
            return True
        if self.role == "post_staff":
            return self.post is not None and self.post == case_post
        return self.role == "applicant" and self.case == case_ref

    def can_change_case(self, case_post: str | None, case_ref: str) -> bool:
        """May move the case through its lifecycle (decide, record outcomes, issue)."""
        if self.role == "central":
            return True
        return self.role == "post_staff" and self.post is not None and self.post == case_post


def principal_from_request() -> Principal:
    """The verified caller of this request; `SecurityError` (401) when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SecurityError("send an access token: Authorization: Bearer <token>",
                            code="security.token")
    authenticate: Authenticate | None = current_app.extensions.get("hub.authenticate")
    if authenticate is None:
        raise SecurityError("this hub has no authenticator configured", code="security.token")
    return authenticate(token.strip())


def staff_principal() -> Principal:
    """The caller, who must be consular staff (a post, the central directorate, the call
    centre); `AccessDenied` (403) for any other role."""
    principal = principal_from_request()
    if principal.role not in STAFF_ROLES:
        raise AccessDenied(f"role {principal.role} has no access to the back-office")
    return principal
