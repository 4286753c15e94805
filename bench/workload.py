"""The messages every scenario sends: driving-licence authentication requests (NARSA, REST/JSON).

Every request is valid and draws an ``authentic`` answer from the simulator, so every case ends
``verified`` and every scenario does the same work per message. `intake_request` is what an
applicant posts to the hub (and to the Celery pipeline's intake); `wire_request` is what NARSA
receives on the wire, made with the hub's own mapping, for the direct scenario.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


SERVICE = "driving_licence_authentication"
#: Statuses a case of this service reaches when its exchange is done (the end of a run's work).
DONE_STATUSES = ("verified", "rejected", "more_information_requested")


def intake_request(n: int) -> dict[str, Any]:
    """Request ``n``: the demo's authentic-licence request (kept valid by the demo's own tests),
    with a licence number and a foreign reference of its own."""
    from hub.demo_scenarios import licence_request

    data = licence_request("authentic", serial=100000 + n % 800000)
    data["requesting_authority"] = {**data["requesting_authority"], "reference": f"DGT-{n:08d}"}
    return data


def canonical_payload(data: dict[str, Any]) -> dict[str, Any]:
    """What the route's NARSA step sends (its ``input`` selection), through the hub's router."""
    from hub import router
    from hub.services import ServiceCatalog

    global _step
    if _step is None:
        route = ServiceCatalog.load().get(SERVICE).route
        _step = next(step for step in route.steps if step.agency == "narsa")  # type: ignore[union-attr]
    return router.request_payload(_step, data)


_step: Any = None
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
