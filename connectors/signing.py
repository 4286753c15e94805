"""Message signatures on agency exchanges, over the `security` package (no crypto of our own).

A `MessageSigning` is one party's view of the PKI: its own signing key (to sign what it sends)
and the trust store (to verify what others send). Profiles (docs/security.md section 5):

- SOAP: XML-DSig in ``wsse:Security`` over the Body, a ``wsu:Timestamp`` and the X-Road ``id``
  header (`security.xmldsig.sign_soap` / `verify_xml`);
- REST: a detached JWS over the exact body bytes in the ``X-JWS-Signature`` header, its ``jti``
  the X-Road id (`security.jws.sign_detached` / `verify_detached`).

Replay protection (the hub's side): a `MessageSigning` built with a ``verifier``
(`hub.evidence.verification.MessageVerifier`) and a ``seen`` store (`hub.evidence.seen.StoreSeenIds`) refuses,
after the signature and the certificate, a message whose signed timestamp is outside
``HUB_REPLAY_WINDOW`` or whose signed id was already received from that party
(`ReplayDetected`). The id is the JWS ``jti``; for SOAP the signed X-Road ``id`` of a request,
and for an agency's *answer* (which echoes the id of the hub's request, the same on every retry)
that id with the signed ``wsu:Created``: re-sending the same signed answer is a replay, a fresh
answer to a retried request is not. Simulators have no verifier: signatures only.

Signing is on when the keys directory holds a PKI (``hub keys init`` / `security.pki.init_pki`):
`MessageSigning.load` returns None otherwise, and connectors, simulators and inbound endpoints
then exchange unsigned messages (development without keys). When it is on, every message must be
signed: an unsigned or badly signed one is `SignatureInvalid`, from an unknown signer
`UntrustedCertificate`.

    signing = MessageSigning.load(settings.keys_dir, "hub")
    signed = signing.sign_soap(envelope)                   # lxml envelope, signed
    verified = signing.verify_soap(answer_bytes, "dgsn")   # VerifiedXml: use its signed_xml
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from connectors.xml import SOAP_ENV, XROAD
from hub.errors import ConfigurationError
from security.jws import sign_detached, verify_detached
from security.keys import KeyStore
from security.xmldsig import sign_soap, verify_xml

JWS_HEADER = "X-JWS-Signature"
XROAD_ID = f"{{{XROAD}}}id"


@dataclass(frozen=True)
class MessageSigning:
    party: str
    signer: Any  # security.keys.Signer
    trust: Any  # security.trust.TrustStore
    #: Freshness window and seen ids (`hub.evidence.verification.MessageVerifier`); None: no replay check.
    verifier: Any = None
    #: Default store of seen ids (`hub.evidence.seen.StoreSeenIds`), used when a call names none.
    seen: Any = None

    @classmethod
    def load(cls, keys_dir: str | Path | None, party: str) -> "MessageSigning | None":
        """The party's signing view of the PKI in ``keys_dir``, or None when there is no PKI."""
        if keys_dir is None or not (Path(keys_dir) / "pki.json").is_file():
            return None

        keys = KeyStore.load(Path(keys_dir), own=[party])
        return cls(party=party, signer=keys.signer(party), trust=keys.trust_store())

    # -- SOAP ---------------------------------------------------------------------------------

    def sign_soap(self, envelope: etree._Element, *, now: datetime | None = None
                  ) -> etree._Element:
        """``envelope`` signed; ``now`` dates the signed timestamp (default: the clock)."""

        headers = [XROAD_ID] if envelope.find(f".//{XROAD_ID}") is not None else []
        return sign_soap(envelope, self.signer, sign_headers=headers, now=now)

    def verify_soap(self, data: bytes, party: str, *, signed_id: bool = True,
                    answer: bool = False, fresh: bool = True) -> Any:
        """The `VerifiedXml` of a SOAP message signed by ``party`` (Body, timestamp and, when
        ``signed_id``, the X-Road id covered), refused as a replay when ``fresh`` and this
        view has a verifier (``answer``: the message answers one of ours, see module doc)."""

        max_bytes = {} if self.verifier is None else {"max_bytes": self.verifier.max_bytes}
        verified = verify_xml(data, self.trust, party, expected_reference="soap-body",
                              signed_headers=[XROAD_ID] if signed_id else [], **max_bytes)
        if fresh and signed_id and verified.created is not None:
            message_id = (verified.signed_headers[XROAD_ID].text or "").strip()
            if answer:
                message_id = f"{message_id}@{verified.created.isoformat()}"
            self.check_fresh(party, message_id, verified.created, expires=verified.expires)
        return verified

    # -- REST ---------------------------------------------------------------------------------

    def sign_body(self, body: bytes, message_id: str, *, now: datetime | None = None
                  ) -> dict[str, str]:
        """The header carrying ``body``'s detached JWS; ``now`` dates its ``iat``."""

        return {JWS_HEADER: sign_detached(body, self.signer, message_id=message_id, now=now)}

    def verify_body(self, headers: Any, body: bytes, party: str, *, fresh: bool = True) -> Any:
        """The `VerifiedJws` of ``body`` signed by ``party`` (header ``X-JWS-Signature``),
        refused as a replay when ``fresh`` and this view has a verifier."""

        max_bytes = {} if self.verifier is None else {"max_bytes": self.verifier.max_bytes}
        verified = verify_detached(headers.get(JWS_HEADER, ""), body, self.trust, party,
                                   **max_bytes)
        if fresh:
            self.check_fresh(party, verified.message_id, verified.issued_at)
        return verified

    # -- replays ------------------------------------------------------------------------------

    def check_fresh(self, party: str, message_id: str, created: datetime, *,
                    expires: datetime | None = None, seen: Any = None) -> None:
        """`ReplayDetected` unless ``created`` is inside the window and ``message_id`` is new
        for ``party`` (recorded in ``seen``, e.g. `hub.evidence.seen.SessionSeenIds` to commit the
        mark with the message's effect, else in this view's default store)."""
        if self.verifier is None:
            return
        store = seen if seen is not None else self.seen
        if store is None:

            raise ConfigurationError("replay protection needs a store of seen message ids")
        self.verifier.guard(store).check(party, message_id, created, expires=expires)


def replace_body(envelope: etree._Element, signed_body: etree._Element) -> etree._Element:
    """``envelope`` with its Body replaced by the verified one (read only what was signed)."""

    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    if body is not None:
        envelope.replace(body, signed_body)
    return envelope
