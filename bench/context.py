"""What every scenario of one run shares: the profile (quick or full), the services, the
simulator, and where the results go."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from bench.procs import ProcessGroup


@dataclass(frozen=True)
class Profile:
    name: str
    warmup: float
    duration: float
    #: Closed loop on the asynchronous pipelines: requests in flight at most.
    window: int = 64
    #: Concurrent calls of the direct scenario's client (and the raw broker's publishers).
    direct_concurrency: int = 16
    intake_senders: int = 16
    hub_workers: tuple[int, ...] = (1, 2, 4)
    #: Connector threads per worker process (the NARSA default of `agency.yaml`).
    concurrency: int = 4
    #: Case-worker threads per worker process (``hub worker --case-threads``): the case worker
    #: only applies replayed answers now (answers reach their case in the connector worker).
    case_threads: int = 1
    #: ``HUB_RELAY_POLL_INTERVAL`` of the relay (a fallback on PostgreSQL, which notifies it).
    relay_poll: float = 0.2
    embedded_relay_poll: float = 0.01
    scale_sizes: tuple[int, ...] = (10**3, 10**4)
    scale_duration: float = 3.0
    soak_minutes: float = 0.0
    #: Offered load, as fractions of the hub's peak, for the throughput/latency curves.
    curve: tuple[float, ...] = ()
    drain: float = 40.0
    #: Latency runs at half of each hub worker count's own peak (else only the best one's).
    latency_per_worker_count: bool = False


#: Two seconds of warm-up: processes that just started fill their statement caches, pools and
#: validators in their first second, which a one-second warm-up left inside the window.
QUICK = Profile("quick", warmup=2.0, duration=2.5, scale_duration=2.0, drain=20.0)
#: For the test suite: every scenario for a second or so; the figures mean nothing.
SMOKE = Profile("smoke", warmup=0.3, duration=1.0, window=16, hub_workers=(1,),
                scale_sizes=(100,), scale_duration=0.8, drain=20.0)
FULL = Profile("full", warmup=3.0, duration=15.0, scale_sizes=(10**3, 10**4, 10**5, 10**6),
               scale_duration=8.0, soak_minutes=10.0, curve=(0.25, 0.5, 0.75, 1.0, 1.25),
               drain=90.0, latency_per_worker_count=True)


@dataclass
class Context:
    profile: Profile
    amqp_url: str
    postgres_admin_url: str
    simulator_url: str = ""
    simulator: ProcessGroup | None = None
    #: The run's development PKI (`hub.keyset.init_keys`), shared by the simulator, every hub
    #: deployment, the Celery pipeline and the direct client: every path signs and verifies.
    keys_dir: str = ""
    log: TextIO = field(default=sys.stderr)
    results: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[bench] {text}", file=self.log, flush=True)

    def record(self, key: str, value: Any) -> None:
        self.results[key] = value

    def dump(self) -> str:
        return json.dumps(self.results, indent=2, default=str)
