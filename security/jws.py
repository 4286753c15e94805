"""JWS for the REST agencies (Health, NARSA) and for the hub's own envelopes, with joserfc.

Compact serialization, ES256 for EC keys and RS256 for RSA keys. The protected header always
carries ``alg``, ``typ: "JOSE"``, ``kid`` and ``x5t#S256`` (both the signer certificate's
SHA-256 thumbprint, base64url), ``iat`` (seconds since the epoch) and ``jti`` (a message id, by
default a new UUID; pass the envelope id so replay detection and the audit trail agree)::

    token = sign_json(body, store.signer("hub"), message_id=str(envelope.id))
    verified = verify_jws(token, trust, "narsa")     # VerifiedJws(payload, headers, ...)

*Detached* (RFC 7515 appendix F): the payload is signed but left out of the token
(``<header>..<signature>``); the hub signs its envelopes' canonical bytes this way and stores the
token in ``Envelope.signature``::

    sig = sign_detached(env.canonical_bytes(), signer, message_id=str(env.id))
    verify_detached(sig, env.canonical_bytes(), trust, "hub")

Refused, always: ``alg: none`` and any algorithm but ES256/RS256, an algorithm that does not fit
the key type, a ``kid`` not known for the party, ``crit`` and ``b64`` headers, ``jwk``/``jku``/
``x5u``/``x5c`` (keys come from the trust store, never from the message), a ``typ`` other than
``JOSE`` (an access token is not a message signature), missing ``iat``/``jti``, a bad signature,
and anything that is not a compact JWS. `SignatureInvalid` or `UntrustedCertificate` says which.

An agency verifies offline with any JOSE library and our certificate; see docs/security.md.
"""
from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from hub.envelope import DEFAULT_MAX_BYTES
from hub.errors import (
    ConfigurationError,
    HubError,
    MessageTooLarge,
    SignatureInvalid,
    UntrustedCertificate,
)
from security.keys import Signer
from security.safexml import parse_json_limited
from security.trust import TrustStore

JwsAlgorithm = Literal["ES256", "RS256"]
_BY_KEY_TYPE: dict[str, JwsAlgorithm] = {"ec": "ES256", "rsa": "RS256"}
TYP = "JOSE"
#: Headers the signer sets and the caller may not override.
RESERVED = frozenset({"alg", "kid", "x5t#S256", "typ", "iat", "jti"})
#: Headers whose presence alone refuses a token: they change how it must be read or which key
#: verifies it, and our keys come from the trust store only.
FORBIDDEN = frozenset({"crit", "b64", "jwk", "jku", "x5u", "x5c", "zip"})
_MAX_HEADER_BYTES = 4096
_EXTRA_HEADERS = {"iat": HeaderParameter("Issued at", "int"),
                  "jti": HeaderParameter("Message id", "str")}


