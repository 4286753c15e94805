"""Base for REST/JSON agency connectors: HTTP, X-Road headers, error mapping, schema checks.

A REST connector declares its operations; everything else is data (OpenAPI document, mappings)::

    class NarsaConnector(RestConnector):
        operations = {
            "verify_licence": RestOperation(
                method="POST", path="/api/v1/licence-verifications",
                request_schema="VerificationRequest", reply_schema="VerificationResponse"),
        }

For each call: the canonical payload is mapped with ``mappings/<agency>/<operation>.request.yaml``,
validated against the agency's OpenAPI schema, sent with ``X-Road-Client`` and ``X-Road-Id`` (the
envelope id, which is also the idempotency key), and the answer is checked (status, echoed
``X-Road-Id`` and ``X-Road-Request-Hash``, JSON limits, schema) then mapped back with ``<operation>.reply.yaml`` into a
`Reply`. The request's operation is named in the envelope's schema: ``<agency>.<operation>.request``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.base import HttpConnector, Reply, WireStats
from connectors.http import Answer, exchange
from connectors.xml import request_hash
from hub.envelope import Envelope, MAX_DEPTH, canonical_json, format_timestamp, parse_json
from hub.errors import (AgencyRefusal, AgencyUnavailable, BadAgencyReply, HubError,
                        MalformedEnvelope, SchemaViolation)
from hub.mapping import Mapping
from hub.schemas import openapi_validator, validate


@dataclass(frozen=True)
class RestOperation:
    method: str
    path: str
    request_schema: str
    reply_schema: str
    #: HTTP status of an accepted asynchronous request (the answer comes later by callback).
    accepted_status: int | None = None
    #: Schema of the acknowledgement body (mapped with ``<operation>.accepted.yaml``).
    accepted_schema: str | None = None


class RestConnector(HttpConnector):
    operations: ClassVar[dict[str, RestOperation]] = {}

    def start(self) -> None:
        self._session = self.open_session()
        openapi = self.config.options.get("openapi", f"v1/agencies/{self.agency}.openapi.yaml")
        self._openapi = openapi
        self._compiled: dict[str, tuple[RestOperation, Mapping, Mapping, Any, Any]] = {}
        for name, op in self.operations.items():
            self._compiled[name] = (
                op,
                Mapping.packaged(self.agency, f"{name}.request"),
                Mapping.packaged(self.agency, f"{name}.reply"),
                openapi_validator(openapi, op.request_schema),
                openapi_validator(openapi, op.reply_schema),
            )

    def send(self, envelope: Envelope) -> Reply:
        operation = self.operation_of(envelope)
        op, to_wire, _, request_validator, _ = self._compiled[operation]
        context = self.context_of(envelope)
        document = to_wire.apply(envelope.payload, context)
        validate(request_validator, document, what=f"{self.agency} {operation} request")
        body = canonical_json(document)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Road-Client": self.node_id,
            "X-Road-Id": str(envelope.id),
            "X-Road-UserId": envelope.sender,
        }
        headers.update(self.sign_request(body, envelope))
        response = self._exchange(op, body, headers)
        # Verified first: nothing of an answer is read (not even its echo) before its signature,
        # certificate and freshness are; a replayed answer is refused as such.
        answer = self.verify_reply(response)
        self._check_echo(response, envelope, body)
        if op.accepted_status is not None and response.status == op.accepted_status:
            return self._accepted(operation, answer)
        return self.parse_answer(operation, answer, context=context)

    @staticmethod
    def context_of(envelope: Envelope) -> dict[str, str]:
        return {"message_id": str(envelope.id), "correlation_id": envelope.correlation_id,
                "created_at": format_timestamp(envelope.created_at).replace(".000000", "")}

    def parse_answer(self, operation: str, answer: bytes, *,
                     context: dict[str, str] | None = None) -> Reply:
        """Validate and map an agency's answer to ``operation`` (also what an asynchronous
        agency's callback carries) into a `Reply`."""
        _, _, from_wire, _, reply_validator = self._compiled[operation]
        doc = self._json(answer)
        validate(reply_validator, doc, what=f"{self.agency} {operation} answer")
        mapped = from_wire.apply(doc, context or {})
        return Reply(outcome=mapped["outcome"], data=mapped.get("data", {}),
                     agency_reference=mapped.get("agency_reference"),
                     wire_digest=hashlib.sha256(answer).hexdigest())

    def _accepted(self, operation: str, answer: bytes) -> Reply:
        op = self._compiled[operation][0]
        reference = None
        if op.accepted_schema is not None:
            doc = self._json(answer)
            validate(openapi_validator(self._openapi, op.accepted_schema), doc,
                     what=f"{self.agency} {operation} acknowledgement")
            reference = Mapping.packaged(self.agency, f"{operation}.accepted").apply(doc).get(
                "agency_reference")
        return Reply(outcome="accepted", pending=True, agency_reference=reference,
                     wire_digest=hashlib.sha256(answer).hexdigest())

    def _json(self, answer: bytes) -> Any:
        try:
            return parse_json(answer, what=f"{self.agency} answer", max_depth=MAX_DEPTH)
        except MalformedEnvelope as exc:
            raise BadAgencyReply(f"{self.agency} answered with unparseable JSON: {exc.message}"
                                 ) from None

    # -- seams for message-level security (JWS), overridden once keys are configured -----------

    def sign_request(self, body: bytes, envelope: Envelope) -> dict[str, str]:
        """Extra headers carrying the request's signature (detached JWS) when the hub has
        signing keys."""
        signing = self.deps.signing
        return signing.sign_body(body, str(envelope.id)) if signing is not None else {}

    def verify_reply(self, response: Answer) -> bytes:
        """The verified answer body; raise `SecurityError` when it cannot be trusted."""
        signing = self.deps.signing
        if signing is None:
            return response.content
        return signing.verify_body(response.headers, response.content, self.agency).payload

    # -- HTTP ---------------------------------------------------------------------------------

    def _exchange(self, op: RestOperation, body: bytes, headers: dict[str, str]) -> Answer:
        url = self.config.base_url.rstrip("/") + op.path
        self.last_wire = WireStats(request_bytes=len(body))  # what went out, even on a timeout
        response = exchange(self._session, op.method, url, body=body, headers=headers,
                            agency=self.agency, timeout=self.config.timeout)
        status = response.status
        self.last_wire = WireStats(request_bytes=len(body), response_bytes=len(response.content),
                                   status=status)
        if status == 429 or status >= 500:
            raise AgencyUnavailable(f"{self.agency} answered HTTP {status}", status=status)
        if 400 <= status < 500:
            raise self._refusal(response)
        if status not in (200, 201) and status != op.accepted_status:
            raise BadAgencyReply(f"{self.agency} answered unexpected HTTP {status}", status=status)
        return response

    def _refusal(self, response: Answer) -> HubError:
        code, message = "", ""
        try:
            error = parse_json(response.content, what="error").get("error", {})
            code, message = str(error.get("code", "")), str(error.get("message", ""))[:300]
        except (MalformedEnvelope, AttributeError):
            pass
        if response.status == 422:
            return SchemaViolation(f"{self.agency} rejected the request as invalid: {message}",
                                   errors=[{"field": "(agency)", "code": code or "invalid",
                                            "message": message}])
        return AgencyRefusal(f"{self.agency} refused the request: HTTP {response.status}"
                             f" {code} {message}".strip(), status=response.status,
                             agency_code=code)

    def _check_echo(self, response: Answer, envelope: Envelope, body: bytes) -> None:
        """X-Road: the answer echoes the request's id and, when it carries one, the hash of
        exactly the body that was sent."""
        echoed = response.headers.get("X-Road-Id")
        if echoed is not None and echoed != str(envelope.id):
            raise BadAgencyReply(f"{self.agency} answered for message {echoed},"
                                 f" not {envelope.id}")
        digest = response.headers.get("X-Road-Request-Hash")
        if digest is not None and digest != request_hash(body):
            raise BadAgencyReply(f"{self.agency} answer carries the hash of another request")
