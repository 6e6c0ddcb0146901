"""``init`` and ``db upgrade|downgrade|current``: schema management."""

from __future__ import annotations

import click

from ..db import SCHEMA_REVISION, Database, downgrade, upgrade
from .base import State, pass_state
from .output import print_json


def _database(state: State) -> Database:
    from ..config import database_url

    return Database(state.database or database_url())


@click.command()
@click.option(
    "--seed-dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Prompt files to load when the registry is empty (default: the example prompts "
    "shipped with the package).",
)
@click.option("--no-seed", is_flag=True, help="Do not load the seed prompts.")
@pass_state
def init(state: State, seed_dir: str | None, no_seed: bool) -> None:
    """Create or upgrade the schema, and load the seed prompts if the registry is empty."""
    from ..resources import seed_dir as packaged_seed_dir

    db = _database(state)
    before = db.current_revision()
    upgrade(db)
    db.dispose()
    click.echo(f"schema at {SCHEMA_REVISION} (was {before or 'empty'})")
    reg = state.registry
    if not no_seed and not reg.prompts(include_archived=True):
        directory = seed_dir or packaged_seed_dir()
        results = reg.seed(directory)
        click.echo(f"seeded {len(results)} prompts from {directory}")
    click.echo(
        "next: create the first admin with `prompt-registry users create NAME --role admin`, "
        "then `prompt-registry serve`"
    )


@click.group()
def db() -> None:
    """Schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    database = _database(state)
    upgrade(database, revision)
    click.echo(f"schema at {database.current_revision()}")
    database.dispose()


@db.command("downgrade")
@click.argument("revision")
@pass_state
def db_downgrade(state: State, revision: str) -> None:
    """Downgrade the schema to REVISION (``base`` removes every table)."""
    database = _database(state)
    downgrade(database, revision)
    click.echo(f"schema at {database.current_revision() or 'base (empty)'}")
    database.dispose()


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def db_current(state: State, as_json: bool) -> None:
    """Show the schema revision of the database and the one this code needs."""
    database = _database(state)
    current = database.current_revision()
    database.dispose()
    if as_json:
        print_json(
            {"database": current, "code": SCHEMA_REVISION, "current": current == SCHEMA_REVISION}
        )
        return
    click.echo(f"database: {current or 'empty'}; code: {SCHEMA_REVISION}")


def register(group: click.Group) -> None:
    """Add ``init`` and ``db`` to the main group."""
    group.add_command(init)
    group.add_command(db)
