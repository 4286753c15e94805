"""XML on the wire, done safely: hardened parsing, local schemas, SOAP 1.1 and X-Road 4.0 headers.

Every XML document the hub receives (agency answers, simulator requests, inbound SOAP) goes through
`parse_xml`: no DTD, no entity expansion, no network, no huge trees; a ``<!DOCTYPE`` is refused
outright as `HostileInput`. Schemas are compiled from the ``schemas`` package with `LOCAL_SCHEMAS`
standing in for the web addresses their imports name, so nothing is ever fetched.

    >>> doc = parse_xml(b"<a><b>1</b></a>")
    >>> to_dict(doc)
    {'b': '1'}

X-Road (message protocol 4.0): `XRoadHeader` holds ``client``, ``service``, ``id``, ``userId``,
``issue`` and ``protocolVersion``; `XRoadHeader.elements` renders them in the protocol's order and
`XRoadHeader.from_envelope` reads them back. A provider echoes them and adds ``requestHash``
(`request_hash`: base64 SHA-512 of the request message as received).
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from lxml import etree

from hub.errors import BadAgencyReply, ConfigurationError, HostileInput, SchemaViolation

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD = "http://x-road.eu/xsd/xroad.xsd"
XROAD_ID = "http://x-road.eu/xsd/identifiers"
PROTOCOL_VERSION = "4.0"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
NSMAP = {"soapenv": SOAP_ENV, "xrd": XROAD, "id": XROAD_ID}

#: Largest XML document accepted, before parsing.
MAX_XML_BYTES = 2 * 1024 * 1024


def _xmlschema_bundled(name: str) -> Path:
    import xmlschema

    return Path(xmlschema.__file__).parent / "schemas" / name


def _schemas_dir() -> Path:
    return Path(str(resources.files("schemas"))) / "v1"


#: Web addresses named by schema imports -> the local file that stands in for each.
def local_schemas() -> dict[str, Path]:
    return {
        "http://x-road.eu/xsd/identifiers.xsd": _schemas_dir() / "xroad" / "identifiers.xsd",
        "http://x-road.eu/xsd/xroad.xsd": _schemas_dir() / "xroad" / "xroad.xsd",
        "http://www.w3.org/2009/01/xml.xsd": _xmlschema_bundled("XML/xml.xsd"),
        "http://www.w3.org/2001/xml.xsd": _xmlschema_bundled("XML/xml.xsd"),
    }


LOCAL_SCHEMAS = local_schemas()


class _LocalResolver(etree.Resolver):
    """Resolves the known web addresses to local files; anything else resolves to nothing."""

    def resolve(self, url, public_id, context):  # type: ignore[no-untyped-def]
        local = LOCAL_SCHEMAS.get(url)
        if local is not None:
            return self.resolve_filename(str(local), context)
        return None


def safe_parser(*, for_schema: bool = False) -> etree.XMLParser:
    """The only parser the hub uses for XML it did not write itself."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_blank_text=True, dtd_validation=False)
    if for_schema:
        parser.resolvers.add(_LocalResolver())
    return parser


def parse_xml(data: bytes, *, what: str = "XML document",
              error: type[Exception] = BadAgencyReply) -> etree._Element:
    """Parse untrusted XML. A DOCTYPE or entity is `HostileInput`; anything unparseable raises
    ``error`` (`BadAgencyReply` for answers; inbound endpoints pass `SchemaViolation` or their
    own class)."""
    if len(data) > MAX_XML_BYTES:
        raise error(f"{what} exceeds {MAX_XML_BYTES} bytes")
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise HostileInput(f"{what} carries a DOCTYPE or entity declaration, which is refused")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise error(f"{what} is not well-formed XML: {exc}") from None
    if root is None:
        raise error(f"{what} is empty")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise HostileInput(f"{what} carries a DOCTYPE, which is refused")
    return root


@lru_cache(maxsize=64)
def xml_schema(relative: str) -> etree.XMLSchema:
    """Compiled XSD from the ``schemas`` package, e.g. ``v1/agencies/dgsn.xsd``."""
    path = _schemas_dir().parent.joinpath(*relative.split("/"))
    if not path.is_file():
        raise ConfigurationError(f"no schema file schemas/{relative}")
    try:
        return etree.XMLSchema(etree.parse(str(path), safe_parser(for_schema=True)))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ConfigurationError(f"schema {relative} does not compile: {exc}") from None


def validate_xml(schema: etree.XMLSchema, element: etree._Element, *, what: str) -> None:
    """Raise `SchemaViolation` with one entry per XSD error of ``element`` (validated as a root)."""
    if schema.validate(etree.ElementTree(_detached(element))):
        return
    errors = [{"field": _field_of(e.path), "code": "xsd", "message": e.message[:300]}
              for e in schema.error_log]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    raise SchemaViolation(f"{what} fails its XSD ({summary})", errors=errors)


def _detached(element: etree._Element) -> etree._Element:
    # Validation needs the element as the document root; a copy keeps the original in place.
    return etree.fromstring(etree.tostring(element), safe_parser())


def _field_of(path: str | None) -> str:
    if not path:
        return "(root)"
    parts = [p.split("}")[-1].split("[")[0] for p in path.strip("/").split("/")]
    return ".".join(parts[1:]) or parts[0]


def local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def to_dict(element: etree._Element) -> Any:
    """Children by local name -> text or nested dict; repeated names become lists."""
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        name, value = local(child.tag), to_dict(child)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def from_dict(parent: etree._Element, namespace: str, value: dict[str, Any]) -> etree._Element:
    """Append ``value`` under ``parent`` in ``namespace``, keys in order (lists repeat the name)."""
    for name, item in value.items():
        if item is None:
            continue
        for one in item if isinstance(item, list) else [item]:
            child = etree.SubElement(parent, f"{{{namespace}}}{name}")
            if isinstance(one, dict):
                from_dict(child, namespace, one)
            elif isinstance(one, bool):
                child.text = "true" if one else "false"
            else:
                child.text = str(one)
    return parent


