"""``hub demo``: the whole hub in one process on the embedded default, against the simulators.

The demo is `hub.testing.livehub.AgencyHub` (the machinery of the end-to-end tests) on the embedded
broker and SQLite store: the hub's web front on a loopback port, the five agency simulators on
theirs, every exchange signed both ways with a development PKI made in the demo's data directory
(`hub.keyset.ensure_dev_keys`, the code of ``hub keys init``). Health answers repatriation requests
by calling the hub back; Justice sends judicial documents to the hub's SOAP endpoint.

Each `Scenario` opens one case with data chosen to draw a known answer from the agencies (by an
applicant's submission, or by Justice sending a document in), optionally injects faults first
(an outage that recovers, one that never does), plays what the post records at given statuses
(`PostRecords`) or lets the deadline clock run (`DaysPass`), and states the outcome expected for
each exchange and the case's final status. A scenario may wait for others to settle first
(``after``: a registration update needs the registration). The demo prints one row per exchange
and exits non-zero if any row missed its expectation.

Scenarios whose agency is down for good are dead-lettered, then the demo brings the agency back
and replays the dead letter, as an operator would with ``hub dlq replay``.

Every packaged agency takes part: the simulators, the keys and the connectors come from the
registry (`connectors.registry`), and an agency no scenario reaches (one added with ``hub
connector new``) is checked with its own samples (``connectors/<agency>/samples.yaml``): each is
sent through the hub's connector to the agency's simulator, signed both ways, and its row says
whether the outcome and the answer's data are the ones the sample promises.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from sqlalchemy import select

from connectors.registry import key_parties
from hub.config import Settings
from hub.delivery import deadletters
from hub.demo.scenarios import SCENARIOS
from hub.demo.script import Opened, Scenario
from hub.envelope import Envelope, SchemaRef
from hub.errors import HubError
from hub.keyset import ensure_dev_keys
from hub.runtime import Hub
from hub.services import LOCAL_AGENCY
from hub.store.models import CaseRow, DeadLetterRow, ExchangeRow
from hub.testing.conformance import answer_data_problems
from hub.testing.livehub import AgencyHub
from hub.testing.samples import agency_samples, has_samples

#: Short retry ladders so that outages play out in seconds.
DEMO_RETRY = {"base_delay": 0.1, "max_delay": 0.4, "max_attempts": 4, "jitter": 0.5}
#: The ``service`` column of the rows that check an agency with its own samples.
AGENCY_CHECK = "(agency check)"
#: The post an agency check is sent for (no case is opened: any post will do).
CHECK_SENDER = "ES-MAD"


def scenarios() -> list[Scenario]:
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
    #: The exchange was dead-lettered, then replayed by the operator (attempts count anew).
    replayed: bool
    ok: bool


@dataclass
class Report:
    """The demo's outcome: a row per exchange, and who signed the messages (the hub and each
    agency simulator; a simulator with keys refuses a request whose signature fails, and the
    hub refuses such an answer, so every row that reached its outcome was signed both ways)."""

    rows: list[Row]
    signed: dict[str, bool]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows) and all(self.signed.values())


def choose(only: str | None) -> list[Scenario]:
    """The scenarios named by ``only`` (a service or a scenario name; all when None), with the
    scenarios they wait for."""
    every = scenarios()
    by_name = {s.name: s for s in every}
    chosen = [s for s in every if only is None or only in (s.name, s.service)]
    wanted = {s.name for s in chosen}
    pending = [name for s in chosen for name in s.after]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(by_name[name].after)
    return [s for s in every if s.name in wanted]


def demo_hubs(root: Path) -> Callable[..., Hub]:
    """A hub factory for `AgencyHub`: embedded broker and SQLite under ``root``, with the
    development PKI that ``hub keys init`` would make there."""

    def make(*, broker_url: str | None = None, database_url: str | None = None,
             env: dict[str, str] | None = None, **options: Any) -> Hub:
        values = {"HUB_DATA_DIR": str(root), "HUB_RELAY_POLL_INTERVAL": "0.05",
                  "HUB_VISIBILITY_TIMEOUT": "10", **(env or {})}
        if broker_url:
            values["HUB_BROKER_URL"] = broker_url
        if database_url:
            values["HUB_DATABASE_URL"] = database_url
        settings = Settings.from_env(values)
        ensure_dev_keys(settings, key_parties())  # the hub and every packaged agency
        return Hub(settings, **options)

    return make


def run_demo(*, data_dir: Path | None = None, timeout: float = 60.0,
             progress: TextIO | None = None, only: str | None = None) -> Report:

    chosen = choose(only)
    with tempfile.TemporaryDirectory(prefix="hub-demo-") as scratch:
        root = Path(data_dir) if data_dir else Path(scratch)
        world = AgencyHub(demo_hubs(root), retry=DEMO_RETRY, concurrency=2).start()
        try:
            rows = _play(world, chosen, timeout, progress)
            rows += _agency_checks(world, _reached(world.hub, chosen), only)
            signed = {"hub": world.hub.signing is not None,
                      **{name: sim.signing is not None
                         for name, sim in sorted(world.simulators.items())}}
            return Report(rows, signed)
        finally:
            world.stop()
            world.hub.close()


def _reached(hub: Any, chosen: list[Scenario]) -> set[str]:
    """The agencies the chosen scenarios exchange with (their services' routes; Justice also
    sends the judicial documents in)."""
    reached: set[str] = set()
    for scenario in chosen:
        route = hub.catalog.get(scenario.service).route
        reached |= {s.agency for s in (route.steps if route else ()) if s.agency != LOCAL_AGENCY}
    return reached


def _agency_checks(world: Any, reached: set[str], only: str | None) -> list[Row]:
    """A row per sample of each agency no scenario reached (``only``: that agency alone)."""
    rows: list[Row] = []
    for agency in sorted(world.simulators):
        if agency in reached or (only is not None and only != agency):
            continue
        if not has_samples(agency):
            rows.append(Row(scenario="no samples.yaml", service=AGENCY_CHECK, agency=agency,
                            step="-", case_reference="-", expected_outcome="-",
                            actual_outcome=None, expected_status="-", actual_status="-",
                            attempts=0, replayed=False, ok=False))
            continue
        samples, _invalid = agency_samples(agency)
        with world.hub.new_connector(agency) as connector:
            for sample in samples:
                rows.append(_check_sample(connector, agency, sample))
    return rows


def _check_sample(connector: Any, agency: str, sample: Any) -> Row:
    envelope = Envelope.new(
        correlation_id="DEMO-AGENCY-CHECK", service="agency_check", kind="request",
        sender=CHECK_SENDER, recipient=agency,
        schema=SchemaRef(name=f"{agency}.{sample.operation}.request", version="1"),
        payload=sample.payload)
    try:
        reply = connector.send(envelope)
        actual = reply.outcome
        problems = [] if sample.data is None else answer_data_problems(reply.data, sample.data)
    except HubError as exc:
        actual, problems = exc.code, [exc.message]
    return Row(scenario=sample.id + ("" if not problems else f" ({'; '.join(problems)})"),
               service=AGENCY_CHECK, agency=agency, step=sample.operation, case_reference="-",
               expected_outcome=str(sample.outcome), actual_outcome=actual, expected_status="-",
               actual_status="-", attempts=1, replayed=False,
               ok=actual == sample.outcome and not problems)


@dataclass
class _Run:
    """A scenario's progress through the demo."""

    scenario: Scenario
    opened: Opened | None = None
    done: int = 0  # actions applied
    replayed: bool = False


