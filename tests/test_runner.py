"""The runner against the fake Anthropic server, on SQLite and PostgreSQL: run log, streaming,
structured output with repair, response cache, budget, feedback, listeners and costs."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from registry import (
    BudgetExceeded,
    ConfigurationError,
    NotFound,
    OutputValidationError,
    Registry,
    RenderError,
    ValidationError,
)
from registry.models.runs import FeedbackRow, RunRow
from registry.prices import Usage, cost_usd
from registry.runner import RetryPolicy, RunResult, cost_report
from registry.testing import FakeAnthropic, Reply
from tests.conftest import simple_version

SCHEMA = {
    "type": "object",
    "required": ["revenue"],
    "properties": {"revenue": {"type": "string"}, "growth": {"type": ["string", "null"]}},
}
KEY = "sk-ant-test-key"


def make_prompt(reg: Registry, name: str = "qa", **overrides: Any) -> Any:
    """A prompt with one version labelled production."""
    return reg.create_version(name, **simple_version(labels=["production"], **overrides))


def run_rows(reg: Registry) -> list[dict[str, Any]]:
    """Every run row, oldest first."""
    with reg.db.engine.connect() as conn:
        rows = conn.execute(sa.select(RunRow.__table__).order_by(RunRow.created_at)).mappings()
        return [dict(r) for r in rows]


@pytest.fixture
def api(reg: Registry, fake_anthropic: FakeAnthropic) -> Iterator[FakeAnthropic]:
    """The fake server, with the registry's runner retrying fast."""
    reg.runner.retry = RetryPolicy(base_delay=0.01, max_delay=0.05)
    yield fake_anthropic
    reg.runner.close()


# -- plain runs and the run row ------------------------------------------------------------


def test_run_returns_the_answer_and_logs_one_complete_row(
    reg: Registry, api: FakeAnthropic
) -> None:
    make_prompt(reg, settings={"model": "claude-sonnet-4-6", "max_tokens": 300, "temperature": 0.3})
    api.enqueue(Reply.text("Your invoice is in Billing.", input_tokens=120, output_tokens=40))

    result = reg.run("qa", {"question": "Where is my invoice?"}, metadata={"ticket": 7})

    assert isinstance(result, RunResult)
    assert result.status == "ok" and result.ok
    assert result.text == "Your invoice is in Billing."
    assert (result.name, result.version, result.label) == ("qa", 1, "production")
    assert result.model == "claude-sonnet-4-6"
    assert (result.input_tokens, result.output_tokens) == (120, 40)
    assert result.cost_usd == pytest.approx((120 * 3 + 40 * 15) / 1e6)
    assert result.stop_reason == "end_turn"
    assert result.attempts == 1 and not result.cached
    assert result.request_id == api.last_request.request_id  # type: ignore[union-attr]
    assert result.latency_ms > 0 and result.ttft_ms is None
    assert json.loads(json.dumps(result.to_dict()))["run_id"] == result.run_id

    sent = api.last_request
    assert sent is not None
    assert sent.json["temperature"] == 0.3  # sampling settings travel in extra_body
    assert sent.json["system"] == "You are a helpful assistant."
    assert sent.json["messages"] == [{"role": "user", "content": "Where is my invoice?"}]

    [row] = run_rows(reg)
    assert row["id"] == result.run_id
    assert row["status"] == "ok" and row["error_type"] is None
    assert (row["prompt"], row["version"], row["label"]) == ("qa", 1, "production")
    assert row["variables"] == {"question": "Where is my invoice?"}
    assert row["params"]["extra_body"] == {"temperature": 0.3}
    assert "messages" not in row["params"]
    assert len(row["input_hash"]) == 64
    assert row["output_text"] == result.text
    assert (row["input_tokens"], row["output_tokens"], row["attempts"]) == (120, 40, 1)
    assert row["cost_usd"] == pytest.approx(result.cost_usd)
    assert row["source"] == "app" and row["metadata"] == {"ticket": 7}
    assert row["request_id"] == result.request_id
    assert row["created_at"].tzinfo is not None
    assert KEY not in json.dumps(row, default=str)


