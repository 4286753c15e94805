"""Admin API: the console's figures and actions as JSON (``Authorization: Bearer <token>``).

    GET  /admin/api/overview                   queues, agencies, dead letters, workers, series
    GET  /admin/api/queues                     queue figures (source: management or adapter)
    GET  /admin/api/agencies?window=15         per-agency health
    GET  /admin/api/dead-letters?status=&queue=&code=&case=
    POST /admin/api/dead-letters/replay        {"ids": [1, 2]} or {"all": true, "queue": ..., "code": ...}
    GET  /admin/api/records?since=&until=&agency=&service=&outcome=&case=&message=&limit=
    GET  /admin/api/trace/<reference or message id>
    POST /admin/api/connectors/<agency>/pause | resume
    POST /admin/api/maintenance                {"on": true}
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from hub.errors import InvalidMessage, UnknownRoute
from hub.masking import redact
from hub.ops import records
from hub.web.admin import service
from hub.web.admin.parts import console, gate

blueprint = Blueprint("admin_api", __name__, url_prefix="/admin/api")


@blueprint.before_request
def _authorize() -> None:
    g.operator = gate().authorize()


def _time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidMessage(f"{name} must be an ISO 8601 instant, got {raw[:40]!r}") from None
    if value.tzinfo is None:
        raise InvalidMessage(f"{name} must carry a timezone (e.g. Z)")
    return value


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidMessage("the request body must be a JSON object")
    return body


def _agency(name: str) -> str:
    if name not in console().agencies:
        raise UnknownRoute(f"no agency named {name!r}")
    return name


@blueprint.get("/overview")
def overview() -> Response:
    return jsonify(console().overview())


@blueprint.get("/queues")
def queues() -> Response:
    return jsonify(console().queue_figures())


@blueprint.get("/agencies")
def agencies() -> Response:
    window = request.args.get("window", default=15.0, type=float) or 15.0
    return jsonify(console().agency_health(window_minutes=window))


def _filter() -> service.DeadLetterFilter:
    status = request.args.get("status", "parked")
    return service.DeadLetterFilter(
        status=None if status == "all" else status, queue=request.args.get("queue") or None,
        error_code=request.args.get("code") or None,
        correlation_id=request.args.get("case") or None,
        limit=request.args.get("limit", default=200, type=int) or 200)


@blueprint.get("/dead-letters")
def dead_letters() -> Response:
    return jsonify(console().dead_letters(_filter()))


@blueprint.post("/dead-letters/replay")
def replay() -> Response:
    body = _body()
    if body.get("all"):
        ids = console().matching_ids(service.DeadLetterFilter(
            queue=body.get("queue"), error_code=body.get("code"),
            correlation_id=body.get("case")))
    else:
        raw = body.get("ids")
        if not isinstance(raw, list) or not all(isinstance(i, int) for i in raw):
            raise InvalidMessage('name the dead letters: {"ids": [1, 2]} or {"all": true}')
        ids = raw
    return jsonify(console().replay(ids, actor=g.operator.actor))


@blueprint.get("/records")
def operational_records() -> Response:
    query = records.RecordQuery(
        since=_time("since"), until=_time("until"), agency=request.args.get("agency") or None,
        service=request.args.get("service") or None,
        outcome=request.args.get("outcome") or None,
        correlation_id=request.args.get("case") or None,
        message_id=request.args.get("message") or None,
        limit=request.args.get("limit", default=200, type=int) or 200,
        offset=request.args.get("offset", default=0, type=int) or 0)
    return jsonify([record_dict(r) for r in console().find_records(query)])


def record_dict(r: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return service._iso(value)

    return {"id": r.id, "message_id": r.message_id, "correlation_id": r.correlation_id,
            "component": r.component, "agency": r.agency, "service": r.service,
            "operation": r.operation, "attempt": r.attempt, "outcome": r.outcome,
            "answer": r.answer, "fault_code": r.fault_code,
            "fault_reason": redact(r.fault_reason), "created_at": iso(r.created_at),
            "received_at": iso(r.received_at), "request_out_at": iso(r.request_out_at),
            "response_in_at": iso(r.response_in_at), "finished_at": iso(r.finished_at),
            "duration_ms": r.duration_ms, "request_bytes": r.request_bytes,
            "response_bytes": r.response_bytes, "node": r.node}


@blueprint.get("/trace/<path:query>")
def trace(query: str) -> tuple[Response, int]:
    found = console().trace(query)
    return jsonify(found.as_dict()), 200 if found.found else 404


@blueprint.post("/connectors/<agency>/<action>")
def connector(agency: str, action: str) -> Response:
    component = f"connector.{_agency(agency)}"
    if action == "pause":
        console().pause(component, actor=g.operator.actor)
    elif action == "resume":
        console().resume(component, actor=g.operator.actor)
    else:
        raise UnknownRoute(f"no action {action!r}: use pause or resume")
    return jsonify(component=component, paused=action == "pause")


@blueprint.post("/maintenance")
def maintenance() -> Response:
    on = bool(_body().get("on"))
    console().set_maintenance(on, actor=g.operator.actor)
    return jsonify(maintenance=on)
