"""Group commit: concurrent units of work share one transaction; each caller gets its own
result or its own error, and a refused unit leaves nothing behind."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.errors import SchemaViolation
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.store.group import GroupCommit
from hub.store.models import AuditRow


def _audit(session: Any, audit: AuditLog, name: str) -> str:
    audit.append(session, AuditRecord(action="received", actor=name, component="test"))
    return name


def test_waiting_callers_share_one_commit_and_a_refused_one_leaves_nothing(hub_factory):
    hub = hub_factory()
    hub.setup()
    group = GroupCommit(hub.store)
    audit = AuditLog()
    first_started, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def first(session: Any) -> str:
        first_started.set()
        release.wait(10)  # the others queue up meanwhile
        return _audit(session, audit, "first")

    def other(name: str) -> None:
        def work(session: Any) -> str:
            _audit(session, audit, name)
            if name == "refused":
                raise SchemaViolation("refused", errors=[])
            return name
        try:
            results[name] = group.run(work)
        except SchemaViolation as exc:
            results[name] = exc

    leader = threading.Thread(target=lambda: results.setdefault("first", group.run(first)))
    leader.start()
    assert first_started.wait(10)
    names = ["a", "b", "refused", "c"]
    others = [threading.Thread(target=other, args=(n,)) for n in names]
    for thread in others:
        thread.start()
    while len(group._queue) < len(names):  # noqa: SLF001 - wait until every caller queued
        threading.Event().wait(0.01)
    release.set()
    for thread in [leader, *others]:
        thread.join(20)
    assert results["first"] == "first" and [results[n] for n in "abc"] == ["a", "b", "c"]
    assert isinstance(results["refused"], SchemaViolation)
    assert (group.groups, group.units) == (2, 5)  # the four waiting callers: one commit
    with hub.store.session() as session:
        actors = set(session.scalars(select(AuditRow.actor)))
    assert actors == {"first", "a", "b", "c"}  # nothing of the refused unit


def test_a_failed_commit_runs_each_unit_alone(hub_factory, monkeypatch):
    hub = hub_factory()
    hub.setup()
    group = GroupCommit(hub.store)
    calls: list[str] = []
    real = hub.store.transaction
    failures = iter([True])

    def flaky(**options: Any) -> Any:
        if next(failures, False):
            raise SchemaViolation("the shared transaction failed", errors=[])
        return real(**options)

    monkeypatch.setattr(hub.store, "transaction", flaky)
    assert group.run(lambda session: calls.append("x") or "done") == "done"
    assert calls == ["x"]
    with pytest.raises(SchemaViolation):
        group.run(lambda session: (_ for _ in ()).throw(SchemaViolation("bad", errors=[])))
    with hub.store.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditRow)) == 0
