"""Fixtures for the web tests: a hub with mock agencies (not running), its Flask client."""
from __future__ import annotations

import pytest

from hub.web.app import create_app


@pytest.fixture
def hub(mock_hub):
    return mock_hub()


@pytest.fixture
def app(hub):
    return create_app(hub)


@pytest.fixture
def client(app):
    return app.test_client()



@pytest.fixture
def staff_app(hub):
    """The web front with the test staff tokens (`webkit.staff_tokens`) as its authenticator."""
    from webkit import authenticator, staff_tokens

    return create_app(hub, authenticate=authenticator(staff_tokens()))
