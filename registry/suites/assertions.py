"""Assertion types of test cases: pydantic definitions validated at save, and their checks.

An assertion is a mapping with a ``type`` and the fields of that type, as written under
``assert:`` in a YAML prompt file::

    - {type: contains, value: "4.2"}
    - {type: regex, value: "^(billing|bug)$"}
    - {type: json-schema, value: {type: object, required: [revenue]}}
    - {type: llm-rubric, value: "Answers politely and only from the articles"}

Definitions are checked with :func:`parse_assertions` when a case is saved (a bad one raises a
``ValidationError`` naming the case and the assertion). :func:`check_assertions` evaluates them
on a model answer; every result carries ``passed`` and a message showing what differed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from ..errors import ValidationError
from ..names import check_prompt_name

#: the prompt ``llm-rubric`` grades with unless an assertion names another (``grader:``)
DEFAULT_GRADER = "system/rubric-grader"

#: stop reasons the Messages API answers with
STOP_REASONS = frozenset(
    {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    }
)

#: how many characters of an answer a failure message shows
EXCERPT = 80


@dataclass(frozen=True)
class CaseOutput:
    """What assertions look at: the answer of one run and its measurements."""

    text: str
    parsed: Any = None
    stop_reason: str | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """A grader's decision on a rubric."""

    passed: bool
    reason: str


#: ``grade(rubric, output, grader_prompt) -> Verdict``; runs the grading prompt (see ``rubric``)
Grader = Callable[[str, CaseOutput, str], Verdict]


@dataclass(frozen=True)
class AssertionResult:
    """The verdict of one assertion: which one, whether it passed, and what differed."""

    index: int
    type: str
    description: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape stored with a case result."""
        return {
            "index": self.index,
            "type": self.type,
            "description": self.description,
            "passed": self.passed,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssertionResult:
        """Rebuild a result stored by :meth:`to_dict`."""
        return cls(
            index=int(data.get("index", 0)),
            type=str(data.get("type", "")),
            description=str(data.get("description", data.get("type", ""))),
            passed=bool(data.get("passed")),
            message=str(data.get("message", "")),
        )


def excerpt(text: str, *, start: int = 0, width: int = EXCERPT) -> str:
    """``text`` quoted, cut to ``width`` characters from ``start`` with the cut marked."""
    start = max(0, min(start, len(text)))
    piece = text[start : start + width]
    before = "…" if start > 0 else ""
    rest = len(text) - start - len(piece)
    after = f"… (+{rest} chars)" if rest > 0 else ""
    return before + json.dumps(piece, ensure_ascii=False) + after


def strip_fence(text: str) -> str:
    """The text inside one surrounding Markdown code fence (```json ... ```), else the text."""
    stripped = text.strip()
    match = re.fullmatch(r"```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```", stripped, flags=re.DOTALL)
    return match.group(1).strip() if match else stripped


def parse_json_answer(text: str) -> Any:
    """Parse an answer that is JSON, possibly inside one code fence; raises ``ValueError``."""
    return json.loads(strip_fence(text))


def _coerce_text(value: Any) -> Any:
    # YAML reads `value: 4.2` as a number; substring checks mean its text
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class _Assertion(BaseModel):
    """Fields and behaviour shared by every assertion type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: whether checking needs a grader (only ``llm-rubric``)
    needs_grader: ClassVar[bool] = False

    def describe(self) -> str:
        """A short human label such as ``contains "4.2"``."""
        value = getattr(self, "value", None)
        kind: str = getattr(self, "type", "")
        if value is None:
            return kind
        shown = json.dumps(value, ensure_ascii=False)
        if len(shown) > 60:
            shown = shown[:59] + "…"
        return f"{kind} {shown}"

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        """Evaluate on ``out``; returns (passed, message)."""
        raise NotImplementedError


class _TextValue(_Assertion):
    value: str = Field(min_length=1)

    _coerce = field_validator("value", mode="before")(_coerce_text)


class Equals(_Assertion):
    """The answer equals ``value``: text compared without surrounding whitespace; a non-string
    ``value`` (number, list, mapping) is compared with the answer parsed as JSON."""

    type: Literal["equals"]
    value: Any

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        if not isinstance(self.value, str):
            try:
                got = parse_json_answer(out.text)
            except ValueError:
                want = excerpt(json.dumps(self.value, ensure_ascii=False))
                return False, f"expected JSON equal to {want}; got non-JSON {excerpt(out.text)}"
            if got == self.value:
                return True, "equal"
            return False, (
                f"expected {excerpt(json.dumps(self.value, ensure_ascii=False))}; "
                f"got {excerpt(json.dumps(got, ensure_ascii=False))}"
            )
        want, got_text = self.value.strip(), out.text.strip()
        if want == got_text:
            return True, "equal"
        at = next(
            (i for i, (a, b) in enumerate(zip(want, got_text, strict=False)) if a != b),
            min(len(want), len(got_text)),
        )
        start = max(0, at - 20)
        return False, (
            f"differs at character {at}: expected {excerpt(want, start=start)}; "
            f"got {excerpt(got_text, start=start)}"
        )


