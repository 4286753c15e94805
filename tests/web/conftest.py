"""Fixtures for the web tests: a hub with mock agencies (not running), its Flask client."""
from __future__ import annotations

import pytest

from hub.mockagencies import mock_agencies, mock_hub  # noqa: F401
from hub.web import create_app


@pytest.fixture
def hub(mock_hub):
    return mock_hub()


@pytest.fixture
def client(hub):
    return create_app(hub).test_client()

