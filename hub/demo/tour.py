"""A tour of the pages: a running hub whose cases stand in the states worth showing, and the
address of every page that shows them.

The accessibility browser tests (tests/web/test_accessibility_browser.py) load each page of the
tour in French and Arabic and check it with axe-core; ``docs/screenshots.py`` photographs the
main ones for the docs. Both need the same states, so they are built once, here, through the
hub's real paths (the intake API with uploaded documents, the agencies' simulators, Health's
callback, a dead letter), never written into the store::

    tour = Tour.start(Path("/tmp/tour"))
    tour.cases["cleared"]              # a repatriation every agency answered
    tour.staff_token()                 # the central directorate's access token
    tour.stop()

The cases (references in ``cases``, tracking secrets in ``secrets``):

- ``cleared``: a repatriation Health (by callback), DGSN and Interior answered;
- ``awaiting``: a repatriation Health accepted and has not decided yet, DGSN answered;
- ``verified``: a driving licence NARSA found authentic, waiting for the post's decision;
- ``to_reject``, ``to_reject_too``: more verified licences, for the pages of a move (one per
  language the tests walk through);
- ``more_information``: a licence NARSA does not know: more information requested (a reason);
- ``parked``: a licence whose NARSA requests failed until they were parked (a dead letter);
- ``queued``: a registration waiting in the queue while DGSN's connector is paused.
"""
from __future__ import annotations

import secrets as random_secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests
from sqlalchemy import select

from hub.config import Settings
from hub.demo.scenarios import licence_request, repatriation_request, sample_request
from hub.keyset import ensure_dev_keys
from hub.mapping import set_path
from hub.ops import controls
from hub.ops.controls import ControlCache
from hub.runtime import Hub
from hub.store.attachments import document_fields
from hub.store.models import ExchangeRow
from hub.testing.livehub import AgencyHub

#: A one-page PDF, enough for the hub's content sniffing.
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
#: Consumers read the operators' switches at most this often (`ControlCache`), plus a margin.
PAUSE_SEEN_AFTER = ControlCache.__init__.__kwdefaults__["ttl"] + 0.5
#: Retries short enough that a doomed request is parked within a second or two.
TOUR_RETRY = {"base_delay": 0.05, "max_delay": 0.1, "max_attempts": 2, "jitter": 0.5}


def tour_hubs(root: Path, env: dict[str, str]) -> Callable[..., Any]:
    """A hub factory for `AgencyHub`: embedded broker and SQLite under ``root``."""

    def make(*, broker_url: str | None = None, database_url: str | None = None,
             env: dict[str, str] | None = None, **options: Any) -> Any:
        values = {"HUB_DATA_DIR": str(root), "HUB_RELAY_POLL_INTERVAL": "0.05",
                  "HUB_VISIBILITY_TIMEOUT": "10", "HUB_METRICS_CACHE_SECONDS": "0",
                  **base_env, **(env or {})}
        settings = Settings.from_env(values)
        ensure_dev_keys(settings)
        return Hub(settings, **options)

    base_env = env
    return make


@dataclass
class Tour:
    world: AgencyHub
    operator_token: str
    cases: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.world.server is not None
        return self.world.server.url

    @property
    def hub(self) -> Any:
        return self.world.hub

    @classmethod
    def start(cls, root: Path, *, within: float = 30.0) -> "Tour":
        operator_token = random_secrets.token_urlsafe(24)
        world = AgencyHub(tour_hubs(root, {"HUB_ADMIN_TOKEN": operator_token}),
                          retry=TOUR_RETRY, concurrency=1).start()
        tour = cls(world, operator_token)
        try:
            tour._stage(within)
        except BaseException:
            tour.stop()
            raise
        return tour

    def stop(self) -> None:
        self.world.stop()
        self.world.hub.close()

    # -- access --------------------------------------------------------------------------------

    def staff_token(self, role: str = "central", post: str | None = None) -> str:
        return self.hub.tokens.issue_token("tour-agent", role, post=post, ttl=3600)

    # -- the states ----------------------------------------------------------------------------

    def _stage(self, within: float) -> None:
        narsa, health = self.world.simulators["narsa"], self.world.simulators["health"]
        wait = self.world.wait_for_status
        self._open("cleared", "repatriation_of_remains", repatriation_request())
        wait(self.cases["cleared"], "agencies_cleared", within=within)
        callback = health.options.pop("callback_url")  # Health keeps its decision for now
        self._open("awaiting", "repatriation_of_remains", repatriation_request(cnie="BK456782"))
        self._open("verified", "driving_licence_authentication",
                   licence_request("authentic", serial=510001))
        for number, name in enumerate(("to_reject", "to_reject_too")):
            self._open(name, "driving_licence_authentication",
                       licence_request("authentic", serial=510011 + number * 2))
        self._open("more_information", "driving_licence_authentication",
                   licence_request("unknown", serial=510021))
        doomed = licence_request("authentic", serial=510031)
        narsa.inject("status", status=503, match=doomed["licence"]["number"])
        self._open("parked", "driving_licence_authentication", doomed)
        for name in ("verified", "to_reject", "to_reject_too"):
            wait(self.cases[name], "verified", within=within)
        wait(self.cases["more_information"], "more_information_requested", within=within)
        self._wait_exchange("awaiting", "health", "acknowledged", within)
        self._wait_exchange("awaiting", "dgsn", "answered", within)
        self._wait_exchange("parked", "narsa", "dead_lettered", within)
        health.options["callback_url"] = callback
        # DGSN's connector paused: a registration's request waits in the queue.
        controls.pause(self.hub.store, "connector.dgsn", actor="operator:tour",
                       audit=self.hub.audit)
        time.sleep(PAUSE_SEEN_AFTER)  # until DGSN's worker has read the switch
        self._open("queued", "consular_registration_new", sample_request(
            "consular_registration_new", post="ES-MAD"))
        self._wait_exchange("queued", "dgsn", "queued", within)

    def _open(self, name: str, service: str, data: dict[str, Any]) -> None:
        """Submit ``data`` through the intake API, its documents uploaded first."""
        for path, _ in list(document_fields(data)):
            uploaded = requests.post(f"{self.url}/api/v1/attachments", data=PDF,
                                     headers={"Content-Type": "application/pdf"}, timeout=10)
            uploaded.raise_for_status()
            set_path(data, path, uploaded.json()["reference"])
        created = requests.post(f"{self.url}/api/v1/services/{service}/requests?lang=fr",
                                json=data, timeout=10)
        if created.status_code != 201:
            raise AssertionError(f"{name}: {created.status_code} {created.text[:300]}")
        self.cases[name] = created.json()["reference"]
        self.secrets[name] = created.json()["secret"]

    def _wait_exchange(self, name: str, agency: str, status: str, within: float) -> None:
        case = self.world.case(self.cases[name])
        deadline = time.monotonic() + within
        found = None
        while time.monotonic() < deadline:
            with self.hub.store.session() as session:
                found = session.scalar(select(ExchangeRow.status).where(
                    ExchangeRow.case_id == case.id, ExchangeRow.agency == agency))
            if found == status:
                return
            time.sleep(0.05)
        raise AssertionError(f"{name}: {agency}'s exchange is {found}, expected {status}")
