"""Encryption at rest for personal data: AES-256-GCM with named data keys, rotation, and AAD.

Law 09-08 (art. 23) asks for protection against unauthorised access; a CNIE number or a cause of
death must not be readable by whoever gets a database dump or a backup. The hub stores such
values as tokens made by a `KeyRing`::

    ring = KeyRing.load_or_create(settings.keys_dir / DATA_KEYS_FILE)   # once, at start-up
    token = ring.encrypt(b"AB123456", context=b"case:DLA-2026-7K3M9Q/holder.cnie")
    ring.decrypt(token, context=b"case:DLA-2026-7K3M9Q/holder.cnie")    # b"AB123456"

    doc = ring.encrypt_fields(payload, ["holder.cnie", "deceased.cause_of_death"],
                              context=b"case:RR-2026-000123")

Token format: ``enc:v1:<key_id>:<base64url(nonce[12] || ciphertext || tag[16])>``. The
``context`` is authenticated (AES-GCM additional data) together with the version and key id, so
a ciphertext copied to another row or field does not decrypt: use the case reference plus the
field path. `encrypt_fields` adds the path itself.

Key ring file (``data-keys.json`` in the keys directory, 0600, never committed)::

    {"version": 1, "active": "k20261129-3fa2c1d0",
     "keys": [{"id": "k20261129-3fa2c1d0", "key": "<base64 32 bytes>", "created_at": "..."}]}

Rotation: `KeyRing.rotate` adds a key and makes it active; old keys stay for decryption;
`needs_rotation` tells which tokens to re-encrypt (`reencrypt`), and `retire` removes a key once
nothing uses it. A process that meets a key id it does not know reloads the file once (another
process rotated), so a rotation needs no restart.

Files (attachments: death certificates, licence scans) use `encrypt_file` / `decrypt_file`: a
chunked stream (64 KiB chunks, STREAM construction: per-chunk nonce = random prefix || counter ||
last-chunk flag), so size is unbounded, memory is not, and truncation, reordering or splicing
of chunks is detected.
"""
from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
import secrets
import struct
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.envelope import canonical_json, parse_json
from hub.errors import ConfigurationError, InvalidMessage, SignatureInvalid

DATA_KEYS_FILE = "data-keys.json"
TOKEN_PREFIX = "enc:v1:"
FILE_MAGIC = b"HUBENC1\x00"
DEFAULT_CHUNK = 64 * 1024
_NONCE = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAG = 16


def _failed(what: str) -> SignatureInvalid:
    # An AES-GCM tag is a MAC: failing it means altered data or the wrong context, exactly the
    # "signature does not cover what is used" case; the distinct code keeps dashboards clear.
    return SignatureInvalid(f"{what} failed authentication: altered, truncated, or read with the "
                            "wrong context", code="security.decrypt")


