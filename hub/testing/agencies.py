"""Agencies as `MockConnector`s answering by their simulators' rules, without sockets.

For tests of services, pages and the back-office that need every agency of the catalog without
starting simulators (the simulators' own tests live with the connectors). The agencies are the
packaged ones (`connectors.registry.packaged_agencies`): a new agency is mocked as soon as it is
packaged. The five first agencies answer by `agency_rules`, written over canonical payloads;
any agency that names its simulator's rule in ``agency.yaml`` (``rules``, as every scaffolded
agency does) answers through its own mappings and that rule, in-process (`RuleAgency`), so its
mock answers what its simulator would. Its fixtures come as a pytest plugin
(``pytest_plugins = ["hub.testing.agencies"]`` in the root ``conftest.py``)::

    def test_flow(mock_hub, mock_agencies):
        hub = mock_hub()                       # set up, embedded broker and store
        with hub.run(concurrency=1):
            ...
        mock_agencies.calls["dgsn"]            # what DGSN received
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from connectors.base import MockConnector, Reply
from connectors.narsa import register
from connectors.registry import AgencyConfig, import_object, packaged_agencies
from hub.cases.book import find_case
from hub.clock import utcnow
from hub.envelope import Envelope
from hub.errors import UnknownRoute
from hub.mapping import Mapping
from hub.runtime import Hub
from hub.testing.plugin import FAST_RETRY

CONTAGIOUS = ("cholera", "plague", "ebola", "smallpox", "yellow fever", "anthrax")


def identity_answer(person: dict[str, Any], *, found: str, mismatch: str, ok: str) -> str:
    cnie = str(person.get("cnie") or "")
    if cnie.startswith("Z"):
        return found
    if cnie.endswith("0"):
        return mismatch
    return ok


def operation_of(envelope: Envelope) -> str:
    """``agency.operation`` of a request envelope."""
    return envelope.schema_ref.name.removesuffix(".request")


#: Operations `agency_rules` answers (the five first agencies, rules over canonical payloads).
RULED = frozenset({"narsa.verify_licence", "dgsn.verify_identity", "dgsn.notify_border",
                   "health.sanitary_clearance", "interior.burial_permit",
                   "justice.delivery_certificate"})


def agency_rules(envelope: Envelope) -> Reply:
    """What the five first agencies answer, by the simulator rules of their ``agency.yaml``."""
    p = envelope.payload
    operation = operation_of(envelope)
    if operation == "narsa.verify_licence":
        result, reason, status = register.lookup(p["licence"]["number"])
        # The canonical answer's data, as NARSA's reply mapping writes it.
        data = {"licence_status": status.lower()} if status else {"reason": reason.lower()}
        return Reply(outcome=result.lower(), data=data)
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


class RuleAgency:
    """An agency answering in-process as its simulator would: the canonical payload goes
    through the agency's request mapping, its simulator's rule (``rules`` in ``agency.yaml``:
    ``answer(operation, request, *, serial, now) -> answer``, over wire documents) answers,
    and the reply mapping turns that into the canonical `Reply`. Shared by threads."""

    def __init__(self, config: AgencyConfig) -> None:
        if config.rules is None:
            raise UnknownRoute(f"agency {config.name} names no simulator rule (rules: in"
                               " agency.yaml)")
        self.agency = config.name
        self.operations = set(config.operations)
        self._answer = import_object(config.rules)
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, envelope: Envelope) -> Reply:
        operation = operation_of(envelope).removeprefix(f"{self.agency}.")
        if operation not in self.operations:
            raise UnknownRoute(f"{self.agency} has no operation {operation!r}")
        context = {"message_id": str(envelope.id), "correlation_id": envelope.correlation_id}
        request = Mapping.packaged(self.agency, f"{operation}.request").apply(
            envelope.payload, context)
        with self._lock:
            serial = next(self._serial)
        answer = self._answer(operation, request, serial=serial, now=utcnow())
        mapped = Mapping.packaged(self.agency, f"{operation}.reply").apply(answer, context)
        return Reply(outcome=mapped["outcome"], data=dict(mapped.get("data") or {}),
                     agency_reference=mapped.get("agency_reference"))


def answers_for(config: AgencyConfig) -> Callable[[Envelope], Reply]:
    """How a mock of this agency answers: `agency_rules` for the operations it knows, else the
    agency's own simulator rule (`RuleAgency`)."""
    if {f"{config.name}.{op}" for op in config.operations} <= RULED:
        return agency_rules
    if config.rules is None:
        def unmockable(envelope: Envelope) -> Reply:
            # Only a call fails (parked, like any unknown route): the other agencies' mocks,
            # and the tests that never call this one, are not held back by it.
            raise UnknownRoute(f"agency {config.name} names no simulator rule (rules: in"
                               " agency.yaml): it cannot be mocked")
        return unmockable
    return RuleAgency(config)


@dataclass
class MockAgencies:
    """The requests each packaged agency received, for assertions on what was sent."""

    agencies: dict[str, AgencyConfig] = field(default_factory=packaged_agencies)
    calls: dict[str, list[Envelope]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.agencies:
            self.calls.setdefault(name, [])

    def factory(self, agency: str) -> Callable[[], MockConnector]:
        answer = answers_for(self.agencies[agency])

        def handler(envelope: Envelope) -> Reply:
            self.calls[agency].append(envelope)
            return answer(envelope)

        return lambda: MockConnector(handler, agency=agency)


@pytest.fixture
def mock_agencies() -> MockAgencies:
    return MockAgencies()


@pytest.fixture
def mock_hub(hub_factory: Callable[..., Hub], mock_agencies: MockAgencies
             ) -> Callable[..., Hub]:
    """``mock_hub(features=...)``: a set-up hub on the embedded default with mock agencies."""

    def make(**options: Any) -> Hub:
        configs = {name: config.with_overrides(connector="connectors.base:MockConnector",
                                               retry=FAST_RETRY, concurrency=1)
                   for name, config in mock_agencies.agencies.items()}
        hub = hub_factory(agencies=configs,
                          connectors={a: mock_agencies.factory(a) for a in configs},
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