def request_hash(message: bytes) -> str:
    """X-Road ``requestHash``: base64 of the SHA-512 digest of the request message."""
    return base64.b64encode(hashlib.sha512(message).digest()).decode("ascii")


def echoed_header(request_envelope: etree._Element, raw: bytes) -> list[etree._Element]:
    """What a provider puts in its answer's header: the request's X-Road header elements, in
    their order, then ``requestHash`` (SHA-512 of the request message ``raw`` as received)."""
    import copy

    found = request_envelope.find(f"{{{SOAP_ENV}}}Header")
    echoed = [copy.deepcopy(e) for e in (found if found is not None else [])
              if isinstance(e.tag, str) and etree.QName(e).namespace == XROAD]
    digest = etree.Element(f"{{{XROAD}}}requestHash", nsmap={"xrd": XROAD})
    digest.set("algorithmId", SHA512)
    digest.text = request_hash(raw)
    return echoed + [digest]


# -- X-Road header -----------------------------------------------------------------------------

_CLIENT_FIELDS = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
_SERVICE_FIELDS = _CLIENT_FIELDS + ("serviceCode", "serviceVersion")


@dataclass(frozen=True)
class XRoadHeader:
    """X-Road 4.0 header fields. ``client`` is ``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``; ``service``
    is ``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]/CODE[/VERSION]`` (the forms used in agency.yaml)."""

    client: str
    service: str
    id: str
    user_id: str | None = None
    issue: str | None = None
    protocol_version: str = PROTOCOL_VERSION

    def elements(self) -> list[etree._Element]:
        """The header elements, in the protocol's order (client, service, id, userId, issue,
        protocolVersion)."""
        out = [_identifier("client", self.client, "SUBSYSTEM", _CLIENT_FIELDS, service=False),
               _identifier("service", self.service, "SERVICE", _SERVICE_FIELDS, service=True)]
        for name, value in (("id", self.id), ("userId", self.user_id), ("issue", self.issue),
                            ("protocolVersion", self.protocol_version)):
            if value is not None:
                element = etree.Element(f"{{{XROAD}}}{name}", nsmap={"xrd": XROAD})
                element.text = value
                out.append(element)
        return out

    @classmethod
    def from_envelope(cls, envelope: etree._Element) -> "XRoadHeader | None":
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        if header is None:
            return None
        values: dict[str, str] = {}
        for child in header:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != XROAD:
                continue
            name = etree.QName(child).localname
            if name in ("client", "service"):
                values[name] = "/".join((c.text or "").strip() for c in child
                                        if isinstance(c.tag, str))
            else:
                values[name] = (child.text or "").strip()
        if not {"client", "service", "id", "protocolVersion"} <= set(values):
            return None
        return cls(client=values["client"], service=values["service"], id=values["id"],
                   user_id=values.get("userId"), issue=values.get("issue"),
                   protocol_version=values["protocolVersion"])


def _identifier(name: str, value: str, object_type: str, fields: tuple[str, ...], *,
                service: bool) -> etree._Element:
    parts = [p for p in value.split("/") if p]
    if service:
        # INSTANCE/CLASS/MEMBER[/SUBSYSTEM]/CODE[/VERSION]: a version looks like v1, v2...
        version = parts.pop() if len(parts) >= 5 and parts[-1][:1] == "v" else None
        code = parts.pop()
        if len(parts) not in (3, 4):
            raise ConfigurationError(f"X-Road service identifier {value!r} is malformed")
        names = list(_CLIENT_FIELDS[:len(parts)]) + ["serviceCode"]
        values = parts + [code]
        if version is not None:
            names.append("serviceVersion")
            values.append(version)
    else:
        if len(parts) not in (3, 4):
            raise ConfigurationError(f"X-Road client identifier {value!r} is malformed")
        names, values = list(fields[:len(parts)]), parts
        object_type = "SUBSYSTEM" if len(parts) == 4 else "MEMBER"
    element = etree.Element(f"{{{XROAD}}}{name}", nsmap={"xrd": XROAD, "id": XROAD_ID})
    element.set(f"{{{XROAD_ID}}}objectType", object_type)
    for field_name, field_value in zip(names, values):
        etree.SubElement(element, f"{{{XROAD_ID}}}{field_name}").text = field_value
    return element


# -- SOAP 1.1 envelopes --------------------------------------------------------------------------

def soap_envelope(body: etree._Element | None, header: Iterable[etree._Element] = ()
                  ) -> etree._Element:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=NSMAP)
    head = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
    for element in header:
        head.append(element)
    container = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    if body is not None:
        container.append(body)
    return envelope


def soap_fault(code: str, message: str, *, detail: etree._Element | None = None,
               header: Iterable[etree._Element] = ()) -> etree._Element:
    """A SOAP 1.1 fault; ``code`` is ``Client`` or ``Server`` (the protocol's fault codes)."""
    fault = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soapenv:{code}"
    etree.SubElement(fault, "faultstring").text = message
    if detail is not None:
        etree.SubElement(fault, "detail").append(detail)
    return soap_envelope(fault, header)


def body_of(envelope: etree._Element, *, what: str,
            error: type[Exception] = BadAgencyReply) -> etree._Element:
    """The single element of a SOAP envelope's Body."""
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise error(f"{what} is not a SOAP 1.1 envelope")
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(children) != 1:
        raise error(f"{what} must carry exactly one element in its SOAP Body")
    return children[0]


def serialize(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")
