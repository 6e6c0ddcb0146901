"""Engines, sessions and schema management for SQLite (embedded) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing. PostgreSQL relies on row
locks (``SELECT ... FOR UPDATE``) for the same guarantees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from .errors import ConfigurationError, DatabaseUnavailable, SchemaError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.orm import Session, sessionmaker

#: the Alembic revision this code expects; a test checks it is the head of ``migrations/``
SCHEMA_REVISION = "0007_batches"

SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` means the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"invalid database URL {str(url)!r}: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine configured for the registry's concurrency rules.

    Every failure of the database on this engine (unreachable, restarting, a lock timeout...)
    is raised as :class:`~registry.errors.DatabaseUnavailable` (see :func:`database_error`).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 60}
        if memory:
            kwargs.setdefault("poolclass", StaticPool)
        engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, wal=not memory)
    else:
        if parsed.get_backend_name() == "postgresql":
            # a server that does not answer fails the call instead of hanging it
            kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
            kwargs.setdefault("pool_pre_ping", True)
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 20)
        engine = sa.create_engine(parsed, **kwargs)
    _translate_errors(engine)
    return engine


#: PostgreSQL SQLSTATE classes and codes worth retrying: connection exceptions, operator
#: intervention (shutdown, restart), insufficient resources, serialization failures, deadlocks,
#: lock and statement timeouts
_RETRYABLE_SQLSTATES = ("08", "57", "53", "40001", "40P01", "55P03", "57014")
#: SQLite messages of failures that waiting fixes (the others are a file or schema problem)
_RETRYABLE_SQLITE = ("locked", "busy", "disk i/o")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def database_error(exc: BaseException, database: str | URL) -> Exception | None:
    """The registry error a database failure stands for, or None when it is not one.

    Connection failures, server restarts, timeouts and other operational errors become
    :class:`~registry.errors.DatabaseUnavailable` (``retryable`` when waiting may fix them);
    a value the database refuses (``DataError``) becomes a ``ValidationError``. Integrity
    errors are left alone: the code that runs the statement handles those races itself.
    Works on SQLAlchemy's wrappers and on the raw DB-API exceptions (sqlite3, psycopg).
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, DatabaseUnavailable | ValidationError):
        return None
    orig: BaseException = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig else exc
    name = database if isinstance(database, str) else database.render_as_string(hide_password=True)
    kind = type(orig).__name__
    if kind == "IntegrityError" or isinstance(exc, sa_exc.IntegrityError):
        return None
    if kind == "DataError" or isinstance(exc, sa_exc.DataError):
        return ValidationError(
            f"the database {name} refused a value: {_reason(orig)}", database=name
        )
    unavailable = isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.InternalError
    ) or kind in ("OperationalError", "InterfaceError", "InternalError", "DatabaseError")
    if not unavailable:
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    reason = _reason(orig)
    if sqlstate:
        retryable = str(sqlstate).startswith(_RETRYABLE_SQLSTATES)
    elif type(orig).__module__.startswith("sqlite3"):
        retryable = any(word in reason.lower() for word in _RETRYABLE_SQLITE)
    else:  # no code: the connection failed (refused, reset, timed out)
        retryable = True
    advice = (
        "retry in a few seconds"
        if retryable
        else "retrying will not help: check REGISTRY_DATABASE_URL and the database server"
    )
    return DatabaseUnavailable(
        f"the database {name} is unavailable ({reason}): {advice}",
        database=name,
        retryable=retryable,
    )


def _translate_errors(engine: Engine) -> None:
    name = engine.url.render_as_string(hide_password=True)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        if ctx.is_pre_ping:  # the pool is testing a connection: it reconnects by itself
            return
        error = database_error(ctx.sqlalchemy_exception or ctx.original_exception, name)
        if error is not None:
            raise error


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin")
        if mode == "immediate":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif mode == "deferred":
            conn.exec_driver_sql("BEGIN")
        # otherwise: autocommit reads, one statement at a time


class Database:
    """A database the registry lives in: an engine plus read and write session factories."""

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        write_engine: Engine
        snapshot_engine: Engine
        if self.is_sqlite:
            write_engine = self.engine.execution_options(sqlite_begin="immediate")
            snapshot_engine = self.engine.execution_options(sqlite_begin="deferred")
        else:
            write_engine = snapshot_engine = self.engine
        self._engines = (self.engine, snapshot_engine, write_engine)
        self._makers: tuple[sessionmaker[Session], ...] | None = None
        self._schema_checked = False
        self._lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite engine."""
        return self.dialect == "sqlite"

    def _sessionmakers(self) -> tuple[sessionmaker[Session], ...]:
        # the ORM loads on the first session, not at import: apps that only read never need it
        if self._makers is None:
            from sqlalchemy.orm import sessionmaker

            self._makers = tuple(sessionmaker(e, expire_on_commit=False) for e in self._engines)
        return self._makers

    def read(self) -> Session:
        """A session for single-statement reads (autocommit on SQLite)."""
        return self._sessionmakers()[0]()

    @contextmanager
    def consistent(self) -> Iterator[sa.Connection]:
        """A Core connection in a read transaction: several statements see one state.

        For the read path, which never loads the ORM (``snapshot`` is the ORM equivalent).
        """
        with self._engines[1].begin() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A Core connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed
        on success, rolled back on any error: several writes land together or not at all."""
        with self._engines[2].begin() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction: several statements see one consistent state."""
        with self._sessionmakers()[1]() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any error."""
        with self._sessionmakers()[2]() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None when it has no schema."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])

    def ensure_schema(self, *, auto_upgrade: bool) -> None:
        """Check the schema is current; upgrade it when allowed, else explain what to run."""
        if self._schema_checked:
            return
        with self._lock:
            if self._schema_checked:
                return
            current = self.current_revision()
            if current != SCHEMA_REVISION:
                if auto_upgrade:
                    upgrade(self)
                elif current is None:
                    raise SchemaError(
                        f"the database {self.url.render_as_string(hide_password=True)} has no "
                        "registry schema: run `prompt-registry init` (or `db upgrade`)"
                    )
                else:
                    raise SchemaError(
                        f"the database schema is at revision {current} but this code needs "
                        f"{SCHEMA_REVISION}: run `prompt-registry db upgrade`"
                    )
            self._schema_checked = True


def alembic_config(db: Database | None = None, url: str | None = None) -> Any:
    """An Alembic ``Config`` (built in code: no ``alembic.ini`` needed) pointing at the
    migrations shipped in the package and at the given database."""
    from alembic.config import Config

    from .resources import migrations_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    target = url or (db.url.render_as_string(hide_password=False) if db else None)
    if target:
        cfg.set_main_option("sqlalchemy.url", target.replace("%", "%%"))
    if db is not None:
        cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the schema (creates it on an empty database)."""
    from alembic import command

    command.upgrade(alembic_config(db), revision)


def downgrade(db: Database, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``base`` drops every table)."""
    from alembic import command

    command.downgrade(alembic_config(db), revision)
