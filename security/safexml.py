"""Parse untrusted XML (and JSON) without letting it attack the parser.

Every XML document that reaches the hub from outside (an agency's SOAP reply, Justice's inbound
request) goes through `parse_xml` before anything else looks at it::

    root = parse_xml(body, max_bytes=settings.max_message_bytes)

What is refused, and with which error:

- more than ``max_bytes`` bytes -> `MessageTooLarge` (checked before parsing);
- any DOCTYPE (internal or external DTD), hence any entity declaration: XXE, billion laughs,
  "quadratic blowup" -> `HostileInput`;
- entity references left in the tree, processing instructions (``<?xml-stylesheet ...?>``) ->
  `HostileInput`;
- elements nested deeper than ``max_depth`` -> `HostileInput`;
- anything not well-formed -> `MalformedEnvelope`.

The parser itself never resolves entities, never touches the network, keeps libxml2's
``huge_tree`` safety limits on, and loads no DTD. Comments are kept: signature canonicalization
(exclusive c14n without comments) ignores them and `xmldsig` returns only re-parsed signed bytes.

JSON is already parsed safely by `hub.envelope.parse_json` (depth, duplicate keys, NaN);
`parse_json_limited` only adds the size check in front of it.
"""
from __future__ import annotations

from typing import Any

from lxml import etree

from hub.envelope import DEFAULT_MAX_BYTES, parse_json
from hub.errors import ConfigurationError, HostileInput, MalformedEnvelope, MessageTooLarge

#: A SOAP envelope with a signed, reasonably structured payload fits easily in this.
DEFAULT_MAX_DEPTH = 64


def _parser() -> etree.XMLParser:
    # One parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_pis=False, remove_comments=False, recover=False,
        attribute_defaults=False, collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
              max_depth: int = DEFAULT_MAX_DEPTH, what: str = "XML document") -> etree._Element:
    """Parse ``data`` into its root element, refusing hostile constructs (see module docstring)."""
    if not isinstance(data, bytes):
        raise ConfigurationError("parse_xml takes bytes: the encoding is the document's business")
    if len(data) > max_bytes:
        raise MessageTooLarge(f"{what} is {len(data)} bytes, limit is {max_bytes}",
                              size=len(data), limit=max_bytes)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 reports some DTD abuse (entity loops, amplification) as syntax errors.
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise HostileInput(f"{what} declares a DTD or entities, which are refused") from None
        raise MalformedEnvelope(f"{what} is not well-formed XML: {exc}") from None
    except (etree.LxmlError, ValueError) as exc:
        raise MalformedEnvelope(f"{what} cannot be parsed: {exc}") from None
    check_tree(root, max_depth=max_depth, what=what)
    return root


def check_tree(root: etree._Element, *, max_depth: int = DEFAULT_MAX_DEPTH,
               what: str = "XML document") -> None:
    """Apply the DTD, entity, processing-instruction and depth rules to a parsed tree."""
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise HostileInput(f"{what} has a DOCTYPE; DTDs are refused")
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if isinstance(sibling, etree._ProcessingInstruction):
            raise HostileInput(f"{what} contains a processing instruction <?{sibling.target}?>")
    depth = 0
    for event, _node in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth > max_depth:
            raise HostileInput(f"{what} nests deeper than {max_depth} elements", limit=max_depth)
    for node in root.iter(etree.Entity, etree.ProcessingInstruction):
        if isinstance(node, etree._Entity):
            raise HostileInput(f"{what} contains an entity reference &{node.name};")
        raise HostileInput(f"{what} contains a processing instruction <?{node.target}?>")


def parse_json_limited(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
                       what: str = "document") -> Any:
    """`hub.envelope.parse_json` behind a size check (`MessageTooLarge`)."""
    if len(raw) > max_bytes:
        raise MessageTooLarge(f"{what} is {len(raw)} bytes, limit is {max_bytes}",
                              size=len(raw), limit=max_bytes)
    return parse_json(raw, what=what)
