"""The eighth service, a remote passport application, works from data alone behind a flag."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.testing.agencies import staff_moves, wait_for_status
from hub.errors import UnknownService

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((Path(__file__).parent / "data" / "remote_passport_application.json")
                    .read_text("utf-8"))


def test_no_python_knows_the_passport_service():
    for package in ("hub", "connectors", "security", "schemas", "mappings"):
        for source in (ROOT / package).rglob("*.py"):
            assert "remote_passport" not in source.read_text("utf-8"), source
    data = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*remote_passport_application*")
            if ".venv" not in p.parts and "tests" not in p.parts]
    assert sorted(data) == ["hub/services/definitions/remote_passport_application.yaml",
                            "schemas/v1/services/remote_passport_application.json"]


def test_hidden_unless_its_feature_is_enabled(mock_hub):
    hub = mock_hub()
    assert "remote_passport_application" not in hub.catalog.names()
    with pytest.raises(UnknownService):
        hub.submit("remote_passport_application", SAMPLE)


def test_submitted_routed_and_delivered_when_enabled(mock_hub, mock_agencies):
    hub = mock_hub(env={"HUB_FEATURES": "remote_passport"})
    with hub.run(concurrency=1):
        ref = hub.submit("remote_passport_application", SAMPLE).case.reference
        assert ref.startswith("PSP-")
        assert wait_for_status(hub, ref, "identity_verified") == "identity_verified"
    (request,) = mock_agencies.calls["dgsn"]
    assert request.schema_ref.name == "dgsn.verify_identity.request"
    assert request.payload == {"person": SAMPLE["person"]}
    staff_moves(hub, ref, "in_production", "ready_for_collection", "delivered")
    with hub.store.session() as session:
        from hub.cases.book import find_case

        assert find_case(session, ref).status == "delivered"
