"""``hub demo``: the whole hub in one process on the embedded default, against the simulators.

Each `Scenario` submits one case with data chosen to draw a known answer from the agencies,
optionally injects faults first (an outage that recovers, one that never does), and states the
outcome expected for each exchange and the case's final status. The demo prints one row per
exchange and exits non-zero if any row missed its expectation.

Scenarios whose agency is down for good are dead-lettered, then the demo brings the agency back
and replays the dead letter, as an operator would with ``hub dlq replay``.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from sqlalchemy import select

from connectors.registry import load_agencies, start_simulators
from hub import deadletters
from hub.config import Settings
from hub.keys import ensure_dev_keys
from hub.runtime import Hub
from hub.services import ServiceCatalog
from hub.store.models import CaseRow, DeadLetterRow, ExchangeRow

#: Short retry ladders so that outages play out in seconds.
DEMO_RETRY = {"base_delay": 0.1, "max_delay": 0.4, "max_attempts": 4, "jitter": 0.5}


@dataclass
class Scenario:
    name: str
    service: str
    data: Callable[[], dict[str, Any]]
    #: Expected outcome per step, e.g. {"licence_check": "authentic"}.
    outcomes: dict[str, str]
    status: str
    #: Faults to inject before submitting: (agency, kind, options); ``match`` is filled with
    #: `marker` so that the fault hits this case only.
    faults: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    marker: Callable[[dict[str, Any]], str] | None = None
    #: The agency never recovers on its own: expect a dead letter, then heal and replay it.
    replay: bool = False


def scenarios() -> list[Scenario]:
    from hub.demo_scenarios import SCENARIOS

    return list(SCENARIOS)


@dataclass
class Row:
    scenario: str
    service: str
    agency: str
    step: str
    case_reference: str
    expected_outcome: str
    actual_outcome: str | None
    expected_status: str
    actual_status: str
    attempts: int
    ok: bool


def _settled(hub: Hub, references: list[str], expected: dict[str, str]) -> int:
    with hub.store.session() as session:
        rows = session.execute(select(CaseRow.reference, CaseRow.status).where(
            CaseRow.reference.in_(references))).all()
    return sum(1 for ref, status in rows if status == expected[ref])


def run_demo(*, data_dir: Path | None = None, timeout: float = 60.0,
             progress: TextIO | None = None, only: str | None = None) -> list[Row]:
    chosen = [s for s in scenarios() if only is None or only in (s.name, s.service)]
    with tempfile.TemporaryDirectory(prefix="hub-demo-") as scratch:
        root = Path(data_dir) if data_dir else Path(scratch)
        settings = Settings.from_env({"HUB_DATA_DIR": str(root), "HUB_RELAY_POLL_INTERVAL": "0.05"})
        # The demo's throw-away PKI, made by the same code as `hub keys init`.
        ensure_dev_keys(settings)
        agencies = load_agencies()
        needed = {a for s in chosen for a in _agencies_of(s)}
        # The simulated agencies hold their keys in the same development PKI: they sign their
        # answers and verify the hub's signatures, as the agencies do.
        simulators = start_simulators({n: c for n, c in agencies.items() if n in needed},
                                      free_ports=True,
                                      options={n: {"keys_dir": str(settings.keys_dir)}
                                               for n in needed})
        try:
            overrides = {name: {"base_url": sim.url, "retry": DEMO_RETRY}
                         for name, sim in simulators.items()}
            # Only the services the scenarios play: a service whose agencies have no connector
            # yet must not keep the others from running.
            catalog = ServiceCatalog.load(features=settings.features).only(
                {s.service for s in chosen})
            hub = Hub(settings, agency_overrides=overrides, catalog=catalog)
            hub.setup()
            return _play(hub, simulators, chosen, timeout, progress)
        finally:
            for simulator in simulators.values():
                simulator.stop()


def _agencies_of(scenario: Scenario) -> set[str]:
    return ServiceCatalog.load(features=Settings.from_env().features).only(
        {scenario.service}).agencies()


def _play(hub: Hub, simulators: dict[str, Any], chosen: list[Scenario], timeout: float,
          progress: TextIO | None) -> list[Row]:
    submitted: list[tuple[Scenario, str]] = []
    expected: dict[str, str] = {}
    with hub.run(concurrency=2):
        for scenario in chosen:
            data = scenario.data()
            marker = scenario.marker(data) if scenario.marker else None
            for agency, kind, options in scenario.faults:
                simulators[agency].inject(kind, match=marker, **options)
            reference = hub.submit(scenario.service, data, actor="demo").case.reference
            submitted.append((scenario, reference))
            expected[reference] = scenario.status
        references = [ref for _, ref in submitted]
        deadline = time.monotonic() + timeout
        replayed: set[str] = set()
        bar = Progress(progress)
        while time.monotonic() < deadline:
            for scenario, reference in submitted:
                if scenario.replay and reference not in replayed:
                    if _replay_when_parked(hub, simulators, scenario, reference):
                        replayed.add(reference)
            done = _settled(hub, references, expected)
            bar.show(done, len(references))
            if done == len(references):
                break
            time.sleep(0.05)
        if progress is not None and progress.isatty():
            progress.write("\n")
        return _rows(hub, submitted)


def _replay_when_parked(hub: Hub, simulators: dict[str, Any], scenario: Scenario,
                        reference: str) -> bool:
    with hub.store.session() as session:
        parked = session.scalars(select(DeadLetterRow.id).where(
            DeadLetterRow.correlation_id == reference, DeadLetterRow.status == "parked")).all()
    if not parked:
        return False
    for agency, _kind, _options in scenario.faults:
        simulators[agency].clear_faults()  # the agency is back
    deadletters.replay(hub.store, hub.audit, parked, actor="operator:demo")
    hub.relay.wake()
    return True


class Progress:
    """A one-line progress bar on a terminal; one line per change elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.last: tuple[int, int] | None = None

    def show(self, done: int, total: int, width: int = 30) -> None:
        if self.stream is None or self.last == (done, total):
            return
        self.last = (done, total)
        filled = int(width * done / max(total, 1))
        end = "" if self.stream.isatty() else "\n"
        self.stream.write(f"\r  cases settled [{'#' * filled}{'.' * (width - filled)}]"
                          f" {done}/{total}{end}")
        self.stream.flush()