def _play(world: AgencyHub, chosen: list[Scenario], timeout: float,
          progress: TextIO | None) -> list[Row]:
    runs = [_Run(s) for s in chosen]
    deadline = time.monotonic() + timeout
    bar = Progress(progress)
    while time.monotonic() < deadline:
        statuses = _statuses(world.hub, [r.opened.reference for r in runs if r.opened])
        settled = {r.scenario.name for r in runs if _settled(r, statuses)}
        for run in runs:
            scenario = run.scenario
            if run.opened is None:
                if set(scenario.after) <= settled:
                    run.opened = _open(world, scenario)
                continue
            status = statuses.get(run.opened.reference)
            if run.done < len(scenario.actions) and status == scenario.actions[run.done].at:
                scenario.actions[run.done].apply(world, run.opened.reference)
                run.done += 1
            if scenario.replay and not run.replayed:
                run.replayed = _replay_when_parked(world, scenario, run.opened.reference)
        bar.show(len(settled), len(runs))
        if len(settled) == len(runs):
            break
        time.sleep(0.05)
    if progress is not None and progress.isatty():
        progress.write("\n")
    return _rows(world.hub, runs)


def _open(world: AgencyHub, scenario: Scenario) -> Opened:
    data = scenario.data()
    marker = scenario.marker(data) if scenario.marker else None
    for agency, kind, options in scenario.faults:
        world.simulators[agency].inject(kind, match=marker, **options)
    return scenario.opens(world, scenario, data)


