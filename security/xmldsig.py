"""XML-DSig for the SOAP agencies (Interior, DGSN, Justice): sign what we send, verify what we get.

Two shapes, one profile (exclusive c14n ``http://www.w3.org/2001/10/xml-exc-c14n#``, SHA-256
digests, ``ecdsa-sha256`` or ``rsa-sha256`` after the key, the signer's X.509 certificate in
``ds:KeyInfo/ds:X509Data``):

*SOAP 1.1, WS-Security style* (`sign_soap`): the ``soap:Body`` (and a ``wsu:Timestamp``, and any
header you name) get a ``wsu:Id``; a ``ds:Signature`` referencing them by ``#Id`` goes into
``soap:Header/wsse:Security``. Transforms are exc-c14n only (WS-I Basic Security Profile)::

    signed = sign_soap(envelope, store.signer("hub"),
                       sign_headers=["{http://x-road.eu/xsd/xroad.xsd}id"])
    wire = to_bytes(signed)
    ...
    verified = verify_xml(reply, trust, "dgsn", expected_reference="soap-body")
    verified.signed_xml      # the Body, re-parsed from the bytes that were digested
    verified.created         # the signed wsu:Timestamp/Created, for the ReplayGuard

*Standalone document, enveloped* (`sign_document`): the signature is the last child of the root
and covers the whole document (``URI=""``, or ``#<Id>`` of the root with ``reference_id``),
transforms enveloped-signature + exc-c14n. `sign_xml` picks the shape from what it is given.

`verify_xml` returns only what the signature covers, as signxml re-parsed it from the digested
bytes, never the received tree: callers cannot read an unsigned part by mistake, which is what
defeats signature wrapping. It also checks that the covered element is *the* Body of *the*
envelope (or the document root), that there is exactly one signature where the profile puts it,
and that the certificate is trusted for the expected party (`security.trust`).

Offline verification by an agency, with xmlsec1 (tested with xmlsec1 1.2.37/OpenSSL; it checks
digests, the signature, the chain to our CA and the validity dates)::

    # standalone document
    xmlsec1 --verify --trusted-pem ca.cert.pem document.xml

    # SOAP: declare which attributes are IDs, on which elements
    WSU=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd
    xmlsec1 --verify --trusted-pem ca.cert.pem \\
      --id-attr:Id http://schemas.xmlsoap.org/soap/envelope/:Body \\
      --id-attr:Id "$WSU:Timestamp" \\
      message.xml

Add one ``--id-attr:Id <namespace>:<local-name>`` per extra signed header. xmlsec1 says
"OK"/exit 0 when every reference verifies; it does not say *which* element was signed, so a
verifier must also check that the Body's ``wsu:Id`` is among the references (as `verify_xml`
does), and check revocation separately (xmlsec1 1.2 has no ``--crl-pem``; see docs/security.md).
"""
from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Literal, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)
from signxml.exceptions import InvalidCertificate, SignXMLException
from signxml.verifier import VerifyResult

from hub.envelope import DEFAULT_MAX_BYTES
from hub.errors import (
    ConfigurationError,
    HubError,
    MalformedEnvelope,
    SignatureInvalid,
    UntrustedCertificate,
)
from security.keys import Signer
from security.safexml import DEFAULT_MAX_DEPTH, parse_xml
from security.trust import TrustStore, load_certificate

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

XmlAlgorithm = Literal["ecdsa-sha256", "rsa-sha256"]
ExpectedReference = Literal["document", "soap-body"]

_METHODS: dict[str, SignatureMethod] = {
    "ecdsa-sha256": SignatureMethod.ECDSA_SHA256,
    "rsa-sha256": SignatureMethod.RSA_SHA256,
}
_BY_KEY_TYPE: dict[str, XmlAlgorithm] = {"ec": "ecdsa-sha256", "rsa": "rsa-sha256"}
_ENVELOPE = f"{{{SOAP11_NS}}}Envelope"
_HEADER = f"{{{SOAP11_NS}}}Header"
_BODY = f"{{{SOAP11_NS}}}Body"
_SECURITY = f"{{{WSSE_NS}}}Security"
_TIMESTAMP = f"{{{WSU_NS}}}Timestamp"
_WSU_ID = f"{{{WSU_NS}}}Id"
_SIGNATURE = f"{{{DS_NS}}}Signature"
_NS = {"ds": DS_NS}


