"""``batch``: bulk jobs over a JSONL file as Message Batches (or synchronously), resumable.

Progress goes to stderr: a bar with the counts by state on a terminal (processing, succeeded,
errored, canceled, expired), one line whenever the counts change otherwise. The summary goes
to stdout (``--json`` for a machine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .base import State, pass_state
from .output import print_json, print_table, stderr_console, stdout_console

if TYPE_CHECKING:
    from rich.console import Console

    from ..batch import StoredBatch

STATES = ("succeeded", "errored", "canceled", "expired", "processing")


def describe_counts(batch: StoredBatch) -> str:
    """``succeeded 30 · errored 2 · processing 8`` (states with a count only)."""
    parts = [f"{state} {batch.counts.get(state, 0)}" for state in STATES if batch.counts.get(state)]
    return " · ".join(parts) or "processing"


@contextmanager
def batch_progress(console: Console, title: str) -> Iterator[Callable[[StoredBatch], None]]:
    """A progress callback for a batch being followed: a bar on a terminal (items processed,
    counts by state), else one plain line each time the counts change."""
    if console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        task: list[Any] = []

        def on_bar(batch: StoredBatch) -> None:
            done = batch.total - batch.counts.get("processing", 0)
            if not task:
                task.append(bar.add_task(f"{title} {batch.name}", total=batch.total, states=""))
            bar.update(task[0], completed=done, states=describe_counts(batch))

        with bar:
            yield on_bar
        return

    last: list[str] = []

    def on_line(batch: StoredBatch) -> None:
        line = f"{title} {batch.name}: {batch.status}, {describe_counts(batch)}"
        if not last or last[-1] != line:
            last.append(line)
            console.print(line, markup=False)

    yield on_line


def submitted_line(batch: StoredBatch, resume: str) -> str:
    """What to tell the user once a batch is submitted (and how to resume it)."""
    return f"submitted batch {batch.name} ({batch.total} requests); resume with `{resume}`"


@click.command("batch")
@click.argument("name", required=False)
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL file: one JSON object of variables per line (optional key custom_id).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False),
    help="JSONL file to write: one line per input line, in input order.",
)
@click.option("--label", "-l", default=None, help="Run the version this label points at.")
@click.option("--version", "-v", type=int, default=None, help="Run this version.")
@click.option(
    "--sync",
    is_flag=True,
    help="Run the lines through the normal runner (rate limits, standard price) instead.",
)
@click.option(
    "--concurrency",
    "-k",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="With --sync: lines run at once.",
)
@click.option("--resume", "resume_id", default=None, metavar="BATCH_ID", help="Finish a batch.")
@click.option("--cancel", "cancel_id", default=None, metavar="BATCH_ID", help="Cancel a batch.")
@click.option("--list", "list_batches", is_flag=True, help="List stored batches.")
@click.option("--no-wait", is_flag=True, help="Submit and exit (resume later with --resume).")
@click.option("--actor", default=None, envvar="USER", help="Who submits it (default: $USER).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_state
def batch_cmd(
    state: State,
    name: str | None,
    input_path: str | None,
    output_path: str | None,
    label: str | None,
    version: int | None,
    sync: bool,
    concurrency: int,
    resume_id: str | None,
    cancel_id: str | None,
    list_batches: bool,
    no_wait: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Run prompt NAME over every line of --input as one Message Batch (half the price).

    Every line is checked and rendered first: a bad line is reported with its number and
    nothing is sent. Each item is logged as a run (source batch) at batch prices, errors
    included; --output gets one JSON line per input line (custom_id, text, parsed, usage,
    cost, error). Running the same job again resumes its batch instead of submitting it
    twice; so does --resume BATCH_ID.
    """
    chosen = sum(bool(x) for x in (name, resume_id, cancel_id, list_batches))
    if chosen != 1:
        raise click.UsageError("give a prompt NAME, or one of --resume, --cancel, --list")
    if list_batches:
        _list(state, as_json)
        return
    if cancel_id:
        _cancel(state, cancel_id, as_json)
        return
    reg = state.registry
    err = stderr_console()
    if resume_id:
        from ..batch import resume_bulk

        with batch_progress(err, "batch") as progress:
            report = resume_bulk(reg, resume_id, progress=progress)
    else:
        assert name is not None
        if not input_path or not output_path:
            raise click.UsageError("give --input and --output files")
        if label is not None and version is not None:
            raise click.UsageError("give --label or --version, not both")
        if sync:
            from ..batch import run_bulk_sync

            def lines_done(done: int, total: int) -> None:
                if done == total or done % 50 == 0:
                    err.print(f"{name}: {done}/{total} lines", markup=False)

            report = run_bulk_sync(
                reg,
                name,
                input_path,
                output_path,
                label=label,
                version=version,
                concurrency=concurrency,
                progress=lines_done,
            )
        elif no_wait:
            from ..batch import submit_bulk

            batch = submit_bulk(
                reg, name, input_path, output_path, label=label, version=version, actor=actor or ""
            )
            if as_json:
                print_json(batch.to_dict())
            else:
                stdout_console().print(
                    submitted_line(batch, f"prompt-registry batch --resume {batch.name}"),
                    markup=False,
                )
            return
        else:
            from ..batch import run_bulk

            def submitted(batch: StoredBatch) -> None:
                err.print(
                    submitted_line(batch, f"prompt-registry batch --resume {batch.name}"),
                    markup=False,
                )

            with batch_progress(err, name) as progress:
                report = run_bulk(
                    reg,
                    name,
                    input_path,
                    output_path,
                    label=label,
                    version=version,
                    actor=actor or "",
                    progress=progress,
                    on_submitted=submitted,
                )
    if as_json:
        print_json(report.to_dict())
    else:
        stdout_console().print(report.describe(), markup=False)


def _list(state: State, as_json: bool) -> None:
    from ..batch.store import listing

    found = listing(state.registry.db)
    if as_json:
        print_json([b.to_dict() for b in found])
        return
    print_table(
        ("batch", "kind", "prompt", "status", "requests", "counts", "spent", "submitted"),
        (
            (
                b.name,
                b.kind,
                f"{b.prompt} v{b.version}" if b.prompt else "(suites)",
                b.status,
                b.total,
                describe_counts(b),
                f"${b.spent_usd:.4f}",
                f"{b.created_at:%Y-%m-%d %H:%M:%S}" if b.created_at else "-",
            )
            for b in found
        ),
        right=("requests", "spent"),
    )


def _cancel(state: State, batch_id: str, as_json: bool) -> None:
    from ..batch import batches_of

    batch = batches_of(state.registry).cancel(batch_id)
    if as_json:
        print_json(batch.to_dict())
    else:
        stdout_console().print(
            f"batch {batch.name} is {batch.status}: resume it to log its results", markup=False
        )


def register(group: click.Group) -> None:
    """Add ``batch`` to the main group."""
    group.add_command(batch_cmd)


__all__ = ["batch_cmd", "batch_progress", "describe_counts", "register", "submitted_line"]
