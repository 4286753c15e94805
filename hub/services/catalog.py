"""Every service the hub offers, loaded and checked once: `ServiceCatalog`.

    catalog = ServiceCatalog.load(features={"passport_online"})
    catalog.get("driving_licence_authentication")     # UnknownService when not offered
    [d.name for d in catalog]                          # the enabled services

A definition is parsed (`parse_definition`) and its local steps are checked against the hub's
own operations (`hub.services.checks`) before the catalog holds it.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from hub.errors import ConfigurationError, UnknownService
from hub.schemas import field_errors, json_schema_validator
from hub.services.checks import LOCAL_OPERATIONS
from hub.services.definition import ANSWERS_KEY, LOCAL_AGENCY, ServiceDefinition, Step

#: The shared definitions of the intake schemas (``schemas/v1/services/common.json``).
COMMON_SCHEMA = "urn:econsulat:schema:services:common:1"


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


def _check_answers_accepted(definition: ServiceDefinition) -> None:
    """A service whose steps keep answer fields stores them in the case data, which every later
    update validates with the intake schema: the schema must accept them, without offering
    them as a form field."""
    probe = {ANSWERS_KEY: {"step": {"field": "value"}}}
    refused = [e for e in field_errors(json_schema_validator(definition.intake_schema), probe)
               if e["field"].split(".")[0] == ANSWERS_KEY]
    if refused:
        raise ValueError(
            f"steps keep answer fields but {definition.intake_schema} refuses"
            f" {ANSWERS_KEY} ({refused[0]['message']}); add to it: \"patternProperties\": "
            f"{{\"^{ANSWERS_KEY}$\": {{\"$ref\": \"{COMMON_SCHEMA}#/$defs/{ANSWERS_KEY}\"}}}}")


def parse_definition(data: Any, where: str) -> ServiceDefinition:
    try:
        definition = ServiceDefinition.model_validate(data)
        for step in (definition.route.steps if definition.route else ()):
            if step.agency == LOCAL_AGENCY:
                _check_local_step(step)
        if definition.keeps_answers:
            _check_answers_accepted(definition)
    except (ValidationError, ValueError) as exc:
        raise ConfigurationError(f"invalid service definition {where}: {exc}") from None
    return definition
