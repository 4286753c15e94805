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
``X-Road-Id``, JSON limits, schema) then mapped back with ``<operation>.reply.yaml`` into a
`Reply`. The request's operation is named in the envelope's schema: ``<agency>.<operation>.request``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from connectors.base import Connector, Reply, WireStats
from hub.envelope import Envelope, MAX_DEPTH, canonical_json, format_timestamp, parse_json
from hub.errors import (AgencyRefusal, AgencyTimeout, AgencyUnavailable, BadAgencyReply, HubError,
                        MalformedEnvelope, SchemaViolation, UnknownRoute)
from hub.mapping import Mapping
from hub.schemas import openapi_validator, validate

#: Largest answer accepted from an agency, before parsing.
MAX_REPLY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class RestOperation:
    method: str
    path: str
    request_schema: str
    reply_schema: str
    #: HTTP status of an accepted asynchronous request (the answer comes later by callback).
    accepted_status: int | None = None


class RestConnector(Connector):
    operations: dict[str, RestOperation] = {}

    def start(self) -> None:
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(4, self.config.concurrency))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        openapi = self.config.options.get("openapi", f"v1/agencies/{self.agency}.openapi.yaml")
        self._compiled: dict[str, tuple[RestOperation, Mapping, Mapping, Any, Any]] = {}
        for name, op in self.operations.items():
            self._compiled[name] = (
                op,
                Mapping.packaged(self.agency, f"{name}.request"),
                Mapping.packaged(self.agency, f"{name}.reply"),
                openapi_validator(openapi, op.request_schema),
                openapi_validator(openapi, op.reply_schema),
            )
        self.node_id = self.dependencies.get("node_id", "MA/GOV/MAEC/ECONSULAT-HUB")

    def close(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()

    def operation_of(self, envelope: Envelope) -> str:
        name = envelope.schema_ref.name
        prefix, suffix = f"{self.agency}.", ".request"
        if name.startswith(prefix) and name.endswith(suffix):
            operation = name[len(prefix):-len(suffix)]
            if operation in self._compiled:
                return operation
        raise UnknownRoute(f"{self.agency} has no operation for schema {name!r}", schema=name)

    def send(self, envelope: Envelope) -> Reply:
        operation = self.operation_of(envelope)
        op, to_wire, from_wire, request_validator, reply_validator = self._compiled[operation]
        context = {"message_id": str(envelope.id), "correlation_id": envelope.correlation_id,
                   "created_at": format_timestamp(envelope.created_at).replace(".000000", "")}
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
        if op.accepted_status is not None and response.status_code == op.accepted_status:
            return Reply(outcome="accepted", pending=True,
                         wire_digest=hashlib.sha256(response.content).hexdigest())
        self._check_echo(response, envelope)
        answer = self.verify_reply(response)
        try:
            doc = parse_json(answer, what=f"{self.agency} answer", max_depth=MAX_DEPTH)
        except MalformedEnvelope as exc:
            raise BadAgencyReply(f"{self.agency} answered with unparseable JSON: {exc.message}"
                                 ) from None
        validate(reply_validator, doc, what=f"{self.agency} {operation} answer")
        mapped = from_wire.apply(doc, context)
        return Reply(outcome=mapped["outcome"], data=mapped.get("data", {}),
                     agency_reference=mapped.get("agency_reference"),
                     wire_digest=hashlib.sha256(response.content).hexdigest())

    # -- seams for message-level security (JWS), overridden once keys are configured -----------

    def sign_request(self, body: bytes, envelope: Envelope) -> dict[str, str]:
        """Extra headers carrying the request's signature."""
        return {}

    def verify_reply(self, response: requests.Response) -> bytes:
        """The verified answer body; raise `SecurityError` when it cannot be trusted."""
        return response.content

    # -- HTTP ---------------------------------------------------------------------------------

    def _exchange(self, op: RestOperation, body: bytes, headers: dict[str, str]
                  ) -> requests.Response:
        url = self.config.base_url.rstrip("/") + op.path
        self.last_wire = WireStats(request_bytes=len(body))
        try:
            response = self._session.request(op.method, url, data=body, headers=headers,
                                             timeout=(min(3.0, self.config.timeout),
                                                      self.config.timeout), stream=True)
            try:
                # Read at most one byte over the limit: an oversized answer is refused unread.
                content = response.raw.read(MAX_REPLY_BYTES + 1, decode_content=True)
                if len(content) <= MAX_REPLY_BYTES:
                    response._content = content  # noqa: SLF001 - hand back as a normal response
                    response._content_consumed = True  # noqa: SLF001 - keeps the connection pooled
            finally:
                response.close()
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise AgencyTimeout(f"{self.agency} did not answer within {self.config.timeout}s"
                                ) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise AgencyUnavailable(f"{self.agency} unreachable: {type(exc).__name__}") from None
        except (OSError, ValueError) as exc:
            raise AgencyUnavailable(f"{self.agency} connection failed: {exc!r}") from None
        self.last_wire = WireStats(request_bytes=len(body), response_bytes=len(content),
                                   status=response.status_code)
        if len(content) > MAX_REPLY_BYTES:
            raise BadAgencyReply(f"{self.agency} answer exceeds {MAX_REPLY_BYTES} bytes")
        status = response.status_code
        if status == 429 or status >= 500:
            raise AgencyUnavailable(f"{self.agency} answered HTTP {status}", status=status)
        if 400 <= status < 500:
            raise self._refusal(response)
        if status not in (200, 201) and status != op.accepted_status:
            raise BadAgencyReply(f"{self.agency} answered unexpected HTTP {status}", status=status)
        return response

    def _refusal(self, response: requests.Response) -> HubError:
        code, message = "", ""
        try:
            error = parse_json(response.content, what="error").get("error", {})
            code, message = str(error.get("code", "")), str(error.get("message", ""))[:300]
        except (MalformedEnvelope, AttributeError):
            pass
        if response.status_code == 422:
            return SchemaViolation(f"{self.agency} rejected the request as invalid: {message}",
                                   errors=[{"field": "(agency)", "code": code or "invalid",
                                            "message": message}])
        return AgencyRefusal(f"{self.agency} refused the request: HTTP {response.status_code}"
                             f" {code} {message}".strip(), status=response.status_code,
                             agency_code=code)

    def _check_echo(self, response: requests.Response, envelope: Envelope) -> None:
        echoed = response.headers.get("X-Road-Id")
        if echoed is not None and echoed != str(envelope.id):
            raise BadAgencyReply(f"{self.agency} answered for message {echoed},"
                                 f" not {envelope.id}")
