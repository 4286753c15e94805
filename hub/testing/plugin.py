"""pytest plugin (entry point ``hub``): fixtures for a broker, a store, simulators and a hub.

Real services: set ``HUB_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/%2F``)
and ``HUB_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
When one is unreachable its tests are skipped with the reason, unless ``HUB_REQUIRE_SERVICES=1``
(set by ``.ci/run``), which turns the absence into a failure.

Isolation: every RabbitMQ test gets its own namespace (exchange and queues ``t<random>.*``,
deleted afterwards); the PostgreSQL fixture creates a fresh database per test and drops it.

    def test_flow(hub_factory, narsa_simulator):
        hub = hub_factory(agency_overrides={"narsa": {"base_url": narsa_simulator.url}})
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from hub.delivery.retry import RetryPolicy
from hub.testing.netproxy import TcpProxy

# The plugin loads with pytest: the hub is imported by the fixtures that build one, when they do.
if TYPE_CHECKING:
    from hub.runtime import Hub

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

#: Retry ladders short enough for tests (seconds).
FAST_RETRY = {"base_delay": 0.05, "max_delay": 0.2, "max_attempts": 4, "jitter": 0.5}


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``.

    Tests wait for behaviour (a status reached, a message parked), never assert durations.
    """
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout}s")


def services_required() -> bool:
    return os.environ.get("HUB_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


def _missing(what: str, reason: str) -> None:
    message = f"{what} unavailable ({reason})"
    if services_required():
        pytest.fail(f"{message}, and HUB_REQUIRE_SERVICES=1 makes that a failure", pytrace=False)
    pytest.skip(f"{message}; set HUB_REQUIRE_SERVICES=1 to fail instead of skipping")


# -- RabbitMQ ---------------------------------------------------------------------------------

def amqp_url() -> str:
    return os.environ.get("HUB_TEST_AMQP_URL", DEFAULT_AMQP)


_amqp_checked: dict[str, str | None] = {}


def rabbitmq_problem(url: str) -> str | None:
    if url not in _amqp_checked:
        try:
            import pika

            params = pika.URLParameters(url)
            params.socket_timeout = 3
            params.connection_attempts = 1
            pika.BlockingConnection(params).close()
            _amqp_checked[url] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            _amqp_checked[url] = f"{type(exc).__name__}: {exc}"[:200]
    return _amqp_checked[url]


@pytest.fixture
def rabbitmq_url() -> str:
    url = amqp_url()
    problem = rabbitmq_problem(url)
    if problem:
        _missing(f"RabbitMQ at {url.split('@')[-1]}", problem)
    return url


@pytest.fixture
def namespace() -> str:
    """A broker namespace of this test alone."""
    return f"t{secrets.token_hex(4)}"


# -- PostgreSQL -------------------------------------------------------------------------------

def postgres_admin_url() -> str:
    return os.environ.get("HUB_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    admin_url = normalize_url(postgres_admin_url())
    try:
        # pre-ping: a test may restart PostgreSQL (the chaos run), killing pooled connections.
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True,
                              connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        _missing(f"PostgreSQL at {admin_url.split('@')[-1]}", f"{type(exc).__name__}"[:200])
    name = f"hub_test_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- brokers of both kinds ------------------------------------------------------------------

@pytest.fixture(params=["embedded", "rabbitmq"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def broker_url(broker_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if broker_kind == "rabbitmq":
        return request.getfixturevalue("rabbitmq_url")
    return f"sqlite:///{tmp_path / 'broker.db'}"


# -- simulators and hubs ---------------------------------------------------------------------

@pytest.fixture
def dev_keys_dir(tmp_path: Path) -> Path:
    """The development PKI that `hub_factory`'s hubs use by default (``$HUB_DATA_DIR/keys``).

    Simulators given it sign their answers and verify the hub's requests, as a real agency would.
    """
    from connectors.registry import key_parties
    from hub.keyset import init_keys

    keys_dir = tmp_path / "data" / "keys"
    init_keys(keys_dir, parties=key_parties())
    return keys_dir


@pytest.fixture
def narsa_simulator(dev_keys_dir: Path) -> Iterator[Any]:
    from connectors.narsa.simulator import NarsaSimulator

    simulator = NarsaSimulator(keys_dir=str(dev_keys_dir)).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """Build hubs on throw-away storage: ``hub_factory(broker_url=..., database_url=...)``.

    Defaults: embedded broker and SQLite under ``tmp_path``, development keys made by the code of
    ``hub keys init`` in the data directory. Namespaced RabbitMQ topologies are deleted after the
    test.
    """
    from connectors.registry import key_parties
    from hub.config import Settings
    from hub.keyset import ensure_dev_keys
    from hub.runtime import Hub

    built: list[Hub] = []

    def make(*, broker_url: str | None = None, database_url: str | None = None,
             namespace: str | None = None, env: dict[str, str] | None = None,
             **options: Any) -> Hub:
        values = {"HUB_DATA_DIR": str(tmp_path / "data"), "HUB_RELAY_POLL_INTERVAL": "0.05",
                  "HUB_VISIBILITY_TIMEOUT": "5"}
        if broker_url:
            values["HUB_BROKER_URL"] = broker_url
        if database_url:
            values["HUB_DATABASE_URL"] = database_url
        values["HUB_BROKER_NAMESPACE"] = namespace or f"t{secrets.token_hex(4)}"
        values.update(env or {})
        settings = Settings.from_env(values)
        if "keys" not in options:
            ensure_dev_keys(settings, key_parties())
        hub = Hub(settings, **options)
        built.append(hub)
        return hub

    yield make
    for hub in built:
        if hub.settings.broker_url.startswith("amqp"):
            delete_rabbitmq_namespace(hub)
        hub.close()


def delete_rabbitmq_namespace(hub: Hub) -> None:
    """Delete the hub's queues and exchange, and those of the packaged default topology in the
    same namespace: a CLI command run by a test (``hub dlq replay``...) builds its hub from the
    environment, without the test's agency overrides, and declares the default retry ladders.
    Left behind, quorum queues pile up on the broker and slow every later connection."""
    from hub.delivery.broker import open_broker
    from hub.delivery.broker.topology import Topology
    from hub.runtime import CASE_RETRY

    from connectors.registry import load_agencies

    defaults = Topology.for_hub(
        hub.topology.namespace,
        {name: RetryPolicy.from_mapping(config.retry.model_dump()).ladder for name, config in load_agencies().items()},
        case_retry_delays=CASE_RETRY.ladder)
    for topology in (hub.topology, defaults):
        try:
            with open_broker(hub.settings.broker_url, topology) as broker:
                broker.delete_topology()
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass


# -- a TCP proxy to cut connections on demand (also used by `hub chaos`) ----------------------

@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


# -- headless Chromium (the pages' and the console's browser tests) -------------------------

@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Selenium through Debian's chromium-driver, with a fresh
    profile and no background networking (the machine has no network beyond loopback). Skipped
    without Chromium; a failure under ``HUB_REQUIRE_SERVICES=1``."""
    import shutil
    import tempfile

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        _missing("chromium and chromium-driver",
                 "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1400,1000", "--lang=fr"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
