"""Text that can be stored: checks shared by every way input arrives (Python, HTTP, admin)."""

from __future__ import annotations

import re
from typing import Any


def has_lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in ``value`` (mapping keys too) holds a lone surrogate.

    JSON and YAML ``\\udXXX`` escapes can produce them; they cannot be encoded as UTF-8, so
    they can be neither stored nor sent to the model.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_lone_surrogate(item) for item in value)
    return False


#: what a database cannot store in text (NUL: PostgreSQL text and JSON; lone surrogates: not
#: UTF-8), and the literal ``\uXXXX`` sequences that must be escaped so the escape reverses
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]|\\u[0-9a-fA-F]{4}")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _escape_match(match: re.Match[str]) -> str:
    found = match.group()
    if len(found) == 1:  # NUL or a lone surrogate
        return f"\\u{ord(found):04x}"
    return "\\u005c" + found[1:]  # a literal \uXXXX: its backslash escaped


def _escape_text(text: str) -> str:
    return text if _UNSTORABLE.search(text) is None else _UNSTORABLE.sub(_escape_match, text)


def _unescape_text(text: str) -> str:
    if "\\u" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def to_storable(value: Any) -> Any:
    """``value`` with every string made storable by any database, reversibly.

    NUL and lone surrogates become the six characters ``\\u0000`` (``\\udXXX``); a ``\\uXXXX``
    already in the text gets its backslash written ``\\u005c``, so :func:`from_storable` gives
    back exactly the original. Text without those characters is returned as is (the same
    object). Used for the run log, whose values come from callers and from the model.
    """
    if isinstance(value, str):
        return _escape_text(value)
    if isinstance(value, dict):
        return {to_storable(k): to_storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_storable(v) for v in value]
    return value


def from_storable(value: Any) -> Any:
    """The original of a value written by :func:`to_storable`."""
    if isinstance(value, str):
        return _unescape_text(value)
    if isinstance(value, dict):
        return {from_storable(k): from_storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_storable(v) for v in value]
    return value
