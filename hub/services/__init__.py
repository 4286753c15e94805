"""Service definitions: each consular service is data, one YAML file in ``definitions/``.

A definition names the intake schema, the case state machine and the route::

    name: driving_licence_authentication
    version: "1"
    reference_prefix: DLA                 # case references look like DLA-2026-7K3M9QX
    intake_schema: v1/services/driving_licence_authentication.json
    feature_flag: null                    # or a flag name: enabled by HUB_FEATURES=<flag>
    states:
      submitted: {initial: true}
      verifying: {}
      rejected: {final: true}
    transitions:                          # who may move a case: hub, staff, applicant, agency
      - {from: submitted, to: verifying, by: [hub]}
    route:
      start_status: verifying             # the case's status while the route runs
      complete_status: verified           # when every step continued
      steps:
        - name: licence_check
          agency: narsa
          operation: verify_licence
          after: []                       # steps that must have continued first (parallel if none)
          on_status: []                   # or: dispatched when the case enters one of these
          input: [licence, holder]        # the only case fields the agency receives; or a
                                          # mapping {payload path: case path} that renames
          outcomes:
            authentic: continue
            not_authentic: {status: rejected, reason: licence_not_authentic}

Beyond the route, a definition may carry:

- **local steps**: a step whose ``agency`` is ``hub`` runs inside the hub, at once and in the same
  transaction, instead of going to an agency (e.g. ``find_record``: is there a current consular
  registration for this person?). Its operations are listed in `hub.services.checks` and in
  ``docs/exchanges.md``; a local step waits for no other step (no ``after``).
- **deadlines**: timers the scheduler (`hub.cases.deadlines`) applies to cases left in a status::

      deadlines:
        - status: refused              # while the case stays in this status ...
          after_days: 10               # ... for this many days after entering it,
          to: deemed_served            # the hub moves it here (a transition by hub must exist)
          reason: deemed_served_after_refusal
          remind_before_days: []       # reminders to the applicant this many days before
          updates:                     # case fields recorded with the move
            delivery.outcome: deemed_served
            delivery.date: $due_date   # the day the deadline fell due

- **record**: cases of this service in these statuses are a current record of a kind that other
  services look up (``record: {kind: consular_registration, statuses: [registered],
  subject: person}``).
- **guide**: the consular reference guide's entry: title, summary, who applies, eligibility,
  fees, processing steps, whether an appointment is needed (English message ids translated by
  the catalogs; the required documents come from the intake schema, see `hub.web.guide`).

Adding a service is a new definition file, an intake schema, mappings for any new agency
operation and translations; no Python. `ServiceCatalog` loads and checks them all once.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import ConfigurationError, UnknownService

Role = Literal["hub", "staff", "applicant", "agency"]

#: The pseudo-agency of local steps: checks the hub answers itself (see `hub.services.checks`).
LOCAL_AGENCY = "hub"


class StateInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: bool = False
    final: bool = False
    #: Staff moving a case here must attach the signed outcome document (the authorisation,
    #: the attestation, the certificate of delivery).
    outcome_document: bool = False


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    by: tuple[Role, ...]


class Effect(BaseModel):
    """What an answer does: ``continue`` the route, or move the case to ``status`` and stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str | None = None
    reason: str | None = None

    @property
    def continues(self) -> bool:
        return self.status is None


class Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    agency: str
    operation: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    after: tuple[str, ...] = ()
    #: Statuses whose entry dispatches this step (instead of the route's start).
    on_status: tuple[str, ...] = ()
    #: Case fields the agency receives: a list of paths kept as they are, or a mapping
    #: ``{payload path: case path}`` that renames (e.g. ``{person: deceased}``).
    input: dict[str, str] = Field(default_factory=dict)
    #: Constant fields added to the payload (e.g. the kind of notice to send).
    constants: dict[str, Any] = Field(default_factory=dict)
    outcomes: dict[str, Effect]

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("outcomes"), dict):
            data["outcomes"] = {k: ({} if v == "continue" else v)
                                for k, v in data["outcomes"].items()}
        if isinstance(data.get("input"), (list, tuple)):
            data["input"] = {path: path for path in data["input"]}
        if isinstance(data.get("on_status"), str):
            data["on_status"] = (data["on_status"],)
        elif data.get("on_status") is None:
            data.pop("on_status", None)
        return data

    @property
    def schema_name(self) -> str:
        return f"{self.agency}.{self.operation}.request"