class KeyRing:
    """Named AES-256 data keys, one active. Load once per process and share (thread-safe)."""

    def __init__(self, keys: Mapping[str, bytes], active: str, *, path: Path | None = None,
                 created: Mapping[str, str] | None = None) -> None:
        if active not in keys:
            raise ConfigurationError(f"active data key {active!r} is not in the key ring")
        for key_id, key in keys.items():
            _check_id(key_id)
            if len(key) != 32:
                raise ConfigurationError(f"data key {key_id} is not 256 bits")
        self.path = path
        self._lock = threading.Lock()
        self._install(dict(keys), active, dict(created or {}))

    def _install(self, keys: dict[str, bytes], active: str, created: dict[str, str]) -> None:
        # Replaced wholesale, never mutated, so readers in other threads see one consistent state.
        self._keys = keys
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active
        self._created = created

    # -- construction and persistence ---------------------------------------------------------

    @classmethod
    def generate(cls, path: Path | None = None) -> "KeyRing":
        """A new ring with one fresh key; saved to ``path`` (which must not exist) if given."""
        key_id = _new_id()
        ring = cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id, path=path,
                   created={key_id: _now()})
        if path is not None:
            if Path(path).exists():
                raise ConfigurationError(f"{path} exists; refusing to overwrite a key ring")
            ring.save()
        return ring

    @classmethod
    def load(cls, path: Path) -> "KeyRing":
        path = Path(path)
        if not path.is_file():
            raise ConfigurationError(f"no data key ring at {path}: run `hub keys init`")
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(f"data key ring {path} is readable by other users; "
                                     "chmod 600 it")
        keys, active, created = _parse_ring(path)
        return cls(keys, active, path=path, created=created)

    @classmethod
    def load_or_create(cls, path: Path) -> "KeyRing":
        return cls.load(path) if Path(path).exists() else cls.generate(path)

    def save(self, path: Path | None = None) -> None:
        path = Path(path or self.path or "")
        if not path.name:
            raise ConfigurationError("the key ring has no file to be saved to")
        doc = {"version": 1, "active": self._active, "keys": [
            {"id": key_id, "key": base64.b64encode(key).decode("ascii"),
             "created_at": self._created.get(key_id, "")}
            for key_id, key in self._keys.items()]}
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: a crash leaves the old ring or the new one, never half
        self.path = path

    # -- keys ---------------------------------------------------------------------------------

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def rotate(self) -> str:
        """Add a new key, make it active, save the ring if it has a file; return the new id."""
        with self._lock:
            key_id = _new_id()
            keys = {**self._keys, key_id: AESGCM.generate_key(bit_length=256)}
            self._install(keys, key_id, {**self._created, key_id: _now()})
            if self.path is not None:
                self.save()
            return key_id

    def retire(self, key_id: str) -> None:
        """Forget a key (after `reencrypt` moved everything off it). The active key stays."""
        with self._lock:
            if key_id == self._active:
                raise ConfigurationError("the active data key cannot be retired; rotate first")
            if key_id not in self._keys:
                raise ConfigurationError(f"no data key {key_id!r} to retire")
            keys = {k: v for k, v in self._keys.items() if k != key_id}
            created = {k: v for k, v in self._created.items() if k != key_id}
            self._install(keys, self._active, created)
            if self.path is not None:
                self.save()

    def reload(self) -> bool:
        """Read the ring's file again (another process rotated or retired); True if it changed.

        Long-running processes call this now and then (`hub.store.privacy` does, throttled) so that
        they encrypt with the key made active elsewhere instead of the one they started with.
        """
        if self.path is None or not Path(self.path).is_file():
            return False
        with self._lock:
            keys, active, created = _parse_ring(Path(self.path))
            if keys == self._keys and active == self._active:
                return False
            self._install(keys, active, created)
            return True

    # -- values -------------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, context: bytes) -> str:
        """Encrypt with the active key; ``context`` must be given again to decrypt."""
        if not isinstance(plaintext, bytes) or not isinstance(context, bytes):
            raise ConfigurationError("encrypt takes bytes for plaintext and context")
        key_id, aead = self._active, self._aead[self._active]
        nonce = os.urandom(_NONCE)  # 96-bit random nonces: safe far beyond our volumes per key
        sealed = aead.encrypt(nonce, plaintext, _aad(key_id, context))
        data = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{TOKEN_PREFIX}{key_id}:{data}"

    def decrypt(self, token: str, *, context: bytes) -> bytes:
        key_id, blob = _split(token)
        aead = self._aead_for(key_id)
        try:
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], _aad(key_id, context))
        except InvalidTag:
            raise _failed("encrypted value") from None

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was made with another key than the active one."""
        return _split(token)[0] != self._active

    def reencrypt(self, token: str, *, context: bytes) -> str:
        """The same plaintext under the active key (unchanged if already so)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)

    def encrypt_json(self, value: Any, *, context: bytes) -> str:
        return self.encrypt(canonical_json(value), context=context)

    def decrypt_json(self, token: str, *, context: bytes) -> Any:
        return parse_json(self.decrypt(token, context=context), what="decrypted value")

    def encrypt_fields(self, doc: Mapping[str, Any], paths: Iterable[str], *,
                       context: bytes) -> dict[str, Any]:
        """A copy of ``doc`` with the values at ``paths`` replaced by tokens.

        Paths are dotted keys; ``*`` walks every item of a list (``children.*.cnie``). Absent or
        null values are left alone. Each value is bound to ``context`` and to its path.
        """
        return _map_fields(doc, paths, lambda value, path: self.encrypt_json(
            value, context=_field_context(context, path)))

    def decrypt_fields(self, doc: Mapping[str, Any], paths: Iterable[str], *,
                       context: bytes) -> dict[str, Any]:
        def open_(value: Any, path: str) -> Any:
            if not isinstance(value, str):
                raise InvalidMessage(f"field {path} is not an encrypted token")
            return self.decrypt_json(value, context=_field_context(context, path))
        return _map_fields(doc, paths, open_)

    # -- files --------------------------------------------------------------------------------

    def encrypt_file(self, src: BinaryIO | Path, dst: BinaryIO | Path, *, context: bytes,
                     chunk_size: int = DEFAULT_CHUNK) -> str:
        """Encrypt a stream chunk by chunk; return the key id used."""
        if not 1024 <= chunk_size <= 16 * 1024 * 1024:
            raise ConfigurationError("chunk_size must be between 1 KiB and 16 MiB")
        key_id, aead = self._active, self._aead[self._active]
        prefix = os.urandom(7)
        header = (FILE_MAGIC + bytes([len(key_id)]) + key_id.encode("ascii")
                  + struct.pack(">I", chunk_size) + prefix)
        aad = header + b"\x00" + context
        with _open_in(src) as fin, _open_out(dst) as fout:
            fout.write(header)
            counter = 0
            chunk = fin.read(chunk_size)
            while True:
                following = fin.read(chunk_size) if len(chunk) == chunk_size else b""
                last = not following
                sealed = aead.encrypt(_chunk_nonce(prefix, counter, last), chunk, aad)
                fout.write(struct.pack(">I", len(sealed)) + sealed)
                if last:
                    break
                chunk, counter = following, counter + 1
        return key_id

    def decrypt_file(self, src: BinaryIO | Path, dst: BinaryIO | Path, *, context: bytes) -> None:
        """Decrypt a stream made by `encrypt_file`. A path ``dst`` appears only if all is valid."""
        with _open_in(src) as fin, _open_out(dst) as fout:
            magic = fin.read(len(FILE_MAGIC))
            if magic != FILE_MAGIC:
                raise InvalidMessage("not a file encrypted by the hub (bad magic)")
            id_len = fin.read(1)
            if not id_len:
                raise _failed("encrypted file")
            key_id = fin.read(id_len[0] if id_len else 0).decode("ascii", "replace")
            size_and_prefix = fin.read(11)
            if len(size_and_prefix) != 11:
                raise _failed("encrypted file")
            chunk_size = struct.unpack(">I", size_and_prefix[:4])[0]
            prefix = size_and_prefix[4:]
            aead = self._aead_for(key_id)
            aad = magic + id_len + key_id.encode("ascii") + size_and_prefix + b"\x00" + context
            counter = 0
            length = fin.read(4)
            while True:
                if len(length) != 4:
                    raise _failed("encrypted file")  # truncated before the last chunk
                size = struct.unpack(">I", length)[0]
                if size < _TAG or size > chunk_size + _TAG:
                    raise _failed("encrypted file")
                sealed = fin.read(size)
                if len(sealed) != size:
                    raise _failed("encrypted file")
                length = fin.read(4)
                last = not length
                try:
                    fout.write(aead.decrypt(_chunk_nonce(prefix, counter, last), sealed, aad))
                except InvalidTag:
                    raise _failed("encrypted file") from None
                if last:
                    return
                counter += 1

    # -- internals ----------------------------------------------------------------------------

    def _aead_for(self, key_id: str) -> AESGCM:
        aead = self._aead.get(key_id)
        if aead is None and self.path is not None and Path(self.path).is_file():
            # Another process may have rotated: read the file once before giving up.
            with self._lock:
                keys, active, created = _parse_ring(Path(self.path))
                if key_id in keys:
                    self._install(keys, active, created)
            aead = self._aead.get(key_id)
        if aead is None:
            raise ConfigurationError(f"data key {key_id!r} is not in the key ring (retired, or a "
                                     "ring from another installation)")
        return aead


