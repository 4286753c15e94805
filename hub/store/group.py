"""Group commit: the units of work of concurrent callers share one transaction, one commit.

On the embedded default every commit waits for the disk (SQLite, ``synchronous=FULL``: an
fsync, about 4 ms here), and PostgreSQL spends a WAL flush on each; a web front taking many
requests at once paid one of each per request. `GroupCommit.run` lets concurrent requests ride
on the same commit: the first caller leads, runs the work of every caller waiting at that moment
in one transaction (each in a savepoint of its own, so that one refused request does not undo
the others), commits once, and hands the lead to whoever queued meanwhile. Nobody waits for a
batch to fill: a lone request commits at once, a burst in groups::

    group = GroupCommit(store)
    opened = group.run(lambda session: cases.open(session, service, data, actor="applicant"))

``work`` may run twice (alone, after its group's commit failed), so it must only act through
the session it is given.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from sqlalchemy.orm import Session

from hub.store import Store
from hub.store.bulk import checkpoint, rollback_to

T = TypeVar("T")


@dataclass
class _Waiting(Generic[T]):
    work: Callable[[Session], T]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Runs units of work of concurrent callers in shared transactions (see the module)."""

    def __init__(self, store: Store, *, max_group: int = 64) -> None:
        self.store = store
        self.max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Waiting[Any]] = []
        self._leading = False
        #: Groups committed, and units of work they carried (for tests and measurements).
        self.groups = 0
        self.units = 0

    def run(self, work: Callable[[Session], T]) -> T:
        waiting: _Waiting[T] = _Waiting(work)
        with self._lock:
            self._queue.append(waiting)
            lead = not self._leading
            self._leading = True
        if not lead:
            waiting.done.wait()
            if waiting.lead:  # the previous leader handed over: run the next group
                waiting.done.clear()
                self._lead()
                waiting.done.wait()
        else:
            self._lead()
            waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[no-any-return]

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue[:self.max_group], self._queue[self.max_group:]
        self._commit(group)
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
        successor.lead = True
        successor.done.set()

    def _commit(self, group: list[_Waiting[Any]]) -> None:
        try:
            with self.store.transaction() as session:
                for waiting in group:
                    mark = checkpoint(session)
                    try:
                        with session.begin_nested():
                            waiting.result = waiting.work(session)
                    except Exception as exc:  # noqa: BLE001 - this caller's own failure
                        rollback_to(session, mark)
                        waiting.error = exc
        except Exception:  # noqa: BLE001 - the commit failed: each alone, with its own error
            for waiting in group:
                self._alone(waiting)
        else:
            self.groups += 1
            self.units += len(group)
        for waiting in group:
            waiting.done.set()

    def _alone(self, waiting: _Waiting[Any]) -> None:
        waiting.result, waiting.error = None, None
        try:
            with self.store.transaction() as session:
                waiting.result = waiting.work(session)
        except Exception as exc:  # noqa: BLE001 - handed to its caller
            waiting.error = exc
