"""The chaos run's workload: cases of every service whose route completes without a person,
cycled until the planned number of exchanges is reached, and the agencies' fault plan."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from hub.demo.runner import scenarios
from hub.demo.scenarios import sample_request
from hub.demo.script import Scenario

#: Share of agency requests that fail each way (the issue's figures).
FAULT_RATES = {"status": 0.10, "timeout": 0.05, "bad_signature": 0.01}


@dataclass(frozen=True)
class Planned:
    """One case to submit: its service, its data and what each exchange should end as."""

    service: str
    data: Callable[[], dict[str, Any]]
    outcomes: dict[str, str]
    status: str
    scenario: str


def automatic_scenarios(catalog: Any) -> list[Any]:
    """Cases that complete without a person: the demo's unattended scenarios (no fault, no
    post action, opened by an applicant) and the services' sample requests, for enabled
    services whose route is synchronous agency calls only. (Repatriation is left out until the
    run serves Health's callbacks: a simulated agency retries a callback for about 3 s, less
    than a database restart lasts.)"""
    found = [s for s in scenarios() if s.unattended and _synchronous(catalog, s.service)]
    for service in ("consular_registration_new", "consular_registration_renewal"):
        found.append(Scenario(f"{service} confirmed", service,
                              lambda service=service: sample_request(service),
                              {"identity_check": "confirmed"}, "identity_verified"))
    enabled = set(catalog.names())
    return [s for s in found if s.service in enabled]


def _synchronous(catalog: Any, service: str) -> bool:
    """Whether every step of the service's route is a synchronous call to an agency simulator
    (no callback from Health, no local check of the hub itself)."""
    if service not in set(catalog.names()):
        return False
    route = catalog.get(service).route
    agencies = {step.agency for step in route.steps} if route is not None else set()
    return bool(agencies) and not agencies & {"health", "hub"}


def plan(catalog: Any, exchanges: int) -> list[Planned]:
    """Cases whose exchanges add up to at least ``exchanges``, services interleaved."""
    chosen = automatic_scenarios(catalog)
    if not chosen:
        raise ValueError("no automatic scenario to run")
    out: list[Planned] = []
    total = 0
    for scenario in itertools.cycle(chosen):
        if total >= exchanges:
            break
        out.append(Planned(service=scenario.service, data=scenario.data,
                           outcomes=dict(scenario.outcomes), status=scenario.status,
                           scenario=scenario.name))
        total += len(scenario.outcomes)
    return out


def agencies_of(planned: list[Planned], catalog: Any) -> set[str]:
    names: set[str] = set()
    for service in {p.service for p in planned}:
        route = catalog.get(service).route
        if route is not None:
            names |= {step.agency for step in route.steps}
    return names


def supports_fault(simulator: Any, kind: str) -> bool:
    """Whether ``simulator`` plays fault ``kind``: every simulator plays the common kinds;
    ``bad_signature`` needs a simulator that signs its answers (one given ``keys_dir``)."""
    if kind in ("status", "timeout", "latency", "malformed", "reset"):
        return True  # every simulator plays these (connectors.simulator.Simulator)
    if kind == "bad_signature":
        return getattr(simulator, "signing", None) is not None
    return kind in getattr(simulator, "supported_faults", ())


def inject_faults(simulators: dict[str, Any], *, timeout: float) -> dict[str, list[Any]]:
    """Arm every simulator with the fault plan; returns the armed faults per agency (each counts
    the requests it hit in ``fired``).

    The timeout fault is a delay beyond the connector's timeout on a request the agency then
    *completes*: the effect happens, the answer is lost, the hub retries with the same key.
    """
    armed: dict[str, list[str]] = {}
    for name, simulator in simulators.items():
        faults = [simulator.inject("status", status=503, rate=FAULT_RATES["status"]),
                  simulator.inject("latency", delay=timeout + 0.4, rate=FAULT_RATES["timeout"])]
        if supports_fault(simulator, "bad_signature"):
            faults.append(simulator.inject("bad_signature", rate=FAULT_RATES["bad_signature"]))
        armed[name] = faults
    return armed


def expected_exchanges(planned: list[Planned]) -> int:
    return sum(len(p.outcomes) for p in planned)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def milestones(total: int) -> list[tuple[float, str]]:
    """When each disruption happens, as a share of exchanges settled."""
    return [(0.10, "kill_worker"), (0.20, "cut_connections"), (0.30, "kill_relay"),
            (0.45, "restart_broker"), (0.60, "kill_worker"), (0.75, "restart_database")]


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
