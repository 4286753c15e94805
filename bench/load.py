"""The load generator, run as its own process: ``python -m bench.load SPEC.json OUT.json``.

Two shapes of load, both on keep-alive HTTP connections (or AMQP channels), one per sender thread:

- **closed**: at most ``window`` requests in flight. For synchronous targets (direct calls) a
  request is in flight until its response; for asynchronous ones (the hub, Celery) until its
  completion shows up in the store, which `probe_sql` counts every 10 ms. This finds the peak.
- **open**: requests start at a fixed ``rate`` whatever happens; the latency of each is counted
  from its *scheduled* start, so a sender that falls behind adds its lag to the latency instead of
  hiding it (no coordinated omission).

Targets: ``intake`` (POST the applicant's JSON; the answer names the case reference),
``direct`` (POST NARSA's wire request to the simulator: the call a client makes without the hub,
signed and its signed answer verified like the hub's connector does, with the keys of ``keys_dir``),
``amqp`` (publish with publisher confirms to a queue; `bench.roles` raw-consumer receives).

The output lists, per request: key, scheduled start, response time (or completion time for direct
calls) and whether it was accepted; the harness joins completions from the store.
"""
from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

from bench import workload


@dataclass
class LoadSpec:
    target: str                       # intake | direct | amqp
    url: str
    mode: str = "closed"              # closed | open
    path: str = "/"
    window: int = 64
    rate: float = 100.0
    duration: float = 10.0
    warmup: float = 2.0
    senders: int = 8
    queue: str = ""
    #: closed loop on an asynchronous target: SQL counting completions after ``probe_base``.
    probe_url: str = ""
    probe_sql: str = ""
    probe_base: int = 0
    message_bytes: int = 1500
    offset: int = 0                   # first request number (keeps licence numbers varied)
    #: The run's PKI: direct calls sign their requests (detached JWS, the hub's key) and verify
    #: the simulator's signed answers, the same signature work as the hub's connector.
    keys_dir: str = ""
    #: Intake: the upload batch whose documents the requests name (`workload.provision_documents`
    #: made ``limit`` of them, from ``offset``); no request beyond ``limit`` is sent.
    documents: str = ""
    limit: int = 0


@dataclass
class LoadResult:
    t0: float
    t_warm: float
    t_end: float
    #: [key, scheduled start, response or done time, ok]
    records: list[list[Any]] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)


class _Sender:
    """One keep-alive connection and the way to send one request on it."""

    def __init__(self, spec: LoadSpec, signing: Any = None) -> None:
        self.spec = spec
        self.signing = signing
        self.conn: Any = None
        self.channel: Any = None

    def _http(self) -> http.client.HTTPConnection:
        if self.conn is None:
            parsed = urlparse(self.spec.url)
            self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        return self.conn

    def _post(self, path: str, body: bytes, headers: dict[str, str]
              ) -> tuple[int, bytes, Any]:
        for attempt in range(2):
            conn = self._http()
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                return response.status, response.read(), response.headers
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def send(self, n: int) -> tuple[str, bool, str]:
        """Send request ``n``; (key, accepted, error text)."""
        spec = self.spec
        if spec.target == "intake":
            body = json.dumps(workload.intake_request(n, spec.documents)).encode()
            status, answer, _ = self._post(spec.path, body, {"Content-Type": "application/json"})
            if status != 201:
                return "", False, f"HTTP {status}: {answer[:200]!r}"
            return json.loads(answer)["reference"], True, ""
        if spec.target == "direct":
            key = str(uuid.uuid4())
            body = json.dumps(workload.wire_request(n, key)).encode()
            headers = {"Content-Type": "application/json", "Accept": "application/json",
                       "X-Road-Client": "MA/GOV/MAEC/BENCH", "X-Road-Id": key}
            if self.signing is not None:
                headers.update(self.signing.sign_body(body, key))
            status, answer, answer_headers = self._post(spec.path, body, headers)
            if status != 200:
                return key, False, f"HTTP {status}: {answer[:200]!r}"
            if self.signing is not None:
                answer = self.signing.verify_body(answer_headers, answer, "narsa").payload
            json.loads(answer)
            return key, True, ""
        if spec.target == "amqp":
            return self._publish(n)
        raise ValueError(f"unknown target {spec.target!r}")

    def _publish(self, n: int) -> tuple[str, bool, str]:
        import pika

        if self.channel is None:
            self.conn = pika.BlockingConnection(pika.URLParameters(self.spec.url))
            self.channel = self.conn.channel()
            self.channel.confirm_delivery()
        key = str(uuid.uuid4())
        head = json.dumps({"k": key, "t": time.time()}).encode()
        body = head + b" " * max(0, self.spec.message_bytes - len(head))
        self.channel.basic_publish("", self.spec.queue, body, pika.BasicProperties(
            delivery_mode=2, message_id=key, content_type="application/json"), mandatory=True)
        return key, True, ""

    def close(self) -> None:
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def _signing(spec: LoadSpec) -> Any:
    """Direct calls' `MessageSigning` (the hub party's keys), loaded and used once before the
    clock starts, like the hub loads its keys at start: the first requests must not pay for it."""
    if spec.target != "direct" or not spec.keys_dir:
        return None
    from connectors.signing import MessageSigning

    signing = MessageSigning.load(spec.keys_dir, "hub")
    if signing is not None:
        signing.sign_body(b"{}", str(uuid.uuid4()))  # key conversions are cached on first use
    return signing


