"""Shared fixtures: a registry on SQLite and on PostgreSQL for every storage test.

``reg`` (and ``db_url``) are parametrised over both engines. SQLite databases are copied from
a template migrated once per session; PostgreSQL uses one database per xdist worker, migrated
once and truncated between tests. Under ``CI=true`` a PostgreSQL or Redis test that cannot
run fails instead of being skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry import Registry
from registry.db import Database, upgrade
from registry.testing import FakeAnthropic

from .pg_cluster import PrivateCluster

PG_ADMIN_URL = os.environ.get(
    "REGISTRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("REGISTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SEED_DIR = Path(__file__).resolve().parent.parent / "templates_seed"


def unavailable(what: str, why: object) -> None:
    """Skip a test whose service is missing, or fail it under CI."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a skipped service test is a failure)")
    pytest.skip(message)


#: fixtures that need a service, and the marker a test using one gets
SERVICE_FIXTURES = {"pg_url": "postgres", "pg_session_url": "postgres", "redis_url": "redis"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the services it needs (``-m "not postgres"`` runs without them):
    ``postgres`` for a PostgreSQL fixture or the PostgreSQL half of ``db_url``/``reg``,
    ``redis`` for ``redis_url``."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        wanted = {SERVICE_FIXTURES[n] for n in names if n in SERVICE_FIXTURES}
        if callspec is not None and callspec.params.get("db_url") == "postgres":
            wanted.add("postgres")
        for marker in sorted(wanted):
            item.add_marker(marker)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch a real registry.db, key or budget from the developer's environment."""
    monkeypatch.setenv("REGISTRY_DATABASE_URL", f"sqlite:///{tmp_path / 'default.db'}")
    # run rows spooled during an outage stay with their test (the PostgreSQL URL is shared)
    monkeypatch.setenv("REGISTRY_SPOOL_DIR", str(tmp_path / "spool"))
    for var in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "REGISTRY_DAILY_BUDGET_USD",
        "REGISTRY_PRICES_FILE",
        "REGISTRY_REDIS_URL",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


def _pg_worker_db(worker: str) -> str:
    # the pid keeps parallel pytest runs (several developers, xdist workers) apart
    return f"registry_test_{worker}_{os.getpid()}".replace("-", "_")


def pg_drop_database(name: str) -> None:
    """Drop a test database (best effort)."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        pass
    finally:
        admin.dispose()


def pg_create_database(name: str) -> str:
    """Drop and create database ``name`` on the test server; returns its URL."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # server down or unreachable
        unavailable("PostgreSQL", exc)
    finally:
        admin.dispose()
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_session_url(worker_id: str) -> Iterator[str]:
    """A PostgreSQL database for this xdist worker, migrated to head, dropped at the end."""
    name = _pg_worker_db(worker_id)
    url = pg_create_database(name)
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    pg_drop_database(name)


@pytest.fixture
def pg_url(pg_session_url: str) -> str:
    """The worker's PostgreSQL database with every table emptied."""
    engine = sa.create_engine(pg_session_url)
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            conn.execute(
                sa.text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )
    engine.dispose()
    return pg_session_url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite file."""
    path = tmp_path / "registry.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def reg(db_url: str) -> Iterator[Registry]:
    """A registry on an empty database, on SQLite and on PostgreSQL."""
    registry = Registry(db_url, cache_ttl=0)
    yield registry
    registry.close()


@pytest.fixture
def sqlite_reg(sqlite_url: str) -> Iterator[Registry]:
    """A registry on an empty SQLite database only (for tests that are not about storage)."""
    registry = Registry(sqlite_url, cache_ttl=0)
    yield registry
    registry.close()


@pytest.fixture
def seeded_reg(reg: Registry) -> Registry:
    """``reg`` with the prompts of ``templates_seed/`` loaded."""
    reg.seed(SEED_DIR)
    return reg


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """xdist worker id (``master`` without xdist)."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "master"


@pytest.fixture
def redis_url() -> str:
    """URL of the local Redis test database (db 15), flushed."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        unavailable("Redis", exc)
    return REDIS_URL


def simple_version(**overrides: object) -> dict[str, object]:
    """Keyword arguments of a small valid ``create_version`` call."""
    kwargs: dict[str, object] = {
        "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": "{{ question }}"}],
        "settings": {"model": "claude-sonnet-4-6", "max_tokens": 300},
        "variables": {"question": {"type": "string"}},
        "message": "test version",
        "author": "tester",
    }
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
def fake_api(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    """The testing kit's ``fake_anthropic`` fixture under its old name (for test branches
    written before the kit; new tests use ``fake_anthropic``)."""
    return fake_anthropic


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster (own port and data) that outage tests may stop and start."""
    try:
        cluster = PrivateCluster()
        cluster.start()
    except Exception as exc:
        unavailable("PostgreSQL (a private cluster: initdb, pg_ctl)", exc)
    yield cluster
    cluster.destroy()


@pytest.fixture
def outage_url(private_pg: PrivateCluster) -> Iterator[str]:
    """A migrated database on the private cluster (which the test may stop and start)."""
    if not private_pg.running:
        private_pg.start()
    url = private_pg.create_database("registry")
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    if not private_pg.running:
        private_pg.start()
