"""Read-only queries behind the prompt pages: one page of rows at a time, on indexed columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ...models import LabelEventRow, LabelRow, PromptRow, VersionRow
from ...registry import Registry
from .pagination import Page, offset_of


@dataclass(frozen=True)
class PromptListItem:
    """One row of the prompts list."""

    name: str
    description: str
    tags: list[str]
    latest_version: int
    updated_at: datetime
    author: str
    labels: dict[str, int]
    archived: bool

    @property
    def folder(self) -> str:
        """``team`` for ``team/name``."""
        return self.name.rpartition("/")[0]


@dataclass(frozen=True)
class VersionListItem:
    """One row of a prompt's versions table."""

    version: int
    message: str
    author: str
    created_at: datetime
    model: str
    labels: list[str]


@dataclass(frozen=True)
class LabelState:
    """Where a label of a prompt points now."""

    name: str
    version: int
    updated_at: datetime
    updated_by: str


def _tag_clause(reg: Registry, tag: str) -> Any:
    """``tags`` (a JSON list) contains ``tag``, in SQL on each engine."""
    if reg.db.dialect == "postgresql":
        return sa.cast(PromptRow.tags, sa.dialects.postgresql.JSONB).contains([tag])
    each = sa.func.json_each(PromptRow.tags).table_valued("value").alias("tag_each")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == tag))


