"""What a demo scenario is: a case to open, the answers expected, and what happens on the way.

`hub.demo.scenarios` lists the scenarios as data; `hub.demo.runner` plays them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from hub.cases.book import find_case
from hub.clock import utcnow
from hub.testing.livehub import AgencyHub


@dataclass(frozen=True)
class Opened:
    """A case just opened, and the answers of the exchanges that opened it (an agency sending
    the case in): ``{step: (agency, outcome)}``."""

    reference: str
    inbound: dict[str, tuple[str, str]] = field(default_factory=dict)


def by_applicant(world: AgencyHub, scenario: "Scenario", data: dict[str, Any]) -> Opened:
    """The applicant submits the request (what the intake API and the pages do)."""
    opened = world.hub.submit(scenario.service, data, actor="demo")
    return Opened(opened.case.reference)


@dataclass(frozen=True)
class PostRecords:
    """When the case is in ``at``, the post's staff move it to ``to`` (recording ``updates``,
    e.g. how a judicial document was delivered), as the back-office does."""

    at: str
    to: str
    updates: dict[str, Any] | None = None

    def apply(self, world: AgencyHub, reference: str) -> None:
        hub = world.hub
        with hub.store.transaction() as session:
            case = find_case(session, reference)
            hub.cases.transition(session, case, self.to, role="staff",
                                 actor=f"staff:{case.post}", updates=copy.deepcopy(self.updates))
        hub.relay.wake()


@dataclass(frozen=True)
class DaysPass:
    """When the case is in ``at``, the deadline sweep runs as if ``days`` had passed (e.g. a
    refused judicial document counts as served on the tenth day). The sweep looks at every case:
    a scenario using it must not leave another case in a status due within ``days``."""

    at: str
    days: int

    def apply(self, world: AgencyHub, reference: str) -> None:
        moved = world.hub.deadline_sweeper().sweep(now=utcnow() + timedelta(days=self.days)).moved
        if reference not in moved:
            raise RuntimeError(f"{self.days} days later, no deadline moved {reference}")


@dataclass
class Scenario:
    name: str
    service: str
    #: The applicant's request, or the document an agency sends in (see ``opens``).
    data: Callable[[], dict[str, Any]]
    #: Expected outcome per step, e.g. {"licence_check": "authentic"}.
    outcomes: dict[str, str]
    #: The case's final status.
    status: str
    #: Faults to inject before opening the case: (agency, kind, options); ``match`` is filled
    #: with `marker` so that the fault hits this case only.
    faults: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    marker: Callable[[dict[str, Any]], str] | None = None
    #: The agency never recovers on its own: expect a dead letter, then heal and replay it.
    replay: bool = False
    #: How the case opens: `by_applicant`, or e.g. Justice sending a document to the hub.
    opens: Callable[[AgencyHub, "Scenario", dict[str, Any]], Opened] = by_applicant
    #: What people (or the clock) do on the way, in order: `PostRecords`, `DaysPass`.
    actions: tuple[PostRecords | DaysPass, ...] = ()
    #: Names of scenarios whose cases must have settled before this one opens.
    after: tuple[str, ...] = ()

    @property
    def unattended(self) -> bool:
        """An applicant's case that reaches its status with nobody acting and no fault."""
        return (not self.faults and not self.replay and not self.actions and not self.after
                and self.opens is by_applicant and bool(self.outcomes))
