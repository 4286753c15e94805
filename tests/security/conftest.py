"""Fixtures for the security tests: real PKIs generated once per session into temp dirs."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from security.keys import KeyStore
from security.pki import DEFAULT_PARTIES, init_pki
from security.trust import TrustStore


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