def run_load(spec: LoadSpec, on_start: Any = None) -> LoadResult:
    signing = _signing(spec)
    t0 = time.time()
    if on_start is not None:
        on_start(t0)
    result = LoadResult(t0=t0, t_warm=t0 + spec.warmup, t_end=t0 + spec.warmup + spec.duration)
    lock = threading.Lock()
    counter = iter(range(spec.offset, spec.offset + 10**9))
    stop = threading.Event()
    window = threading.Semaphore(spec.window)
    asynchronous = spec.target != "direct" and spec.mode == "closed" and bool(spec.probe_sql)
    started = [0]

    def next_index() -> int:
        with lock:
            return next(counter)

    def sender() -> None:
        conn = _Sender(spec, signing)
        try:
            while not stop.is_set():
                if spec.mode == "closed":
                    if not window.acquire(timeout=0.05):
                        continue
                    n = next_index()
                    scheduled = time.time()
                else:
                    n = next_index()
                    scheduled = t0 + (n - spec.offset) / spec.rate
                    delay = scheduled - time.time()
                    if delay > 0:
                        time.sleep(delay)
                if scheduled >= result.t_end or (spec.limit and n - spec.offset >= spec.limit):
                    stop.set()
                    return
                try:
                    key, ok, error = conn.send(n)
                except Exception as exc:  # noqa: BLE001 - counted, never fatal
                    key, ok, error = "", False, f"{type(exc).__name__}: {exc}"
                done = time.time()
                with lock:
                    started[0] += 1
                    result.records.append([key, scheduled, done, ok])
                    if not ok:
                        result.errors += 1
                        if len(result.error_samples) < 5:
                            result.error_samples.append(error)
                if spec.mode == "closed" and (not asynchronous or not ok):
                    window.release()
        finally:
            conn.close()

    def prober() -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(spec.probe_url, pool_size=1)
        seen = 0
        with engine.connect() as db:
            while not stop.is_set():
                count = db.execute(text(spec.probe_sql), {"base": spec.probe_base}).scalar() or 0
                db.rollback()
                for _ in range(max(0, int(count) - seen)):
                    window.release()
                seen = max(seen, int(count))
                stop.wait(0.01)
        engine.dispose()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(spec.senders)]
    if asynchronous:
        threads.append(threading.Thread(target=prober, daemon=True))
    for thread in threads:
        thread.start()
    while not stop.is_set() and time.time() < result.t_end:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(35)
    return result


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    with open(spec_path) as handle:
        spec = LoadSpec(**json.load(handle))
    # The harness opens its CPU window at START + warm-up: the same window as ours.
    result = run_load(spec, on_start=lambda t0: print(f"START {t0!r}", flush=True))
    with open(out_path, "w") as handle:
        json.dump(asdict(result), handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
