"""The audit trail: every hop appends one `AuditRecord`, in the same transaction as the change.

Actions, one vocabulary for the whole hub::

    received    a request or inbound message entered the hub        (intake, inbound)
    rejected    input refused before anything was stored            (intake, inbound, consumers)
    routed      a case opened and its first exchanges were queued   (intake, case worker)
    published   the relay handed an outbox message to the broker    (relay, sampled per batch)
    sent        a connector delivered a request to an agency        (connector worker)
    answered    an agency's answer was received and accepted        (connector worker, inbound)
    applied     an answer or event changed a case                   (case worker)
    retried     a failed delivery was scheduled for another attempt (consumers)
    dead_lettered  a message was parked with its reason             (consumers, recorder)
    replayed    an operator sent a parked message back              (dlq replay)
    viewed      a person read a case                                (back-office, tracking)
    transitioned  a person moved a case to another status           (back-office)
    reminded    an applicant was reminded of a coming deadline       (deadlines)
    booked, cancelled  an appointment was booked or cancelled       (appointments)
    imported    legacy bookings were imported                        (appointments)
    anonymized  a closed case's personal data was removed (retention) (retention)
    purged      old messages were deleted (retention)                 (retention)

Records carry digests of messages, never their content: the evidence survives the purge of the
personal data it concerns. Tamper evidence (hash chain, signed checkpoints) plugs in through
`AuditLog.chain`, an object with ``link(session, row)`` called for each appended row.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from hub.store.bulk import append_row
from hub.store.models import AuditRow, utcnow

log = logging.getLogger("hub.evidence.audit.log")


@dataclass(frozen=True)
class AuditRecord:
    action: str
    actor: str
    component: str
    outcome: str = "ok"
    message_id: str | None = None
    correlation_id: str | None = None
    digest: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AuditChain(Protocol):
    def link(self, session: Session, row: AuditRow) -> None:
        """Attach the row to the tamper-evident chain (called after it is added)."""


class AuditLog:
    """Appends audit rows inside the caller's transaction.

    Rows are written when the transaction commits, all of its records in one statement
    (`hub.store.bulk`); with an inline ``chain`` (tests of the chain), each row is written and
    linked at once instead.
    """

    def __init__(self, chain: AuditChain | None = None) -> None:
        self.chain = chain

    def append(self, session: Session, record: AuditRecord) -> None:
        values = {"at": utcnow(), "actor": record.actor, "action": record.action,
                  "component": record.component, "message_id": record.message_id,
                  "correlation_id": record.correlation_id, "digest": record.digest,
                  "outcome": record.outcome, "details": dict(record.details)}
        if self.chain is None:
            append_row(session, AuditRow, values)
            return
        row = AuditRow(**values)
        session.add(row)
        session.flush()
        self.chain.link(session, row)
