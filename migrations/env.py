"""Alembic environment: the only way the registry's schema changes.

The database comes, in this order, from a connection in ``config.attributes["connection"]``
(the standard recipe: Flask-Migrate and apps that migrate inside their own transaction; the
caller owns that connection and its transaction), an engine there or in
``config.attributes["engine"]`` (pytest-alembic, ``registry.db.upgrade``), ``-x url=...``,
``sqlalchemy.url``, or ``REGISTRY_DATABASE_URL``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from registry import config as registry_config
from registry.db import make_engine
from registry.models import Base

cfg = context.config
if cfg.config_file_name is not None and not (
    cfg.attributes.get("engine") or cfg.attributes.get("connection")
):
    fileConfig(cfg.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    x_args = context.get_x_argument(as_dictionary=True)
    return (
        x_args.get("url") or cfg.get_main_option("sqlalchemy.url") or registry_config.database_url()
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = cfg.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    # pytest-alembic passes an Engine under "connection"; registry.db passes one as "engine"
    engine = given if given is not None else cfg.attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = make_engine(_url())
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="deferred")
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
