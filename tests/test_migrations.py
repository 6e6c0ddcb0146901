"""The schema comes from Alembic only, and the ORM models agree with it on both engines.

pytest-alembic's built-in tests (single head, upgrade, models match the DDL, up/down
consistency) run on SQLite and PostgreSQL through ``config.attributes["connection"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pytest_alembic.plugin.fixtures import alembic_runner
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.engine import Engine

from registry.db import SCHEMA_REVISION, Database, alembic_config, downgrade, make_engine, upgrade
from registry.models import Base
from tests.conftest import pg_create_database, pg_drop_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path, worker_id: str) -> object:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    import os

    name = f"registry_migrations_{worker_id}_{os.getpid()}"
    yield pg_create_database(name)
    pg_drop_database(name)


__all__ = [
    "alembic_runner",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture(name="alembic_config")
def alembic_config_fixture() -> object:
    """pytest-alembic's configuration: the migrations shipped in the package."""
    return alembic_config()


@pytest.fixture
def alembic_engine(empty_url: str) -> Iterator[Engine]:
    """pytest-alembic's database: an empty one on each engine, with the registry's settings
    (SQLite transactions begin explicitly, so each migration step is atomic)."""
    engine = make_engine(empty_url)
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="deferred")
    yield engine
    engine.dispose()


def test_env_uses_a_connection_passed_in_attributes(empty_url: str) -> None:
    from alembic import command

    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()  # the caller owns the transaction
        assert Database(empty_url).current_revision() == SCHEMA_REVISION
    finally:
        engine.dispose()


def test_code_expects_the_head_revision() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [SCHEMA_REVISION]


def test_upgrade_matches_models_and_downgrade_empties(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        upgrade(db)
        assert db.current_revision() == SCHEMA_REVISION
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        downgrade(db, "base")
        tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade(db)  # and back up again
        assert db.current_revision() == SCHEMA_REVISION
    finally:
        db.dispose()


def test_every_revision_steps_down_and_up(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    try:
        for rev in revisions[1:]:
            downgrade(db, rev)
            assert db.current_revision() == rev
        upgrade(db)
        assert db.current_revision() == SCHEMA_REVISION
    finally:
        db.dispose()
