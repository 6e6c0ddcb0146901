"""The runner: run prompt versions against the Anthropic Messages API, and log every run.

Loaded lazily by ``Registry.run`` / ``Registry.stream`` (it imports the ``anthropic`` SDK)::

    result = reg.run("extract-metrics", {"document": text})
    result.parsed, result.cost_usd, result.run_id

    for chunk in (s := reg.stream("support-answer", {"question": q})):
        print(chunk, end="")
    s.result.ttft_ms
"""

from __future__ import annotations

from ..prices import ModelPrice, Usage, cost_usd, price_of
from ..run_result import RunResult
from .ratelimit import ModelLimits, RateLimiter
from .retry import RetryPolicy
from .runlog import CostLine, cost_report
from .runner import Runner, StreamResult, runner_of

__all__ = [
    "CostLine",
    "ModelLimits",
    "ModelPrice",
    "RateLimiter",
    "RetryPolicy",
    "RunResult",
    "Runner",
    "StreamResult",
    "Usage",
    "cost_report",
    "cost_usd",
    "price_of",
    "runner_of",
]
