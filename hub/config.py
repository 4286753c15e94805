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
from datetime import timedelta
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

from hub.errors import ConfigurationError

#: The hub's X-Road client identifier (instance/class/member/subsystem) unless ``HUB_NODE_ID``
#: names another; connectors built without one send it too.
DEFAULT_NODE_ID = "MA/GOV/MAEC/ECONSULAT-HUB"


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


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _bounded(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    value = _int(env, name, default, minimum=minimum)
    if value > maximum:
        raise ConfigurationError(f"{name} must be <= {maximum}, got {value}")
    return value


def _names(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = env.get(name) or ""
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    for item in names:
        if not item.replace("_", "").replace("-", "").isalnum() or not item.isascii():
            raise ConfigurationError(f"{name}: {item!r} is not a feature name (letters, digits,"
                                     " _ and -)")
    return names


#: The languages of the consular reference guide and the portal.
LANGUAGES = ("ar", "en", "fr", "es", "it", "nl", "de")


def _language(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    if raw not in LANGUAGES:
        raise ConfigurationError(f"{name} must be one of {', '.join(LANGUAGES)}, got {raw!r}")
    return raw
#: ``HUB_SIGNATURE_ALGORITHM`` values and the key type `hub keys init` makes for each.
SIGNATURE_ALGORITHMS: dict[str, str] = {"ecdsa-p256": "ec", "rsa-sha256": "rsa"}

def default_retention_days() -> dict[str, int]:
    """Retention per service shipped with the hub (``hub/data/retention.yaml``), in days."""
    from importlib import resources

    import yaml

    text = (resources.files("hub") / "data" / "retention.yaml").read_text("utf-8")
    days = yaml.safe_load(text) or {}
    if not isinstance(days, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in days.items()):
        raise ConfigurationError("hub/data/retention.yaml must map service names to days > 0")
    return days


def _agency_values(env: Mapping[str, str], suffix: str) -> dict[str, str]:
    """``HUB_AGENCY_<NAME><suffix>`` variables as ``{name: value}`` (name lower-cased)."""
    prefix = "HUB_AGENCY_"
    return {key[len(prefix):-len(suffix)].lower(): value for key, value in env.items()
            if key.startswith(prefix) and key.endswith(suffix) and len(key) > len(prefix)
            + len(suffix) and value}


def _pins(env: Mapping[str, str], suffix: str) -> dict[str, frozenset[str]]:
    # Comma-separated: pin the current and the next key during a rotation.
    return {name: frozenset(p.strip() for p in value.split(",") if p.strip())
            for name, value in _agency_values(env, suffix).items()}


def _retention(env: Mapping[str, str]) -> dict[str, int]:
    days = default_retention_days()
    prefix, suffix = "HUB_RETENTION_", "_DAYS"
    for key in env:
        if key.startswith(prefix) and key.endswith(suffix) and key != "HUB_RETENTION_DAYS":
            days[key[len(prefix):-len(suffix)].lower()] = _int(env, key, 0, minimum=1)
    return days


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
    node_id: str = DEFAULT_NODE_ID
    max_message_bytes: int = 1024 * 1024
    #: Deliveries a consumer holds unacknowledged (the broker's prefetch window).
    prefetch: int = 64
    #: Most requests a connector worker handles together: called concurrently, their answers
    #: applied in one transaction and acked together.
    consumer_batch: int = 32
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
    #: Per-agency bearer credentials for inbound calls (Health callback, Justice documents),
    #: from ``HUB_AGENCY_<NAME>_TOKEN``. An agency without one cannot call the hub.
    agency_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    maintenance: bool = False
    #: RabbitMQ management API for queue rates and ages; None: derived from the broker URL
    #: (port 15672) and used when it answers; "off": never asked.
    rabbitmq_management_url: str | None = None
    #: Operators' bearer token for the console and admin API until personal tokens are issued;
    #: None: read (or created) in ``$HUB_KEYS_DIR/admin-token``.
    admin_token: str | None = None
    #: `/metrics` and `/readyz`: how long a computed answer is reused, each check's time limit,
    #: and how many days before a certificate expires readiness starts failing.
    metrics_cache_seconds: float = 5.0
    readyz_cache_seconds: float = 2.0
    readyz_timeout: float = 2.0
    certificate_min_days: int = 7
    #: Feature flags, from ``HUB_FEATURES`` (comma-separated): services whose definition names a
    #: ``feature_flag`` are offered only when that flag is listed here.
    features: frozenset[str] = frozenset()
    #: Where uploaded documents are kept, encrypted (``HUB_ATTACHMENTS_DIR``).
    attachments_dir: Path | None = None
    #: Largest accepted document (``HUB_MAX_ATTACHMENT_BYTES``).
    max_attachment_bytes: int = 5 * 1024 * 1024
    #: Uploaded documents no request claimed are deleted after this many hours.
    unclaimed_attachment_hours: int = 24
    #: Default language of the applicant pages and API messages (``HUB_DEFAULT_LANGUAGE``).
    default_language: str = "fr"
    #: Signatures of the hub (XML-DSig, JWS, envelope seals, checkpoints): ``ecdsa-p256``
    #: (ES256 / ecdsa-sha256) or ``rsa-sha256`` (RS256, RSA 3072). `hub keys init` makes keys of
    #: that kind; the hub refuses to start with keys of the other kind.
    signature_algorithm: str = "ecdsa-p256"
    #: Replay protection of signed agency messages: accepted age (seconds) and clock skew.
    replay_window: float = 300.0
    replay_skew: float = 60.0
    #: Lifetime of access tokens (seconds, at most 8 hours).
    token_ttl: int = 900
    #: SPKI pins per agency (``HUB_AGENCY_<NAME>_SIGNING_PIN`` / ``..._TLS_PIN``, comma-separated):
    #: when set, only those keys may sign for / serve as the agency.
    agency_signing_pins: dict[str, frozenset[str]] = field(default_factory=dict)
    agency_tls_pins: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Mutual TLS with agencies: every agency (``HUB_AGENCY_TLS=1``) or some
    #: (``HUB_AGENCY_<NAME>_TLS=1``).
    agency_tls_all: bool = False
    agency_tls: frozenset[str] = frozenset()
    #: Seconds between two passes of the audit sealer (chains new audit records).
    audit_chain_interval: float = 0.5
    #: A message retried and not heard of for this many seconds is sent again from the outbox
    #: (`hub.redrive`); 0 turns redriving off. Checked every ``redrive_interval`` seconds.
    redrive_after: float = 900.0
    redrive_interval: float = 60.0
    #: Retention of personal data per service, in days (`default_retention_days` overridden by
    #: ``HUB_RETENTION_<SERVICE>_DAYS``), and for services not listed (``HUB_RETENTION_DAYS``).
    retention_days: dict[str, int] = field(default_factory=dict)
    default_retention_days: int = 1095
    #: Dead-letter bodies and sent outbox rows are purged after this many days.
    message_retention_days: int = 90

    @property
    def seen_id_retention(self) -> timedelta:
        """How long a signed message id is remembered: past the replay window and the clock
        skew, a message is refused on its timestamp alone."""
        return timedelta(seconds=self.replay_window + self.replay_skew)

    def uses_agency_tls(self, agency: str) -> bool:
        return self.agency_tls_all or agency in self.agency_tls

    def retention_for(self, service: str) -> int:
        return self.retention_days.get(service, self.default_retention_days)

    @property
    def key_algorithm(self) -> str:
        """The `security.pki` key type for `signature_algorithm` (``ec`` or ``rsa``)."""
        return SIGNATURE_ALGORITHMS[self.signature_algorithm]

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
        agency_tokens = {
            key[len("HUB_AGENCY_"):-len("_TOKEN")].lower(): value
            for key, value in env.items()
            if key.startswith("HUB_AGENCY_") and key.endswith("_TOKEN") and value
        }
        return cls(
            data_dir=data_dir,
            broker_url=env.get("HUB_BROKER_URL") or f"sqlite:///{data_dir / 'broker.db'}",
            database_url=env.get("HUB_DATABASE_URL") or f"sqlite:///{data_dir / 'hub.db'}",
            keys_dir=Path(env.get("HUB_KEYS_DIR") or data_dir / "keys").expanduser(),
            broker_namespace=env.get("HUB_BROKER_NAMESPACE") or "hub",
            node_id=env.get("HUB_NODE_ID") or DEFAULT_NODE_ID,
            max_message_bytes=_int(env, "HUB_MAX_MESSAGE_BYTES", 1024 * 1024, minimum=1024),
            prefetch=_int(env, "HUB_PREFETCH", 64, minimum=1),
            consumer_batch=_int(env, "HUB_CONSUMER_BATCH", 32, minimum=1),
            visibility_timeout=_float(env, "HUB_VISIBILITY_TIMEOUT", 60.0, minimum=0.1),
            relay_batch=_int(env, "HUB_RELAY_BATCH", 200, minimum=1),
            relay_poll_interval=_float(env, "HUB_RELAY_POLL_INTERVAL", 0.2, minimum=0.001),
            agencies_file=Path(agencies_file) if agencies_file else None,
            http_host=env.get("HUB_HTTP_HOST") or "127.0.0.1",
            http_port=_int(env, "HUB_HTTP_PORT", 8080, minimum=0),
            log_level=(env.get("HUB_LOG_LEVEL") or "INFO").upper(),
            log_format=env.get("HUB_LOG_FORMAT") or "json",
            agency_urls=agency_urls,
            agency_tokens=agency_tokens,
            maintenance=_bool(env, "HUB_MAINTENANCE", False),
            rabbitmq_management_url=env.get("HUB_RABBITMQ_MANAGEMENT_URL") or None,
            admin_token=env.get("HUB_ADMIN_TOKEN") or None,
            metrics_cache_seconds=_float(env, "HUB_METRICS_CACHE_SECONDS", 5.0),
            readyz_cache_seconds=_float(env, "HUB_READYZ_CACHE_SECONDS", 2.0),
            readyz_timeout=_float(env, "HUB_READYZ_TIMEOUT", 2.0, minimum=0.05),
            certificate_min_days=_int(env, "HUB_CERTIFICATE_MIN_DAYS", 7),
            features=_names(env, "HUB_FEATURES"),
            attachments_dir=Path(env.get("HUB_ATTACHMENTS_DIR") or data_dir / "attachments"),
            max_attachment_bytes=_int(env, "HUB_MAX_ATTACHMENT_BYTES", 5 * 1024 * 1024,
                                      minimum=1024),
            unclaimed_attachment_hours=_int(env, "HUB_UNCLAIMED_ATTACHMENT_HOURS", 24,
                                            minimum=1),
            default_language=_language(env, "HUB_DEFAULT_LANGUAGE", "fr"),
            signature_algorithm=_choice(env, "HUB_SIGNATURE_ALGORITHM", "ecdsa-p256",
                                        tuple(SIGNATURE_ALGORITHMS)),
            replay_window=_float(env, "HUB_REPLAY_WINDOW", 300.0, minimum=1.0),
            replay_skew=_float(env, "HUB_REPLAY_SKEW", 60.0, minimum=0.0),
            token_ttl=_bounded(env, "HUB_TOKEN_TTL", 900, 1, 8 * 3600),
            agency_signing_pins=_pins(env, "_SIGNING_PIN"),
            agency_tls_pins=_pins(env, "_TLS_PIN"),
            agency_tls_all=_bool(env, "HUB_AGENCY_TLS", False),
            agency_tls=frozenset(name for name in _agency_values(env, "_TLS")
                                 if _bool(env, f"HUB_AGENCY_{name.upper()}_TLS", False)),
            audit_chain_interval=_float(env, "HUB_AUDIT_SEAL_INTERVAL", 0.5, minimum=0.01),
            redrive_after=_float(env, "HUB_REDRIVE_AFTER", 900.0),
            redrive_interval=_float(env, "HUB_REDRIVE_INTERVAL", 60.0, minimum=0.1),
            retention_days=_retention(env),
            default_retention_days=_int(env, "HUB_RETENTION_DAYS", 1095, minimum=1),
            message_retention_days=_int(env, "HUB_MESSAGE_RETENTION_DAYS", 90, minimum=1),
        )

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def describe(self) -> dict[str, str]:
        """Settings as strings for `hub config`, with credentials in URLs masked."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            text = str(value)
            if f.name == "admin_token" and value:
                text = "***"
            elif f.name == "agency_tokens":
                text = ", ".join(f"{name}=***" for name in sorted(value))
            elif f.name.endswith("_url") and "@" in text:
                scheme, _, rest = text.partition("://")
                text = f"{scheme}://***@{rest.split('@', 1)[1]}"
            out[f.name] = text
        return out
