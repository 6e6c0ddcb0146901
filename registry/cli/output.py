"""How commands print: tables never cut, tab-separated values in a pipe, JSON on request.

On a terminal a table is drawn with rich, and a value too long for its column wraps onto the
next line instead of being cut. When stdout is not a terminal (a pipe, a file, CI) a listing
is printed as tab-separated values (a header line, then one line per row; tabs, newlines and
backslashes inside a value are escaped as ``\\t``, ``\\n`` and ``\\\\``) so ``grep``, ``cut``
and ``awk`` see every value whole. Reports made of several tables go through
:func:`stdout_console`, which in a pipe is as wide as the longest line.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: width of the console in a pipe: wide enough that rich never wraps or cuts a line
UNBOUNDED_WIDTH = 1_000_000


def stdout_console() -> Console:
    """A rich console on stdout; in a pipe it never wraps or cuts a line."""
    from rich.console import Console  # lazy for cold start: commands that print no table

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=UNBOUNDED_WIDTH)
    return console


def stderr_console() -> Console:
    """A rich console on stderr (progress and summaries)."""
    from rich.console import Console  # lazy for cold start

    return Console(stderr=True, highlight=False)


def new_table(*headers: str, title: str | None = None, right: Iterable[str] = ()) -> Table:
    """A rich table whose cells wrap (``overflow="fold"``) instead of being cut.

    ``right`` names the columns aligned right (numbers).
    """
    from rich.table import Table  # lazy for cold start

    aligned = set(right)
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold", justify="right" if header in aligned else "left")
    return table


def tsv_escape(value: object) -> str:
    """A value as one TSV field: backslash, tab, newline and carriage return escaped."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    right: Iterable[str] = (),
) -> None:
    """Print a listing: a rich table on a terminal, tab-separated values otherwise.

    Values are printed as they are (never as rich markup). The title is shown on a terminal
    only, so a pipe gets exactly one header line and one line per row.
    """
    if not sys.stdout.isatty():
        click.echo("\t".join(tsv_escape(h) for h in headers))
        for row in rows:
            click.echo("\t".join(tsv_escape(v) for v in row))
        return
    table = new_table(*headers, title=title, right=right)
    for row in rows:
        table.add_row(*(_plain(v) for v in row))
    stdout_console().print(table)


def _plain(value: object) -> Any:
    from rich.text import Text

    return Text("" if value is None else str(value))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def print_json(data: Any) -> None:
    """Pretty JSON on stdout (datetimes as ISO 8601, dataclasses as objects)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))
