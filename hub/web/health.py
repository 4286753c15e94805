"""Probes for orchestrators and scrapers: ``/healthz``, ``/readyz``, ``/metrics``.

- ``GET /healthz``: the process is alive and serving (no dependency is touched): 200.
- ``GET /readyz``: this process can do useful work: the database answers, the broker answers and
  knows our queues, the keys can be read, no certificate has expired or expires within
  ``HUB_CERTIFICATE_MIN_DAYS``. Each check runs with a time limit (``HUB_READYZ_TIMEOUT``); the
  result is reused for ``HUB_READYZ_CACHE_SECONDS`` so a probe storm does not become a load on
  the database. 200 when every check passes, 503 otherwise, and 503 with ``"maintenance"`` while
  the deployment is in maintenance (``HUB_MAINTENANCE=1`` or the console's switch), which takes
  the process out of a load balancer during an upgrade without killing it.
- ``GET /metrics``: Prometheus text format, see `hub.web.metrics`.

    {"status": "ready", "checks": {"database": {"ok": true, "ms": 1.2, "detail": "SELECT 1"},
                                   "broker": {...}, "keys": {...}, "certificates": {...}}}
"""
from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from cryptography import x509
from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hub.config import Settings
from hub.delivery.broker import Broker
from hub.keyset import HubKeys
from hub.ops import controls
from hub.store import Store

blueprint = Blueprint("probes", __name__)

CERT_SUFFIXES = (".pem", ".crt", ".cer")


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "ms": round(self.ms, 1)}


#: A readiness check: says what it verified, or raises saying what is wrong.
CheckFn = Callable[[], str]


def check_database(store: Store) -> str:
    store.ping()
    return "SELECT 1 answered"


def check_broker(open_broker: Callable[[], Broker], queue: str) -> str:
    """The broker answers and knows ``queue`` (the cases queue: every deployment has it)."""
    with open_broker() as broker:
        depth = broker.depth(queue)
    return f"{queue} reachable ({depth} messages)"


def check_keys(settings: Settings) -> str:
    """The keys a restarted process would load are all there and usable: the hub's signing key
    and certificate (neither expired nor revoked by the current CRL), the trust store and the
    data-key ring. The running process keeps what it loaded at start; this says whether the next
    one (a new worker, a restart) would start."""

    keys = HubKeys.load(settings)
    probe = b"readyz"
    if keys.data.decrypt(keys.data.encrypt(probe, context=probe), context=probe) != probe:
        raise RuntimeError("the data-key ring does not decrypt what it encrypts")
    return (f"signing key {keys.signer.key_type.upper()} and data keys readable in"
            f" {settings.keys_dir}")


def certificates_expiry(keys_dir: Path) -> list[tuple[str, datetime]]:
    """(file, not-after) of every X.509 certificate under ``keys_dir``."""

    found: list[tuple[str, datetime]] = []
    if not keys_dir.is_dir():
        return found
    for path in sorted(keys_dir.rglob("*")):
        if path.suffix.lower() not in CERT_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        if b"BEGIN CERTIFICATE" not in data:
            continue  # a private key or CSR with a .pem name
        for cert in x509.load_pem_x509_certificates(data):
            found.append((str(path.relative_to(keys_dir)), cert.not_valid_after_utc))
    return found


def check_certificates(keys_dir: Path, min_days: float) -> str:
    """Every certificate under ``keys_dir`` is valid for at least ``min_days`` more days."""
    certs = certificates_expiry(Path(keys_dir))
    if not certs:
        return "no certificates configured"
    now = datetime.now(timezone.utc)
    name, first = min(certs, key=lambda item: item[1])
    days = (first - now).total_seconds() / 86400
    if days < min_days:
        state = "expired" if days < 0 else f"expires in {days:.1f} days"
        raise RuntimeError(f"certificate {name} {state} ({first:%Y-%m-%d})")
    return f"{len(certs)} certificates; first to expire: {name} in {days:.0f} days"


