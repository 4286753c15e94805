"""Base for SOAP 1.1 agency connectors (Interior, DGSN, Justice): Zeep, X-Road 4.0 headers, XSD
checks both ways, fault classification.

A SOAP connector declares its operations; the rest is data (WSDL, XSD, mappings)::

    class DgsnConnector(SoapConnector):
        operations = {
            "verify_identity": SoapOperation("VerifyIdentity", service_code="verifyIdentity"),
        }

`start` builds one Zeep client per connector from the packaged WSDL (``schemas/v1/agencies/
<agency>.wsdl``), with a `LocalTransport` that serves the X-Road schemas from disk and refuses
the network, over a pooled `requests.Session` with the agency's timeout and TLS settings.

For each call: the canonical payload is mapped with ``mappings/<agency>/<operation>.request.yaml``,
Zeep builds the SOAP message with the X-Road header (``client`` = the hub, ``service`` = the
agency's ``xroad_service`` + the operation's code, ``id`` = the envelope id, which is also the
idempotency key, ``userId`` = the post, ``issue`` = the case reference, ``protocolVersion`` 4.0),
the body is validated against the agency's XSD, signed (`sign_message` seam) and posted. The answer
is parsed safely, verified (`verify_reply` seam), its echoed header checked (same ``id``, a
``requestHash`` of exactly what was sent), its body validated against the XSD, deserialized by Zeep
and mapped back with ``<operation>.reply.yaml``.

Faults: ``soap:Server`` (or an HTTP 5xx without a fault) is `AgencyUnavailable`, retried;
``soap:Client`` or an agency's own business fault code is `AgencyRefusal` (its ``agency_code`` is
the detail's ``code``), parked.
"""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree
from zeep.transports import Transport

from connectors.base import HttpConnector, Reply, WireStats
from connectors.http import Answer, exchange
from connectors.signing import replace_body
from connectors.xml import (LOCAL_SCHEMAS, SOAP_ENV, XRoadHeader, body_of, local, parse_xml,
                            request_hash, serialize, to_dict, validate_xml, xml_schema)
from hub.envelope import Envelope, format_timestamp
from hub.errors import (AgencyRefusal, AgencyUnavailable, BadAgencyReply, ConfigurationError,
                        HubError, SchemaViolation)
from hub.mapping import Mapping
from hub.schemas import read_resource


@dataclass(frozen=True)
class SoapOperation:
    #: The WSDL operation, e.g. ``VerifyIdentity``.
    soap_name: str
    #: X-Road ``serviceCode`` of the operation, e.g. ``verifyIdentity``.
    service_code: str
    service_version: str = "v1"


