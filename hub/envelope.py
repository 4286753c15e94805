"""The canonical message: one JSON document per exchange step inside the hub.

Agencies never see an `Envelope`; connectors translate it to and from each agency's wire format.

An envelope is immutable. Its *canonical serialization* (`Envelope.canonical_bytes`) is the byte
string that is hashed for audit and signed: JSON with sorted keys, no insignificant whitespace,
UTF-8, timestamps in UTC with microseconds and a ``Z``. Two fields stay outside it:

- ``signature``: the detached signature over those very bytes;
- ``attempt``: transport metadata, incremented at every retry, so a retried message keeps the
  signature and digest it was given when it was first written.

Parsing is strict (`Envelope.from_bytes`): size limit, nesting-depth limit, duplicate keys refused,
unknown fields refused, types checked. Every refusal is a `MalformedEnvelope` or
`MessageTooLarge`, both permanent, so the consumer dead-letters the message with the reason.

    >>> env = Envelope.new(service="driving_licence_authentication", kind="request",
    ...                    sender="hub", recipient="narsa", correlation_id="DLA-2026-7K3M9Q",
    ...                    schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
    ...                    payload={"licence_number": "12/345678"})
    >>> Envelope.from_bytes(env.to_bytes()) == env
    True
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import MalformedEnvelope, MessageTooLarge

Kind = Literal["request", "reply", "event", "fault"]

#: Default ceiling for a serialized envelope; `hub.config.Settings.max_message_bytes` overrides it.
DEFAULT_MAX_BYTES = 1024 * 1024
#: Payloads deeper than this are refused before validation (a JSON "billion laughs" cousin).
MAX_DEPTH = 32

_NAME = r"^[a-z][a-z0-9_.\-]{0,63}$"
_PARTY = r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,127}$"


class SchemaRef(BaseModel):
    """Names the schema the payload follows, e.g. ``narsa.verify_licence.request`` version ``1``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    version: str = Field(pattern=r"^[0-9]{1,4}(\.[0-9]{1,4}){0,2}$")


class Envelope(BaseModel):
    """The canonical hub message. See the module docstring for the serialization rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: uuid.UUID
    correlation_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    causation_id: uuid.UUID | None = None
    service: str = Field(pattern=_NAME)
    kind: Kind
    sender: str = Field(pattern=_PARTY)
    recipient: str = Field(pattern=_PARTY)
    created_at: datetime
    schema_ref: SchemaRef = Field(alias="schema")
    payload: dict[str, Any]
    attempt: int = Field(default=0, ge=0, le=1000)
    signature: str | None = Field(default=None, max_length=16384)

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a timezone")
        return value.astimezone(timezone.utc)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def new(cls, *, schema: SchemaRef | dict[str, str], created_at: datetime | None = None,
            id: uuid.UUID | None = None, **fields: Any) -> "Envelope":
        """Build a fresh envelope with a new id and the current time."""
        return cls.model_validate({
            "id": id or uuid.uuid4(),
            "created_at": created_at or datetime.now(timezone.utc),
            "schema": schema,
            **fields,
        })

    def reply(self, *, kind: Kind = "reply", schema: SchemaRef | dict[str, str],
              payload: dict[str, Any], sender: str | None = None) -> "Envelope":
        """An envelope answering this one: same case and service, caused by this message."""
        return Envelope.new(
            correlation_id=self.correlation_id, causation_id=self.id, service=self.service,
            kind=kind, sender=sender or self.recipient, recipient=self.sender, schema=schema,
            payload=payload,
        )

    def with_attempt(self, attempt: int) -> "Envelope":
        return self.model_copy(update={"attempt": attempt})

    def with_signature(self, signature: str | None) -> "Envelope":
        return self.model_copy(update={"signature": signature})

    # -- serialization ------------------------------------------------------------------------

    def _document(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "correlation_id": self.correlation_id,
            "causation_id": str(self.causation_id) if self.causation_id else None,
            "service": self.service,
            "kind": self.kind,
            "sender": self.sender,
            "recipient": self.recipient,
            "created_at": format_timestamp(self.created_at),
            "schema": {"name": self.schema_ref.name, "version": self.schema_ref.version},
            "payload": self.payload,
        }

    def canonical_bytes(self) -> bytes:
        """The stable bytes that are signed and hashed (without ``attempt`` and ``signature``)."""
        return canonical_json(self._document())

    def digest(self) -> str:
        """SHA-256 of the canonical bytes, hex; what the audit trail records."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        doc = self._document()
        doc["attempt"] = self.attempt
        doc["signature"] = self.signature
        return doc

    def to_bytes(self) -> bytes:
        """Wire form: the canonical document plus ``attempt`` and ``signature``."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> "Envelope":
        """Parse and validate strictly; raise `MalformedEnvelope` or `MessageTooLarge`."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if len(raw) > max_bytes:
            raise MessageTooLarge(f"envelope is {len(raw)} bytes, limit is {max_bytes}",
                                  size=len(raw), limit=max_bytes)
        doc = parse_json(raw, what="envelope")
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> "Envelope":
        if not isinstance(doc, dict):
            raise MalformedEnvelope("envelope must be a JSON object")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
            )
            raise MalformedEnvelope(f"invalid envelope: {problems}",
                                    fields=[".".join(str(p) for p in e["loc"]) for e in exc.errors()]
                                    ) from None


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds, e.g. ``2026-11-29T06:00:00.000000Z``."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact separators, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys let two parsers read two different messages from the same bytes.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedEnvelope(f"duplicate key {key!r}")
        out[key] = value
    return out


_TOKENS = re.compile(rb'[\[{\]}]|"(?:[^"\\]|\\.)*"')


def json_depth(raw: bytes) -> int:
    """Maximum nesting depth of a JSON text, computed without building it (strings skipped)."""
    depth = best = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            best = max(best, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return best


def parse_json(raw: bytes, *, what: str = "document", max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON refusing excessive depth, duplicate keys, NaN/Infinity and invalid UTF-8."""
    # Counting every bracket bounds the depth from above in C: the scan that skips strings is
    # needed only when there are more brackets than levels allowed.
    if raw.count(b"{") + raw.count(b"[") > max_depth and json_depth(raw) > max_depth:
        raise MalformedEnvelope(f"{what} nests deeper than {max_depth} levels", limit=max_depth)
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_no_constants)
    except MalformedEnvelope:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise MalformedEnvelope(f"{what} is not valid JSON: {exc}") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
