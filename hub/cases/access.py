"""Who is calling the back-office, and what they may see and do: the one seam to access control.

A request carries ``Authorization: Bearer <token>``; `principal_from_request` asks the app's
authenticator (``app.extensions["hub.authenticate"]``: a callable ``token -> Principal`` that
raises `SecurityError` for a bad token) and returns the `Principal`, whose pure methods decide::

    role         read case status   read contents   change case
    post_staff   own post's cases   own post        own post
    central      all                all             all
    call_centre  all                -               -
    others       -                  -               -

`Principal` is the ``security`` package's (`security.tokens`); the authenticator is the hub's
token authority's ``verify_token`` (`Hub.tokens`), or any callable of the same shape in tests.
"""
from __future__ import annotations

from typing import Callable

from flask import current_app, request

from hub.errors import AccessDenied, SecurityError
from security.tokens import Principal

__all__ = ["Principal", "principal_from_request", "staff_principal"]

Authenticate = Callable[[str], Principal]
STAFF_ROLES = ("post_staff", "central", "call_centre")


def principal_from_request() -> Principal:
    """The verified caller of this request; `SecurityError` (401) when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SecurityError("send an access token: Authorization: Bearer <token>",
                            code="security.token")
    authenticate: Authenticate = current_app.extensions["hub.authenticate"]
    return authenticate(token.strip())


def staff_principal() -> Principal:
    """The caller, who must be consular staff (a post, the central directorate, the call
    centre); `AccessDenied` (403) for any other role."""
    principal = principal_from_request()
    if principal.role not in STAFF_ROLES:
        raise AccessDenied(f"role {principal.role} has no access to the back-office")
    return principal
