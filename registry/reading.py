"""The read path: resolve a label or a version to a :class:`PromptVersion`, with its caches.

SQLAlchemy Core only (the ORM is never imported here), so an app that only fetches and renders
prompts loads neither the ORM nor Alembic. Two caches live here:

- resolved labels, per ``(prompt, label)``, trusted for ``cache_ttl`` seconds (dropped at once
  by :meth:`Reader.invalidate` after a change made in this process, and by the PostgreSQL
  notifier after a change made in another one);
- versions, per ``(prompt, number)``: immutable, so kept until the cache is full, and shared
  with their compiled templates.

While the database is unreachable, ``get`` keeps serving the version each label resolved to
when it was last read, marked ``stale``, and asks the database again at most every
:data:`OUTAGE_RETRY_SECONDS`; the first successful read ends the outage by itself. A label
never read in this process raises :class:`~registry.errors.DatabaseUnavailable`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from .db import Database
from .errors import DatabaseUnavailable, NotFound, ValidationError
from .hooks import Hooks
from .labels import missing_prompt
from .names import DEFAULT_LABEL, LATEST, check_label_name, check_prompt_name
from .rendering import CompiledPrompt, IncludeRef, PromptSandbox, include_source, make_environment
from .tables import labels as labels_table
from .tables import prompts as prompts_table
from .tables import versions as versions_table
from .versions import PromptVersion

#: versions kept per registry (cleared when full: they are cheap to read again)
VERSION_CACHE_SIZE = 4096
#: while the database is down, how long ``get`` serves what it last saw before asking again
OUTAGE_RETRY_SECONDS = 1.0

log = logging.getLogger("registry.reading")

_V = versions_table.c
_P = prompts_table.c
_L = labels_table.c
_VERSION_COLUMNS = (
    _V.id,
    _V.version,
    _V.system,
    _V.messages,
    _V.settings,
    _V.variables,
    _V.output_schema,
    _V.content_hash,
    _V.message,
    _V.author,
    _V.created_at,
)
_BY_LABEL = (
    sa.select(*_VERSION_COLUMNS)
    .select_from(
        versions_table.join(labels_table, _L.version_id == _V.id).join(
            prompts_table, _P.id == _L.prompt_id
        )
    )
    .where(_P.name == sa.bindparam("name"), _L.name == sa.bindparam("label"))
)
_BY_VERSION = (
    sa.select(*_VERSION_COLUMNS)
    .select_from(versions_table.join(prompts_table, _P.id == _V.prompt_id))
    .where(_P.name == sa.bindparam("name"), _V.version == sa.bindparam("version"))
)
_LATEST = (
    sa.select(*_VERSION_COLUMNS)
    .select_from(versions_table.join(prompts_table, _P.id == _V.prompt_id))
    .where(_P.name == sa.bindparam("name"), _V.version == _P.latest_version)
)
_ALL_VERSIONS = (
    sa.select(*_VERSION_COLUMNS)
    .select_from(versions_table.join(prompts_table, _P.id == _V.prompt_id))
    .where(_P.name == sa.bindparam("name"))
    .order_by(_V.version)
)


def check_version_number(version: object) -> int:
    """Return ``version`` if it is a positive integer, else raise ``ValidationError``."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValidationError(
            f"version must be a positive integer, got {version!r}", field="version"
        )
    return version


