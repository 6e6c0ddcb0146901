"""The main click group, the shared state object and error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry import Registry

import click

from ..config import load_dotenv
from ..errors import DatabaseUnavailable, RegistryError


class State:
    """What every command shares: the database URL and a lazily opened registry."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        """The ``Registry`` (opened on first use)."""
        if self._registry is None:
            # lazy for cold start: `--help` and `--version` never load the database stack
            from ..registry import Registry

            self._registry = Registry(self.database)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()


class RegistryGroup(click.Group):
    """A group that turns registry errors into one clear line on stderr and exit status 1.

    Before the command line is parsed, ``.env`` of the working directory is read into the
    environment (never overriding a variable already set), so ``--database`` and every other
    setting may come from it.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        load_dotenv()
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatabaseUnavailable as exc:
            click.echo(f"error: {exc.message} (--database or REGISTRY_DATABASE_URL)", err=True)
            sys.exit(1)
        except RegistryError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except OSError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            # a usage mistake is one line too, naming where the help is (exit status 2)
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see `{exc.ctx.command_path} --help`)"
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            error = _database_error(exc)
            if error is None:
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


def _database_error(exc: Exception) -> str | None:
    """One line for a database failure that escaped as a driver error (None: not one)."""
    from ..db import database_error  # loaded only on an error

    error = database_error(exc, "")
    return None if error is None else str(error)


@click.group(cls=RegistryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    envvar="REGISTRY_DATABASE_URL",
    default=None,
    metavar="URL",
    help="Database URL (default: $REGISTRY_DATABASE_URL or sqlite:///registry.db).",
)
@click.version_option(package_name="prompt-registry")
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """Prompt registry: versioned prompt templates in SQL, rendered and run against Claude."""
    state = State(database)
    ctx.obj = state
    ctx.call_on_close(state.close)


pass_state = click.make_pass_decorator(State)


def parse_vars(pairs: Iterable[str], vars_file: str | None) -> dict[str, Any]:
    """Variables from ``--vars-file`` (JSON or YAML) and ``--var k=v`` pairs.

    A ``--var`` value is parsed as JSON when it is valid JSON of a non-string type
    (``n=3``, ``flag=true``, ``items=[1,2]``); otherwise it is taken as a string.
    """
    values: dict[str, Any] = {}
    if vars_file:
        import yaml

        try:
            text = Path(vars_file).read_text(encoding="utf-8")
            loaded = json.loads(text) if vars_file.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise click.BadParameter(
                f"cannot read {vars_file}: {exc}", param_hint="--vars-file"
            ) from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must hold a mapping of variables", param_hint="--vars-file")
        values.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--var")
        try:
            parsed = json.loads(raw)
            values[key] = raw if isinstance(parsed, str) else parsed
        except ValueError:
            values[key] = raw
    return values


def selector_options(func: Any) -> Any:
    """``--label`` / ``--version`` options shared by commands that pick a version."""
    func = click.option(
        "--version", "-v", "version", type=int, default=None, help="Version number."
    )(func)
    func = click.option("--label", "-l", default=None, help="Label (default: production).")(func)
    return func
