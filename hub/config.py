"""Configuration: every setting comes from a ``HUB_*`` environment variable, read here and only here.

    >>> settings = Settings.from_env({"HUB_DATA_DIR": "/tmp/hub"})
    >>> settings.broker_url
    'sqlite:////tmp/hub/broker.db'

The defaults give the embedded quick start: SQLite store and SQLite-backed queue under
``HUB_DATA_DIR`` (``./var``). Production sets ``HUB_BROKER_URL=amqp://...`` and
``HUB_DATABASE_URL=postgresql+psycopg://...``. The table of variables is in README.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

from hub.errors import ConfigurationError


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _names(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = env.get(name) or ""
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    for item in names:
        if not item.replace("_", "").replace("-", "").isalnum() or not item.isascii():
            raise ConfigurationError(f"{name}: {item!r} is not a feature name (letters, digits,"
                                     " _ and -)")
    return names


@dataclass(frozen=True)
class Settings:
    """The hub's configuration. Build it with `Settings.from_env`; pass it down explicitly."""

    data_dir: Path
    broker_url: str
    database_url: str
    keys_dir: Path
    #: Prefix of every broker object (exchange, queues), so deployments and test runs don't collide.
    broker_namespace: str = "hub"
    #: Identity of this hub on the wire: the X-Road client id (instance/class/member/subsystem).
    node_id: str = "MA/GOV/MAEC/ECONSULAT-HUB"
    max_message_bytes: int = 1024 * 1024
    prefetch: int = 16
    #: Embedded broker: how long a delivered, unacknowledged message stays invisible.
    visibility_timeout: float = 60.0
    #: Outbox relay: rows published per batch and idle poll interval.
    relay_batch: int = 200
    relay_poll_interval: float = 0.2
    #: Override file for agency endpoints and retry policies (YAML); None means packaged defaults.
    agencies_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    log_format: str = "json"
    #: Per-agency base URL overrides, from ``HUB_AGENCY_<NAME>_URL``.
    agency_urls: dict[str, str] = field(default_factory=dict)
    #: Tests: a missing RabbitMQ or PostgreSQL is a failure instead of a skip.
    require_services: bool = False
    maintenance: bool = False
    #: Feature flags, from ``HUB_FEATURES`` (comma-separated): services whose definition names a
    #: ``feature_flag`` are offered only when that flag is listed here.
    features: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("HUB_DATA_DIR") or "var").expanduser()
        if not data_dir.is_absolute():
            data_dir = Path.cwd() / data_dir
        agencies_file = env.get("HUB_AGENCIES_FILE")
        agency_urls = {
            key[len("HUB_AGENCY_"):-len("_URL")].lower(): value
            for key, value in env.items()
            if key.startswith("HUB_AGENCY_") and key.endswith("_URL") and value
        }
        return cls(
            data_dir=data_dir,
            broker_url=env.get("HUB_BROKER_URL") or f"sqlite:///{data_dir / 'broker.db'}",
            database_url=env.get("HUB_DATABASE_URL") or f"sqlite:///{data_dir / 'hub.db'}",
            keys_dir=Path(env.get("HUB_KEYS_DIR") or data_dir / "keys").expanduser(),
            broker_namespace=env.get("HUB_BROKER_NAMESPACE") or "hub",
            node_id=env.get("HUB_NODE_ID") or "MA/GOV/MAEC/ECONSULAT-HUB",
            max_message_bytes=_int(env, "HUB_MAX_MESSAGE_BYTES", 1024 * 1024, minimum=1024),
            prefetch=_int(env, "HUB_PREFETCH", 16, minimum=1),
            visibility_timeout=_float(env, "HUB_VISIBILITY_TIMEOUT", 60.0, minimum=0.1),
            relay_batch=_int(env, "HUB_RELAY_BATCH", 200, minimum=1),
            relay_poll_interval=_float(env, "HUB_RELAY_POLL_INTERVAL", 0.2, minimum=0.001),
            agencies_file=Path(agencies_file) if agencies_file else None,
            http_host=env.get("HUB_HTTP_HOST") or "127.0.0.1",
            http_port=_int(env, "HUB_HTTP_PORT", 8080, minimum=0),
            log_level=(env.get("HUB_LOG_LEVEL") or "INFO").upper(),
            log_format=env.get("HUB_LOG_FORMAT") or "json",
            agency_urls=agency_urls,
            require_services=_bool(env, "HUB_REQUIRE_SERVICES", False),
            maintenance=_bool(env, "HUB_MAINTENANCE", False),
            features=_names(env, "HUB_FEATURES"),
        )

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def describe(self) -> dict[str, str]:
        """Settings as strings for `hub config`, with credentials in URLs masked."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            text = str(value)
            if f.name.endswith("_url") and "@" in text:
                scheme, _, rest = text.partition("://")
                text = f"{scheme}://***@{rest.split('@', 1)[1]}"
            out[f.name] = text
        return out
