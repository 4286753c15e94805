"""The hub's recurring jobs: APScheduler in a background thread, its jobs kept in the database.

The jobs themselves are named callables the composition root builds (`hub.runtime.Hub.scheduler`:
the deadline sweep, the purge of unclaimed documents and old seen message ids, the retention
job, the continuation of an unfinished re-encryption); this module only runs them on time::

    scheduler = hub.scheduler(interval_minutes=15)
    scheduler.start()            # background thread; jobs survive restarts
    ...
    scheduler.shutdown()

APScheduler persists a job as a reference to a module-level function, so a persisted job here
names `run_by_scheduler` and its id; `JobRunner`, the scheduler's executor, runs the callable
registered under that id in *this* scheduler. Nothing is looked up in a module-level registry,
and two schedulers in one process (tests) never run each other's jobs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from hub.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The table APScheduler keeps the jobs in (created on first start).
JOB_TABLE = "scheduled_jobs"


@dataclass(frozen=True)
class Job:
    """A recurring job: its stable id (the row in `JOB_TABLE`), how often, and what it does."""

    id: str
    every: timedelta
    run: Callable[[], None]
    #: Run once as soon as the scheduler starts (the sweep: a restart must not wait a period).
    at_start: bool = False


def run_by_scheduler(job_id: str) -> None:
    """What a persisted job names. Only `JobRunner` runs jobs, by id; a direct call is a bug."""
    raise ConfigurationError(f"job {job_id} runs through the hub's scheduler, not directly")


@dataclass
class _Bound:
    """The persisted job with this scheduler's callable in place of `run_by_scheduler`: the
    attributes APScheduler's `run_job` reads."""

    id: str
    func: Callable[[], None]
    misfire_grace_time: int | None
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.kwargs = {}

    def __str__(self) -> str:
        return self.name


class JobRunner(ThreadPoolExecutor):
    """APScheduler's thread pool, running each job's callable from this scheduler's jobs."""

    def __init__(self, jobs: dict[str, Job]) -> None:
        super().__init__(max_workers=1)
        self.jobs = jobs

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        known = self.jobs.get(job.id)
        if known is None:
            # A job persisted by another version of the hub: nothing here runs it.
            log.warning("scheduled job %s is unknown to this hub; skipped", job.id)
            self._run_job_success(job.id, [])
            return
        bound = _Bound(id=job.id, func=known.run, misfire_grace_time=job.misfire_grace_time,
                       name=job.id)

        def settled(future: Any) -> None:
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run_job, bound, job._jobstore_alias, run_times,
                          self._logger.name).add_done_callback(settled)


class Scheduler:
    """Runs ``jobs`` in a background thread; their schedule is kept in ``engine``'s database."""

    def __init__(self, engine: Engine, jobs: Iterable[Job]) -> None:
        self.registered = {job.id: job for job in jobs}
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
            executors={"default": JobRunner(self.registered)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=timezone.utc)

    def start(self) -> None:
        self.scheduler.start()
        for job in self.registered.values():
            self.scheduler.add_job(
                "hub.cases.scheduler:run_by_scheduler", "interval",
                seconds=job.every.total_seconds(), args=[job.id], id=job.id,
                replace_existing=True,
                **({"next_run_time": datetime.now(timezone.utc)} if job.at_start else {}))

    def jobs(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)
