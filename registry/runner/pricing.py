"""The model table: prices in USD per million tokens, and which models take native JSON output.

To add or reprice a model, edit :data:`MODELS`. A dated snapshot (``claude-sonnet-4-6-20260101``)
or a ``@`` variant uses the entry of the longest name it starts with. An unknown model costs
``None`` (logged once as a warning), never an exception.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """Prices (USD per million tokens) and capabilities of one model.

    Cache writes cost 1.25x the input price for the 5-minute cache and 2x for the 1-hour
    cache; cache reads 0.1x, unless the model says otherwise.
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    #: accepts ``output_config.format`` (native structured output with a JSON Schema)
    structured_output: bool = True

    @property
    def cache_read_price(self) -> float:
        """USD per million cache-read input tokens."""
        return self.cache_read if self.cache_read is not None else self.input * 0.1

    @property
    def cache_write_5m_price(self) -> float:
        """USD per million input tokens written to the 5-minute cache."""
        return self.cache_write_5m if self.cache_write_5m is not None else self.input * 1.25

    @property
    def cache_write_1h_price(self) -> float:
        """USD per million input tokens written to the 1-hour cache."""
        return self.cache_write_1h if self.cache_write_1h is not None else self.input * 2.0


MODELS: dict[str, ModelInfo] = {
    "claude-opus-4-8": ModelInfo(input=5.0, output=25.0),
    "claude-sonnet-4-6": ModelInfo(input=3.0, output=15.0),
    "claude-haiku-4-5": ModelInfo(input=1.0, output=5.0),
    "claude-fable-5": ModelInfo(input=10.0, output=50.0, cache_read=1.0),
    "claude-fable-5-1": ModelInfo(input=10.0, output=50.0, cache_read=0.25),
}

_warned: set[str] = set()
_warn_lock = threading.Lock()


def model_info(model: str) -> ModelInfo | None:
    """The entry for ``model`` (exact name, else the longest known prefix), or None."""
    found = MODELS.get(model)
    if found is not None:
        return found
    best = ""
    for name in MODELS:
        if len(name) > len(best) and model.startswith(name) and model[len(name)] in "-@:":
            best = name
    return MODELS[best] if best else None


def supports_structured_output(model: str) -> bool:
    """True when the model takes a JSON Schema in ``output_config.format``."""
    info = model_info(model)
    return info is not None and info.structured_output


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more API answers."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    #: part of ``cache_creation_input_tokens`` written to the 1-hour cache (when reported)
    cache_creation_1h_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_creation_1h_tokens + other.cache_creation_1h_tokens,
        )


def cost_usd(model: str, usage: Usage) -> float | None:
    """Cost of ``usage`` on ``model`` in USD, or None (with a warning, once) for an unknown model.

    >>> cost_usd("claude-sonnet-4-6", Usage(input_tokens=1_000_000, output_tokens=0))
    3.0
    """
    info = model_info(model)
    if info is None:
        with _warn_lock:
            first = model not in _warned
            _warned.add(model)
        if first:
            logger.warning(
                "no price known for model %r: its runs are logged without a cost "
                "(add it to registry/runner/pricing.py)",
                model,
            )
        return None
    write_1h = min(usage.cache_creation_1h_tokens, usage.cache_creation_input_tokens)
    write_5m = usage.cache_creation_input_tokens - write_1h
    total = (
        usage.input_tokens * info.input
        + usage.output_tokens * info.output
        + usage.cache_read_input_tokens * info.cache_read_price
        + write_5m * info.cache_write_5m_price
        + write_1h * info.cache_write_1h_price
    )
    return round(total / 1_000_000, 10)


__all__ = ["MODELS", "ModelInfo", "Usage", "cost_usd", "model_info", "supports_structured_output"]
