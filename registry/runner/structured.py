"""Structured output: find the JSON in an answer, validate it, and ask once for a repair.

An answer is accepted as raw JSON, inside a Markdown code fence, or embedded in prose (the
first JSON object or array that parses). It is then validated against the version's JSON
Schema with ``jsonschema``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import jsonschema

from ..versions import canonical_json

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
#: most validation errors quoted back to the model or the caller
MAX_ERRORS = 5

_validators: dict[str, jsonschema.protocols.Validator] = {}
_validators_lock = threading.Lock()


class NoJSONFound(ValueError):
    """The answer holds no parseable JSON value."""


def extract_json(text: str) -> Any:
    """The JSON value in ``text``: the whole text, a fenced block, or the first embedded one.

    >>> extract_json('Here you go: {"revenue": "4.2M"} Anything else?')
    {'revenue': '4.2M'}

    Raises :class:`NoJSONFound` when there is none.
    """
    stripped = text.strip()
    if not stripped:
        raise NoJSONFound("the answer is empty")
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for match in _FENCE.finditer(text):
        try:
            return json.loads(match.group(1).strip())
        except ValueError:
            continue
    for i, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = _DECODER.raw_decode(text, i)
            except ValueError:
                continue
            return value
    raise NoJSONFound("the answer contains no JSON object or array")


def _validator(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    key = canonical_json(schema)
    found = _validators.get(key)
    if found is None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        found = cls(dict(schema))
        with _validators_lock:
            if len(_validators) > 1024:
                _validators.clear()
            _validators[key] = found
    return found


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Readable validation errors of ``value`` against ``schema`` (empty when it is valid)."""
    errors = sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path))
    out = []
    for err in errors[:MAX_ERRORS]:
        where = "/".join(str(p) for p in err.path)
        out.append(f"at '/{where}': {err.message}" if where else err.message)
    if len(errors) > MAX_ERRORS:
        out.append(f"... and {len(errors) - MAX_ERRORS} more")
    return out


def parse_output(text: str, schema: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """``(parsed, errors)``: the JSON found in ``text`` and what is wrong with it (if anything)."""
    try:
        value = extract_json(text)
    except NoJSONFound as exc:
        return None, [str(exc)]
    return value, schema_errors(value, schema)


def repair_messages(
    messages: list[dict[str, Any]], raw_text: str, errors: list[str], schema: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The conversation for the repair try: the bad answer, then what was wrong with it."""
    problems = "\n".join(f"- {e}" for e in errors)
    return [
        *messages,
        {"role": "assistant", "content": raw_text.strip() or "(empty answer)"},
        {
            "role": "user",
            "content": (
                "Your answer is not valid JSON for the required schema:\n"
                f"{problems}\n\n"
                "The schema is:\n"
                f"{json.dumps(schema, ensure_ascii=False)}\n\n"
                "Reply with only the corrected JSON value, no prose and no code fence."
            ),
        },
    ]


__all__ = ["NoJSONFound", "extract_json", "parse_output", "repair_messages", "schema_errors"]
