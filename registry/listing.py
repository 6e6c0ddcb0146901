"""Listing prompts: the one place the Python API, the HTTP API, the CLI and the admin list from.

SQLAlchemy Core only. A listing is two statements: the prompts that match, then the labels of
exactly those prompts.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .db import Database
from .labels import missing_prompt
from .names import check_prompt_name
from .prompts import Prompt
from .tables import labels as labels_table
from .tables import prompts as prompts_table
from .tables import versions as versions_table

_P = prompts_table.c
_L = labels_table.c
_V = versions_table.c


def prompts_query(
    *,
    folder: str | None = None,
    search: str | None = None,
    include_archived: bool = False,
) -> sa.Select[Any]:
    """The prompts that match, sorted by name (a folder holds its sub-folders' prompts)."""
    query = sa.select(prompts_table).order_by(_P.name)
    if not include_archived:
        query = query.where(_P.archived_at.is_(None))
    if folder:
        query = query.where(_P.name.startswith(folder.rstrip("/") + "/", autoescape=True))
    if search:
        query = query.where(_P.name.contains(search, autoescape=True))
    return query


def list_prompts(db: Database, query: sa.Select[Any]) -> list[Prompt]:
    """Run a query over the prompts table and attach the labels of the prompts it found."""
    with db.consistent() as conn:
        rows = conn.execute(query).all()
        labels: dict[int, dict[str, int]] = {}
        if rows:
            ids = query.with_only_columns(_P.id).order_by(None)
            for prompt_id, label_name, version in conn.execute(
                sa.select(_L.prompt_id, _L.name, _V.version)
                .join(versions_table, _V.id == _L.version_id)
                .where(_L.prompt_id.in_(ids))
            ):
                labels.setdefault(prompt_id, {})[label_name] = version
    return [
        Prompt(
            name=r.name,
            description=r.description,
            tags=list(r.tags or []),
            labels=dict(sorted(labels.get(r.id, {}).items())),
            latest_version=r.latest_version,
            created_at=r.created_at,
            updated_at=r.updated_at,
            archived=r.archived_at is not None,
        )
        for r in rows
    ]


def prompts(
    db: Database,
    *,
    folder: str | None = None,
    tag: str | None = None,
    search: str | None = None,
    include_archived: bool = False,
) -> list[Prompt]:
    """See :meth:`registry.Registry.prompts`."""
    query = prompts_query(folder=folder, search=search, include_archived=include_archived)
    out = list_prompts(db, query)
    if tag:
        out = [p for p in out if tag in p.tags]
    return out


def prompt(db: Database, name: str) -> Prompt:
    """One prompt with its labels, archived or not (``NotFound`` when there is none)."""
    found = list_prompts(db, sa.select(prompts_table).where(_P.name == name))
    if found:
        return found[0]
    check_prompt_name(name)
    with db.engine.connect() as conn:
        raise missing_prompt(conn, name)


__all__ = ["Prompt", "list_prompts", "prompt", "prompts", "prompts_query"]
