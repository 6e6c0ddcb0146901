"""A/B experiments on prompt versions: sticky assignment, exposures, a statistical report,
guardrails and promoting the winner.

>>> from registry import experiments
>>> experiments.create(reg, "support-tone", prompt="support-answer",
...                    variants=["control=3:50", "friendly=4:50"])   # doctest: +SKIP
>>> experiments.start(reg, "support-tone")                             # doctest: +SKIP
>>> reg.get("support-answer", unit_id="user-42").variant               # doctest: +SKIP
'friendly'
>>> experiments.build_report(reg, "support-tone").to_dict()            # doctest: +SKIP
>>> experiments.promote(reg, "support-tone", "friendly", actor="ana")  # doctest: +SKIP

scipy is imported inside the statistics functions only, never by ``import registry``.
"""

from __future__ import annotations

from .assignment import Allocation, assign
from .definitions import (
    Experiment,
    Guardrail,
    Metric,
    Variant,
    metric,
    parse_guardrail,
    parse_variant,
)
from .guardrails import GuardrailTrip, GuardrailWatch, check_guardrails, guardrail_watch
from .report import Comparison, Report, build_report
from .service import (
    create,
    get,
    list_experiments,
    promote,
    running,
    start,
    stop,
    update,
)
from .serving import ExperimentRuntime, assigned_version, runtime

__all__ = [
    "Allocation",
    "Comparison",
    "Experiment",
    "ExperimentRuntime",
    "Guardrail",
    "GuardrailTrip",
    "GuardrailWatch",
    "Metric",
    "Report",
    "Variant",
    "assign",
    "assigned_version",
    "build_report",
    "check_guardrails",
    "create",
    "get",
    "guardrail_watch",
    "list_experiments",
    "metric",
    "parse_guardrail",
    "parse_variant",
    "promote",
    "running",
    "runtime",
    "start",
    "stop",
    "update",
]
