"""Short-lived access tokens for people and agencies, and what each role may do.

The hub issues a JWT (joserfc, signed with the hub's signing key: ES256 or RS256) when someone
authenticates; every request then presents it and gets a `Principal` whose methods are pure
permission checks the web layer calls before touching a case::

    authority = TokenAuthority(store.signer("hub"))
    token = authority.issue_token("u-7f3a", "post_staff", post="MA-FR-PAR")
    who = authority.verify_token(token)             # InvalidToken if anything is wrong
    if not who.can_read_case_contents(case.post, case.ref):
        ...403

Token: header ``{"alg", "typ": "at+jwt", "kid"}`` (RFC 9068's type, so a token is never
mistaken for a message signature and the other way round; `security.jws` refuses ``at+jwt``);
claims ``iss``, ``aud``, ``sub`` (an opaque user id, never a name or e-mail), ``iat``, ``nbf``,
``exp``, ``jti``, ``role`` and the role's scope claim (``case``, ``post`` or ``agency``).
Expiry, not-before, issuer, audience, type and key are all checked, with a small leeway.

Least privilege, by role (``own`` = the scope claim of the token)::

    role         read case status   read contents   change case   operate   call inbound
    applicant    own case           own case        -             -         -
    post_staff   own post's cases   own post        own post      -         -
    central      all                all             all           -         -
    call_centre  all                -               -             -         -
    agency       -                  -               -             -         own agency
    admin        -                  -               -             yes       -

``admin`` runs the hub (dead letters, replays, metrics) without reading case contents; the
call centre answers "where is my file" without seeing personal data; an applicant's own
submissions (documents, corrections) go through intake, which checks `Principal.owns_case`.
"""
from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError

from hub.envelope import parse_json
from hub.errors import ConfigurationError, HubError, InvalidToken
from security.jws import jwk_of
from security.keys import Signer
from security.trust import Clock, cert_thumbprint, utc_now

