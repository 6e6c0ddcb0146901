"""Creating, starting, changing, stopping and promoting experiments.

Every function takes the :class:`~registry.Registry` first and keyword-only options, checks its
input (``ValidationError`` naming the field), and writes in one transaction. Changes are seen
at once by this process and within ``cache_ttl`` (1 s by default) by the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import ConflictError, NotFound, ValidationError
from ..models import PromptRow, VersionRow, utcnow
from ..models.experiments import ExperimentRow, VariantRow
from ..names import DEFAULT_LABEL, check_label_name, check_prompt_name
from ..versions import check_commit_fields
from . import store
from .definitions import (
    Experiment,
    Guardrail,
    Variant,
    check_coverage,
    check_guardrails,
    check_key,
    check_variants,
    check_weight,
    parse_guardrail,
    parse_variant,
)
from .serving import runtime

if TYPE_CHECKING:
    from ..service import RegistryService

UNIT_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_SEED = 200


def create(
    reg: RegistryService,
    key: str,
    *,
    prompt: str,
    variants: Sequence[Variant | str],
    unit: str = "user_id",
    coverage: float = 1.0,
    seed: str | None = None,
    guardrails: Sequence[Guardrail | str] = (),
    sticky: bool = False,
    min_runs: int = 100,
    label: str = DEFAULT_LABEL,
    description: str = "",
    actor: str = "",
) -> Experiment:
    """Create a draft experiment on ``prompt`` (start it with :func:`start`).

    ``variants`` are :class:`Variant` values or ``"KEY=VERSION:WEIGHT"`` strings; the first is
    the control. ``coverage`` is the share of units in the experiment; ``seed`` (default: the
    key) salts the assignment hash; ``guardrails`` are :class:`Guardrail` values or
    ``"METRIC[:THRESHOLD]"`` strings; ``sticky`` persists each unit's first assignment;
    ``min_runs`` is the runs each variant needs before a guardrail may stop the experiment;
    ``label`` is the label the experiment stands in for.

    >>> create(reg, "support-tone", prompt="support-answer",
    ...        variants=["control=3:50", "friendly=4:50"])  # doctest: +SKIP
    """
    check_key(key)
    check_prompt_name(prompt)
    check_label_name(label, settable=True)
    parsed = check_variants([parse_variant(v) if isinstance(v, str) else v for v in variants])
    rails = check_guardrails([parse_guardrail(g) if isinstance(g, str) else g for g in guardrails])
    coverage = check_coverage(coverage)
    if not isinstance(unit, str) or not UNIT_PATTERN.match(unit):
        raise ValidationError(
            f"invalid unit {unit!r}: name what a unit is, e.g. user_id or session_id", field="unit"
        )
    seed = key if seed is None else seed
    if not isinstance(seed, str) or not 0 < len(seed) <= MAX_SEED:
        raise ValidationError(f"seed must be a string of 1 to {MAX_SEED} characters", field="seed")
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 2:
        raise ValidationError("min_runs must be an integer of at least 2", field="min_runs")
    if not isinstance(sticky, bool):
        raise ValidationError("sticky must be true or false", field="sticky")
    description, actor = check_commit_fields(description, actor)
    with reg.db.transaction() as s:
        prompt_id = s.scalar(sa.select(PromptRow.id).where(PromptRow.name == prompt))
        if prompt_id is None:
            raise NotFound(f"prompt {prompt!r} does not exist", prompt=prompt)
        if s.scalar(sa.select(ExperimentRow.id).where(ExperimentRow.key == key)) is not None:
            raise ConflictError(f"an experiment called {key!r} exists already: pick another key")
        version_ids = _version_ids(s, prompt_id, prompt, [v.version for v in parsed])
        now = utcnow()
        row = ExperimentRow(
            key=key,
            prompt_id=prompt_id,
            label=label,
            description=description,
            unit=unit,
            coverage=coverage,
            seed=seed,
            sticky=sticky,
            guardrails=[g.to_dict() for g in rails],
            min_runs=min_runs,
            status="draft",
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
        s.add(row)
        try:
            s.flush()
        except sa.exc.IntegrityError:
            raise ConflictError(f"an experiment called {key!r} exists already") from None
        for position, v in enumerate(parsed):
            s.add(
                VariantRow(
                    experiment_id=row.id,
                    key=v.key,
                    position=position,
                    version_id=version_ids[v.version],
                    version=v.version,
                    weight=v.weight,
                )
            )
        s.flush()
        return store.load(s, key)


def _version_ids(
    s: Session, prompt_id: int, prompt: str, versions: Sequence[int]
) -> dict[int, int]:
    rows = s.execute(
        sa.select(VersionRow.version, VersionRow.id).where(
            VersionRow.prompt_id == prompt_id, VersionRow.version.in_(set(versions))
        )
    )
    found = {version: version_id for version, version_id in rows}
    missing = sorted(set(versions) - set(found))
    if missing:
        raise NotFound(
            f"prompt {prompt!r} has no version {', '.join(map(str, missing))}: "
            f"see `prompt-registry prompts history {prompt}`",
            prompt=prompt,
        )
    return found


def get(reg: RegistryService, key: str) -> Experiment:
    """The experiment called ``key`` (``NotFound`` otherwise)."""
    check_key(key)
    with reg.db.snapshot() as s:
        return store.load(s, key)


def list_experiments(
    reg: RegistryService, *, prompt: str | None = None, status: str | None = None
) -> list[Experiment]:
    """Experiments, newest first; filter by prompt or by status (draft, running, stopped)."""
    if status is not None and status not in ("draft", "running", "stopped"):
        raise ValidationError("status must be draft, running or stopped", field="status")
    with reg.db.snapshot() as s:
        return store.load_all(s, prompt=prompt, status=status)


def running(reg: RegistryService, prompt: str) -> Experiment | None:
    """The experiment running on ``prompt`` now (read from the database), if any."""
    with reg.db.snapshot() as s:
        return store.load_running(s, prompt)


def start(reg: RegistryService, key: str, *, actor: str = "") -> Experiment:
    """Start a draft experiment: units with an id get their variant from now on.

    Raises ``ConflictError`` when another experiment runs on the prompt (the database refuses
    two running experiments on one prompt) or when this one already ran.
    """
    check_key(key)
    _, actor = check_commit_fields("", actor)
    try:
        with reg.db.transaction() as s:
            row, prompt = store.load_row(s, key, lock=True)
            if row.status != "draft":
                raise ConflictError(
                    f"experiment {key!r} is {row.status}: only a draft can start "
                    "(a stopped experiment stays stopped; create a new one)"
                )
            other = s.scalar(
                sa.select(ExperimentRow.key).where(ExperimentRow.running_prompt_id == row.prompt_id)
            )
            if other is not None:
                raise ConflictError(_already_running(prompt, other))
            now = utcnow()
            row.status = "running"
            row.running_prompt_id = row.prompt_id
            row.started_at = now
            row.started_by = actor
            row.updated_at = now
            s.flush()
            result = store.load(s, key)
    except sa.exc.IntegrityError:  # lost a race with another start on the same prompt
        prompt = get(reg, key).prompt
        other_exp = running(reg, prompt)
        other_key = other_exp.key if other_exp else "another experiment"
        raise ConflictError(_already_running(prompt, other_key)) from None
    runtime(reg).invalidate(result.prompt)
    return result


def _already_running(prompt: str, other: str) -> str:
    return (
        f"experiment {other!r} is already running on prompt {prompt!r}: stop it first "
        f"(`prompt-registry experiments stop {other}`)"
    )


def stop(reg: RegistryService, key: str, *, actor: str = "", reason: str = "") -> Experiment:
    """Stop an experiment (a draft is cancelled): every unit gets the label's version again."""
    check_key(key)
    reason, actor = check_commit_fields(reason, actor)
    with reg.db.transaction() as s:
        row, _ = store.load_row(s, key, lock=True)
        if row.status == "stopped":
            raise ConflictError(
                f"experiment {key!r} is already stopped ({row.stop_reason or 'no reason given'})"
            )
        _mark_stopped(row, actor=actor, reason=reason or "stopped by hand")
        s.flush()
        result = store.load(s, key)
    runtime(reg).invalidate(result.prompt)
    return result


