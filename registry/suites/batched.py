"""Suite runs through Message Batches: every case of one or more suites in one batch.

Each target (a prompt's suite on one version, optionally with another model: a model
matrix) gets its suite run row as a synchronous run does; its cases become the items of one
batch (half the price, results within 24 hours). The suite runs stay ``running`` with the
batch's id until the results are in; then each result is mapped back to its case by
``custom_id``, its assertions are checked and the runs finish exactly as synchronous ones.
A process that dies after submitting leaves the suite runs ``running`` with their batch:
:func:`resume_suite_batch` (``test --resume BATCH_ID``, or ``test NAME --batch`` again)
finishes them without submitting anything again.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ConfigurationError, RegistryError, ValidationError
from ..models.suites import SuiteRunRow
from ..tables import prompts, utcnow
from .assertions import CaseOutput, check_assertions
from .cases import Case, list_cases
from .results import (
    ERROR,
    FAILED,
    PASSED,
    CaseResult,
    SuiteRun,
    case_result_row,
    get_suite_run,
)
from .rubric import make_grader
from .runner import finish_suite_run, open_suite_run, resolve_version

if TYPE_CHECKING:
    from ..batch.jobs import Batches, BatchProgress
    from ..batch.results import ItemResult
    from ..batch.store import StoredBatch
    from ..run_result import RunResult
    from ..service import RegistryService
    from ..versions import PromptVersion

#: a batch item's ``source`` when it runs a test case
SOURCE = "test"
#: why latency assertions fail in a batch
NO_LATENCY = "latency is not measured in a Message Batch: run the suite without --batch"


@dataclass(frozen=True)
class SuiteTarget:
    """One suite to run: a prompt at a version (or label, else its newest), and optionally
    another model than the version's (a model matrix; such runs never count for the gate)."""

    name: str
    version: int | None = None
    label: str | None = None
    model: str | None = None


@dataclass
class _Prepared:
    target: SuiteTarget
    version: PromptVersion
    cases: list[Case]
    suite: SuiteRun


def _prepare(reg: RegistryService, target: SuiteTarget, actor: str) -> _Prepared:
    version = resolve_version(reg, target.name, version=target.version, label=target.label)
    cases = list_cases(reg, target.name)
    if not cases:
        raise ValidationError(
            f"prompt {target.name!r} has no test cases: add some under `tests:` in its YAML "
            "file (then `prompt-registry seed`) or in the admin",
            field="tests",
        )
    if target.model is not None:
        # lazy for cold start: the price table is read by runs and saves only
        from ..prices import price_of

        price_of(target.model)  # UnpricedModel before anything is stored
    suite = open_suite_run(
        reg,
        target.name,
        version.version,
        cases,
        label=target.label,
        actor=actor,
        concurrency=1,
        model=target.model,
    )
    return _Prepared(target, version, cases, suite)


def _unsent(
    reg: RegistryService, prepared: _Prepared, case: Case, exc: RegistryError
) -> CaseResult:
    """A case that could not become a request (a render error): logged as a failed run."""
    # lazy for cold start: the runner loads the anthropic SDK
    from ..runner.runlog import RunRecord, insert_runs

    v = prepared.version
    record = RunRecord(
        id=uuid.uuid4().hex,
        created_at=utcnow(),
        started=0.0,
        prompt=v.name,
        label=prepared.target.label,
        source=SOURCE,
        version=v.version,
        model=prepared.target.model or v.model,
        suite_run_id=str(prepared.suite.id),
        status="error",
        error_type=exc.type,
        error_message=exc.message,
    )
    with reg.db.writing() as conn:
        insert_runs(conn, [record])
    return CaseResult(
        case=case.name,
        status=ERROR,
        variables=case.variables,
        output=None,
        assertions=[],
        position=case.position,
        error=exc.message,
        run_id=record.id,
    )


class _Grading:
    """Runs ``llm-rubric`` graders through the runner and adds up their cost per suite run."""

    def __init__(self, reg: RegistryService) -> None:
        # lazy for cold start: the runner loads the anthropic SDK
        from ..runner import runner_of

        self.reg = reg
        self.runner = runner_of(reg)
        self.cost: dict[int, float] = {}
        self._lock = threading.Lock()

    def grader_for(self, suite_run_id: int) -> Any:
        def run(name: str, variables: Mapping[str, Any], *, label: str) -> RunResult:
            result = self.runner.run(
                name, variables, label=label, source="rubric", suite_run_id=str(suite_run_id)
            )
            if result.cost_usd is not None:
                with self._lock:
                    self.cost[suite_run_id] = self.cost.get(suite_run_id, 0.0) + result.cost_usd
            return result

        return make_grader(self.reg, run)


