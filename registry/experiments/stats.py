"""The statistics of experiment reports and guardrails, on summary statistics.

Every distribution comes from ``scipy.stats`` (imported inside the functions, so importing this
module stays cheap): Student's t for the interval of a mean, Welch's t-test
(``ttest_ind_from_stats(equal_var=False)``, identical to ``ttest_ind`` on the raw values) for a
difference of means, the Wilson score interval (``binomtest(...).proportion_ci``) for a rate,
the two-proportion z-test (pooled standard error, ``norm.sf``) for a difference of rates, and
``chisquare`` for the sample ratio mismatch check. Holm's step-down adjustment keeps the chance of
any false "significant" in a report at ``alpha`` however many metrics and variants it holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NAN = float("nan")


@dataclass(frozen=True)
class Moments:
    """Count, mean and sample variance (ddof=1; 0 below two values) of a metric's values."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        """From raw values (two-pass, numerically stable)."""
        data = [float(v) for v in values]
        n = len(data)
        if n == 0:
            return cls(0, NAN, NAN)
        mean = math.fsum(data) / n
        variance = math.fsum((x - mean) ** 2 for x in data) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, variance)

    @classmethod
    def from_sums(cls, n: int, total: float | None, total_sq: float | None) -> Moments:
        """From ``n``, the sum and the sum of squares (as SQL aggregates return them)."""
        if n <= 0 or total is None or total_sq is None:
            return cls(0, NAN, NAN)
        mean = float(total) / n
        variance = max(0.0, (float(total_sq) - float(total) * mean) / (n - 1)) if n > 1 else 0.0
        return cls(n, mean, variance)

    @property
    def std(self) -> float:
        """Sample standard deviation."""
        return math.sqrt(self.variance) if self.n > 0 else NAN

    @property
    def sem(self) -> float:
        """Standard error of the mean."""
        return math.sqrt(self.variance / self.n) if self.n > 0 else NAN


@dataclass(frozen=True)
class Counts:
    """``k`` events (errors, refusals) out of ``n`` runs."""

    n: int
    k: int

    @property
    def rate(self) -> float:
        """``k / n`` (NaN without runs)."""
        return self.k / self.n if self.n else NAN


@dataclass(frozen=True)
class Difference:
    """Treatment minus control, its confidence interval and the two-sided p-value."""

    diff: float
    low: float
    high: float
    p_value: float


def mean_interval(m: Moments, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean (NaN below two values)."""
    from scipy import stats

    if m.n < 2:
        return NAN, NAN
    if m.variance == 0:
        return m.mean, m.mean
    low, high = stats.t.interval(confidence, m.n - 1, loc=m.mean, scale=m.sem)
    return float(low), float(high)


def rate_interval(c: Counts, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate (NaN without runs)."""
    from scipy import stats

    if c.n == 0:
        return NAN, NAN
    ci = stats.binomtest(c.k, c.n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def welch_df(control: Moments, treatment: Moments) -> float:
    """Welch-Satterthwaite degrees of freedom."""
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    denominator = vc**2 / (control.n - 1) + vt**2 / (treatment.n - 1)
    return (vc + vt) ** 2 / denominator if denominator > 0 else NAN


def compare_means(control: Moments, treatment: Moments, confidence: float = 0.95) -> Difference:
    """Welch's t-test of treatment vs control, with the interval of the difference."""
    from scipy import stats

    diff = treatment.mean - control.mean
    if control.n < 2 or treatment.n < 2:
        return Difference(diff, NAN, NAN, NAN)
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    if se == 0:  # both constant: the difference is exact
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0)
    result = stats.ttest_ind_from_stats(
        treatment.mean,
        treatment.std,
        treatment.n,
        control.mean,
        control.std,
        control.n,
        equal_var=False,
    )
    q = float(stats.t.ppf(0.5 + confidence / 2, welch_df(control, treatment)))
    return Difference(diff, diff - q * se, diff + q * se, float(result.pvalue))


def compare_rates(control: Counts, treatment: Counts, confidence: float = 0.95) -> Difference:
    """Two-proportion z-test (pooled SE for the p-value, unpooled SE for the interval)."""
    from scipy import stats

    if control.n == 0 or treatment.n == 0:
        return Difference(NAN, NAN, NAN, NAN)
    pc, pt = control.rate, treatment.rate
    diff = pt - pc
    pooled = (control.k + treatment.k) / (control.n + treatment.n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    p_value = 1.0 if se0 == 0 else float(2 * stats.norm.sf(abs(diff / se0)))
    se1 = math.sqrt(pc * (1 - pc) / control.n + pt * (1 - pt) / treatment.n)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return Difference(diff, diff - z * se1, diff + z * se1, p_value)


def p_worse_means(
    control: Moments, treatment: Moments, *, margin: float = 0.0, higher_is_better: bool = False
) -> float:
    """One-sided Welch p-value that treatment is worse than control by more than ``margin``."""
    from scipy import stats

    if control.n < 2 or treatment.n < 2:
        return NAN
    # "worse" means the first is above the second by more than the margin
    high, low = (control, treatment) if higher_is_better else (treatment, control)
    gap = high.mean - low.mean - margin
    if high.variance == 0 and low.variance == 0:
        return 0.0 if gap > 0 else 1.0
    result = stats.ttest_ind_from_stats(
        high.mean - margin,
        high.std,
        high.n,
        low.mean,
        low.std,
        low.n,
        equal_var=False,
        alternative="greater",
    )
    return float(result.pvalue)


def p_worse_rates(control: Counts, treatment: Counts, *, margin: float = 0.0) -> float:
    """One-sided z-test p-value that treatment's rate exceeds control's by more than ``margin``.

    With no margin the pooled standard error is used (the classic test); with a margin, the
    unpooled one.
    """
    from scipy import stats

    if control.n == 0 or treatment.n == 0:
        return NAN
    pc, pt = control.rate, treatment.rate
    gap = pt - pc - margin
    if margin == 0:
        pooled = (control.k + treatment.k) / (control.n + treatment.n)
        se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    else:
        se = math.sqrt(pc * (1 - pc) / control.n + pt * (1 - pt) / treatment.n)
    if se == 0:
        return 0.0 if gap > 0 else 1.0
    return float(stats.norm.sf(gap / se))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(indexed)
    adjusted = [NAN] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def sample_ratio_p(observed: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-square p-value of units per variant against the weights (NaN when untestable)."""
    from scipy import stats

    pairs = [(o, w) for o, w in zip(observed, weights, strict=True) if w > 0]
    total = sum(o for o, _ in pairs)
    if len(pairs) < 2 or total == 0:
        return NAN
    weight_sum = sum(w for _, w in pairs)
    expected = [total * w / weight_sum for _, w in pairs]
    return float(stats.chisquare([o for o, _ in pairs], expected).pvalue)


__all__ = [
    "Counts",
    "Difference",
    "Moments",
    "compare_means",
    "compare_rates",
    "holm",
    "mean_interval",
    "p_worse_means",
    "p_worse_rates",
    "rate_interval",
    "sample_ratio_p",
    "welch_df",
]
