"""The hub's tables (SQLAlchemy 2 declarative). Schema changes go through Alembic migrations.

- `CaseRow` and `CaseEvent`: a consular case and the history of its statuses.
- `ExchangeRow`: one exchange of a case with an agency (a route step), its state and answer.
- `OutboxRow`: messages committed with the change that caused them, published by the relay.
- `ProcessedMessage`: ids a consumer has applied; the unique key makes redelivery harmless.
- `AuditRow`: one record per hop (who, what, when, message, digest, outcome), hash-chained by
  the sealer; `AuditChainHead` and `AuditCheckpoint`: the chain's end and its signed checkpoints.
- `DeadLetterRow`: a parked message with its reason and original bytes, replayable.
- `SeenMessage`: signed message ids received from each party (replay protection), purged after
  the replay window.
- `CaseIdentity`: blind-index digests of the identity documents named in a case (lookups without
  decrypting every case).

Personal data is never stored in clear (`hub.store.privacy`): ``cases.data``, ``exchanges.reply`` and
``appointments.holder`` hold ``{"enc": <AES-GCM token>}`` behind a `Encrypted` attribute, outbox and
dead-letter bodies are tokens; each such row records the id of the data key that sealed it
(``*_key`` columns), which is what `hub keys rotate` re-encrypts by.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, String, Text, UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.clock import utcnow
from hub.store.encrypted import Encrypted


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


# SQLite has no 64-bit autoincrement BIGINT; INTEGER PRIMARY KEY is its rowid and is 64-bit anyway.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    service: Mapped[str] = mapped_column(String(64), index=True)
    service_version: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(64), index=True)
    post: Mapped[str | None] = mapped_column(String(16), index=True)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    #: The applicant's form data, sealed (``{"enc": token}``, context ``case:<reference>``);
    #: read and assign it through `data` (`hub.store.privacy`). NULL key: a legacy row in clear.
    encrypted_data: Mapped[dict[str, Any]] = mapped_column("data", JSON)
    data_key: Mapped[str | None] = mapped_column(String(64), index=True)
    #: When the retention job removed the personal data (`hub.cases.retention`); NULL until then.
    anonymized_at: Mapped[datetime | None] = mapped_column()
    #: Hash of the applicant's tracking secret (never the secret itself).
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    #: Incremented each time the route (re)starts, e.g. after more information was supplied;
    #: answers to exchanges of an earlier round are recorded but change nothing.
    route_round: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    # Relationships also tell the unit of work to insert the case before its rows.
    events: Mapped[list["CaseEvent"]] = relationship(
        order_by="CaseEvent.id", cascade="all, delete-orphan", passive_deletes=True,
        lazy="raise_on_sql", viewonly=False)
    exchanges: Mapped[list["ExchangeRow"]] = relationship(
        order_by="ExchangeRow.created_at", cascade="all, delete-orphan", passive_deletes=True,
        lazy="raise_on_sql")
    identities: Mapped[list["CaseIdentity"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": version}

    data = Encrypted("encrypted_data", "data_key", lambda row: f"case:{row.reference}")


class CaseIdentity(Base):
    """A blind-index digest (HMAC under the hub's index key) of an identity document in a case:
    ``path`` is where the case names it (``person.cnie``), ``digest`` of the normalized number.
    Written with the sealed case, so "cases of this CNIE" is an indexed lookup."""

    __tablename__ = "case_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64), index=True)


class CaseEvent(Base):
    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(64))
    to_status: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(36))


class ExchangeRow(Base):
    __tablename__ = "exchanges"

    #: The id of the request envelope: also the idempotency key the agency sees.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(Integer, default=1)
    agency: Mapped[str] = mapped_column(String(32), index=True)
    operation: Mapped[str] = mapped_column(String(64))
    #: queued -> answered | acknowledged (answer comes by callback) -> answered | dead_lettered
    status: Mapped[str] = mapped_column(String(32), index=True)
    outcome: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_digest: Mapped[str | None] = mapped_column(String(64))
    reply_digest: Mapped[str | None] = mapped_column(String(64))
    #: The agency's answer, sealed like case data (context ``exchange:<id>``): use `reply`.
    encrypted_reply: Mapped[dict[str, Any] | None] = mapped_column("reply", JSON)
    reply_key: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("case_id", "step", "round", name="uq_exchange_step_round"),)

    reply = Encrypted("encrypted_reply", "reply_key", lambda row: f"exchange:{row.id}")


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36))
    routing_key: Mapped[str] = mapped_column(String(128))
    #: When set, the relay puts the message on this queue directly (dead-letter replay).
    queue: Mapped[str | None] = mapped_column(String(160))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The sealed envelope, encrypted (context ``message:<message_id>``) by `enqueue`; the relay
    #: decrypts it to publish. NULL ``body_key``: a body in clear (legacy, or not an envelope).
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_key: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "id"),)


class ProcessedMessage(Base):
    __tablename__ = "processed_messages"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRow(Base):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    component: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: SHA-256 of the canonical bytes of the message concerned (the chain covers digests, not data).
    digest: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Place in the tamper-evident chain, given by the sealer after the row committed
    #: (`hub.evidence.audit.chain`); NULL until then.
    chain_position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    #: SHA-256(previous chain hash || SHA-256(canonical record)), hex.
    chain_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        # The sealer's work list: rows not chained yet, in id order.
        Index("ix_audit_records_unsealed", "id", postgresql_where=text("chain_position IS NULL"),
              sqlite_where=text("chain_position IS NULL")),
    )


class AuditChainHead(Base):
    """The end of the audit chain (one row): where the sealer appends next. Locked by the sealer
    only, never by writers, so chaining does not serialize the hub's transactions."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditCheckpoint(Base):
    """A signed statement "the audit chain had this hash at this position, at this time"."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    position: Mapped[int] = mapped_column(BigInteger, unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column()
    #: Detached JWS (hub signing key) over the canonical checkpoint statement.
    signature: Mapped[str] = mapped_column(Text)
    #: PEM of the certificate that signed it (checkpoints outlive key rotations).
    certificate: Mapped[str] = mapped_column(Text)


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(160), index=True)
    routing_key: Mapped[str] = mapped_column(String(128))
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text)
    component: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The parked bytes, encrypted like outbox bodies (context ``message:<message_id>``).
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_key: Mapped[str | None] = mapped_column(String(64), index=True)
    dead_lettered_at: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: parked | replayed | discarded
    status: Mapped[str] = mapped_column(String(16), default="parked", index=True)
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    replayed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("message_id", "dead_lettered_at", name="uq_dead_letter"),)


class AttachmentRow(Base):
    """A document uploaded for a case: its metadata here, its bytes encrypted outside the rows.

    An applicant uploads first (``case_id`` empty: unclaimed), then names the reference in a
    request; the request claims it for its case. Staff attach outcome documents (``kind``
    ``outcome``: the authorisation, the attestation, the delivery certificate).
    """

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(72), primary_key=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                                index=True)
    #: applicant | outcome
    kind: Mapped[str] = mapped_column(String(16), default="applicant")
    #: Where the case names it, e.g. ``documents.death_certificate`` (set when claimed).
    field: Mapped[str | None] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the plain content (evidence; the content itself is never in the database).
    sha256: Mapped[str] = mapped_column(String(64))
    #: Path of the encrypted file, relative to the attachments directory.
    storage_key: Mapped[str] = mapped_column(String(200))
    #: The data key the file is encrypted with (`hub keys rotate` re-encrypts by it).
    data_key: Mapped[str | None] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column()


class NotificationRow(Base):
    """A message for an applicant, e.g. a reminder that a deadline approaches. Unique per case
    and ``key``, so a scheduler that runs twice (or two schedulers) never sends it twice."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: deadline_reminder
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    language: Mapped[str] = mapped_column(String(8))
    #: What the message says, as data: e.g. {"status": "registered", "to": "lapsed",
    #: "due_at": "2029-03-01T...", "days_before": 30} (no personal data).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set by whatever delivers it (e-mail, SMS); until then the tracking page shows it.
    sent_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_notification_key"),)


class SlotRow(Base):
    """An appointment slot: a post receives ``capacity`` people for a service at a time."""

    __tablename__ = "appointment_slots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    post: Mapped[str] = mapped_column(String(16), index=True)
    service: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    minutes: Mapped[int] = mapped_column(Integer, default=20)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("post", "service", "starts_at", name="uq_slot"),)


