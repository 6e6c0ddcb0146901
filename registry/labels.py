"""Label moves: compare-and-set, audit events, atomic multi-prompt releases, guards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .errors import ConflictError, NotFound, ValidationError
from .names import check_label_name, check_prompt_name, prompt_not_found
from .tables import prompts as prompts_table
from .tables import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .models import LabelRow, PromptRow


@dataclass(frozen=True)
class LabelMove:
    """A label move about to happen; guards see it before it is written."""

    prompt: str
    prompt_id: int
    label: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    override: bool = False
    release_id: str | None = None


@dataclass(frozen=True)
class LabelEvent:
    """One audited label move (``kind`` is ``move``, ``rollback``, ``delete`` or ``override``).

    Archiving and unarchiving the prompt are audited here too, with ``kind`` ``archive`` or
    ``unarchive`` and an empty ``label``.
    """

    id: int
    prompt: str
    label: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    kind: str
    release_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Release:
    """An atomic move of one label on several prompts, audited under one release id."""

    id: str
    label: str
    moves: list[LabelMove]


#: a guard may refuse a move by raising a ``RegistryError`` (the suite gate), or add
#: statements to its transaction (the PostgreSQL NOTIFY)
LabelGuard = Callable[["Session", LabelMove], None]


@dataclass(frozen=True)
class MoveRequest:
    """Move ``label`` of ``prompt`` to ``version`` if it is at ``expected`` (when given)."""

    prompt: str
    label: str
    version: int
    expected: int | None = None


def lock_prompt(session: Session, name: str) -> PromptRow:
    """Load a prompt row and lock it until the transaction ends (no-op lock on SQLite)."""
    from .models import PromptRow

    row = session.scalars(
        sa.select(PromptRow).where(PromptRow.name == name).with_for_update()
    ).one_or_none()
    if row is None:
        raise missing_prompt(session, name)
    return row


def missing_prompt(session: Session | sa.Connection, name: str) -> NotFound:
    """The ``NotFound`` for prompt ``name``, naming the existing prompts closest to it."""
    return prompt_not_found(name, session.execute(sa.select(prompts_table.c.name)).scalars())


def current_label_version(
    session: Session, prompt_id: int, label: str
) -> tuple[LabelRow | None, int | None]:
    """The label row (locked) and the version number it points at."""
    from .models import LabelRow, VersionRow

    found = session.execute(
        sa.select(LabelRow, VersionRow.version)
        .join(VersionRow, VersionRow.id == LabelRow.version_id)
        .where(LabelRow.prompt_id == prompt_id, LabelRow.name == label)
        .with_for_update(of=LabelRow)
    ).one_or_none()
    if found is None:
        return None, None
    return found[0], found[1]


def move_labels(
    session: Session,
    requests: Sequence[MoveRequest],
    *,
    actor: str,
    reason: str,
    guards: Sequence[LabelGuard] = (),
    override: bool = False,
    release_id: str | None = None,
    kind: str = "move",
) -> list[LabelMove]:
    """Apply label moves inside the caller's transaction; all succeed or the caller rolls back.

    Prompts are locked in name order so concurrent releases cannot deadlock.
    Returns the moves that changed something (a move to where the label already is is skipped).
    """
    from .models import LabelEventRow, LabelRow, VersionRow

    for req in requests:
        check_prompt_name(req.prompt)
        check_label_name(req.label, settable=True)
        if not isinstance(req.version, int) or isinstance(req.version, bool) or req.version < 1:
            raise ValidationError(f"version must be a positive integer, got {req.version!r}")
    done: list[LabelMove] = []
    now = utcnow()
    for req in sorted(requests, key=lambda r: (r.prompt, r.label)):
        prompt = lock_prompt(session, req.prompt)
        if prompt.archived_at is not None:
            raise ValidationError(
                f"prompt {req.prompt!r} is archived: unarchive it before moving labels"
            )
        target = session.scalars(
            sa.select(VersionRow).where(
                VersionRow.prompt_id == prompt.id, VersionRow.version == req.version
            )
        ).one_or_none()
        if target is None:
            raise NotFound(
                f"prompt {req.prompt!r} has no version {req.version} "
                f"(its newest is {prompt.latest_version})",
                prompt=req.prompt,
                version=req.version,
            )
        label_row, current = current_label_version(session, prompt.id, req.label)
        if req.expected is not None and (current or 0) != req.expected:
            raise ConflictError(
                f"label {req.label!r} of {req.prompt!r} is at "
                f"{'version ' + str(current) if current else 'no version'}, not "
                f"{req.expected if req.expected else 'unset'} as expected: someone moved it; "
                "reload and try again",
                expected=req.expected,
                actual=current,
            )
        if current == req.version:
            continue
        move = LabelMove(
            prompt=req.prompt,
            prompt_id=prompt.id,
            label=req.label,
            from_version=current,
            to_version=req.version,
            actor=actor,
            reason=reason,
            override=override,
            release_id=release_id,
        )
        for guard in guards:
            guard(session, move)
        if label_row is None:
            session.add(
                LabelRow(
                    prompt_id=prompt.id,
                    name=req.label,
                    version_id=target.id,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        else:
            label_row.version_id = target.id
            label_row.updated_at = now
            label_row.updated_by = actor
        session.add(
            LabelEventRow(
                prompt_id=prompt.id,
                label=req.label,
                from_version=current,
                to_version=req.version,
                actor=actor,
                reason=reason,
                kind="override" if override and kind == "move" else kind,
                release_id=release_id,
                created_at=now,
            )
        )
        prompt.updated_at = now
        done.append(move)
    session.flush()
    return done


def delete_label(session: Session, name: str, label: str, *, actor: str, reason: str) -> int:
    """Remove a label; returns the version it pointed at."""
    from .models import LabelEventRow

    check_label_name(label, settable=True)
    prompt = lock_prompt(session, name)
    row, current = current_label_version(session, prompt.id, label)
    if row is None or current is None:
        raise NotFound(f"prompt {name!r} has no label {label!r}")
    session.delete(row)
    session.add(
        LabelEventRow(
            prompt_id=prompt.id,
            label=label,
            from_version=current,
            to_version=None,
            actor=actor,
            reason=reason,
            kind="delete",
        )
    )
    session.flush()
    return current


def record_prompt_event(
    session: Session, prompt_id: int, kind: str, *, actor: str, reason: str
) -> None:
    """Audit a change of the prompt itself (``archive``, ``unarchive``) among its label events.

    Such an event has no label (``label`` is '') and no versions.
    """
    from .models import LabelEventRow

    session.add(
        LabelEventRow(
            prompt_id=prompt_id,
            label="",
            from_version=None,
            to_version=None,
            actor=actor,
            reason=reason,
            kind=kind,
        )
    )


def label_history(session: Session, name: str, label: str | None = None) -> list[LabelEvent]:
    """Every move of the prompt's labels (or one label), oldest first."""
    from .models import LabelEventRow, PromptRow

    query = (
        sa.select(LabelEventRow, PromptRow.name)
        .join(PromptRow, PromptRow.id == LabelEventRow.prompt_id)
        .where(PromptRow.name == name)
        .order_by(LabelEventRow.id)
    )
    if label is not None:
        query = query.where(LabelEventRow.label == label)
    return [
        LabelEvent(
            id=e.id,
            prompt=prompt_name,
            label=e.label,
            from_version=e.from_version,
            to_version=e.to_version,
            actor=e.actor,
            reason=e.reason,
            kind=e.kind,
            release_id=e.release_id,
            created_at=e.created_at,
        )
        for e, prompt_name in session.execute(query)
    ]
