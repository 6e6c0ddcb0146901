"""``llm-rubric``: a grading prompt stored in the registry judges an answer against a rubric.

The default grader is the prompt ``system/rubric-grader``. It is created (version 1, label
``production``) the first time a rubric is graded, so editors can then improve it like any other
prompt; the grader always runs at its ``production`` label, through the runner (``source="rubric"``,
so its runs are logged and costed). It must answer JSON ``{"pass": true|false, "reason": "..."}``;
:func:`parse_verdict` also reads that JSON inside a code fence or prose, and a bare PASS/FAIL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from .assertions import DEFAULT_GRADER, CaseOutput, Grader, Verdict, excerpt

if TYPE_CHECKING:
    from ..service import RegistryService

#: the built-in grading prompt, created on first use under :data:`DEFAULT_GRADER`
GRADER_PROMPT: dict[str, Any] = {
    "description": "Grades an answer against a rubric (llm-rubric assertions of regression suites)",
    "tags": ["system", "suites"],
    "settings": {"model": "claude-haiku-4-5", "max_tokens": 400, "temperature": 0.0},
    "system": (
        "You grade answers written by another AI assistant. You receive the input it was given, "
        "its answer, and a rubric. Decide strictly whether the answer satisfies every point of "
        "the rubric. Reply with one JSON object and nothing else: "
        '{"pass": true or false, "reason": "one sentence explaining the decision"}'
    ),
    "messages": [
        {
            "role": "user",
            "content": (
                "<input>\n{{ input }}\n</input>\n\n<answer>\n{{ output }}\n</answer>\n\n"
                "<rubric>\n{{ rubric }}\n</rubric>\n\n"
                "Does the answer satisfy the rubric? Reply with the JSON object only."
            ),
        }
    ],
    "variables": {
        "output": {"type": "string", "required": True, "description": "The answer to grade"},
        "rubric": {"type": "string", "required": True, "description": "What a good answer does"},
        "input": {
            "type": "string",
            "required": False,
            "default": "",
            "description": "The test case's variables, as JSON",
        },
    },
}

_TRUE = {"true", "pass", "passed", "yes", "ok", "1"}
_FALSE = {"false", "fail", "failed", "no", "0"}


def ensure_grader(reg: RegistryService, name: str = DEFAULT_GRADER) -> None:
    """Create the built-in grading prompt if it does not exist yet (safe to call concurrently).

    A custom grader (any other name) must exist already; ``NotFound`` says how to create it.
    """
    try:
        reg.get(name, label="production")
        return
    except NotFound:
        if name != DEFAULT_GRADER:
            raise NotFound(
                f"grading prompt {name!r} does not exist (or has no production label): create it "
                "with variables output, rubric and input, answering "
                '{"pass": bool, "reason": str}'
            ) from None
    reg.create_version(
        name,
        message="built-in grader for llm-rubric assertions",
        author="system",
        labels=["production"],
        **GRADER_PROMPT,
    )


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _json_objects(text: str) -> list[Any]:
    """Every JSON object that can be decoded starting at a ``{`` in ``text``, in order."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    return found


def parse_verdict(text: str) -> Verdict:
    """Read a grader's answer: JSON ``{"pass", "reason"}`` raw, fenced or within prose.

    Also accepted: keys ``passed``/``result``/``verdict``/``score`` (a score counts as a pass at
    0.5 or more) and ``explanation``/``reasoning`` for the reason; failing that, an answer that
    starts with PASS or FAIL. Anything else is a failed verdict that quotes the answer.
    """
    for obj in _json_objects(text):
        decision: bool | None = None
        for key in ("pass", "passed", "result", "verdict"):
            if key in obj:
                decision = _as_bool(obj[key])
                break
        if decision is None and isinstance(obj.get("score"), int | float):
            decision = float(obj["score"]) >= 0.5
        if decision is None:
            continue
        reason = next(
            (str(obj[k]) for k in ("reason", "explanation", "reasoning", "why") if obj.get(k)),
            "",
        )
        return Verdict(decision, reason or ("passed" if decision else "failed"))
    match = re.match(r"\s*\**\s*(PASS(?:ED)?|FAIL(?:ED)?)\b[\s:.\-*]*(.*)", text, re.I | re.S)
    if match:
        passed = match.group(1).upper().startswith("PASS")
        return Verdict(passed, match.group(2).strip() or ("passed" if passed else "failed"))
    return Verdict(False, f"the grader's answer could not be read as a verdict: {excerpt(text)}")


def make_grader(reg: RegistryService, run: Callable[..., Any]) -> Grader:
    """A :data:`Grader` that runs the grading prompt with ``run(name, variables, label=...)``.

    ``run`` is ``reg.run`` with the suite's options bound (source ``rubric``, suite run id).
    A grader run that fails raises; the assertion then fails with that error.
    """

    def grade(rubric: str, out: CaseOutput, grader: str) -> Verdict:
        ensure_grader(reg, grader)
        result = run(
            grader,
            {
                "output": out.text,
                "rubric": rubric,
                "input": json.dumps(dict(out.variables), ensure_ascii=False, default=str),
            },
            label="production",
        )
        verdict = parse_verdict(str(getattr(result, "text", "") or ""))
        return Verdict(verdict.passed, f"grader: {verdict.reason}")

    return grade


__all__ = ["GRADER_PROMPT", "ensure_grader", "make_grader", "parse_verdict"]