def stop_if_running(reg: RegistryService, key: str, *, actor: str, reason: str) -> bool:
    """Stop ``key`` if it still runs (used by guardrails); False when it was not running."""
    with reg.db.transaction() as s:
        row, prompt = store.load_row(s, key, lock=True)
        if row.status != "running":
            return False
        _mark_stopped(row, actor=actor, reason=reason)
    runtime(reg).invalidate(prompt)
    return True


def _mark_stopped(row: ExperimentRow, *, actor: str, reason: str) -> None:
    now = utcnow()
    row.status = "stopped"
    row.running_prompt_id = None
    row.stopped_at = now
    row.stopped_by = actor
    row.stop_reason = reason
    row.updated_at = now


def update(
    reg: RegistryService,
    key: str,
    *,
    weights: Mapping[str, float] | None = None,
    coverage: float | None = None,
    actor: str = "",
) -> Experiment:
    """Change the weights of some variants or the coverage of a draft or running experiment.

    Raising coverage only adds units (units already in keep their variant). Changing weights
    moves some units between variants, except in sticky experiments, where a unit keeps the
    variant it was first given.
    """
    check_key(key)
    _, actor = check_commit_fields("", actor)
    if coverage is not None:
        coverage = check_coverage(coverage)
    with reg.db.transaction() as s:
        row, prompt = store.load_row(s, key, lock=True)
        if row.status == "stopped":
            raise ConflictError(f"experiment {key!r} is stopped and cannot change")
        if weights:
            rows = {
                v.key: v
                for v in s.scalars(sa.select(VariantRow).where(VariantRow.experiment_id == row.id))
            }
            for name, weight in weights.items():
                if name not in rows:
                    raise NotFound(
                        f"experiment {key!r} has no variant {name!r} (variants: {', '.join(rows)})"
                    )
                rows[name].weight = check_weight(weight, f"variant {name!r}")
            if sum(v.weight for v in rows.values()) <= 0:
                raise ValidationError(
                    "at least one variant needs a weight above 0", field="variants"
                )
        if coverage is not None:
            row.coverage = coverage
        row.updated_at = utcnow()
        s.flush()
        result = store.load(s, key)
    runtime(reg).invalidate(prompt)
    return result


