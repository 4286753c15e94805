"""The hub's keys at run time: loaded once at start, then handed to every part that needs them.

`HubKeys.load` reads the keys directory (``HUB_KEYS_DIR``, laid out by `security.pki`) once:
the hub's signing key and certificate, every party's certificates, the CA and its CRL (as a
`security.trust.TrustStore` with the pins of ``hub.config``), the data-key ring that encrypts
personal fields (`security.fieldcrypt.KeyRing`) and the key of the blind index used to find a
person without decrypting every case. Nothing here is parsed again per message::

    keys = HubKeys.load(settings)        # ConfigurationError naming `hub keys init` if absent
    keys.signer                          # signs envelopes, checkpoints, agency messages
    keys.trust                           # verifies the hub's and the agencies' signatures
    keys.data                            # encrypts and decrypts personal fields

`init_keys` is what ``hub keys init`` runs: the development PKI, the data-key ring and the blind
index key, idempotently, for the parties it is given (the command, the demo and the test
fixtures give the hub and every packaged agency: `connectors.registry.key_parties`). The demo and
the test fixtures call it on their throw-away directory, so the quick start needs no manual
step; a production start without keys fails instead, with a message naming the command.
`add_party` is ``hub keys add PARTY``: an agency packaged after the keys were made gets its
credentials from the existing CA, and nothing else changes.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from hub.config import SIGNATURE_ALGORITHMS, Settings
from hub.errors import ConfigurationError
from security.fieldcrypt import DATA_KEYS_FILE, KeyRing
from security.keys import KeyStore, Signer
from security.pki import DEFAULT_PARTIES, PkiLayout, check_party, init_pki
from security.trust import TrustStore

#: The key of the blind index (HMAC-SHA256 of normalized document numbers), 32 random bytes hex.
INDEX_KEY_FILE = "blind-index.key"
_HINT = "run `hub keys init` (or point HUB_KEYS_DIR at the keys)"


@dataclass(frozen=True)
class BlindIndex:
    """Keyed digests of identity document numbers: equal numbers, equal digests; nothing else.

    The database stores `digest` beside the encrypted case so that "every case of this CNIE" is
    an indexed lookup instead of decrypting every row; without the key a digest says nothing
    (a CNIE has few enough values to be brute-forced through a plain hash, not through an HMAC).
    """

    key: bytes

    def digest(self, kind: str, number: str) -> str:
        return hmac.new(self.key, f"{kind}:{normalize_document(number)}".encode("utf-8"),
                        hashlib.sha256).hexdigest()


def normalize_document(number: str) -> str:
    """Upper case, no spaces, dots or dashes: ``ab-123 456`` and ``AB123456`` are one number."""
    return "".join(ch for ch in str(number).upper() if ch.isalnum())


@dataclass(frozen=True)
class HubKeys:
    """Everything secret or trusted the hub process uses, loaded once."""

    store: KeyStore
    signer: Signer
    trust: TrustStore
    data: KeyRing
    index: BlindIndex

    @classmethod
    def load(cls, settings: Settings) -> "HubKeys":
        keys_dir = settings.keys_dir
        if not (keys_dir / "pki.json").is_file():
            raise ConfigurationError(f"no keys in {keys_dir}: {_HINT}")
        store = KeyStore.load(keys_dir, own=["hub"])
        signer = store.signer("hub")
        if signer.key_type != settings.key_algorithm:
            raise ConfigurationError(
                f"HUB_SIGNATURE_ALGORITHM is {settings.signature_algorithm} but the keys in "
                f"{keys_dir} are {signer.key_type.upper()}: run `hub keys init --force "
                f"--algorithm {settings.key_algorithm}` (development) or install matching keys")
        trust = store.trust_store(pins=settings.agency_signing_pins,
                                  tls_pins=settings.agency_tls_pins)
        # A revoked or expired own certificate would make every message the hub seals unreadable
        # by the next consumer: refuse to start instead of parking everything.
        trust.verify_certificate("hub", signer.cert)
        data = KeyRing.load(keys_dir / DATA_KEYS_FILE)
        return cls(store=store, signer=signer, trust=trust, data=data,
                   index=BlindIndex(_read_index_key(keys_dir / INDEX_KEY_FILE)))


def init_keys(keys_dir: Path, *, algorithm: str = "ec", force: bool = False,
              parties: Iterable[str] = DEFAULT_PARTIES) -> PkiLayout:
    """Create (or complete) the development PKI, the data-key ring and the blind index key.

    Idempotent: what exists is kept. ``force`` replaces the PKI (a new CA and new certificates)
    but never the data keys or the index key: they decrypt and find data already stored.
    """
    if algorithm not in SIGNATURE_ALGORITHMS.values():
        raise ConfigurationError(f"unknown key algorithm {algorithm!r}: use 'ec' or 'rsa'")
    keys_dir = Path(keys_dir)
    saved = _keep_data_keys(keys_dir) if force else {}
    layout = init_pki(keys_dir, list(parties), algorithm=algorithm,  # type: ignore[arg-type]
                      force=force)
    for name, content in saved.items():
        _write_private(keys_dir / name, content)
    KeyRing.load_or_create(keys_dir / DATA_KEYS_FILE)
    index = keys_dir / INDEX_KEY_FILE
    if not index.exists():
        _write_private(index, secrets.token_hex(32).encode("ascii"))
    return layout


def add_party(keys_dir: Path, party: str) -> PkiLayout:
    """Give ``party`` (an agency packaged after the keys were made) its signing and TLS
    credentials, issued by the existing CA with the PKI's algorithm; what exists is kept, so
    running it twice changes nothing. The hub's certificates, the CA and the data keys are
    untouched: running processes go on, and trust the new party once they reload the keys."""
    keys_dir = Path(keys_dir)
    if not (keys_dir / "pki.json").is_file():
        raise ConfigurationError(f"no keys in {keys_dir}: {_HINT}")
    layout = PkiLayout.read(keys_dir)
    return init_pki(keys_dir, [*layout.parties, check_party(party)], algorithm=layout.algorithm)


def ensure_dev_keys(settings: Settings, parties: Iterable[str] = DEFAULT_PARTIES) -> PkiLayout:
    """`init_keys` for the settings' keys directory and algorithm (demo, tests)."""
    return init_keys(settings.keys_dir, algorithm=settings.key_algorithm, parties=parties)


