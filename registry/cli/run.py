"""Runner commands: ``run`` (call a prompt, optionally streamed), ``costs`` (spend report) and
``prices`` (the price table in force)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from ..errors import RunError
from .base import State, parse_vars, pass_state, selector_options
from .output import print_json, print_table

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None) -> datetime | None:
    """``7d``, ``24h``, ``30m``, ``2w``, ``today``, or an ISO date/time (UTC when no zone)."""
    if value is None:
        return None
    text = value.strip().lower()
    now = datetime.now(UTC)
    if text == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use 7d, 24h, 30m, today or 2026-01-31[T12:00]",
            param_hint="--since",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("run")
@click.argument("name")
@selector_options
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="A variable (repeatable).")
@click.option(
    "--vars-file", type=click.Path(dir_okay=False), help="JSON or YAML file of variables."
)
@click.option("--stream", is_flag=True, help="Print the answer as it arrives.")
@click.option(
    "--cache/--no-cache",
    default=None,
    help="Serve/store the answer in the response cache (default: REGISTRY_CACHE_PROMPTS).",
)
@click.option("--unit-id", default=None, help="Experiment unit (e.g. a user id) to pick a variant.")
@click.option("--timeout", type=float, default=None, help="Seconds the call may take in all.")
@click.option("--max-retries", type=int, default=None, help="Retries after the first attempt.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole run result as JSON.")
@pass_state
def run_command(
    state: State,
    name: str,
    label: str | None,
    version: int | None,
    pairs: tuple[str, ...],
    vars_file: str | None,
    stream: bool,
    cache: bool | None,
    unit_id: str | None,
    timeout: float | None,
    max_retries: int | None,
    as_json: bool,
) -> None:
    """Run a prompt against the Anthropic API: the answer on stdout, a summary on stderr.

    Needs ANTHROPIC_API_KEY. Every run is logged (see `costs`).
    """
    variables = parse_vars(pairs, vars_file)
    options: dict[str, Any] = {"source": "cli", "cache": cache}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    reg = state.registry
    try:
        if stream and not as_json:
            chunks = reg.stream(
                name, variables, label=label, version=version, unit_id=unit_id, **options
            )
            with chunks:
                for chunk in chunks:
                    click.echo(chunk, nl=False)
                    sys.stdout.flush()
            click.echo()
            result = chunks.result
        else:
            result = reg.run(
                name, variables, label=label, version=version, unit_id=unit_id, **options
            )
            if as_json:
                print_json(result.to_dict())
            else:
                click.echo(result.text)
    except RunError as exc:
        run_id = getattr(exc, "run_id", None)
        click.echo(f"error: {exc.message}" + (f" (run {run_id})" if run_id else ""), err=True)
        sys.exit(1)
    if result is not None:
        click.echo(result.summary(), err=True)


@click.command("costs")
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Only runs since: 7d, 24h, 30m, today, or an ISO date (default: all).",
)
@click.option(
    "--by",
    "by",
    type=click.Choice(["prompt", "version", "model", "day", "source"]),
    default="prompt",
    show_default=True,
    help="How to group the runs.",
)
@click.option(
    "--source", default=None, help="Only runs from this source (app, http, cli, test...)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def costs_command(
    state: State, since: str | None, by: str, source: str | None, as_json: bool
) -> None:
    """Spend, tokens and run counts from the run log, grouped by prompt, version, model or day."""
    from ..runner.runlog import cost_report

    lines = cost_report(state.registry.db, by=by, since=parse_since(since), source=source)
    if as_json:
        print_json([line.to_dict() for line in lines])
        return
    total = (
        "total",
        sum(line.runs for line in lines),
        sum(line.errors for line in lines),
        sum(line.cached for line in lines),
        f"{sum(line.input_tokens for line in lines):,}",
        f"{sum(line.output_tokens for line in lines):,}",
        f"{sum(line.cost_usd for line in lines):.4f}",
    )
    rows = [
        (
            line.key,
            line.runs,
            line.errors,
            line.cached,
            f"{line.input_tokens:,}",
            f"{line.output_tokens:,}",
            f"{line.cost_usd:.4f}" + (f" (+{line.unpriced} unpriced)" if line.unpriced else ""),
        )
        for line in lines
    ]
    print_table(
        (by, "runs", "errors", "cached", "tokens in", "tokens out", "USD"),
        [*rows, total],
        title=f"spend by {by}" + (f" since {since}" if since else ""),
        right=("runs", "errors", "cached", "tokens in", "tokens out", "USD"),
    )


@click.command("prices")
@click.argument("models", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def prices_command(models: tuple[str, ...], as_json: bool) -> None:
    """The price table in force (USD per million tokens): the shipped table plus
    REGISTRY_PRICES_FILE. With MODELS, the price each of them is charged (exit status 1 if one
    has none)."""
    from ..prices import PRICE_KEYS, price_table

    table = price_table()
    if models:
        prices = [table.require(model) for model in models]
        names = list(models)
    else:
        prices = [table.prices[name] for name in sorted(table.prices)]
        names = [p.model for p in prices]
    if as_json:
        print_json(
            [
                {**p.to_dict(), "model": name, "priced_as": p.model}
                for name, p in zip(names, prices, strict=True)
            ]
        )
        return
    headers = ("model", *PRICE_KEYS, "from")
    print_table(
        headers,
        [
            (name, *(f"{getattr(p, key):g}" for key in PRICE_KEYS), p.source)
            for name, p in zip(names, prices, strict=True)
        ],
        title="USD per million tokens",
        right=PRICE_KEYS,
    )


def register(group: click.Group) -> None:
    """Add ``run``, ``costs`` and ``prices`` to the main command group."""
    group.add_command(run_command)
    group.add_command(costs_command)
    group.add_command(prices_command)


__all__ = ["costs_command", "parse_since", "prices_command", "register", "run_command"]
