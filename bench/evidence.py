"""What evidence costs: envelope seals, field encryption, audit chaining.

    python -m bench.evidence                 # seal and encryption costs, audit chain on SQLite
    python -m bench.evidence --postgres URL  # also the audit chain with concurrent writers

Numbers are per operation on this machine (median of several rounds); docs/security.md quotes a
run. Nothing here is asserted by the tests: it is measurement, not behaviour.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable


def _per_op(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """Median seconds per call of ``fn`` over ``rounds`` rounds of ``n`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def seal_costs(algorithm: str) -> dict[str, float]:
    from hub.config import Settings
    from hub.demo.scenarios import licence_request
    from hub.envelope import Envelope
    from hub.keyset import HubKeys, init_keys
    from hub.evidence.seal import JwsSeal

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.from_env({
            "HUB_DATA_DIR": scratch,
            "HUB_SIGNATURE_ALGORITHM": "rsa-sha256" if algorithm == "rsa" else "ecdsa-p256"})
        init_keys(settings.keys_dir, algorithm=algorithm, parties=["hub"])
        keys = HubKeys.load(settings)
        seal = JwsSeal(keys.signer, keys.trust)
        envelope = Envelope.new(
            service="driving_licence_authentication", kind="request", sender="hub",
            recipient="narsa", correlation_id="DLA-2026-7K3M9QX",
            schema={"name": "narsa.verify_licence.request", "version": "1"},
            payload=licence_request("authentic"))
        sealed = seal.seal(envelope)
        n = 200
        return {
            "seal_ms": _per_op(lambda: seal.seal(envelope), n) * 1000,
            "check_ms": _per_op(lambda: seal.check(sealed), n) * 1000,
            "encrypt_field_us": _per_op(lambda: keys.data.encrypt(
                b"AB123456", context=b"case:x\x00holder.cnie"), 2000) * 1e6,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence")
    parser.add_argument("--postgres", help="PostgreSQL admin URL for the audit chain run")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args(argv)
    for algorithm in ("ec", "rsa"):
        costs = seal_costs(algorithm)
        print(f"seal {algorithm.upper():3}  sign {costs['seal_ms']:.3f} ms  "
              f"verify {costs['check_ms']:.3f} ms  "
              f"sign+verify {costs['seal_ms'] + costs['check_ms']:.3f} ms per message; "
              f"field encryption {costs['encrypt_field_us']:.1f} us")
    try:
        from bench.audit_chain import run_chain_comparison
    except ImportError:
        return
    with tempfile.TemporaryDirectory() as scratch:
        run_chain_comparison(f"sqlite:///{Path(scratch) / 'chain.db'}", writers=args.writers,
                             records=args.records)
    if args.postgres:
        run_chain_comparison(args.postgres, writers=args.writers, records=args.records)


if __name__ == "__main__":
    main()
