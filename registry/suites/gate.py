"""The promotion gate: protected labels only move to versions whose suite passed.

``Registry`` calls :func:`gate` for every label move (``set_label``, ``release``,
``rollback_label``, labels given to ``create_version``), inside the move's transaction, so the
rule holds in the Python API, the CLI, the HTTP API and the admin alike. The rule, for a move of
a protected label (``REGISTRY_PROTECTED_LABELS``, default ``production``) to version V:

1. an override (``override=True``, an admin's decision) is allowed but needs a reason; the core
   records it in the label audit with kind ``override``;
2. a prompt with no test cases has nothing to gate: the move is allowed (so a new prompt, a
   fresh ``init``/``seed`` and quick starts work; add cases to protect a prompt);
3. a version this label already pointed at before (a rollback, or returning to an earlier
   release) is allowed: it was approved when it first received the label, and an emergency
   rollback must not wait for a suite;
4. otherwise V's latest suite run must have finished with status ``passed`` and must have run
   the current cases (same fingerprint): editing the cases calls for a new run. Only runs of
   the version as saved count: a model-matrix run (``test --models``) never does.

Other labels (``staging``...) are never gated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import config
from ..errors import SuiteGateError, ValidationError
from ..models import LabelEventRow
from ..models.suites import SuiteRunRow
from .cases import count_cases, current_fingerprint, prompt_id_of
from .results import ERROR, PASSED, RUNNING

if TYPE_CHECKING:
    from ..labels import LabelMove
    from ..service import RegistryService


def is_protected(label: str) -> bool:
    """Whether moving ``label`` is gated (``REGISTRY_PROTECTED_LABELS``, default production)."""
    return label in config.protected_labels()


def gate(reg: RegistryService, session: Session, move: LabelMove) -> None:
    """Refuse ``move`` with ``SuiteGateError`` unless the rule above allows it."""
    if not is_protected(move.label):
        return
    if move.override:
        if not (move.reason or "").strip():
            raise ValidationError(
                f"overriding the suite gate on {move.label!r} of {move.prompt!r} needs a reason "
                "(it is kept in the label audit)",
                field="reason",
            )
        return
    if count_cases(session, move.prompt_id) == 0:
        return
    if served_before(session, move.prompt_id, move.label, move.to_version):
        return
    problem = gate_problem(session, move.prompt_id, move.prompt, move.to_version)
    if problem is not None:
        raise SuiteGateError(
            f"cannot move {move.label!r} of {move.prompt!r} to v{move.to_version}: {problem}; "
            "an admin may override with a reason",
            prompt=move.prompt,
            label=move.label,
            version=move.to_version,
        )


def served_before(session: Session, prompt_id: int, label: str, version: int) -> bool:
    """Whether ``label`` of the prompt pointed at ``version`` at some time in its audit."""
    found = session.scalar(
        sa.select(LabelEventRow.id)
        .where(
            LabelEventRow.prompt_id == prompt_id,
            LabelEventRow.label == label,
            LabelEventRow.to_version == version,
        )
        .limit(1)
    )
    return found is not None


def gate_problem(session: Session, prompt_id: int, prompt: str, version: int) -> str | None:
    """Why ``version`` may not receive a protected label (None when its suite passed).

    Does not look at overrides or at whether the prompt has cases (see :func:`gate`).
    """
    latest = session.scalars(
        sa.select(SuiteRunRow)
        .where(
            SuiteRunRow.prompt_id == prompt_id,
            SuiteRunRow.version == version,
            SuiteRunRow.model.is_(None),  # a model-matrix run never counts
        )
        .order_by(SuiteRunRow.id.desc())
        .limit(1)
    ).first()
    test = f"`prompt-registry test {prompt} --version {version}`"
    if latest is None:
        return f"its regression suite has never run on v{version}; run {test}"
    if latest.status == RUNNING:
        return f"suite run #{latest.id} on v{version} has not finished; wait for it or run {test}"
    if latest.status != PASSED:
        bad = latest.failed + latest.errored
        detail = (
            f"{bad} of {latest.total} case(s) did not pass"
            if latest.status != ERROR
            else f"it did not finish ({latest.error or 'error'})"
        )
        return f"the latest suite run #{latest.id} on v{version} {latest.status}: {detail}"
    if latest.cases_hash != current_fingerprint(session, prompt_id):
        return (
            f"the test cases changed since suite run #{latest.id} passed on v{version}; "
            f"run {test} again"
        )
    return None


def promotion_status(
    reg: RegistryService, name: str, version: int, label: str = "production"
) -> str | None:
    """Why moving ``label`` of ``name`` to ``version`` would be refused, or None if allowed.

    For the admin and the CLI to explain the gate before anyone tries the move.
    """
    if not is_protected(label):
        return None
    with reg.db.snapshot() as s:
        prompt_id = prompt_id_of(s, name)
        if count_cases(s, prompt_id) == 0 or served_before(s, prompt_id, label, version):
            return None
        return gate_problem(s, prompt_id, name, version)


__all__ = ["gate", "gate_problem", "is_protected", "promotion_status", "served_before"]
