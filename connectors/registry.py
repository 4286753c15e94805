"""Agency configurations and how to build their connectors.

Each agency package carries its defaults in ``connectors/<agency>/agency.yaml``::

    name: narsa
    title: National Road Safety Agency (NARSA)
    protocol: rest                                  # rest | soap
    connector: connectors.narsa.connector:NarsaConnector
    simulator: connectors.narsa.simulator:NarsaSimulator
    base_url: http://127.0.0.1:8704                 # the simulator's default address
    timeout: 5                                      # seconds, per call
    xroad_service: MA/GOV/NARSA/LICENCES/verifyLicence/v1
    retry: {base_delay: 1, max_delay: 60, max_attempts: 6, jitter: 0.5}
    circuit_breaker: {failure_threshold: 10, reset_timeout: 30}
    concurrency: 4                                  # parallel calls per worker process
    options: {wsdl: v1/agencies/dgsn.wsdl}          # connector settings
    simulator_options: {callback_delay: 0.2}        # simulator settings
    operations:                                     # the contract of docs/exchanges.md
      verify_licence:
        payload: {licence: "{number, categories[{code, issued_on}]}", holder: person}
        outcomes: [authentic, not_authentic, unknown]
        data: {licence_status: "valid, suspended or cancelled"}
        rule: a licence number whose Luhn check digit fails is not_authentic; ...

``operations`` is what route steps and the agency's connector agree on: the top-level names of
the canonical payload a step may send, the outcomes it must give a rule for, the fields of the
answer's ``data`` and the rule the simulator answers by. The service tests, the conformance kit,
the mock agencies and ``hub connector operations`` read it; nothing else needs updating when an
agency is added.

``rules`` (optional; every scaffolded agency has it: ``connectors.<agency>.register:answer``)
names the simulator's rule as a pure function over wire documents,
``answer(operation, request, *, serial, now) -> answer``: mock agencies
(`hub.testing.agencies`) answer with it in-process, through the agency's own mappings.

Overrides, applied in this order: the YAML file named by ``HUB_AGENCIES_FILE`` (a mapping from
agency name to any of the fields above), then ``HUB_AGENCY_<NAME>_URL``, then what the caller
passes (tests shorten retry delays this way).
"""
from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from connectors.base import Connector, ConnectorDeps
from connectors.config import (AgencyConfig, CircuitBreakerSettings, OperationContract,
                               RetrySettings, validate_config)
from hub.errors import ConfigurationError

__all__ = ["AgencyConfig", "CircuitBreakerSettings", "OperationContract", "RetrySettings",
           "agency_file", "build_connector", "import_object", "key_parties", "load_agencies",
           "packaged_agencies", "start_simulators"]


def packaged_agencies() -> dict[str, AgencyConfig]:
    """Every ``connectors/<agency>/agency.yaml`` shipped with the hub."""
    found: dict[str, AgencyConfig] = {}
    root = resources.files("connectors")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        spec = entry / "agency.yaml"
        if entry.is_dir() and spec.is_file():
            config = validate_config(yaml.safe_load(spec.read_text("utf-8")), str(spec))
            found[config.name] = config
    return found


def key_parties() -> tuple[str, ...]:
    """Who holds keys in a development PKI: the hub and every packaged agency (what ``hub keys
    init``, the demo and the test fixtures make keys for, so that a new agency's simulator can
    sign and verify like the others)."""
    return ("hub", *packaged_agencies())


def agency_file(agency: str, name: str) -> Any:
    """A file shipped in the agency's package (``connectors/<agency>/<name>``), as a resource."""
    return resources.files("connectors") / agency / name


def load_agencies(*, overrides_file: Path | None = None, urls: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> dict[str, AgencyConfig]:
    agencies = packaged_agencies()
    layers: list[Mapping[str, Mapping[str, Any]]] = []
    if overrides_file is not None:
        try:
            layers.append(yaml.safe_load(Path(overrides_file).read_text("utf-8")) or {})
        except OSError as exc:
            raise ConfigurationError(f"cannot read HUB_AGENCIES_FILE {overrides_file}: {exc}")
    layers.append({name: {"base_url": url} for name, url in (urls or {}).items()})
    layers.append(overrides or {})
    for layer in layers:
        for name, changes in layer.items():
            if name not in agencies:
                raise ConfigurationError(f"override for unknown agency {name!r}")
            agencies[name] = agencies[name].with_overrides(**dict(changes))
    return agencies


def import_object(path: str) -> Any:
    """Import ``package.module:Name``."""
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot import {path!r}: {exc}") from None


def build_connector(config: AgencyConfig, deps: ConnectorDeps | None = None) -> Connector:
    """Instantiate the agency's connector class (``connector:`` of its ``agency.yaml``) with its
    config and what the hub gives it (`ConnectorDeps`; none: unsigned, default node id)."""
    connector = import_object(config.connector)(config, deps)
    if not isinstance(connector, Connector):
        raise ConfigurationError(f"{config.connector} is not a connector")
    return connector


def start_simulators(agencies: Mapping[str, AgencyConfig], *, only: set[str] | None = None,
                     free_ports: bool = False, host: str = "127.0.0.1",
                     options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Start the simulator of each agency (on its configured port, or a free one).

    Each simulator gets its agency's ``simulator_options``, then ``options[agency]`` (e.g. the
    hub's callback URL and the agency's credential)."""
    from urllib.parse import urlparse

    started: dict[str, Any] = {}
    try:
        for name, config in agencies.items():
            if config.simulator is None or (only is not None and name not in only):
                continue
            port = 0 if free_ports else (urlparse(config.base_url).port or 0)
            settings = {**config.simulator_options, **dict((options or {}).get(name, {}))}
            started[name] = import_object(config.simulator)(host=host, port=port,
                                                            **settings).start()
    except BaseException:
        for simulator in started.values():
            simulator.stop()
        raise
    return started
