"""Appointments over HTTP: posts and their free slots, booking and cancelling for a case, and
slots opened by staff.

    GET    /api/v1/posts                                  consular posts (code, city, country)
    GET    /api/v1/posts/<post>/slots?service=            free slots, soonest first
    PUT    /api/v1/cases/<reference>/appointment          {"slot": 42}   X-Tracking-Secret
    DELETE /api/v1/cases/<reference>/appointment          X-Tracking-Secret
    POST   /api/v1/backoffice/slots                       staff: open slots at their post
           {"post", "service", "first": ISO time, "count", "every": minutes, "capacity"}
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from hub.cases.access import staff_principal
from hub.appointments.book import AppointmentBook
from hub.errors import SchemaViolation, UnknownRoute
from hub.web import parts
from hub.web.negotiation import json_body
from hub.web.problems import field_errors_response
from hub.cases.posts import all_posts, get_post

blueprint = Blueprint("appointments", __name__)
blueprint.register_error_handler(SchemaViolation, field_errors_response)


def book() -> AppointmentBook:
    return parts.appointment_book()


@blueprint.get("/api/v1/posts")
def posts() -> Response:
    return jsonify(posts=[{"code": p.code, "city": p.city, "country": p.country,
                           "timezone": p.timezone} for p in all_posts()])


@blueprint.get("/api/v1/posts/<post>/slots")
def slots(post: str) -> Response:
    service = request.args.get("service", "")
    if get_post(post) is None:
        raise UnknownRoute("no consular post has this code", code="post.unknown")
    parts.catalog().get(service)  # 404 for an unknown service
    return jsonify(slots=[s.as_json() for s in book().available(post=post, service=service)])


def _secret() -> str:
    return request.headers.get("X-Tracking-Secret", "")


@blueprint.put("/api/v1/cases/<reference>/appointment")
def make(reference: str) -> Response:
    body = json_body()
    slot = body.get("slot")
    if not isinstance(slot, int) or isinstance(slot, bool) or not 0 < slot < 2**53 \
            or set(body) - {"slot"}:
        raise SchemaViolation("an appointment is {\"slot\": <id>}", errors=[
            {"field": "slot", "code": "type", "message": "the id of a free slot"}])
    return jsonify(book().book(reference, _secret(), slot).as_json())


@blueprint.delete("/api/v1/cases/<reference>/appointment")
def cancel(reference: str) -> tuple[str, int]:
    book().cancel(reference, _secret())
    return "", 204


@blueprint.post("/api/v1/backoffice/slots")
def open_slots() -> tuple[Response, int]:
    principal = staff_principal()
    body = json_body()
    errors: list[dict[str, Any]] = []
    try:
        first = datetime.fromisoformat(str(body.get("first", "")))
        if first.tzinfo is None:
            raise ValueError
    except ValueError:
        errors.append({"field": "first", "code": "format",
                       "message": "an ISO 8601 time with its offset"})
    numbers = {}
    for name, default in (("count", 1), ("every", 20), ("capacity", 1)):
        value = body.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append({"field": name, "code": "type", "message": "an integer"})
        numbers[name] = value
    for name in ("post", "service"):
        if not isinstance(body.get(name), str):
            errors.append({"field": name, "code": "required", "message": f"{name} is needed"})
    if errors:
        raise SchemaViolation("cannot open these slots", errors=errors)
    created = book().open_slots(principal, post=body["post"], service=body["service"],
                                first=first, **numbers)
    return jsonify(created=created), 201
