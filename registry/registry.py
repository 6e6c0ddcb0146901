"""``Registry``: the service apps and editors use. Storage, caching and rules live behind it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import config
from .db import Database
from .errors import ConflictError, NotFound, PermissionDenied, ValidationError
from .labels import (
    LabelEvent,
    LabelGuard,
    LabelMove,
    MoveRequest,
    delete_label,
    label_history,
    lock_prompt,
    missing_prompt,
    move_labels,
)
from .names import DEFAULT_LABEL, LATEST, check_label_name, check_prompt_name
from .rendering import (
    MAX_INCLUDE_DEPTH,
    CompiledPrompt,
    IncludeRef,
    Rendered,
    include_source,
    make_environment,
)
from .tables import labels as labels_table
from .tables import prompts as prompts_table
from .tables import utcnow
from .tables import versions as versions_table
from .versions import PromptVersion, VersionContent, check_commit_fields, validate_content

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .diff import VersionDiff
    from .models import PromptRow
    from .runner import Runner, RunResult

VERSION_CACHE_SIZE = 4096

# the read path uses SQLAlchemy Core only: apps that just fetch and render never load the ORM
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


@dataclass(frozen=True)
class Prompt:
    """A prompt as listed: name, description, tags, labels (label -> version) and newest version."""

    name: str
    description: str
    tags: list[str]
    labels: dict[str, int]
    latest_version: int
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    @property
    def folder(self) -> str:
        """The folder part of a ``team/name`` prompt name ('' at the top level)."""
        return self.name.rpartition("/")[0]


@dataclass(frozen=True)
class Release:
    """An atomic move of one label on several prompts, audited under one release id."""

    id: str
    label: str
    moves: list[LabelMove]


class Registry:
    """Versioned prompts in SQL: create, fetch, render, label, diff, release, run.

    >>> reg = Registry("sqlite:///registry.db")                     # doctest: +SKIP
    >>> reg.get("support-answer").render(question="Hi").to_request()  # doctest: +SKIP

    ``url`` defaults to ``REGISTRY_DATABASE_URL`` or ``sqlite:///registry.db``. An embedded
    SQLite database is created or upgraded on first use; any other database must have been
    upgraded with ``prompt-registry db upgrade`` (the error says so).
    ``cache_ttl`` is how long a resolved label is trusted in this process (default
    ``REGISTRY_CACHE_TTL`` or 1 s); moves made through this instance are seen at once.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        cache_ttl: float | None = None,
        auto_upgrade: bool | None = None,
        **engine_kwargs: Any,
    ) -> None:
        self.db = Database(url or config.database_url(), **engine_kwargs)
        self.db.ensure_schema(
            auto_upgrade=self.db.is_sqlite if auto_upgrade is None else auto_upgrade
        )
        self.cache_ttl = config.cache_ttl() if cache_ttl is None else cache_ttl
        self.label_guards: list[LabelGuard] = []
        self.label_listeners: list[Callable[[str, str | None], None]] = []
        #: called with every ``RunResult`` after its run row is written (e.g. guardrails)
        self.run_listeners: list[Callable[[Any], None]] = []
        self.label_guards.append(self._suite_gate)
        self._env = make_environment(self._resolve_include)
        self._label_cache: dict[tuple[str, str], tuple[float, PromptVersion]] = {}
        self._version_cache: dict[tuple[str, int], PromptVersion] = {}
        self._lock = threading.Lock()
        self._runner: Runner | None = None
        self._extensions: dict[str, Any] = {}
        if self.db.dialect == "postgresql":  # label moves reach every process (LISTEN/NOTIFY)
            from .notify import install_notifier

            install_notifier(self)

    def __repr__(self) -> str:
        return f"<Registry {self.db.url.render_as_string(hide_password=True)}>"

    def close(self) -> None:
        """Release database connections and background resources."""
        for ext in self._extensions.values():
            close = getattr(ext, "close", None)
            if callable(close):
                close()
        if self._runner is not None:
            self._runner.close()
        self.db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def extension(self, key: str, factory: Callable[[Registry], Any]) -> Any:
        """A per-registry singleton (runner, experiments, suites...) created on first use."""
        ext = self._extensions.get(key)
        if ext is None:
            with self._lock:
                ext = self._extensions.get(key)
                if ext is None:
                    ext = factory(self)
                    self._extensions[key] = ext
        return ext

    # -- fetching --------------------------------------------------------------------------

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> PromptVersion:
        """Fetch a version by label (default ``production``), by number, or ``latest``.

        With ``unit_id`` and a running experiment on the prompt, the unit's variant is served.
        A label and a version together are an error.
        """
        if version is not None:
            if label is not None:
                raise ValidationError("give a label or a version, not both", field="version")
            return self._get_version(name, version)
        if unit_id is not None:
            # hot path for experiments: call the runtime directly once it exists
            unit = unit_id if type(unit_id) is str else str(unit_id)
            runtime = self._extensions.get("experiments")
            assigned = (
                runtime.assign(name, unit, label)
                if runtime is not None
                else self._assigned_version(name, unit, label)
            )
            if assigned is not None:
                return assigned
        key = (name, label or DEFAULT_LABEL)
        entry = self._label_cache.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            return entry[1]
        found = self._fetch_by_label(name, key[1])
        if self.cache_ttl > 0:
            self._label_cache[key] = (now + self.cache_ttl, found)
        return found

    def _suite_gate(self, session: Session, move: LabelMove) -> None:
        """Protected labels only move to versions whose regression suite passed."""
        from .suites import gate  # loaded on the first label move, not at import

        gate(self, session, move)

    def _assigned_version(self, name: str, unit_id: str, label: str | None) -> PromptVersion | None:
        """The experiment variant for ``unit_id``, or None when no experiment applies."""
        # only the first call lands here: it creates the experiments runtime, which ``get``
        # then calls directly
        from .experiments import assigned_version

        return assigned_version(self, name, unit_id, label)

    def render(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
    ) -> Rendered:
        """``get`` then ``render`` in one call."""
        return self.get(name, label=label, version=version, unit_id=unit_id).render(variables or {})

    def _row_to_version(self, name: str, row: Any) -> PromptVersion:
        key = (name, row.version)
        cached = self._version_cache.get(key)
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
        if len(self._version_cache) >= VERSION_CACHE_SIZE:
            self._version_cache.clear()
        self._version_cache[key] = found
        return found

    def _fetch_by_label(self, name: str, label: str) -> PromptVersion:
        if label == LATEST:
            stmt, params = _LATEST, {"name": name}
        else:
            stmt, params = _BY_LABEL, {"name": name, "label": label}
        with self.db.engine.connect() as conn:
            row = conn.execute(stmt, params).first()
        if row is None:
            self._explain_missing(name, label=label)
        assert row is not None
        return self._row_to_version(name, row)

    def _get_version(self, name: str, version: int) -> PromptVersion:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValidationError(
                f"version must be a positive integer, got {version!r}", field="version"
            )
        cached = self._version_cache.get((name, version))
        if cached is not None:
            return cached
        with self.db.engine.connect() as conn:
            row = conn.execute(_BY_VERSION, {"name": name, "version": version}).first()
        if row is None:
            self._explain_missing(name, version=version)
        assert row is not None
        return self._row_to_version(name, row)

    def _explain_missing(
        self, name: str, *, label: str | None = None, version: int | None = None
    ) -> None:
        from .models import LabelRow, PromptRow

        check_prompt_name(name)
        if label is not None:
            check_label_name(label)
        with self.db.snapshot() as s:
            prompt = s.scalars(sa.select(PromptRow).where(PromptRow.name == name)).one_or_none()
            if prompt is None:
                raise missing_prompt(s, name)
            if version is not None:
                raise NotFound(
                    f"prompt {name!r} has no version {version} "
                    f"(its newest is {prompt.latest_version})",
                    prompt=name,
                    version=version,
                )
            labels = s.scalars(
                sa.select(LabelRow.name)
                .where(LabelRow.prompt_id == prompt.id)
                .order_by(LabelRow.name)
            ).all()
        have = ", ".join(labels) if labels else "none"
        raise NotFound(
            f"prompt {name!r} has no label {label!r} (labels: {have}; 'latest' is always there); "
            f"set it with `prompt-registry label {name} {label} VERSION`",
            prompt=name,
            label=label,
        )

    def _labels_of(self, v: PromptVersion) -> list[str]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_L.name).where(_L.version_id == v.id).order_by(_L.name)
            ).scalars()
            return list(rows)

    # -- rendering and composition ------------------------------------------------------------

    def _compile(self, v: PromptVersion) -> CompiledPrompt:
        return CompiledPrompt(
            self._env,
            name=v.name,
            version=v.version,
            system=v.system,
            messages=v.messages,
            settings=v.settings,
            contract=v.variables,
        )

    def _resolve_include(self, ref: IncludeRef) -> tuple[str, Callable[[], bool]]:
        if ref.version is not None:
            target = self._get_version(ref.name, ref.version)
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

    def _include_graph(
        self,
        root: str,
        content: VersionContent,
        *,
        root_version: int | None = None,
        overrides: Mapping[tuple[str, str], int | None] | None = None,
    ) -> frozenset[str]:
        """Check includes reachable from ``content``: they exist, no cycle, depth bounded.

        Nodes are (prompt, version); ``root_version`` None stands for content not saved yet.
        ``overrides`` pretends labels already point elsewhere (None: at the root content), so a
        label move or a save with labels is checked as if it had happened.
        Returns the variables the included templates read (the includer must declare them).
        """
        overrides = overrides or {}
        used: set[str] = set()

        def walk(content: VersionContent, path: tuple[tuple[str, int | None], ...]) -> None:
            _, includes = content.analyze()
            for ref in includes:
                label = ref.label or DEFAULT_LABEL
                version: int | None
                if ref.version is not None:
                    version = ref.version
                elif (ref.name, label) in overrides:
                    version = overrides[(ref.name, label)]
                else:
                    try:
                        version = self._fetch_by_label(ref.name, label).version
                    except NotFound as exc:
                        raise ValidationError(
                            f"included prompt {str(ref)!r} cannot be resolved: {exc.message}",
                            field="messages",
                        ) from None
                node = (ref.name, version)
                if ref.name == root and version == root_version:
                    node = (root, root_version)
                if node in path:
                    chain = " -> ".join(
                        f"{n}@{v}" if v is not None else n for n, v in (*path, node)
                    )
                    raise ValidationError(f"include cycle: {chain}", field="messages")
                if len(path) > MAX_INCLUDE_DEPTH:
                    raise ValidationError(
                        f"includes nest deeper than {MAX_INCLUDE_DEPTH}: "
                        + " -> ".join(n for n, _ in path),
                        field="messages",
                    )
                if version is None:  # the root content itself (cycle caught above)
                    continue
                try:
                    target = self._get_version(ref.name, version)
                except NotFound as exc:
                    raise ValidationError(
                        f"included prompt {str(ref)!r} cannot be resolved: {exc.message}",
                        field="messages",
                    ) from None
                inner = target.content()
                used.update(inner.analyze()[0])
                walk(inner, (*path, node))

        walk(content, ((root, root_version),))
        return frozenset(used)

    def _check_includers(self, moves: Mapping[tuple[str, str], int]) -> None:
        """Labelled versions that include a moved label must still render after the move.

        Finds them by the prompt name in their templates, then re-checks their include graph
        as if the moves had happened: no cycle, depth bounded, every variable the new included
        text reads declared by the includer. Raises ``ValidationError`` naming the includer.
        """
        for includer, number, refs in self._includers_of({n for n, _ in moves}):
            if not any(
                ref.version is None and (ref.name, ref.label or DEFAULT_LABEL) in moves
                for ref in refs
            ):
                continue
            found = self._get_version(includer, number)
            try:
                used = self._include_graph(
                    includer, found.content(), root_version=number, overrides=dict(moves)
                )
            except ValidationError as exc:
                raise ValidationError(
                    f"this move would break {includer} v{number}: {exc.message}",
                    field="version",
                ) from None
            missing = sorted(used - set(found.variables))
            if missing:
                raise ValidationError(
                    f"this move would break {includer} v{number}, which includes it: its "
                    "contract does not declare " + ", ".join(repr(v) for v in missing),
                    field="version",
                )

    def _includers_of(self, names: set[str]) -> list[tuple[str, int, tuple[IncludeRef, ...]]]:
        """Labelled versions whose templates include one of ``names``: (prompt, version, refs)."""
        text = sa.cast(_V.messages, sa.Text)
        query = (
            sa.select(_P.name, _V.version)
            .select_from(
                versions_table.join(labels_table, _L.version_id == _V.id).join(
                    prompts_table, _P.id == _V.prompt_id
                )
            )
            .where(
                sa.or_(
                    *(
                        sa.or_(
                            _V.system.contains(n, autoescape=True),
                            text.contains(n, autoescape=True),
                        )
                        for n in sorted(names)
                    )
                )
            )
            .distinct()
        )
        with self.db.engine.connect() as conn:
            candidates = conn.execute(query).all()
        out = []
        for includer, number in candidates:
            refs = self._get_version(includer, number).content().analyze()[1]
            if any(ref.name in names for ref in refs):
                out.append((includer, number, refs))
        return out

    # -- writing ----------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        system: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        settings: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        message: str = "",
        author: str = "",
        labels: Iterable[str] = (),
        description: str | None = None,
        tags: Sequence[str] | None = None,
        created_at: datetime | None = None,
        check_includes: bool = True,
    ) -> PromptVersion:
        """Save a new immutable version (creating the prompt on first use).

        Content identical to the newest version creates nothing and returns that version.
        ``labels`` are pointed at the new version (audited); on identical content only labels
        that do not exist yet are set. ``description`` and ``tags`` update the prompt itself.
        Raises ``ValidationError`` (naming the field) and writes nothing on bad input.
        ``check_includes=False`` skips resolving included prompts (used when restoring an
        export, whose prompts may arrive before the ones they include).
        """
        from .models import LabelRow, VersionRow

        check_prompt_name(name)
        content = validate_content(
            system=system,
            messages=list(messages) if messages is not None else None,
            settings=dict(settings) if settings is not None else None,
            variables=variables,
            output_schema=output_schema,
        )
        message, author = check_commit_fields(message, author)
        label_list = [check_label_name(lbl, settable=True) for lbl in labels]
        tag_list = _check_tags(tags)
        if description is not None and not isinstance(description, str):
            raise ValidationError("description must be a string", field="description")
        included_vars = (
            self._include_graph(name, content, overrides={(name, lbl): None for lbl in label_list})
            if check_includes
            else frozenset()
        )
        missing = sorted(included_vars - set(content.variables))
        if missing:
            raise ValidationError(
                "included prompts use variable(s) "
                + ", ".join(repr(v) for v in missing)
                + " that this prompt's contract does not declare",
                field="variables",
            )
        digest = content.content_hash()
        with self.db.transaction() as s:
            prompt = self._lock_or_create_prompt(s, name)
            if prompt.archived_at is not None:
                raise ValidationError(
                    f"prompt {name!r} is archived: unarchive it before adding versions"
                )
            if description is not None:
                prompt.description = description
            if tag_list is not None:
                prompt.tags = tag_list
            newest = s.scalars(
                sa.select(VersionRow).where(
                    VersionRow.prompt_id == prompt.id, VersionRow.version == prompt.latest_version
                )
            ).one_or_none()
            created = newest is None or newest.content_hash != digest
            if created:
                prompt.latest_version += 1
                row = VersionRow(
                    prompt_id=prompt.id,
                    version=prompt.latest_version,
                    system=content.system,
                    messages=content.messages,
                    settings=content.settings,
                    variables=content.variables,
                    output_schema=content.output_schema,
                    content_hash=digest,
                    message=message,
                    author=author,
                    created_at=created_at or utcnow(),
                )
                s.add(row)
                prompt.updated_at = utcnow()
                s.flush()
            else:
                assert newest is not None
                row = newest
            wanted = label_list
            if not created:
                existing = set(
                    s.scalars(sa.select(LabelRow.name).where(LabelRow.prompt_id == prompt.id))
                )
                wanted = [lbl for lbl in label_list if lbl not in existing]
            if wanted:
                move_labels(
                    s,
                    [MoveRequest(name, lbl, row.version) for lbl in wanted],
                    actor=author,
                    reason=message or f"saved as version {row.version}",
                    guards=self.label_guards,
                )
            result = self._row_to_version(name, row)
        self.invalidate(name)
        return result

    def _lock_or_create_prompt(self, s: Session, name: str) -> PromptRow:
        from .models import PromptRow

        row = s.scalars(
            sa.select(PromptRow).where(PromptRow.name == name).with_for_update()
        ).one_or_none()
        if row is not None:
            return row
        now = utcnow()
        values = {
            "name": name,
            "description": "",
            "tags": [],
            "latest_version": 0,
            "created_at": now,
            "updated_at": now,
        }
        insert: Any
        if self.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        s.execute(
            insert(PromptRow).values(**values).on_conflict_do_nothing(index_elements=["name"])
        )
        return s.scalars(sa.select(PromptRow).where(PromptRow.name == name).with_for_update()).one()

    def set_label(
        self,
        name: str,
        label: str,
        version: int,
        *,
        actor: str = "",
        expected_version: int | None = None,
        reason: str = "",
        override: bool = False,
    ) -> PromptVersion:
        """Point ``label`` at ``version``, audited; compare-and-set with ``expected_version``.

        ``expected_version`` is the version the caller believes the label is at (0: unset);
        a mismatch raises ``ConflictError`` and changes nothing. ``override`` is recorded in
        the audit when an admin bypasses a guard (such as the regression-suite gate).
        """
        check_prompt_name(name)
        check_label_name(label, settable=True)
        reason, actor = check_commit_fields(reason, actor)
        if expected_version is not None and (
            not isinstance(expected_version, int)
            or isinstance(expected_version, bool)
            or expected_version < 0
        ):
            raise ValidationError("expected_version must be 0 (unset) or a version number")
        target = self._get_version(name, version)
        self._include_graph(
            name, target.content(), root_version=version, overrides={(name, label): version}
        )
        self._check_includers({(name, label): version})
        with self.db.transaction() as s:
            move_labels(
                s,
                [MoveRequest(name, label, version, expected_version)],
                actor=actor,
                reason=reason,
                guards=self.label_guards,
                override=override,
            )
        self.invalidate(name, label)
        return target

    def rollback_label(
        self, name: str, label: str, *, actor: str = "", reason: str = ""
    ) -> PromptVersion:
        """Move ``label`` back to the version it pointed at before its last move."""
        history = [e for e in self.label_history(name, label) if e.kind != "delete"]
        if not history or history[-1].from_version is None:
            raise ConflictError(
                f"label {label!r} of {name!r} has no earlier version to roll back to"
            )
        last = history[-1]
        previous = last.from_version
        assert previous is not None
        with self.db.transaction() as s:
            move_labels(
                s,
                [MoveRequest(name, label, previous, last.to_version)],
                actor=actor,
                reason=reason or f"roll back from version {last.to_version}",
                guards=self.label_guards,
                kind="rollback",
            )
        self.invalidate(name, label)
        return self._get_version(name, previous)

    def delete_label(
        self, name: str, label: str, *, actor: str = "", reason: str = "", override: bool = False
    ) -> None:
        """Remove a label from a prompt (audited).

        A protected label (``REGISTRY_PROTECTED_LABELS``, default ``production``) is what apps
        fetch: deleting it needs ``override=True`` and a reason. A label that a labelled
        version of another prompt includes cannot be deleted.
        """
        check_prompt_name(name)
        check_label_name(label, settable=True)
        reason, actor = check_commit_fields(reason, actor)
        if label in config.protected_labels() and not (override and reason.strip()):
            raise PermissionDenied(
                f"label {label!r} is protected: apps fetch it, so deleting it breaks them; "
                "pass override=True with a reason if you really mean it"
            )
        for includer, number, refs in self._includers_of({name}):
            if any(
                r.version is None and (r.name, r.label or DEFAULT_LABEL) == (name, label)
                for r in refs
            ):
                raise ValidationError(
                    f"{includer} v{number} includes {name}@{label}: move or delete that first"
                )
        with self.db.transaction() as s:
            delete_label(s, name, label, actor=actor, reason=reason)
        self.invalidate(name, label)

    def release(
        self,
        versions: Mapping[str, int],
        *,
        label: str = DEFAULT_LABEL,
        actor: str = "",
        reason: str = "",
        expected: Mapping[str, int] | None = None,
    ) -> Release:
        """Move ``label`` of several prompts in one transaction: all move or none does.

        Each move is audited with the same release id, so an agent built from several prompts
        ships (and can be traced) as one unit.
        """
        if not versions:
            raise ValidationError("a release needs at least one prompt and version")
        reason, actor = check_commit_fields(reason, actor)
        check_label_name(label, settable=True)
        for name, version in versions.items():
            target = self._get_version(name, version)
            self._include_graph(
                name,
                target.content(),
                root_version=version,
                overrides={(n, label): v for n, v in versions.items()},
            )
        self._check_includers({(n, label): v for n, v in versions.items()})
        release_id = uuid.uuid4().hex
        expected = expected or {}
        with self.db.transaction() as s:
            moves = move_labels(
                s,
                [MoveRequest(n, label, v, expected.get(n)) for n, v in versions.items()],
                actor=actor,
                reason=reason,
                guards=self.label_guards,
                release_id=release_id,
            )
        for name in versions:
            self.invalidate(name, label)
        return Release(id=release_id, label=label, moves=moves)

    def archive(self, name: str, *, actor: str = "") -> None:
        """Archive a prompt: hidden from lists, read-only, still served to apps."""
        self._set_archived(name, utcnow())

    def unarchive(self, name: str, *, actor: str = "") -> None:
        """Bring an archived prompt back."""
        self._set_archived(name, None)

    def _set_archived(self, name: str, when: datetime | None) -> None:
        check_prompt_name(name)
        with self.db.transaction() as s:
            prompt = lock_prompt(s, name)
            prompt.archived_at = when
        self.invalidate(name)

    def update_prompt(
        self, name: str, *, description: str | None = None, tags: Sequence[str] | None = None
    ) -> None:
        """Change a prompt's description or tags (not versioned)."""
        tag_list = _check_tags(tags)
        with self.db.transaction() as s:
            prompt = lock_prompt(s, name)
            if description is not None:
                prompt.description = description
            if tag_list is not None:
                prompt.tags = tag_list

    # -- cache ------------------------------------------------------------------------------

    def invalidate(self, name: str | None = None, label: str | None = None) -> None:
        """Forget cached label resolutions (all, a prompt's, or one label's)."""
        if name is None:
            self._label_cache.clear()
        else:
            for key in list(self._label_cache):
                if key[0] == name and (label is None or key[1] in (label, LATEST)):
                    self._label_cache.pop(key, None)
        for listener in self.label_listeners:
            listener(name or "", label)

    # -- listing and history ----------------------------------------------------------------

    def prompts(
        self,
        *,
        folder: str | None = None,
        tag: str | None = None,
        search: str | None = None,
        include_archived: bool = False,
    ) -> list[Prompt]:
        """Prompts with their labels, sorted by name; filter by folder, tag or a name substring."""
        from .models import PromptRow

        query = sa.select(PromptRow).order_by(PromptRow.name)
        if not include_archived:
            query = query.where(PromptRow.archived_at.is_(None))
        if folder:
            query = query.where(
                PromptRow.name.startswith(folder.rstrip("/") + "/", autoescape=True)
            )
        if search:
            query = query.where(PromptRow.name.contains(search, autoescape=True))
        out = self._prompt_list(query)
        if tag:
            out = [p for p in out if tag in p.tags]
        return out

    def _prompt_list(self, query: sa.Select[Any]) -> list[Prompt]:
        """Run a prompts query and attach the labels of the prompts it found (two statements)."""
        from .models import LabelRow, VersionRow

        with self.db.snapshot() as s:
            rows = s.scalars(query).all()
            labels: dict[int, dict[str, int]] = {}
            for prompt_id, label_name, version in s.execute(
                sa.select(LabelRow.prompt_id, LabelRow.name, VersionRow.version)
                .join(VersionRow, VersionRow.id == LabelRow.version_id)
                .where(LabelRow.prompt_id.in_(query.with_only_columns(_P.id).order_by(None)))
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

    def prompt(self, name: str) -> Prompt:
        """One prompt with its labels (archived ones included)."""
        from .models import PromptRow

        found = self._prompt_list(sa.select(PromptRow).where(PromptRow.name == name))
        if found:
            return found[0]
        check_prompt_name(name)
        with self.db.engine.connect() as conn:
            raise missing_prompt(conn, name)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*_VERSION_COLUMNS)
                .select_from(versions_table.join(prompts_table, _P.id == _V.prompt_id))
                .where(_P.name == name)
                .order_by(_V.version)
            ).all()
        if not rows:
            self._explain_missing(name, label=LATEST)
        return [self._row_to_version(name, r) for r in rows]

    def label_history(self, name: str, label: str | None = None) -> list[LabelEvent]:
        """Audit of label moves of a prompt (or one label), oldest first."""
        with self.db.snapshot() as s:
            return label_history(s, name, label)

    def diff(self, name: str, old: int, new: int) -> VersionDiff:
        """What changed between two versions: template diffs, changed keys of the rest."""
        from .diff import diff_versions

        return diff_versions(self._get_version(name, old), self._get_version(name, new))

    # -- import, export, seed ---------------------------------------------------------------

    def export(
        self, path: str | Path | None = None, *, names: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Every prompt with its versions and labels; written as YAML or JSON to ``path``."""
        from .transfer import export_registry

        return export_registry(self, path, names=names)

    def import_(
        self, source: str | Path | Mapping[str, Any], *, actor: str = "import"
    ) -> dict[str, Any]:
        """Load an export (file or dict); versions already present are skipped."""
        from .transfer import import_registry

        return import_registry(self, source, actor=actor)

    def seed(self, directory: str | Path, *, author: str = "seed") -> list[tuple[str, int, bool]]:
        """Load every ``*.yaml`` prompt file of ``directory``; returns (name, version, created)."""
        from .prompt_files import seed_directory

        return seed_directory(self, Path(directory), author=author)

    # -- running (the runner lives in registry.runner) ---------------------------------------

    @property
    def runner(self) -> Runner:
        """The runner that calls the Anthropic Messages API for this registry."""
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    from .runner import Runner

                    self._runner = Runner(self)
        return self._runner

    def run(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> RunResult:
        """Render and run a prompt against the Messages API; logs one run row whatever happens."""
        return self.runner.run(
            name, variables, label=label, version=version, unit_id=unit_id, **options
        )

    def stream(
        self,
        name: str,
        variables: Mapping[str, Any] | None = None,
        *,
        label: str | None = None,
        version: int | None = None,
        unit_id: str | None = None,
        **options: Any,
    ) -> Iterator[str]:
        """Like ``run`` but yields text as it arrives; the iterator's ``result`` is the result."""
        return self.runner.stream(
            name, variables, label=label, version=version, unit_id=unit_id, **options
        )

    def feedback(self, run_id: str, name: str, value: float, *, comment: str = "") -> None:
        """Attach a score (thumbs up = 1.0, a rating...) to a run."""
        self.runner.feedback(run_id, name, value, comment=comment)


def _check_tags(tags: Sequence[str] | None) -> list[str] | None:
    if tags is None:
        return None
    if isinstance(tags, str) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        raise ValidationError("tags must be a list of short strings", field="tags")
    return sorted(set(tags))


__all__ = ["Prompt", "Registry", "Release"]
