"""Writing to the transactional outbox: messages a unit of work causes, stored with it.

A use case that changes a case and must tell another part (an agency request, an answer to
apply) adds the message here, in its own transaction; the relay (`hub.delivery.relay`) publishes
it once the transaction has committed. The message commits with the change or not at all::

    with store.transaction() as session:
        case.status = "sent"
        enqueue(session, seal.seal(envelope), agency_routing_key("narsa"))

Only sealed envelopes are written (the consumer checks the seal), and the body is encrypted
under the data keys with the message id as context (`hub.store.privacy`): envelopes carry
personal data.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.envelope import Envelope
from hub.errors import ConfigurationError
from hub.clock import utcnow
from hub.store.bulk import append_object
from hub.store.models import OutboxRow
from hub.store.privacy import privacy_of


def enqueue(session: Session, envelope: Envelope, routing_key: str, *,
            queue: str | None = None, headers: dict[str, Any] | None = None) -> OutboxRow:
    """Add a sealed envelope to the outbox in the caller's transaction."""
    if not envelope.signature:
        raise ConfigurationError(f"message {envelope.id} is not sealed: seal it before"
                                 " it goes to the outbox")
    body, key_id = privacy_of(session).encrypt_body(envelope.to_bytes(),
                                                    message_id=str(envelope.id))
    row = OutboxRow(message_id=str(envelope.id), routing_key=routing_key, queue=queue,
                    headers=dict(headers or {}), body=body, body_key=key_id, created_at=utcnow())
    append_object(session, row)  # written with the transaction's other appended rows
    return row
