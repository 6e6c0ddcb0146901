"""Run a prompt's suite against one version: every case through the runner, K at a time.

Each case is rendered and run with ``reg.run(..., source="test", suite_run_id=...)``; its
assertions are checked on the answer. A run that fails (API error, render error, timeout) is a
case in ``error`` — a failure, not a crash. The suite run and each case result are stored as
they complete, so the admin can follow a long run. Missing configuration (no API key) stops
the whole suite with that error instead of failing every case the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ConfigurationError, RegistryError, ValidationError
from ..labels import lock_prompt
from ..models import utcnow
from ..models.suites import SuiteRunRow
from ..names import LATEST
from .assertions import CaseOutput, Grader, check_assertions
from .cases import Case, cases_fingerprint, list_cases
from .results import (
    ERROR,
    FAILED,
    PASSED,
    CaseResult,
    SuiteRun,
    case_result_row,
    row_to_suite_run,
)
from .rubric import make_grader

if TYPE_CHECKING:
    from ..run_result import RunResult
    from ..service import RegistryService
    from ..versions import PromptVersion

#: cases run at once unless told otherwise (``REGISTRY_SUITE_CONCURRENCY``)
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64

#: called after each case with (result, cases done, total)
ProgressCallback = Callable[[CaseResult, int, int], None]


def default_concurrency() -> int:
    """``REGISTRY_SUITE_CONCURRENCY`` or 4."""
    try:
        return max(1, min(MAX_CONCURRENCY, int(os.environ.get("REGISTRY_SUITE_CONCURRENCY", ""))))
    except ValueError:
        return DEFAULT_CONCURRENCY


def resolve_version(
    reg: RegistryService, name: str, *, version: int | None = None, label: str | None = None
) -> PromptVersion:
    """The version a suite targets: ``version``, else ``label``, else the newest (``latest``)."""
    if version is not None and label is not None:
        raise ValidationError("give --version or --label, not both", field="version")
    if version is not None:
        return reg.get(name, version=version)
    return reg.get(name, label=label or LATEST)


class _Execution:
    """The state of one suite run while its cases execute."""

    def __init__(
        self,
        reg: RegistryService,
        target: PromptVersion,
        suite_run_id: int,
        run_options: Mapping[str, Any],
    ) -> None:
        # lazy for cold start: the runner loads the anthropic SDK, which importing the suites
        # (the promotion gate, case editing) never needs
        from ..runner import runner_of

        self.reg = reg
        self.runner = runner_of(reg)
        self.target = target
        self.suite_run_id = suite_run_id
        self.run_options = dict(run_options)
        self._lock = threading.Lock()
        self.grader_cost = 0.0
        self.grader: Grader = make_grader(reg, self._run_grader)

    def _run_grader(self, name: str, variables: Mapping[str, Any], *, label: str) -> RunResult:
        result = self.runner.run(
            name,
            variables,
            label=label,
            source="rubric",
            suite_run_id=str(self.suite_run_id),
            **self.run_options,
        )
        if result.cost_usd is not None:
            with self._lock:
                self.grader_cost += result.cost_usd
        return result

    def run_case(self, case: Case) -> CaseResult:
        """Run one case and check its assertions; a failed run becomes an ``error`` result."""
        try:
            result = self.runner.run(
                self.target.name,
                case.variables,
                version=self.target.version,
                source="test",
                suite_run_id=str(self.suite_run_id),
                **self.run_options,
            )
        except ConfigurationError:
            raise
        except RegistryError as exc:
            return _errored(case, exc.message, getattr(exc, "run_id", None), exc)
        except Exception as exc:  # an unexpected bug must not lose the other cases
            return _errored(case, f"{type(exc).__name__}: {exc}", None, exc)
        # reg.run raises on a failed run: a result returned here is ``ok``
        text = result.text
        out = CaseOutput(
            text=text,
            parsed=result.parsed,
            stop_reason=result.stop_reason,
            cost_usd=result.cost_usd,
            latency_ms=result.latency_ms,
            variables=case.variables,
        )
        checks = check_assertions(case.assertions, out, grade=self.grader)
        return CaseResult(
            case=case.name,
            status=PASSED if all(c.passed for c in checks) else FAILED,
            variables=case.variables,
            output=text,
            assertions=checks,
            position=case.position,
            stop_reason=out.stop_reason,
            run_id=result.run_id,
            cost_usd=out.cost_usd,
            latency_ms=out.latency_ms,
        )


def _errored(case: Case, message: str, run_id: str | None, exc: BaseException) -> CaseResult:
    partial = getattr(exc, "partial_text", None)
    return CaseResult(
        case=case.name,
        status=ERROR,
        variables=case.variables,
        output=partial if isinstance(partial, str) else None,
        assertions=[],
        position=case.position,
        error=message,
        run_id=run_id,
    )


def run_suite(
    reg: RegistryService,
    name: str,
    *,
    version: int | None = None,
    label: str | None = None,
    concurrency: int | None = None,
    actor: str = "",
    timeout: float | None = None,
    max_retries: int | None = None,
    progress: ProgressCallback | None = None,
    on_start: Callable[[SuiteRun], None] | None = None,
) -> SuiteRun:
    """Run every test case of ``name`` against one version and store the outcome.

    The version is ``version``, else the one ``label`` points at, else the newest. At most
    ``concurrency`` cases run at once (default ``REGISTRY_SUITE_CONCURRENCY`` or 4).
    ``timeout`` and ``max_retries`` are passed to each run. ``on_start`` sees the new suite run
    (status ``running``), ``progress`` each finished case. Returns the finished
    :class:`SuiteRun` with its results in case order; its status is ``passed`` only when every
    case passed. Raises ``ValidationError`` when the prompt has no test cases.
    """
    k = default_concurrency() if concurrency is None else concurrency
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_CONCURRENCY:
        raise ValidationError(
            f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {k!r}", field="concurrency"
        )
    target = resolve_version(reg, name, version=version, label=label)
    cases = list_cases(reg, name)
    if not cases:
        raise ValidationError(
            f"prompt {name!r} has no test cases: add some under `tests:` in its YAML file "
            "(then `prompt-registry seed`) or in the admin",
            field="tests",
        )
    suite = open_suite_run(
        reg, name, target.version, cases, label=label, actor=actor, concurrency=k
    )
    if on_start is not None:
        on_start(suite)
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    execution = _Execution(reg, target, suite.id, options)
    results: list[CaseResult] = []
    try:
        with ThreadPoolExecutor(
            max_workers=min(k, len(cases)), thread_name_prefix=f"suite-{suite.id}"
        ) as pool:
            pending: set[Future[CaseResult]] = {pool.submit(execution.run_case, c) for c in cases}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        with reg.db.transaction() as s:
                            s.add(case_result_row(suite.id, result))
                        results.append(result)
                        if progress is not None:
                            progress(result, len(results), len(cases))
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    except BaseException as exc:
        message = (
            getattr(exc, "message", None)
            or ("interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc))
            or type(exc).__name__
        )
        finish_suite_run(
            reg, suite, results, status=ERROR, error=message, grader_cost=execution.grader_cost
        )
        raise
    return finish_suite_run(
        reg, suite, results, status=None, error=None, grader_cost=execution.grader_cost
    )


def open_suite_run(
    reg: RegistryService,
    name: str,
    version: int,
    cases: list[Case],
    *,
    label: str | None,
    actor: str,
    concurrency: int,
    model: str | None = None,
) -> SuiteRun:
    """Store a new suite run of ``name`` v``version`` over ``cases`` (status ``running``).

    ``model`` marks a run with another model than the version's (a model matrix): such a run
    is kept for comparison and never counts for the promotion gate.
    """
    with reg.db.transaction() as s:
        prompt = lock_prompt(s, name)
        row = SuiteRunRow(
            prompt_id=prompt.id,
            version=version,
            label=label,
            status="running",
            total=len(cases),
            concurrency=concurrency,
            cases_hash=cases_fingerprint(cases),
            actor=actor,
            started_at=utcnow(),
            model=model,
        )
        s.add(row)
        s.flush()
        return row_to_suite_run(row, name)


def finish_suite_run(
    reg: RegistryService,
    suite: SuiteRun,
    results: list[CaseResult],
    *,
    status: str | None,
    error: str | None,
    grader_cost: float = 0.0,
) -> SuiteRun:
    """Write the counts and final status of a suite run; returns it with its results.

    ``status`` None means passed when every case passed, else failed.
    """
    results.sort(key=lambda r: (r.position, r.case))
    passed = sum(r.passed for r in results)
    errored = sum(r.status == ERROR for r in results)
    failed = len(results) - passed - errored
    costs = [r.cost_usd for r in results if r.cost_usd is not None]
    cost = sum(costs) + grader_cost if costs or grader_cost else None
    with reg.db.transaction() as s:
        row = s.scalars(sa.select(SuiteRunRow).where(SuiteRunRow.id == suite.id)).one()
        if status is None:
            status = PASSED if passed == row.total else FAILED
        row.status = status
        row.passed, row.failed, row.errored = passed, failed, errored
        row.cost_usd = cost
        row.error = error
        row.finished_at = utcnow()
        finished = row_to_suite_run(row, suite.prompt)
    return finished.with_results(results)


__all__ = [
    "DEFAULT_CONCURRENCY",
    "ProgressCallback",
    "default_concurrency",
    "finish_suite_run",
    "open_suite_run",
    "resolve_version",
    "run_suite",
]