class Deadline(BaseModel):
    """A timer on a status: after ``after_days`` in ``status`` the hub moves the case to ``to``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str
    after_days: int = Field(ge=1, le=36500)
    to: str
    reason: str | None = None
    #: Days before the move at which the applicant is reminded (e.g. ``[90, 30]``).
    remind_before_days: tuple[int, ...] = ()
    #: Case fields recorded with the move, by dotted path; the value ``$due_date`` stands for
    #: the date the deadline fell due (e.g. ``{delivery.outcome: deemed_served,
    #: delivery.date: $due_date}``). Validated with the intake schema like any update.
    updates: dict[str, Any] = Field(default_factory=dict)


class RecordSpec(BaseModel):
    """Cases of this service in ``statuses`` are a current record of ``kind`` about ``subject``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    statuses: tuple[str, ...]
    #: Case path of the person the record is about (canonical person shape).
    subject: str = "person"


class Fees(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Amount in ``currency`` (0: free of charge; None: set by the post, see ``note``).
    amount: float | None = None
    currency: str = Field(default="MAD", pattern=r"^[A-Z]{3}$")
    note: str | None = None


class Guide(BaseModel):
    """The consular reference guide's entry for a service. Texts are English message ids,
    translated by the catalogs (`hub.i18n.translate`); the documents come from the intake schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    summary: str
    who: str
    eligibility: tuple[str, ...] = ()
    fees: Fees = Fees()
    steps: tuple[str, ...] = ()
    #: none | optional | required: whether the applicant books an appointment at the post.
    appointment: Literal["none", "optional", "required"] = "none"
    #: ``applicant``: people apply through the portal (a form); ``inbound``: cases are opened by
    #: an agency (``source_agency``), the guide only explains what happens.
    channel: Literal["applicant", "inbound"] = "applicant"
    source_agency: str | None = None


class Route(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start_status: str
    complete_status: str
    steps: tuple[Step, ...] = ()

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def start_steps(self) -> tuple[Step, ...]:
        """Steps the route runs when it starts (as opposed to those fired by a status)."""
        return tuple(s for s in self.steps if not s.on_status)


class ServiceDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    version: str
    reference_prefix: str = Field(pattern=r"^[A-Z]{2,4}$")
    intake_schema: str
    feature_flag: str | None = None
    #: The reference guide's entry (title, summary, eligibility, fees, steps).
    guide: Guide | None = None
    states: dict[str, StateInfo]
    transitions: tuple[Transition, ...]
    route: Route | None = None
    deadlines: tuple[Deadline, ...] = ()
    record: RecordSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "ServiceDefinition":
        names = set(self.states)
        initial = [n for n, s in self.states.items() if s.initial]
        if len(initial) != 1:
            raise ValueError(f"exactly one initial state is needed, found {initial}")
        for t in self.transitions:
            for status in (t.from_, t.to):
                if status not in names:
                    raise ValueError(f"transition uses unknown status {status!r}")
        if self.route is not None:
            route = self.route
            for status in (route.start_status, route.complete_status):
                if status not in names:
                    raise ValueError(f"route uses unknown status {status!r}")
            step_names = {s.name for s in route.steps}
            for step in route.steps:
                for dep in step.after:
                    if dep not in step_names:
                        raise ValueError(f"step {step.name} waits for unknown step {dep!r}")
                for status in step.on_status:
                    if status not in names:
                        raise ValueError(f"step {step.name} fires on unknown status {status!r}")
                for outcome, effect in step.outcomes.items():
                    if effect.status is not None and effect.status not in names:
                        raise ValueError(f"outcome {step.name}.{outcome} leads to unknown status"
                                         f" {effect.status!r}")
                if step.agency == LOCAL_AGENCY:
                    _check_local_step(step)
        for deadline in self.deadlines:
            for status in (deadline.status, deadline.to):
                if status not in names:
                    raise ValueError(f"deadline uses unknown status {status!r}")
            if not self.allowed(deadline.status, deadline.to, "hub"):
                raise ValueError(f"deadline {deadline.status} -> {deadline.to} needs a transition"
                                 " the hub may make")
            if any(not 0 < d < deadline.after_days for d in deadline.remind_before_days):
                raise ValueError(f"deadline on {deadline.status}: reminders must fall between"
                                 f" 1 and {deadline.after_days - 1} days before")
        if self.record is not None:
            for status in self.record.statuses:
                if status not in names:
                    raise ValueError(f"record uses unknown status {status!r}")
        return self

    @property
    def initial_status(self) -> str:
        return next(n for n, s in self.states.items() if s.initial)

    def is_final(self, status: str) -> bool:
        return self.states[status].final

    def allowed(self, from_status: str, to_status: str, role: Role) -> bool:
        return any(t.from_ == from_status and t.to == to_status and role in t.by
                   for t in self.transitions)

    def next_statuses(self, from_status: str, role: Role) -> list[str]:
        return [t.to for t in self.transitions if t.from_ == from_status and role in t.by]


class ServiceCatalog:
    """Every service definition, loaded and checked once. Disabled flagged services are hidden."""

    def __init__(self, definitions: Iterable[ServiceDefinition], *,
                 features: Iterable[str] = (), offline: dict[str, str] | None = None) -> None:
        self.features = frozenset(features)
        self._all = {d.name: d for d in definitions}
        #: Services not offered here, with the reason (e.g. an agency without configuration).
        self.offline = dict(offline or {})

    @classmethod
    def load(cls, *, features: Iterable[str] = (), extra_dirs: Iterable[Path] = ()
             ) -> "ServiceCatalog":
        found: list[ServiceDefinition] = []
        root = resources.files("hub.services") / "definitions"
        sources = [(p.name, p.read_text("utf-8")) for p in root.iterdir()
                   if p.name.endswith(".yaml")]
        for directory in extra_dirs:
            sources += [(str(p), p.read_text("utf-8")) for p in Path(directory).glob("*.yaml")]
        for where, text in sorted(sources):
            found.append(parse_definition(yaml.safe_load(text), where))
        return cls(found, features=features)

    def enabled(self, definition: ServiceDefinition) -> bool:
        return ((definition.feature_flag is None or definition.feature_flag in self.features)
                and definition.name not in self.offline)

    def get(self, name: str) -> ServiceDefinition:
        definition = self._all.get(name)
        if definition is not None and name in self.offline:
            raise UnknownService(f"service {name!r} is not offered: {self.offline[name]}",
                                 service=name)
        if definition is None or not self.enabled(definition):
            raise UnknownService(f"no service named {name!r}", service=name)
        return definition

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (d for d in self._all.values() if self.enabled(d))

    def names(self) -> list[str]:
        return sorted(d.name for d in self)

    def agencies(self) -> set[str]:
        """Agencies the enabled services route to (local steps need none)."""
        return {s.agency for d in self if d.route for s in d.route.steps
                if s.agency != LOCAL_AGENCY}

    def only(self, names: Iterable[str]) -> "ServiceCatalog":
        """A catalog of some of these services (same features), e.g. for a partial demo."""
        wanted = set(names)
        return ServiceCatalog((d for d in self._all.values() if d.name in wanted),
                              features=self.features, offline=self.offline)

    def offline_without(self, agencies: set[str]) -> "ServiceCatalog":
        """This catalog with the services routing to an agency outside ``agencies`` offline."""
        offline = dict(self.offline)
        for d in self:
            lacking = {s.agency for s in d.route.steps if s.agency != LOCAL_AGENCY} - agencies \
                if d.route else set()
            if lacking:
                offline[d.name] = f"no configuration for agencies {', '.join(sorted(lacking))}"
        return ServiceCatalog(self._all.values(), features=self.features, offline=offline)

    def providers(self, kind: str) -> list[ServiceDefinition]:
        """Enabled services whose cases are records of ``kind`` (see `RecordSpec`)."""
        return [d for d in self if d.record is not None and d.record.kind == kind]


def _check_local_step(step: Step) -> None:
    from hub.services.checks import LOCAL_OPERATIONS

    if step.operation not in LOCAL_OPERATIONS:
        raise ValueError(f"step {step.name}: no local operation {step.operation!r}"
                         f" (known: {sorted(LOCAL_OPERATIONS)})")
    if step.after:
        raise ValueError(f"step {step.name}: a local step runs when the route starts and waits"
                         " for no other step")
    known = LOCAL_OPERATIONS[step.operation].outcomes
    if set(step.outcomes) != set(known):
        raise ValueError(f"step {step.name}: local operation {step.operation} answers"
                         f" {sorted(known)}; give a rule for each")


def parse_definition(data: Any, where: str) -> ServiceDefinition:
    try:
        return ServiceDefinition.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid service definition {where}: {exc}") from None
