"""The messages every scenario sends: driving-licence authentication requests (NARSA, REST/JSON).

Every request is valid and draws an ``authentic`` answer from the simulator, so every case ends
``verified`` and every scenario does the same work per message. `intake_request` is what an
applicant posts to the hub (and to the Celery pipeline's intake); `wire_request` is what NARSA
receives on the wire, made with the hub's own mapping, for the direct scenario.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from connectors.narsa import register

SERVICE = "driving_licence_authentication"
#: Statuses a case of this service reaches when its exchange is done (the end of a run's work).
DONE_STATUSES = ("verified", "rejected", "more_information_requested")


def intake_request(n: int) -> dict[str, Any]:
    serial = 100000 + n % 800000
    return {
        "post": "ES-MAD",
        "licence": {"number": register.licence_number(serial=serial, answer="authentic"),
                    "categories": [{"code": "B", "issued_on": "2015-06-01"}],
                    "issuing_centre": "Casablanca"},
        "holder": {"cnie": "AB123456", "last_name": "Alaoui", "first_name": "Sara",
                   "birth_date": "1990-02-03"},
        "requesting_authority": {"name": "DGT Madrid", "country": "ES",
                                 "reference": f"DGT-{n:08d}"},
        "applicant": {"email": "sara.alaoui@example.org", "phone": "+34612345678"},
    }


def canonical_payload(data: dict[str, Any]) -> dict[str, Any]:
    """What the route step sends NARSA (``input: [licence, holder, requesting_authority]``)."""
    return {key: data[key] for key in ("licence", "holder", "requesting_authority")}


_request_mapping = None


def wire_request(n: int, message_id: str, correlation_id: str = "BENCH") -> dict[str, Any]:
    """NARSA's VerificationRequest for request ``n``, through the hub's own mapping file."""
    global _request_mapping
    from hub.envelope import format_timestamp
    from hub.mapping import Mapping

    if _request_mapping is None:
        _request_mapping = Mapping.packaged("narsa", "verify_licence.request")
    now = format_timestamp(datetime.now(timezone.utc)).replace(".000000", "")
    return _request_mapping.apply(canonical_payload(intake_request(n)),
                                  {"message_id": message_id, "correlation_id": correlation_id,
                                   "created_at": now})
