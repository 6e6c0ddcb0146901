"""``prompt-registry worker``: the registry's periodic jobs, in one loop.

A job is a name, an interval and a function of the registry that returns how many items it
handled. :data:`JOBS` is the registry of jobs every worker runs; a capability adds its own with
:func:`register` (here, in one visible place, like the hooks of :class:`registry.Registry`)::

    register(Job("webhooks", 1.0, deliver_webhooks, "deliver the webhook outbox"))

The loop runs each job when it is due, one at a time; a job that fails is logged and tried
again at its next turn (a database outage is a warning, not a traceback). ``serve`` runs the
same loop in a background thread of each server process, and ``prompt-registry worker`` in the
foreground. Several workers may run at once: every job must be safe to run concurrently with
itself in other processes (the spool replay takes a file lock per spool; a delivery job claims
rows with ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import DatabaseUnavailable, ValidationError
from .registry import Registry
from .spool import replay_orphans

log = logging.getLogger("registry.worker")


@dataclass(frozen=True)
class Job:
    """A periodic job: ``run(registry)`` every ``interval`` seconds; returns items handled."""

    name: str
    interval: float
    run: Callable[[Registry], int]
    description: str = ""


#: the jobs every worker runs, by name (see :func:`register`)
JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add ``job`` to :data:`JOBS` (a job of the same name is replaced)."""
    if job.interval <= 0:
        raise ValidationError(f"job {job.name!r}: the interval must be positive", field="interval")
    JOBS[job.name] = job
    return job


def _replay_spools(reg: Registry) -> int:
    return replay_orphans(reg.db)


register(
    Job(
        "run-spool",
        2.0,
        _replay_spools,
        "replay run rows spooled by processes that died while the database was down",
    )
)


@dataclass
class JobReport:
    """What one turn of a job did."""

    job: str
    handled: int = 0
    error: str | None = None
    seconds: float = 0.0


class Worker:
    """Runs jobs on a registry: :meth:`run_once`, :meth:`run_forever`, or :meth:`start` a thread.

    ``jobs`` defaults to every job of :data:`JOBS`; ``on_report`` is called after each turn.
    """

    def __init__(
        self,
        reg: Registry,
        jobs: Iterable[Job] | None = None,
        *,
        on_report: Callable[[JobReport], None] | None = None,
    ) -> None:
        self.reg = reg
        self.jobs = list(JOBS.values() if jobs is None else jobs)
        self.on_report = on_report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_job(self, job: Job) -> JobReport:
        """One turn of ``job`` (its errors are logged and reported, never raised)."""
        report = JobReport(job.name)
        started = time.perf_counter()
        try:
            report.handled = int(job.run(self.reg) or 0)
        except DatabaseUnavailable as exc:
            report.error = exc.message
            log.warning("job %s: %s", job.name, exc.message)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", job.name)
        report.seconds = time.perf_counter() - started
        if self.on_report is not None:
            self.on_report(report)
        return report

    def run_once(self) -> list[JobReport]:
        """Every job once, in order."""
        return [self.run_job(job) for job in self.jobs]

    def run_forever(self) -> None:
        """Run each job when due until :meth:`stop` (or the registry closes)."""
        due = {job.name: 0.0 for job in self.jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if self._stop.is_set():
                    return
                if due[job.name] <= now:
                    self.run_job(job)
                    due[job.name] = time.monotonic() + job.interval
            wait = min(due.values(), default=now + 1.0) - time.monotonic()
            self._stop.wait(max(0.05, wait))

    def start(self) -> threading.Thread:
        """Run :meth:`run_forever` in a daemon thread, stopped when the registry closes."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run_forever, name="registry-worker", daemon=True
            )
            self.reg.hooks.closers.append(self.stop)
            self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (after the job that is running)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


__all__ = ["JOBS", "Job", "JobReport", "Worker", "register"]
