"""Shared fixtures beyond the hub's own pytest plugin (`hub.testing.plugin`): the conformance
kit and mock agencies (plugins), and real PKIs generated once per session into temp dirs (the
security and evidence tests)."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from security.keys import KeyStore
from security.pki import DEFAULT_PARTIES, init_pki
from security.trust import TrustStore

# The connector conformance kit (fixtures, parametrization): see hub/testing/conformance.py;
# hubs whose agencies are mocks (`mock_hub`, `mock_agencies`): see hub/testing/agencies.py.
pytest_plugins = ["hub.testing.conformance", "hub.testing.agencies"]


@pytest.fixture
def rabbitmq_url_or_none(broker_kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("rabbitmq_url") if broker_kind == "rabbitmq" else None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A test that leaves a non-daemon thread blocked would keep the interpreter from exiting
    after the summary, and CI would wait for it until its budget runs out. Name such threads
    with their stacks, and end the process with pytest's own exit status instead."""
    import os
    import sys
    import threading
    import traceback

    stuck = [t for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    for thread in stuck:
        thread.join(timeout=10)
    stuck = [t for t in stuck if t.is_alive()]
    if not stuck:
        return
    frames = sys._current_frames()
    for thread in stuck:
        print(f"\nthread {thread.name!r} still running after the tests:", file=sys.stderr)
        traceback.print_stack(frames.get(thread.ident), file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(int(getattr(config, "_hub_exitstatus", 1)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._hub_exitstatus = int(exitstatus)  # type: ignore[attr-defined]


# -- PKIs ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The main EC PKI with the hub and all five agencies. Treat it as read-only: tests that
    revoke or replace certificates use `issue` + `revoke(cert=...)` or `fresh_pki`."""
    keys_dir = tmp_path_factory.mktemp("pki") / "keys"
    init_pki(keys_dir, list(DEFAULT_PARTIES))
    return keys_dir


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A foreign CA issuing certificates with the same party names: must never be trusted."""
    keys_dir = tmp_path_factory.mktemp("other") / "keys"
    init_pki(keys_dir, ["hub", "narsa", "dgsn"])
    return keys_dir


@pytest.fixture(scope="session")
def rsa_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys_dir = tmp_path_factory.mktemp("rsa") / "keys"
    init_pki(keys_dir, ["hub", "narsa"], algorithm="rsa")
    return keys_dir


@pytest.fixture
def fresh_pki(tmp_path: Path) -> Path:
    """A small PKI of its own, for tests that change files (revocation, rotation, permissions)."""
    keys_dir = tmp_path / "keys"
    init_pki(keys_dir, ["hub", "narsa"])
    return keys_dir


@pytest.fixture(scope="session")
def store(pki: Path) -> KeyStore:
    return KeyStore.load(pki, own=list(DEFAULT_PARTIES))


@pytest.fixture(scope="session")
def other_store(other_pki: Path) -> KeyStore:
    return KeyStore.load(other_pki, own=["hub", "narsa", "dgsn"])


@pytest.fixture(scope="session")
def rsa_store(rsa_pki: Path) -> KeyStore:
    return KeyStore.load(rsa_pki, own=["hub", "narsa"])


@pytest.fixture
def trust(store: KeyStore) -> TrustStore:
    """A fresh trust store per test (trust stores are configured by mutation)."""
    return store.trust_store()


class FakeClock:
    """A settable clock; tests move time instead of sleeping."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    """Path to the xmlsec1 binary; skip (or fail with HUB_REQUIRE_SERVICES=1) when absent."""
    path = shutil.which("xmlsec1")
    if path is None and Path("/usr/bin/xmlsec1").exists():
        path = "/usr/bin/xmlsec1"
    if path is None:
        message = "xmlsec1 is not installed (Debian package xmlsec1): offline verification untested"
        if os.environ.get("HUB_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes", "on"):
            pytest.fail(message)
        pytest.skip(message)
    return path
