"""Ministry of Health over REST/JSON, asynchronous: sanitary clearance of remains.

``sanitary_clearance`` is acknowledged at once (HTTP 202: a pending `Reply` with Health's
clearance id); the decision arrives later at the hub's callback (`hub.web.inbound.health`), which reads it
with `HealthConnector.parse_answer` -> ``cleared``, ``refused``, ``more_information``.
Wire format: ``schemas/v1/agencies/health.openapi.yaml``; mappings: ``mappings/health/``.
"""
from __future__ import annotations

from connectors.rest import RestConnector, RestOperation


class HealthConnector(RestConnector):
    operations = {
        "sanitary_clearance": RestOperation(
            method="POST", path="/api/v1/sanitary-clearances",
            request_schema="ClearanceRequest", reply_schema="ClearanceDecision",
            accepted_status=202, accepted_schema="ClearanceAcknowledgement"),
    }
