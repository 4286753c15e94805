"""Running the hub: ``demo``, ``serve``, ``worker``, ``relay``, ``simulators``."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

from hub.cli.common import build_hub, settings, wait_for_signal
from hub.runtime import settle_process


def register(main: click.Group) -> None:
    main.add_command(demo)
    main.add_command(serve)
    main.add_command(worker)
    main.add_command(relay)
    main.add_command(simulators)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Keep the demo's database, queue and keys here (default: a temporary"
                   " directory).")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for all cases.")
@click.option("--only", help="Run only the scenarios of this service (or this scenario name),"
              " with the cases they wait for.")
def demo(as_json: bool, data_dir: Path | None, timeout: float, only: str | None) -> None:
    """Run every service end to end on the embedded default against the agency simulators."""
    from hub.demo.runner import render_json, render_table, run_demo

    settings(quiet=True)
    if not as_json:
        click.echo("econsulat-hub demo: embedded broker and store, agency simulators on loopback",
                   err=True)
    report = run_demo(data_dir=data_dir, timeout=timeout,
                      progress=None if as_json else sys.stderr, only=only)
    (render_json if as_json else render_table)(report)
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--host", help="Interface to listen on (HUB_HTTP_HOST).")
@click.option("--port", type=int, help="Port (HUB_HTTP_PORT).")
@click.option("--threads", default=8, show_default=True)
def serve(host: str | None, port: int | None, threads: int) -> None:
    """Serve the web front (intake, inbound, back-office, admin) with waitress."""
    from waitress import serve as waitress_serve

    from hub.web.app import create_app

    hub = build_hub()
    hub.setup()
    app = create_app(hub)
    settle_process()
    config = hub.settings
    click.echo(f"serving on http://{host or config.http_host}:{port or config.http_port}", err=True)
    waitress_serve(app, host=host or config.http_host, port=port or config.http_port,
                   threads=threads, ident="econsulat-hub")


@click.command()
@click.option("--agency", "agencies", multiple=True,
              help="Run connector workers for this agency (repeatable; default: all).")
@click.option("--concurrency", type=int,
              help="Concurrent calls per agency (default: the agency's configured concurrency).")
@click.option("--cases/--no-cases", default=True, help="Run the case worker.")
@click.option("--case-threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Case-worker threads (they apply parked answers an operator replays; answers"
                   " reach their case in the connector workers).")
@click.option("--recorder/--no-recorder", default=True, help="Run the dead-letter recorder.")
@click.option("--with-relay", is_flag=True, help="Also run the outbox relay in this process.")
def worker(agencies: tuple[str, ...], concurrency: int | None, cases: bool, case_threads: int,
           recorder: bool, with_relay: bool) -> None:
    """Run connector workers, the case worker and the dead-letter recorder until SIGTERM."""
    hub = build_hub()
    hub.setup()
    settle_process()
    with hub.run(relay=with_relay, cases=case_threads if cases else 0, recorder=recorder,
                 agencies=agencies or None, concurrency=concurrency) as runner:
        click.echo(f"worker running: {', '.join(t.name for t in runner.threads)}", err=True)
        wait_for_signal(runner.stop_event)


@click.command()
def relay() -> None:
    """Run the outbox relay (with the audit chainer and the redriver) until SIGTERM."""
    hub = build_hub()
    hub.setup()
    settle_process()
    stop = threading.Event()
    threads = [threading.Thread(target=hub.relay.run, args=(stop,), name="relay", daemon=True),
               # The relay process also chains audit records (several chainers coordinate).
               threading.Thread(target=hub.chainer().run, args=(stop,), name="audit-chainer",
                                daemon=True)]
    redriver = hub.redriver()
    if redriver is not None:
        # And sends again what a retry left stranded in the broker (one sweep at a time).
        threads.append(threading.Thread(target=redriver.run, args=(stop,), name="redriver",
                                        daemon=True))
    for thread in threads:
        thread.start()
    click.echo("outbox relay and audit chainer running", err=True)
    wait_for_signal(stop)
    for thread in threads:
        thread.join(30)


@click.command()
@click.option("--only", "only", multiple=True, help="Start only this agency's simulator.")
def simulators(only: tuple[str, ...]) -> None:
    """Start the agency simulators on their configured ports until SIGTERM.

    Health calls back the hub at HUB_HTTP_HOST:HUB_HTTP_PORT with HUB_AGENCY_HEALTH_TOKEN."""
    from connectors.registry import load_agencies, start_simulators

    current = settings()
    agencies = load_agencies(overrides_file=current.agencies_file, urls=current.agency_urls)
    # Agencies that call the hub back (Health's decisions, Justice's documents) need its address
    # and their credential.
    hub_url = f"http://{current.http_host}:{current.http_port}"
    options = {name: {"callback_url": hub_url,
                      **({"token": current.agency_tokens[name]}
                         if name in current.agency_tokens else {})}
               for name in agencies if name in ("health", "justice")}
    if (current.keys_dir / "pki.json").is_file():
        # Agencies sign what they send and verify what the hub signs, with the deployment's keys
        # (`hub keys init`; an agency packaged since: `hub keys add NAME`).
        for name in agencies:
            options.setdefault(name, {})["keys_dir"] = str(current.keys_dir)
    started = start_simulators(agencies, only=set(only) or None, options=options)
    for name, simulator in started.items():
        click.echo(f"{name:10} {simulator.url}")
    stop = threading.Event()
    try:
        wait_for_signal(stop)
    finally:
        for simulator in started.values():
            simulator.stop()