@dataclass(frozen=True)
class VerifiedXml:
    """What a verified signature covers, and who signed it. Read nothing else of the message."""

    #: The signed element (SOAP Body, or the document root without its signature), re-parsed from
    #: the exact bytes that were digested.
    signed_xml: etree._Element
    #: Those bytes (exclusive c14n): hash them for the audit trail.
    signed_bytes: bytes
    certificate: x509.Certificate
    party: str
    #: The reference URI that covered ``signed_xml`` (``""`` or ``#Id``).
    reference: str
    #: SOAP only: the signed ``wsu:Timestamp`` values, for `security.replay.ReplayGuard`.
    created: datetime | None = None
    expires: datetime | None = None
    #: SOAP only: requested headers (Clark name -> signed element), each covered by the signature.
    signed_headers: dict[str, etree._Element] = field(default_factory=dict)


def algorithm_for(signer: Signer) -> XmlAlgorithm:
    return _BY_KEY_TYPE[signer.key_type]


def to_bytes(root: etree._Element) -> bytes:
    """Serialize a signed tree for the wire. Do not pretty-print it: whitespace is signed."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# -- signing ---------------------------------------------------------------------------------------

def sign_xml(root_or_element: etree._Element, signer: Signer, *,
             algorithm: XmlAlgorithm | None = None, reference_id: str | None = None,
             sign_headers: Sequence[str] = (), now: datetime | None = None) -> etree._Element:
    """Sign a SOAP envelope (given its Envelope or its Body) or a standalone document.

    Returns a new signed tree (the input is left untouched); see `sign_soap`, `sign_document`.
    """
    element = root_or_element
    if element.tag == _BODY and element.getparent() is not None:
        element = element.getparent()
    if element.tag == _ENVELOPE:
        return sign_soap(element, signer, algorithm=algorithm, body_id=reference_id,
                         sign_headers=sign_headers, now=now)
    if element.getparent() is not None:
        raise ConfigurationError(f"sign_xml signs a whole document or a SOAP Body, not a nested "
                                 f"<{etree.QName(element).localname}>")
    return sign_document(element, signer, algorithm=algorithm, reference_id=reference_id)


def sign_document(root: etree._Element, signer: Signer, *, algorithm: XmlAlgorithm | None = None,
                  reference_id: str | None = None) -> etree._Element:
    """Enveloped signature over the whole document; ``reference_id`` sets the root's ``Id``."""
    doc = copy.deepcopy(root)
    if doc.find(f".//{_SIGNATURE}") is not None:
        raise ConfigurationError("document already carries a ds:Signature")
    if reference_id is not None:
        doc.set("Id", reference_id)
    return _sign(doc, signer, algorithm, method=methods.enveloped, references=None)


