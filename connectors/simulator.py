"""What every agency simulator shares: a real HTTP server on loopback, fault injection, a request
log, and idempotency the way a careful agency implements it.

The agencies do not exist here; the simulators stand in for them in the demo, the tests and the
benchmarks, so they behave like services: they answer from the request, remember what they did
per idempotency key (a repeat of a request gets the first answer back and causes no second
effect), and fail on demand.

Operator endpoints, beside the agency's own API (never exposed by a real agency, of course)::

    GET  /_sim/health                   {"agency": "narsa", "status": "up"}
    GET  /_sim/requests                 every request received, in order
    GET  /_sim/effects                  idempotency key -> number of effects (must stay 1)
    POST /_sim/faults   {"kind": "status", "status": 503, "count": 3}
                        {"kind": "timeout", "delay": 10, "rate": 0.05}
                        {"kind": "malformed", "count": 1}   unparseable answer
                        {"kind": "invalid", "count": 1}     parseable, breaks the agency's schema
                        {"kind": "soap_fault"}              SOAP agencies: soap:Server fault
                        {"kind": "duplicate_callback"}      asynchronous agencies: call back twice
                        {"kind": "bad_signature"}           the answer is altered after signing
                        {"kind": "replay", "count": 1}      send the previous signed answer again,
                                                            byte for byte (a recorded replay)
                        {"kind": "stale_signature"}         sign the answer dated a day ago
                        {"kind": "wrapped"}                 SOAP: signature wrapping (the signed
                                                            Body moved into a header, a forged
                                                            Body in its place)
                        {"kind": "latency", "delay": 0.05}
    DELETE /_sim/faults                 clear every fault
    POST /_sim/reset                    clear faults, log and memory

Mutual TLS (option ``tls`` with ``keys_dir``): the simulator serves HTTPS with its agency's TLS
server certificate, requires a client certificate from the PKI's CA (CRL checked during the
handshake) and answers 403 to any caller whose certificate does not name the hub
(`security.tls.party_from_peer`); `peers` lists who called. When it calls the hub (callbacks,
documents) it presents its own client certificate and pins the hub's key (`hub_session`).

A fault applies to the next ``count`` business requests, or to each with probability ``rate``
(seeded, so runs repeat), or to every request when neither is given; ``match`` restricts it to
requests whose body contains that text (one case among many). Faults stack: latency is
added first, then the first failing fault that fires decides the answer.
"""
from __future__ import annotations

import abc
import hashlib
import logging
import random
import socket
import struct
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import requests
from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import make_server

from connectors.signing import MessageSigning
from hub.errors import HubError, UntrustedCertificate
from security.keys import KeyStore
from security.tls import client_context, party_from_peer, pinned_session, server_context

log = logging.getLogger(__name__)

FaultKind = Literal["latency", "status", "timeout", "malformed", "invalid", "soap_fault",
                    "bad_signature", "duplicate_callback", "reset", "replay", "stale_signature",
                    "wrapped"]

#: Largest request body kept in the log (what the agency saw), in characters.
LOGGED_BODY_CHARS = 64 * 1024


@dataclass
class Fault:
    kind: FaultKind
    count: int | None = None
    rate: float | None = None
    status: int = 503
    delay: float = 0.0
    #: Only requests whose body contains this text are affected (targets one case in a crowd).
    match: str | None = None
    #: How many requests this fault hit so far (chaos reports read it).
    fired: int = 0

    def fires(self, rng: random.Random, body: bytes = b"") -> bool:
        hit = self._hits(rng, body)
        if hit:
            self.fired += 1
        return hit

    def _hits(self, rng: random.Random, body: bytes) -> bool:
        if self.match is not None and self.match.encode("utf-8") not in body:
            return False
        if self.count is not None:
            if self.count <= 0:
                return False
            self.count -= 1
            return True
        if self.rate is not None:
            return rng.random() < self.rate
        return True


@dataclass
class RecordedRequest:
    at: str
    method: str
    path: str
    idempotency_key: str | None
    xroad_client: str | None
    body_sha256: str
    size: int
    fault: str | None = None
    status: int | None = None
    effect: bool = False
    #: The request as received (text, cut at `LOGGED_BODY_CHARS`): what the agency saw.
    body: str = ""


