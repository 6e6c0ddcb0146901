"""``test``: run a prompt's regression suite, compare two versions, or run every suite.

Progress goes to stderr (a live rich progress bar on a terminal, one plain line per case
otherwise, so CI logs stay readable); the results table goes to stdout. Exit status 1 when any
case fails.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigurationError, RegistryError
from .base import State, pass_state
from .output import print_json, print_table, stderr_console, stdout_console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..batch import StoredBatch
    from ..suites import CaseResult, SuiteComparison, SuiteRun

#: characters of an answer shown in tables
OUTPUT_WIDTH = 160
STAGING = "staging"


def _short(text: str | None, width: int = OUTPUT_WIDTH) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _signed(value: float | None, fmt: str) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + format(value, fmt)


@contextmanager
def progress_reporter(
    console: Console, title: str
) -> Iterator[tuple[Callable[[SuiteRun], None], Callable[[CaseResult, int, int], None]]]:
    """``(on_start, progress)`` callbacks for ``run_suite``: a rich progress bar on a terminal,
    one plain line per finished case when the console is not a terminal (a pipe, CI)."""
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
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        task: list[Any] = []
        failed = [0]

        def on_start(run: SuiteRun) -> None:
            failed[0] = 0
            task.append(bar.add_task(f"{title} v{run.version}", total=run.total, failed=0))

        def on_case(result: CaseResult, done: int, total: int) -> None:
            failed[0] += 0 if result.passed else 1
            bar.update(task[-1], completed=done, failed=failed[0])

        with bar:
            yield on_start, on_case
        return

    def plain_start(run: SuiteRun) -> None:
        console.print(f"{title} v{run.version}: {run.total} case(s), suite run #{run.id}")

    def plain_case(result: CaseResult, done: int, total: int) -> None:
        console.print(f"  [{done}/{total}] {result.case}: {result.status}", markup=False)

    yield plain_start, plain_case


def results_table(run: SuiteRun) -> Table:
    from rich.table import Table  # lazy for cold start: the command line loads rich on use

    """The table of a suite run's cases and failed assertions."""
    table = Table(title=run.describe(), title_justify="left")
    table.add_column("case")
    table.add_column("result")
    table.add_column("failed assertions / error")
    table.add_column("cost", justify="right")
    table.add_column("latency", justify="right")
    table.add_column("run", no_wrap=True)
    for r in run.results:
        style = {"passed": "green", "failed": "red", "error": "magenta"}.get(r.status, "")
        detail = (
            f"run failed: {r.error}"
            if r.status == "error"
            else "\n".join(f"{a.description}: {a.message}" for a in r.failures)
        )
        table.add_row(
            r.case,
            f"[{style}]{r.status}[/{style}]",
            _short(detail, 400),
            _money(r.cost_usd),
            _ms(r.latency_ms),
            (r.run_id or "")[:12],
        )
    return table


def comparison_table(cmp: SuiteComparison) -> Table:
    from rich.table import Table  # lazy for cold start

    """Per case: both answers side by side, the assertions that changed, cost/latency deltas."""
    old, new = cmp.old, cmp.new
    table = Table(
        title=f"{new.prompt}: v{new.version} (suite run #{new.id}) against v{old.version} "
        f"(suite run #{old.id})",
        title_justify="left",
    )
    table.add_column("case")
    table.add_column(f"v{old.version}", ratio=1)
    table.add_column(f"v{new.version}", ratio=1)
    table.add_column("changed")
    table.add_column("Δ cost", justify="right")
    table.add_column("Δ latency", justify="right")
    for c in cmp.cases:
        changes = [c.status_change] if c.status_change else []
        changes += [ch.describe() for ch in c.changes]

        def cell(r: CaseResult | None) -> str:
            if r is None:
                return "(absent)"
            body = f"run failed: {r.error}" if r.status == "error" else r.output
            return f"[{r.status}] " + _short(body, 300)

        table.add_row(
            c.case,
            cell(c.old),
            cell(c.new),
            "\n".join(changes) or "-",
            _signed(c.cost_delta, ".6f"),
            _signed(c.latency_delta, ".0f") + (" ms" if c.latency_delta is not None else ""),
        )
    return table


