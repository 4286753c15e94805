"""Recording an agency's answer: the one way a `Reply` becomes a ``reply`` envelope for the case
worker, whether it came back on the connector's call (`hub.delivery.workers.ConnectorWorker`) or later by
the agency calling the hub back (`hub.web.inbound.health`).

`queue_answer` runs inside the caller's transaction: the sealed reply goes to the outbox (routing
key ``case.<service>.reply``, ``causation_id`` = the request's id, which is the exchange id) with
its audit record, so both commit together with whatever marked the answer as processed.

    with store.transaction() as session:
        if mark_processed(session, component, exchange_id):
            queue_answer(session, audit=audit, seal=seal, request=request, reply=reply,
                         component=component)
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from connectors.base import Reply
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.addresses import case_routing_key
from hub.envelope import Envelope, SchemaRef
from hub.store.outbox import enqueue
from hub.evidence.seal import Seal
from hub.store.models import CaseRow, ExchangeRow


def answer_envelope(request: Envelope, reply: Reply) -> Envelope:
    """The ``reply`` envelope answering ``request`` with ``reply``'s canonical content."""
    operation = request.schema_ref.name.removesuffix(".request")
    return request.reply(
        schema=SchemaRef(name=f"{operation}.reply", version="1"),
        payload={"outcome": reply.outcome, "data": reply.data,
                 "agency_reference": reply.agency_reference, "wire_digest": reply.wire_digest})


def queue_answer(session: Session, *, audit: AuditLog, seal: Seal, request: Envelope,
                 reply: Reply, component: str) -> Envelope:
    """Queue the answer to ``request`` for the case worker, audited, in ``session``."""
    answer = answer_envelope(request, reply)
    enqueue(session, seal.seal(answer), case_routing_key(request.service, "reply"))
    audit.append(session, AuditRecord(
        action="answered", actor=f"agency:{request.recipient}", component=component,
        message_id=str(answer.id), correlation_id=request.correlation_id,
        digest=reply.wire_digest, outcome=reply.outcome,
        details={"request": str(request.id), "agency_reference": reply.agency_reference}))
    return answer


def request_of(exchange: ExchangeRow, case: CaseRow, *, node_id: str) -> Envelope:
    """The request envelope of an exchange as the router sent it, rebuilt from the store (its
    payload left out): what an answer arriving later by callback answers."""
    return Envelope.new(
        id=exchange.id, correlation_id=case.reference, service=case.service, kind="request",
        sender=case.post or node_id, recipient=exchange.agency,
        schema=SchemaRef(name=f"{exchange.agency}.{exchange.operation}.request", version="1"),
        payload={})