def promote(
    reg: RegistryService,
    key: str,
    variant: str,
    *,
    actor: str = "",
    reason: str = "",
    override: bool = False,
) -> Experiment:
    """Move the experiment's label to ``variant``'s version and stop the experiment.

    The label move goes through ``Registry.set_label`` (audited, with the protected-label and
    regression-suite gates; ``override`` is passed on for an admin bypass); if it is refused,
    the experiment keeps running. The label event's reason names the experiment and variant;
    the experiment records the promoted variant.
    """
    reason, actor = check_commit_fields(reason, actor)
    experiment = get(reg, key)
    chosen = experiment.variant(variant)
    if experiment.status == "draft":
        raise ConflictError(f"experiment {key!r} never ran: start it (or just move the label)")
    if experiment.promoted_variant is not None:
        raise ConflictError(
            f"experiment {key!r} already promoted variant {experiment.promoted_variant!r}"
        )
    why = f"experiment {key}: promote variant {chosen.key} (version {chosen.version})"
    if reason:
        why += f": {reason}"
    reg.set_label(
        experiment.prompt,
        experiment.label,
        chosen.version,
        actor=actor,
        reason=why,
        override=override,
    )
    with reg.db.transaction() as s:
        row, _ = store.load_row(s, key, lock=True)
        if row.status == "running":
            _mark_stopped(
                row,
                actor=actor,
                reason=f"promoted variant {chosen.key}" + (f": {reason}" if reason else ""),
            )
        row.promoted_variant = chosen.key
        row.updated_at = utcnow()
        s.flush()
        result = store.load(s, key)
    runtime(reg).invalidate(result.prompt)
    return result


__all__ = [
    "create",
    "get",
    "list_experiments",
    "promote",
    "running",
    "start",
    "stop",
    "stop_if_running",
    "update",
]