def _keep_data_keys(keys_dir: Path) -> dict[str, bytes]:
    kept = {}
    for name in (DATA_KEYS_FILE, INDEX_KEY_FILE):
        path = keys_dir / name
        if path.is_file():
            kept[name] = path.read_bytes()
    return kept


def _read_index_key(path: Path) -> bytes:
    if not path.is_file():
        raise ConfigurationError(f"no blind index key at {path}: {_HINT}")
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"blind index key {path} is readable by other users; chmod 600 it")
    try:
        key = bytes.fromhex(path.read_text("ascii").strip())
    except ValueError:
        raise ConfigurationError(f"{path} is not a hex key") from None
    if len(key) != 32:
        raise ConfigurationError(f"{path} is not a 256-bit key")
    return key


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


#: The deployment's operator token for the console and the admin API (`hub.web.admin.auth`),
#: used when ``HUB_ADMIN_TOKEN`` is not set.
OPERATOR_TOKEN_FILE = "admin-token"


def init_operator_token(keys_dir: Path) -> Path:
    """Create the operator token file in ``keys_dir`` (mode 0600) unless it exists; its path.

    ``hub keys init`` runs this, so the token is there before the first sign-in to the console
    (the console would otherwise create it at the first attempt, unseen)."""
    path = Path(keys_dir) / OPERATOR_TOKEN_FILE
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32).encode("ascii"))
    return path


def load_or_create_secret(path: Path) -> bytes:
    """A 256-bit secret kept at ``path`` (hex, mode 0600), created at first use.

    For secrets that only this deployment needs and that may be regenerated without loss, such
    as the admin console's session key (regenerating it only signs everyone out).
    """
    if path.is_file():
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(f"{path} is readable by other users; chmod 600 it")
        return bytes.fromhex(path.read_text("ascii").strip())
    key = secrets.token_bytes(32)
    _write_private(path, key.hex().encode("ascii"))
    return key
