"""Reading experiments from the database into :class:`Experiment` values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import PromptRow
from ..models.experiments import ExperimentRow, VariantRow
from .definitions import Experiment, Guardrail, Status, Variant


def to_experiment(row: ExperimentRow, prompt: str, variants: Sequence[VariantRow]) -> Experiment:
    """Build the public value from its rows (variants in position order)."""
    return Experiment(
        id=row.id,
        key=row.key,
        prompt=prompt,
        label=row.label,
        variants=tuple(
            Variant(v.key, v.version, v.weight) for v in sorted(variants, key=lambda v: v.position)
        ),
        unit=row.unit,
        coverage=row.coverage,
        seed=row.seed,
        sticky=row.sticky,
        guardrails=tuple(
            Guardrail(str(g["metric"]), float(g.get("threshold", 0.0)))
            for g in row.guardrails or []
        ),
        min_runs=row.min_runs,
        status=cast(Status, row.status),
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        started_at=row.started_at,
        started_by=row.started_by,
        stopped_at=row.stopped_at,
        stopped_by=row.stopped_by,
        stop_reason=row.stop_reason,
        promoted_variant=row.promoted_variant,
    )


def _variants_of(s: Session, ids: Sequence[int]) -> dict[int, list[VariantRow]]:
    out: dict[int, list[VariantRow]] = {i: [] for i in ids}
    if ids:
        for v in s.scalars(
            sa.select(VariantRow)
            .where(VariantRow.experiment_id.in_(ids))
            .order_by(VariantRow.experiment_id, VariantRow.position)
        ):
            out[v.experiment_id].append(v)
    return out


def load_row(s: Session, key: str, *, lock: bool = False) -> tuple[ExperimentRow, str]:
    """The experiment row called ``key`` and its prompt's name (``NotFound`` otherwise)."""
    query: Any = (
        sa.select(ExperimentRow, PromptRow.name)
        .join(PromptRow, PromptRow.id == ExperimentRow.prompt_id)
        .where(ExperimentRow.key == key)
    )
    if lock:
        query = query.with_for_update(of=ExperimentRow)
    found = s.execute(query).one_or_none()
    if found is None:
        raise NotFound(
            f"experiment {key!r} does not exist: list them with `prompt-registry experiments list`",
            experiment=key,
        )
    return found[0], found[1]


def load(s: Session, key: str) -> Experiment:
    """The experiment called ``key``."""
    row, prompt = load_row(s, key)
    return to_experiment(row, prompt, _variants_of(s, [row.id])[row.id])


def load_running(s: Session, prompt: str) -> Experiment | None:
    """The experiment running on ``prompt`` now, if any."""
    found = s.execute(
        sa.select(ExperimentRow)
        .join(PromptRow, PromptRow.id == ExperimentRow.running_prompt_id)
        .where(PromptRow.name == prompt)
    ).scalar_one_or_none()
    if found is None:
        return None
    return to_experiment(found, prompt, _variants_of(s, [found.id])[found.id])


def load_all(
    s: Session, *, prompt: str | None = None, status: str | None = None
) -> list[Experiment]:
    """Experiments, newest first, optionally of one prompt or one status."""
    query = (
        sa.select(ExperimentRow, PromptRow.name)
        .join(PromptRow, PromptRow.id == ExperimentRow.prompt_id)
        .order_by(ExperimentRow.id.desc())
    )
    if prompt is not None:
        query = query.where(PromptRow.name == prompt)
    if status is not None:
        query = query.where(ExperimentRow.status == status)
    rows = s.execute(query).all()
    variants = _variants_of(s, [r[0].id for r in rows])
    return [to_experiment(r[0], r[1], variants[r[0].id]) for r in rows]


__all__ = ["load", "load_all", "load_row", "load_running", "to_experiment"]
