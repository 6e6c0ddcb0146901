"""Suite runs and case results: the records a suite leaves, and how to read them back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import NotFound
from ..models import PromptRow
from ..models.suites import CaseResultRow, SuiteRunRow
from .assertions import AssertionResult

if TYPE_CHECKING:
    from ..service import RegistryService

#: suite-run statuses
RUNNING, PASSED, FAILED, ERROR = "running", "passed", "failed", "error"


@dataclass(frozen=True)
class CaseResult:
    """One case of one suite run: the answer, each assertion's verdict, the run's measurements.

    ``status`` is ``passed``, ``failed`` (an assertion failed) or ``error`` (the run itself
    failed: the error is in ``error`` and counts as a failure).
    """

    case: str
    status: str
    variables: dict[str, Any]
    output: str | None
    assertions: list[AssertionResult]
    position: int = 0
    error: str | None = None
    stop_reason: str | None = None
    run_id: str | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None

    @property
    def passed(self) -> bool:
        """True when the run succeeded and every assertion passed."""
        return self.status == PASSED

    @property
    def failures(self) -> list[AssertionResult]:
        """The assertions that failed."""
        return [a for a in self.assertions if not a.passed]

    def summary(self) -> str:
        """One line: why the case did not pass ('' when it passed)."""
        if self.status == ERROR:
            return f"run failed: {self.error}"
        return "; ".join(f"{a.description}: {a.message}" for a in self.failures)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "case": self.case,
            "status": self.status,
            "passed": self.passed,
            "variables": self.variables,
            "output": self.output,
            "assertions": [a.to_dict() for a in self.assertions],
            "error": self.error,
            "stop_reason": self.stop_reason,
            "run_id": self.run_id,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True)
class SuiteRun:
    """One execution of a prompt's suite against one version."""

    id: int
    prompt: str
    version: int
    label: str | None
    status: str
    total: int
    passed: int
    failed: int
    errored: int
    concurrency: int
    actor: str
    cases_hash: str
    started_at: datetime
    finished_at: datetime | None = None
    cost_usd: float | None = None
    error: str | None = None
    results: list[CaseResult] = field(default_factory=list)
    #: the Message Batch the cases went in (None: run synchronously)
    batch_id: str | None = None
    #: the model the cases ran on instead of the version's (a model matrix), or None
    model: str | None = None

    @property
    def counts_for_gate(self) -> bool:
        """True for a run of the version as saved (a matrix run with another model never
        counts for the promotion gate)."""
        return self.model is None

    @property
    def ok(self) -> bool:
        """True when every case passed."""
        return self.status == PASSED

    @property
    def duration_s(self) -> float | None:
        """Wall time of the run in seconds (None while it runs)."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def describe(self) -> str:
        """One line such as ``support-answer v3: 4 passed, 1 failed (suite run #12)``."""
        parts = [f"{self.passed} passed"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.errored:
            parts.append(f"{self.errored} errored")
        what = ", ".join(parts)
        if self.status == ERROR:
            what += f"; did not finish: {self.error}"
        elif self.status == RUNNING:
            what += f" of {self.total}; still running"
            if self.batch_id:
                what += f" (batch {self.batch_id})"
        model = f" on {self.model}" if self.model else ""
        return f"{self.prompt} v{self.version}{model}: {what} (suite run #{self.id})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (results included)."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "version": self.version,
            "label": self.label,
            "status": self.status,
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "errored": self.errored,
            "concurrency": self.concurrency,
            "actor": self.actor,
            "cost_usd": self.cost_usd,
            "error": self.error,
            "batch_id": self.batch_id,
            "model": self.model,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "results": [r.to_dict() for r in self.results],
        }

    def with_results(self, results: list[CaseResult]) -> SuiteRun:
        """A copy carrying ``results``."""
        return replace(self, results=results)


def row_to_case_result(row: CaseResultRow) -> CaseResult:
    """Build a :class:`CaseResult` from its row."""
    return CaseResult(
        case=row.case_name,
        status=row.status,
        variables=dict(row.variables or {}),
        output=row.output,
        assertions=[AssertionResult.from_dict(a) for a in row.assertions or []],
        position=row.position,
        error=row.error,
        stop_reason=row.stop_reason,
        run_id=row.run_id,
        cost_usd=row.cost_usd,
        latency_ms=row.latency_ms,
    )


def case_result_row(suite_run_id: int, result: CaseResult) -> CaseResultRow:
    """The row that stores ``result``."""
    return CaseResultRow(
        suite_run_id=suite_run_id,
        case_name=result.case,
        position=result.position,
        status=result.status,
        passed=result.passed,
        variables=result.variables,
        output=result.output,
        assertions=[a.to_dict() for a in result.assertions],
        error=result.error,
        stop_reason=(result.stop_reason or None) and result.stop_reason[:40],
        run_id=result.run_id,
        cost_usd=result.cost_usd,
        latency_ms=result.latency_ms,
    )


def row_to_suite_run(row: SuiteRunRow, prompt: str) -> SuiteRun:
    """Build a :class:`SuiteRun` (without results) from its row."""
    return SuiteRun(
        id=row.id,
        prompt=prompt,
        version=row.version,
        label=row.label,
        status=row.status,
        total=row.total,
        passed=row.passed,
        failed=row.failed,
        errored=row.errored,
        concurrency=row.concurrency,
        actor=row.actor,
        cases_hash=row.cases_hash,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cost_usd=row.cost_usd,
        error=row.error,
        batch_id=row.batch_id,
        model=row.model,
    )


def get_suite_run(reg: RegistryService, suite_run_id: int) -> SuiteRun:
    """A stored suite run with its case results (in suite order)."""
    with reg.db.snapshot() as s:
        found = s.execute(
            sa.select(SuiteRunRow, PromptRow.name)
            .join(PromptRow, PromptRow.id == SuiteRunRow.prompt_id)
            .where(SuiteRunRow.id == suite_run_id)
        ).one_or_none()
        if found is None:
            raise NotFound(f"there is no suite run #{suite_run_id}")
        rows = s.scalars(
            sa.select(CaseResultRow)
            .where(CaseResultRow.suite_run_id == suite_run_id)
            .order_by(CaseResultRow.position, CaseResultRow.id)
        ).all()
        return row_to_suite_run(found[0], found[1]).with_results(
            [row_to_case_result(r) for r in rows]
        )


def suite_runs(
    reg: RegistryService,
    name: str,
    *,
    version: int | None = None,
    limit: int = 50,
    offset: int = 0,
    matrix: bool | None = None,
) -> list[SuiteRun]:
    """A prompt's suite runs (of one version, or all), newest first, without case results.

    ``matrix`` True keeps only model-matrix runs, False only runs of the versions as saved,
    None both.
    """
    query = (
        sa.select(SuiteRunRow)
        .join(PromptRow, PromptRow.id == SuiteRunRow.prompt_id)
        .where(PromptRow.name == name)
        .order_by(SuiteRunRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if version is not None:
        query = query.where(SuiteRunRow.version == version)
    if matrix is not None:
        query = query.where(
            SuiteRunRow.model.is_not(None) if matrix else SuiteRunRow.model.is_(None)
        )
    with reg.db.snapshot() as s:
        if s.scalar(sa.select(PromptRow.id).where(PromptRow.name == name)) is None:
            raise NotFound(f"prompt {name!r} does not exist", prompt=name)
        return [row_to_suite_run(r, name) for r in s.scalars(query)]


def latest_suite_run(reg: RegistryService, name: str, version: int) -> SuiteRun | None:
    """The newest suite run of a version as saved (the one the gate looks at), or None.

    Model-matrix runs (another model than the version's) are not considered.
    """
    found = suite_runs(reg, name, version=version, limit=1, matrix=False)
    return found[0] if found else None


def latest_by_version(reg: RegistryService, name: str) -> dict[int, SuiteRun]:
    """The newest suite run (of the version as saved, not a matrix run) of each version of a
    prompt that has one."""
    with reg.db.snapshot() as s:
        newest = (
            sa.select(sa.func.max(SuiteRunRow.id))
            .join(PromptRow, PromptRow.id == SuiteRunRow.prompt_id)
            .where(PromptRow.name == name, SuiteRunRow.model.is_(None))
            .group_by(SuiteRunRow.version)
        )
        rows = s.scalars(sa.select(SuiteRunRow).where(SuiteRunRow.id.in_(newest))).all()
        return {r.version: row_to_suite_run(r, name) for r in rows}


def latest_by_prompt(reg: RegistryService) -> dict[str, SuiteRun]:
    """The newest suite run (not a matrix run) of every prompt that has one (one query
    whatever the count)."""
    newest = (
        sa.select(sa.func.max(SuiteRunRow.id))
        .where(SuiteRunRow.model.is_(None))
        .group_by(SuiteRunRow.prompt_id)
    )
    with reg.db.snapshot() as s:
        rows = s.execute(
            sa.select(SuiteRunRow, PromptRow.name)
            .join(PromptRow, PromptRow.id == SuiteRunRow.prompt_id)
            .where(SuiteRunRow.id.in_(newest))
        ).all()
        return {name: row_to_suite_run(row, name) for row, name in rows}


__all__ = [
    "ERROR",
    "FAILED",
    "PASSED",
    "RUNNING",
    "CaseResult",
    "SuiteRun",
    "get_suite_run",
    "latest_by_prompt",
    "latest_by_version",
    "latest_suite_run",
    "suite_runs",
]
