"""The experiment report: per variant units, exposures, runs and outcome metrics, compared
against control with intervals and p-values, plus a sample ratio mismatch check.

What counts: runs logged with the experiment's key whose ``source`` is ``app`` or ``http``
(regression tests, rubric grading and the playground do not). Means (latency, cost, tokens) are
over successful runs; error and refusal rates over every run; a feedback score is averaged per
run first. Each run is one observation (runs of one unit are treated as independent, which
slightly overstates certainty when units run many times). Units and exposures come from the
experiment's assignment table (see :mod:`registry.experiments.serving`).

The SQL side returns sums and sums of squares per variant, so a report over millions of runs
moves a few rows, not the runs; :mod:`registry.experiments.stats` does the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models.base import utcnow
from ..models.experiments import AssignmentRow
from ..models.runs import FeedbackRow, RunRow
from .definitions import FEEDBACK_PREFIX, MEAN_COLUMNS, RUN_METRICS, Experiment, Metric, metric
from .serving import COUNTED_SOURCES, runtime
from .stats import (
    Counts,
    Difference,
    Moments,
    compare_means,
    compare_rates,
    holm,
    mean_interval,
    rate_interval,
    sample_ratio_p,
)

if TYPE_CHECKING:
    from ..service import RegistryService

#: significance level of the report's comparisons (after Holm's adjustment)
ALPHA = 0.05
#: below this p-value the unit split is reported as a sample ratio mismatch
SRM_ALPHA = 0.001

_R = RunRow.__table__.c
_F = FeedbackRow.__table__.c
_A = AssignmentRow.__table__.c
_EMPTY = Moments(0, math.nan, math.nan)


# -- the data one variant contributes ---------------------------------------------------------


@dataclass
class VariantData:
    """What the database holds for one variant: counts, moments of each mean metric, rates."""

    key: str
    units: int = 0
    exposures: int = 0
    runs: int = 0
    means: dict[str, Moments] = field(default_factory=dict)
    rates: dict[str, Counts] = field(default_factory=dict)

    @classmethod
    def from_runs(
        cls,
        key: str,
        runs: Sequence[dict[str, Any]],
        *,
        units: int = 0,
        exposures: int = 0,
        feedback: dict[str, Sequence[float]] | None = None,
    ) -> VariantData:
        """Build from run dicts (status, stop_reason, metric columns), e.g. in a simulation."""
        ok = [r for r in runs if r.get("status") == "ok"]
        data = cls(key, units=units, exposures=exposures, runs=len(runs))
        for column in MEAN_COLUMNS:
            data.means[column] = Moments.of(r[column] for r in ok if r.get(column) is not None)
        data.rates["error_rate"] = Counts(len(runs), sum(r.get("status") == "error" for r in runs))
        data.rates["refusal_rate"] = Counts(
            len(runs), sum(r.get("stop_reason") == "refusal" for r in runs)
        )
        for name, values in (feedback or {}).items():
            data.means[FEEDBACK_PREFIX + name] = Moments.of(values)
        return data

    def rate(self, name: str) -> Counts:
        """The events behind rate metric ``name`` (none recorded: 0 of ``runs``)."""
        return self.rates.get(name, Counts(self.runs, 0))

    def moments(self, name: str) -> Moments:
        """The moments of mean metric ``name`` (none recorded: empty)."""
        return self.means.get(name, _EMPTY)


def by_variant(experiment: Experiment, data: Sequence[VariantData]) -> dict[str, VariantData]:
    """``data`` by variant key: the experiment's variants first (empty when they have no data),
    then variants no longer in the definition."""
    return {v.key: VariantData(v.key) for v in experiment.variants} | {d.key: d for d in data}


def _counted(key: str) -> sa.ColumnElement[bool]:
    return sa.and_(_R.experiment == key, _R.source.in_(COUNTED_SOURCES), _R.variant.is_not(None))


def load_data(
    reg: RegistryService, experiment: Experiment, *, feedback: bool = True
) -> list[VariantData]:
    """Aggregate the experiment's runs, feedback and assignments per variant (one pass each).

    ``feedback=False`` skips the feedback scores (guardrails on run metrics do not need them).
    """
    data = {v.key: VariantData(v.key) for v in experiment.variants}

    def get(key: str) -> VariantData:
        if key not in data:  # a variant no longer in the definition: still reported
            data[key] = VariantData(key)
        return data[key]

    ok = _R.status == "ok"
    columns: list[Any] = [
        _R.variant,
        sa.func.count().label("runs"),
        sa.func.sum(sa.case((_R.status == "error", 1), else_=0)).label("errors"),
        sa.func.sum(sa.case((_R.stop_reason == "refusal", 1), else_=0)).label("refusals"),
    ]
    for name in MEAN_COLUMNS:
        value = sa.case((ok, sa.cast(_R[name], sa.Float)))
        columns += [sa.func.count(value), sa.func.sum(value), sa.func.sum(value * value)]
    # one score per run and name (averaged), over the experiment's counted runs only
    per_run = (
        sa.select(
            _R.variant,
            _F.name,
            sa.func.avg(sa.cast(_F.value, sa.Float)).label("score"),
        )
        .select_from(FeedbackRow.__table__.join(RunRow.__table__, _R.id == _F.run_id))
        .where(_counted(experiment.key))
        .group_by(_R.variant, _F.run_id, _F.name)
        .subquery()
    )
    score = per_run.c.score
    with reg.db.snapshot() as s:
        for row in s.execute(
            sa.select(*columns).where(_counted(experiment.key)).group_by(_R.variant)
        ):
            d = get(row[0])
            d.runs = int(row[1])
            d.rates["error_rate"] = Counts(d.runs, int(row[2] or 0))
            d.rates["refusal_rate"] = Counts(d.runs, int(row[3] or 0))
            for i, name in enumerate(MEAN_COLUMNS):
                n, total, total_sq = row[4 + 3 * i : 7 + 3 * i]
                d.means[name] = Moments.from_sums(int(n or 0), total, total_sq)
        if feedback:
            for variant, name, n, total, total_sq in s.execute(
                sa.select(
                    per_run.c.variant,
                    per_run.c.name,
                    sa.func.count(),
                    sa.func.sum(score),
                    sa.func.sum(score * score),
                ).group_by(per_run.c.variant, per_run.c.name)
            ):
                get(variant).means[FEEDBACK_PREFIX + name] = Moments.from_sums(
                    int(n), total, total_sq
                )
        for variant, units, exposures in s.execute(
            sa.select(_A.variant, sa.func.count(), sa.func.sum(_A.exposures))
            .where(_A.experiment_id == experiment.id)
            .group_by(_A.variant)
        ):
            d = get(variant)
            d.units, d.exposures = int(units), int(exposures or 0)
    return list(data.values())


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one variant: observations, mean (or rate) and its confidence interval."""

    metric: str
    n: int
    mean: float
    low: float
    high: float
    count: int | None = None  # events behind a rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes null)."""
        out: dict[str, Any] = {
            "n": self.n,
            "mean": _num(self.mean),
            "ci_low": _num(self.low),
            "ci_high": _num(self.high),
        }
        if self.count is not None:
            out["count"] = self.count
        return out


