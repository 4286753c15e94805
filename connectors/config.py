"""An agency's configuration (``connectors/<agency>/agency.yaml`` and its overrides), as a frozen,
validated model; `connectors.registry` loads them and builds connectors from them.

It lives apart from the registry so that the connector base class can name it without importing
the registry that builds connectors.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

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
        return validate_config(data, f"overrides of {self.name}")


def validate_config(data: Any, where: str) -> AgencyConfig:
    """``data`` as an `AgencyConfig`; a `ConfigurationError` naming ``where`` when invalid."""
    try:
        return AgencyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid agency configuration in {where}: {exc}") from None
