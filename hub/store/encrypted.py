"""`Encrypted`: a model attribute whose value is stored encrypted, read and assigned in clear.

    class CaseRow(Base):
        encrypted_data: Mapped[dict] = mapped_column("data", JSON)     # {"enc": "enc:v1:..."}
        data_key: Mapped[str | None] = mapped_column(String(64))    # id of the data key
        data = Encrypted("encrypted_data", "data_key", lambda row: f"case:{row.reference}")

    case.data = {...}      # kept in memory; encrypted by the session at flush (hub.store.privacy)
    case.data["person"]    # decrypted on first read (once per loaded row), then cached

Code that used the plain column keeps using the plain name; the database only ever sees the
token. Encryption happens in a ``before_flush`` hook (`hub.store.privacy`), with the data keys of
the session's `hub.store.Store`, because the row's context (its reference) and the keys are
known there and not when the attribute is assigned. A NULL key column with a value means a row
written before encryption at rest (clear): it is read as it is, and `hub keys rotate` encrypts it.

Reading needs the keys too: the descriptor asks the row's session for its store's cipher, or,
for a row read after its session closed, the cipher the store's load hook left on the row
(`CIPHER_OF_LOADED_ROW`). Both are set by `hub.store.privacy.attach`, which the store calls on
its own session factory: this module imports nothing of the store.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from sqlalchemy.orm import object_session

from hub.errors import ConfigurationError


class ValueCipher(Protocol):
    """What reading an `Encrypted` value needs: `hub.store.privacy.Privacy` is one."""

    def decrypt_json(self, stored: Any, *, context: str) -> Any: ...


#: Row attribute holding the cipher of the store a row was loaded from (set at load).
CIPHER_OF_LOADED_ROW = "_encrypted_privacy"

#: Per-instance set of `Encrypted` names assigned since the last flush.
PENDING = "_encrypted_pending"
_NOT_STORED = object()
#: What `Encrypted.stored_before` answers when there was no stored value to compare with.
NOT_STORED = _NOT_STORED


class Encrypted:
    def __init__(self, column: str, key_column: str, context: Callable[[Any], str]) -> None:
        self.column = column
        self.key_column = key_column
        self.context = context
        self.name = ""
        self.cache = ""
        self.before = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.cache = f"_encrypted_plain_{name}"
        self.before = f"_encrypted_before_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        stored = getattr(obj, self.column)
        cached = obj.__dict__.get(self.cache)
        # The cache is valid for the stored token it was made from (a refresh that loads another
        # token, e.g. after a rotation elsewhere, misses it).
        if cached is not None and (cached[0] is _NOT_STORED or cached[0] == stored):
            return cached[1]
        if stored is None:
            return None
        if getattr(obj, self.key_column) is None:
            return stored  # legacy row in clear, until re-encryption encrypts it
        value = cipher_of(obj).decrypt_json(stored, context=self.context(obj))
        obj.__dict__[self.cache] = (stored, value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        previous = obj.__dict__.get(self.cache)
        if previous is not None and previous[0] is not _NOT_STORED:
            # The token as stored, before this transaction's first assignment (immutable, unlike
            # the plain value code may have changed in place): the flush hook compares with it
            # (a case's identity digests need rewriting only if they changed).
            obj.__dict__.setdefault(self.before, previous[0])
        obj.__dict__[self.cache] = (_NOT_STORED, value)
        obj.__dict__.setdefault(PENDING, set()).add(self.name)
        # Clearing the column marks the row dirty, so the flush hook sees it; a flush that does
        # not encrypt (no keys) fails on NOT NULL rather than writing clear data.
        setattr(obj, self.column, None)

    def stored_before(self, obj: Any) -> Any:
        """The stored token before the assignments now pending (``NOT_STORED`` for a new
        object, or one whose stored value was not read before it was assigned)."""
        return obj.__dict__.get(self.before, _NOT_STORED)

    def record_stored(self, obj: Any, stored: Any, key_id: str | None) -> None:
        """Record what the flush hook wrote for the value assigned last."""
        value = obj.__dict__[self.cache][1]
        setattr(obj, self.column, stored)
        setattr(obj, self.key_column, key_id)
        obj.__dict__[self.cache] = (stored, value)
        obj.__dict__.pop(self.before, None)

    def plain_pending(self, obj: Any) -> Any:
        return obj.__dict__[self.cache][1]


def cipher_of(row: Any) -> ValueCipher:
    """The cipher of the store ``row`` belongs to (its session's, or the one it was loaded with
    when read after its session closed)."""
    session = object_session(row)
    if session is not None:
        cipher = getattr(session.info.get("store"), "privacy", None)
    else:
        cipher = row.__dict__.get(CIPHER_OF_LOADED_ROW)
    if cipher is None:
        raise ConfigurationError(f"an encrypted value of {type(row).__name__} is read without"
                                 " data keys (build the store through hub.runtime.Hub, or set"
                                 " Store.privacy)")
    return cipher  # type: ignore[no-any-return]


def encrypted_attributes(cls: type) -> dict[str, Encrypted]:
    found = _BY_CLASS.get(cls)
    if found is None:
        found = _BY_CLASS[cls] = {name: value for klass in reversed(cls.__mro__)
                                  for name, value in vars(klass).items()
                                  if isinstance(value, Encrypted)}
    return found


_BY_CLASS: dict[type, dict[str, Encrypted]] = {}