@dataclass(frozen=True)
class VerifiedJws:
    """A verified JWS: the payload bytes exactly as signed, and its protected header."""

    payload: bytes
    headers: dict[str, Any]
    certificate: x509.Certificate
    party: str

    @property
    def message_id(self) -> str:
        return str(self.headers["jti"])

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.headers["iat"], timezone.utc)

    def json(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
        """The payload parsed as JSON with the hub's strict parser."""
        return parse_json_limited(self.payload, max_bytes=max_bytes, what="JWS payload")


def algorithm_for(key_type: str) -> JwsAlgorithm:
    return _BY_KEY_TYPE[key_type]


# -- signing ---------------------------------------------------------------------------------------

def sign_json(payload: bytes, signer: Signer, *, headers: Mapping[str, Any] | None = None,
              message_id: str | None = None, now: datetime | None = None) -> str:
    """Sign ``payload`` (bytes, usually canonical JSON); return a compact JWS."""
    if not isinstance(payload, bytes):
        raise ConfigurationError("sign_json signs bytes; serialize the JSON first (canonical_json)")
    protected = _protected(signer, headers, message_id, now)
    try:
        return jws.serialize_compact(protected, payload, _private_jwk(signer),
                                     algorithms=[protected["alg"]],
                                     registry=_registry(protected["alg"], len(payload)))
    except JoseError as exc:
        raise ConfigurationError(f"cannot sign: {exc}") from None


def sign_detached(payload: bytes, signer: Signer, *, headers: Mapping[str, Any] | None = None,
                  message_id: str | None = None, now: datetime | None = None) -> str:
    """Like `sign_json`, but the payload segment is left empty: ``<header>..<signature>``."""
    return jws.detach_content(sign_json(payload, signer, headers=headers, message_id=message_id,
                                        now=now))


def _protected(signer: Signer, headers: Mapping[str, Any] | None, message_id: str | None,
               now: datetime | None) -> dict[str, Any]:
    extra = dict(headers or {})
    clash = (RESERVED | FORBIDDEN) & extra.keys()
    if clash:
        raise ConfigurationError(f"headers {sorted(clash)} are set by the signer, not the caller")
    issued = int((now.timestamp() if now else time.time()))
    return {**extra, "alg": algorithm_for(signer.key_type), "typ": TYP, "kid": signer.thumbprint,
            "x5t#S256": signer.thumbprint, "iat": issued, "jti": message_id or str(uuid.uuid4())}


# -- verification ----------------------------------------------------------------------------------

def verify_jws(token: str | bytes, trust: TrustStore, party: str, *,
               at: datetime | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> VerifiedJws:
    """Verify a compact JWS with an attached payload as signed by ``party``."""
    return _verify(token, None, trust, party, at, max_bytes)


def verify_detached(token: str | bytes, payload: bytes, trust: TrustStore, party: str, *,
                    at: datetime | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> VerifiedJws:
    """Verify a detached compact JWS (``<header>..<signature>``) over ``payload``."""
    if not isinstance(payload, bytes):
        raise SignatureInvalid("detached payload must be bytes", reason="malformed")
    return _verify(token, payload, trust, party, at, max_bytes)


def _verify(token: str | bytes, detached: bytes | None, trust: TrustStore, party: str,
            at: datetime | None, max_bytes: int) -> VerifiedJws:
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    if not isinstance(raw, bytes) or not raw:
        raise SignatureInvalid("no JWS given (unsigned input)", reason="unsigned")
    limit = max_bytes * 4 // 3 + _MAX_HEADER_BYTES + 1024  # base64 growth plus header and signature
    if len(raw) > limit:
        raise MessageTooLarge(f"JWS is {len(raw)} bytes, limit is {limit}", size=len(raw),
                              limit=limit)
    parts = raw.split(b".")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise SignatureInvalid("not a compact JWS (unsigned input?)", reason="unsigned")
    header = _decode_header(parts[0])
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise SignatureInvalid("alg 'none' (unsigned JWS) is refused", reason="alg_none")
    if alg not in _BY_KEY_TYPE.values():
        raise SignatureInvalid(f"alg {alg!r} is not accepted (ES256, RS256)", reason="alg")
    forbidden = FORBIDDEN & header.keys()
    if forbidden:
        raise SignatureInvalid(f"header parameters {sorted(forbidden)} are refused",
                               reason="header")
    if detached is None and not parts[1]:
        raise SignatureInvalid("JWS has a detached payload; use verify_detached", reason="detached")
    if detached is not None and parts[1]:
        raise SignatureInvalid("expected a detached JWS (empty payload segment)", reason="attached")
    if header.get("typ", TYP) != TYP:
        raise SignatureInvalid(f"typ {header.get('typ')!r} is not a message signature",
                               reason="typ")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise SignatureInvalid("JWS has no kid", reason="no_kid")
    if header.get("x5t#S256", kid) != kid:
        raise SignatureInvalid("x5t#S256 and kid name different certificates", reason="kid")
    if not isinstance(header.get("iat"), int) or isinstance(header.get("iat"), bool):
        raise SignatureInvalid("JWS has no integer iat", reason="no_iat")
    if not isinstance(header.get("jti"), str) or not header["jti"]:
        raise SignatureInvalid("JWS has no jti (message id)", reason="no_jti")

    cert = trust.certificate_for(party, kid)
    if cert is None:
        raise UntrustedCertificate(f"kid {kid} is not a known certificate of {party}",
                                   reason="unknown_kid", party=party)
    trust.verify_certificate(party, cert, at=at)
    key_type = "rsa" if isinstance(cert.public_key(), rsa.RSAPublicKey) else "ec"
    if alg != algorithm_for(key_type):
        raise SignatureInvalid(f"alg {alg} does not fit {party}'s {key_type.upper()} key",
                               reason="alg_mismatch")
    try:
        obj = jws.deserialize_compact(raw, _public_jwk(cert), algorithms=[alg],
                                      registry=_registry(alg, max_bytes), payload=detached)
    except HubError:
        raise
    except (JoseError, ValueError, TypeError) as exc:
        raise SignatureInvalid(f"JWS signature does not verify: {exc}",
                               reason="bad_signature") from None
    return VerifiedJws(payload=obj.payload, headers=dict(obj.headers()), certificate=cert,
                       party=party)


def _decode_header(segment: bytes) -> dict[str, Any]:
    if len(segment) > _MAX_HEADER_BYTES:
        raise SignatureInvalid("JWS header is too large", reason="malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except ValueError:
        raise SignatureInvalid("JWS header is not base64url", reason="malformed") from None
    try:
        header = parse_json_limited(raw, max_bytes=_MAX_HEADER_BYTES, what="JWS header")
    except HubError as exc:
        raise SignatureInvalid(f"JWS header is unreadable: {exc.message}",
                               reason="malformed") from None
    if not isinstance(header, dict):
        raise SignatureInvalid("JWS header is not a JSON object", reason="malformed")
    return header


def _registry(alg: str, payload_limit: int) -> JWSRegistry:
    # Not strict: callers may add their own headers (X-Road ids); the dangerous ones are refused
    # by name before joserfc sees the token.
    registry = JWSRegistry(header_registry=_EXTRA_HEADERS, algorithms=[alg],
                           strict_check_header=False)
    registry.max_header_length = _MAX_HEADER_BYTES
    registry.max_payload_length = payload_limit * 2 + 16  # our own size check ran before
    return registry


# Keys converted to joserfc objects once per certificate / signer, not per message.
_JWK_CACHE: dict[tuple[str, bytes], Any] = {}


def _private_jwk(signer: Signer) -> Any:
    key = ("private", signer.thumbprint.encode())
    if key not in _JWK_CACHE:
        _JWK_CACHE[key] = jwk_of(signer.key)
    return _JWK_CACHE[key]


def _public_jwk(cert: x509.Certificate) -> Any:
    key = ("public", cert.fingerprint(hashes.SHA256()))
    if key not in _JWK_CACHE:
        _JWK_CACHE[key] = jwk_of(cert.public_key())
    return _JWK_CACHE[key]


def jwk_of(key: Any) -> Any:
    """A cryptography EC/RSA key (private or public) as a joserfc key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return ECKey.import_key(key)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return RSAKey.import_key(key)
    raise ConfigurationError(f"unsupported key type {type(key).__name__}")