@dataclass(frozen=True)
class Comparison:
    """A treatment against control on one metric."""

    metric: str
    variant: str
    control: str
    diff: float
    low: float
    high: float
    relative: float
    p_value: float
    p_adjusted: float
    significant: bool
    #: True when the treatment is significantly better, False significantly worse, else None
    better: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes null)."""
        return {
            "metric": self.metric,
            "variant": self.variant,
            "control": self.control,
            "diff": _num(self.diff),
            "ci_low": _num(self.low),
            "ci_high": _num(self.high),
            "relative": _num(self.relative),
            "p_value": _num(self.p_value),
            "p_adjusted": _num(self.p_adjusted),
            "significant": self.significant,
            "better": self.better,
        }


@dataclass(frozen=True)
class VariantReport:
    """One variant: its definition, traffic and metric summaries."""

    key: str
    version: int | None
    weight: float
    units: int
    exposures: int
    runs: int
    metrics: dict[str, MetricSummary]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "version": self.version,
            "weight": self.weight,
            "units": self.units,
            "exposures": self.exposures,
            "runs": self.runs,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
        }


@dataclass(frozen=True)
class Report:
    """An experiment's report: variants, comparisons against control, and warnings."""

    experiment: Experiment
    variants: list[VariantReport]
    comparisons: list[Comparison]
    metrics: list[Metric]
    srm_p_value: float
    warnings: list[str]
    alpha: float = ALPHA
    confidence: float = 0.95
    generated_at: datetime = field(default_factory=utcnow)

    @property
    def control(self) -> str:
        """The control variant's key."""
        return self.experiment.control.key

    @property
    def srm(self) -> bool:
        """True when the unit split does not match the weights (p < 0.001)."""
        return not math.isnan(self.srm_p_value) and self.srm_p_value < SRM_ALPHA

    @property
    def flagged(self) -> list[Comparison]:
        """Comparisons significant after Holm's adjustment."""
        return [c for c in self.comparisons if c.significant]

    def comparison(self, metric_name: str, variant: str) -> Comparison:
        """The comparison of ``variant`` against control on ``metric_name``."""
        for c in self.comparisons:
            if c.metric == metric_name and c.variant == variant:
                return c
        raise KeyError(f"no comparison of {variant!r} on {metric_name!r}")

    def variant(self, key: str) -> VariantReport:
        """The report of one variant."""
        for v in self.variants:
            if v.key == key:
                return v
        raise KeyError(f"no variant {key!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as ``GET /api/v1/experiments/<key>/report`` answers it."""
        return {
            "experiment": self.experiment.to_dict(),
            "generated_at": self.generated_at.isoformat(),
            "alpha": self.alpha,
            "confidence": self.confidence,
            "control": self.control,
            "metrics": [
                {
                    "name": m.name,
                    "title": m.title,
                    "kind": m.kind,
                    "unit": m.unit,
                    "higher_is_better": m.higher_is_better,
                }
                for m in self.metrics
            ],
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "srm": {"p_value": _num(self.srm_p_value), "mismatch": self.srm},
            "flagged": [f"{c.variant}:{c.metric}" for c in self.flagged],
            "warnings": list(self.warnings),
        }


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def analyze(
    experiment: Experiment,
    data: Sequence[VariantData],
    *,
    alpha: float = ALPHA,
    confidence: float = 0.95,
) -> Report:
    """Turn per-variant data into a report (pure: no database)."""
    by_key = by_variant(experiment, data)
    feedback = sorted({m for d in data for m in d.means if m.startswith(FEEDBACK_PREFIX)})
    metrics = [*RUN_METRICS.values(), *(metric(name) for name in feedback)]
    defined = {v.key: v for v in experiment.variants}

    variants: list[VariantReport] = []
    for key, d in by_key.items():
        summaries: dict[str, MetricSummary] = {}
        for m in metrics:
            if m.kind == "rate":
                c = d.rate(m.name)
                low, high = rate_interval(c, confidence)
                summaries[m.name] = MetricSummary(m.name, c.n, c.rate, low, high, count=c.k)
            else:
                mo = d.moments(m.name)
                low, high = mean_interval(mo, confidence)
                summaries[m.name] = MetricSummary(m.name, mo.n, mo.mean, low, high)
        v = defined.get(key)
        variants.append(
            VariantReport(
                key=key,
                version=v.version if v else None,
                weight=v.weight if v else 0.0,
                units=d.units,
                exposures=d.exposures,
                runs=d.runs,
                metrics=summaries,
            )
        )

    control_key = experiment.control.key
    control = by_key[control_key]
    raw: list[tuple[Metric, str, Difference, float]] = []
    for v in experiment.variants[1:]:
        treatment = by_key[v.key]
        for m in metrics:
            if m.kind == "rate":
                c0, c1 = control.rate(m.name), treatment.rate(m.name)
                diff, base = compare_rates(c0, c1, confidence), c0.rate
            else:
                m0, m1 = control.moments(m.name), treatment.moments(m.name)
                diff, base = compare_means(m0, m1, confidence), m0.mean
            relative = diff.diff / base if base and not math.isnan(base) else math.nan
            raw.append((m, v.key, diff, relative))
    adjusted = holm([r[2].p_value for r in raw])
    comparisons: list[Comparison] = []
    for (m, key, diff, relative), p_adj in zip(raw, adjusted, strict=True):
        significant = not math.isnan(p_adj) and p_adj < alpha
        better = ((diff.diff > 0) == m.higher_is_better) if significant else None
        comparisons.append(
            Comparison(
                metric=m.name,
                variant=key,
                control=control_key,
                diff=diff.diff,
                low=diff.low,
                high=diff.high,
                relative=relative,
                p_value=diff.p_value,
                p_adjusted=p_adj,
                significant=significant,
                better=better,
            )
        )

    observed = [by_key[v.key].units for v in experiment.variants]
    srm_p = sample_ratio_p(observed, [v.weight for v in experiment.variants])
    warnings: list[str] = []
    if not math.isnan(srm_p) and srm_p < SRM_ALPHA:
        split = ", ".join(
            f"{v.key}={n}" for v, n in zip(experiment.variants, observed, strict=True)
        )
        note = (
            " (weights changed during a sticky experiment can explain it)"
            if experiment.sticky
            else ""
        )
        warnings.append(
            f"sample ratio mismatch: units per variant ({split}) do not match the weights "
            f"(chi-square p={srm_p:.2g} < {SRM_ALPHA}); check assignment and logging before "
            f"trusting the results{note}"
        )
    for v in experiment.variants:
        n = by_key[v.key].runs
        if n < 2:
            warnings.append(f"variant {v.key!r} has {n} run(s): no comparison is possible yet")
    return Report(
        experiment=experiment,
        variants=variants,
        comparisons=comparisons,
        metrics=metrics,
        srm_p_value=srm_p,
        warnings=warnings,
        alpha=alpha,
        confidence=confidence,
    )


def build_report(
    reg: RegistryService, key: str, *, alpha: float = ALPHA, confidence: float = 0.95
) -> Report:
    """The report of experiment ``key`` from the database (this process's exposures included).

    >>> build_report(reg, "support-tone").to_dict()   # doctest: +SKIP
    """
    from .service import get

    if not 0 < alpha < 1 or not 0 < confidence < 1:
        from ..errors import ValidationError

        raise ValidationError("alpha and confidence must be between 0 and 1", field="alpha")
    experiment = get(reg, key)
    runtime(reg).flush()
    return analyze(experiment, load_data(reg, experiment), alpha=alpha, confidence=confidence)


__all__ = [
    "ALPHA",
    "SRM_ALPHA",
    "Comparison",
    "MetricSummary",
    "Report",
    "VariantData",
    "VariantReport",
    "analyze",
    "build_report",
    "by_variant",
    "load_data",
]
