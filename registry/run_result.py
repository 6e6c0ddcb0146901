"""``RunResult``: what one run of a prompt gave, as apps and the run log see it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunResult:
    """The outcome of one call, mirrored by one row of the ``runs`` table.

    ``text`` is the answer; ``parsed`` the JSON object when the version has an output schema;
    ``cost_usd`` is None for a model without a known price; ``ttft_ms`` (time to first token)
    is set for streams; ``attempts`` counts HTTP requests (retries and a repair included,
    0 for a cache hit); ``status`` is ``ok`` or ``error``.
    """

    run_id: str
    name: str
    version: int | None
    label: str | None
    experiment: str | None
    variant: str | None
    model: str | None
    text: str
    parsed: Any
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float | None
    latency_ms: float
    ttft_ms: float | None
    attempts: int
    cached: bool
    request_id: str | None
    status: str
    error_type: str | None = None
    error_message: str | None = None
    unit_id: str | None = None
    source: str = "app"
    stream: bool = False
    suite_run_id: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "ok"

    @property
    def total_tokens(self) -> int:
        """Every input and output token of the run, cache reads and writes included."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``created_at`` as ISO 8601)."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        return data

    def summary(self) -> str:
        """One line: version, model, tokens, cost, latency and run id."""
        parts = [f"{self.name} v{self.version}" if self.version else self.name]
        if self.model:
            parts.append(self.model)
        parts.append(f"{self.input_tokens} in / {self.output_tokens} out tokens")
        parts.append(f"${self.cost_usd:.6f}" if self.cost_usd is not None else "cost unknown")
        latency = f"{self.latency_ms:.0f} ms"
        if self.ttft_ms is not None:
            latency += f" (first token {self.ttft_ms:.0f} ms)"
        parts.append(latency)
        if self.cached:
            parts.append("cached")
        if self.attempts > 1:
            parts.append(f"{self.attempts} attempts")
        if self.variant:
            parts.append(f"variant {self.variant} of {self.experiment}")
        parts.append(f"run {self.run_id}")
        return " · ".join(parts)


__all__ = ["RunResult"]
