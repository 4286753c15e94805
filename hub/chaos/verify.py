"""The chaos run's verdict, from independent sources.

- the run's own ledger: which cases it submitted and what each exchange should answer;
- the store: cases, exchanges, dead letters, audit records;
- the simulators: which requests each agency received and which effects it applied (per
  idempotency key, which is the exchange id);
- the broker: what is left in any queue.

An exchange is **lost** when the ledger expects it and, once the hub is quiet, it is not settled:
missing from the store, still waiting, marked parked without a dead letter to replay, or applied
by the agency while the hub neither recorded the answer nor parked it. A **duplicate effect** is
an agency applying the same exchange twice, applying two exchanges for one step of one case, or
applying a request the hub has no record of.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from sqlalchemy import select

from hub.delivery.broker import Broker
from hub.evidence.audit.chain import make_checkpoint
from hub.evidence.audit.verify import verify_chain
from hub.runtime import Hub
from hub.store.models import AuditRow, CaseRow, DeadLetterRow, ExchangeRow

NO_REASON = {"", "no reason recorded"}


def agency_effects(simulators: dict[str, Any]) -> dict[str, int]:
    effects: dict[str, int] = {}
    for simulator in simulators.values():
        with simulator._lock:  # noqa: SLF001 - a consistent snapshot of the agency's counters
            for key, count in simulator.effects.items():
                effects[key] = effects.get(key, 0) + count
    return effects


def agency_requests(simulators: dict[str, Any], armed: dict[str, list[Any]]) -> dict[str, Any]:
    """Requests each agency received and the faults it played, by kind (``latency`` beyond the
    connector's timeout is how the run makes timeouts)."""
    requests = 0
    faults: Counter[str] = Counter()
    for simulator in simulators.values():
        requests += len(simulator.received())
    for agency_faults in armed.values():
        for fault in agency_faults:
            faults["timeout" if fault.kind == "latency" else fault.kind] += fault.fired
    return {"requests": requests, "faults": dict(faults)}


def leftovers(broker: Broker, queues: Iterable[str]) -> dict[str, int]:
    return {q: n for q in queues if (n := broker.depth(q))}


def audit_check(hub: Hub, references: set[str]) -> tuple[bool, str, list[str]]:
    """Whether the audit trail accounts for every hop that the store shows happened.

    Two checks: the hash chain (``hub audit verify``: nothing altered, removed or inserted), and
    completeness: every case has its ``received`` record, every answered exchange its ``sent``
    record, every dead letter its ``dead_lettered`` record.
    """
    store = hub.store
    problems: list[str] = []
    chain_ok, chain_detail = _chain_verification(hub)
    with store.session() as session:
        received = set(session.scalars(select(AuditRow.correlation_id).where(
            AuditRow.action == "received")))
        sent = set(session.scalars(select(AuditRow.message_id).where(AuditRow.action == "sent")))
        parked_audit = set(session.scalars(select(AuditRow.message_id).where(
            AuditRow.action == "dead_lettered")))
        answered = set(session.scalars(select(ExchangeRow.id).where(
            ExchangeRow.status == "answered")))
        parked = set(session.scalars(select(DeadLetterRow.message_id)))
    if missing := references - received:
        problems.append(f"{len(missing)} cases without a 'received' record")
    if missing := answered - sent:
        problems.append(f"{len(missing)} answered exchanges without a 'sent' record")
    if missing := parked - parked_audit:
        problems.append(f"{len(missing)} dead letters without a 'dead_lettered' record")
    how = (f"hash chain verified ({chain_detail}) and completeness of the audit trail"
           " (cases received, exchanges sent, dead letters)")
    if not chain_ok:
        problems.append(f"hash chain broken: {chain_detail}")
    return not problems, how, problems


def _chain_verification(hub: Hub) -> tuple[bool, str]:
    """The tamper-evidence check of `hub audit verify`: records the run left unsealed are
    chained first (as the sealer of a running deployment would), a signed checkpoint is taken,
    then the whole chain is walked from the genesis."""

    make_checkpoint(hub.store, hub.keys.signer)  # chains what is pending, then signs the head
    report = verify_chain(hub.store, hub.keys.trust)
    detail = (f"{report.checked} records, {report.checkpoints_verified} checkpoints"
              if report.intact else "; ".join(p.describe() for p in report.problems[:5]))
    return report.intact, detail


def verdict(hub: Hub, ledger: list[tuple[str, Any]], simulators: dict[str, Any],
            broker: Broker) -> dict[str, Any]:
    store = hub.store
    with store.session() as session:
        cases = {ref: (cid, status) for cid, ref, status in session.execute(
            select(CaseRow.id, CaseRow.reference, CaseRow.status))}
        exchanges = session.execute(select(
            ExchangeRow.id, ExchangeRow.case_id, ExchangeRow.step, ExchangeRow.round,
            ExchangeRow.status, ExchangeRow.outcome)).all()
        dead = session.execute(select(
            DeadLetterRow.id, DeadLetterRow.message_id, DeadLetterRow.queue,
            DeadLetterRow.error_code, DeadLetterRow.reason, DeadLetterRow.status)).all()
    by_case: dict[str, list[Any]] = {}
    for e in exchanges:
        by_case.setdefault(e.case_id, []).append(e)
    dead_ids = {d.message_id for d in dead}
    parked_ids = {d.message_id for d in dead if d.status == "parked"}
    effects = agency_effects(simulators)
    known = {e.id for e in exchanges}

    lost: set[str] = set()
    missing_cases = wrong_outcomes = wrong_status = 0
    for reference, planned in ledger:
        case = cases.get(reference)
        if case is None:
            missing_cases += 1
            lost |= {f"{reference}/{step}" for step in planned.outcomes}
            continue
        case_id, status = case
        rows = by_case.get(case_id, [])
        for step, outcome in planned.outcomes.items():
            tries = [e for e in rows if e.step == step]
            if not tries:
                lost.add(f"{reference}/{step}")
            elif max(tries, key=lambda e: e.round).outcome != outcome and not any(
                    e.id in parked_ids for e in tries):
                wrong_outcomes += 1
        if status != planned.status:
            wrong_status += 1
    for e in exchanges:
        if e.status in ("queued", "acknowledged"):
            lost.add(e.id)  # never settled although the hub is quiet
        elif e.status == "dead_lettered" and e.id not in dead_ids:
            lost.add(e.id)  # marked parked, but nothing to replay
        if effects.get(e.id) and e.status not in ("answered", "dead_lettered"):
            lost.add(e.id)  # the agency did it, the hub kept no answer and no dead letter
    answered_without_effect = sum(1 for e in exchanges if e.status == "answered"
                                  and not effects.get(e.id))

    repeated = sum(count - 1 for count in effects.values() if count > 1)
    per_step = Counter((e.case_id, e.step, e.round) for e in exchanges if effects.get(e.id))
    two_for_one_step = sum(n - 1 for n in per_step.values() if n > 1)
    phantom = sum(1 for key in effects if key not in known)

    parked = [d for d in dead if d.status == "parked"]
    reasons = Counter(d.error_code for d in dead)
    without_reason = [d for d in dead if (d.reason or "").strip() in NO_REASON
                      or d.error_code in ("", "unknown")]
    intact, how, problems = audit_check(hub, {ref for ref, _ in ledger})
    remaining = leftovers(broker, hub.topology.all_queue_names())
    statuses = Counter(e.status for e in exchanges)
    return {
        "cases": len(ledger),
        "cases_missing": missing_cases,
        "cases_not_in_expected_status": wrong_status,
        "exchanges": len(exchanges),
        "exchanges_expected": sum(len(p.outcomes) for _, p in ledger),
        "exchange_statuses": dict(statuses),
        "wrong_outcomes": wrong_outcomes,
        "lost": len(lost),
        "lost_samples": sorted(lost)[:20],
        "duplicate_effects": repeated + two_for_one_step + phantom,
        "duplicate_detail": {"same_exchange_applied_again": repeated,
                             "two_exchanges_for_one_step": two_for_one_step,
                             "unknown_to_the_hub": phantom},
        "answered_without_agency_effect": answered_without_effect,
        "agency_effects": sum(effects.values()),
        "dead_letters": len(dead),
        "dead_letters_parked": len(parked),
        "dead_letter_reasons": dict(reasons),
        "dead_letter_samples": [{"id": d.id, "queue": d.queue, "code": d.error_code,
                                 "reason": d.reason[:200], "status": d.status}
                                for d in dead[:20]],
        "dead_letters_without_reason": len(without_reason),
        "leftover_messages": sum(remaining.values()),
        "leftover_queues": remaining,
        "audit_intact": intact,
        "audit_check": how,
        "audit_problems": problems,
    }
