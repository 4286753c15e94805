"""The tamper-evident audit chain: every audit record hash-chained, the chain signed at checkpoints.

Each record gets a position and a hash::

    leaf(r)      = SHA-256(canonical JSON of the record without its chain fields)
    hash(p)      = SHA-256(hash(p-1) || leaf(record at p))          hash(0) = 32 zero bytes

so changing, inserting or deleting any record changes every later hash. The leaf indirection lets
an export prove one case's records with the other records of the segment reduced to their leaf
digests (`hub.evidence.audit.export`): the chain proves order and integrity without disclosing other cases.

**Who chains, and when.** Writers do not: `AuditLog.append` inserts the row in the writer's
transaction as before. A single *sealer* (`chain_pending`) then takes committed rows that have no
position yet, in id order, gives them the next positions and hashes, and moves the chain head,
all in one short transaction that locks only the head row (`FOR UPDATE SKIP LOCKED` on
PostgreSQL: a second sealer finds it busy and leaves; SQLite serializes anyway). Positions
therefore follow the order in which records became visible, not the order of their ids: a long
transaction that committed late is chained late, never skipped. The alternative, chaining
inside every writer's transaction under one lock (`InlineChain`), holds that lock until each
writer commits, which serializes the whole hub on one row; ``python -m bench.evidence`` measures
both (docs/security.md quotes the numbers).

The price of the sealer is a window: a record is unchained between its commit and the next pass
(``HUB_AUDIT_SEAL_INTERVAL``, 0.5 s by default). `hub audit verify` reports unchained records, and
records after the last *checkpoint* are protected by the chain only (someone able to rewrite the
table could recompute those hashes): `make_checkpoint` signs ``(position, hash, time)`` with the
hub's key, and a break before a checkpoint can no longer be hidden.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.envelope import canonical_json, format_timestamp
from hub.errors import ConfigurationError, HubError
from hub.store import Store
from hub.store.models import AuditChainHead, AuditCheckpoint, AuditRow, utcnow
from security.jws import sign_detached
from security.keys import Signer

log = logging.getLogger(__name__)

GENESIS = "0" * 64
HEAD_ID = 1
#: What a checkpoint signature says, so that it cannot be mistaken for another signed statement.
CHECKPOINT_STATEMENT = "econsulat-hub audit checkpoint"


def record_document(row: Any) -> dict[str, Any]:
    """The fields a leaf covers (of an `AuditRow` or a row of its columns), normalized so that
    every reader computes the same bytes."""
    return {
        "id": row.id,
        "at": format_timestamp(as_utc(row.at)),
        "actor": row.actor,
        "action": row.action,
        "component": row.component,
        "message_id": row.message_id,
        "correlation_id": row.correlation_id,
        "digest": row.digest,
        "outcome": row.outcome,
        "details": row.details or {},
    }


def leaf_of(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def link(previous: str, leaf: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(leaf)).hexdigest()


def as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back naive (they were written in UTC); PostgreSQL aware.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def checkpoint_statement(position: int, chain_hash: str, signed_at: datetime) -> bytes:
    """The bytes a checkpoint signature covers."""
    return canonical_json({"statement": CHECKPOINT_STATEMENT, "position": position,
                           "hash": chain_hash, "signed_at": format_timestamp(signed_at)})


# -- sealing ----------------------------------------------------------------------------------------

def _head(session: Session, *, skip_locked: bool) -> AuditChainHead | None:
    query = select(AuditChainHead).where(AuditChainHead.id == HEAD_ID)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    head = session.scalars(query).first()
    if head is None and not skip_locked:
        raise ConfigurationError("the audit chain head is missing: run `hub db upgrade`")
    return head


def chain_pending(store: Store, *, batch: int = 1000) -> int:
    """Chain committed audit records that have no position yet; returns how many were chained.

    Safe to run from several processes at once: only one holds the head at a time, the others
    return 0 at once.
    """
    total = 0
    while True:
        with store.transaction() as session:
            head = _head(session, skip_locked=True)
            if head is None:
                return total  # another sealer is at work
            # Plain rows, not ORM objects: the sealer only reads them, and building an ORM
            # instance per record was most of its cost (it runs in every worker process).
            rows = session.execute(select(*AuditRow.__table__.c)
                                   .where(AuditRow.chain_position.is_(None))
                                   .order_by(AuditRow.id).limit(batch)).all()
            if not rows:
                return total
            position, current = head.position, head.hash
            changes = []
            for row in rows:
                position += 1
                current = link(current, leaf_of(record_document(row)))
                changes.append({"id": row.id, "chain_position": position, "chain_hash": current})
            session.execute(update(AuditRow), changes)
            head.position, head.hash, head.updated_at = position, current, utcnow()
            total += len(rows)
        if len(rows) < batch:
            return total


def unchained_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditRow)
                          .where(AuditRow.chain_position.is_(None))) or 0


class AuditChainer:
    """Runs `chain_pending` every ``interval`` seconds until stopped (a part of `Hub.run`)."""

    def __init__(self, store: Store, *, interval: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self.sealed = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sealed += chain_pending(self.store)
            except HubError as exc:
                log.warning("audit sealer pass failed, will retry: %s", exc.message)
            stop.wait(self.interval)
        try:
            self.sealed += chain_pending(self.store)  # leave nothing behind on a clean stop
        except HubError as exc:
            log.warning("audit sealer final pass failed: %s", exc.message)


class InlineChain:
    """The other design, kept for comparison (`bench.evidence`): chain each record in its
    writer's transaction, under the head row's lock, which every writer then holds until its
    commit. Plugs into `hub.evidence.audit.log.AuditLog(chain=InlineChain())`."""

    def link(self, session: Session, row: AuditRow) -> None:
        head = _head(session, skip_locked=False)
        assert head is not None
        position = head.position + 1
        row.chain_position = position
        row.chain_hash = link(head.hash, leaf_of(record_document(row)))
        head.position, head.hash, head.updated_at = position, row.chain_hash, utcnow()


# -- checkpoints ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    position: int
    hash: str
    signed_at: datetime
    signature: str
    certificate: str

    @classmethod
    def of(cls, row: AuditCheckpoint) -> "Checkpoint":
        return cls(row.position, row.hash, as_utc(row.signed_at), row.signature,
                   row.certificate)

    def statement(self) -> bytes:
        return checkpoint_statement(self.position, self.hash, self.signed_at)

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "hash": self.hash,
                "signed_at": format_timestamp(self.signed_at), "signature": self.signature,
                "certificate": self.certificate}


def make_checkpoint(store: Store, signer: Signer, *, now: datetime | None = None
                    ) -> Checkpoint | None:
    """Seal pending records, then sign the chain's head if it moved since the last checkpoint.

    Returns the new checkpoint, or None when there was nothing new to sign.
    """
    chain_pending(store)
    signed_at = (now or utcnow()).replace(microsecond=0)
    with store.transaction() as session:
        head = _head(session, skip_locked=False)
        assert head is not None
        latest = session.scalar(select(func.max(AuditCheckpoint.position)))
        if head.position == 0 or (latest is not None and latest >= head.position):
            return None
        statement = checkpoint_statement(head.position, head.hash, signed_at)
        row = AuditCheckpoint(
            position=head.position, hash=head.hash, signed_at=signed_at,
            signature=sign_detached(statement, signer,
                                    message_id=f"audit-checkpoint-{head.position}",
                                    now=signed_at),
            certificate=signer.cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        session.add(row)
        session.flush()
        return Checkpoint.of(row)


def load_checkpoints(session: Session) -> list[Checkpoint]:
    return [Checkpoint.of(row) for row in
            session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.position))]


def certificate_of(checkpoint: Checkpoint) -> x509.Certificate:
    return x509.load_pem_x509_certificate(checkpoint.certificate.encode("ascii"))