def _rows(hub: Hub, submitted: list[tuple[Scenario, str]]) -> list[Row]:
    rows: list[Row] = []
    with hub.store.session() as session:
        for scenario, reference in submitted:
            case = session.scalars(select(CaseRow).where(CaseRow.reference == reference)).one()
            exchanges = {e.step: e for e in session.scalars(
                select(ExchangeRow).where(ExchangeRow.case_id == case.id)
                .order_by(ExchangeRow.round))}
            for step, outcome in scenario.outcomes.items():
                exchange = exchanges.get(step)
                actual = exchange.outcome if exchange else None
                rows.append(Row(
                    scenario=scenario.name, service=scenario.service,
                    agency=exchange.agency if exchange else "?", step=step, case_reference=reference,
                    expected_outcome=outcome, actual_outcome=actual,
                    expected_status=scenario.status, actual_status=case.status,
                    attempts=exchange.attempts if exchange else 0,
                    ok=actual == outcome and case.status == scenario.status))
    return rows


def render_table(rows: list[Row], out: TextIO = sys.stdout) -> None:
    headers = ["scenario", "service", "agency", "case", "expected", "actual", "attempts",
               "status", "ok"]
    table = [[r.scenario, r.service, r.agency, r.case_reference, r.expected_outcome,
              r.actual_outcome or "-", str(r.attempts), r.actual_status,
              "yes" if r.ok else "NO"] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out.write(line + "\n" + "  ".join("-" * w for w in widths) + "\n")
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "\n")
    passed = sum(r.ok for r in rows)
    out.write(f"\n{passed}/{len(rows)} exchanges reached their expected outcome\n")


def render_json(rows: list[Row], out: TextIO = sys.stdout) -> None:
    out.write(json.dumps({
        "ok": all(r.ok for r in rows),
        "exchanges": [r.__dict__ for r in rows],
    }, indent=2) + "\n")