class Contains(_TextValue):
    """The answer contains ``value`` (case-sensitive)."""

    type: Literal["contains"]

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        if self.value in out.text:
            return True, f"found {excerpt(self.value)}"
        return False, f"expected to contain {excerpt(self.value)}; got {excerpt(out.text)}"


class IContains(_TextValue):
    """The answer contains ``value``, ignoring case."""

    type: Literal["icontains"]

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        if self.value.casefold() in out.text.casefold():
            return True, f"found {excerpt(self.value)} (ignoring case)"
        return False, (
            f"expected to contain {excerpt(self.value)} (ignoring case); got {excerpt(out.text)}"
        )


class NotContains(_TextValue):
    """The answer does not contain ``value`` (case-sensitive)."""

    type: Literal["not-contains"]

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        at = out.text.find(self.value)
        if at < 0:
            return True, f"{excerpt(self.value)} absent"
        return False, (
            f"expected not to contain {excerpt(self.value)}; found at character {at}: "
            f"{excerpt(out.text, start=max(0, at - 20))}"
        )


class Regex(_TextValue):
    """A regular expression (Python syntax, ``re.search``) matches the answer.

    Inline flags work: ``(?i)`` ignores case, ``(?s)`` lets ``.`` match newlines, ``(?m)`` makes
    ``^``/``$`` match at line breaks.
    """

    type: Literal["regex"]

    @field_validator("value")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        match = re.search(self.value, out.text)
        if match:
            return True, f"matched {excerpt(match.group(0))}"
        return False, f"no match for /{self.value}/ in {excerpt(out.text)}"


class StartsWith(_TextValue):
    """The answer (leading whitespace ignored) starts with ``value``."""

    type: Literal["starts-with"]

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        text = out.text.lstrip()
        if text.startswith(self.value):
            return True, f"starts with {excerpt(self.value)}"
        return False, (
            f"expected to start with {excerpt(self.value)}; "
            f"got {excerpt(text, width=max(len(self.value) + 20, 40))}"
        )


class IsJson(_Assertion):
    """The whole answer is JSON (one surrounding Markdown code fence is accepted)."""

    type: Literal["is-json"]

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        try:
            parse_json_answer(out.text)
        except ValueError as exc:
            return False, f"not valid JSON ({exc}); got {excerpt(out.text)}"
        return True, "valid JSON"


class JsonSchema(_Assertion):
    """The answer is JSON valid against the JSON Schema ``value``."""

    type: Literal["json-schema"]
    value: dict[str, Any]

    @field_validator("value")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        import jsonschema

        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
        return value

    def describe(self) -> str:
        return "json-schema"

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        import jsonschema

        try:
            data = parse_json_answer(out.text)
        except ValueError as exc:
            if out.parsed is None:
                return False, f"not valid JSON ({exc}); got {excerpt(out.text)}"
            data = out.parsed
        validator = jsonschema.validators.validator_for(self.value)(self.value)
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is None:
            return True, "matches the schema"
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return False, f"schema violation at {where}: {error.message}"


class MaxLength(_Assertion):
    """The answer has at most ``value`` characters."""

    type: Literal["max-length"]
    value: int = Field(ge=0)

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        n = len(out.text)
        if n <= self.value:
            return True, f"{n} characters (limit {self.value})"
        return False, f"{n} characters, more than {self.value}: {excerpt(out.text)}"


class StopReason(_Assertion):
    """The run stopped for this reason (or one of these), e.g. ``end_turn`` not ``max_tokens``."""

    type: Literal["stop-reason"]
    value: str | list[str]

    @field_validator("value")
    @classmethod
    def _known(cls, value: str | list[str]) -> str | list[str]:
        values = [value] if isinstance(value, str) else value
        if not values:
            raise ValueError("give at least one stop reason")
        unknown = [v for v in values if v not in STOP_REASONS]
        if unknown:
            raise ValueError(
                f"unknown stop reason(s) {', '.join(map(repr, unknown))}; "
                f"use {', '.join(sorted(STOP_REASONS))}"
            )
        return value

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        wanted = [self.value] if isinstance(self.value, str) else self.value
        if out.stop_reason in wanted:
            return True, f"stopped with {out.stop_reason}"
        return False, f"expected stop reason {' or '.join(wanted)}; got {out.stop_reason or 'none'}"


class CostUnder(_Assertion):
    """The run cost less than ``value`` US dollars."""

    type: Literal["cost-under"]
    value: float = Field(gt=0)

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        if out.cost_usd is None:
            return False, "cost unknown (the model is not in the price table)"
        if out.cost_usd < self.value:
            return True, f"cost ${out.cost_usd:.6f} (limit ${self.value:g})"
        return False, f"cost ${out.cost_usd:.6f}, not under ${self.value:g}"


class LatencyUnder(_Assertion):
    """The run took less than ``value`` milliseconds."""

    type: Literal["latency-under"]
    value: float = Field(gt=0)

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        if out.latency_ms is None:
            return False, "latency unknown"
        if out.latency_ms < self.value:
            return True, f"{out.latency_ms:.0f} ms (limit {self.value:g} ms)"
        return False, f"took {out.latency_ms:.0f} ms, not under {self.value:g} ms"