def _aad(key_id: str, context: bytes) -> bytes:
    return TOKEN_PREFIX.encode("ascii") + key_id.encode("ascii") + b"\x00" + context


def _field_context(context: bytes, path: str) -> bytes:
    return context + b"\x00" + path.encode("utf-8")


def _split(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise InvalidMessage("not an encrypted value (expected 'enc:v1:<key>:<data>')")
    key_id, sep, data = token[len(TOKEN_PREFIX):].partition(":")
    if not sep or not key_id:
        raise InvalidMessage("encrypted value has no key id")
    try:
        blob = base64.urlsafe_b64decode(data.encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise InvalidMessage("encrypted value is not base64url") from None
    if len(blob) < _NONCE + _TAG:
        raise _failed("encrypted value")
    return key_id, blob


def _chunk_nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise ConfigurationError("file too large for one encryption stream")
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def _map_fields(doc: Mapping[str, Any], paths: Iterable[str], fn: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(doc))  # the caller's document is left untouched

    def walk(node: Any, parts: list[str], path: str) -> None:
        head, rest = parts[0], parts[1:]
        if head == "*":
            if isinstance(node, list):
                for i, item in enumerate(node):
                    if rest:
                        walk(item, rest, path)
                    elif item is not None:
                        node[i] = fn(item, path)
            return
        if not isinstance(node, dict) or node.get(head) is None:
            return
        if rest:
            walk(node[head], rest, path)
        else:
            node[head] = fn(node[head], path)

    for path in paths:
        if not path or any(not p for p in path.split(".")):
            raise ConfigurationError(f"invalid field path {path!r}")
        walk(out, path.split("."), path)
    return out


class _open_in:
    """Open a path for reading, or pass an open binary stream through (without closing it)."""

    def __init__(self, target: BinaryIO | Path) -> None:
        self.target = target
        self.fh: Any = None

    def __enter__(self) -> BinaryIO:
        if isinstance(self.target, (str, Path)):
            self.fh = open(self.target, "rb")
            return self.fh  # type: ignore[no-any-return]
        return self.target

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()


class _open_out:
    """Write to a stream, or to a path through a 0600 temp file renamed only on success."""

    def __init__(self, target: BinaryIO | Path) -> None:
        self.target = target
        self.tmp: Path | None = None
        self.fh: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if isinstance(self.target, (str, Path)):
            path = Path(self.target)
            self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.fh = os.fdopen(fd, "wb")
            return self.fh  # type: ignore[return-value]
        return self.target

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self.fh is None:
            return
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, Path(self.target))  # type: ignore[arg-type]
        else:
            os.unlink(self.tmp)  # type: ignore[arg-type]


def _parse_ring(path: Path) -> tuple[dict[str, bytes], str, dict[str, str]]:
    try:
        doc = json.loads(path.read_text("utf-8"))
        keys = {entry["id"]: base64.b64decode(entry["key"], validate=True) for entry in doc["keys"]}
        created = {entry["id"]: entry.get("created_at", "") for entry in doc["keys"]}
        active = doc["active"]
        if doc.get("version") != 1:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ConfigurationError(f"data key ring {path} is unreadable: {exc}") from None
    return keys, active, created


def _new_id() -> str:
    return f"k{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise ConfigurationError(f"invalid data key id {key_id!r}")
