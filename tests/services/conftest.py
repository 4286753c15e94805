"""Fixtures of the service tests: a hub whose agencies are mocks (see `hub.testing.agencies`)."""
from hub.testing.agencies import mock_agencies, mock_hub  # noqa: F401
