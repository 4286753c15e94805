"""One call for everything that arrives signed from an agency: verify the signature, refuse a
replay, and hand back only what the signature covers.

Connectors (an agency's answer) and inbound endpoints (an agency calling the hub) use it the same
way, so no path can verify without the replay check or read an unsigned part of a message::

    verifier = MessageVerifier.from_settings(hub.keys.trust, hub.settings)
    with hub.store.transaction() as session:
        verified = verifier.jws(token, "health", SessionSeenIds(session))   # VerifiedJws
        document = verified.json()                                          # signed bytes only
        ...                                   # effect, in the same transaction as the seen mark

    verified = verifier.soap(body, "dgsn", StoreSeenIds(hub.store))         # VerifiedXml
    verified.signed_xml                       # the signed Body, re-parsed: never the raw tree

Order, and what each refusal is (all permanent, all `hub.errors.SecurityError` or
`InvalidMessage`): size and hostile-XML checks (`MessageTooLarge`, `HostileInput`), signature
(`SignatureInvalid`: unsigned, bad, not covering the Body or the message id), certificate
(`UntrustedCertificate`: unknown, expired, revoked, wrong party, pin mismatch), then freshness
and the seen id (`ReplayDetected`: ``stale``, ``future``, ``expired``, ``seen``). The timestamp
and the message id are read from the signed content: a JWS's ``iat``/``jti``; a SOAP message's
signed ``wsu:Timestamp`` and signed X-Road ``id`` header.
"""
from __future__ import annotations

from datetime import datetime

from hub.config import Settings
from hub.envelope import DEFAULT_MAX_BYTES
from hub.errors import SignatureInvalid
from security.jws import VerifiedJws, verify_detached, verify_jws
from security.replay import ReplayGuard, SeenIds
from security.trust import Clock, TrustStore, utc_now
from security.xmldsig import VerifiedXml, verify_xml

#: The X-Road message id header of SOAP messages: signed, it is the id replays are checked on.
XROAD_ID = "{http://x-road.eu/xsd/xroad.xsd}id"


class MessageVerifier:
    """Signature, then certificate, then replay; shared by every thread (holds no per-message
    state: the seen-id store is passed per call)."""

    def __init__(self, trust: TrustStore, *, window_seconds: float = 300.0,
                 skew_seconds: float = 60.0, clock: Clock = utc_now,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.trust = trust
        self.window_seconds = window_seconds
        self.skew_seconds = skew_seconds
        self.clock = clock
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, trust: TrustStore, settings: Settings, *,
                      clock: Clock = utc_now) -> "MessageVerifier":
        return cls(trust, window_seconds=settings.replay_window,
                   skew_seconds=settings.replay_skew, clock=clock,
                   max_bytes=settings.max_message_bytes)

    def guard(self, seen: SeenIds) -> ReplayGuard:
        return ReplayGuard(seen, window_seconds=self.window_seconds,
                           skew_seconds=self.skew_seconds, clock=self.clock)

    @property
    def retention(self) -> float:
        """Seconds a seen id must be kept (`hub.evidence.seen.purge_seen`)."""
        return self.window_seconds + self.skew_seconds

    def jws(self, token: str | bytes, party: str, seen: SeenIds, *,
            payload: bytes | None = None, at: datetime | None = None) -> VerifiedJws:
        """A compact JWS from ``party`` (attached, or detached over ``payload``), once."""
        if payload is None:
            verified = verify_jws(token, self.trust, party, at=at, max_bytes=self.max_bytes)
        else:
            verified = verify_detached(token, payload, self.trust, party, at=at,
                                       max_bytes=self.max_bytes)
        self.guard(seen).check(party, verified.message_id, verified.issued_at)
        return verified

    def soap(self, data: bytes, party: str, seen: SeenIds, *,
             signed_headers: tuple[str, ...] = (), at: datetime | None = None) -> VerifiedXml:
        """A signed SOAP message from ``party`` (Body, Timestamp and X-Road id signed), once."""
        headers = tuple(dict.fromkeys((XROAD_ID, *signed_headers)))
        verified = verify_xml(data, self.trust, party, expected_reference="soap-body",
                              signed_headers=headers, at=at, max_bytes=self.max_bytes)
        message_id = (verified.signed_headers[XROAD_ID].text or "").strip()
        if not message_id:
            raise SignatureInvalid("the signed X-Road id header is empty", reason="no_message_id")
        assert verified.created is not None  # verify_xml requires a signed timestamp
        self.guard(seen).check(party, message_id, verified.created, expires=verified.expires)
        return verified