class LocalTransport(Transport):
    """Zeep transport that loads schemas from the package and never from the network.

    WSDL and XSD files are read from disk; the web addresses that X-Road schemas import are
    served from `LOCAL_SCHEMAS`; any other remote address is a `ConfigurationError`. Calls
    themselves do not go through Zeep's transport: `SoapConnector` posts the message itself so
    that it can sign, bound and check what goes over the wire.
    """

    def __init__(self, *args: Any, allowed: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Address prefixes that may be fetched (the hub's own WSDL, for its partners' clients).
        self.allowed = allowed

    def load(self, url: str) -> bytes:
        if url in LOCAL_SCHEMAS:
            return LOCAL_SCHEMAS[url].read_bytes()
        if self.allowed and url.startswith(self.allowed):
            return super().load(url)
        if "://" in url and not url.startswith("file://"):
            raise ConfigurationError(f"schema {url} is not available locally (no network)")
        return super().load(url)


def wsdl_path(relative: str) -> str:
    """File path of a packaged WSDL (``v1/agencies/dgsn.wsdl``); raises if absent."""
    read_resource(relative)  # raises ConfigurationError when missing
    from importlib import resources

    return str(resources.files("schemas").joinpath(*relative.split("/")))


def build_client(wsdl: str, session: Any, timeout: float) -> zeep.Client:
    """A Zeep client for a packaged WSDL, hardened: no DTD, no entities, no network."""
    transport = LocalTransport(session=session, timeout=timeout, operation_timeout=timeout)
    settings = zeep.Settings(strict=True, raw_response=False, forbid_dtd=True,
                             forbid_entities=True, xml_huge_tree=False,
                             # Schema imports are resolved by LocalTransport, which never
                             # reaches the network; DTDs and entities stay forbidden.
                             forbid_external=False)
    try:
        return zeep.Client(wsdl_path(wsdl), transport=transport, settings=settings)
    except HubError:
        raise
    except Exception as exc:  # zeep raises many kinds while reading a WSDL
        raise ConfigurationError(f"cannot load WSDL {wsdl}: {exc}") from None


def plain(value: Any) -> Any:
    """Zeep's deserialized objects as JSON-able data: dates as ISO strings, no None."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


class SoapConnector(HttpConnector):
    operations: ClassVar[dict[str, SoapOperation]] = {}
    #: Fault codes (local part) that mean the agency refused on business grounds.
    refusal_codes: frozenset[str] = frozenset({"Client"})

    def start(self) -> None:
        options = self.config.options
        self._wsdl = str(options.get("wsdl", f"v1/agencies/{self.agency}.wsdl"))
        self._xsd = xml_schema(str(options.get("xsd", f"v1/agencies/{self.agency}.xsd")))
        self._session = self.open_session()
        self._client = build_client(self._wsdl, self._session, self.config.timeout)
        binding = next(iter(self._client.wsdl.bindings))
        self._address = self.config.base_url.rstrip("/") + str(options.get("path", "/soap"))
        self._service = self._client.create_service(binding, self._address)
        self._binding = self._client.wsdl.bindings[binding]
        self._compiled: dict[str, tuple[SoapOperation, Mapping, Mapping]] = {}
        for name, op in self.operations.items():
            if self._binding.get(op.soap_name) is None:
                raise ConfigurationError(f"{self._wsdl} has no operation {op.soap_name}")
            self._compiled[name] = (op, Mapping.packaged(self.agency, f"{name}.request"),
                                    Mapping.packaged(self.agency, f"{name}.reply"))

    def header_for(self, op: SoapOperation, envelope: Envelope) -> XRoadHeader:
        service = "/".join(p for p in (self.config.xroad_service, op.service_code,
                                       op.service_version) if p)
        return XRoadHeader(client=self.node_id, service=service, id=str(envelope.id),
                           user_id=envelope.sender, issue=envelope.correlation_id)

    # -- the call -----------------------------------------------------------------------------

    def send(self, envelope: Envelope) -> Reply:
        operation = self.operation_of(envelope)
        op, to_wire, from_wire = self._compiled[operation]
        context = {"message_id": str(envelope.id), "correlation_id": envelope.correlation_id,
                   "created_at": format_timestamp(envelope.created_at).replace(".000000", "")}
        document = to_wire.apply(envelope.payload, context)
        message = self._build(op, self.header_for(op, envelope), document, operation)
        message = self.sign_message(message, envelope)
        raw = serialize(message)
        self.last_wire = WireStats(request_bytes=len(raw))  # what went out, even on a timeout
        answer = exchange(self._session, "POST", self._address, body=raw, agency=self.agency,
                          timeout=self.config.timeout,
                          headers={"Content-Type": "text/xml; charset=utf-8",
                                   "SOAPAction": f'"{self._soap_action(op)}"'})
        self.last_wire = WireStats(request_bytes=len(raw), response_bytes=len(answer.content),
                                   status=answer.status)
        doc = self._parse(answer)
        fault = doc.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
        if fault is not None or answer.status != 200:
            # Classified before verification: a gateway's fault is unsigned, and a fault only
            # decides retry or park, never what the case records.
            raise self._fault(op, answer)
        doc = self.verify_reply(doc, answer)
        self._check_echo(doc, envelope, raw)
        validate_xml(self._xsd, body_of(doc, what=f"{self.agency} answer"),
                     what=f"{self.agency} {operation} answer")
        result = self._deserialize(op, Answer(answer.status, answer.headers, serialize(doc)))
        mapped = from_wire.apply(result, context)
        return Reply(outcome=mapped["outcome"], data=mapped.get("data", {}),
                     agency_reference=mapped.get("agency_reference"),
                     wire_digest=hashlib.sha256(answer.content).hexdigest())

    def _build(self, op: SoapOperation, header: XRoadHeader, document: dict[str, Any],
               operation: str) -> etree._Element:
        try:
            message = self._client.create_message(self._service, op.soap_name,
                                                  _soapheaders=header.elements(), **document)
        except (zeep.exceptions.Error, TypeError, ValueError) as exc:
            raise SchemaViolation(f"{self.agency} {operation} request cannot be built: {exc}",
                                  errors=[{"field": "(request)", "code": "xsd",
                                           "message": str(exc)[:300]}]) from None
        validate_xml(self._xsd, body_of(message, what="request"),
                     what=f"{self.agency} {operation} request")
        return message

    def _soap_action(self, op: SoapOperation) -> str:
        return self._binding.get(op.soap_name).soapaction or ""

    def _parse(self, answer: Answer) -> etree._Element:
        if answer.status >= 500 and "xml" not in answer.media_type:
            raise AgencyUnavailable(f"{self.agency} answered HTTP {answer.status}",
                                    status=answer.status)
        if answer.status == 429:
            raise AgencyUnavailable(f"{self.agency} answered HTTP 429", status=429)
        if 400 <= answer.status < 500 and "xml" not in answer.media_type:
            raise AgencyRefusal(f"{self.agency} refused the request: HTTP {answer.status}",
                                status=answer.status)
        return parse_xml(answer.content, what=f"{self.agency} answer")

    def _fault(self, op: SoapOperation, answer: Answer) -> HubError:
        """Classify a SOAP fault (read by Zeep) into retry or refusal."""
        try:
            self._binding.process_reply(self._client, self._binding.get(op.soap_name),
                                        _ZeepResponse(answer))
        except zeep.exceptions.Fault as fault:
            code = (fault.code or "").split(":")[-1]
            detail = to_dict(fault.detail) if fault.detail is not None else {}
            business = detail.get("BusinessFault") if isinstance(detail, dict) else None
            agency_code = business.get("code", "") if isinstance(business, dict) else ""
            message = (fault.message or "")[:300]
            if code in self.refusal_codes or (code not in ("Server", "") and agency_code):
                return AgencyRefusal(f"{self.agency} refused the request: {agency_code or code}"
                                     f" {message}".strip(), agency_code=agency_code or code,
                                     status=answer.status)
            return AgencyUnavailable(f"{self.agency} server fault: {message}", status=answer.status,
                                     fault_code=code)
        except zeep.exceptions.Error as exc:
            return BadAgencyReply(f"{self.agency} answered with an unreadable fault: {exc}")
        return AgencyUnavailable(f"{self.agency} answered HTTP {answer.status} without a fault",
                                 status=answer.status)

    def _check_echo(self, doc: etree._Element, envelope: Envelope, sent: bytes) -> None:
        header = XRoadHeader.from_envelope(doc)
        if header is None:
            raise BadAgencyReply(f"{self.agency} answer lacks the X-Road header")
        if header.id != str(envelope.id):
            raise BadAgencyReply(f"{self.agency} answered for message {header.id},"
                                 f" not {envelope.id}")
        hashes = doc.findall(f"{{{SOAP_ENV}}}Header/{{http://x-road.eu/xsd/xroad.xsd}}requestHash")
        if len(hashes) != 1 or (hashes[0].text or "").strip() != request_hash(sent):
            raise BadAgencyReply(f"{self.agency} answer does not carry the hash of the request"
                                 f" it answers")

    def _deserialize(self, op: SoapOperation, answer: Answer) -> dict[str, Any]:
        try:
            result = self._binding.process_reply(self._client, self._binding.get(op.soap_name),
                                                 _ZeepResponse(answer))
        except (zeep.exceptions.Error, ValueError, TypeError) as exc:
            raise BadAgencyReply(f"{self.agency} answer cannot be read: {exc}") from None
        body = getattr(result, "body", result)
        data = zeep.helpers.serialize_object(body, target_cls=dict)
        if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())),
                                                                    dict):
            data = next(iter(data.values()))  # the body part, unwrapped
        return plain(data)

    # -- seams for message-level security (XML-DSig), overridden once keys are configured ------

    def sign_message(self, message: etree._Element, envelope: Envelope) -> etree._Element:
        """The SOAP message to send, signed (XML-DSig) when the hub has signing keys."""
        signing = self.deps.signing
        return signing.sign_soap(message) if signing is not None else message

    def verify_reply(self, doc: etree._Element, answer: Answer) -> etree._Element:
        """The verified answer, whose Body is exactly what the agency signed; raises
        `SecurityError` when it cannot be trusted (signing on and the answer unsigned, tampered
        or signed by another party)."""
        signing = self.deps.signing
        if signing is None:
            return doc
        verified = signing.verify_soap(answer.content, self.agency, answer=True)
        return replace_body(doc, verified.signed_xml)


class _ZeepResponse:
    """What Zeep's `process_reply` reads from a response, from an already bounded `Answer`."""

    def __init__(self, answer: Answer) -> None:
        self.status_code = answer.status
        self.content = answer.content
        self.headers = answer.headers
        self.encoding = "utf-8"


def fault_code_of(envelope: etree._Element) -> str | None:
    """Local part of a SOAP fault's code, or None when the envelope carries no fault."""
    fault = envelope.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if fault is None:
        return None
    return local_code((fault.findtext("faultcode") or "").strip())


def local_code(code: str) -> str:
    return code.split(":")[-1]


__all__ = ["SoapConnector", "SoapOperation", "LocalTransport", "build_client", "plain",
           "fault_code_of", "local"]
