"""An agency's answer to one exchange, as the hub records it and applies it to the case.

An answer reaches the hub three ways, and all three apply it with the same code
(`hub.cases.book.CaseBook.record_answer`, then `apply_answer`), in the transaction that marks it
processed:

- on the connector's call (`hub.delivery.workers.ConnectorWorker`): one hop, no queue between
  the agency's answer and the case;
- later, by the agency calling the hub back (`hub.web.inbound.health`);
- as a ``reply`` envelope on the cases queue (`hub.delivery.workers.CaseWorker`): an answer
  that could not be applied when it came (e.g. an outcome the route has no rule for) is parked
  as such an envelope with its reason, and an operator's replay brings it back there.

    answer = Answer.from_reply(exchange_id, reply)
    with store.transaction() as session:
        cases.record_answer(session, answer, agency="narsa", component="connector.narsa")
        cases.apply_answer(session, answer, actor="agency:narsa")
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Reply
from hub.envelope import Envelope, SchemaRef, canonical_json
from hub.errors import UnknownRoute


@dataclass(frozen=True)
class Answer:
    """What an agency answered to exchange ``exchange_id``, in canonical form."""

    exchange_id: str
    outcome: str
    data: dict[str, Any] = field(default_factory=dict)
    agency_reference: str | None = None
    #: SHA-256 of the agency's answer as received on the wire.
    wire_digest: str | None = None

    @classmethod
    def from_reply(cls, exchange_id: str, reply: Reply) -> "Answer":
        return cls(exchange_id, reply.outcome, dict(reply.data), reply.agency_reference,
                   reply.wire_digest)

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> "Answer":
        """The answer a ``reply`` envelope carries (``causation_id``: the exchange)."""
        if envelope.causation_id is None:
            raise UnknownRoute(f"reply {envelope.id} names no request (causation_id)")
        payload = envelope.payload
        return cls(str(envelope.causation_id), str(payload.get("outcome", "")),
                   dict(payload.get("data") or {}), payload.get("agency_reference"),
                   payload.get("wire_digest"))

    @property
    def payload(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "data": self.data,
                "agency_reference": self.agency_reference, "wire_digest": self.wire_digest}

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical answer: what the exchange and the audit trail keep."""
        return hashlib.sha256(canonical_json(self.payload)).hexdigest()


def reply_envelope(request: Envelope, answer: Answer) -> Envelope:
    """The ``reply`` envelope answering ``request``: how an answer is parked for a replay."""
    operation = request.schema_ref.name.removesuffix(".request")
    return request.reply(schema=SchemaRef(name=f"{operation}.reply", version="1"),
                         payload=answer.payload)