class Reader:
    """Fetches versions for one registry: by label (cached ``cache_ttl`` s), number or latest."""

    def __init__(self, db: Database, hooks: Hooks, *, cache_ttl: float) -> None:
        self.db = db
        self.hooks = hooks
        self.cache_ttl = cache_ttl
        self.env: PromptSandbox = make_environment(self._resolve_include)
        #: ``(prompt, label)`` -> (monotonic expiry, version)
        self.label_cache: dict[tuple[str, str], tuple[float, PromptVersion]] = {}
        #: ``(prompt, number)`` -> version (immutable)
        self.version_cache: dict[tuple[str, int], PromptVersion] = {}
        #: ``(prompt, label)`` -> the version it resolved to at the last read (outage fallback)
        self.last_seen: dict[tuple[str, str], PromptVersion] = {}
        #: monotonic time before which the database is not asked again after an outage
        self.down_until = 0.0
        self._policies = hooks.serving_policies

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> PromptVersion:
        """See :meth:`registry.Registry.get`."""
        if version is not None:
            if label is not None:
                raise ValidationError("give a label or a version, not both", field="version")
            return self.by_version(name, version)
        if unit_id is not None and self._policies:
            unit = unit_id if type(unit_id) is str else str(unit_id)
            try:
                for policy in self._policies:
                    served = policy(name, unit, label)
                    if served is not None:
                        return served
            except DatabaseUnavailable:
                pass  # no experiment state: the label applies (last seen, while the outage lasts)
        key = (name, label or DEFAULT_LABEL)
        entry = self.label_cache.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            return entry[1]
        if now < self.down_until:
            seen = self.last_seen.get(key)
            if seen is not None:
                return seen.as_stale()
        try:
            found = self.by_label(name, key[1])
        except DatabaseUnavailable as exc:
            return self._outage(key, exc)
        except NotFound:
            self.last_seen.pop(key, None)
            raise
        if self.down_until:
            self.down_until = 0.0
            log.warning("the database is back: %s@%s read again", name, key[1])
        if self.cache_ttl > 0:
            self.label_cache[key] = (now + self.cache_ttl, found)
        if self.last_seen.get(key) is not found:
            if len(self.last_seen) >= VERSION_CACHE_SIZE:
                self.last_seen.clear()
            self.last_seen[key] = found
        return found

    def _outage(self, key: tuple[str, str], error: DatabaseUnavailable) -> PromptVersion:
        """Serve the version ``key`` last resolved to, marked stale; re-raise without one."""
        if not self.down_until:
            log.warning(
                "the database is unavailable: serving the versions last seen, marked stale "
                "(asking again every %g s)",
                OUTAGE_RETRY_SECONDS,
            )
        self.down_until = time.monotonic() + OUTAGE_RETRY_SECONDS
        seen = self.last_seen.get(key)
        if seen is None:
            raise error
        return seen.as_stale()

    def by_label(self, name: str, label: str) -> PromptVersion:
        """The version ``label`` (or ``latest``) points at now, from the database."""
        if label == LATEST:
            stmt, params = _LATEST, {"name": name}
        else:
            stmt, params = _BY_LABEL, {"name": name, "label": label}
        with self.db.engine.connect() as conn:
            row = conn.execute(stmt, params).first()
        if row is None:
            raise self.missing(name, label=label)
        return self.to_version(name, row)

    def by_version(self, name: str, version: int) -> PromptVersion:
        """Version number ``version`` of ``name`` (cached: versions never change)."""
        check_version_number(version)
        cached = self.version_cache.get((name, version))
        if cached is not None:
            return cached
        with self.db.engine.connect() as conn:
            row = conn.execute(_BY_VERSION, {"name": name, "version": version}).first()
        if row is None:
            raise self.missing(name, version=version)
        return self.to_version(name, row)

    def all_versions(self, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first (``NotFound`` for an unknown prompt)."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(_ALL_VERSIONS, {"name": name}).all()
        if not rows:
            raise self.missing(name, label=LATEST)
        return [self.to_version(name, r) for r in rows]

    def to_version(self, name: str, row: Any) -> PromptVersion:
        """A :class:`PromptVersion` for a row of the version columns (shared while cached)."""
        key = (name, row.version)
        cached = self.version_cache.get(key)
        if cached is not None and cached.id == row.id:
            return cached
        found = PromptVersion(
            id=row.id,
            name=name,
            version=row.version,
            system=row.system,
            messages=row.messages,
            settings=row.settings,
            variables=row.variables,
            output_schema=row.output_schema,
            content_hash=row.content_hash,
            message=row.message,
            author=row.author,
            created_at=row.created_at,
            compiler=self._compile,
            labels_of=self._labels_of,
        )
        if len(self.version_cache) >= VERSION_CACHE_SIZE:
            self.version_cache.clear()
        self.version_cache[key] = found
        return found

    def missing(
        self, name: str, *, label: str | None = None, version: int | None = None
    ) -> NotFound | ValidationError:
        """The error that says why ``name`` at ``label``/``version`` was not found."""
        try:
            check_prompt_name(name)
            if label is not None:
                check_label_name(label)
        except ValidationError as exc:
            return exc
        with self.db.consistent() as conn:
            prompt = conn.execute(
                sa.select(_P.id, _P.latest_version).where(_P.name == name)
            ).first()
            if prompt is None:
                return missing_prompt(conn, name)
            if version is not None:
                return NotFound(
                    f"prompt {name!r} has no version {version} "
                    f"(its newest is {prompt.latest_version})",
                    prompt=name,
                    version=version,
                )
            labels = (
                conn.execute(sa.select(_L.name).where(_L.prompt_id == prompt.id).order_by(_L.name))
                .scalars()
                .all()
            )
        have = ", ".join(labels) if labels else "none"
        return NotFound(
            f"prompt {name!r} has no label {label!r} (labels: {have}; 'latest' is always there); "
            f"set it with `prompt-registry label {name} {label} VERSION`",
            prompt=name,
            label=label,
        )

    def invalidate(self, name: str | None = None, label: str | None = None) -> None:
        """Forget cached label resolutions (all, a prompt's, or one label's), then tell the
        label listeners."""
        if name is None:
            self.label_cache.clear()
        else:
            for key in list(self.label_cache):
                if key[0] == name and (label is None or key[1] in (label, LATEST)):
                    self.label_cache.pop(key, None)
        self.hooks.labels_dropped(name or "", label)

    def clear(self) -> None:
        """Forget every cached label and version (the next reads go to the database)."""
        self.label_cache.clear()
        self.version_cache.clear()

    def _labels_of(self, v: PromptVersion) -> list[str]:
        try:
            with self.db.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(_L.name).where(_L.version_id == v.id).order_by(_L.name)
                ).scalars()
                return list(rows)
        except DatabaseUnavailable:  # the labels last seen pointing at it
            seen = list(self.last_seen.items())
            return sorted({label for (_, label), found in seen if found.id == v.id})

    # -- rendering and composition ------------------------------------------------------------

    def _compile(self, v: PromptVersion) -> CompiledPrompt:
        return CompiledPrompt(
            self.env,
            name=v.name,
            version=v.version,
            system=v.system,
            messages=v.messages,
            settings=v.settings,
            contract=v.variables,
        )

    def _resolve_include(self, ref: IncludeRef) -> tuple[str, Callable[[], bool]]:
        if ref.version is not None:
            target = self.by_version(ref.name, ref.version)
            return include_source(target.system, target.messages), lambda: True
        label = ref.label or DEFAULT_LABEL
        target = self.get(ref.name, label=label)
        target_id = target.id

        def uptodate() -> bool:
            try:
                return self.get(ref.name, label=label).id == target_id
            except LookupError:
                return False

        return include_source(target.system, target.messages), uptodate


__all__ = ["VERSION_CACHE_SIZE", "Reader", "check_version_number"]
