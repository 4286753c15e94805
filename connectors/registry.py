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

Overrides, applied in this order: the YAML file named by ``HUB_AGENCIES_FILE`` (a mapping from
agency name to any of the fields above), then ``HUB_AGENCY_<NAME>_URL``, then what the caller
passes (tests shorten retry delays this way).
"""
from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import ConfigurationError


class CircuitBreakerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(default=10, ge=1)
    reset_timeout: float = Field(default=30.0, gt=0)


class RetrySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_delay: float = Field(default=1.0, gt=0)
    max_delay: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=50)
    jitter: float = Field(default=0.5, ge=0, lt=1)


class AgencyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    title: str
    protocol: Literal["rest", "soap"]
    connector: str
    simulator: str | None = None
    base_url: str = "http://127.0.0.1:8700"
    timeout: float = Field(default=5.0, gt=0)
    xroad_service: str = ""
    retry: RetrySettings = RetrySettings()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    concurrency: int = Field(default=4, ge=1, le=256)
    #: Connector-specific settings (WSDL name, paths, callback URL...).
    options: dict[str, Any] = Field(default_factory=dict)
    #: Settings of the agency's simulator (e.g. Health's ``callback_delay``).
    simulator_options: dict[str, Any] = Field(default_factory=dict)

    def with_overrides(self, **changes: Any) -> "AgencyConfig":
        data = self.model_dump()
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return _validate(data, f"overrides of {self.name}")


def _validate(data: Any, where: str) -> AgencyConfig:
    try:
        return AgencyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid agency configuration in {where}: {exc}") from None


def packaged_agencies() -> dict[str, AgencyConfig]:
    """Every ``connectors/<agency>/agency.yaml`` shipped with the hub."""
    found: dict[str, AgencyConfig] = {}
    root = resources.files("connectors")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        spec = entry / "agency.yaml"
        if entry.is_dir() and spec.is_file():
            config = _validate(yaml.safe_load(spec.read_text("utf-8")), str(spec))
            found[config.name] = config
    return found


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


def build_connector(config: AgencyConfig, **dependencies: Any) -> Any:
    """Instantiate the agency's connector class with its config and dependencies."""
    return import_object(config.connector)(config, **dependencies)


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
