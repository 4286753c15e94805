"""The seal on envelopes inside the hub: who wrote this message, and is it unchanged?

Every envelope the hub writes (outbox, broker) is sealed over its canonical bytes and checked when
it is read back, so a message altered in the broker or the store is detected and parked. The
`Seal` protocol is what the outbox and the consumers use. `HmacSeal` keys it with a secret of the
deployment; `Unsealed` is for unit tests of other parts only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from hub.envelope import Envelope


class Seal(Protocol):
    def seal(self, envelope: Envelope) -> Envelope:
        """The envelope with its ``signature`` set over its canonical bytes."""

    def check(self, envelope: Envelope) -> None:
        """Raise `hub.errors.SignatureInvalid` unless the signature covers these bytes."""


class Unsealed:
    """No seal: unit tests of routing or storage only; `hub.runtime.Hub` never uses it."""

    def seal(self, envelope: Envelope) -> Envelope:
        return envelope

    def check(self, envelope: Envelope) -> None:
        return None


class HmacSeal:
    """HMAC-SHA256 over the canonical bytes under a secret key of the deployment.

    Detects any change made in the broker or the store by someone without the key. It is not
    attributable to one party (every hub process holds the key); signatures between the hub and
    agencies are asymmetric (`security.jws`, `security.xmldsig`).
    """

    prefix = "hmac-sha256:"

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the envelope seal key must be at least 32 bytes")
        self._key = key

    def _mac(self, envelope: Envelope) -> str:
        import hashlib
        import hmac

        return hmac.new(self._key, envelope.canonical_bytes(), hashlib.sha256).hexdigest()

    def seal(self, envelope: Envelope) -> Envelope:
        return envelope.with_signature(self.prefix + self._mac(envelope))

    def check(self, envelope: Envelope) -> None:
        import hmac

        from hub.errors import SignatureInvalid

        if not envelope.signature:
            raise SignatureInvalid(f"envelope {envelope.id} is not sealed")
        if not envelope.signature.startswith(self.prefix) or not hmac.compare_digest(
                envelope.signature[len(self.prefix):], self._mac(envelope)):
            raise SignatureInvalid(f"envelope {envelope.id} was altered after it was sealed")


def load_or_create_key(path: Path) -> bytes:
    """The seal key at ``path``, created (random, mode 0600) on first use."""
    import os
    import secrets

    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key