def standard_checks(store: Store, open_broker: Callable[[], Broker], cases_queue: str,
                    settings: Settings) -> dict[str, CheckFn]:
    """The checks of ``/readyz``, each bound to what it checks: the database, the broker, the
    keys a restarted process would load, the certificates' expiry."""
    return {
        "database": functools.partial(check_database, store),
        "broker": functools.partial(check_broker, open_broker, cases_queue),
        "keys": functools.partial(check_keys, settings),
        "certificates": functools.partial(check_certificates, settings.keys_dir,
                                          settings.certificate_min_days),
    }


class Readiness:
    """Runs ``checks`` in parallel, each within ``timeout`` seconds; caches the verdict ``ttl``
    seconds. The verdict is ``maintenance`` when ``maintenance`` is set (``HUB_MAINTENANCE``)
    or the console's switch is on in ``store``."""

    MAX_HUNG = 8

    def __init__(self, store: Store, checks: Mapping[str, CheckFn], *, timeout: float,
                 ttl: float, maintenance: bool = False) -> None:
        self.store = store
        self.timeout = timeout
        self.ttl = ttl
        self.maintenance = maintenance
        self.checks = dict(checks)
        # A hung check keeps its thread: daemon threads (an executor's are joined at interpreter
        # exit, so one hung check would hang the shutdown), at most MAX_HUNG of them at a time.
        self._in_flight = threading.BoundedSemaphore(self.MAX_HUNG)
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def _run(self, fn: CheckFn) -> Check:
        start = time.monotonic()
        try:
            detail = fn()
            return Check(True, detail, (time.monotonic() - start) * 1000)
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready", with its reason
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return Check(False, f"{type(exc).__name__}: {message}"[:300],
                         (time.monotonic() - start) * 1000)

    def _start(self, fn: CheckFn) -> "concurrent.futures.Future[Check]":
        future: concurrent.futures.Future[Check] = concurrent.futures.Future()
        if not self._in_flight.acquire(blocking=False):
            future.set_result(Check(False, f"{self.MAX_HUNG} earlier checks still hung", 0.0))
            return future

        def work() -> None:
            try:
                future.set_result(self._run(fn))
            finally:
                self._in_flight.release()

        threading.Thread(target=work, name="readyz", daemon=True).start()
        return future

    def verdict(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            futures = {name: self._start(fn) for name, fn in self.checks.items()}
            deadline = time.monotonic() + self.timeout
            results: dict[str, Check] = {}
            for name, future in futures.items():
                try:
                    results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except concurrent.futures.TimeoutError:
                    results[name] = Check(False, f"no answer within {self.timeout}s",
                                          self.timeout * 1000)
            maintenance = self.maintenance
            if not maintenance and results.get("database", Check(False, "")).ok:
                try:
                    maintenance = controls.in_maintenance(self.store)
                except Exception:  # noqa: BLE001 - the database check already says enough
                    pass
            ready = all(c.ok for c in results.values())
            verdict = {"status": "maintenance" if maintenance else
                       ("ready" if ready else "not_ready"),
                       "checks": {name: check.as_dict() for name, check in results.items()}}
            self._cached = (time.monotonic(), verdict)
            return verdict


READINESS = "readiness"
METRICS_REGISTRY = "metrics_registry"


def init_app(app: Flask, readiness: Readiness, registry: CollectorRegistry) -> None:
    """Register the probes on ``app``: ``/readyz`` asks ``readiness``, ``/metrics`` serves
    ``registry`` (`hub.web.metrics.hub_registry`)."""
    app.extensions[READINESS] = readiness
    app.extensions[METRICS_REGISTRY] = registry
    app.register_blueprint(blueprint)


def _readiness() -> Readiness:
    found = current_app.extensions[READINESS]
    if not isinstance(found, Readiness):
        raise TypeError(f"app.extensions[{READINESS!r}] is not a Readiness")
    return found


def _registry() -> CollectorRegistry:
    found = current_app.extensions[METRICS_REGISTRY]
    if not isinstance(found, CollectorRegistry):
        raise TypeError(f"app.extensions[{METRICS_REGISTRY!r}] is not a CollectorRegistry")
    return found


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify(status="alive")


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    verdict = _readiness().verdict()
    return jsonify(verdict), 200 if verdict["status"] == "ready" else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    body = generate_latest(_registry())
    return Response(body, content_type=CONTENT_TYPE_LATEST)