def _summary(cmp: SuiteComparison) -> str:
    parts = [f"{len(cmp.regressions)} regression(s)", f"{len(cmp.fixes)} fix(es)"]
    if cmp.cost_delta is not None:
        parts.append(f"cost {_signed(cmp.cost_delta, '.6f')} USD")
    if cmp.latency_delta is not None:
        parts.append(f"latency {_signed(cmp.latency_delta, '.0f')} ms per case")
    return ", ".join(parts)


def _history(state: State, name: str, version: int | None, as_json: bool) -> None:
    from ..suites import suite_runs

    runs = suite_runs(state.registry, name, version=version, limit=30)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    print_table(
        ("run", "version", "label", "status", "passed", "cost", "who", "started"),
        (
            (
                f"#{r.id}",
                f"v{r.version}",
                r.label or "-",
                r.status,
                f"{r.passed}/{r.total}",
                _money(r.cost_usd),
                r.actor or "-",
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            )
            for r in runs
        ),
    )


@click.command("test")
@click.argument("name", required=False)
@click.option("--version", "-v", type=int, default=None, help="Version to test (default: newest).")
@click.option("--label", "-l", default=None, help="Test the version this label points at.")
@click.option(
    "--all",
    "all_prompts",
    is_flag=True,
    help="Run every prompt's suite at its staging label (prompts without cases are skipped).",
)
@click.option(
    "--concurrency",
    "-k",
    type=click.IntRange(1, 64),
    default=None,
    help="Cases run at once (default: $REGISTRY_SUITE_CONCURRENCY or 4).",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the results as JUnit XML to this file (for CI).",
)
@click.option(
    "--against",
    type=int,
    default=None,
    metavar="M",
    help="Compare with version M: both answers per case, changed assertions, cost/latency deltas.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="With --against: run version M again even if its last run on these cases can be reused.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds allowed per model call.",
)
@click.option(
    "--batch",
    "batch",
    is_flag=True,
    help="Send every case as one Message Batch (half the price, results within 24 h); "
    "a suite run still waiting for its batch is resumed instead.",
)
@click.option(
    "--resume",
    "resume_id",
    default=None,
    metavar="BATCH_ID",
    help="Finish the suite runs of a batch submitted before (nothing is sent again).",
)
@click.option("--no-wait", is_flag=True, help="With --batch: submit and exit (then --resume).")
@click.option("--actor", default=None, envvar="USER", help="Who runs it (default: $USER).")
@click.option("--history", is_flag=True, help="List the prompt's past suite runs instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_state
def suite_cmd(
    state: State,
    name: str | None,
    version: int | None,
    label: str | None,
    all_prompts: bool,
    concurrency: int | None,
    junit_path: str | None,
    against: int | None,
    fresh: bool,
    timeout: float | None,
    batch: bool,
    resume_id: str | None,
    no_wait: bool,
    actor: str | None,
    history: bool,
    as_json: bool,
) -> None:
    """Run the regression suite of prompt NAME (every test case through the runner).

    Stores a suite run with per-case results (the label gate reads it), prints a table of
    cases and failed assertions, and exits 1 when any case fails. With --batch the cases go
    as one Message Batch and the suite run waits for it (resumable with --resume).
    """
    if resume_id is not None:
        if name or all_prompts or against is not None:
            raise click.UsageError("--resume BATCH_ID takes no NAME, --all or --against")
        if not _print_runs(_resume(state, resume_id), junit_path, as_json):
            sys.exit(1)
        return
    if no_wait and not batch:
        raise click.UsageError("--no-wait goes with --batch")
    if batch and against is not None:
        raise click.UsageError("--against runs synchronously: drop --batch")
    if all_prompts and (name or version or label or against):
        raise click.UsageError("--all runs every prompt at its staging label: give no NAME")
    if not all_prompts and not name:
        raise click.UsageError("give a prompt NAME, or --all")
    if against is not None and all_prompts:
        raise click.UsageError("--against compares two versions of one prompt")
    if version is not None and label is not None:
        raise click.UsageError("give --version or --label, not both")
    if history:
        assert name is not None
        _history(state, name, version, as_json)
        return
    options: dict[str, Any] = {"concurrency": concurrency, "actor": actor or "", "timeout": timeout}
    if batch:
        runs = _run_batched(state, name, version, label, all_prompts, actor or "", no_wait)
        if no_wait:
            return
        ok = _print_runs(runs, junit_path, as_json)
    elif all_prompts:
        ok = _run_all(state, options, junit_path, as_json)
    elif against is not None:
        assert name is not None
        ok = _compare(state, name, version, label, against, fresh, options, junit_path, as_json)
    else:
        assert name is not None
        ok = _run_one(state, name, version, label, options, junit_path, as_json)
    if not ok:
        sys.exit(1)


def _run_one(
    state: State,
    name: str,
    version: int | None,
    label: str | None,
    options: dict[str, Any],
    junit_path: str | None,
    as_json: bool,
) -> bool:
    from ..suites import run_suite, write_junit

    with progress_reporter(stderr_console(), name) as (on_start, on_case):
        run = run_suite(
            state.registry,
            name,
            version=version,
            label=label,
            on_start=on_start,
            progress=on_case,
            **options,
        )
    if as_json:
        print_json(run.to_dict())
    else:
        console = stdout_console()
        console.print(results_table(run))
        console.print(run.describe(), markup=False)
    if junit_path:
        write_junit([run], junit_path)
    return run.ok


def _compare(
    state: State,
    name: str,
    version: int | None,
    label: str | None,
    against: int,
    fresh: bool,
    options: dict[str, Any],
    junit_path: str | None,
    as_json: bool,
) -> bool:
    from ..suites import compare_versions, write_junit

    with progress_reporter(stderr_console(), name) as (on_start, on_case):
        cmp = compare_versions(
            state.registry,
            name,
            version=version,
            label=label,
            against=against,
            fresh=fresh,
            on_start=on_start,
            progress=on_case,
            **options,
        )
    if as_json:
        print_json(
            {
                "old": cmp.old.to_dict(),
                "new": cmp.new.to_dict(),
                "regressions": [c.case for c in cmp.regressions],
                "fixes": [c.case for c in cmp.fixes],
                "cost_delta_usd": cmp.cost_delta,
                "latency_delta_ms": cmp.latency_delta,
                "cases": [
                    {
                        "case": c.case,
                        "status_change": c.status_change,
                        "changes": [
                            {"assertion": ch.description, "change": ch.kind} for ch in c.changes
                        ],
                        "cost_delta_usd": c.cost_delta,
                        "latency_delta_ms": c.latency_delta,
                    }
                    for c in cmp.cases
                ],
            }
        )
    else:
        console = stdout_console()
        console.print(comparison_table(cmp))
        console.print(cmp.new.describe(), markup=False)
        console.print(_summary(cmp), markup=False)
    if junit_path:
        write_junit([cmp.new], junit_path)
    return cmp.new.ok


def _run_all(state: State, options: dict[str, Any], junit_path: str | None, as_json: bool) -> bool:
    from ..suites import case_counts, run_suite, write_junit

    reg = state.registry
    counts = case_counts(reg)
    out, err = stdout_console(), stderr_console()
    runs: list[SuiteRun] = []
    ok = True
    for prompt in reg.prompts():
        if not counts.get(prompt.name):
            err.print(f"skip {prompt.name}: no test cases", markup=False)
            continue
        if STAGING not in prompt.labels:
            err.print(f"skip {prompt.name}: no {STAGING} label", markup=False)
            continue
        try:
            with progress_reporter(err, prompt.name) as (on_start, on_case):
                run = run_suite(
                    reg, prompt.name, label=STAGING, on_start=on_start, progress=on_case, **options
                )
        except ConfigurationError:
            raise
        except RegistryError as exc:
            err.print(f"{prompt.name}: error: {exc.message}", markup=False)
            ok = False
            continue
        runs.append(run)
        ok = ok and run.ok
        if not as_json:
            out.print(results_table(run))
    if as_json:
        print_json([r.to_dict() for r in runs])
    else:
        failed = [r for r in runs if not r.ok]
        out.print(
            f"{len(runs)} suite(s) run, {len(runs) - len(failed)} passed, {len(failed)} failed"
            + (": " + ", ".join(f"{r.prompt} v{r.version}" for r in failed) if failed else ""),
            markup=False,
        )
    if junit_path:
        write_junit(runs, junit_path)
    return ok


def _print_runs(runs: list[SuiteRun], junit_path: str | None, as_json: bool) -> bool:
    """Print finished suite runs (tables, or JSON); True when every one passed."""
    from ..suites import write_junit

    if as_json:
        print_json([r.to_dict() for r in runs] if len(runs) != 1 else runs[0].to_dict())
    else:
        out = stdout_console()
        for run in runs:
            out.print(results_table(run))
            out.print(run.describe(), markup=False)
    if junit_path:
        write_junit(runs, junit_path)
    return all(r.ok for r in runs)


def _resume(state: State, batch_id: str) -> list[SuiteRun]:
    from ..suites.batched import resume_suite_batch
    from .batch import batch_progress

    with batch_progress(stderr_console(), "batch") as progress:
        return resume_suite_batch(state.registry, batch_id, progress=progress)


def _run_batched(
    state: State,
    name: str | None,
    version: int | None,
    label: str | None,
    all_prompts: bool,
    actor: str,
    no_wait: bool,
) -> list[SuiteRun]:
    """``test --batch``: one batch for the suite (or every suite with --all); a suite run of
    the same version still waiting for its batch is resumed instead of sending it again."""
    from ..suites import case_counts
    from ..suites.batched import (
        SuiteTarget,
        open_suite_batch,
        resume_suite_batch,
        run_suites_batched,
    )
    from ..suites.runner import resolve_version
    from .batch import batch_progress, submitted_line

    reg = state.registry
    err = stderr_console()
    if all_prompts:
        counts = case_counts(reg)
        targets = []
        for prompt in reg.prompts():
            if not counts.get(prompt.name) or STAGING not in prompt.labels:
                err.print(f"skip {prompt.name}: no test cases or no {STAGING} label", markup=False)
                continue
            targets.append(SuiteTarget(prompt.name, label=STAGING))
    else:
        assert name is not None
        target = resolve_version(reg, name, version=version, label=label)
        waiting = open_suite_batch(reg, name, target.version)
        if waiting is not None:
            err.print(f"{name} v{target.version}: resuming batch {waiting}", markup=False)
            if no_wait:
                return []
            with batch_progress(err, name) as progress:
                return resume_suite_batch(reg, waiting, progress=progress)
        targets = [SuiteTarget(name, version=version, label=label)]

    def submitted(batch: StoredBatch) -> None:
        err.print(
            submitted_line(batch, f"prompt-registry test --resume {batch.name}"), markup=False
        )

    with batch_progress(err, name or "suites") as progress:
        return run_suites_batched(
            reg,
            targets,
            actor=actor,
            on_submitted=submitted,
            progress=progress,
            wait=not no_wait,
        )


def register(group: click.Group) -> None:
    """Add ``test`` to the main group."""
    group.add_command(suite_cmd)


__all__ = ["comparison_table", "progress_reporter", "register", "results_table", "suite_cmd"]
