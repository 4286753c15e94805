"""Routing decisions: pure functions from a service's route and a case's state to what happens next.

No I/O here: the case worker and the intake call these and persist the result.

- `start`: a case was opened (or re-opened with more information): its status while the route
  runs, and the steps to dispatch at once (those waiting for no other step; they run in parallel).
- `on_answer`: an agency answered a step: the outcome's effect (continue, or move the case and
  stop) and the steps that became ready; when every start step has continued, the case moves to
  the route's ``complete_status``.
- `on_status`: a case entered a status; the steps that fire on it (e.g. return the delivery
  certificate to Justice when the post records the outcome).
- `request_payload`: the data an agency receives for a step: only the case fields the step names
  (data minimisation, Law 09-08), plus the step's constants.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from hub.errors import UnknownRoute
from hub.mapping import get_path, set_path, MISSING
from hub.services import ServiceDefinition, Step


@dataclass(frozen=True)
class StepState:
    """The latest exchange of a step in the current round."""

    status: str
    outcome: str | None = None


@dataclass(frozen=True)
class Decision:
    status: str | None = None
    reason: str | None = None
    dispatch: tuple[Step, ...] = ()


def start(definition: ServiceDefinition) -> Decision:
    route = definition.route
    if route is None:
        return Decision()
    ready = tuple(s for s in route.start_steps if not s.after)
    return Decision(status=route.start_status, reason="route_started", dispatch=ready)


def on_answer(definition: ServiceDefinition, step_name: str, outcome: str,
              states: Mapping[str, StepState]) -> Decision:
    """Decide what an answer does. ``states`` includes the step just answered."""
    route = definition.route
    if route is None:
        raise UnknownRoute(f"service {definition.name} has no route", service=definition.name)
    try:
        step = route.step(step_name)
    except KeyError:
        raise UnknownRoute(f"service {definition.name} has no step {step_name!r}") from None
    effect = step.outcomes.get(outcome)
    if effect is None:
        raise UnknownRoute(f"step {step_name} of {definition.name} has no rule for outcome"
                           f" {outcome!r}", step=step_name, outcome=outcome)
    if not effect.continues:
        return Decision(status=effect.status, reason=effect.reason or f"{step_name}_{outcome}")
    if step.on_status:
        return Decision()

    def continued(name: str) -> bool:
        state = states.get(name)
        if state is None or state.status != "answered" or state.outcome is None:
            return False
        rule = route.step(name).outcomes.get(state.outcome)
        return rule is not None and rule.continues

    ready = tuple(s for s in route.start_steps
                  if s.name not in states and s.after and all(continued(a) for a in s.after))
    if all(continued(s.name) for s in route.start_steps):
        return Decision(status=route.complete_status, reason="route_complete", dispatch=ready)
    return Decision(dispatch=ready)


def on_status(definition: ServiceDefinition, status: str) -> tuple[Step, ...]:
    if definition.route is None:
        return ()
    return tuple(s for s in definition.route.steps if status in s.on_status)


def request_payload(step: Step, case_data: Mapping[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for target, source in step.input.items():
        value = get_path(case_data, source)
        if value is not MISSING:
            set_path(payload, target, value)
    for key, value in step.constants.items():
        set_path(payload, key, value)
    return payload
