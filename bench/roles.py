"""The processes a scenario starts: ``python -m bench.roles ROLE [JSON options]``.

Every role prints ``READY ...`` on stdout once it serves, then runs until SIGTERM (graceful).
Hub roles read their configuration from ``HUB_*`` variables like the real commands do.

    simulator      the NARSA simulator (its Flask app under waitress)          {"port": 0,
                   "keys_dir": PKI}
    hub-web        the hub's web front (intake API) under waitress           {"threads": 8}
    hub-relay      the outbox relay and an audit chainer
    hub-worker     connector threads + case worker + recorder (``hub worker``) {"concurrency": 4,
                   "with_relay": false}
    celery-web     the Celery pipeline's intake: validate, enqueue           {"threads": 8}
    celery-worker  the Celery pipeline's worker                              {"concurrency": 4}
    raw-consumer   consumes a queue with manual acks, records receive times  {"queue", "out"}
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # each role imports what it runs, when it starts
    from hub.runtime import Hub


def _ready(detail: str = "") -> None:
    print(f"READY {detail}".strip(), flush=True)


def _until_term(stop: threading.Event | None = None) -> threading.Event:
    stop = stop or threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("waitress", "waitress.queue", "werkzeug"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _serve_wsgi(app: Any, threads: int, port: int = 0) -> None:
    """Serve ``app`` with waitress; print READY with the port; stop on SIGTERM."""
    from waitress import create_server

    server = create_server(app, host="127.0.0.1", port=port, threads=threads,
                           connection_limit=1000, channel_timeout=120, ident="bench")

    def handler(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    _ready(f"http://127.0.0.1:{server.effective_port}")
    try:
        server.run()
    except SystemExit:
        pass
    finally:
        server.close()


def simulator(options: dict[str, Any]) -> None:
    from connectors.narsa.simulator import NarsaSimulator

    # keys_dir: the run's PKI; the simulator then verifies requests and signs its answers.
    sim = NarsaSimulator(port=int(options.get("port", 0)), keys_dir=options.get("keys_dir"))
    _serve_wsgi(sim.app, int(options.get("threads", 4)), int(options.get("port", 0)))


def _hub() -> Hub:
    from hub.config import Settings
    from hub.runtime import Hub

    return Hub(Settings.from_env())


def _started() -> None:
    """What ``hub serve|worker|relay`` do once started (`hub.runtime.settle_process`)."""
    from hub.runtime import settle_process

    settle_process()
    if os.environ.get("BENCH_SWITCH_INTERVAL"):  # an experiment's own setting wins
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))


def hub_web(options: dict[str, Any]) -> None:
    from hub.web.app import create_app

    app = create_app(_hub())
    _started()
    _serve_wsgi(app, int(options.get("threads", 8)))


def hub_relay(options: dict[str, Any]) -> None:
    """Like ``hub relay``: the outbox relay and an audit chainer."""
    hub = _hub()
    _started()
    stop = _until_term()
    threads = [threading.Thread(target=hub.relay.run, args=(stop,), daemon=True),
               threading.Thread(target=hub.chainer().run, args=(stop,), daemon=True)]
    for thread in threads:
        thread.start()
    _ready()
    stop.wait()
    for thread in threads:
        thread.join(30)
    hub.close()


def hub_worker(options: dict[str, Any]) -> None:
    hub = _hub()
    _started()
    stop = _until_term()
    with hub.run(relay=bool(options.get("with_relay")), cases=int(options.get("cases", 1)),
                 recorder=True, agencies=options.get("agencies") or None,
                 concurrency=options.get("concurrency")) as runner:
        _ready(",".join(t.name for t in runner.threads))
        while not stop.is_set():
            stop.wait(0.5)
    # leaving the block drains and stops every part, like `hub worker` on SIGTERM
    hub.close()


def celery_web(options: dict[str, Any]) -> None:
    from bench.celery_pipeline import intake_app

    _serve_wsgi(intake_app(), int(options.get("threads", 8)))


def celery_worker(options: dict[str, Any]) -> None:
    from celery.signals import worker_ready

    from bench.celery_pipeline import app, warm

    warm()
    worker_ready.connect(lambda **_: _ready(), weak=False)
    os.environ.setdefault("C_FORCE_ROOT", "1")
    app.worker_main(["worker", "--loglevel=WARNING", f"--pool={options.get('pool', 'threads')}",
                     f"--concurrency={int(options.get('concurrency', 4))}",
                     "--without-heartbeat", "--without-gossip", "--without-mingle",
                     # A node name of its own: two runs (or another session's) on one RabbitMQ
                     # must not fight over the exclusive queues of the default ``celery@host``.
                     f"--hostname=bench-{os.getpid()}-{uuid.uuid4().hex[:6]}@%h",
                     f"--prefetch-multiplier={int(options.get('prefetch_multiplier', 4))}",
                     "-Q", os.environ["BENCH_CELERY_QUEUE"]])


def raw_consumer(options: dict[str, Any]) -> None:
    """Consume with manual acks; write ``[key, publish time, receive time]`` rows on exit."""
    import time

    import pika

    connection = pika.BlockingConnection(pika.URLParameters(options["url"]))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=int(options.get("prefetch", 64)))
    received: list[list[Any]] = []
    stop = _until_term()
    _ready()
    for method, _props, body in channel.consume(options["queue"], inactivity_timeout=0.2):
        if stop.is_set():
            break
        if method is None:
            continue
        now = time.time()
        head = json.loads(body.split(b"}", 1)[0] + b"}")
        received.append([head["k"], head["t"], now])
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()
    with open(options["out"], "w") as handle:
        json.dump(received, handle)


ROLES: dict[str, Callable[[dict[str, Any]], None]] = {
    "simulator": simulator, "hub-web": hub_web, "hub-relay": hub_relay,
    "hub-worker": hub_worker, "celery-web": celery_web, "celery-worker": celery_worker,
    "raw-consumer": raw_consumer,
}


def main(argv: list[str]) -> None:
    _quiet()
    role = argv[0]
    options = json.loads(argv[1]) if len(argv) > 1 else {}
    if os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    ROLES[role](options)


if __name__ == "__main__":
    main(sys.argv[1:])