Role = Literal["applicant", "post_staff", "central", "call_centre", "agency", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
ISSUER = "urn:econsulat:hub"
AUDIENCE = "urn:econsulat:hub:api"
TOKEN_TYPE = "at+jwt"
DEFAULT_TTL = 900
#: A token outliving a working day is a session that cannot be revoked: refuse to issue one.
MAX_TTL = 8 * 3600
MAX_TOKEN_BYTES = 8192
#: Which scope claim each role needs (the others must be absent).
SCOPE: dict[str, str | None] = {"applicant": "case", "post_staff": "post", "agency": "agency",
                                "central": None, "call_centre": None, "admin": None}
_SCOPE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling, as a verified token says. Every check is pure and side-effect free."""

    subject: str
    role: Role
    post: str | None = None
    case: str | None = None
    agency: str | None = None
    token_id: str = ""
    expires_at: datetime | None = None

    def owns_case(self, case_ref: str) -> bool:
        return self.role == "applicant" and self.case is not None and self.case == case_ref

    def can_read_case(self, case_post: str, case_ref: str) -> bool:
        """May see that the case exists and its status."""
        if self.role in ("central", "call_centre"):
            return True
        if self.role == "post_staff":
            return self.post is not None and self.post == case_post
        return self.owns_case(case_ref)

    def can_read_case_contents(self, case_post: str, case_ref: str) -> bool:
        """May see the personal data and documents of the case."""
        if self.role == "central":
            return True
        if self.role == "post_staff":
            return self.post is not None and self.post == case_post
        return self.owns_case(case_ref)

    def can_change_case(self, case_post: str, case_ref: str) -> bool:
        """May move the case through its lifecycle (decide, record outcomes, issue)."""
        if self.role == "central":
            return True
        return self.role == "post_staff" and self.post is not None and self.post == case_post

    def can_operate(self) -> bool:
        """May run the hub: dead letters, replays, metrics, configuration."""
        return self.role == "admin"

    def can_call_inbound(self, agency: str) -> bool:
        """May call the hub's inbound endpoints as ``agency``."""
        return self.role == "agency" and self.agency is not None and self.agency == agency


class TokenAuthority:
    """Issues and verifies access tokens with the hub's key.

    ``previous`` lists certificates of earlier hub keys whose tokens are still accepted during a
    key rotation (at most `MAX_TTL` after the switch).
    """

    def __init__(self, signer: Signer, *, issuer: str = ISSUER, audience: str = AUDIENCE,
                 clock: Clock = utc_now, leeway_seconds: int = 30,
                 previous: Iterable[x509.Certificate] = ()) -> None:
        self.signer = signer
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = timedelta(seconds=leeway_seconds)
        self._alg = "ES256" if signer.key_type == "ec" else "RS256"
        self._private = jwk_of(signer.key)
        # kid -> (alg, public key), built once.
        self._verifiers: dict[str, tuple[str, Any]] = {}
        for cert in (signer.cert, *previous):
            public = cert.public_key()
            is_rsa = isinstance(public, rsa.RSAPublicKey)
            self._verifiers[cert_thumbprint(cert)] = (
                "RS256" if is_rsa else "ES256", jwk_of(public))

    def issue_token(self, subject: str, role: Role, *, post: str | None = None,
                    case: str | None = None, agency: str | None = None,
                    ttl: int = DEFAULT_TTL) -> str:
        if role not in ROLES:
            raise ConfigurationError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        if not isinstance(subject, str) or not _SUBJECT.match(subject):
            raise ConfigurationError("subject must be an opaque id (letters, digits, _.:@-)")
        if not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
            raise ConfigurationError(f"ttl must be 1..{MAX_TTL} seconds")
        scope = {"post": post, "case": case, "agency": agency}
        _check_scope(role, scope, ConfigurationError)
        now = self.clock().astimezone(timezone.utc)
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": subject, "role": role,
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + ttl, "jti": str(uuid.uuid4()),
            **{k: v for k, v in scope.items() if v is not None},
        }
        header = {"alg": self._alg, "typ": TOKEN_TYPE, "kid": self.signer.thumbprint}
        return jwt.encode(header, claims, self._private, algorithms=[self._alg])

    def verify_token(self, token: str) -> Principal:
        """Verify signature, type, issuer, audience, time and scope; return the `Principal`."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("no access token", reason="missing")
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("access token is too large", reason="malformed")
        header = _header(token)
        if header.get("typ") != TOKEN_TYPE:
            raise InvalidToken(f"token type {header.get('typ')!r} is not {TOKEN_TYPE}",
                               reason="typ")
        verifier = self._verifiers.get(header.get("kid"))  # type: ignore[arg-type]
        if verifier is None:
            raise InvalidToken("token was signed by a key this hub does not know", reason="kid")
        alg, key = verifier
        if header.get("alg") != alg:
            raise InvalidToken(f"token alg {header.get('alg')!r} does not fit the key ({alg})",
                               reason="alg")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"token signature does not verify: {exc}",
                               reason="signature") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        now = self.clock().astimezone(timezone.utc)
        if claims.get("iss") != self.issuer:
            raise InvalidToken("token was issued by someone else", reason="issuer")
        aud = claims.get("aud")
        if not (aud == self.audience or (isinstance(aud, list) and self.audience in aud)):
            raise InvalidToken("token is meant for another audience", reason="audience")
        exp, nbf, iat = (_int_claim(claims, name) for name in ("exp", "nbf", "iat"))
        if now - self.leeway >= _ts(exp):
            raise InvalidToken(f"token expired at {_ts(exp).isoformat()}", reason="expired")
        if now + self.leeway < _ts(nbf) or now + self.leeway < _ts(iat):
            raise InvalidToken(f"token is not valid before {_ts(nbf).isoformat()}",
                               reason="not_before")
        if exp - iat > MAX_TTL:
            raise InvalidToken("token lifetime exceeds the hub's maximum", reason="lifetime")
        role, sub, jti = claims.get("role"), claims.get("sub"), claims.get("jti")
        if role not in ROLES:
            raise InvalidToken(f"unknown role {role!r}", reason="role")
        if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not jti:
            raise InvalidToken("token lacks sub or jti", reason="claims")
        scope = {name: claims.get(name) for name in ("post", "case", "agency")}
        _check_scope(role, scope, InvalidToken)
        return Principal(subject=sub, role=role, token_id=jti, expires_at=_ts(exp), **scope)


def _check_scope(role: str, scope: dict[str, Any], error: type[HubError]) -> None:
    wanted = SCOPE[role]
    for name, value in scope.items():
        if name == wanted:
            if not isinstance(value, str) or not _SCOPE_VALUE.match(value):
                raise error(f"role {role} needs a valid {name!r} claim", reason="scope")
        elif value is not None:
            raise error(f"role {role} may not carry a {name!r} claim", reason="scope")


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0].encode("ascii", "replace")
    try:
        header = parse_json(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)),
                            what="token header")
    except (HubError, ValueError):
        raise InvalidToken("access token is not a JWT", reason="malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("access token is not a JWT", reason="malformed")
    return header


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken(f"token lacks an integer {name!r} claim", reason="claims")
    return value


def _ts(value: int) -> datetime:
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidToken("token time claim out of range", reason="claims") from None
