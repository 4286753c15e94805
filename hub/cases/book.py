"""Cases: opening them, applying agency answers, moving them through their state machine.

`CaseBook` does the persistence around the pure decisions of `hub.cases.router`: every method works
inside the caller's transaction, so a case change, its history, its audit records and the messages
it causes (outbox) commit together or not at all.

Case references and tracking secrets: `hub.cases.references`.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.cases import router
from hub.cases.answers import Answer
from hub.cases.references import new_reference, secret_hash
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.addresses import agency_routing_key
from hub.services.checks import LOCAL_OPERATIONS, LocalContext
from hub.envelope import Envelope, SchemaRef, canonical_json
from hub.errors import IllegalTransition, UnknownRoute, UnknownService
from hub.store.bulk import append_object, insert_now, write_pending
from hub.store.privacy import index_case
from hub.store.outbox import enqueue
from hub.schemas import json_schema_validator, validate
from hub.evidence.seal import Seal
from hub.services import LOCAL_AGENCY, ServiceCatalog, ServiceDefinition, Step
from hub.store.models import CaseEvent, CaseRow, ExchangeRow, utcnow

#: ``session.info`` key: case id -> its exchanges, loaded by `CaseBook.load_rounds`.
_ROUNDS = "hub.cases.rounds"


@dataclass(frozen=True)
class OpenedCase:
    case: CaseRow
    secret: str
    exchanges: tuple[ExchangeRow, ...]


class CaseBook:
    """Case operations inside a unit of work. Built once per hub, shared by threads."""

    def __init__(self, catalog: ServiceCatalog, audit: AuditLog, seal: Seal, *,
                 node_id: str, on_enqueue: Callable[[], None] | None = None) -> None:
        self.catalog = catalog
        self.audit = audit
        self.seal = seal
        self.node_id = node_id
        self.on_enqueue = on_enqueue or (lambda: None)

    # -- intake ------------------------------------------------------------------------------

    def validate_intake(self, definition: ServiceDefinition, data: dict[str, Any]) -> None:
        validate(json_schema_validator(definition.intake_schema), data,
                 what=f"{definition.name} request")

    def open(self, session: Session, service: str, data: dict[str, Any], *, actor: str,
             language: str = "fr", post: str | None = None,
             case_id: str | None = None, validated: bool = False) -> OpenedCase:
        """Validate and store a new case, then start its route. Raises before writing anything
        if the service is unknown or the data fails the service's intake schema.

        ``case_id`` makes opening idempotent for callers that derive it from their request
        (e.g. a document's reference from an agency): a second open with it fails on commit.
        ``validated``: the caller has just run `validate_intake` on ``data`` (the intake does,
        before its transaction); validating twice was a tenth of the intake's CPU."""
        definition = self.catalog.get(service)
        if not validated:
            self.validate_intake(definition, data)
        now = utcnow()
        secret = secrets.token_urlsafe(12)
        case = CaseRow(
            id=case_id or str(uuid.uuid4()), reference=new_reference(definition.reference_prefix, now.year),
            service=definition.name, service_version=definition.version,
            status=definition.initial_status, post=post or data.get("post"), language=language,
            data=data, secret_hash=secret_hash(secret), created_at=now, updated_at=now,
            route_round=0, version=1)
        # A new case is written with plain statements, not through the unit of work: the case
        # row once its route has started (below), its history, exchanges and messages with the
        # transaction's appended rows (`hub.store.bulk`). Its round starts empty: deciding on
        # its first answers needs no query.
        session.info.setdefault(_ROUNDS, {})[case.id] = []
        append_object(session, CaseEvent(case_id=case.id, at=now, from_status=None,
                                         to_status=case.status, actor=actor,
                                         reason="submitted"))
        self.audit.append(session, AuditRecord(
            action="received", actor=actor, component="intake", correlation_id=case.reference,
            details={"service": service, "post": case.post}))
        exchanges = self.start_route(session, case, definition, actor="hub")
        insert_now(session, case)
        index_case(session, case)
        return OpenedCase(case=case, secret=secret, exchanges=tuple(exchanges))

    def start_route(self, session: Session, case: CaseRow, definition: ServiceDefinition, *,
                    actor: str, role: str = "hub", reason: str | None = None
                    ) -> list[ExchangeRow]:
        """(Re)start the route as a new round: the case moves to the route's start status and
        the first steps go out. Answers to an earlier round are recorded but change nothing."""
        decision = router.start(definition)
        if decision.status is None:
            return []
        self._check(case, definition, decision.status, role)
        case.route_round += 1
        self._move(session, case, definition, decision.status, role=role, actor=actor,
                   reason=reason or decision.reason)
        return self.dispatch(session, case, decision.dispatch)

    # -- exchanges ---------------------------------------------------------------------------

    def dispatch(self, session: Session, case: CaseRow, steps: tuple[Step, ...]
                 ) -> list[ExchangeRow]:
        """Queue one request envelope per agency step, through the outbox; answer local steps
        (``agency: hub``) at once, after the agency steps are queued."""
        created = []
        local = [step for step in steps if step.agency == LOCAL_AGENCY]
        for step in steps:
            if step.agency == LOCAL_AGENCY:
                continue
            envelope = Envelope.new(
                correlation_id=case.reference, service=case.service, kind="request",
                sender=case.post or self.node_id, recipient=step.agency,
                schema=SchemaRef(name=step.schema_name, version="1"),
                payload=router.request_payload(step, case.data))
            sealed = self.seal.seal(envelope)
            exchange = ExchangeRow(
                id=str(envelope.id), case_id=case.id, step=step.name, round=case.route_round,
                agency=step.agency, operation=step.operation, status="queued", attempts=0,
                request_digest=envelope.digest())
            append_object(session, exchange)
            self._known(session, exchange)
            enqueue(session, sealed, agency_routing_key(step.agency))
            self.audit.append(session, AuditRecord(
                action="routed", actor="hub", component="router", message_id=str(envelope.id),
                correlation_id=case.reference, digest=envelope.digest(),
                details={"step": step.name, "agency": step.agency, "round": case.route_round}))
            created.append(exchange)
        if created:
            self.on_enqueue()
        for step in local:
            created.append(self._answer_locally(session, case, step))
        return created

    def _answer_locally(self, session: Session, case: CaseRow, step: Step) -> ExchangeRow:
        """Run a local step's check and apply its answer like an agency's, in this transaction."""
        definition = self.catalog.get(case.service)
        payload = router.request_payload(step, case.data)
        operation = LOCAL_OPERATIONS[step.operation]
        outcome = operation.run(LocalContext(session=session, catalog=self.catalog, case=case),
                                payload)
        now = utcnow()
        digest = hashlib.sha256(canonical_json(payload)).hexdigest()
        exchange = ExchangeRow(
            id=str(uuid.uuid4()), case_id=case.id, step=step.name, round=case.route_round,
            agency=LOCAL_AGENCY, operation=step.operation, status="answered", outcome=outcome,
            attempts=1, request_digest=digest, reply={}, sent_at=now, answered_at=now)
        append_object(session, exchange)
        self._known(session, exchange)
        self.audit.append(session, AuditRecord(
            action="answered", actor="hub:checks", component="checks", outcome=outcome,
            message_id=exchange.id, correlation_id=case.reference, digest=digest,
            details={"step": step.name, "operation": step.operation, "round": case.route_round}))
        self._decide(session, case, definition, exchange, outcome, actor="hub:checks",
                     message_id=None)
        return exchange

    def record_answer(self, session: Session, answer: Answer, *, agency: str, component: str,
                      correlation_id: str | None) -> None:
        """Audit that ``agency`` answered (the evidence of its answer: the wire digest)."""
        self.audit.append(session, AuditRecord(
            action="answered", actor=f"agency:{agency}", component=component,
            message_id=answer.exchange_id, correlation_id=correlation_id,
            digest=answer.wire_digest, outcome=answer.outcome,
            details={"request": answer.exchange_id,
                     "agency_reference": answer.agency_reference}))

    def apply_answer(self, session: Session, answer: Answer, *, actor: str,
                     exchange: ExchangeRow | None = None, case: CaseRow | None = None) -> str:
        """Record ``answer`` on its exchange and apply the route's rule for it to the case;
        returns what happened (``applied``, or ``recorded_only`` for an answer to an earlier
        round or a closed case). ``exchange`` and ``case`` are the rows when the caller has
        already loaded them (the case locked ``FOR UPDATE``: answers to one case apply in
        turn, whichever process receives them)."""
        if exchange is None:
            exchange = session.get(ExchangeRow, answer.exchange_id)
            if exchange is None:
                raise UnknownRoute(f"an answer to unknown exchange {answer.exchange_id}")
        if case is None:
            case = session.scalars(select(CaseRow).where(CaseRow.id == exchange.case_id)
                                   .with_for_update()).one()
        try:
            definition = self.catalog.get(case.service)
        except UnknownService:
            raise UnknownRoute(f"case {case.reference} belongs to unavailable service"
                               f" {case.service}") from None
        digest = answer.digest
        exchange.status = "answered"
        exchange.outcome = answer.outcome
        exchange.reply = {"data": answer.data, "agency_reference": answer.agency_reference,
                          "wire_digest": answer.wire_digest}
        exchange.reply_digest = digest
        exchange.answered_at = exchange.answered_at or utcnow()
        if exchange.round != case.route_round or definition.is_final(case.status):
            result = "recorded_only"
        else:
            # What the step keeps of the answer joins the case data first, so that the steps
            # this answer dispatches may send it on (``input``).
            kept = definition.with_answer_kept(case.data, exchange.step, answer.data)
            if kept is not None:
                case.data = kept
            self._decide(session, case, definition, exchange, answer.outcome, actor=actor,
                         message_id=answer.exchange_id)
            result = "applied"
        self.audit.append(session, AuditRecord(
            action="applied", actor=actor, component="cases", message_id=answer.exchange_id,
            correlation_id=case.reference, digest=digest, outcome=result,
            details={"step": exchange.step, "agency": exchange.agency, "answer": answer.outcome,
                     "status": case.status}))
        return result

    def apply_reply(self, session: Session, envelope: Envelope, *, actor: str) -> str:
        """Apply a parked answer brought back by a replay (a ``reply`` envelope)."""
        return self.apply_answer(session, Answer.from_envelope(envelope), actor=actor)

    def load_rounds(self, session: Session, cases: Iterable[CaseRow]) -> None:
        """Load the exchanges of ``cases`` in one query (call it once their rows are locked),
        so that applying a batch of answers to them asks nothing more of the database: each
        decision reads its case's exchanges from here, and exchanges dispatched meanwhile are
        added here as they are made."""
        cases = list(cases)
        known: dict[str, list[ExchangeRow]] = {case.id: [] for case in cases}
        if cases:
            for row in session.scalars(
                    select(ExchangeRow).where(ExchangeRow.case_id.in_(list(known)))
                    .execution_options(populate_existing=True)):
                known[row.case_id].append(row)
        session.info.setdefault(_ROUNDS, {}).update(known)

    def _round(self, session: Session, case: CaseRow) -> list[ExchangeRow]:
        """The exchanges of the case's current round."""
        known = session.info.get(_ROUNDS, {}).get(case.id)
        if known is None:
            write_pending(session)  # exchanges dispatched in this transaction, too
            return list(session.scalars(select(ExchangeRow).where(
                ExchangeRow.case_id == case.id, ExchangeRow.round == case.route_round)))
        return [row for row in known if row.round == case.route_round]

    @staticmethod
    def _known(session: Session, exchange: ExchangeRow) -> None:
        known = session.info.get(_ROUNDS, {}).get(exchange.case_id)
        if known is not None:
            known.append(exchange)

    def _decide(self, session: Session, case: CaseRow, definition: ServiceDefinition,
                exchange: ExchangeRow, outcome: str, *, actor: str,
                message_id: str | None) -> None:
        """Apply the route's rule for ``outcome``: dispatch what became ready, move the case."""
        states = {row.step: router.StepState(row.status, row.outcome)
                  for row in self._round(session, case)}
        decision = router.on_answer(definition, exchange.step, outcome, states)
        self.dispatch(session, case, decision.dispatch)
        if decision.status is not None and decision.status != case.status:
            self._move(session, case, definition, decision.status, role="hub", actor=actor,
                       reason=decision.reason, message_id=message_id)

    # -- status changes ------------------------------------------------------------------------

    def transition(self, session: Session, case: CaseRow, to_status: str, *, role: str,
                   actor: str, reason: str | None = None,
                   updates: dict[str, Any] | None = None) -> None:
        """A person (or agency) moves a case; steps firing on the new status are dispatched.
        Moving back to the route's start status (more information supplied) reruns the route.

        ``updates`` are top-level case fields recorded with the move (e.g. ``delivery`` for a
        judicial document served), validated with the intake schema before anything changes.
        """
        definition = self.catalog.get(case.service)
        if updates:
            merged = {**case.data, **updates}
            self.validate_intake(definition, merged)
            self._check(case, definition, to_status, role)
            case.data = merged
        if definition.route is not None and to_status == definition.route.start_status:
            self.start_route(session, case, definition, actor=actor, role=role, reason=reason)
        else:
            self._move(session, case, definition, to_status, role=role, actor=actor,
                       reason=reason)

    def _check(self, case: CaseRow, definition: ServiceDefinition, to_status: str,
               role: str) -> None:
        if not definition.allowed(case.status, to_status, role):  # type: ignore[arg-type]
            raise IllegalTransition(
                f"case {case.reference}: {case.status} -> {to_status} is not allowed for {role}",
                current=case.status, requested=to_status, role=role)

    def _move(self, session: Session, case: CaseRow, definition: ServiceDefinition,
              to_status: str, *, role: str, actor: str, reason: str | None,
              message_id: str | None = None) -> None:
        self._check(case, definition, to_status, role)
        self._record_move(session, case, to_status, actor=actor, reason=reason,
                          message_id=message_id)
        self.dispatch(session, case, router.on_status(definition, to_status))

    def _record_move(self, session: Session, case: CaseRow, to_status: str, *, actor: str,
                     reason: str | None, message_id: str | None = None) -> None:
        previous = case.status
        case.status = to_status
        case.updated_at = utcnow()
        append_object(session, CaseEvent(
            case_id=case.id, at=case.updated_at, from_status=previous, to_status=to_status,
            actor=actor, reason=reason, message_id=message_id))
        self.audit.append(session, AuditRecord(
            action="transitioned", actor=actor, component="cases", message_id=message_id,
            correlation_id=case.reference, outcome=to_status,
            details={"from": previous, "to": to_status, "reason": reason}))


def find_case(session: Session, reference: str) -> CaseRow | None:
    return session.scalars(select(CaseRow).where(CaseRow.reference == reference.upper())).first()