@dataclass
class Outcome:
    """What the business logic answered; kept per idempotency key and replayed on repeats."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _reset_connection() -> None:
    """Abort the client's TCP connection (RST), as a crashing agency or a firewall would."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Simulator(abc.ABC):
    """Base of every agency simulator. Subclasses register their API routes in `routes`."""

    agency: str = "agency"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 20261129,
                 **options: Any) -> None:
        self.host = host
        self.port = port
        #: Simulator settings from ``agency.yaml`` (``simulator_options``) or the caller.
        self.options = options
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._memory: dict[str, tuple[str, Outcome]] = {}
        self.effects: dict[str, int] = {}
        #: Parties named by the client certificates of callers (mutual TLS only).
        self.peers: list[str] = []
        self.app = Flask(f"simulator.{self.agency}")
        self._tls_check()
        self._admin_routes()
        self.routes(self.app)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- the agency's own API -----------------------------------------------------------------

    @abc.abstractmethod
    def routes(self, app: Flask) -> None:
        """Register the agency's endpoints; each should go through `answer`."""

    def answer(self, key: str | None, decide: Any, *, fingerprint: str | None = None,
               client: str | None = None) -> Response:
        """Apply faults, then replay the remembered outcome for ``key`` or compute it with
        ``decide() -> Outcome`` (one effect), remember it and send it.

        ``fingerprint`` identifies the business content of the request (default: the body's
        SHA-256); the same key with another fingerprint is refused with 409, as a careful
        agency refuses to let an idempotency key be reused for a different request.
        """
        body = request.get_data(cache=True)
        fingerprint = fingerprint or hashlib.sha256(body).hexdigest()
        record = RecordedRequest(
            at=datetime.now(timezone.utc).isoformat(), method=request.method, path=request.path,
            idempotency_key=key, xroad_client=client or request.headers.get("X-Road-Client"),
            body_sha256=hashlib.sha256(body).hexdigest(), size=len(body),
            body=body[:LOGGED_BODY_CHARS * 4].decode("utf-8", "replace")[:LOGGED_BODY_CHARS])
        with self._lock:
            self.requests.append(record)
            faults = [f for f in self._faults if f.fires(self._rng, body)]
        for fault in faults:
            if fault.kind == "latency":
                time.sleep(fault.delay)
        for fault in faults:
            if fault.kind == "latency":
                continue
            record.fault = fault.kind
            failed = self.fault_response(fault)
            if failed is not None:
                record.status = failed.status_code
                return failed
        with self._lock:
            remembered = self._memory.get(key) if key else None
        if remembered is not None and remembered[0] != fingerprint:
            outcome = Outcome(409, b'{"error":{"code":"IDEMPOTENCY_CONFLICT","message":'
                                   b'"this idempotency key was used for another request"}}')
        elif remembered is None:
            outcome = decide()
            with self._lock:
                # Two identical requests racing: the first to finish wins, the other replays it.
                if key and key in self._memory:
                    outcome = self._memory[key][1]
                else:
                    if key and outcome.status < 500:
                        self._memory[key] = (fingerprint, outcome)
                        if outcome.status < 400:
                            self.effects[key] = self.effects.get(key, 0) + 1
                    record.effect = outcome.status < 400
        else:
            outcome = remembered[1]
        record.status = outcome.status
        return Response(outcome.body, status=outcome.status, content_type=outcome.content_type,
                        headers=outcome.headers)

    def fault_response(self, fault: Fault) -> Response | None:
        """The response for a failing fault; SOAP simulators override for ``soap_fault``."""
        if fault.kind == "status":
            return Response(b'{"error":{"code":"SERVER_ERROR","message":"injected failure"}}',
                            status=fault.status, content_type="application/json")
        if fault.kind == "timeout":
            time.sleep(fault.delay or 30.0)
            return Response(b'{"error":{"code":"GATEWAY_TIMEOUT"}}', status=504,
                            content_type="application/json")
        if fault.kind == "malformed":
            return Response(b'{"result": "AUTHENT', status=200, content_type="application/json")
        if fault.kind == "invalid":
            return self.invalid_response()
        if fault.kind == "bad_signature":
            g.bad_signature = True  # the answer is signed, then altered (see sign_*_response)
            return None
        if fault.kind == "replay":
            g.replay_answer = True  # answered as usual, then the last signed answer is sent
            return None
        if fault.kind == "wrapped":
            g.wrapped = True  # see SoapSimulator.sign_answer
            return None
        if fault.kind == "stale_signature":
            g.signed_at = datetime.now(timezone.utc) - timedelta(days=1)  # see sign_*_response
            return None
        if fault.kind == "reset":
            _reset_connection()
            raise ConnectionResetError("injected connection reset")
        return None

    # -- message signatures (when the simulator has keys: option ``keys_dir``) ----------------

    @property
    def signing(self) -> Any:
        if not hasattr(self, "_signing"):

            self._signing = MessageSigning.load(self.options.get("keys_dir"), self.agency)
        return self._signing

    def verify_json_request(self) -> str | None:
        """Why the request's JWS is refused, or None (also when signing is off)."""
        if self.signing is None:
            return None

        try:
            self.signing.verify_body(request.headers, request.get_data(), "hub")
        except HubError as exc:
            return exc.message
        return None

    def sign_json_response(self, response: Response) -> Response:
        """Sign the answer's body (detached JWS); the ``bad_signature`` fault signs other bytes."""
        if self.signing is not None:
            body = response.get_data()
            signed = body + b" " if g.get("bad_signature") else body
            response.headers.update(self.signing.sign_body(signed, str(uuid.uuid4()),
                                                           now=g.get("signed_at")))
        return self.replay_or_remember(response)

    def replay_or_remember(self, response: Response) -> Response:
        """Remember the signed answer as sent; under the ``replay`` fault, send the previous
        one instead (same bytes, same signature headers), as an attacker replaying it would."""
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length",)}
        with self._lock:
            previous = getattr(self, "_last_answer", None)
            self._last_answer = (response.status_code, response.get_data(), headers)
        if g.get("replay_answer") and previous is not None:
            status, body, old_headers = previous
            return Response(body, status=status, headers=old_headers)
        return response

    def invalid_response(self) -> Response | None:
        """A well-formed answer that breaks the agency's own schema (fault ``invalid``): proves
        the connector validates what it receives. Subclasses say what such an answer is."""
        return None

    # -- fault control, from tests in-process or over HTTP -------------------------------------

    def inject(self, kind: FaultKind, **options: Any) -> Fault:
        fault = Fault(kind=kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self._memory.clear()
            self.effects.clear()

    def effect_count(self, key: str) -> int:
        with self._lock:
            return self.effects.get(key, 0)

    def received(self, key: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if key is None or r.idempotency_key == key]

    def _admin_routes(self) -> None:
        app = self.app

        @app.get("/_sim/health")
        def health() -> Response:
            return jsonify(agency=self.agency, status="up")

        @app.get("/_sim/requests")
        def requests_log() -> Response:
            with self._lock:
                return jsonify([asdict(r) for r in self.requests])

        @app.get("/_sim/effects")
        def effects() -> Response:
            with self._lock:
                return jsonify(dict(self.effects))

        @app.post("/_sim/faults")
        def add_fault() -> tuple[Response, int]:
            spec = request.get_json(force=True, silent=True) or {}
            try:
                fault = self.inject(**spec)
            except TypeError as exc:
                return jsonify(error=str(exc)), 400
            return jsonify(asdict(fault)), 201

        @app.delete("/_sim/faults")
        def clear() -> tuple[str, int]:
            self.clear_faults()
            return "", 204

        @app.post("/_sim/reset")
        def reset() -> tuple[str, int]:
            self.reset()
            return "", 204

    # -- serving ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.options.get("tls") else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def _tls_store(self) -> Any:


        if not self.options.get("keys_dir"):
            raise ValueError(f"{self.agency} simulator: tls needs keys_dir")
        return KeyStore.load(Path(self.options["keys_dir"]), own=[])

    def hub_session(self) -> Any:
        """A `requests.Session` to call the hub: with ``tls``, pinned mutual TLS presenting this
        agency's client certificate and expecting the hub's server key; else plain."""

        if not self.options.get("tls"):
            session = requests.Session()
            session.trust_env = False
            return session

        store = self._tls_store()
        return pinned_session("hub", {store.tls_pin("hub")},
                              client_context(store.tls_files(self.agency, "tls-client")))

    def _tls_check(self) -> None:
        @self.app.before_request
        def _only_the_hub() -> Response | None:
            if not self.options.get("tls"):
                return None

            sock = request.environ.get("werkzeug.socket")
            der = sock.getpeercert(binary_form=True) if sock is not None else None
            try:
                party = party_from_peer(der, self._tls_trust)
            except UntrustedCertificate as exc:
                party = f"refused:{exc.details.get('reason')}"
            with self._lock:
                self.peers.append(party)
            if party != "hub":
                return Response(b'{"error":{"code":"FORBIDDEN","message":"only the hub may '
                                b'call"}}', status=403, content_type="application/json")
            return None

    def start(self) -> "Simulator":
        """Serve in a background thread on ``host:port`` (port 0 picks a free one); over mutual
        TLS when the ``tls`` option is set."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        ssl_context = self._server_tls() if self.options.get("tls") else None
        self._server = make_server(self.host, self.port, self.app, threaded=True,
                                   ssl_context=ssl_context)
        self.port = self._server.server_port
        self._serve()
        return self

    def serve_tls(self) -> None:
        """Switch a running simulator to mutual TLS on the same listening socket (for when the
        PKI exists only after the simulator started: the port stays the one already handed out,
        never released to be taken by another program in between)."""
        self.options["tls"] = True
        context = self._server_tls()
        listening = self._server.socket.dup()  # werkzeug closes its socket when the loop ends
        self._server.shutdown()
        self._server.socket = context.wrap_socket(listening, server_side=True)
        self._server.ssl_context = context  # werkzeug then reports the https scheme
        self._serve()

    def _server_tls(self) -> Any:

        store = self._tls_store()
        self._tls_trust = store.trust_store()
        return server_context(store.tls_files(self.agency, "tls-server"))

    def _serve(self) -> None:
        # A short poll interval makes stop() quick (tests start and stop many simulators).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"sim-{self.agency}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
