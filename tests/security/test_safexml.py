"""security.safexml: hostile XML is refused before anything reads it."""
from __future__ import annotations

import pytest

from hub.errors import ConfigurationError, HostileInput, MalformedEnvelope, MessageTooLarge
from security.safexml import check_tree, parse_json_limited, parse_xml

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
          + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10)
                     for i in range(8))
          + b"]><l>&i;</l>")
PARAMETER_ENTITY = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]><r/>'
EXTERNAL_DTD = b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd"><r/>'


def test_plain_document_with_comments_parses() -> None:
    root = parse_xml(b'<?xml version="1.0" encoding="UTF-8"?><!-- hi --><a><b x="1">t</b></a>')
    assert root.tag == "a" and root.find("b").text == "t"


@pytest.mark.parametrize("data", [XXE, LAUGHS, PARAMETER_ENTITY, EXTERNAL_DTD,
                                  b"<!DOCTYPE r><r/>",
                                  '<!DOCTYPE r [<!ENTITY e "v">]><r>&e;</r>'.encode("utf-16")],
                         ids=["xxe", "billion-laughs", "parameter-entity", "external-dtd",
                              "bare-doctype", "utf16-doctype"])
def test_any_doctype_is_hostile(data: bytes) -> None:
    with pytest.raises(HostileInput):
        parse_xml(data)


def test_entity_content_never_reaches_the_tree() -> None:
    with pytest.raises(HostileInput) as exc:
        parse_xml(XXE)
    assert "root:" not in str(exc.value)  # /etc/passwd was not read into the message


@pytest.mark.parametrize("data", [b'<?xml-stylesheet href="x.xsl"?><r/>', b"<r><?php evil()?></r>",
                                  b"<r/><?trailing pi?>"])
def test_processing_instructions_are_hostile(data: bytes) -> None:
    with pytest.raises(HostileInput, match="processing instruction"):
        parse_xml(data)


def test_depth_limit() -> None:
    ok = b"<a>" * 10 + b"</a>" * 10
    assert parse_xml(ok, max_depth=10) is not None
    with pytest.raises(HostileInput, match="deeper than 10"):
        parse_xml(b"<a>" * 11 + b"</a>" * 11, max_depth=10)


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(MessageTooLarge, match="limit is 100") as exc:
        parse_xml(b"<r>" + b"x" * 200 + b"</r>", max_bytes=100)
    assert exc.value.details == {"size": 207, "limit": 100}


@pytest.mark.parametrize("data", [b"<a><b></a>", b"not xml", b"", b"<a>&undeclared;</a>"])
def test_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEnvelope, match="not well-formed"):
        parse_xml(data)


def test_text_is_refused_because_encoding_belongs_to_the_document() -> None:
    with pytest.raises(ConfigurationError, match="takes bytes"):
        parse_xml("<r/>")  # type: ignore[arg-type]


def test_check_tree_on_a_tree_built_elsewhere() -> None:
    from lxml import etree
    root = etree.fromstring(b"<r><?pi x?></r>")
    with pytest.raises(HostileInput):
        check_tree(root)


def test_parse_json_limited_reuses_the_envelope_parser() -> None:
    assert parse_json_limited(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(MessageTooLarge):
        parse_json_limited(b'{"a": "' + b"x" * 100 + b'"}', max_bytes=50)
    with pytest.raises(MalformedEnvelope, match="duplicate key"):
        parse_json_limited(b'{"a": 1, "a": 2}')
    with pytest.raises(MalformedEnvelope, match="deeper"):
        parse_json_limited(b"[" * 100 + b"]" * 100)
