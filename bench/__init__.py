"""Benchmarks: the hub measured against the raw broker, direct calls and a Celery pipeline.

    python -m bench --quick            # every scenario, small (under 2 minutes)
    python -m bench                    # full mode: longer runs, load curves, 10-minute soak
    python -m bench --quick --json     # one JSON object on stdout

Each scenario runs its parts in separate OS processes (simulator, load generator, web intake,
relay, workers) on fresh PostgreSQL databases and RabbitMQ namespaces, and reports throughput,
latency percentiles, CPU and peak memory of the processes under test. `docs/benchmarks.md`
describes what each scenario includes; `bench.report` writes it.
"""
