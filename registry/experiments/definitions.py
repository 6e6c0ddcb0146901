"""What an experiment is: variants, guardrails, metrics, and the validation of each."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..errors import ValidationError

#: experiment keys and variant keys: letters, digits, '.', '_' and '-', starting with a letter/digit
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
VARIANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FEEDBACK_PREFIX = "feedback:"

Status = Literal["draft", "running", "stopped"]


@dataclass(frozen=True)
class Metric:
    """An outcome the report measures per variant.

    ``kind`` is ``mean`` (a per-run value, compared with Welch's t-test) or ``rate`` (a share of
    runs, compared with a two-proportion z-test). ``higher_is_better`` tells guardrails which
    direction is "worse".
    """

    name: str
    title: str
    kind: Literal["mean", "rate"]
    higher_is_better: bool = False
    unit: str = ""

    def format(self, value: float | None) -> str:
        """A value of this metric for people: ``12.50%``, ``$0.000421``, ``1,234`` (``-``: none)."""
        if value is None or math.isnan(value):
            return "-"
        if self.kind == "rate":
            return f"{value * 100:.2f}%"
        if self.unit == "USD":
            sign = "-" if value < 0 else ""
            return f"{sign}${abs(value):.6f}" if abs(value) < 1 else f"{sign}${abs(value):,.2f}"
        return f"{value:,.4g}" if abs(value) < 10_000 else f"{value:,.0f}"


#: metrics read from the runs table (means over successful runs, rates over every run)
RUN_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("latency_ms", "Latency", "mean", unit="ms"),
        Metric("cost_usd", "Cost per run", "mean", unit="USD"),
        Metric("input_tokens", "Input tokens", "mean", unit="tokens"),
        Metric("output_tokens", "Output tokens", "mean", unit="tokens"),
        Metric("error_rate", "Error rate", "rate"),
        Metric("refusal_rate", "Refusal rate", "rate"),
    )
}
#: the run-table column behind each mean metric
MEAN_COLUMNS = ("latency_ms", "cost_usd", "input_tokens", "output_tokens")


def metric(name: str) -> Metric:
    """The metric called ``name``: a run metric or ``feedback:<score name>`` (higher is better)."""
    found = RUN_METRICS.get(name)
    if found is not None:
        return found
    if name.startswith(FEEDBACK_PREFIX) and len(name) > len(FEEDBACK_PREFIX):
        score = name[len(FEEDBACK_PREFIX) :]
        return Metric(name, f"Feedback {score}", "mean", higher_is_better=True)
    known = ", ".join(RUN_METRICS)
    raise ValidationError(
        f"unknown metric {name!r}: use one of {known}, or feedback:NAME for a feedback score",
        field="metric",
    )


@dataclass(frozen=True)
class Variant:
    """One arm: a version of the prompt and its relative weight (the first variant is control)."""

    key: str
    version: int
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "version": self.version, "weight": self.weight}


@dataclass(frozen=True)
class Guardrail:
    """Stop the experiment when a treatment is significantly worse than control on ``metric``.

    ``threshold`` is the tolerated degradation in the metric's own unit (0: any significant
    degradation trips it): for ``error_rate:0.02`` the guardrail trips when a treatment's error
    rate is significantly more than 2 points above control's (one-sided test, p < 0.01).
    """

    metric: str
    threshold: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"metric": self.metric, "threshold": self.threshold}

    def __str__(self) -> str:
        return f"{self.metric}:{self.threshold:g}"


@dataclass(frozen=True)
class Experiment:
    """An experiment as stored: definition, lifecycle and outcome."""

    id: int
    key: str
    prompt: str
    label: str
    variants: tuple[Variant, ...]
    unit: str = "user_id"
    coverage: float = 1.0
    seed: str = ""
    sticky: bool = False
    guardrails: tuple[Guardrail, ...] = ()
    min_runs: int = 100
    status: Status = "draft"
    description: str = ""
    created_at: datetime | None = None
    created_by: str = ""
    updated_at: datetime | None = None
    started_at: datetime | None = None
    started_by: str = ""
    stopped_at: datetime | None = None
    stopped_by: str = ""
    stop_reason: str = ""
    promoted_variant: str | None = None

    @property
    def control(self) -> Variant:
        """The first variant, which every other variant is compared against."""
        return self.variants[0]

    def variant(self, key: str) -> Variant:
        """The variant called ``key`` (``NotFound`` naming the existing ones otherwise)."""
        from ..errors import NotFound

        for v in self.variants:
            if v.key == key:
                return v
        have = ", ".join(v.key for v in self.variants)
        raise NotFound(f"experiment {self.key!r} has no variant {key!r} (variants: {have})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps in ISO 8601)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "key": self.key,
            "prompt": self.prompt,
            "label": self.label,
            "status": self.status,
            "description": self.description,
            "unit": self.unit,
            "coverage": self.coverage,
            "seed": self.seed,
            "sticky": self.sticky,
            "variants": [v.to_dict() for v in self.variants],
            "guardrails": [g.to_dict() for g in self.guardrails],
            "min_runs": self.min_runs,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "started_at": iso(self.started_at),
            "started_by": self.started_by,
            "stopped_at": iso(self.stopped_at),
            "stopped_by": self.stopped_by,
            "stop_reason": self.stop_reason,
            "promoted_variant": self.promoted_variant,
        }


# -- validation and parsing ----------------------------------------------------------------


def check_key(key: object) -> str:
    """Return ``key`` if it is a valid experiment key."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValidationError(
            f"invalid experiment key {key!r}: use letters, digits, '.', '_' and '-' "
            "(at most 100 characters, starting with a letter or digit)",
            field="key",
        )
    return key