class LlmRubric(_Assertion):
    """A grading prompt stored in the registry judges the answer against the rubric ``value``.

    ``grader`` names the grading prompt (default ``system/rubric-grader``, created on first use);
    it runs at its ``production`` label and answers JSON ``{"pass": bool, "reason": str}``.
    """

    type: Literal["llm-rubric"]
    value: str = Field(min_length=1)
    grader: str = DEFAULT_GRADER

    needs_grader: ClassVar[bool] = True

    @field_validator("grader")
    @classmethod
    def _grader_name(cls, value: str) -> str:
        try:
            return check_prompt_name(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None

    def check(self, out: CaseOutput, grade: Grader | None) -> tuple[bool, str]:
        if grade is None:
            return False, "no grader available to judge the rubric"
        verdict = grade(self.value, out, self.grader)
        return verdict.passed, verdict.reason


Assertion = Annotated[
    Equals
    | Contains
    | IContains
    | NotContains
    | Regex
    | StartsWith
    | IsJson
    | JsonSchema
    | MaxLength
    | StopReason
    | CostUnder
    | LatencyUnder
    | LlmRubric,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Assertion] = TypeAdapter(Assertion)

#: every assertion type name, in documentation order (the order of the union above)
ASSERTION_TYPES: tuple[str, ...] = tuple(
    get_args(cls.model_fields["type"].annotation)[0] for cls in get_args(get_args(Assertion)[0])
)


def _describe_error(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # the discriminated union puts the type name first; drop it
        if loc and loc[0] in ASSERTION_TYPES:
            loc = loc[1:]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{'.'.join(loc) or 'value'}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_assertion(data: Any, *, case: str = "", index: int = 0) -> _Assertion:
    """Validate one assertion definition; ``ValidationError`` names the case and assertion."""
    where = f"test case {case!r}, " if case else ""
    label = f"{where}assertion {index + 1}"
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"{label}: must be a mapping like {{type: contains, value: ...}}, got {data!r}",
            field="assert",
        )
    kind = data.get("type")
    if kind not in ASSERTION_TYPES:
        raise ValidationError(
            f"{label}: unknown assertion type {kind!r}; use one of: {', '.join(ASSERTION_TYPES)}",
            field="assert",
        )
    try:
        parsed: _Assertion = _ADAPTER.validate_python(dict(data))
    except pydantic.ValidationError as exc:
        raise ValidationError(f"{label} ({kind}): {_describe_error(exc)}", field="assert") from None
    return parsed


def parse_assertions(items: Any, *, case: str = "") -> list[_Assertion]:
    """Validate a list of assertion definitions (see :func:`parse_assertion`)."""
    if items is None:
        return []
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ValidationError(
            f"test case {case!r}: 'assert' must be a list of assertions", field="assert"
        )
    return [parse_assertion(item, case=case, index=i) for i, item in enumerate(items)]


def dump_assertion(assertion: _Assertion) -> dict[str, Any]:
    """The canonical mapping of an assertion (defaults left out), as stored and exported."""
    data = assertion.model_dump(mode="json", exclude_defaults=True)
    return {"type": data.pop("type"), **data}


def normalize_assertions(items: Any, *, case: str = "") -> list[dict[str, Any]]:
    """Validate then return the canonical mappings (what the database stores)."""
    return [dump_assertion(a) for a in parse_assertions(items, case=case)]


def check_assertions(
    definitions: Sequence[Mapping[str, Any]], out: CaseOutput, *, grade: Grader | None = None
) -> list[AssertionResult]:
    """Evaluate every assertion on ``out``; a check that raises becomes a failed result.

    So does a stored definition that is no longer valid (saved before a rule changed, or
    written to the database by hand): it fails with the reason instead of stopping the suite.
    """
    results = []
    for i, definition in enumerate(definitions):
        try:
            assertion = parse_assertion(definition, index=i)
        except ValidationError as exc:
            given = definition.get("type") if isinstance(definition, Mapping) else None
            results.append(
                AssertionResult(
                    index=i,
                    type=str(given or ""),
                    description=str(given or "assertion"),
                    passed=False,
                    message=f"invalid assertion, fix the test case: {exc.message}",
                )
            )
            continue
        kind: str = getattr(assertion, "type", "")
        try:
            passed, message = assertion.check(out, grade)
        except Exception as exc:  # a grader run failing must fail the assertion, not the suite
            text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            passed, message = False, f"could not be checked: {text}"
        results.append(
            AssertionResult(
                index=i,
                type=kind,
                description=assertion.describe(),
                passed=passed,
                message=message,
            )
        )
    return results


__all__ = [
    "ASSERTION_TYPES",
    "DEFAULT_GRADER",
    "STOP_REASONS",
    "Assertion",
    "AssertionResult",
    "CaseOutput",
    "Grader",
    "Verdict",
    "check_assertions",
    "dump_assertion",
    "excerpt",
    "normalize_assertions",
    "parse_assertion",
    "parse_assertions",
    "parse_json_answer",
]
