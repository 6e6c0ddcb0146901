"""Model prices as data: USD per million tokens, from a file, for every model a run may use.

The table ships with the package (``registry/prices.yaml``). ``REGISTRY_PRICES_FILE`` names a
YAML file of the same shape whose entries add models or replace shipped ones::

    claude-sonnet-4-6: {input: 3, output: 15}
    my-proxy-model: {input: 2, output: 8, cache_read: 0.1, batch_input: 1, batch_output: 4}

``input`` and ``output`` are required. ``cache_write_5m``, ``cache_write_1h`` and ``cache_read``
default to the API's ratios of the input price (1.25x, 2x, 0.1x), ``batch_input`` and
``batch_output`` to half the input and output prices. ``structured_output: false`` marks a model
that does not take a JSON Schema natively (``output_config.format``). A dated snapshot
(``claude-sonnet-4-6-20260101``) or an ``@`` variant uses the entry of the longest name it
starts with.

Every model has a price: saving a version whose model has none is refused
(:class:`~registry.errors.UnpricedModel`, naming the file to add it to), and so is a run, so no
run is ever logged without a cost and the daily budget cannot be escaped by a typo.

>>> price_of("claude-sonnet-4-6").cost(Usage(input_tokens=1_000_000))
3.0
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, UnpricedModel

#: the environment variable naming a YAML file of extra or overriding prices
PRICES_FILE_ENV = "REGISTRY_PRICES_FILE"
#: the API's price ratios to the input price (cache) and to the normal price (batch)
CACHE_WRITE_5M_RATIO = 1.25
CACHE_WRITE_1H_RATIO = 2.0
CACHE_READ_RATIO = 0.1
BATCH_RATIO = 0.5
#: the keys a price entry may have
PRICE_KEYS = (
    "input",
    "output",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "batch_input",
    "batch_output",
)
_ENTRY_KEYS = frozenset((*PRICE_KEYS, "structured_output"))


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more API answers (what a run is charged for)."""

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


