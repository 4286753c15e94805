"""Attachments: documents of a case, checked by content, stored encrypted outside the database.

A document is accepted only if its bytes are a PDF, a JPEG or a PNG (magic bytes; the file name
and the declared type prove nothing) and not larger than ``HUB_MAX_ATTACHMENT_BYTES``. Its bytes
are encrypted into a file under ``HUB_ATTACHMENTS_DIR``; its row (`AttachmentRow`) keeps only
metadata and the SHA-256 of the content. Cases, envelopes and agencies see the reference
(``att_...``) only: the broker carries the claim check, never the document.

    store = AttachmentStore(settings.attachments_dir, cipher, max_bytes=5 << 20)
    with hub.store.transaction() as session:
        row = store.put(session, pdf_bytes, declared_type="application/pdf", uploaded_by="applicant")
    ...
    with hub.store.transaction() as session:
        store.claim(session, case, case.data)          # at submission: every document field
    content, content_type = store.read(session, row.id, case_id=case.id)

Files are written before the row commits; a file whose row never committed is an orphan that
`purge` removes, together with uploads no request claimed in time.
"""
from __future__ import annotations

import hashlib
import io
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol

from sqlalchemy import bindparam, case as case_when, select, update
from sqlalchemy.orm import Session

from hub.store import Store
from hub.errors import (ConfigurationError, MessageTooLarge, SchemaViolation, UnknownRoute,
                        UnsupportedMediaType)
from hub.store.models import AttachmentRow, CaseRow, utcnow

#: Accepted types, by their leading bytes.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
REFERENCE_PREFIX = "att_"


def detect_type(content: bytes) -> str | None:
    """The content type the bytes really are, or None when not an accepted kind."""
    for magic, content_type in MAGIC:
        if content.startswith(magic):
            return content_type
    return None


class FileCipher(Protocol):
    """Encrypts document bytes bound to a context (the attachment reference)."""

    def encrypt(self, content: bytes, *, context: bytes) -> bytes: ...

    def decrypt(self, blob: bytes, *, context: bytes) -> bytes: ...


