"""Encryption at rest of personal data: one seam between the store and the data keys.

The database never holds identity numbers, names, addresses, contacts, birth dates or health data
in clear (Law 09-08, art. 23). Where they would be, it holds AES-256-GCM tokens made with the
hub's data-key ring (`security.fieldcrypt.KeyRing`, ``HubKeys.data``), each bound to its row by
an authenticated context, and each row records the id of the key that sealed it:

    table            column     context                  key id column   how
    cases            data       case:<reference>         data_key        `Encrypted` attribute
    exchanges        reply      exchange:<id>            reply_key       `Encrypted` attribute
    appointments     holder     appointment:<id>         holder_key      `Encrypted` attribute
    outbox           body       message:<message_id>     body_key        `encrypt_body` / `decrypt_body`
    dead_letters     body       message:<message_id>     body_key        `encrypt_body` / `decrypt_body`
    attachments      (files)    <attachment id>          data_key        `hub.store.attachments`

Everything else holds no personal data by construction: case history and notifications hold
statuses and reason codes, exchanges and audit records hold digests, errors are redacted
(`hub.masking.redact`) before they are stored.

Finding a person without decrypting every case: `Privacy.identities` computes blind-index
digests (HMAC-SHA256 under ``HubKeys.index``, `hub.keyset.BlindIndex`) of the identity documents a
case names; they are written to ``case_identities`` with the sealed case, and `hub.services.checks`
looks records up by digest. Equal numbers (after `hub.keyset.normalize_document`) have equal
digests; without the index key a digest says nothing.

Sealing happens at flush (a ``before_flush`` hook on every session): code assigns ``case.data``
in clear and the hook seals it with the keys of the session's `hub.store.Store`
(``store.privacy``, set by `hub.runtime.Hub`). A session without keys cannot write personal data:
the flush fails instead of writing clear values.

Rotation: processes re-read the key ring file at most every ``reload_interval`` seconds, so a key
made active by ``hub keys rotate`` in another process is used for new rows soon after; the
re-encryption job (`hub.store.rekey`) moves existing rows by their key id columns.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterator, Mapping

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import ConfigurationError, InvalidMessage
from hub.keyset import BlindIndex
from hub.store.encrypted import CIPHER_OF_LOADED_ROW, NOT_STORED, PENDING, encrypted_attributes
from hub.store.bulk import append_row
from hub.store.models import CaseIdentity, CaseRow
from security.fieldcrypt import TOKEN_PREFIX, KeyRing

#: Identity documents indexed for lookups: the key naming them in a case -> the kind of document.
#: (Licences are named ``licence.number``; see `_document_kind`.)
INDEXED_DOCUMENTS = {"cnie": "cnie", "passport_number": "passport",
                     "previous_passport_number": "passport"}


class Privacy:
    """The hub's data keys as the store uses them. One per process; thread-safe."""

    def __init__(self, ring: KeyRing, index: BlindIndex, *, reload_interval: float = 5.0) -> None:
        self.ring = ring
        self.index = index
        self.reload_interval = reload_interval
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, keys: Any, **options: Any) -> "Privacy":
        """From `hub.keyset.HubKeys`."""
        return cls(keys.data, keys.index, **options)

    # -- keys --------------------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        self._fresh()
        return self.ring.active_key_id

    def _fresh(self) -> None:
        # Another process may have rotated: pick up its active key within reload_interval.
        now = time.monotonic()
        if now - self._checked < self.reload_interval:
            return
        with self._lock:
            if now - self._checked < self.reload_interval:
                return
            self._checked = now
            self.ring.reload()

    # -- JSON values (columns behind `Encrypted`) ---------------------------------------------------

    def encrypt_json(self, value: Any, *, context: str) -> tuple[Any, str]:
        """``({"enc": token}, key id)``; ``None`` stays ``None`` (but is recorded under the active
        key, so the re-encryption job does not visit it again)."""
        self._fresh()
        if value is None:
            return None, self.ring.active_key_id
        token = self.ring.encrypt_json(value, context=context.encode("utf-8"))
        return {"enc": token}, token_key_id(token)

    def decrypt_json(self, stored: Any, *, context: str) -> Any:
        if not isinstance(stored, Mapping) or not isinstance(stored.get("enc"), str):
            raise InvalidMessage(f"stored value for {context} is not sealed")
        return self.ring.decrypt_json(stored["enc"], context=context.encode("utf-8"))

    # -- message bodies (outbox, dead letters) ----------------------------------------------------

    def encrypt_body(self, body: bytes, *, message_id: str) -> tuple[bytes, str]:
        self._fresh()
        token = self.ring.encrypt(body, context=_message_context(message_id))
        return token.encode("ascii"), token_key_id(token)

    def decrypt_body(self, body: bytes, key_id: str | None, *, message_id: str) -> bytes:
        """The plain bytes of a stored body (``key_id`` None: stored in clear, legacy)."""
        if key_id is None:
            return bytes(body)
        return self.ring.decrypt(bytes(body).decode("ascii"), context=_message_context(message_id))

    # -- blind index -------------------------------------------------------------------------

    def digest(self, kind: str, number: str) -> str:
        return self.index.digest(kind, number)

    def identities(self, data: Any) -> dict[str, str]:
        """``{path: digest}`` for every identity document named in a case's data."""
        return {path: self.digest(kind, number) for path, kind, number in _documents(data)}


