"""Agencies as `MockConnector`s answering by the simulator rules of ``docs/exchanges.md``.

For tests of services, pages and the back-office that need every agency of the catalog without
starting simulators (the simulators' own tests live with the connectors). Its fixtures come as
a pytest plugin (``pytest_plugins = ["hub.testing.agencies"]`` in the root ``conftest.py``)::

    def test_flow(mock_hub, mock_agencies):
        hub = mock_hub()                       # set up, embedded broker and store
        with hub.run(concurrency=1):
            ...
        mock_agencies.calls["dgsn"]            # what DGSN received
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from connectors.base import MockConnector, Reply
from connectors.narsa import register
from connectors.registry import AgencyConfig
from hub.cases.book import find_case
from hub.envelope import Envelope
from hub.runtime import Hub
from hub.testing.plugin import FAST_RETRY

AGENCIES = ("narsa", "dgsn", "health", "interior", "justice")
CONTAGIOUS = ("cholera", "plague", "ebola", "smallpox", "yellow fever", "anthrax")


def identity_answer(person: dict[str, Any], *, found: str, mismatch: str, ok: str) -> str:
    cnie = str(person.get("cnie") or "")
    if cnie.startswith("Z"):
        return found
    if cnie.endswith("0"):
        return mismatch
    return ok


def agency_rules(envelope: Envelope) -> Reply:
    """What each agency answers, by the simulator rules of docs/exchanges.md."""
    p = envelope.payload
    operation = envelope.schema_ref.name.removesuffix(".request")
    if operation == "narsa.verify_licence":
        result, _, status = register.lookup(p["licence"]["number"])
        return Reply(outcome=result.lower(), data={"status": (status or "").lower()})
    if operation == "dgsn.verify_identity":
        return Reply(outcome=identity_answer(p["person"], found="not_found", mismatch="mismatch",
                                             ok="confirmed"))
    if operation == "dgsn.notify_border":
        outcome = identity_answer(p["person"], found="identity_mismatch",
                                  mismatch="identity_mismatch", ok="cleared")
        if outcome == "cleared" and not re.search(r"casablanca|tanger|rabat|marrakech|agadir",
                                                  p["transport"]["border_post"], re.I):
            outcome = "refused"
        return Reply(outcome=outcome)
    if operation == "health.sanitary_clearance":
        cause = p["deceased"]["cause_of_death"].lower()
        if any(word in cause for word in CONTAGIOUS):
            return Reply(outcome="refused")
        if not p.get("certificates", {}).get("non_contagion"):
            return Reply(outcome="more_information")
        return Reply(outcome="cleared")
    if operation == "interior.burial_permit":
        return Reply(outcome="refused" if p["burial"]["commune"] == "Atlantis" else "granted")
    if operation == "justice.delivery_certificate":
        # Justice knows the references it sent; the simulator's memory is a prefix here.
        known = str(p.get("justice_reference", "")).startswith("MJ-")
        return Reply(outcome="received" if known else "rejected")
    raise AssertionError(f"no rule for {operation}")


@dataclass
class MockAgencies:
    """The requests each agency received, for assertions on what was sent."""

    calls: dict[str, list[Envelope]] = field(default_factory=lambda: {a: [] for a in AGENCIES})

    def factory(self, agency: str) -> Callable[[], MockConnector]:
        def handler(envelope: Envelope) -> Reply:
            self.calls[agency].append(envelope)
            return agency_rules(envelope)

        return lambda: MockConnector(handler, agency=agency)


@pytest.fixture
def mock_agencies() -> MockAgencies:
    return MockAgencies()


@pytest.fixture
def mock_hub(hub_factory: Callable[..., Hub], mock_agencies: MockAgencies
             ) -> Callable[..., Hub]:
    """``mock_hub(features=...)``: a set-up hub on the embedded default with mock agencies."""

    def make(**options: Any) -> Hub:
        configs = {name: AgencyConfig(name=name, title=name, protocol="rest",
                                      connector="connectors.base:MockConnector",
                                      retry=FAST_RETRY, concurrency=1)
                   for name in AGENCIES}
        hub = hub_factory(agencies=configs,
                          connectors={a: mock_agencies.factory(a) for a in AGENCIES},
                          **options)
        hub.setup()
        return hub

    return make


def wait_for_status(hub: Hub, reference: str, wanted: str | set[str],
                    timeout: float = 20.0) -> str:
    """Poll the case until it reaches ``wanted``; returns the status it ended in."""
    wanted = {wanted} if isinstance(wanted, str) else wanted
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        with hub.store.session() as session:
            status = find_case(session, reference).status
        if status in wanted:
            return status
        time.sleep(0.02)
    return status


def staff_moves(hub: Hub, reference: str, *statuses: str, **kwargs: Any) -> None:
    """A member of staff moves the case through ``statuses``, one transaction each."""
    for status in statuses:
        with hub.store.transaction() as session:
            hub.cases.transition(session, find_case(session, reference), status, role="staff",
                                 actor="staff:test", **kwargs)