def sign_soap(envelope: etree._Element, signer: Signer, *, algorithm: XmlAlgorithm | None = None,
              body_id: str | None = None, timestamp: bool = True, ttl_seconds: int = 300,
              sign_headers: Sequence[str] = (), now: datetime | None = None) -> etree._Element:
    """Sign a SOAP 1.1 envelope's Body (+ wsu:Timestamp + named headers) into wsse:Security."""
    if envelope.tag != _ENVELOPE:
        raise ConfigurationError(f"expected a SOAP 1.1 Envelope, got {envelope.tag}")
    doc = _with_wss_namespaces(envelope)
    bodies = doc.findall(_BODY)
    if len(bodies) != 1:
        raise ConfigurationError(f"a SOAP envelope has exactly one Body, this one has "
                                 f"{len(bodies)}")
    body = bodies[0]
    header = doc.find(_HEADER)
    if header is None:
        header = etree.Element(_HEADER)
        doc.insert(0, header)
    security = header.find(_SECURITY)
    if security is None:
        security = etree.SubElement(header, _SECURITY)
    if security.find(f".//{_SIGNATURE}") is not None:
        raise ConfigurationError("envelope already carries a ds:Signature")

    ids = [_ensure_id(body, body_id or f"Body-{uuid.uuid4()}")]
    if timestamp:
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        ts = security.find(_TIMESTAMP)
        if ts is None:
            ts = etree.Element(_TIMESTAMP)
            etree.SubElement(ts, f"{{{WSU_NS}}}Created").text = _xml_time(now)
            etree.SubElement(ts, f"{{{WSU_NS}}}Expires").text = _xml_time(
                now + timedelta(seconds=ttl_seconds))
            security.insert(0, ts)
        ids.append(_ensure_id(ts, f"TS-{uuid.uuid4()}"))
    for name in sign_headers:
        found = header.findall(name)
        if len(found) != 1:
            raise ConfigurationError(f"header {name} to sign occurs {len(found)} times, expected 1")
        ids.append(_ensure_id(found[0], f"H-{uuid.uuid4()}"))

    signature = _sign(doc, signer, algorithm, method=methods.detached,
                      references=[f"#{i}" for i in ids])
    security.append(signature)
    return doc