def cases_with_document(session: Session, kind: str, number: str) -> list[str]:
    """References of the cases naming this identity document (``kind``: cnie, passport,
    licence), found by blind-index digest: e.g. a back-office search by CNIE."""
    digest = privacy_of(session).digest(kind, number)
    return sorted(set(session.scalars(
        select(CaseRow.reference).join(CaseIdentity, CaseIdentity.case_id == CaseRow.id)
        .where(CaseIdentity.digest == digest))))


def token_key_id(token: str) -> str:
    return token[len(TOKEN_PREFIX):].split(":", 1)[0]


def _message_context(message_id: str) -> bytes:
    return f"message:{message_id}".encode("utf-8")


def _document_kind(path: str, key: str) -> str | None:
    if key in INDEXED_DOCUMENTS:
        return INDEXED_DOCUMENTS[key]
    if key == "number" and path.rsplit(".", 2)[-2:-1] == ["licence"]:
        return "licence"
    return None


def _documents(node: Any, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}{key}"
            kind = _document_kind(path, str(key))
            if kind is not None and isinstance(value, str) and value.strip():
                yield path, kind, value
            elif isinstance(value, (Mapping, list)):
                yield from _documents(value, f"{path}.")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _documents(item, f"{prefix}{i}.")


# -- the session seam --------------------------------------------------------------------------


def privacy_of(session: Session) -> Privacy:
    store = session.info.get("store")
    privacy = getattr(store, "privacy", None)
    if privacy is None:
        raise ConfigurationError("this store has no data keys, so it cannot read or write "
                                 "personal data (build the store through hub.runtime.Hub, or "
                                 "set Store.privacy)")
    return privacy  # type: ignore[no-any-return]


def attach(sessions: sessionmaker) -> None:
    """Encrypt and decrypt personal values in the sessions of ``sessions`` (a store's own
    factory: `hub.store.Store` calls this). Other SQLAlchemy sessions of the process are left
    alone."""
    event.listen(sessions, "before_flush", _encrypt_pending)
    event.listen(sessions, "loaded_as_persistent", _remember_keys)


def _remember_keys(session: Session, row: Any) -> None:
    # A row read after its session closed still finds the keys of the store it came from.
    if encrypted_attributes(type(row)):
        row.__dict__[CIPHER_OF_LOADED_ROW] = getattr(session.info.get("store"), "privacy", None)


def _encrypt_pending(session: Session, _context: Any, _instances: Any) -> None:
    """Seal every `Encrypted` value assigned since the last flush; re-index changed cases."""
    for row in list(session.new) + list(session.dirty):
        pending = row.__dict__.get(PENDING)
        if not pending:
            continue
        privacy = privacy_of(session)
        attributes = encrypted_attributes(type(row))
        reindex = False
        for name in sorted(pending):
            attribute = attributes[name]
            if name == "data" and hasattr(type(row), "identities"):
                before = attribute.stored_before(row)
                reindex = (row in session.new or before is NOT_STORED
                           or privacy.identities(privacy.decrypt_json(
                               before, context=attribute.context(row)) or {})
                           != privacy.identities(attribute.plain_pending(row) or {}))
            stored, key_id = privacy.encrypt_json(attribute.plain_pending(row),
                                                  context=attribute.context(row))
            attribute.record_stored(row, stored, key_id)
        if reindex:
            _index_case(session, privacy, row)
        pending.clear()


def index_case(session: Session, case: Any) -> None:
    """Write the blind-index digests of a case inserted with a plain statement
    (`hub.store.bulk.insert_now`): the flush hook only sees cases the unit of work inserts."""
    for path, digest in privacy_of(session).identities(case.data or {}).items():
        append_row(session, CaseIdentity, {"case_id": case.id, "path": path, "digest": digest})


def _index_case(session: Session, privacy: Privacy, case: Any) -> None:
    if case not in session.new:
        with session.no_autoflush:
            session.execute(delete(CaseIdentity).where(CaseIdentity.case_id == case.id))
    for path, digest in privacy.identities(case.data or {}).items():
        session.add(CaseIdentity(case_id=case.id, path=path, digest=digest))
