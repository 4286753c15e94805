"""A service definition as data: statuses, transitions, route, deadlines, record, guide.

The pydantic models of one ``definitions/<service>.yaml`` file, checked for internal consistency
when parsed (every status, step and transition it names exists). What a definition may ask of
the rest of the hub (local operations, agencies) is checked by the catalog that loads it
(`hub.services.catalog`). The file format is described in the package's docstring.
"""
from __future__ import annotations

import re
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator


Role = Literal["hub", "staff", "applicant", "agency"]

#: The pseudo-agency of local steps: checks the hub answers itself (see `hub.services.checks`).
LOCAL_AGENCY = "hub"
#: Where the case data holds the answer fields route steps keep (``keep``), by step name:
#: ``{"agency_answers": {"birth_record": {"extract_number": "EX-..."}}}``. Inside the case data,
#: so encrypted at rest with it, readable by the next steps (``input``) and shown to staff. An
#: intake schema accepts it with ``patternProperties`` (not ``properties``: no form field).
ANSWERS_KEY = "agency_answers"


class StateInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: bool = False
    final: bool = False
    #: Staff moving a case here must attach the signed outcome document (the authorisation,
    #: the attestation, the certificate of delivery).
    outcome_document: bool = False
    #: The reasons staff choose from when they move a case here (codes, translated under
    #: ``reason`` for the applicant and the history). When listed, a staff move here must give
    #: one of them; a status without them takes none. The hub's own moves (a route's outcome, a
    #: deadline) carry their own reason and are not limited by this list.
    staff_reasons: tuple[str, ...] = ()


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
    #: Fields of the agency's answer (its ``data``) the case keeps, whatever the outcome, under
    #: ``agency_answers.<step name>`` (see `ANSWERS_KEY`), e.g. ``keep: [extract_number]``.
    keep: tuple[str, ...] = ()

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

    @model_validator(mode="after")
    def _keeps_answer_fields(self) -> "Step":
        for name in self.keep:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(f"step {self.name} keeps {name!r}: a field of the answer's data"
                                 " (lower-case letters, digits, _)")
        if self.keep and self.agency == LOCAL_AGENCY:
            raise ValueError(f"step {self.name}: a local check answers no data to keep")
        return self

    @property
    def schema_name(self) -> str:
        return f"{self.agency}.{self.operation}.request"

    def kept(self, answer_data: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of an answer's data this step keeps (those the agency sent)."""
        return {name: answer_data[name] for name in self.keep if name in answer_data}


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
        for name, info in self.states.items():
            if info.staff_reasons and not any(t.to == name and "staff" in t.by
                                              for t in self.transitions):
                raise ValueError(f"status {name} lists staff reasons but staff never move a"
                                 " case there")
            for reason in info.staff_reasons:
                if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", reason):
                    raise ValueError(f"status {name}: reason {reason!r} is not a code")
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

    @property
    def keeps_answers(self) -> bool:
        """Whether a route step keeps answer fields in the case (``keep``)."""
        return self.route is not None and any(step.keep for step in self.route.steps)

    def with_answer_kept(self, case_data: Mapping[str, Any], step: str,
                         answer_data: Mapping[str, Any]) -> dict[str, Any] | None:
        """The case data with what ``step`` keeps of an answer (replacing what an earlier
        answer of that step left there); None when the step keeps nothing, so that the
        caller leaves the case data, and its encryption, alone. Pure."""
        if self.route is None:
            return None
        try:
            kept_by = self.route.step(step)
        except KeyError:
            return None
        if not kept_by.keep:
            return None
        answers = dict(case_data.get(ANSWERS_KEY) or {})
        answers[step] = kept_by.kept(answer_data)
        return {**case_data, ANSWERS_KEY: answers}

    def next_statuses(self, from_status: str, role: Role) -> list[str]:
        return [t.to for t in self.transitions if t.from_ == from_status and role in t.by]