def _sign(doc: etree._Element, signer: Signer, algorithm: XmlAlgorithm | None, *,
          method: methods, references: list[str] | None) -> etree._Element:
    algorithm = algorithm or algorithm_for(signer)
    if algorithm not in _METHODS:
        raise ConfigurationError(f"unknown XML signature algorithm {algorithm!r}")
    if algorithm != algorithm_for(signer):
        raise ConfigurationError(f"{algorithm} needs a {algorithm.split('-')[0]} key; "
                                 f"{signer.party}'s key is {signer.key_type}")
    xml_signer = XMLSigner(method=method, signature_algorithm=_METHODS[algorithm],
                           digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    try:
        return xml_signer.sign(doc, key=signer.key, cert=[signer.cert], reference_uri=references,
                               id_attribute="Id")
    except (SignXMLException, ValueError, TypeError, etree.LxmlError) as exc:
        raise ConfigurationError(f"cannot sign the document: {exc}") from None


def _with_wss_namespaces(envelope: etree._Element) -> etree._Element:
    # lxml cannot add a namespace declaration to an existing element; rebuilding the root with
    # wsse/wsu declared keeps readable prefixes instead of ns0/ns1 on every signed element.
    source = copy.deepcopy(envelope)
    nsmap = {**source.nsmap}
    for prefix, uri in (("wsse", WSSE_NS), ("wsu", WSU_NS)):
        if uri not in nsmap.values():
            nsmap[prefix if prefix not in nsmap else f"{prefix}1"] = uri
    root = etree.Element(source.tag, attrib=dict(source.attrib), nsmap=nsmap)
    root.text = source.text
    for child in list(source):
        root.append(child)
    return root


def _ensure_id(element: etree._Element, new_id: str) -> str:
    existing = element.get(_WSU_ID) or element.get("Id")
    if existing:
        return existing
    element.set(_WSU_ID, new_id)
    return new_id


def _xml_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- verification ----------------------------------------------------------------------------------

def verify_xml(data: bytes, trust: TrustStore, party: str, *,
               expected_reference: ExpectedReference = "document",
               signed_headers: Iterable[str] = (), require_timestamp: bool = True,
               at: datetime | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
               max_depth: int = DEFAULT_MAX_DEPTH) -> VerifiedXml:
    """Verify ``data`` as signed by ``party``; return only the signed content (see module doc).

    Raises `MessageTooLarge`/`HostileInput`/`MalformedEnvelope` for unacceptable XML,
    `SignatureInvalid` when unsigned, tampered or not covering the expected element, and
    `UntrustedCertificate` when the signer's certificate may not speak for ``party``.
    """
    if expected_reference not in ("document", "soap-body"):
        raise ConfigurationError(f"unknown expected_reference {expected_reference!r}")
    at = (at or trust.clock()).astimezone(timezone.utc)
    root = parse_xml(data, max_bytes=max_bytes, max_depth=max_depth, what="signed XML")
    soap = expected_reference == "soap-body"
    body = _soap_body(root) if soap else None

    signatures = list(root.iter(_SIGNATURE))
    if not signatures:
        raise SignatureInvalid("message is not signed (no ds:Signature)", reason="unsigned")
    if len(signatures) > 1:
        raise SignatureInvalid(f"message carries {len(signatures)} signatures; exactly one is "
                               "accepted", reason="several_signatures")
    signature = signatures[0]
    _check_placement(signature, root, soap)
    cert = _signer_certificate(signature)
    trust.verify_certificate(party, cert, at=at)
    method = _METHODS[_BY_KEY_TYPE["rsa" if _is_rsa(cert) else "ec"]]
    config = SignatureConfiguration(
        require_x509=True, location=".//", expect_references=True,
        signature_methods=frozenset({method}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
        verification_time=at)
    try:
        results = XMLVerifier().verify(data, x509_cert=cert, expect_config=config,
                                       id_attribute="Id")
    except InvalidCertificate as exc:
        raise UntrustedCertificate(f"signer certificate refused: {exc}", reason="signxml") from None
    except HubError:
        raise
    except (SignXMLException, ValueError, TypeError, etree.LxmlError) as exc:
        raise SignatureInvalid(f"signature verification failed: {exc}",
                               reason="bad_signature") from None
    except Exception as exc:  # cryptography.exceptions.InvalidSignature and kin
        raise SignatureInvalid(f"signature verification failed: {type(exc).__name__}: {exc}",
                               reason="bad_signature") from None
    results = results if isinstance(results, list) else [results]
    references = results[0].signature_xml.findall("ds:SignedInfo/ds:Reference", _NS)
    if len(references) != len(results):
        raise SignatureInvalid("signature references and results disagree", reason="bad_signature")
    _check_profile(results[0].signature_xml, soap)

    # Keep the element proxies themselves: lxml reuses a proxy only while it is referenced, so
    # identity (``is``) is reliable here and id() of temporaries would not be.
    covered: list[tuple[etree._Element, str, VerifyResult]] = []
    for reference, result in zip(references, results, strict=True):
        uri = reference.get("URI", "")
        target = root if uri == "" else _by_id(root, uri[1:]) if uri.startswith("#") else None
        if target is not None:
            covered.append((target, uri, result))

    def coverage(element: etree._Element) -> tuple[str, VerifyResult] | None:
        for target, uri, result in covered:
            if target is element:
                return uri, result
        return None

    if not soap:
        whole = coverage(root)
        if len(results) != 1 or whole is None:
            raise SignatureInvalid("signature does not cover the whole document (expected one "
                                   "reference to the root)", reason="wrong_reference")
        uri, result = whole
        return VerifiedXml(_signed(result), result.signed_data, cert, party, uri)  # type: ignore[attr-defined]

    assert body is not None
    body_cover = coverage(body)
    if body_cover is None:
        raise SignatureInvalid("signature does not cover the SOAP Body (signature wrapping?)",
                               reason="body_not_signed")
    uri, body_result = body_cover
    created = expires = None
    timestamp = _timestamp_of(root)
    if timestamp is not None:
        ts_cover = coverage(timestamp)
        if ts_cover is None:
            raise SignatureInvalid("wsu:Timestamp is present but not signed",
                                   reason="timestamp_not_signed")
        created, expires = _read_timestamp(_signed(ts_cover[1]))
    elif require_timestamp:
        raise SignatureInvalid("message has no signed wsu:Timestamp", reason="no_timestamp")
    headers: dict[str, etree._Element] = {}
    header = root.find(_HEADER)
    for name in signed_headers:
        found = header.findall(name) if header is not None else []
        header_cover = coverage(found[0]) if len(found) == 1 else None
        if header_cover is None:
            raise SignatureInvalid(f"header {name} is missing, repeated or not signed",
                                   reason="header_not_signed")
        headers[name] = _signed(header_cover[1])
    return VerifiedXml(_signed(body_result), body_result.signed_data, cert, party, uri,  # type: ignore[attr-defined]
                       created=created, expires=expires, signed_headers=headers)


def _soap_body(root: etree._Element) -> etree._Element:
    if root.tag != _ENVELOPE:
        raise MalformedEnvelope(f"expected a SOAP 1.1 Envelope, got {root.tag}")
    children = [c for c in root if isinstance(c.tag, str)]
    bodies = [c for c in children if c.tag == _BODY]
    if len(bodies) != 1:
        raise SignatureInvalid(f"SOAP envelope has {len(bodies)} Body elements (signature "
                               "wrapping?)", reason="body_count")
    allowed = [_HEADER, _BODY] if len(children) == 2 else [_BODY]
    if [c.tag for c in children] != allowed:
        raise MalformedEnvelope("SOAP envelope must hold an optional Header then one Body, "
                                "nothing else")
    return bodies[0]


def _check_placement(signature: etree._Element, root: etree._Element, soap: bool) -> None:
    parent = signature.getparent()
    if soap:
        ok = (parent is not None and parent.tag == _SECURITY and parent.getparent() is not None
              and parent.getparent().tag == _HEADER and parent.getparent().getparent() is root)
        where = "soap:Header/wsse:Security"
    else:
        ok = parent is root
        where = "a child of the document root"
    if not ok:
        raise SignatureInvalid(f"ds:Signature must be {where}", reason="misplaced_signature")


def _signer_certificate(signature: etree._Element) -> x509.Certificate:
    values = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if len(values) != 1:
        raise SignatureInvalid(f"signature must carry exactly one X509Certificate, found "
                               f"{len(values)}", reason="no_certificate")
    try:
        der = base64.b64decode("".join((values[0].text or "").split()), validate=True)
    except ValueError:
        raise UntrustedCertificate("X509Certificate is not base64", reason="unreadable") from None
    return load_certificate(der)


def _is_rsa(cert: x509.Certificate) -> bool:
    return isinstance(cert.public_key(), rsa.RSAPublicKey)


def _check_profile(signature: etree._Element, soap: bool) -> None:
    # signxml accepts every c14n and transform it knows; our agreement with agencies is narrower,
    # and a narrower profile leaves less room for canonicalization tricks.
    c14n = signature.find("ds:SignedInfo/ds:CanonicalizationMethod", _NS)
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise SignatureInvalid("SignedInfo must use exclusive c14n", reason="profile")
    allowed = {EXC_C14N} if soap else {ENVELOPED, EXC_C14N}
    path = "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform"
    for transform in signature.iterfind(path, _NS):
        if transform.get("Algorithm") not in allowed:
            raise SignatureInvalid(f"transform {transform.get('Algorithm')} is not allowed",
                                   reason="profile")


def _by_id(root: etree._Element, value: str) -> etree._Element | None:
    found = root.xpath("//*[@*[local-name()='Id']=$v]", v=value)
    return found[0] if len(found) == 1 else None


def _timestamp_of(root: etree._Element) -> etree._Element | None:
    found = root.findall(f"{_HEADER}/{_SECURITY}/{_TIMESTAMP}")
    if len(found) > 1:
        raise SignatureInvalid("more than one wsu:Timestamp", reason="timestamp_count")
    return found[0] if found else None


def _read_timestamp(ts: etree._Element) -> tuple[datetime, datetime | None]:
    def read(name: str) -> datetime | None:
        text = ts.findtext(f"{{{WSU_NS}}}{name}")
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise MalformedEnvelope(f"wsu:{name} is not a timestamp: {text!r}") from None
        if value.tzinfo is None:
            raise MalformedEnvelope(f"wsu:{name} has no time zone")
        return value.astimezone(timezone.utc)

    created = read("Created")
    if created is None:
        raise MalformedEnvelope("wsu:Timestamp has no wsu:Created")
    return created, read("Expires")


def _signed(result: VerifyResult) -> etree._Element:
    element = result.signed_xml
    if element is None:
        raise SignatureInvalid("signed content is not XML", reason="not_xml")
    return element