def document_fields(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(field path, reference)`` of ``data`` whose value is an attachment reference."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, str) and value.startswith(REFERENCE_PREFIX):
            yield path, value
        elif isinstance(value, Mapping):
            yield from document_fields(value, f"{path}.")


@dataclass(frozen=True)
class StoredDocument:
    reference: str
    content_type: str
    size: int
    sha256: str


class AttachmentStore:
    """Stores, claims, reads and purges documents. One per hub; thread-safe (no state)."""

    def __init__(self, root: Path, cipher: FileCipher, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.cipher = cipher
        self.max_bytes = max_bytes

    # -- writing -------------------------------------------------------------------------------

    def check(self, content: bytes, declared_type: str | None = None) -> str:
        """The content's type, after checking size and kind; raises `MessageTooLarge` (413) or
        `UnsupportedMediaType` (415)."""
        if len(content) > self.max_bytes:
            raise MessageTooLarge(f"a document may not exceed {self.max_bytes} bytes",
                                  limit=self.max_bytes)
        actual = detect_type(content)
        if actual is None:
            raise UnsupportedMediaType("the document is not a PDF, JPEG or PNG file",
                                       code="document.unsupported_type")
        if declared_type and declared_type not in (actual, "application/octet-stream"):
            raise UnsupportedMediaType(f"the content is {actual}, not {declared_type}",
                                       code="document.type_mismatch")
        return actual

    def put(self, session: Session, content: bytes, *, declared_type: str | None,
            uploaded_by: str, kind: str = "applicant", case_id: str | None = None,
            field: str | None = None) -> AttachmentRow:
        """Check and store a document; its row is added to ``session`` (the caller commits)."""
        content_type = self.check(content, declared_type)
        reference = REFERENCE_PREFIX + secrets.token_urlsafe(24)
        key = f"{reference[4:6]}/{reference}.bin"
        blob = self.cipher.encrypt(content, context=reference.encode())
        self._write(key, blob)
        row = AttachmentRow(
            id=reference, case_id=case_id, kind=kind, field=field, content_type=content_type,
            data_key=file_key_id(blob),
            size=len(content), sha256=hashlib.sha256(content).hexdigest(), storage_key=key,
            uploaded_by=uploaded_by, created_at=utcnow(),
            claimed_at=utcnow() if case_id else None)
        session.add(row)
        return row

    def _write(self, key: str, blob: bytes) -> None:
        target = self.root / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half a file.
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            raise ConfigurationError(f"cannot write to the attachments directory: {exc}") \
                from None

    # -- claiming ------------------------------------------------------------------------------

    @staticmethod
    def rows(session: Session, data: Mapping[str, Any]) -> dict[str, Any]:
        """What the store knows of every document ``data`` names (id, kind, case), in one
        query: plain rows, read once and used by both `problems` and `claim`."""
        references = {reference for _, reference in document_fields(data)}
        if not references:
            return {}
        return {row.id: row for row in session.execute(
            select(AttachmentRow.id, AttachmentRow.kind, AttachmentRow.case_id)
            .where(AttachmentRow.id.in_(sorted(references))))}

    def problems(self, session: Session, data: Mapping[str, Any], *,
                 case_id: str | None = None,
                 rows: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
        """Field errors for document references that do not exist or belong to another case."""
        rows = self.rows(session, data) if rows is None else rows
        errors = []
        for field, reference in document_fields(data):
            row = rows.get(reference)
            if row is None or row.kind != "applicant" or \
                    (row.case_id is not None and row.case_id != case_id):
                errors.append({"field": field, "code": "document_unknown",
                               "message": "no uploaded document has this reference"})
        return errors

    def claim(self, session: Session, case: CaseRow, data: Mapping[str, Any], *,
              rows: Mapping[str, Any] | None = None) -> None:
        """Bind every document ``data`` names to ``case``; raises `SchemaViolation` (422) for
        references that are unknown or another case's, before changing anything. ``rows``: what
        `rows` read in this transaction, if the caller has it."""
        rows = self.rows(session, data) if rows is None else rows
        errors = self.problems(session, data, case_id=case.id, rows=rows)
        if errors:
            raise SchemaViolation("some documents are not available", errors=errors)
        now = utcnow()
        claims = [{"b_id": reference, "b_field": field,
                   "b_claimed": rows[reference].case_id is None}
                  for field, reference in document_fields(data)]
        if claims:
            # One statement for every document; a document claimed earlier keeps its claim.
            table = AttachmentRow.__table__
            session.connection().execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    case_id=case.id, field=bindparam("b_field"),
                    claimed_at=case_when((bindparam("b_claimed"), now),
                                         else_=table.c.claimed_at)), claims)

    # -- reading -------------------------------------------------------------------------------

    def read(self, session: Session, reference: str, *, case_id: str) -> tuple[bytes, str]:
        """The plain content and type of a document of case ``case_id`` (claim check)."""
        row = session.get(AttachmentRow, reference)
        if row is None or row.case_id != case_id:
            raise UnknownRoute("no such document for this case")
        try:
            blob = (self.root / row.storage_key).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"document {reference} is missing from storage: {exc}") \
                from None
        content = self.cipher.decrypt(blob, context=reference.encode())
        if hashlib.sha256(content).hexdigest() != row.sha256:
            raise ConfigurationError(f"document {reference} does not match its digest")
        return content, row.content_type

    def for_case(self, session: Session, case_id: str) -> list[AttachmentRow]:
        return list(session.scalars(select(AttachmentRow).where(AttachmentRow.case_id == case_id)
                                    .order_by(AttachmentRow.created_at)))

    # -- housekeeping --------------------------------------------------------------------------

    def purge(self, session: Session, *, unclaimed_for: timedelta,
              now: datetime | None = None) -> list[str]:
        """Delete the rows of uploads no request claimed within ``unclaimed_for``; returns the
        storage keys to remove once the caller has committed (`remove`), together with orphan
        files (written, but their row never committed) older than that."""
        now = now or utcnow()
        keys = []
        for row in session.scalars(select(AttachmentRow).where(
                AttachmentRow.case_id.is_(None), AttachmentRow.created_at < now - unclaimed_for)):
            session.delete(row)
            keys.append(row.storage_key)
        session.flush()
        known = set(session.scalars(select(AttachmentRow.storage_key)))
        cutoff = (now - unclaimed_for).timestamp()
        if self.root.is_dir():
            for path in self.root.glob("*/*.bin"):
                key = path.relative_to(self.root).as_posix()
                if key not in known and key not in keys and path.stat().st_mtime < cutoff:
                    keys.append(key)
        return keys

    def remove(self, keys: list[str]) -> int:
        """Delete stored files (after the rows naming them are gone); returns how many."""
        removed = 0
        for key in keys:
            try:
                (self.root / key).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def rewrap(self, row: AttachmentRow) -> None:
        """Re-encrypt a stored document under the active data key (`hub.store.rekey`): the new file
        replaces the old one atomically, then the row records the new key id."""
        blob = (self.root / row.storage_key).read_bytes()
        content = self.cipher.decrypt(blob, context=row.id.encode())
        if hashlib.sha256(content).hexdigest() != row.sha256:
            raise ConfigurationError(f"document {row.id} does not match its digest")
        fresh = self.cipher.encrypt(content, context=row.id.encode())
        self._write(row.storage_key, fresh)
        row.data_key = file_key_id(fresh)

    def delete(self, session: Session, row: AttachmentRow) -> str:
        """Forget a document (retention): its row goes now, its file once the caller committed
        (`remove` with the returned storage key)."""
        session.delete(row)
        return row.storage_key


def file_key_id(blob: bytes) -> str | None:
    """The data key id in the header of a file made by `KeyRing.encrypt_file`."""
    from security.fieldcrypt import FILE_MAGIC

    if not blob.startswith(FILE_MAGIC) or len(blob) <= len(FILE_MAGIC):
        return None
    size = blob[len(FILE_MAGIC)]
    return blob[len(FILE_MAGIC) + 1:len(FILE_MAGIC) + 1 + size].decode("ascii", "replace")


def open_cipher(ring: Any) -> FileCipher:
    """The cipher documents are stored with: the hub's data-key ring (`security.fieldcrypt`,
    AES-256-GCM, chunked, with rotation), the attachment reference authenticated with each
    file so that a file copied under another reference does not open."""
    return _KeyRingFiles(ring)


class _KeyRingFiles:
    def __init__(self, ring: Any) -> None:
        self.ring = ring

    def encrypt(self, content: bytes, *, context: bytes) -> bytes:
        sealed = io.BytesIO()
        self.ring.encrypt_file(io.BytesIO(content), sealed, context=context)
        return sealed.getvalue()

    def decrypt(self, blob: bytes, *, context: bytes) -> bytes:
        plain = io.BytesIO()
        self.ring.decrypt_file(io.BytesIO(blob), plain, context=context)
        return plain.getvalue()


def purge_unclaimed_documents(store: Store, attachments: AttachmentStore, *,
                              unclaimed_for: timedelta, now: datetime | None = None) -> int:
    """Delete uploads no request claimed within ``unclaimed_for`` (rows first, then files);
    returns how many files were removed."""
    with store.transaction() as session:
        keys = attachments.purge(session, unclaimed_for=unclaimed_for, now=now)
    return attachments.remove(keys)