class BookingRow(Base):
    """A booking of a slot, for a case (or, imported from the legacy platform, without one)."""

    __tablename__ = "appointments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                                index=True)
    #: booked | cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: portal | staff | legacy
    source: Mapped[str] = mapped_column(String(16))
    #: The legacy platform's booking id: importing the same file twice finds it.
    legacy_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Who comes, for bookings without a case (legacy): names and contact, sealed (context
    #: ``appointment:<id>``): use `holder`.
    encrypted_holder: Mapped[dict[str, Any]] = mapped_column("holder", JSON, default=dict)
    holder_key: Mapped[str | None] = mapped_column(String(64))
    booked_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column()

    holder = Encrypted("encrypted_holder", "holder_key", lambda row: f"appointment:{row.id}")
# -- operations (issue 7): operational monitoring records, controls, worker heartbeats ---------

class OperationalRecordRow(Base):
    """One attempt of one hop handled by a consumer, in the spirit of X-Road's operational
    monitoring records: timestamps at each hop, sizes, agency, service, outcome, fault, attempt.
    Written in the same transaction that settles the attempt (see `hub.ops.records`)."""

    __tablename__ = "operational_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    component: Mapped[str] = mapped_column(String(64))
    agency: Mapped[str | None] = mapped_column(String(32))
    service: Mapped[str | None] = mapped_column(String(64))
    operation: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    #: succeeded | pending | retried | dead_lettered
    outcome: Mapped[str] = mapped_column(String(16))
    #: The agency's answer in canonical words (e.g. ``authentic``), when there was one.
    answer: Mapped[str | None] = mapped_column(String(64))
    fault_code: Mapped[str | None] = mapped_column(String(64))
    fault_reason: Mapped[str | None] = mapped_column(Text)
    #: When the message was written (envelope), taken from the queue, sent to the agency,
    #: answered by it, and when this attempt was settled.
    created_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime | None] = mapped_column()
    request_out_at: Mapped[datetime | None] = mapped_column()
    response_in_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Agency round trip (request out -> response in), milliseconds.
    duration_ms: Mapped[float | None] = mapped_column(Float)
    request_bytes: Mapped[int | None] = mapped_column(Integer)
    response_bytes: Mapped[int | None] = mapped_column(Integer)
    node: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_oprec_finished", "finished_at"),
        Index("ix_oprec_agency_finished", "agency", "finished_at"),
        Index("ix_oprec_series", "agency", "service", "outcome"),
    )


class OpsControlRow(Base):
    """An operator's switch shared by every process: ``pause:<component>``, ``maintenance``."""

    __tablename__ = "ops_controls"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))


class WorkerHeartbeatRow(Base):
    """What a worker process last said about itself (circuit breakers, pauses, counts)."""

    __tablename__ = "worker_heartbeats"

    node: Mapped[str] = mapped_column(String(128), primary_key=True)
    component: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SeenMessage(Base):
    """A signed message id received from a party: a second arrival is a replay (`hub.evidence.seen`).

    Kept only as long as `security.replay.ReplayGuard.retention`: older messages are refused on
    their timestamp alone, so their ids need not be remembered.
    """

    __tablename__ = "seen_messages"

    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
