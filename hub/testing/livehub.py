"""A hub running against live agency simulators, for end-to-end tests, the demo and benchmarks.

`AgencyHub` builds a hub (any broker and store), serves its web front on a loopback port so that
agencies can call it back (Health's decisions, Justice's documents), starts every agency's
simulator wired to it (callback URL, credentials) and runs the hub's parts in threads::

    world = AgencyHub(hub_factory, broker_url=amqp_url, database_url=pg_url).start()
    opened = world.hub.submit("judicial_documents", data)
    world.wait_for_status(opened.case.reference, "sent_to_post")
    world.stop()

``tls=("narsa", "dgsn")`` puts those agencies behind mutual TLS: their simulators serve HTTPS
with the development PKI and accept only the hub's client certificate, and the hub reaches them
through pinned sessions (``HUB_AGENCY_<NAME>_TLS=1``). When a calling agency (Health, Justice)
is among them, the hub's web front is served over mutual TLS too, and those simulators call it
with their own client certificates: list every caller then (a caller without a certificate is
refused at the handshake).

Tests get it from the conformance plugin's ``agency_hub`` fixture.
"""
from __future__ import annotations

import contextlib
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import select
from werkzeug.serving import make_server

from connectors.registry import load_agencies, start_simulators
from hub.cases.book import find_case
from hub.runtime import Hub
from hub.services import ServiceCatalog
from hub.store.models import ExchangeRow
from hub.web.app import create_app
from security.tls import server_context

#: Retry ladders short enough for tests (seconds).
FAST_RETRY = {"base_delay": 0.05, "max_delay": 0.2, "max_attempts": 4, "jitter": 0.5}
#: Agencies that call the hub and therefore get a credential.
CALLERS = ("health", "justice")


class LiveServer:
    """A WSGI app served on a free loopback port in a background thread (e.g. the hub's web
    front, so that agency simulators can call it back)::

        server = LiveServer(create_app(hub)); ...; server.stop()
    """

    def __init__(self, app: Any, *, ssl_context: Any = None) -> None:

        self._server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class AgencyHub:
    def __init__(self, hub_factory: Callable[..., Hub], *, broker_url: str | None = None,
                 database_url: str | None = None, extra_definitions: Iterable[Path] = (),
                 simulator_options: dict[str, dict[str, Any]] | None = None,
                 retry: dict[str, Any] | None = None, concurrency: int = 1,
                 env: dict[str, str] | None = None, tls: Iterable[str] = (),
                 **hub_options: Any) -> None:

        self.tokens = {name: secrets.token_urlsafe(16) for name in CALLERS}
        self.simulators = start_simulators(load_agencies(), free_ports=True)
        self._simulator_options = simulator_options or {}
        #: Connector threads per agency.
        self.concurrency = concurrency
        self.tls = frozenset(tls)
        overrides = {name: {"base_url": sim.url.replace("http://", "https://")
                            if name in self.tls else sim.url,
                            "retry": retry or FAST_RETRY, "timeout": 2}
                     for name, sim in self.simulators.items()}
        env = {**{f"HUB_AGENCY_{name.upper()}_TOKEN": token
                  for name, token in self.tokens.items()},
               **{f"HUB_AGENCY_{name.upper()}_TLS": "1" for name in self.tls}, **(env or {})}
        try:
            self.hub = hub_factory(
                broker_url=broker_url, database_url=database_url, env=env,
                agency_overrides=overrides,
                catalog=ServiceCatalog.load(extra_dirs=list(extra_definitions)), **hub_options)
        except BaseException:
            self._stop_simulators()
            raise
        self.server: LiveServer | None = None
        self._run: contextlib.ExitStack | None = None
        # The hub's development PKI (made by the fixture) holds every agency's keys too: the
        # simulators sign what they send and verify what the hub signs, as agencies would.
        self.keys_dir: Path = self.hub.settings.keys_dir
        for name in self.tls:  # the same port, now over mutual TLS with the hub's PKI
            simulator = self.simulators[name]
            simulator.options["keys_dir"] = str(self.keys_dir)
            simulator.serve_tls()

    def start(self) -> "AgencyHub":

        self.hub.setup()
        front_tls = None
        if self.tls & set(CALLERS):

            front_tls = server_context(self.hub.keys.store.tls_files("hub", "tls-server"))
        self.server = LiveServer(create_app(self.hub), ssl_context=front_tls)
        for name, sim in self.simulators.items():
            sim.options.update(self._simulator_options.get(name, {}))
            if name in self.tokens:
                sim.options.setdefault("token", self.tokens[name])
            sim.options.setdefault("keys_dir", str(self.keys_dir))
            if name == "health":
                sim.options.setdefault("callback_url", self.server.url)
                sim.options.setdefault("callback_delay", 0.05)
        self._run = contextlib.ExitStack()
        self._run.enter_context(self.hub.run(concurrency=self.concurrency))
        return self

    def stop(self) -> None:
        if self._run is not None:
            self._run.close()
            self._run = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        self._stop_simulators()

    def _stop_simulators(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()

    # -- waiting for the flow -------------------------------------------------------------------

    def case(self, reference: str) -> Any:

        with self.hub.store.session() as session:
            return find_case(session, reference)

    def wait_for_status(self, reference: str, status: str | Iterable[str], *,
                        within: float = 30.0) -> Any:
        """The case once its status is ``status`` (or one of them); fails after ``within``."""
        wanted = {status} if isinstance(status, str) else set(status)
        deadline = time.monotonic() + within
        case = self.case(reference)
        while time.monotonic() < deadline:
            case = self.case(reference)
            if case is not None and case.status in wanted:
                return case
            time.sleep(0.05)
        raise AssertionError(f"case {reference} is {getattr(case, 'status', None)},"
                             f" expected {sorted(wanted)}")

    def exchanges(self, reference: str) -> dict[str, Any]:
        """The case's exchanges of its latest round, by step."""


        case = self.case(reference)
        with self.hub.store.session() as session:
            rows = session.scalars(select(ExchangeRow).where(
                ExchangeRow.case_id == case.id).order_by(ExchangeRow.round)).all()
        return {row.step: row for row in rows}