def _case_result(result: ItemResult, grading: _Grading) -> CaseResult:
    data = result.item.data or {}
    variables = dict(data.get("variables") or {})
    common: dict[str, Any] = {
        "case": str(data.get("case")),
        "variables": variables,
        "position": int(data.get("position") or 0),
        "run_id": result.run_id,
        "stop_reason": result.stop_reason,
        "cost_usd": result.cost_usd,
    }
    if result.error is not None:
        return CaseResult(
            status=ERROR,
            output=result.text or None,
            assertions=[],
            error=result.error.message,
            **common,
        )
    suite_run_id = int(result.item.suite_run_id or 0)
    out = CaseOutput(
        text=result.text,
        parsed=result.parsed,
        stop_reason=result.stop_reason,
        cost_usd=result.cost_usd,
        latency_ms=None,
        variables=variables,
    )
    checks = [
        replace(check, message=NO_LATENCY)
        if check.type == "latency-under" and not check.passed
        else check
        for check in check_assertions(
            list(data.get("assertions") or []), out, grade=grading.grader_for(suite_run_id)
        )
    ]
    return CaseResult(
        status=PASSED if all(c.passed for c in checks) else FAILED,
        output=out.text,
        assertions=checks,
        **common,
    )


def _batches(reg: RegistryService) -> Batches:
    # lazy for cold start: batches load the anthropic SDK
    from ..batch.jobs import batches_of

    return batches_of(reg)


def _set_batch_id(reg: RegistryService, suite_run_ids: Sequence[int], batch_id: str) -> None:
    with reg.db.writing() as conn:
        conn.execute(
            sa.update(SuiteRunRow)
            .where(SuiteRunRow.id.in_(suite_run_ids))
            .values(batch_id=batch_id)
        )


def _write(reg: RegistryService, suite_run_id: int, results: Sequence[CaseResult]) -> None:
    if results:
        with reg.db.transaction() as s:
            s.add_all(case_result_row(suite_run_id, r) for r in results)


def run_suites_batched(
    reg: RegistryService,
    targets: Sequence[SuiteTarget],
    *,
    actor: str = "",
    on_start: Callable[[SuiteRun], None] | None = None,
    on_submitted: Callable[[StoredBatch], None] | None = None,
    progress: BatchProgress | None = None,
    timeout: float | None = None,
    wait: bool = True,
) -> list[SuiteRun]:
    """Run the suites of ``targets`` as one Message Batch; returns the finished suite runs.

    ``on_start`` sees each suite run once stored (``running``), ``on_submitted`` the batch
    once the API took it, ``progress`` the batch after each poll. A case that cannot be
    rendered is an ``error`` case and is not sent. ``timeout`` bounds the wait for the batch:
    it keeps running, and :func:`resume_suite_batch` finishes the suite runs later (so does an
    interrupted process). ``wait=False`` returns the suite runs still ``running`` as soon as
    the batch is submitted.
    """
    # lazy for cold start: batches load the anthropic SDK
    from ..batch.items import Item, Planner

    if not targets:
        raise ValidationError("no suite to run", field="targets")
    batches = _batches(reg)
    prepared = [_prepare(reg, t, actor) for t in targets]
    items: list[Item] = []
    for t, p in enumerate(prepared):
        if on_start is not None:
            on_start(p.suite)
        planner = Planner(
            p.version,
            label=p.target.label,
            source=SOURCE,
            model=p.target.model,
            suite_run_id=p.suite.id,
        )
        unsent: list[CaseResult] = []
        for c, case in enumerate(p.cases):
            data = {
                "case": case.name,
                "position": case.position,
                "variables": case.variables,
                "assertions": case.assertions,
            }
            try:
                items.append(planner.plan(case.variables, f"s{t}-c{c}", data))
            except ConfigurationError:
                raise
            except RegistryError as exc:
                unsent.append(_unsent(reg, p, case, exc))
        _write(reg, p.suite.id, unsent)
    suite_ids = [p.suite.id for p in prepared]
    if not items:
        return [_finish(reg, p.suite.id, 0.0) for p in prepared]
    try:
        batch = batches.submit(
            "suite",
            items,
            prompt=prepared[0].target.name if len(prepared) == 1 else None,
            version=prepared[0].version.version if len(prepared) == 1 else None,
            options={"suite_runs": suite_ids},
            actor=actor,
            on_stored=lambda stored: _set_batch_id(reg, suite_ids, stored.id),
        )
    except BaseException as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        for p in prepared:
            _finish(reg, p.suite.id, 0.0, status=ERROR, error=message)
        raise
    _set_batch_id(reg, suite_ids, batch.name)
    if on_submitted is not None:
        on_submitted(batch)
    if not wait:
        return [get_suite_run(reg, i) for i in suite_ids]
    return _complete(reg, batch, progress=progress, timeout=timeout)


