"""Rules for prompt and label names."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from .errors import NotFound, ValidationError

#: folder-like names: ``support-answer``, ``team/support-answer``
PROMPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
MAX_PROMPT_NAME = 200
#: labels start with a letter, so a label can never be mistaken for a version number
LABEL_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
#: computed label: the highest version; it cannot be set
LATEST = "latest"
#: the label ``get`` uses when neither label nor version is given
DEFAULT_LABEL = "production"


def check_prompt_name(name: object) -> str:
    """Return ``name`` if it is a valid prompt name, else raise ``ValidationError``."""
    if not isinstance(name, str) or not name:
        raise ValidationError("a prompt name must be a non-empty string", field="name")
    if len(name) > MAX_PROMPT_NAME:
        raise ValidationError(
            f"prompt name is {len(name)} characters; the limit is {MAX_PROMPT_NAME}", field="name"
        )
    if not PROMPT_NAME.match(name):
        raise ValidationError(
            f"invalid prompt name {name!r}: use letters, digits, '.', '_' and '-', with '/' "
            "between folder parts (e.g. 'team/support-answer')",
            field="name",
        )
    return name


def check_label_name(label: object, *, settable: bool = False) -> str:
    """Return ``label`` if valid; ``settable`` also refuses the computed ``latest``."""
    if not isinstance(label, str) or not LABEL_NAME.match(label):
        raise ValidationError(
            f"invalid label {label!r}: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter (at most 64 characters)",
            field="label",
        )
    if settable and label == LATEST:
        raise ValidationError(
            "'latest' is computed (the highest version) and cannot be moved", field="label"
        )
    return label


def closest_names(name: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """The names of ``known`` a user most likely meant by ``name``, best first.

    A name with the same last part comes first (``support-answer`` finds
    ``support/support-answer``), then close spellings (``summarise`` finds ``summarize``).
    """
    names = [k for k in known if k != name]
    leaf = name.rsplit("/", 1)[-1].lower()
    found = [k for k in names if k.rsplit("/", 1)[-1].lower() == leaf]
    found += difflib.get_close_matches(name, names, n=limit, cutoff=0.6)
    by_leaf = {k.rsplit("/", 1)[-1].lower(): k for k in names}
    found += [by_leaf[m] for m in difflib.get_close_matches(leaf, by_leaf, n=limit, cutoff=0.75)]
    return list(dict.fromkeys(found))[:limit]


def prompt_not_found(name: str, known: Iterable[str]) -> NotFound:
    """The error for a prompt that does not exist, suggesting the nearest existing names."""
    near = closest_names(name, known)
    if near:
        hint = "did you mean " + (
            near[0] if len(near) == 1 else ", ".join(near[:-1]) + " or " + near[-1]
        )
        return NotFound(f"prompt {name!r} does not exist; {hint}?", prompt=name)
    return NotFound(
        f"prompt {name!r} does not exist (`prompt-registry prompts list` shows the prompts)",
        prompt=name,
    )
