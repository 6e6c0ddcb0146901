"""Per-call options of ``Registry.run`` / ``Registry.stream``, validated, with their defaults."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ValidationError

#: the sources other capabilities use; any short lowercase word is accepted
KNOWN_SOURCES = ("app", "http", "cli", "playground", "test", "rubric")
_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,19}$")
#: seconds a cached answer is kept when the call does not say
DEFAULT_CACHE_TTL = 3600.0
#: seconds a call may take when neither the call nor ``REGISTRY_RUN_TIMEOUT`` says
DEFAULT_TIMEOUT = 300.0
MAX_METADATA_BYTES = 16_384


def default_timeout() -> float:
    """``REGISTRY_RUN_TIMEOUT`` (seconds) or 300."""
    raw = os.environ.get("REGISTRY_RUN_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


@dataclass(frozen=True)
class RunOptions:
    """Keyword options of a run.

    ``cache``: serve and store the answer in the response cache (None: only for prompts listed
    in ``REGISTRY_CACHE_PROMPTS``); ``cache_ttl``: seconds a stored answer is kept;
    ``timeout``: seconds the whole call may take, queueing and retries included (a stream keeps
    going while data arrives); ``max_retries``: overrides the runner's retry policy;
    ``repair``: one repair request when the answer does not match the output schema;
    ``source``: who runs it (``app``, ``http``, ``cli``, ``playground``, ``test``, ``rubric``);
    ``suite_run_id``: the regression-suite run this call belongs to; ``metadata``: a small
    JSON object stored with the run.
    """

    cache: bool | None = None
    cache_ttl: float = DEFAULT_CACHE_TTL
    timeout: float | None = None
    max_retries: int | None = None
    repair: bool = True
    source: str = "app"
    suite_run_id: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> RunOptions:
        """Validate keyword options; an unknown one or a bad value is a ``ValidationError``."""
        if not options:
            return _DEFAULTS
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValidationError(
                f"unknown run option(s) {', '.join(unknown)}; the options are "
                + ", ".join(sorted(known)),
                field=unknown[0],
            )
        values = dict(options)
        cache = values.get("cache")
        if cache is not None and not isinstance(cache, bool):
            raise ValidationError("cache must be true, false or None", field="cache")
        for name in ("cache_ttl", "timeout"):
            value = values.get(name)
            if value is None:
                values.pop(name, None)
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValidationError(f"{name} must be a positive number of seconds", field=name)
            values[name] = float(value)
        retries = values.get("max_retries")
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20
        ):
            raise ValidationError(
                "max_retries must be an integer from 0 to 20", field="max_retries"
            )
        if not isinstance(values.get("repair", True), bool):
            raise ValidationError("repair must be true or false", field="repair")
        source = values.get("source", "app")
        if not isinstance(source, str) or not _SOURCE.match(source):
            raise ValidationError(
                f"source {source!r} is not valid: use a short lowercase word such as "
                + ", ".join(KNOWN_SOURCES),
                field="source",
            )
        suite_run_id = values.get("suite_run_id")
        if suite_run_id is not None:
            if isinstance(suite_run_id, bool) or not isinstance(suite_run_id, str | int):
                raise ValidationError("suite_run_id must be a string", field="suite_run_id")
            values["suite_run_id"] = str(suite_run_id)[:64]
        metadata = values.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise ValidationError("metadata must be a JSON object", field="metadata")
            try:
                encoded = json.dumps(dict(metadata), ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise ValidationError(
                    f"metadata must be JSON data: {exc}", field="metadata"
                ) from None
            if len(encoded.encode()) > MAX_METADATA_BYTES:
                raise ValidationError(
                    f"metadata is larger than {MAX_METADATA_BYTES} bytes", field="metadata"
                )
            values["metadata"] = json.loads(encoded)
        return cls(**values)


_DEFAULTS = RunOptions()


def cached_prompts() -> frozenset[str]:
    """``REGISTRY_CACHE_PROMPTS``: prompts (``name``) or versions (``name@3``) cached by default."""
    raw = os.environ.get("REGISTRY_CACHE_PROMPTS", "")
    return frozenset(x.strip() for x in raw.split(",") if x.strip())


__all__ = ["DEFAULT_CACHE_TTL", "KNOWN_SOURCES", "RunOptions", "cached_prompts", "default_timeout"]
