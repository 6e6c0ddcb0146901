"""Compare two versions on the same suite: per case both answers, which assertions changed
(pass -> fail, fail -> pass) and the cost and latency deltas.

:func:`compare_runs` is pure (two stored suite runs in, a comparison out);
:func:`compare_versions` runs the suite on the new version and, for the baseline, reuses its
latest finished run on the same cases when there is one (``fresh=True`` runs it again).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import TYPE_CHECKING

from .assertions import AssertionResult
from .cases import cases_fingerprint, list_cases
from .results import ERROR, RUNNING, CaseResult, SuiteRun, get_suite_run, suite_runs
from .runner import ProgressCallback, run_suite

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..service import RegistryService


@dataclass(frozen=True)
class AssertionChange:
    """One assertion whose verdict differs between the two runs (None: absent in that run)."""

    index: int
    description: str
    old: bool | None
    new: bool | None
    old_message: str = ""
    new_message: str = ""

    @property
    def kind(self) -> str:
        """``pass->fail``, ``fail->pass``, ``added`` or ``removed``."""
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "pass->fail" if self.old else "fail->pass"

    def describe(self) -> str:
        """One line, e.g. ``contains "4.2": pass->fail``."""
        return f"{self.description}: {self.kind}"


@dataclass(frozen=True)
class CaseComparison:
    """One case in both runs."""

    case: str
    old: CaseResult | None
    new: CaseResult | None
    changes: list[AssertionChange]

    @property
    def status_change(self) -> str:
        """``passed -> failed`` style transition ('' when the status is the same)."""
        before = self.old.status if self.old else "absent"
        after = self.new.status if self.new else "absent"
        return "" if before == after else f"{before} -> {after}"

    @property
    def regressed(self) -> bool:
        """Passed before, does not pass now."""
        return bool(self.old and self.old.passed and not (self.new and self.new.passed))

    @property
    def fixed(self) -> bool:
        """Did not pass before, passes now."""
        return bool(self.new and self.new.passed and not (self.old and self.old.passed))

    @property
    def cost_delta(self) -> float | None:
        """New cost minus old cost in USD (None if either is unknown)."""
        if self.old is None or self.new is None:
            return None
        if self.old.cost_usd is None or self.new.cost_usd is None:
            return None
        return self.new.cost_usd - self.old.cost_usd

    @property
    def latency_delta(self) -> float | None:
        """New latency minus old latency in milliseconds (None if either is unknown)."""
        if self.old is None or self.new is None:
            return None
        if self.old.latency_ms is None or self.new.latency_ms is None:
            return None
        return self.new.latency_ms - self.old.latency_ms


@dataclass(frozen=True)
class SuiteComparison:
    """Two suite runs of one prompt, case by case."""

    old: SuiteRun
    new: SuiteRun
    cases: list[CaseComparison]

    @property
    def regressions(self) -> list[CaseComparison]:
        """Cases that passed on the old version and do not on the new one."""
        return [c for c in self.cases if c.regressed]

    @property
    def fixes(self) -> list[CaseComparison]:
        """Cases that did not pass on the old version and do on the new one."""
        return [c for c in self.cases if c.fixed]

    @property
    def cost_delta(self) -> float | None:
        """Total cost difference (new - old) over the cases both runs priced."""
        deltas = [c.cost_delta for c in self.cases if c.cost_delta is not None]
        return sum(deltas) if deltas else None

    @property
    def latency_delta(self) -> float | None:
        """Mean latency difference (new - old) in ms over the cases both runs timed."""
        deltas = [c.latency_delta for c in self.cases if c.latency_delta is not None]
        return mean(deltas) if deltas else None


def _key(a: AssertionResult) -> tuple[int, str]:
    return (a.index, a.description)


def _changes(old: CaseResult | None, new: CaseResult | None) -> list[AssertionChange]:
    # a run that errored has no verdicts: compare only what both runs checked, plus additions
    before = {_key(a): a for a in old.assertions} if old and old.status != ERROR else {}
    after = {_key(a): a for a in new.assertions} if new and new.status != ERROR else {}
    changes = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a.passed == b.passed:
            continue
        if (a is None and old is not None and old.status == ERROR) or (
            b is None and new is not None and new.status == ERROR
        ):
            continue  # the status change says it: the run failed on one side
        changes.append(
            AssertionChange(
                index=key[0],
                description=key[1],
                old=None if a is None else a.passed,
                new=None if b is None else b.passed,
                old_message=a.message if a else "",
                new_message=b.message if b else "",
            )
        )
    return changes


def compare_runs(old: SuiteRun, new: SuiteRun) -> SuiteComparison:
    """Line up two suite runs (with results) case by case, in the new run's case order."""
    old_by = {r.case: r for r in old.results}
    new_by = {r.case: r for r in new.results}
    names = [r.case for r in new.results] + [r.case for r in old.results if r.case not in new_by]
    return SuiteComparison(
        old=old,
        new=new,
        cases=[
            CaseComparison(
                case=n,
                old=old_by.get(n),
                new=new_by.get(n),
                changes=_changes(old_by.get(n), new_by.get(n)),
            )
            for n in names
        ],
    )


def reusable_run(reg: RegistryService, name: str, version: int) -> SuiteRun | None:
    """The latest finished run of ``version`` on the current cases, with results, or None."""
    fingerprint = cases_fingerprint(list_cases(reg, name))
    for run in suite_runs(reg, name, version=version, limit=5):
        if run.status in (RUNNING, ERROR):
            continue
        if run.cases_hash == fingerprint:
            return get_suite_run(reg, run.id)
        break
    return None


def compare_versions(
    reg: RegistryService,
    name: str,
    *,
    against: int,
    version: int | None = None,
    label: str | None = None,
    concurrency: int | None = None,
    actor: str = "",
    fresh: bool = False,
    timeout: float | None = None,
    max_retries: int | None = None,
    progress: ProgressCallback | None = None,
    on_start: Callable[[SuiteRun], None] | None = None,
) -> SuiteComparison:
    """Run the suite on the new version and compare it with version ``against``.

    The baseline reuses ``against``'s latest finished run when it ran the current cases, unless
    ``fresh`` is true; otherwise the suite runs on it too. Both runs are stored.
    """

    def run(v: int | None, lbl: str | None) -> SuiteRun:
        return run_suite(
            reg,
            name,
            version=v,
            label=lbl,
            concurrency=concurrency,
            actor=actor,
            timeout=timeout,
            max_retries=max_retries,
            progress=progress,
            on_start=on_start,
        )

    old = None if fresh else reusable_run(reg, name, against)
    if old is None:
        old = run(against, None)
    new = run(version, label)
    return compare_runs(old, new)


__all__ = [
    "AssertionChange",
    "CaseComparison",
    "SuiteComparison",
    "compare_runs",
    "compare_versions",
    "reusable_run",
]