def list_prompts(
    reg: Registry,
    *,
    search: str = "",
    folder: str = "",
    tag: str = "",
    archived: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> Page[PromptListItem]:
    """A page of prompts sorted by name, filtered by name/description text, folder and tag."""
    where: list[Any] = [
        PromptRow.archived_at.is_not(None) if archived else PromptRow.archived_at.is_(None)
    ]
    if search:
        needle = search.strip().lower()
        where.append(
            sa.or_(
                sa.func.lower(PromptRow.name).contains(needle, autoescape=True),
                sa.func.lower(PromptRow.description).contains(needle, autoescape=True),
            )
        )
    if folder:
        where.append(PromptRow.name.startswith(folder.strip("/") + "/", autoescape=True))
    if tag:
        where.append(_tag_clause(reg, tag))
    newest = sa.orm.aliased(VersionRow)
    with reg.db.snapshot() as s:
        total = s.scalar(sa.select(sa.func.count()).select_from(PromptRow).where(*where)) or 0
        rows = s.execute(
            sa.select(
                PromptRow.id,
                PromptRow.name,
                PromptRow.description,
                PromptRow.tags,
                PromptRow.latest_version,
                PromptRow.updated_at,
                PromptRow.archived_at,
                newest.author,
            )
            .outerjoin(
                newest,
                sa.and_(
                    newest.prompt_id == PromptRow.id, newest.version == PromptRow.latest_version
                ),
            )
            .where(*where)
            .order_by(PromptRow.name)
            .limit(per_page)
            .offset(offset_of(page, per_page))
        ).all()
        labels: dict[int, dict[str, int]] = {}
        ids = [r.id for r in rows]
        if ids:
            for prompt_id, label, version in s.execute(
                sa.select(LabelRow.prompt_id, LabelRow.name, VersionRow.version)
                .join(VersionRow, VersionRow.id == LabelRow.version_id)
                .where(LabelRow.prompt_id.in_(ids))
            ):
                labels.setdefault(prompt_id, {})[label] = version
    items = [
        PromptListItem(
            name=r.name,
            description=r.description or "",
            tags=list(r.tags or []),
            latest_version=r.latest_version,
            updated_at=r.updated_at,
            author=r.author or "",
            labels=dict(sorted(labels.get(r.id, {}).items())),
            archived=r.archived_at is not None,
        )
        for r in rows
    ]
    return Page(items, page, per_page, int(total))


def folders_and_tags(reg: Registry) -> tuple[list[str], list[str]]:
    """Every folder and tag in use (for the list filters); reads two narrow columns."""
    folders: set[str] = set()
    tags: set[str] = set()
    with reg.db.snapshot() as s:
        for name, row_tags in s.execute(
            sa.select(PromptRow.name, PromptRow.tags).where(PromptRow.archived_at.is_(None))
        ):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folders.add("/".join(parts[:i]))
            tags.update(t for t in (row_tags or []) if isinstance(t, str))
    return sorted(folders), sorted(tags)


def label_states(reg: Registry, name: str) -> list[LabelState]:
    """The prompt's labels, sorted by name."""
    with reg.db.snapshot() as s:
        rows = s.execute(
            sa.select(LabelRow.name, VersionRow.version, LabelRow.updated_at, LabelRow.updated_by)
            .join(VersionRow, VersionRow.id == LabelRow.version_id)
            .join(PromptRow, PromptRow.id == LabelRow.prompt_id)
            .where(PromptRow.name == name)
            .order_by(LabelRow.name)
        ).all()
    return [LabelState(r.name, r.version, r.updated_at, r.updated_by or "") for r in rows]


def list_versions(
    reg: Registry, name: str, *, page: int = 1, per_page: int = 25
) -> Page[VersionListItem]:
    """A page of the prompt's versions, newest first, with the labels on each."""
    with reg.db.snapshot() as s:
        pid = s.scalar(sa.select(PromptRow.id).where(PromptRow.name == name))
        if pid is None:
            return Page([], page, per_page, 0)
        total = (
            s.scalar(
                sa.select(sa.func.count())
                .select_from(VersionRow)
                .where(VersionRow.prompt_id == pid)
            )
            or 0
        )
        rows = s.execute(
            sa.select(
                VersionRow.id,
                VersionRow.version,
                VersionRow.message,
                VersionRow.author,
                VersionRow.created_at,
                VersionRow.settings,
            )
            .where(VersionRow.prompt_id == pid)
            .order_by(VersionRow.version.desc())
            .limit(per_page)
            .offset(offset_of(page, per_page))
        ).all()
        on_version: dict[int, list[str]] = {}
        for label, version_id in s.execute(
            sa.select(LabelRow.name, LabelRow.version_id).where(LabelRow.prompt_id == pid)
        ):
            on_version.setdefault(version_id, []).append(label)
    items = [
        VersionListItem(
            version=r.version,
            message=r.message or "",
            author=r.author or "",
            created_at=r.created_at,
            model=str((r.settings or {}).get("model", "")),
            labels=sorted(on_version.get(r.id, [])),
        )
        for r in rows
    ]
    return Page(items, page, per_page, int(total))


def version_numbers(reg: Registry, name: str, *, limit: int = 500) -> list[int]:
    """The newest ``limit`` version numbers of a prompt, newest first (for pickers)."""
    with reg.db.snapshot() as s:
        return list(
            s.scalars(
                sa.select(VersionRow.version)
                .join(PromptRow, PromptRow.id == VersionRow.prompt_id)
                .where(PromptRow.name == name)
                .order_by(VersionRow.version.desc())
                .limit(limit)
            )
        )


@dataclass(frozen=True)
class HistoryItem:
    """One label move as the history page shows it."""

    id: int
    label: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    kind: str
    release_id: str | None
    created_at: datetime


def label_events(
    reg: Registry, name: str, *, label: str = "", page: int = 1, per_page: int = 50
) -> Page[HistoryItem]:
    """A page of the prompt's label moves, newest first (index on prompt_id, label, id)."""
    with reg.db.snapshot() as s:
        pid = s.scalar(sa.select(PromptRow.id).where(PromptRow.name == name))
        if pid is None:
            return Page([], page, per_page, 0)
        where = [LabelEventRow.prompt_id == pid]
        if label:
            where.append(LabelEventRow.label == label)
        total = s.scalar(sa.select(sa.func.count()).select_from(LabelEventRow).where(*where)) or 0
        rows = s.scalars(
            sa.select(LabelEventRow)
            .where(*where)
            .order_by(LabelEventRow.id.desc())
            .limit(per_page)
            .offset(offset_of(page, per_page))
        ).all()
        items = [
            HistoryItem(
                id=e.id,
                label=e.label,
                from_version=e.from_version,
                to_version=e.to_version,
                actor=e.actor or "",
                reason=e.reason or "",
                kind=e.kind,
                release_id=e.release_id,
                created_at=e.created_at,
            )
            for e in rows
        ]
    return Page(items, page, per_page, int(total))


@dataclass(frozen=True)
class PromptInfo:
    """The prompt itself (not versioned): description, tags, newest version, archived."""

    name: str
    description: str
    tags: list[str]
    latest_version: int
    created_at: datetime
    updated_at: datetime
    archived: bool


def prompt_info(reg: Registry, name: str) -> PromptInfo | None:
    """One prompt by name (unique index), or None."""
    with reg.db.snapshot() as s:
        row = s.scalars(sa.select(PromptRow).where(PromptRow.name == name)).one_or_none()
        if row is None:
            return None
        return PromptInfo(
            name=row.name,
            description=row.description or "",
            tags=list(row.tags or []),
            latest_version=row.latest_version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            archived=row.archived_at is not None,
        )
