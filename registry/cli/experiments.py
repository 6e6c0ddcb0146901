"""Experiment commands: ``experiments create|start|stop|update|report|promote|list``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from .base import State, pass_state
from .output import new_table, print_json, print_table, stdout_console

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def experiments() -> None:
    """A/B experiments: split a prompt's traffic between versions, read the report, promote."""


@experiments.command("create")
@click.argument("key")
@click.option("--prompt", "prompt", required=True, help="The prompt the experiment splits.")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    required=True,
    metavar="KEY=VERSION:WEIGHT",
    help="A variant, e.g. control=3:50 (repeat; the first is the control).",
)
@click.option(
    "--unit",
    default="user_id",
    show_default=True,
    help="What a unit is (the id apps pass as unit_id), e.g. user_id or session_id.",
)
@click.option(
    "--coverage",
    type=float,
    default=1.0,
    show_default=True,
    help="Share of units in the experiment (0-1]; the others get the label's version.",
)
@click.option("--seed", default=None, help="Salt of the assignment hash (default: the key).")
@click.option(
    "--guardrail",
    "guardrails",
    multiple=True,
    metavar="METRIC[:THRESHOLD]",
    help="Stop when a variant is significantly worse on METRIC by more than THRESHOLD "
    "(e.g. error_rate:0.02, latency_ms:200, feedback:thumbs_up); repeatable.",
)
@click.option(
    "--min-runs",
    type=int,
    default=100,
    show_default=True,
    help="Runs per variant before a guardrail may stop the experiment.",
)
@click.option("--sticky", is_flag=True, help="Persist each unit's first variant for good.")
@click.option(
    "--label",
    default="production",
    show_default=True,
    help="The label the experiment stands in for.",
)
@click.option("--description", default="", help="What the experiment tests.")
@click.option("--actor", default=None, envvar="USER", help="Who creates it (default: $USER).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def create_cmd(
    state: State,
    key: str,
    prompt: str,
    variants: tuple[str, ...],
    unit: str,
    coverage: float,
    seed: str | None,
    guardrails: tuple[str, ...],
    min_runs: int,
    sticky: bool,
    label: str,
    description: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Create a draft experiment KEY on a prompt (start it with `experiments start`)."""
    from ..experiments import create

    exp = create(
        state.registry,
        key,
        prompt=prompt,
        variants=list(variants),
        unit=unit,
        coverage=coverage,
        seed=seed,
        guardrails=list(guardrails),
        sticky=sticky,
        min_runs=min_runs,
        label=label,
        description=description,
        actor=actor or "",
    )
    if as_json:
        print_json(exp.to_dict())
        return
    split = ", ".join(f"{v.key}=v{v.version}:{v.weight:g}" for v in exp.variants)
    click.echo(f"created experiment {exp.key} on {exp.prompt} ({split}); status draft")
    click.echo(f"start it with: prompt-registry experiments start {exp.key}")


@experiments.command("start")
@click.argument("key")
@click.option("--actor", default=None, envvar="USER", help="Who starts it (default: $USER).")
@pass_state
def start_cmd(state: State, key: str, actor: str | None) -> None:
    """Start experiment KEY: units with an id get their variant from now on."""
    from ..experiments import start

    exp = start(state.registry, key, actor=actor or "")
    click.echo(f"experiment {exp.key} is running on {exp.prompt} (label {exp.label})")


@experiments.command("stop")
@click.argument("key")
@click.option("--reason", default="", help="Why it stops (recorded).")
@click.option("--actor", default=None, envvar="USER", help="Who stops it (default: $USER).")
@pass_state
def stop_cmd(state: State, key: str, reason: str, actor: str | None) -> None:
    """Stop experiment KEY: every unit gets the label's version again."""
    from ..experiments import stop

    exp = stop(state.registry, key, actor=actor or "", reason=reason)
    click.echo(f"experiment {exp.key} stopped; {exp.prompt} serves its {exp.label} label again")


@experiments.command("update")
@click.argument("key")
@click.option(
    "--weight",
    "weights",
    multiple=True,
    metavar="VARIANT=WEIGHT",
    help="New weight of a variant (repeatable).",
)
@click.option("--coverage", type=float, default=None, help="New share of units (ramp up).")
@click.option("--actor", default=None, envvar="USER", help="Who changes it (default: $USER).")
@pass_state
def update_cmd(
    state: State, key: str, weights: tuple[str, ...], coverage: float | None, actor: str | None
) -> None:
    """Change weights or coverage of KEY (raising coverage keeps every unit's variant)."""
    from ..experiments import update

    parsed: dict[str, float] = {}
    for pair in weights:
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            parsed[name] = float(value)
        except ValueError:
            raise click.BadParameter(
                f"{pair!r} is not VARIANT=WEIGHT", param_hint="--weight"
            ) from None
    if not parsed and coverage is None:
        raise click.UsageError("give --weight and/or --coverage")
    exp = update(state.registry, key, weights=parsed or None, coverage=coverage, actor=actor or "")
    split = ", ".join(f"{v.key}:{v.weight:g}" for v in exp.variants)
    click.echo(f"experiment {exp.key}: coverage {exp.coverage:g}, weights {split}")


@experiments.command("promote")
@click.argument("key")
@click.argument("variant")
@click.option("--reason", default="", help="Why this variant wins (recorded in the label audit).")
@click.option("--actor", default=None, envvar="USER", help="Who promotes (default: $USER).")
@click.option(
    "--override", is_flag=True, help="Bypass the regression-suite gate (recorded in the audit)."
)
@pass_state
def promote_cmd(
    state: State, key: str, variant: str, reason: str, actor: str | None, override: bool
) -> None:
    """Move the experiment's label to VARIANT's version and stop experiment KEY."""
    from ..experiments import promote

    exp = promote(state.registry, key, variant, actor=actor or "", reason=reason, override=override)
    chosen = exp.variant(variant)
    click.echo(
        f"{exp.prompt}: {exp.label} -> version {chosen.version} (variant {variant}); "
        f"experiment {exp.key} stopped"
    )


@experiments.command("list")
@click.option("--prompt", default=None, help="Only experiments on this prompt.")
@click.option(
    "--status",
    type=click.Choice(["draft", "running", "stopped"]),
    default=None,
    help="Only experiments in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_cmd(state: State, prompt: str | None, status: str | None, as_json: bool) -> None:
    """List experiments, newest first."""
    from ..experiments import list_experiments

    found = list_experiments(state.registry, prompt=prompt, status=status)
    if as_json:
        print_json([e.to_dict() for e in found])
        return
    rows = []
    for e in found:
        split = ", ".join(f"{v.key}=v{v.version}:{v.weight:g}" for v in e.variants)
        started = f"{e.started_at:%Y-%m-%d %H:%M}" if e.started_at else "-"
        stopped = f"{e.stopped_at:%Y-%m-%d %H:%M} {e.stop_reason}" if e.stopped_at else "-"
        rows.append((e.key, e.prompt, e.status, split, f"{e.coverage:g}", started, stopped))
    print_table(
        ("key", "prompt", "status", "variants", "coverage", "started", "stopped / why"), rows
    )


@experiments.command("report")
@click.argument("key")
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Significance level (Holm-adjusted over every comparison of the report).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the HTTP API answers).")
@pass_state
def report_cmd(state: State, key: str, alpha: float, as_json: bool) -> None:
    """Per variant traffic and outcomes, and each treatment against control."""
    from ..experiments import build_report

    report = build_report(state.registry, key, alpha=alpha)
    if as_json:
        print_json(report.to_dict())
        return
    print_report(report, stdout_console())


def _p(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def print_report(report: Any, console: Console) -> None:
    """Render a :class:`~registry.experiments.Report` as rich tables."""
    exp = report.experiment
    console.print(
        f"[bold]{exp.key}[/bold] on {exp.prompt} (label {exp.label}) · {exp.status}"
        f" · coverage {exp.coverage:g} · unit {exp.unit}" + (" · sticky" if exp.sticky else "")
    )
    if exp.stop_reason:
        console.print(f"stopped by {exp.stopped_by or '-'}: {exp.stop_reason}")
    traffic = new_table(
        "variant", "version", "weight", "units", "exposures", "runs", title="Traffic"
    )
    for v in report.variants:
        name = v.key + (" (control)" if v.key == report.control != "control" else "")
        traffic.add_row(
            name,
            str(v.version or "-"),
            f"{v.weight:g}",
            str(v.units),
            str(v.exposures),
            str(v.runs),
        )
    console.print(traffic)
    level = f"{report.confidence:.0%}"
    table = new_table(
        "metric",
        "variant",
        f"mean [{level} CI]",
        f"vs control [{level} CI]",
        "relative",
        "p",
        "p (Holm)",
        "",
        title="Outcomes",
    )
    comparisons = {(c.metric, c.variant): c for c in report.comparisons}
    for m in report.metrics:
        for i, v in enumerate(report.variants):
            s = v.metrics[m.name]
            mean = f"{m.format(s.mean)} [{m.format(s.low)}, {m.format(s.high)}]"
            c = comparisons.get((m.name, v.key))
            if c is None:
                row = [m.title if i == 0 else "", v.key, mean, "", "", "", "", ""]
            else:
                delta = f"{m.format(c.diff)} [{m.format(c.low)}, {m.format(c.high)}]"
                rel = "-" if math.isnan(c.relative) else f"{c.relative:+.1%}"
                flag = ""
                if c.significant:
                    flag = "[green]better[/green]" if c.better else "[red]worse[/red]"
                row = [
                    m.title if i == 0 else "",
                    v.key,
                    mean,
                    delta,
                    rel,
                    _p(c.p_value),
                    _p(c.p_adjusted),
                    flag,
                ]
            table.add_row(*row)
    console.print(table)
    if math.isnan(report.srm_p_value):
        console.print("sample ratio check: not enough units yet")
    else:
        verdict = "[red]MISMATCH[/red]" if report.srm else "ok"
        console.print(f"sample ratio check: chi-square p={report.srm_p_value:.4f} {verdict}")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def register(group: click.Group) -> None:
    """Add the ``experiments`` group to the main CLI."""
    group.add_command(experiments)
