"""Case references and tracking secrets.

Case references are meant to be read over the phone: ``DLA-2026-7K3M9QX`` (service prefix, year,
six characters of Crockford base 32, one check character that catches a mistyped or swapped
character), so a typo is caught before any lookup. The tracking secret is shown once, at
submission; only its SHA-256 is stored.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


def _check_char(body: str) -> str:
    total = sum((i + 1) * _ALPHABET.index(c) for i, c in enumerate(body))
    return _ALPHABET[total % 31]


def new_reference(prefix: str, year: int) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return f"{prefix}-{year}-{body}{_check_char(body)}"


def reference_is_well_formed(reference: str) -> bool:
    """True when the reference has the right shape and check character (before any lookup)."""
    parts = reference.upper().split("-")
    if len(parts) != 3 or len(parts[2]) != 7 or any(c not in _ALPHABET for c in parts[2]):
        return False
    return _check_char(parts[2][:6]) == parts[2][6]


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    return stored_hash is not None and hmac.compare_digest(secret_hash(secret), stored_hash)