def check_weight(weight: object, where: str) -> float:
    """A finite, non-negative weight."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise ValidationError(f"{where}: weight must be a number", field="variants")
    if weight < 0:
        raise ValidationError(f"{where}: weight must not be negative", field="variants")
    return float(weight)


def check_variants(variants: Sequence[Variant]) -> tuple[Variant, ...]:
    """At least two variants with distinct valid keys, versions >= 1, weights summing above 0."""
    if len(variants) < 2:
        raise ValidationError(
            "an experiment needs at least two variants, e.g. --variant control=3:50 "
            "--variant treatment=4:50 (the first one is the control)",
            field="variants",
        )
    seen: set[str] = set()
    out: list[Variant] = []
    for v in variants:
        if not isinstance(v.key, str) or not VARIANT_PATTERN.match(v.key):
            raise ValidationError(
                f"invalid variant key {v.key!r}: use letters, digits, '.', '_' and '-'",
                field="variants",
            )
        if v.key in seen:
            raise ValidationError(f"variant {v.key!r} is given twice", field="variants")
        seen.add(v.key)
        if isinstance(v.version, bool) or not isinstance(v.version, int) or v.version < 1:
            raise ValidationError(
                f"variant {v.key!r}: version must be a positive integer", field="variants"
            )
        out.append(Variant(v.key, v.version, check_weight(v.weight, f"variant {v.key!r}")))
    if sum(v.weight for v in out) <= 0:
        raise ValidationError("at least one variant needs a weight above 0", field="variants")
    return tuple(out)


def check_coverage(coverage: object) -> float:
    """A share of units in (0, 1]."""
    if isinstance(coverage, bool) or not isinstance(coverage, int | float) or not 0 < coverage <= 1:
        raise ValidationError(
            f"coverage must be a share of units in (0, 1], got {coverage!r}", field="coverage"
        )
    return float(coverage)


def check_guardrails(guardrails: Sequence[Guardrail]) -> tuple[Guardrail, ...]:
    """Known metrics, finite non-negative thresholds, no metric twice."""
    out: list[Guardrail] = []
    seen: set[str] = set()
    for g in guardrails:
        metric(g.metric)
        threshold = g.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValidationError(
                f"guardrail {g.metric}: threshold must be a number", field="guardrails"
            )
        if not math.isfinite(threshold) or threshold < 0:
            raise ValidationError(
                f"guardrail {g.metric}: threshold must be a number >= 0 (the tolerated "
                "degradation in the metric's unit)",
                field="guardrails",
            )
        if g.metric in seen:
            raise ValidationError(f"guardrail {g.metric} is given twice", field="guardrails")
        seen.add(g.metric)
        out.append(Guardrail(g.metric, float(threshold)))
    return tuple(out)


def parse_variant(spec: str) -> Variant:
    """Parse ``KEY=VERSION:WEIGHT`` (weight optional, default 1), e.g. ``control=3:50``."""
    key, sep, rest = spec.partition("=")
    version_text, _, weight_text = rest.partition(":")
    try:
        if not sep or not key:
            raise ValueError
        version = int(version_text)
        weight = float(weight_text) if weight_text else 1.0
    except ValueError:
        raise ValidationError(
            f"variant {spec!r} is not KEY=VERSION:WEIGHT (e.g. control=3:50)", field="variants"
        ) from None
    return Variant(key, version, weight)


def parse_guardrail(spec: str) -> Guardrail:
    """Parse ``METRIC[:THRESHOLD]``: ``error_rate:0.02``, ``cost_usd``, ``feedback:thumbs_up:0``."""
    name, sep, last = spec.rpartition(":")
    threshold: float | None = None
    if sep:
        try:
            threshold = float(last)
        except ValueError:
            threshold = None
    if threshold is None:
        return Guardrail(metric(spec).name, 0.0)
    return Guardrail(metric(name).name, threshold)


__all__ = [
    "FEEDBACK_PREFIX",
    "MEAN_COLUMNS",
    "RUN_METRICS",
    "Experiment",
    "Guardrail",
    "Metric",
    "Status",
    "Variant",
    "check_coverage",
    "check_guardrails",
    "check_key",
    "check_variants",
    "metric",
    "parse_guardrail",
    "parse_variant",
]