def test_run_by_version_logs_no_label_and_the_source(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(reg)
    result = reg.run("qa", {"question": "hi"}, version=1, source="test", suite_run_id="17")
    [row] = run_rows(reg)
    assert result.label is None and row["label"] is None
    assert row["source"] == "test" and row["suite_run_id"] == "17"
    assert reg.runner.get_run(result.run_id) == result


def test_stream_yields_text_as_it_arrives_and_logs_ttft(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(reg)
    api.enqueue(Reply.text("one two three four five", chunks=5, chunk_delay=0.01))

    stream = reg.stream("qa", {"question": "count"})
    assert stream.result is None and stream.text == ""
    chunks = [next(stream), next(stream)]
    assert stream.text == "".join(chunks)  # the text so far, mid-stream
    chunks += list(stream)

    assert len(chunks) == 5 and stream.text == "one two three four five"
    result = stream.result
    assert result is not None and result.text == "".join(chunks)
    assert result.ttft_ms is not None and 0 < result.ttft_ms < result.latency_ms
    assert api.last_request is not None and api.last_request.stream
    [row] = run_rows(reg)
    assert (
        row["stream"] and row["status"] == "ok" and row["ttft_ms"] == pytest.approx(result.ttft_ms)
    )
    assert row["output_text"] == result.text and row["output_tokens"] > 0


def test_run_with_huge_max_tokens_is_streamed_internally(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(reg, settings={"model": "claude-sonnet-4-6", "max_tokens": 64_000})
    api.enqueue(Reply.text("long answer", chunks=3))
    result = reg.run("qa", {"question": "essay"})
    assert result.text == "long answer" and result.ttft_ms is None
    assert api.last_request is not None and api.last_request.stream


def test_sensitive_variables_are_stored_redacted(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(
        reg,
        messages=[{"role": "user", "content": "{{ question }} (account {{ account }})"}],
        variables={"question": "string", "account": {"type": "string", "sensitive": True}},
    )
    reg.run("qa", {"question": "balance?", "account": "DE44 5001 0517 5407 3249 31"})
    [row] = run_rows(reg)
    assert row["variables"] == {"question": "balance?", "account": "[redacted]"}
    assert "5407" not in json.dumps(row, default=str).replace(row["output_text"], "")


def test_experiment_and_variant_of_the_served_version_are_logged(
    reg: Registry, api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_prompt(reg)
    plain_get = reg.get

    def get(name: str, **kw: Any) -> Any:
        v = plain_get(name, label=kw.get("label"), version=kw.get("version"))
        return v.with_assignment("tone-test", "B") if kw.get("unit_id") else v

    monkeypatch.setattr(reg, "get", get)
    result = reg.run("qa", {"question": "hi"}, unit_id="user-42")
    assert (result.experiment, result.variant, result.unit_id) == ("tone-test", "B", "user-42")
    [row] = run_rows(reg)
    assert (row["experiment"], row["variant"], row["unit_id"]) == ("tone-test", "B", "user-42")


# -- errors before any request ---------------------------------------------------------------


def test_missing_api_key_is_a_clear_error_before_any_request(
    reg: Registry, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_prompt(reg)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY") as info:
        reg.run("qa", {"question": "hi"})
    assert fake_anthropic.requests == []
    [row] = run_rows(reg)
    assert row["id"] == info.value.run_id  # type: ignore[attr-defined]
    assert (row["status"], row["error_type"], row["attempts"]) == (
        "error",
        "configuration_error",
        0,
    )


def test_unknown_prompt_and_bad_variables_are_logged_and_raised(
    reg: Registry, api: FakeAnthropic
) -> None:
    make_prompt(
        reg,
        variables={"question": "string", "pin": {"type": "string", "sensitive": True}},
        messages=[{"role": "user", "content": "{{ question }} {{ pin }}"}],
    )
    with pytest.raises(NotFound) as missing:
        reg.run("nope", {"question": "hi"})
    with pytest.raises(RenderError):
        reg.run("qa", {"question": 3, "pin": "1234"})
    with pytest.raises(ValidationError, match="unknown run option"):
        reg.run("qa", {"question": "hi", "pin": "1"}, temprature=0.2)
    assert api.requests == []
    rows = run_rows(reg)
    assert [r["error_type"] for r in rows] == ["not_found", "render_error", "validation_error"]
    assert all(r["status"] == "error" for r in rows)
    assert rows[0]["id"] == missing.value.run_id  # type: ignore[attr-defined]
    assert rows[0]["version"] is None and rows[0]["variables"] is None
    assert rows[1]["variables"] == {"question": 3, "pin": "[redacted]"}


# -- structured output -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        '{"revenue": "$4.2M", "growth": "23%"}',
        'Here it is:\n```json\n{"revenue": "$4.2M", "growth": "23%"}\n```',
        'The metrics are {"revenue": "$4.2M", "growth": "23%"} as requested.',
    ],
    ids=["raw", "fenced", "prose"],
)
def test_structured_output_is_parsed_from_raw_fenced_or_prose_json(
    reg: Registry, api: FakeAnthropic, answer: str
) -> None:
    make_prompt(reg, name="metrics", output_schema=SCHEMA)
    api.enqueue(Reply.text(answer))
    result = reg.run("metrics", {"question": "Q2 report"})
    assert result.parsed == {"revenue": "$4.2M", "growth": "23%"}
    sent = api.last_request
    assert sent is not None
    fmt = sent.json["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"]["additionalProperties"] is False
    [row] = run_rows(reg)
    assert row["parsed"] == result.parsed


def test_invalid_structured_output_gets_one_repair_that_shows_the_error(
    reg: Registry, api: FakeAnthropic
) -> None:
    make_prompt(reg, name="metrics", output_schema=SCHEMA)
    api.enqueue(
        Reply.text('{"growth": "23%"}', input_tokens=50, output_tokens=10),
        Reply.text('{"revenue": "$4.2M", "growth": "23%"}', input_tokens=80, output_tokens=12),
    )
    result = reg.run("metrics", {"question": "Q2"})

    assert result.parsed == {"revenue": "$4.2M", "growth": "23%"}
    assert result.attempts == 2
    assert (result.input_tokens, result.output_tokens) == (130, 22)
    repair = api.requests[1].json["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"growth": "23%"}'}
    assert "'revenue' is a required property" in repair[-1]["content"]
    [row] = run_rows(reg)
    assert row["status"] == "ok" and row["attempts"] == 2


def test_output_that_stays_invalid_raises_with_the_raw_text(
    reg: Registry, api: FakeAnthropic
) -> None:
    make_prompt(reg, name="metrics", output_schema=SCHEMA)
    api.enqueue(Reply.text("I cannot find any numbers."), Reply.text('{"revenue": 4.2}'))
    with pytest.raises(OutputValidationError) as info:
        reg.run("metrics", {"question": "Q2"})
    err = info.value
    assert err.raw_text == '{"revenue": 4.2}'
    assert any("4.2 is not of type 'string'" in e for e in err.errors)
    [row] = run_rows(reg)
    assert row["id"] == err.run_id
    assert (row["status"], row["error_type"], row["attempts"]) == (
        "error",
        "output_validation_error",
        2,
    )
    assert row["output_text"] == '{"revenue": 4.2}' and row["cost_usd"] > 0


# -- response cache ----------------------------------------------------------------------------


def test_cached_answer_is_served_at_once_with_zero_cost(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(reg)
    first = reg.run("qa", {"question": "2+2?"}, cache=True)
    second = reg.run("qa", {"question": "2+2?"}, cache=True)
    other = reg.run("qa", {"question": "3+3?"}, cache=True)
    uncached = reg.run("qa", {"question": "2+2?"})

    assert len(api.requests) == 3
    assert not first.cached and second.cached and not other.cached and not uncached.cached
    assert second.text == first.text and second.cost_usd == 0.0 and second.attempts == 0
    assert second.run_id != first.run_id
    rows = run_rows(reg)
    assert [r["cached"] for r in rows] == [False, True, False, False]
    assert rows[1]["cost_usd"] == 0.0 and rows[1]["input_hash"] == rows[0]["input_hash"]


def test_cache_entries_expire_after_their_ttl(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(reg)
    reg.run("qa", {"question": "x"}, cache=True, cache_ttl=0.05)
    threading.Event().wait(0.1)
    again = reg.run("qa", {"question": "x"}, cache=True)
    assert not again.cached and len(api.requests) == 2


def test_cached_structured_answer_keeps_its_parsed_object_when_streamed(
    reg: Registry, api: FakeAnthropic
) -> None:
    make_prompt(reg, name="metrics", output_schema=SCHEMA)
    api.enqueue(Reply.text('{"revenue": "1"}'))
    reg.run("metrics", {"question": "Q"}, cache=True)
    stream = reg.stream("metrics", {"question": "Q"}, cache=True)
    assert list(stream) == ['{"revenue": "1"}']
    assert stream.result is not None and stream.result.cached
    assert stream.result.parsed == {"revenue": "1"}


def test_cache_can_be_switched_on_per_prompt_or_version(
    sqlite_url: str, fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_CACHE_PROMPTS", "qa@2, other")
    with Registry(sqlite_url, cache_ttl=0) as reg:
        make_prompt(reg)
        make_prompt(reg, system="Version two.")
        make_prompt(reg, name="other")
        assert [reg.run("qa", {"question": "x"}, version=1).cached for _ in range(2)] == [False] * 2
        assert [reg.run("qa", {"question": "x"}, version=2).cached for _ in range(2)] == [
            False,
            True,
        ]
        assert [reg.run("other", {"question": "x"}).cached for _ in range(2)] == [False, True]
        assert not reg.run("other", {"question": "x"}, cache=False).cached  # the call decides


def test_redis_cache_is_shared_between_processes(
    sqlite_url: str, fake_anthropic: FakeAnthropic, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_REDIS_URL", redis_url)
    with Registry(sqlite_url, cache_ttl=0) as one, Registry(sqlite_url, cache_ttl=0) as two:
        make_prompt(one)
        first = one.run("qa", {"question": "shared?"}, cache=True)
        second = two.run("qa", {"question": "shared?"}, cache=True)
        assert not first.cached and second.cached and second.text == first.text
        assert len(fake_anthropic.requests) == 1
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = client.keys("prompt-registry:response:*")
        assert len(keys) == 1 and client.pttl(keys[0]) > 0
        client.close()
        with one.db.engine.connect() as conn:  # nothing went to the database cache
            assert conn.execute(sa.text("SELECT count(*) FROM response_cache")).scalar() == 0


# -- budget ----------------------------------------------------------------------------------


def test_daily_budget_refuses_runs_once_spent(
    reg: Registry, api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_prompt(reg)
    monkeypatch.setenv("REGISTRY_DAILY_BUDGET_USD", "0.001")
    api.enqueue(Reply.text("expensive", input_tokens=1000, output_tokens=100))  # $0.0045
    reg.run("qa", {"question": "a"})
    with pytest.raises(BudgetExceeded, match="daily budget") as info:
        reg.run("qa", {"question": "b"})
    assert len(api.requests) == 1
    # another process sees the spend in the database
    url = reg.db.url.render_as_string(hide_password=False)
    with Registry(url, cache_ttl=0) as other, pytest.raises(BudgetExceeded):
        other.run("qa", {"question": "c"})
    rows = run_rows(reg)
    assert [r["status"] for r in rows] == ["ok", "error", "error"]
    assert rows[1]["id"] == info.value.run_id and rows[1]["error_type"] == "budget_exceeded"


# -- listeners and feedback ------------------------------------------------------------------


def test_listeners_see_the_committed_run_and_cannot_break_the_caller(
    reg: Registry, api: FakeAnthropic
) -> None:
    make_prompt(reg)
    seen: list[tuple[str, int]] = []

    def count_rows(result: RunResult) -> None:
        with reg.db.engine.connect() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).select_from(RunRow).where(RunRow.id == result.run_id)
            ).scalar()
        seen.append((result.status, int(n or 0)))

    def broken(result: RunResult) -> None:
        raise RuntimeError("listener bug")

    reg.hooks.run_listeners.extend([broken, count_rows])
    reg.run("qa", {"question": "hi"})
    api.enqueue(Reply.error(400, message="bad request"))
    with pytest.raises(Exception, match="bad request"):
        reg.run("qa", {"question": "hi"})
    assert seen == [("ok", 1), ("error", 1)]


def test_feedback_is_attached_to_a_run_and_validated(reg: Registry, api: FakeAnthropic) -> None:
    make_prompt(reg)
    result = reg.run("qa", {"question": "hi"})
    reg.feedback(result.run_id, "thumbs_up", 1.0, comment="great")
    reg.feedback(result.run_id, "rating", 4)
    with pytest.raises(NotFound):
        reg.feedback("0" * 32, "thumbs_up", 1.0)
    for bad_value in (math.nan, math.inf, "1"):
        with pytest.raises(ValidationError):
            reg.feedback(result.run_id, "thumbs_up", bad_value)  # type: ignore[arg-type]
    for bad_name in ("", "has space", "x" * 65):
        with pytest.raises(ValidationError):
            reg.feedback(result.run_id, bad_name, 1.0)
    with reg.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(FeedbackRow.name, FeedbackRow.value, FeedbackRow.comment).order_by(
                FeedbackRow.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("thumbs_up", 1.0, "great"), ("rating", 4.0, "")]


# -- costs -------------------------------------------------------------------------------------


def test_cost_report_groups_spend_tokens_and_runs(
    reg: Registry, api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("claude-unknown-9: {input: 1, output: 1}\n")
    monkeypatch.setenv("REGISTRY_PRICES_FILE", str(prices))
    make_prompt(reg, name="qa")
    make_prompt(reg, name="cheap", settings={"model": "claude-haiku-4-5", "max_tokens": 100})
    make_prompt(reg, name="mystery", settings={"model": "claude-unknown-9", "max_tokens": 100})
    api.enqueue(
        Reply.text("a", input_tokens=1000, output_tokens=100),
        Reply.text("b", input_tokens=1000, output_tokens=100),
        Reply.text("c", input_tokens=1000, output_tokens=100),
        Reply.text("d", input_tokens=10, output_tokens=10),
    )
    reg.run("qa", {"question": "1"})
    reg.run("qa", {"question": "2"})
    reg.run("cheap", {"question": "3"})
    mystery = reg.run("mystery", {"question": "4"})
    assert mystery.cost_usd == pytest.approx(20 / 1e6)
    with reg.db.engine.begin() as conn:  # as logged before every model had a price
        conn.execute(sa.update(RunRow).where(RunRow.id == mystery.run_id).values(cost_usd=None))

    by_prompt = {line.key: line for line in cost_report(reg.db, by="prompt")}
    assert by_prompt["qa"].runs == 2
    assert by_prompt["qa"].cost_usd == pytest.approx(
        2 * cost_usd("claude-sonnet-4-6", Usage(1000, 100))
    )
    assert by_prompt["qa"].input_tokens == 2000 and by_prompt["qa"].output_tokens == 200
    assert by_prompt["mystery"].unpriced == 1 and by_prompt["mystery"].cost_usd == 0
    assert next(iter(by_prompt)) == "qa"  # most expensive first
    by_model = {line.key for line in cost_report(reg.db, by="model")}
    assert by_model == {"claude-sonnet-4-6", "claude-haiku-4-5", "claude-unknown-9"}
    by_version = {line.key for line in cost_report(reg.db, by="version")}
    assert "qa v1" in by_version
    [day] = cost_report(reg.db, by="day")
    assert day.runs == 4 and len(day.key) == 10
    from datetime import UTC, datetime, timedelta

    assert cost_report(reg.db, since=datetime.now(UTC) + timedelta(hours=1)) == []


def test_run_log_survives_a_lost_postgresql_connection(
    pg_url: str, fake_anthropic: FakeAnthropic
) -> None:
    with Registry(pg_url, cache_ttl=0) as reg:
        make_prompt(reg)
        reg.run("qa", {"question": "before"})
        with reg.db.engine.begin() as conn:  # kill every other session, the run log's included
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        after = reg.run("qa", {"question": "after"})
        assert [r["id"] for r in run_rows(reg)][-1] == after.run_id
        assert len(run_rows(reg)) == 2
