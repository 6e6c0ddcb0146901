"""Text that can be stored: checks shared by every way input arrives (Python, HTTP, admin)."""

from __future__ import annotations

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
