"""``python -m bench [--quick] [--json] [--no-docs] [--root DIR]`` (also ``make bench``).

Runs every scenario against the RabbitMQ and PostgreSQL of ``HUB_TEST_AMQP_URL`` and
``HUB_TEST_POSTGRES_URL`` (defaults: 127.0.0.1), prints the table (or one JSON object with
``--json``) and rewrites the generated part of ``docs/benchmarks.md`` and its chart.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path

from bench.context import FULL, QUICK, SMOKE, Context
from bench.infra import ServicesMissing, check_services


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under 2 minutes)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long runs for the test suite (figures meaningless)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root whose docs/ are written")
    parser.add_argument("--soak-minutes", type=float, help="override the soak length (full)")
    parser.add_argument("--workers", help="hub worker counts, e.g. 1,2,4")
    args = parser.parse_args(argv)
    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.soak_minutes is not None:
        profile = dataclasses.replace(profile, soak_minutes=args.soak_minutes)
    if args.workers:
        profile = dataclasses.replace(
            profile, hub_workers=tuple(int(w) for w in args.workers.split(",")))
    # SIGTERM ends the run like Ctrl-C: scenarios stop their processes and drop their databases.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        amqp, postgres = check_services()
    except ServicesMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    from bench.suite import run_suite

    results = run_suite(Context(profile, amqp, postgres))
    command = "python -m bench" + (" --smoke" if args.smoke else " --quick" if args.quick else "")
    if not args.no_docs:
        from bench.report import write_docs

        page = write_docs(results, args.root, command)
        print(f"bench: wrote {page}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, default=str))
    else:
        from bench.report import table

        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
