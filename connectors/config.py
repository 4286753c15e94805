"""An agency's configuration (``connectors/<agency>/agency.yaml`` and its overrides), as a frozen,
validated model; `connectors.registry` loads them and builds connectors from them.

It lives apart from the registry so that the connector base class can name it without importing
the registry that builds connectors.
"""
from __future__ import annotations

import re
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class OperationContract(BaseModel):
    """One operation of an agency, as route steps see it (``docs/exchanges.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Top-level names of the canonical payload, each with a short description of its shape.
    payload: dict[str, str]
    #: Every outcome the agency may answer; a route step gives a rule for each.
    outcomes: tuple[str, ...] = Field(min_length=1)
    #: Fields of the canonical answer's ``data``, each with what it holds.
    data: dict[str, str] = Field(default_factory=dict)
    #: How the simulator answers (so that tests and the demo know the answer in advance).
    rule: str = ""
    #: The agency acknowledges at once and answers later, by calling the hub back.
    asynchronous: bool = False


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
    #: The simulator's rule as a pure function over wire documents (``module:function``).
    rules: str | None = None
    #: The operations' contract, by operation name (see `connectors.registry`).
    operations: dict[str, OperationContract] = Field(default_factory=dict)

    @field_validator("operations")
    @classmethod
    def _operation_names(cls, value: dict[str, OperationContract]
                         ) -> dict[str, OperationContract]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(f"operation {name!r}: lower-case letters, digits, _")
        return value

    def with_overrides(self, **changes: Any) -> "AgencyConfig":
        data = self.model_dump()
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return validate_config(data, f"overrides of {self.name}")


def validate_config(data: Any, where: str) -> AgencyConfig:
    """``data`` as an `AgencyConfig`; a `ConfigurationError` naming ``where`` when invalid."""
    try:
        return AgencyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid agency configuration in {where}: {exc}") from None
