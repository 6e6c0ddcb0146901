"""The write path: save versions, move and delete labels, release, archive, edit prompts.

Every write checks its input and the include graph first, then runs in one transaction (the
label guards inside it), then drops the cached labels it changed and tells the listeners.
It uses the ORM, which the read path never loads: :class:`registry.Registry` imports this
module on the first write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import config
from .db import Database
from .errors import ConflictError, PermissionDenied, ValidationError
from .hooks import Hooks
from .includes import IncludeGraph
from .labels import (
    MoveRequest,
    Release,
    delete_label,
    label_history,
    lock_prompt,
    move_labels,
    record_prompt_event,
)
from .models import LabelRow, PromptRow, VersionRow
from .names import DEFAULT_LABEL, check_label_name, check_prompt_name
from .reading import Reader
from .rendering import CompiledPrompt
from .tables import utcnow
from .versions import (
    PromptVersion,
    VersionContent,
    check_commit_fields,
    dry_render,
    render_samples,
    validate_content,
)


class Writer:
    """The writes of one registry (reached through :class:`registry.Registry`)."""

    def __init__(self, db: Database, reader: Reader, includes: IncludeGraph, hooks: Hooks):
        self.db = db
        self.reader = reader
        self.includes = includes
        self.hooks = hooks

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
        """See :meth:`registry.Registry.create_version`."""
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
        tag_list = check_tags(tags)
        if description is not None and not isinstance(description, str):
            raise ValidationError("description must be a string", field="description")
        included_vars = (
            self.includes.check(name, content, overrides={(name, lbl): None for lbl in label_list})
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
        self.check_render(name, content)
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
                    guards=self.hooks.label_guards,
                )
            result = self.reader.to_version(name, row)
        self.reader.invalidate(name)
        if created:
            self.hooks.version_created(result)
        return result

    def check_render(
        self,
        name: str,
        content: VersionContent,
        *,
        pending_cases: Iterable[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        """See :meth:`registry.service.RegistryService.check_render`."""
        compiled = CompiledPrompt(
            self.reader.env,
            name=name,
            version=0,
            system=content.system,
            messages=content.messages,
            settings=content.settings,
            contract=content.variables,
        )
        cases: dict[str, Mapping[str, Any]] = {}
        for samples in self.hooks.render_samples:
            cases.update(samples(name))
        cases.update(pending_cases)
        dry_render(
            compiled, render_samples(content.variables, cases.items()), self.reader.env.limits
        )

    def _lock_or_create_prompt(self, s: Session, name: str) -> PromptRow:
        row = s.scalars(
            sa.select(PromptRow).where(PromptRow.name == name).with_for_update()
        ).one_or_none()
        if row is not None:
            return row
        now = utcnow()
        insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        s.execute(
            insert(PromptRow)
            .values(
                name=name,
                description="",
                tags=[],
                latest_version=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
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
        """See :meth:`registry.Registry.set_label`."""
        check_prompt_name(name)
        check_label_name(label, settable=True)
        reason, actor = check_commit_fields(reason, actor)
        if expected_version is not None and (
            not isinstance(expected_version, int)
            or isinstance(expected_version, bool)
            or expected_version < 0
        ):
            raise ValidationError("expected_version must be 0 (unset) or a version number")
        target = self.reader.by_version(name, version)
        self.includes.check(
            name, target.content(), root_version=version, overrides={(name, label): version}
        )
        self.includes.check_includers({(name, label): version})
        with self.db.transaction() as s:
            move_labels(
                s,
                [MoveRequest(name, label, version, expected_version)],
                actor=actor,
                reason=reason,
                guards=self.hooks.label_guards,
                override=override,
            )
        self.reader.invalidate(name, label)
        return target

    def rollback_label(
        self, name: str, label: str, *, actor: str = "", reason: str = ""
    ) -> PromptVersion:
        """See :meth:`registry.Registry.rollback_label`."""
        with self.db.snapshot() as s:
            history = [e for e in label_history(s, name, label) if e.kind != "delete"]
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
                guards=self.hooks.label_guards,
                kind="rollback",
            )
        self.reader.invalidate(name, label)
        return self.reader.by_version(name, previous)

    def delete_label(
        self, name: str, label: str, *, actor: str = "", reason: str = "", override: bool = False
    ) -> None:
        """See :meth:`registry.Registry.delete_label`."""
        check_prompt_name(name)
        check_label_name(label, settable=True)
        reason, actor = check_commit_fields(reason, actor)
        if label in config.protected_labels() and not (override and reason.strip()):
            raise PermissionDenied(
                f"label {label!r} is protected: apps fetch it, so deleting it breaks them; "
                "pass override=True with a reason if you really mean it"
            )
        self.includes.check_label_unused(name, label)
        with self.db.transaction() as s:
            delete_label(s, name, label, actor=actor, reason=reason)
        self.reader.invalidate(name, label)

    def release(
        self,
        versions: Mapping[str, int],
        *,
        label: str = DEFAULT_LABEL,
        actor: str = "",
        reason: str = "",
        expected: Mapping[str, int] | None = None,
    ) -> Release:
        """See :meth:`registry.Registry.release`."""
        if not versions:
            raise ValidationError("a release needs at least one prompt and version")
        reason, actor = check_commit_fields(reason, actor)
        check_label_name(label, settable=True)
        for name, version in versions.items():
            target = self.reader.by_version(name, version)
            self.includes.check(
                name,
                target.content(),
                root_version=version,
                overrides={(n, label): v for n, v in versions.items()},
            )
        self.includes.check_includers({(n, label): v for n, v in versions.items()})
        release_id = uuid.uuid4().hex
        expected = expected or {}
        with self.db.transaction() as s:
            moves = move_labels(
                s,
                [MoveRequest(n, label, v, expected.get(n)) for n, v in versions.items()],
                actor=actor,
                reason=reason,
                guards=self.hooks.label_guards,
                release_id=release_id,
            )
        for name in versions:
            self.reader.invalidate(name, label)
        return Release(id=release_id, label=label, moves=moves)

    def set_archived(self, name: str, archived: bool, *, actor: str, reason: str = "") -> None:
        """Archive or unarchive a prompt, audited (a no-op when it already is)."""
        check_prompt_name(name)
        reason, actor = check_commit_fields(reason, actor)
        with self.db.transaction() as s:
            prompt = lock_prompt(s, name)
            if (prompt.archived_at is not None) == archived:
                return
            prompt.archived_at = utcnow() if archived else None
            record_prompt_event(
                s, prompt.id, "archive" if archived else "unarchive", actor=actor, reason=reason
            )
        self.reader.invalidate(name)

    def update_prompt(
        self, name: str, *, description: str | None = None, tags: Sequence[str] | None = None
    ) -> None:
        """See :meth:`registry.Registry.update_prompt`."""
        tag_list = check_tags(tags)
        with self.db.transaction() as s:
            prompt = lock_prompt(s, name)
            if description is not None:
                prompt.description = description
            if tag_list is not None:
                prompt.tags = tag_list


def check_tags(tags: Sequence[str] | None) -> list[str] | None:
    """Sorted unique tags, or None when not given; ``ValidationError`` for anything else."""
    if tags is None:
        return None
    if isinstance(tags, str) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        raise ValidationError("tags must be a list of short strings", field="tags")
    return sorted(set(tags))


__all__ = ["Writer", "check_tags"]
