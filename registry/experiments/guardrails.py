"""Guardrails: stop an experiment whose treatment is significantly worse than control.

Each guardrail names a metric and a tolerated degradation (``threshold``, in the metric's unit).
Once control and a treatment both have ``min_runs`` counted runs, a one-sided test (Welch's t for
means, a z-test for rates) asks whether the treatment is worse than control by more than the
threshold; p < 0.01 stops the experiment, records why (``stopped_by="guardrail"``), and every unit
gets the label's version again.

The check runs as a run listener (:class:`GuardrailWatch`, which ``Registry`` registers) after a
run of the experiment is logged, at most once per ``interval`` seconds per experiment and
process; :func:`check_guardrails` can also be
called directly, e.g. from a cron job. Checking repeatedly as data arrives raises the real false
alarm rate above 1 %: the threshold is deliberately strict, and ``min_runs`` keeps early noise out.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..run_result import RunResult
from ..service import RegistryService
from .definitions import FEEDBACK_PREFIX, Experiment, metric
from .report import VariantData, by_variant, load_data
from .service import get, stop_if_running
from .serving import COUNTED_SOURCES, runtime
from .stats import p_worse_means, p_worse_rates

logger = logging.getLogger(__name__)

#: a treatment worse than control with a one-sided p-value below this stops the experiment
GUARDRAIL_ALPHA = 0.01
#: who the experiment's ``stopped_by`` names when a guardrail stopped it
GUARDRAIL_ACTOR = "guardrail"


@dataclass(frozen=True)
class GuardrailTrip:
    """A guardrail that fired: which metric, which variant, the values and the p-value."""

    metric: str
    variant: str
    control: str
    control_value: float
    treatment_value: float
    threshold: float
    p_value: float
    control_runs: int
    treatment_runs: int

    def reason(self) -> str:
        """The sentence recorded as the experiment's stop reason."""
        return (
            f"guardrail {self.metric}: variant {self.variant!r} is worse than control "
            f"{self.control!r} ({self.treatment_value:.4g} vs {self.control_value:.4g}, "
            f"tolerance {self.threshold:g}, one-sided p={self.p_value:.2g} < {GUARDRAIL_ALPHA}, "
            f"{self.treatment_runs} vs {self.control_runs} runs)"
        )


def evaluate(experiment: Experiment, data: Sequence[VariantData]) -> list[GuardrailTrip]:
    """The guardrails that fire on ``data`` (pure: no database), worst p-value first."""
    if not experiment.guardrails:
        return []
    by_key = by_variant(experiment, data)
    control_key = experiment.control.key
    control = by_key[control_key]
    trips: list[GuardrailTrip] = []
    if control.runs < experiment.min_runs:
        return trips
    for v in experiment.variants[1:]:
        treatment = by_key[v.key]
        if treatment.runs < experiment.min_runs:
            continue
        for g in experiment.guardrails:
            m = metric(g.metric)
            if m.kind == "rate":
                c0, c1 = control.rate(m.name), treatment.rate(m.name)
                p = p_worse_rates(c0, c1, margin=g.threshold)
                values = (c0.rate, c1.rate, c0.n, c1.n)
            else:
                m0, m1 = control.moments(m.name), treatment.moments(m.name)
                p = p_worse_means(m0, m1, margin=g.threshold, higher_is_better=m.higher_is_better)
                values = (m0.mean, m1.mean, control.runs, treatment.runs)
            if not math.isnan(p) and p < GUARDRAIL_ALPHA:
                trips.append(
                    GuardrailTrip(
                        metric=m.name,
                        variant=v.key,
                        control=control_key,
                        control_value=values[0],
                        treatment_value=values[1],
                        threshold=g.threshold,
                        p_value=p,
                        control_runs=int(values[2]),
                        treatment_runs=int(values[3]),
                    )
                )
    return sorted(trips, key=lambda t: t.p_value)


def check_guardrails(reg: RegistryService, key: str) -> GuardrailTrip | None:
    """Check a running experiment's guardrails; stop it when one fires and return the trip.

    Returns None when the experiment is not running, has no guardrails, or none fires.
    """
    experiment = get(reg, key)
    if experiment.status != "running" or not experiment.guardrails:
        return None
    feedback = any(g.metric.startswith(FEEDBACK_PREFIX) for g in experiment.guardrails)
    trips = evaluate(experiment, load_data(reg, experiment, feedback=feedback))
    if not trips:
        return None
    stop_if_running(reg, key, actor=GUARDRAIL_ACTOR, reason=trips[0].reason())
    return trips[0]


class GuardrailWatch:
    """The run listener that checks guardrails as runs of an experiment are logged."""

    #: seconds between two checks of one experiment (0: after every run)
    interval: float = 1.0

    def __init__(self, reg: RegistryService) -> None:
        self._reg = reg
        self._last_check: dict[str, float] = {}

    def on_run(self, result: RunResult) -> None:
        """Check the guardrails of the run's experiment (throttled per experiment)."""
        key = result.experiment
        if not key or result.source not in COUNTED_SOURCES:
            return
        now = time.monotonic()
        last = self._last_check.get(key)
        if last is not None and now - last < self.interval:
            return
        self._last_check[key] = now
        if runtime(self._reg).serves_unguarded(key):
            return
        try:
            check_guardrails(self._reg, key)
        except Exception:  # a failing check must never fail the app's run
            logger.exception("guardrail check of experiment %r failed", key)


def guardrail_watch(reg: RegistryService) -> GuardrailWatch:
    """The guardrail watch of ``reg`` (created on first use)."""
    return reg.component(GuardrailWatch)


__all__ = [
    "GUARDRAIL_ACTOR",
    "GUARDRAIL_ALPHA",
    "GuardrailTrip",
    "GuardrailWatch",
    "check_guardrails",
    "evaluate",
    "guardrail_watch",
]
