"""Regression suites end to end, against the fake Anthropic server: runs stored per case, every
assertion type through the runner, a suite that passes then fails on a bad new version,
the promotion gate and its audited override, the concurrency bound, failed runs as failed cases,
comparing versions."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from registry import ConfigurationError, Registry, SuiteGateError, ValidationError
from registry.models.runs import RunRow
from registry.models.suites import SuiteCaseRow
from registry.suites import (
    compare_versions,
    create_case,
    get_suite_run,
    latest_suite_run,
    promotion_status,
    run_suite,
    suite_runs,
    sync_cases_from_file,
    update_case,
)
from registry.suites.rubric import DEFAULT_GRADER
from registry.testing import FakeAnthropic, Reply

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid"}


def make_prompt(reg: Registry, name: str = "capitals", *, system: str = "GOOD", **kw: Any) -> int:
    """A small prompt whose answers the fake server derives from its system prompt."""
    kw.setdefault("labels", ["staging"])
    v = reg.create_version(
        name,
        system=f"{system}: answer with the capital city.",
        messages=[{"role": "user", "content": "What is the capital of {{ country }}?"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 100},
        variables={"country": {"type": "string", "required": True}},
        author="ana",
        **kw,
    )
    return v.version


def last_user(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def capitals_responder(body: dict[str, Any]) -> Reply:
    """GOOD versions name the capital; BAD versions do not know."""
    system = str(body.get("system", ""))
    country = re.search(r"capital of (\w+)", last_user(body))
    if "GOOD" in system and country:
        return Reply.text(f"The capital is {CAPITALS.get(country.group(1), 'unknown')}.")
    return Reply.text("I am not sure, sorry.")


CASES = [
    {"name": c, "variables": {"country": c}, "assert": [{"type": "contains", "value": city}]}
    for c, city in CAPITALS.items()
]


@pytest.fixture
def capitals(reg: Registry, fake_anthropic: FakeAnthropic) -> Registry:
    fake_anthropic.responder = capitals_responder
    make_prompt(reg, labels=["production", "staging"])  # v1, production before any case exists
    sync_cases_from_file(reg, "capitals", CASES, author="ana")
    return reg


def test_a_suite_passes_then_fails_after_a_bad_new_version(capitals: Registry) -> None:
    reg = capitals
    good = run_suite(reg, "capitals", version=1, concurrency=2, actor="ana")
    assert good.ok and good.status == "passed" and (good.passed, good.total) == (4, 4)
    assert [r.case for r in good.results] == list(CAPITALS)
    assert all(r.run_id and r.cost_usd and r.latency_ms is not None for r in good.results)
    assert good.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in good.results))

    bad_version = make_prompt(reg, system="BAD")
    bad = run_suite(reg, "capitals", actor="bob")  # default: the newest version
    assert bad.version == bad_version == 2
    assert bad.status == "failed" and (bad.passed, bad.failed, bad.errored) == (0, 4, 0)
    france = bad.results[0]
    assert france.output == "I am not sure, sorry."
    [check] = france.failures
    assert check.description == 'contains "Paris"'
    assert 'expected to contain "Paris"; got "I am not sure, sorry."' in check.message

    stored = get_suite_run(reg, bad.id)
    assert stored.to_dict() == bad.to_dict()
    assert [r.id for r in suite_runs(reg, "capitals")] == [bad.id, good.id]
    assert latest_suite_run(reg, "capitals", 1) == good.with_results([])
    with reg.db.snapshot() as s:
        rows = s.scalars(sa.select(RunRow).where(RunRow.suite_run_id == str(bad.id))).all()
    assert len(rows) == 4 and {r.source for r in rows} == {"test"}
    assert {r.id for r in rows} == {r.run_id for r in bad.results}
    assert {r.version for r in rows} == {2}


def test_a_failed_run_is_a_failed_case_not_a_crash(
    capitals: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.error(400, "invalid_request_error", "prompt is too long"))
    run = run_suite(capitals, "capitals", version=1, concurrency=1, max_retries=0)
    assert run.status == "failed" and (run.passed, run.errored) == (3, 1)
    [broken] = [r for r in run.results if r.status == "error"]
    assert broken.case == "France" and "prompt is too long" in (broken.error or "")
    assert broken.run_id  # the failed call still left its run row
    assert "run failed: " in broken.summary()


def test_a_render_error_is_a_failed_case(capitals: Registry) -> None:
    create_case(capitals, "capitals", "missing-variable", variables={}, actor="ana")
    run = run_suite(capitals, "capitals", version=1)
    [broken] = [r for r in run.results if not r.passed]
    assert broken.status == "error" and "country" in (broken.error or "")


def test_a_stored_assertion_that_is_no_longer_valid_fails_its_case_only(
    capitals: Registry,
) -> None:
    with capitals.db.transaction() as s:
        s.execute(
            sa.update(SuiteCaseRow)
            .where(SuiteCaseRow.name == "France")
            .values(assertions=[{"type": "contains", "value": ""}])
        )
    run = run_suite(capitals, "capitals", version=1)
    assert run.status == "failed" and (run.passed, run.failed, run.errored) == (3, 1, 0)
    [bad] = [r for r in run.results if not r.passed]
    assert bad.case == "France" and "invalid assertion" in bad.assertions[0].message


def test_missing_api_key_stops_the_suite_and_marks_it(
    capitals: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        run_suite(capitals, "capitals", version=1)
    [stored] = suite_runs(capitals, "capitals")
    assert stored.status == "error" and "ANTHROPIC_API_KEY" in (stored.error or "")


def test_suite_needs_cases_and_a_valid_target(reg: Registry, fake_anthropic: FakeAnthropic) -> None:
    make_prompt(reg)
    with pytest.raises(ValidationError, match="has no test cases"):
        run_suite(reg, "capitals")
    sync_cases_from_file(reg, "capitals", CASES[:1])
    with pytest.raises(ValidationError, match="not both"):
        run_suite(reg, "capitals", version=1, label="staging")
    with pytest.raises(ValidationError, match="concurrency"):
        run_suite(reg, "capitals", concurrency=0)
    assert run_suite(reg, "capitals", label="staging").label == "staging"


def test_concurrency_bound_is_respected(
    sqlite_reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg = sqlite_reg
    fake_anthropic.responder = capitals_responder
    fake_anthropic.latency = 0.15
    make_prompt(reg)
    many = [
        {
            "name": f"case-{i}",
            "variables": {"country": "France"},
            "assert": [{"type": "contains", "value": "Paris"}],
        }
        for i in range(9)
    ]
    sync_cases_from_file(reg, "capitals", many)
    fake_anthropic.reset()
    run = run_suite(reg, "capitals", concurrency=3)
    assert run.ok and run.concurrency == 3
    assert fake_anthropic.max_in_flight == 3
    fake_anthropic.reset()
    assert run_suite(reg, "capitals", concurrency=1).ok
    assert fake_anthropic.max_in_flight == 1


# -- every assertion type through the runner ---------------------------------------------------

GOOD_ANSWER = '{"revenue": "4.2M", "growth": "23%"}'


def metrics_responder(body: dict[str, Any]) -> Reply:
    system = str(body.get("system", ""))
    text = last_user(body)
    if "You grade answers" in system:  # the rubric grader
        answer = text.split("<answer>")[1].split("</answer>")[0]
        ok = '"revenue"' in answer
        return Reply.text(
            f'{{"pass": {"true" if ok else "false"}, "reason": "revenue {"present" if ok else "missing"}"}}'
        )
    if "good report" in text:
        return Reply.text(GOOD_ANSWER)
    return Reply.text(
        "Revenue error: unknown. " * 4, stop_reason="max_tokens", output_tokens=1_000_000, delay=0.3
    )


def every_type(latency_limit: float) -> list[dict[str, Any]]:
    return [
        {"type": "equals", "value": {"revenue": "4.2M", "growth": "23%"}},
        {"type": "contains", "value": "4.2M"},
        {"type": "icontains", "value": 'REVENUE"'},
        {"type": "not-contains", "value": "error"},
        {"type": "regex", "value": r'"growth":\s*"\d+%"'},
        {"type": "starts-with", "value": "{"},
        {"type": "is-json"},
        {"type": "json-schema", "value": {"type": "object", "required": ["revenue"]}},
        {"type": "max-length", "value": 60},
        {"type": "stop-reason", "value": "end_turn"},
        {"type": "cost-under", "value": 1.0},
        {"type": "latency-under", "value": latency_limit},
        {"type": "llm-rubric", "value": "Reports the revenue as a JSON field"},
    ]


def test_every_assertion_type_passes_and_fails_through_the_runner(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.responder = metrics_responder
    reg.create_version(
        "metrics",
        system="Extract metrics as JSON.",
        messages=[{"role": "user", "content": "{{ document }}"}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 300},
        variables={"document": {"type": "string", "required": True}},
    )
    sync_cases_from_file(
        reg,
        "metrics",
        [
            {
                "name": "passes",
                "variables": {"document": "a good report"},
                "assert": every_type(60_000),
            },
            {"name": "fails", "variables": {"document": "a broken one"}, "assert": every_type(100)},
        ],
    )
    run = run_suite(reg, "metrics", concurrency=2)
    passes, fails = run.results
    kinds = [a["type"] for a in every_type(1)]
    assert [a.type for a in passes.assertions] == kinds == [a.type for a in fails.assertions]
    assert all(a.passed for a in passes.assertions), passes.summary()
    assert not any(a.passed for a in fails.assertions), [a for a in fails.assertions if a.passed]
    messages = {a.type: a.message for a in fails.assertions}
    assert "got max_tokens" in messages["stop-reason"]
    assert "not under $1" in messages["cost-under"]
    assert "not under 100 ms" in messages["latency-under"]
    assert messages["llm-rubric"] == "grader: revenue missing"
    assert "not valid JSON" in messages["is-json"]
    # the grader is a prompt stored in the registry, run through the runner and logged
    assert reg.get(DEFAULT_GRADER).version == 1
    with reg.db.snapshot() as s:
        sources = s.execute(
            sa.select(RunRow.source, sa.func.count())
            .where(RunRow.suite_run_id == str(run.id))
            .group_by(RunRow.source)
        ).all()
    assert dict(sources) == {"test": 2, "rubric": 2}
    assert (
        run.cost_usd is not None
        and run.cost_usd > sum(r.cost_usd or 0 for r in run.results) - 1e-12
    )


# -- the gate ------------------------------------------------------------------------------------


def test_gate_blocks_production_until_the_suite_passes_and_override_records_reason(
    capitals: Registry,
) -> None:
    reg = capitals
    v2 = make_prompt(reg, system="BAD")  # staging moves; production stays on v1
    assert reg.prompt("capitals").labels == {"production": 1, "staging": 2}
    with pytest.raises(
        SuiteGateError, match="never run on v2; run `prompt-registry test capitals --version 2`"
    ):
        reg.set_label("capitals", "production", v2, actor="bob")
    run_suite(reg, "capitals", version=v2)
    with pytest.raises(
        SuiteGateError, match=r"suite run #\d+ on v2 failed: 4 of 4 case\(s\) did not pass"
    ):
        reg.set_label("capitals", "production", v2, actor="bob")
    assert "failed" in (promotion_status(reg, "capitals", v2) or "")
    with pytest.raises(ValidationError, match="needs a reason"):
        reg.set_label("capitals", "production", v2, actor="admin", override=True)
    reg.set_label(
        "capitals", "production", v2, actor="admin", override=True, reason="hotfix, suite flaky"
    )
    last = reg.label_history("capitals", "production")[-1]
    assert (last.kind, last.reason, last.actor, last.to_version) == (
        "override",
        "hotfix, suite flaky",
        "admin",
        2,
    )

    # a good v3 passes and moves without an override
    v3 = make_prompt(reg, system="GOOD v3")
    assert run_suite(reg, "capitals", version=v3).ok
    assert promotion_status(reg, "capitals", v3) is None
    reg.set_label("capitals", "production", v3, actor="bob", reason="suite green")
    assert reg.label_history("capitals", "production")[-1].kind == "move"

    # rolling back to a version production already served is never blocked
    reg.rollback_label("capitals", "production", actor="bob", reason="back to v2")
    assert reg.prompt("capitals").labels["production"] == 2

    # editing the cases after a passing run calls for a new run
    v4 = make_prompt(reg, system="GOOD v4")
    assert run_suite(reg, "capitals", version=v4).ok
    update_case(reg, "capitals", "France", variables={"country": "Italy"})
    with pytest.raises(SuiteGateError, match="test cases changed since suite run"):
        reg.set_label("capitals", "production", v4, actor="bob")
    assert run_suite(reg, "capitals", version=v4).ok is False  # Italy's capital is not Paris
    update_case(reg, "capitals", "France", assertions=[{"type": "contains", "value": "Rome"}])
    assert run_suite(reg, "capitals", version=v4).ok
    reg.set_label("capitals", "production", v4, actor="bob")


def test_every_way_of_moving_a_protected_label_is_gated(
    capitals: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = capitals
    with pytest.raises(SuiteGateError):
        make_prompt(reg, system="BAD", labels=["staging", "production"])  # create_version
    assert reg.prompt("capitals").latest_version == 1  # refused as a whole
    v2 = make_prompt(reg, system="BAD")
    with pytest.raises(SuiteGateError):
        reg.release({"capitals": v2}, label="production", actor="bob")
    reg.set_label("capitals", "qa", v2, actor="bob")  # unprotected labels are never gated
    monkeypatch.setenv("REGISTRY_PROTECTED_LABELS", "production, qa")
    v3 = make_prompt(reg, system="BAD v3")
    with pytest.raises(SuiteGateError, match="cannot move 'qa' of 'capitals' to v3"):
        reg.set_label("capitals", "qa", v3, actor="bob")
    assert promotion_status(reg, "capitals", v3, "qa") is not None
    assert promotion_status(reg, "capitals", v3, "staging") is None


def test_a_prompt_without_cases_is_not_gated(reg: Registry) -> None:
    make_prompt(reg, labels=["production"])
    make_prompt(reg, system="other")
    reg.set_label("capitals", "production", 2, actor="bob")
    assert promotion_status(reg, "capitals", 2) is None


# -- compare -------------------------------------------------------------------------------------


def test_compare_versions_reuses_the_baseline_and_reports_changes(
    capitals: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg = capitals
    baseline = run_suite(reg, "capitals", version=1)
    make_prompt(reg, system="BAD")
    fake_anthropic.reset()
    cmp = compare_versions(reg, "capitals", version=2, against=1)
    assert cmp.old.id == baseline.id  # reused: same cases, finished
    assert len(fake_anthropic.requests_to("/v1/messages")) == 4  # only v2 ran
    assert [c.case for c in cmp.regressions] == list(CAPITALS) and cmp.fixes == []
    france = cmp.cases[0]
    assert france.old and france.old.output == "The capital is Paris."
    assert france.new and france.new.output == "I am not sure, sorry."
    assert france.status_change == "passed -> failed"
    assert [ch.describe() for ch in france.changes] == ['contains "Paris": pass->fail']
    assert france.cost_delta is not None and france.latency_delta is not None
    assert cmp.cost_delta == pytest.approx(sum(c.cost_delta or 0 for c in cmp.cases))
    fresh = compare_versions(reg, "capitals", version=1, against=2, fresh=True)
    assert fresh.old.id != cmp.new.id and len(fresh.fixes) == 4
