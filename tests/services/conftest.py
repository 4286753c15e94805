"""Fixtures of the service tests: a hub whose agencies are mocks (see `hub.mockagencies`)."""
from hub.mockagencies import mock_agencies, mock_hub  # noqa: F401
