from __future__ import annotations

import pytest

from hub.errors import ConfigurationError, SchemaViolation
from hub.mapping import Mapping

SPEC = {
    "name": "test.request",
    "fields": [
        {"to": "licenceNumber", "from": "licence.number", "transform": "strip"},
        {"to": "holder.cnie", "from": "holder.cnie", "transform": "upper"},
        {"to": "holder.birthDate", "from": "holder.birth_date",
         "date": {"from": "%Y-%m-%d", "to": "%d/%m/%Y"}},
        {"to": "channel", "const": "ECONSULAT"},
        {"to": "requestId", "from": "$context.message_id"},
        {"to": "status", "from": "status", "enum": {"VALID": "valid", "SUSPENDED": "suspended"},
         "default": "unknown"},
        {"to": "categories", "from": "licence.categories", "optional": True,
         "each": [{"to": "code", "from": "code"}, {"to": "since", "from": "issued_on",
                                                   "optional": True}]},
        {"to": "spouse", "from": "spouse.name", "when": {"path": "civil_status",
                                                         "equals": "married"}},
    ],
}


def source(**extra):
    data = {"licence": {"number": " 12/3456781 ", "categories": [{"code": "B"},
                                                                 {"code": "C", "issued_on": "2020-01-01"}]},
            "holder": {"cnie": "ab123456", "birth_date": "1990-02-03"},
            "civil_status": "single"}
    data.update(extra)
    return data


def test_every_rule_kind_applies():
    mapped = Mapping.from_dict(SPEC).apply(source(status="SUSPENDED"), {"message_id": "m-1"})
    assert mapped == {
        "licenceNumber": "12/3456781",
        "holder": {"cnie": "AB123456", "birthDate": "03/02/1990"},
        "channel": "ECONSULAT",
        "requestId": "m-1",
        "status": "suspended",
        "categories": [{"code": "B"}, {"code": "C", "since": "2020-01-01"}],
    }


def test_default_and_condition():
    married = source(civil_status="married", spouse={"name": "Karim"})
    mapped = Mapping.from_dict(SPEC).apply(married, {"message_id": "m"})
    assert mapped["spouse"] == "Karim"
    assert mapped["status"] == "unknown"


def test_missing_required_source_names_the_field():
    data = source()
    del data["holder"]["cnie"]
    with pytest.raises(SchemaViolation) as caught:
        Mapping.from_dict(SPEC).apply(data, {"message_id": "m"})
    assert caught.value.errors == [{"field": "holder.cnie", "code": "missing",
                                    "message": "required value 'holder.cnie' is absent"}]


def test_value_outside_enum_is_refused():
    with pytest.raises(SchemaViolation, match="expected one of"):
        Mapping.from_dict(SPEC).apply(source(status="STOLEN"), {"message_id": "m"})


def test_bad_date_is_a_format_error():
    data = source()
    data["holder"]["birth_date"] = "03/02/1990"
    with pytest.raises(SchemaViolation) as caught:
        Mapping.from_dict(SPEC).apply(data, {"message_id": "m"})
    assert caught.value.errors[0]["code"] == "format"


@pytest.mark.parametrize("bad", [
    {"fields": [{"from": "a"}]},
    {"fields": [{"to": "a"}]},
    {"fields": [{"to": "a", "from": "b", "const": 1}]},
    {"fields": [{"to": "a", "from": "b", "transform": "reverse"}]},
    {"fields": [{"to": "a", "from": "b", "colour": "red"}]},
    {"fields": [{"to": "a", "from": "b", "date": {"from": "%Y"}}]},
    {"name": "no fields"},
])
def test_malformed_mapping_files_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError):
        Mapping.from_dict(bad)


def test_packaged_narsa_mappings_load():
    request = Mapping.packaged("narsa", "verify_licence.request")
    reply = Mapping.packaged("narsa", "verify_licence.reply")
    assert request.name == "narsa.verify_licence.request"
    assert reply.apply({"result": "UNKNOWN", "verificationId": "NV-2026-000001",
                        "checkedAt": "2026-11-29T06:00:00Z"})["outcome"] == "unknown"