def _finish(
    reg: RegistryService,
    suite_run_id: int,
    grader_cost: float,
    *,
    status: str | None = None,
    error: str | None = None,
) -> SuiteRun:
    suite = get_suite_run(reg, suite_run_id)
    return finish_suite_run(
        reg, suite, list(suite.results), status=status, error=error, grader_cost=grader_cost
    )


def _complete(
    reg: RegistryService,
    batch: StoredBatch,
    *,
    progress: BatchProgress | None,
    timeout: float | None,
) -> list[SuiteRun]:
    """Follow the batch to its end, check every case, and finish its suite runs."""
    batches = _batches(reg)
    suite_ids = [int(i) for i in batch.options.get("suite_runs") or []]
    suites = {i: get_suite_run(reg, i) for i in suite_ids}
    batch = batches.follow(batch, progress=progress, timeout=timeout)
    schemas: dict[tuple[str, int], Mapping[str, Any] | None] = {}
    for suite in suites.values():
        version = reg.get(suite.prompt, version=suite.version)
        schemas[(suite.prompt, suite.version)] = version.output_schema
    mapped = batches.collect(batch, schemas=schemas)
    grading = _Grading(reg)
    by_suite: dict[int, list[ItemResult]] = {}
    for result in mapped:
        by_suite.setdefault(int(result.item.suite_run_id or 0), []).append(result)
    finished = []
    for suite_id, suite in suites.items():
        done = {r.run_id for r in suite.results}
        fresh = [
            _case_result(r, grading) for r in by_suite.get(suite_id, []) if r.run_id not in done
        ]
        _write(reg, suite_id, fresh)
        finished.append(_finish(reg, suite_id, grading.cost.get(suite_id, 0.0)))
    batches.finish(batch)
    return finished


def resume_suite_batch(
    reg: RegistryService,
    batch_id: str,
    *,
    progress: BatchProgress | None = None,
    timeout: float | None = None,
) -> list[SuiteRun]:
    """Finish the suite runs of a batch submitted earlier (by our id or the API's).

    Nothing is submitted: the batch is followed to its end, its results are mapped and the
    suite runs finish. Suite runs already finished are returned as they are.
    """
    batches = _batches(reg)
    batch = batches.get(batch_id)
    if batch.kind != "suite":
        raise ValidationError(
            f"batch {batch.name} is a bulk job, not a suite run: resume it with "
            f"`prompt-registry batch --resume {batch.name}`",
            field="batch_id",
        )
    if not batch.open:
        ids = [int(i) for i in batch.options.get("suite_runs") or []]
        return [get_suite_run(reg, i) for i in ids]
    return _complete(reg, batch, progress=progress, timeout=timeout)


def open_suite_batch(
    reg: RegistryService, name: str, version: int, model: str | None = None
) -> str | None:
    """The batch of the newest suite run of ``name`` v``version`` (with ``model``) that is
    still waiting for its batch, or None (``test NAME --batch`` resumes it)."""
    query = (
        sa.select(SuiteRunRow.batch_id, SuiteRunRow.status)
        .join(prompts, prompts.c.id == SuiteRunRow.prompt_id)
        .where(
            prompts.c.name == name,
            SuiteRunRow.version == version,
            SuiteRunRow.batch_id.is_not(None),
            SuiteRunRow.model.is_(None) if model is None else SuiteRunRow.model == model,
        )
        .order_by(SuiteRunRow.id.desc())
        .limit(1)
    )
    with reg.db.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or row.status != "running":
        return None
    return str(row.batch_id)


__all__ = [
    "SuiteTarget",
    "open_suite_batch",
    "resume_suite_batch",
    "run_suites_batched",
]
