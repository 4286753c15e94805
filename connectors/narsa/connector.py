"""NARSA (road-safety agency) over REST/JSON: is this driving licence authentic?

Outcomes: ``authentic``, ``not_authentic``, ``unknown`` (the licence is not in NARSA's register).
Wire format: ``schemas/v1/agencies/narsa.openapi.yaml``; mappings: ``mappings/narsa/``.
"""
from __future__ import annotations

from connectors.rest import RestConnector, RestOperation


class NarsaConnector(RestConnector):
    operations = {
        "verify_licence": RestOperation(
            method="POST", path="/api/v1/licence-verifications",
            request_schema="VerificationRequest", reply_schema="VerificationResponse"),
    }
