"""Assertion types: each passes and fails with a message showing what differed; bad definitions
are refused at save with an error naming the case and the assertion."""

from __future__ import annotations

from typing import Any

import pytest

from registry import ValidationError
from registry.suites.assertions import (
    ASSERTION_TYPES,
    CaseOutput,
    Verdict,
    check_assertions,
    excerpt,
    normalize_assertions,
    parse_assertions,
)
from registry.suites.rubric import parse_verdict


def out(text: str = "", **kw: Any) -> CaseOutput:
    return CaseOutput(text=text, **kw)


def grader(rubric: str, output: CaseOutput, grader_name: str) -> Verdict:
    """A stand-in grader: the rubric is a word the answer must contain."""
    ok = rubric.lower() in output.text.lower()
    return Verdict(ok, f"{'mentions' if ok else 'does not mention'} {rubric}")


CASES: list[tuple[dict[str, Any], CaseOutput, bool, str]] = [
    # (assertion, output, passes, text the message must contain)
    ({"type": "equals", "value": "billing"}, out("billing\n"), True, "equal"),
    ({"type": "equals", "value": "billing"}, out("bug"), False, 'expected "billing"'),
    ({"type": "equals", "value": {"a": 1}}, out('```json\n{"a": 1}\n```'), True, "equal"),
    ({"type": "equals", "value": {"a": 1}}, out('{"a": 2}'), False, '{\\"a\\": 2}'),
    ({"type": "equals", "value": [1, 2]}, out("not json"), False, "non-JSON"),
    ({"type": "contains", "value": "4.2"}, out("Revenue was $4.2M"), True, "found"),
    ({"type": "contains", "value": "4.2"}, out("Revenue was $5M"), False, "Revenue was $5M"),
    ({"type": "contains", "value": 4.2}, out("it is 4.2"), True, "found"),
    (
        {"type": "icontains", "value": "BILLING"},
        out("see Settings > Billing"),
        True,
        "ignoring case",
    ),
    ({"type": "icontains", "value": "billing"}, out("see Settings"), False, "see Settings"),
    ({"type": "not-contains", "value": "yes, bitcoin"}, out("We accept cards."), True, "absent"),
    (
        {"type": "not-contains", "value": "bitcoin"},
        out("Sure, bitcoin works"),
        False,
        "character 6",
    ),
    ({"type": "regex", "value": "^(billing|bug)$"}, out("billing"), True, "matched"),
    ({"type": "regex", "value": "^(billing|bug)$"}, out("Billing"), False, "no match for"),
    ({"type": "regex", "value": "(?i)^billing$"}, out("Billing"), True, "matched"),
    ({"type": "starts-with", "value": "Dear"}, out("  Dear customer"), True, "starts with"),
    ({"type": "starts-with", "value": "Dear"}, out("Hi customer"), False, '"Hi customer"'),
    ({"type": "is-json"}, out('{"revenue": "4.2M"}'), True, "valid JSON"),
    ({"type": "is-json"}, out('```json\n{"revenue": "4.2M"}\n```'), True, "valid JSON"),
    ({"type": "is-json"}, out("Revenue: 4.2M"), False, "not valid JSON"),
    (
        {"type": "json-schema", "value": {"type": "object", "required": ["revenue"]}},
        out('{"revenue": "4.2M"}'),
        True,
        "matches",
    ),
    (
        {"type": "json-schema", "value": {"type": "object", "required": ["revenue"]}},
        out('{"growth": "23%"}'),
        False,
        "'revenue' is a required property",
    ),
    (
        {
            "type": "json-schema",
            "value": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
        out('{"n": "three"}'),
        False,
        "at n:",
    ),
    (
        {"type": "json-schema", "value": {"type": "object"}},
        out("Here it is: {oops"),
        False,
        "not valid JSON",
    ),
    ({"type": "max-length", "value": 10}, out("short"), True, "5 characters"),
    ({"type": "max-length", "value": 3}, out("too long"), False, "8 characters, more than 3"),
    (
        {"type": "stop-reason", "value": "end_turn"},
        out("x", stop_reason="end_turn"),
        True,
        "end_turn",
    ),
    (
        {"type": "stop-reason", "value": "end_turn"},
        out("x", stop_reason="max_tokens"),
        False,
        "expected stop reason end_turn; got max_tokens",
    ),
    (
        {"type": "stop-reason", "value": ["end_turn", "stop_sequence"]},
        out("x", stop_reason="stop_sequence"),
        True,
        "stop_sequence",
    ),
    ({"type": "cost-under", "value": 0.01}, out("x", cost_usd=0.002), True, "$0.002000"),
    ({"type": "cost-under", "value": 0.001}, out("x", cost_usd=0.002), False, "not under $0.001"),
    ({"type": "cost-under", "value": 0.01}, out("x", cost_usd=None), False, "cost unknown"),
    ({"type": "latency-under", "value": 500}, out("x", latency_ms=120.0), True, "120 ms"),
    ({"type": "latency-under", "value": 100}, out("x", latency_ms=120.0), False, "took 120 ms"),
    ({"type": "llm-rubric", "value": "invoice"}, out("Your invoice is ready"), True, "mentions"),
    ({"type": "llm-rubric", "value": "invoice"}, out("Hello"), False, "does not mention"),
]


@pytest.mark.parametrize(("definition", "output", "passes", "message"), CASES)
def test_every_assertion_type_passes_and_fails_with_a_useful_message(
    definition: dict[str, Any], output: CaseOutput, passes: bool, message: str
) -> None:
    [result] = check_assertions([definition], output, grade=grader)
    assert result.passed is passes, result.message
    assert message in result.message
    assert result.type == definition["type"]


def test_the_table_covers_every_type_both_ways() -> None:
    seen = {(d["type"], passes) for d, _, passes, _ in CASES}
    assert seen == {(t, p) for t in ASSERTION_TYPES for p in (True, False)}
    assert len(set(ASSERTION_TYPES)) == len(ASSERTION_TYPES) == 13


def test_failure_messages_truncate_long_answers() -> None:
    long = "x" * 5000
    [result] = check_assertions([{"type": "contains", "value": "needle"}], out(long))
    assert not result.passed
    assert len(result.message) < 250 and "(+4920 chars)" in result.message
    assert excerpt("abcdef", start=2, width=2) == '…"cd"… (+2 chars)'


def test_equals_shows_where_the_texts_differ() -> None:
    want = "The quick brown fox jumps over the lazy dog. " * 3
    got = want[:60] + "CAT" + want[63:]
    [result] = check_assertions([{"type": "equals", "value": want}], out(got))
    assert not result.passed
    assert "differs at character 60" in result.message and "CAT" in result.message


def test_a_grader_that_raises_fails_the_assertion_instead_of_crashing() -> None:
    def broken(rubric: str, output: CaseOutput, name: str) -> Verdict:
        raise RuntimeError("grader unavailable")

    [result] = check_assertions(
        [{"type": "llm-rubric", "value": "polite"}], out("hi"), grade=broken
    )
    assert not result.passed and "could not be checked: grader unavailable" in result.message
    [result] = check_assertions([{"type": "llm-rubric", "value": "polite"}], out("hi"))
    assert not result.passed and "no grader" in result.message


BAD: list[tuple[Any, str]] = [
    ({"type": "contain", "value": "x"}, "unknown assertion type 'contain'; use one of: equals"),
    ({"value": "x"}, "unknown assertion type None"),
    ("contains", "must be a mapping"),
    ({"type": "contains"}, "assertion 2 (contains): value: Field required"),
    ({"type": "contains", "value": ""}, "value: String should have at least 1 character"),
    ({"type": "contains", "value": "x", "case_sensitive": True}, "case_sensitive: unknown field"),
    ({"type": "regex", "value": "([unclosed"}, "invalid regular expression '([unclosed'"),
    ({"type": "json-schema", "value": {"type": "objekt"}}, "not a valid JSON Schema"),
    ({"type": "json-schema", "value": "object"}, "value: Input should be a valid dictionary"),
    ({"type": "max-length", "value": -1}, "greater than or equal to 0"),
    ({"type": "max-length", "value": "ten"}, "valid integer"),
    ({"type": "stop-reason", "value": "done"}, "unknown stop reason(s) 'done'; use end_turn"),
    ({"type": "stop-reason", "value": []}, "at least one stop reason"),
    ({"type": "cost-under", "value": 0}, "greater than 0"),
    ({"type": "latency-under", "value": -5}, "greater than 0"),
    ({"type": "llm-rubric", "value": ""}, "at least 1 character"),
    ({"type": "llm-rubric", "value": "polite", "grader": "../etc"}, "invalid prompt name"),
    ({"type": "is-json", "value": True}, "value: unknown field"),
]


@pytest.mark.parametrize(("definition", "expected_error"), BAD)
def test_bad_definitions_are_refused_naming_case_and_assertion(
    definition: Any, expected_error: str
) -> None:
    with pytest.raises(ValidationError) as info:
        parse_assertions([{"type": "is-json"}, definition], case="q2-report")
    message = info.value.message
    assert message.startswith("test case 'q2-report', assertion 2")
    assert expected_error in message, message


def test_assert_must_be_a_list() -> None:
    with pytest.raises(ValidationError, match="'assert' must be a list"):
        parse_assertions({"type": "is-json"}, case="c")
    assert parse_assertions(None) == []


def test_normalized_definitions_keep_type_first_and_drop_defaults() -> None:
    stored = normalize_assertions(
        [
            {"value": 4.2, "type": "contains"},
            {"type": "llm-rubric", "value": "polite", "grader": "system/rubric-grader"},
            {"type": "is-json"},
        ]
    )
    assert stored == [
        {"type": "contains", "value": "4.2"},
        {"type": "llm-rubric", "value": "polite"},
        {"type": "is-json"},
    ]
    assert list(stored[0]) == ["type", "value"]


@pytest.mark.parametrize(
    ("answer", "passed", "reason"),
    [
        ('{"pass": true, "reason": "polite and correct"}', True, "polite and correct"),
        ('```json\n{"pass": false, "reason": "rude"}\n```', False, "rude"),
        ('Sure! Here is my verdict: {"passed": "yes", "explanation": "ok"} Thanks.', True, "ok"),
        ('{"note": 1} then {"result": "fail", "reasoning": "wrong total"}', False, "wrong total"),
        ('{"score": 0.8}', True, "passed"),
        ("PASS: the answer cites the article", True, "the answer cites the article"),
        ("**FAIL** - invents a refund policy", False, "invents a refund policy"),
        ("I think it is fine", False, "could not be read as a verdict"),
    ],
)
def test_grader_answers_are_read_robustly(answer: str, passed: bool, reason: str) -> None:
    verdict = parse_verdict(answer)
    assert verdict.passed is passed
    assert reason in verdict.reason


def test_an_invalid_stored_definition_fails_alone_instead_of_stopping_the_suite() -> None:
    results = check_assertions(
        [{"type": "contains"}, {"type": "nope", "value": 1}, {"type": "contains", "value": "hi"}],
        CaseOutput(text="hi there"),
    )
    assert [(r.type, r.passed) for r in results] == [
        ("contains", False),
        ("nope", False),
        ("contains", True),
    ]
    assert results[0].message.startswith("invalid assertion, fix the test case: ")
    assert "value" in results[0].message and "unknown assertion type" in results[1].message