def _statuses(hub: Hub, references: list[str]) -> dict[str, str]:
    if not references:
        return {}
    with hub.store.session() as session:
        return dict(session.execute(select(CaseRow.reference, CaseRow.status).where(
            CaseRow.reference.in_(references))).all())


def _settled(run: _Run, statuses: dict[str, str]) -> bool:
    return (run.opened is not None and run.done == len(run.scenario.actions)
            and statuses.get(run.opened.reference) == run.scenario.status)


def _replay_when_parked(world: AgencyHub, scenario: Scenario, reference: str) -> bool:
    hub = world.hub
    with hub.store.session() as session:
        parked = session.scalars(select(DeadLetterRow.id).where(
            DeadLetterRow.correlation_id == reference, DeadLetterRow.status == "parked")).all()
    if not parked:
        return False
    for agency, _kind, _options in scenario.faults:
        world.simulators[agency].clear_faults()  # the agency is back
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


def _rows(hub: Hub, runs: list[_Run]) -> list[Row]:
    rows: list[Row] = []
    with hub.store.session() as session:
        for run in runs:
            scenario = run.scenario
            reference = run.opened.reference if run.opened else "-"
            case = session.scalars(select(CaseRow).where(CaseRow.reference == reference)).first()
            status = case.status if case is not None else "not opened"
            exchanges = {} if case is None else {e.step: e for e in session.scalars(
                select(ExchangeRow).where(ExchangeRow.case_id == case.id)
                .order_by(ExchangeRow.round))}
            inbound = run.opened.inbound if run.opened else {}
            for step, outcome in scenario.outcomes.items():
                exchange = exchanges.get(step)
                if step in inbound:
                    agency, actual, attempts = *inbound[step], 1
                else:
                    agency = exchange.agency if exchange else "?"
                    actual = exchange.outcome if exchange else None
                    attempts = exchange.attempts if exchange else 0
                rows.append(Row(
                    scenario=scenario.name, service=scenario.service, agency=agency, step=step,
                    case_reference=reference, expected_outcome=outcome, actual_outcome=actual,
                    expected_status=scenario.status, actual_status=status, attempts=attempts,
                    replayed=run.replayed and step not in inbound,
                    ok=actual == outcome and status == scenario.status
                    and run.done == len(scenario.actions)))
    return rows


def render_table(report: Report, out: TextIO = sys.stdout) -> None:
    rows = report.rows
    headers = ["service", "scenario", "agency", "step", "case", "expected", "actual",
               "tries", "case status", "ok"]
    table = [[r.service, r.scenario, r.agency, r.step, r.case_reference, r.expected_outcome,
              r.actual_outcome or "-",
              f"{r.attempts} after replay" if r.replayed else str(r.attempts), r.actual_status,
              "yes" if r.ok else "NO"] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out.write(line.rstrip() + "\n" + "  ".join("-" * w for w in widths) + "\n")
    previous = None
    for row in table:
        # The service once per group: the table reads as seven blocks.
        shown = [row[0] if row[0] != previous else "", *row[1:]]
        previous = row[0]
        out.write("  ".join(c.ljust(w) for c, w in zip(shown, widths)).rstrip() + "\n")
    passed = sum(r.ok for r in rows)
    services = len({r.service for r in rows if r.service != AGENCY_CHECK})
    checked = sorted({r.agency for r in rows if r.service == AGENCY_CHECK})
    out.write(f"\n{passed}/{len(rows)} exchanges of {services} service{'s' * (services != 1)}"
              + (f" and of agency checks ({', '.join(checked)})" if checked else "")
              + " reached their expected outcome\n")
    unsigned = sorted(name for name, signed in report.signed.items() if not signed)
    out.write("signed both ways: hub and " + ", ".join(
        n for n in report.signed if n != "hub") + "\n" if not unsigned
        else f"NOT signing: {', '.join(unsigned)}\n")


def render_json(report: Report, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps({
        "ok": report.ok,
        "services": sorted({r.service for r in report.rows if r.service != AGENCY_CHECK}),
        "agency_checks": sorted({r.agency for r in report.rows if r.service == AGENCY_CHECK}),
        "signed": report.signed,
        "exchanges": [r.__dict__ for r in report.rows],
    }, indent=2) + "\n")
