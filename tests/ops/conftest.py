"""Fixtures of the operations tests: a hub on the embedded default with a scripted NARSA."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest

from connectors.base import MockConnector, Reply
from hub.demo.scenarios import licence_request
from hub.errors import AgencyUnavailable
from hub.testing.plugin import FAST_RETRY

TOKEN = "test-operator-token"


class ScriptedAgency:
    """A NARSA stand-in: fails while ``down`` is set or ``fail_next`` > 0, else ``authentic``."""

    def __init__(self) -> None:
        self.down = threading.Event()
        #: Fail this many next calls, then answer (a short outage, free of timing races).
        self.fail_next = 0
        self.calls: list[str] = []

    def __call__(self, envelope: Any) -> Reply:
        self.calls.append(str(envelope.id))
        if self.fail_next > 0:
            self.fail_next -= 1
            raise AgencyUnavailable("narsa answered HTTP 503", status=503)
        if self.down.is_set():
            raise AgencyUnavailable("narsa answered HTTP 503", status=503)
        return Reply(outcome="authentic", agency_reference="NV-1")


@pytest.fixture
def agency() -> ScriptedAgency:
    return ScriptedAgency()


@pytest.fixture
def ops_hub(hub_factory: Callable[..., Any], agency: ScriptedAgency) -> Any:
    hub = hub_factory(
        connectors={"narsa": lambda: MockConnector(agency, agency="narsa")},
        agency_overrides={"narsa": {"retry": {**FAST_RETRY, "max_attempts": 2}}},
        env={"HUB_ADMIN_TOKEN": TOKEN, "HUB_METRICS_CACHE_SECONDS": "0",
             "HUB_READYZ_CACHE_SECONDS": "0"})
    hub.setup()
    return hub


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def licence(serial: int = 100001) -> dict[str, Any]:
    return licence_request("authentic", serial=serial)


@pytest.fixture
def client(ops_hub: Any) -> Iterator[Any]:
    from hub.web.app import create_app

    app = create_app(ops_hub)
    app.config["TESTING"] = True
    yield app.test_client()


@pytest.fixture
def operator(client: Any) -> Any:
    """The test client, signed in to the console."""
    response = client.post("/admin/login", data={"name": "ana", "token": TOKEN,
                                                  "next": "/admin/"})
    assert response.status_code == 302
    return client


def csrf_of(client: Any) -> str:
    with client.session_transaction() as session:
        return session["csrf"]


BEARER = {"Authorization": f"Bearer {TOKEN}"}
