"""Shared fixtures beyond the hub's own pytest plugin (`hub.testing`)."""
from __future__ import annotations

import pytest

# The connector conformance kit (fixtures, parametrization): see connectors/conformance.py.
pytest_plugins = ["connectors.conformance"]


@pytest.fixture
def rabbitmq_url_or_none(broker_kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("rabbitmq_url") if broker_kind == "rabbitmq" else None
