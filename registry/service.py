"""``RegistryService``: the core of a registry: reads, writes, label moves and the hook points.

It composes the concept modules (:mod:`~registry.reading`, :mod:`~registry.writing`,
:mod:`~registry.includes`, :mod:`~registry.listing`, :mod:`~registry.hooks`) and knows no
capability. :class:`registry.Registry`, the class apps use, builds on it and wires the
capabilities (runner, experiments, suites, notifications) into its hooks. Capabilities take a
``RegistryService``, so they depend on the core and never on each other's wiring.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import config, listing
from .db import Database
from .hooks import Hooks
from .includes import IncludeGraph
from .labels import LabelEvent, Release
from .names import DEFAULT_LABEL
from .prompts import Prompt
from .reading import Reader
from .render_limits import RenderLimits
from .rendering import Rendered
from .versions import PromptVersion, VersionContent

if TYPE_CHECKING:
    from .diff import VersionDiff
    from .writing import Writer

T = TypeVar("T")


class RegistryService:
    """Versioned prompts in SQL: fetch, render, save, label, release, list, diff.

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
        #: where capabilities plug in (see :mod:`registry.hooks`)
        self.hooks = Hooks()
        self.reads = Reader(
            self.db, self.hooks, cache_ttl=config.cache_ttl() if cache_ttl is None else cache_ttl
        )
        self.includes = IncludeGraph(self.reads)
        self._writer: Writer | None = None
        self._components: dict[type[Any], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.db.url.render_as_string(hide_password=True)}>"

    @property
    def cache_ttl(self) -> float:
        """Seconds a resolved label is trusted in this process."""
        return self.reads.cache_ttl

    def close(self) -> None:
        """Release database connections, background threads and every component."""
        self.hooks.close()
        for component in list(self._components.values()):
            close = getattr(component, "close", None)
            if callable(close):
                close()
        self.db.dispose()

    def __enter__(self) -> RegistryService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def component(self, kind: type[T], factory: Callable[[RegistryService], T] | None = None) -> T:
        """The registry's one instance of ``kind`` (built with ``factory(self)`` or
        ``kind(self)`` on first use; closed by :meth:`close` when it has a ``close()``)."""
        found = self._components.get(kind)
        if found is None:
            with self._lock:
                found = self._components.get(kind)
                if found is None:
                    make = factory or cast("Callable[[RegistryService], T]", kind)
                    found = make(self)
                    self._components[kind] = found
        return cast(T, found)

    def has_component(self, kind: type[Any]) -> bool:
        """Whether :meth:`component` has built ``kind`` yet."""
        return kind in self._components

    @property
    def writes(self) -> Writer:
        """The write path (saves, label moves, releases, archives)."""
        writer = self._writer
        if writer is None:
            # lazy for cold start: writes load the ORM, which apps that only read never need
            from .writing import Writer

            with self._lock:
                if self._writer is None:
                    self._writer = Writer(self.db, self.reads, self.includes, self.hooks)
                writer = self._writer
        return writer

    # -- reading -------------------------------------------------------------------------

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
        return self.reads.get(name, label=label, version=version, unit_id=unit_id)

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

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first."""
        return self.reads.all_versions(name)

    def invalidate(self, name: str | None = None, label: str | None = None) -> None:
        """Forget cached label resolutions (all, a prompt's, or one label's)."""
        self.reads.invalidate(name, label)

    def prompts(
        self,
        *,
        folder: str | None = None,
        tag: str | None = None,
        search: str | None = None,
        include_archived: bool = False,
    ) -> list[Prompt]:
        """Prompts with their labels, sorted by name; filter by folder, tag or a name substring."""
        return listing.prompts(
            self.db, folder=folder, tag=tag, search=search, include_archived=include_archived
        )

    def prompt(self, name: str) -> Prompt:
        """One prompt with its labels (archived ones included)."""
        return listing.prompt(self.db, name)

    def label_history(self, name: str, label: str | None = None) -> list[LabelEvent]:
        """Audit of label moves of a prompt (or one label), oldest first."""
        # lazy for cold start: the audit is read with the ORM
        from .labels import label_history

        with self.db.snapshot() as s:
            return label_history(s, name, label)

    def diff(self, name: str, old: int, new: int) -> VersionDiff:
        """What changed between two versions: template diffs, changed keys of the rest."""
        # lazy for cold start: difflib and the diff rules are for editors, not apps
        from .diff import diff_versions

        return diff_versions(self.reads.by_version(name, old), self.reads.by_version(name, new))

    # -- writing -------------------------------------------------------------------------

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
        return self.writes.create_version(
            name,
            system=system,
            messages=messages,
            settings=settings,
            variables=variables,
            output_schema=output_schema,
            message=message,
            author=author,
            labels=labels,
            description=description,
            tags=tags,
            created_at=created_at,
            check_includes=check_includes,
        )

    def check_render(
        self,
        name: str,
        content: VersionContent,
        *,
        pending_cases: Iterable[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        """Dry-render unsaved content as a save does; ``RenderLimitExceeded`` names the case.

        Renders once with the contract's defaults (typed placeholders for required variables
        without one) and once with each test case the ``render_samples`` hooks give for the
        prompt (its regression cases), updated by ``pending_cases``: ``(name, variables)``
        about to be saved with the content, such as a prompt file's ``tests:``. Each render
        runs under :attr:`render_limits` with a deadline of at most
        ``SAVE_RENDER_TIMEOUT_MS``, so even a template that would never finish is refused fast.
        ``create_version`` calls it; seeds and imports call it before writing anything.
        """
        self.writes.check_render(name, content, pending_cases=pending_cases)

    @property
    def render_limits(self) -> RenderLimits:
        """The bounds every render of this registry runs under (``REGISTRY_RENDER_*``)."""
        return self.reads.env.limits

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
        return self.writes.set_label(
            name,
            label,
            version,
            actor=actor,
            expected_version=expected_version,
            reason=reason,
            override=override,
        )

    def rollback_label(
        self, name: str, label: str, *, actor: str = "", reason: str = ""
    ) -> PromptVersion:
        """Move ``label`` back to the version it pointed at before its last move."""
        return self.writes.rollback_label(name, label, actor=actor, reason=reason)

    def delete_label(
        self, name: str, label: str, *, actor: str = "", reason: str = "", override: bool = False
    ) -> None:
        """Remove a label from a prompt (audited).

        A protected label (``REGISTRY_PROTECTED_LABELS``, default ``production``) is what apps
        fetch: deleting it needs ``override=True`` and a reason. A label that a labelled
        version of another prompt includes cannot be deleted.
        """
        self.writes.delete_label(name, label, actor=actor, reason=reason, override=override)

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
        return self.writes.release(
            versions, label=label, actor=actor, reason=reason, expected=expected
        )

    def archive(self, name: str, *, actor: str = "", reason: str = "") -> None:
        """Archive a prompt: hidden from lists, read-only, still served to apps (audited)."""
        self.writes.set_archived(name, True, actor=actor, reason=reason)

    def unarchive(self, name: str, *, actor: str = "", reason: str = "") -> None:
        """Bring an archived prompt back (audited)."""
        self.writes.set_archived(name, False, actor=actor, reason=reason)

    def update_prompt(
        self, name: str, *, description: str | None = None, tags: Sequence[str] | None = None
    ) -> None:
        """Change a prompt's description or tags (not versioned)."""
        self.writes.update_prompt(name, description=description, tags=tags)


__all__ = ["RegistryService"]
