"""``worker``: run the registry's periodic jobs (see :mod:`registry.worker`)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from .base import State, pass_state
from .output import print_json, print_table


@click.command()
@click.option("--once", is_flag=True, help="Run every job once, print what each did, and exit.")
@click.option(
    "--job",
    "names",
    multiple=True,
    metavar="NAME",
    help="Run only this job (repeatable; default: every job, see --list).",
)
@click.option("--list", "list_jobs", is_flag=True, help="List the jobs and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once or --list: JSON output.")
@pass_state
def worker(
    state: State, once: bool, names: tuple[str, ...], list_jobs: bool, as_json: bool
) -> None:
    """Run the periodic jobs until stopped (Ctrl-C or SIGTERM).

    Jobs: replay the run rows that processes spooled while the database was down and that
    died before replaying them (`run-spool`), and those other capabilities register.
    `serve` runs the same jobs in the background; run this next to app processes that use
    `Registry` directly. Several workers may run at once.
    """
    from ..worker import JOBS, Worker

    unknown = sorted(set(names) - set(JOBS))
    if unknown:
        raise click.BadParameter(
            f"unknown job(s) {', '.join(unknown)}; jobs: {', '.join(sorted(JOBS))}",
            param_hint="--job",
        )
    jobs = [JOBS[n] for n in names] if names else list(JOBS.values())
    if list_jobs:
        rows = [
            {"job": j.name, "every_seconds": j.interval, "description": j.description} for j in jobs
        ]
        if as_json:
            print_json(rows)
        else:
            print_table(
                ("job", "every (s)", "what it does"),
                [(j.name, f"{j.interval:g}", j.description) for j in jobs],
                right=("every (s)",),
            )
        return
    reg = state.registry

    def report(r: Any) -> None:
        if once or as_json:
            return
        if r.error:
            click.echo(f"{r.job}: failed: {r.error}", err=True)
        elif r.handled:
            click.echo(f"{r.job}: {r.handled} handled ({r.seconds:.2f} s)")

    runner = Worker(reg, jobs, on_report=report)
    if once:
        reports = runner.run_once()
        if as_json:
            print_json(reports)
        else:
            print_table(
                ("job", "handled", "seconds", "error"),
                [(r.job, r.handled, f"{r.seconds:.2f}", r.error or "") for r in reports],
                right=("handled", "seconds"),
            )
        if any(r.error for r in reports):
            raise SystemExit(1)
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: runner.stop(timeout=0))
    click.echo(f"worker running {', '.join(j.name for j in jobs)} (Ctrl-C stops it)", err=True)
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    click.echo("worker stopped", err=True)


def register(group: click.Group) -> None:
    """Add ``worker`` to the main group."""
    group.add_command(worker)