@dataclass(frozen=True)
class ModelPrice:
    """The prices of one model in USD per million tokens, every key resolved.

    ``source`` is the file the entry came from (the shipped table or ``REGISTRY_PRICES_FILE``).
    """

    model: str
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    batch_input: float
    batch_output: float
    structured_output: bool = True
    source: str = ""

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        """USD for ``usage`` (rounded to 1e-10).

        With ``batch`` (Message Batches) input and output tokens cost ``batch_input`` and
        ``batch_output``, and cache reads and writes get the same discount as input tokens
        (their price times ``batch_input / input``).
        """
        write_1h = min(usage.cache_creation_1h_tokens, usage.cache_creation_input_tokens)
        write_5m = usage.cache_creation_input_tokens - write_1h
        cached = (
            usage.cache_read_input_tokens * self.cache_read
            + write_5m * self.cache_write_5m
            + write_1h * self.cache_write_1h
        )
        if batch:
            discount = self.batch_input / self.input if self.input else BATCH_RATIO
            total = (
                usage.input_tokens * self.batch_input
                + usage.output_tokens * self.batch_output
                + cached * discount
            )
        else:
            total = usage.input_tokens * self.input + usage.output_tokens * self.output + cached
        return round(total / 1_000_000, 10)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready prices (and where they come from)."""
        out: dict[str, Any] = {"model": self.model}
        out.update({key: getattr(self, key) for key in PRICE_KEYS})
        out["structured_output"] = self.structured_output
        out["source"] = self.source
        return out


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{where} must be a number of USD per million tokens (0 or more)")
    return float(value)


def _ratio(value: float) -> float:
    """A price derived by a ratio, without float noise (0.3, not 0.30000000000000004)."""
    return round(value, 10)


def _entry(model: str, raw: Any, source: str) -> ModelPrice:
    """One file entry as a :class:`ModelPrice` (ratio defaults applied); ValueError if bad."""
    if not isinstance(raw, dict):
        raise ValueError(f"{model}: must be a mapping such as {{input: 3, output: 15}}")
    unknown = sorted(set(map(str, raw)) - _ENTRY_KEYS)
    if unknown:
        raise ValueError(
            f"{model}: unknown key(s) {', '.join(unknown)}; the keys are "
            + ", ".join((*PRICE_KEYS, "structured_output"))
        )
    for key in ("input", "output"):
        if key not in raw:
            raise ValueError(f"{model}: '{key}' is required (USD per million tokens)")
    values = {key: _number(raw[key], f"{model}.{key}") for key in PRICE_KEYS if key in raw}
    structured = raw.get("structured_output", True)
    if not isinstance(structured, bool):
        raise ValueError(f"{model}.structured_output must be true or false")
    base_in, base_out = values["input"], values["output"]
    return ModelPrice(
        model=model,
        input=base_in,
        output=base_out,
        cache_write_5m=values.get("cache_write_5m", _ratio(base_in * CACHE_WRITE_5M_RATIO)),
        cache_write_1h=values.get("cache_write_1h", _ratio(base_in * CACHE_WRITE_1H_RATIO)),
        cache_read=values.get("cache_read", _ratio(base_in * CACHE_READ_RATIO)),
        batch_input=values.get("batch_input", _ratio(base_in * BATCH_RATIO)),
        batch_output=values.get("batch_output", _ratio(base_out * BATCH_RATIO)),
        structured_output=structured,
        source=source,
    )


def parse_prices(text: str, source: str) -> dict[str, ModelPrice]:
    """The entries of a prices file; :class:`ConfigurationError` naming ``source`` if bad."""
    import yaml  # lazy for cold start: only runs and saves read the price table

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"prices file {source} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"prices file {source} must map model names to prices, e.g. "
            "'claude-sonnet-4-6: {input: 3, output: 15}'"
        )
    out: dict[str, ModelPrice] = {}
    for model, raw in data.items():
        name = str(model).strip()
        if not name:
            raise ConfigurationError(f"prices file {source}: a model name is empty")
        try:
            out[name] = _entry(name, raw, source)
        except ValueError as exc:
            raise ConfigurationError(f"prices file {source}: {exc}") from None
    return out


class PriceTable:
    """Prices by model: the shipped table updated with an optional extra file."""

    def __init__(self, prices: dict[str, ModelPrice], extra_file: str | None = None) -> None:
        self.prices = dict(prices)
        #: the ``REGISTRY_PRICES_FILE`` this table includes (None when unset)
        self.extra_file = extra_file
        self._found: dict[str, ModelPrice | None] = {}

    def get(self, model: str) -> ModelPrice | None:
        """The price of ``model`` (exact name, else the longest entry it starts with), or None."""
        try:
            return self._found[model]
        except KeyError:
            pass
        found = self.prices.get(model)
        if found is None:
            best = ""
            for name in self.prices:
                if (
                    len(name) > len(best)
                    and model.startswith(name)
                    and model[len(name) : len(name) + 1] in ("-", "@", ":")
                ):
                    best = name
            found = self.prices[best] if best else None
        if len(self._found) < 4096:
            self._found[model] = found
        return found

    def require(self, model: str) -> ModelPrice:
        """The price of ``model``; :class:`UnpricedModel` (naming the file to add it to) if none."""
        found = self.get(model)
        if found is None:
            raise UnpricedModel(self.unpriced_message(model), model=model)
        return found

    def unpriced_message(self, model: str) -> str:
        """Why ``model`` is refused and where to add its price."""
        close = difflib.get_close_matches(model, list(self.prices), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        example = f"'{model}: {{input: 3.0, output: 15.0}}'"
        if self.extra_file:
            where = f"add it to the prices file {self.extra_file} (REGISTRY_PRICES_FILE)"
        else:
            where = (
                "add it to a YAML prices file and point REGISTRY_PRICES_FILE at it "
                f"(the shipped table is {shipped_prices_path()})"
            )
        return (
            f"model {model!r} has no price{hint}: {where}, as USD per million tokens, "
            f"e.g. {example}; no run of an unpriced model is allowed"
        )


def shipped_prices_path() -> Path:
    """The price table that ships with the package."""
    return Path(str(files("registry").joinpath("prices.yaml")))


_lock = threading.Lock()
_shipped: dict[str, ModelPrice] | None = None
_table: tuple[tuple[str, int, int], PriceTable] | None = None


def _shipped_prices() -> dict[str, ModelPrice]:
    global _shipped
    if _shipped is None:
        path = shipped_prices_path()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"the price table {path} is missing from this installation ({exc}): reinstall "
                "the package"
            ) from None
        _shipped = parse_prices(text, str(path))
    return _shipped


def price_table() -> PriceTable:
    """The price table in force: the shipped one plus ``REGISTRY_PRICES_FILE``.

    The file is re-read when it changes (its modification time or size) or when the variable
    names another file; an unreadable or invalid file is a :class:`ConfigurationError`.
    """
    global _table
    path = os.environ.get(PRICES_FILE_ENV, "").strip()
    if path:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise ConfigurationError(
                f"REGISTRY_PRICES_FILE={path} cannot be read ({exc.strerror}): fix the path or "
                "unset the variable"
            ) from None
        key = (path, st.st_mtime_ns, st.st_size)
    else:
        key = ("", 0, 0)
    current = _table
    if current is not None and current[0] == key:
        return current[1]
    with _lock:
        prices = dict(_shipped_prices())
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    f"REGISTRY_PRICES_FILE={path} cannot be read ({exc}): fix the path or unset "
                    "the variable"
                ) from None
            prices.update(parse_prices(text, path))
        table = PriceTable(prices, path or None)
        _table = (key, table)
    return table


def price_of(model: str) -> ModelPrice:
    """The price of ``model``; :class:`UnpricedModel` naming the file to add it to if none."""
    return price_table().require(model)


def cost_usd(model: str, usage: Usage, *, batch: bool = False) -> float | None:
    """USD for ``usage`` on ``model``, or None when the model has no price (any more).

    >>> cost_usd("claude-sonnet-4-6", Usage(input_tokens=1_000_000, output_tokens=0))
    3.0
    """
    found = price_table().get(model)
    return None if found is None else found.cost(usage, batch=batch)


def supports_structured_output(model: str) -> bool:
    """True when the model takes a JSON Schema in ``output_config.format``."""
    found = price_table().get(model)
    return found is not None and found.structured_output


__all__ = [
    "PRICES_FILE_ENV",
    "PRICE_KEYS",
    "ModelPrice",
    "PriceTable",
    "Usage",
    "cost_usd",
    "parse_prices",
    "price_of",
    "price_table",
    "shipped_prices_path",
    "supports_structured_output",
]
