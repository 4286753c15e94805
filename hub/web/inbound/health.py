"""Health's decisions on sanitary clearances, by callback (agency -> hub).

A Health decision is correlated to its exchange (the request's ``X-Road-Id``), read and mapped by
the Health connector (`HealthConnector.parse_answer`: schema and mapping files, no logic here), and
applied to its case at once, with its audit records, in one transaction (`CaseBook.record_answer`
and `apply_answer`, exactly as the connector worker does with synchronous answers); the answer is
``{"status": "applied" | "recorded_only", "exchange": ...}``. The ``processed_messages`` mark
makes a second decision for the same exchange a 409 with no effect.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from connectors.xml import request_hash
from hub.cases.answers import Answer
from hub.delivery.idempotency import mark_processed
from hub.errors import BadAgencyReply, MalformedEnvelope, UnknownRoute, UnsupportedMediaType
from hub.store.models import CaseRow, ExchangeRow
from hub.web.inbound.agencies import (WAITING, AlreadyAnswered, agency_connector,
                                      authenticate, check_fresh, inbound, verify_message)


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/health/clearances/<exchange_id>", "health_clearance",
                           health_clearance, methods=["POST"])


def health_clearance(exchange_id: str) -> tuple[Response, int]:
    authenticate("health")
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("a decision is sent as application/json")
    verified = verify_message("health", request.get_data(), request.headers)
    return _answer_by_callback("health", exchange_id, verified)


def _answer_by_callback(agency: str, exchange_id: str, verified: Any) -> tuple[Response, int]:
    parts = inbound()
    component = f"inbound.{agency}"
    raw = verified.payload
    with parts.store.transaction() as session:
        check_fresh(session, agency, verified)
        # Locks in the order every writer of a case takes them: the case, then its exchange
        # (the connector worker recording its acknowledgement of the same request does too).
        found = session.execute(select(ExchangeRow.case_id).where(
            ExchangeRow.id == exchange_id)).first()
        if found is not None:
            session.execute(select(CaseRow.id).where(CaseRow.id == found.case_id)
                            .with_for_update())
        exchange = session.scalars(select(ExchangeRow).where(ExchangeRow.id == exchange_id)
                                   .with_for_update()).first()
        if exchange is None or exchange.agency != agency:
            raise UnknownRoute(f"no {agency} exchange {exchange_id} is waiting for an answer",
                               code="inbound.unknown_exchange")
        if exchange.status not in WAITING or not mark_processed(session, component, exchange_id):
            raise AlreadyAnswered(f"exchange {exchange_id} was already answered;"
                                  f" this callback has no effect", status=exchange.status)
        try:
            reply = agency_connector(agency).parse_answer(exchange.operation, raw)
        except BadAgencyReply as exc:
            raise MalformedEnvelope(exc.message) from None
        if reply.pending:
            raise MalformedEnvelope("a callback must carry a decision, not an acknowledgement")
        case = session.scalars(select(CaseRow).where(CaseRow.id == exchange.case_id)
                               .with_for_update()).one()
        answer = Answer.from_reply(exchange_id, reply)
        parts.cases.record_answer(session, answer, agency=agency, component=component,
                                correlation_id=case.reference)
        result = parts.cases.apply_answer(session, answer, actor=f"agency:{agency}",
                                        exchange=exchange, case=case)
    parts.on_change()  # the steps the answer made ready are in the outbox
    response = jsonify(status=result, exchange=exchange_id)
    response.headers["X-Road-Id"] = request.headers.get("X-Road-Id", "")
    response.headers["X-Road-Client"] = request.headers.get("X-Road-Client", "")
    response.headers["X-Road-Request-Hash"] = request_hash(raw)
    return response, 202
