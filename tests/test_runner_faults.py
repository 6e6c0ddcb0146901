"""Faults from the fake Anthropic server: every call leaves exactly one run row with the right
status and attempts, the caller gets a typed error or a successful retry, nothing hangs past the
configured timeout, and no thread is left behind. Also the client-side concurrency bound."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from registry import (
    ParameterRefused,
    RateLimited,
    Registry,
    RunError,
    RunTimeout,
    StreamInterrupted,
)
from registry.models.runs import RunRow
from registry.runner import ModelLimits, RetryPolicy
from registry.testing import FakeAnthropic, Reply
from tests.conftest import simple_version

#: generous bound for "returned promptly": far below any hang, far above a loaded CI machine
PROMPT = 5.0


def run_rows(reg: Registry) -> list[dict[str, Any]]:
    """Every run row, oldest first."""
    with reg.db.engine.connect() as conn:
        rows = conn.execute(sa.select(RunRow.__table__).order_by(RunRow.created_at)).mappings()
        return [dict(r) for r in rows]


def one_row(reg: Registry) -> dict[str, Any]:
    """The single run row (fails when there is not exactly one)."""
    rows = run_rows(reg)
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def reg(sqlite_reg: Registry, fake_anthropic: FakeAnthropic) -> Iterator[Registry]:
    """A registry with prompt ``qa`` whose runner retries fast; checks no thread leaks."""
    before = set(threading.enumerate())
    sqlite_reg.runner.retry = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=2.0)
    sqlite_reg.create_version(
        "qa",
        **simple_version(
            labels=["production"],
            settings={"model": "claude-sonnet-4-6", "max_tokens": 300, "temperature": 0.5},
        ),
    )
    yield sqlite_reg
    sqlite_reg.runner.close()
    leftover = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith("fake-anthropic")
    ]
    assert leftover == [], f"threads left behind: {leftover}"


Q = {"question": "hi"}


# -- retried and recovered -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Reply.error(429, headers={"retry-after": "0"}), "rate_limit_error"),
        (Reply.error(429, headers={"retry-after-ms": "20"}), "rate_limit_error"),
        (Reply.error(500), "api_error"),
        (Reply.error(529), "overloaded_error"),
        (Reply.malformed(), "bad_response"),
        (Reply.cut_stream(), "connection_error"),
    ],
    ids=["429-retry-after", "429-retry-after-ms", "500", "529", "malformed-json", "cut-body"],
)
def test_transient_fault_is_retried_then_succeeds(
    reg: Registry, fake_anthropic: FakeAnthropic, fault: Reply, error_type: str
) -> None:
    fake_anthropic.enqueue(fault, Reply.text("recovered"))
    result = reg.run("qa", Q)
    assert result.text == "recovered" and result.attempts == 2
    assert len(fake_anthropic.requests) == 2
    row = one_row(reg)
    assert (row["status"], row["attempts"], row["error_type"]) == ("ok", 2, None)


@pytest.mark.parametrize(
    ("fault", "error", "error_type"),
    [
        (Reply.error(500), RunError, "api_error"),
        (Reply.error(529), RunError, "overloaded_error"),
        (Reply.error(429), RateLimited, "rate_limit_error"),
        (Reply.malformed(), RunError, "bad_response"),
    ],
    ids=["500", "529", "429", "malformed-json"],
)
def test_persistent_fault_fails_after_the_configured_retries(
    reg: Registry,
    fake_anthropic: FakeAnthropic,
    fault: Reply,
    error: type[Exception],
    error_type: str,
) -> None:
    fake_anthropic.default = fault
    with pytest.raises(error) as info:
        reg.run("qa", Q, max_retries=2)
    assert len(fake_anthropic.requests) == 3
    row = one_row(reg)
    assert row["id"] == info.value.run_id  # type: ignore[attr-defined]
    assert (row["status"], row["attempts"], row["error_type"]) == ("error", 3, error_type)
    assert "3 attempt" in row["error_message"]


def test_max_retries_zero_means_one_attempt(reg: Registry, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply.error(529), Reply.text("never"))
    with pytest.raises(RunError, match="overloaded"):
        reg.run("qa", Q, max_retries=0)
    assert one_row(reg)["attempts"] == 1 and len(fake_anthropic.requests) == 1


def test_should_retry_false_header_is_honoured(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.error(500, headers={"x-should-retry": "false"}), Reply.text("no"))
    with pytest.raises(RunError):
        reg.run("qa", Q)
    assert one_row(reg)["attempts"] == 1


def test_long_retry_after_fails_at_once_instead_of_hanging(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.error(429, headers={"retry-after": "100"}), Reply.text("too late"))
    start = time.perf_counter()
    with pytest.raises(RateLimited, match="after 100 s") as info:
        reg.run("qa", Q)
    assert time.perf_counter() - start < PROMPT
    assert info.value.retry_after == 100
    row = one_row(reg)
    assert (row["status"], row["attempts"], row["error_type"]) == ("error", 1, "rate_limit_error")


def test_retry_after_pauses_other_callers_of_the_model(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.error(429, headers={"retry-after": "0.4"}))
    first = threading.Thread(target=reg.run, args=("qa", Q), name="first")
    first.start()
    deadline = time.monotonic() + PROMPT
    while reg.runner.limiter.paused_for("claude-sonnet-4-6") <= 0:
        assert time.monotonic() < deadline, "the 429 did not pause the model"
        time.sleep(0.005)
    second = reg.run("qa", Q)  # started during the pause: waits for its end
    first.join(PROMPT)
    assert second.attempts == 1
    times = [r.received_at for r in fake_anthropic.requests]
    assert len(times) == 3 and all(t - times[0] >= 0.35 for t in times[1:])
    assert sorted(r["attempts"] for r in run_rows(reg)) == [1, 2]


# -- not retried -----------------------------------------------------------------------------


def test_refused_parameter_tells_the_editor_what_to_remove(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.reject_params = {"temperature"}
    with pytest.raises(ParameterRefused) as info:
        reg.run("qa", Q)
    err = info.value
    assert err.parameter == "temperature" and err.status == 422
    assert "Remove 'temperature'" in err.message and "qa v1" in err.message
    assert len(fake_anthropic.requests) == 1
    row = one_row(reg)
    assert (row["status"], row["attempts"], row["error_type"]) == ("error", 1, "parameter_refused")


def test_authentication_error_is_not_retried_and_never_shows_the_key(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.api_key = "the-right-key"
    with pytest.raises(RunError, match="ANTHROPIC_API_KEY") as info:
        reg.run("qa", Q)
    assert "sk-ant-test-key" not in info.value.message
    row = one_row(reg)
    assert (row["attempts"], row["error_type"]) == (1, "authentication_error")
    assert "sk-ant-test-key" not in repr(row)


def test_slow_answer_past_the_timeout_raises_run_timeout(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.slow(10))
    start = time.perf_counter()
    with pytest.raises(RunTimeout, match="0.5 s timeout"):
        reg.run("qa", Q, timeout=0.5)
    assert time.perf_counter() - start < 0.5 + PROMPT
    row = one_row(reg)
    assert (row["status"], row["attempts"], row["error_type"]) == ("error", 1, "timeout")


def test_timeout_bounds_retries_and_backoff_too(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.runner.retry = RetryPolicy(base_delay=0.4, max_delay=0.4, max_retries=10)
    fake_anthropic.default = Reply.error(503)
    start = time.perf_counter()
    with pytest.raises(RunError):
        reg.run("qa", Q, timeout=1.0)
    assert time.perf_counter() - start < 1.0 + PROMPT
    row = one_row(reg)
    assert 1 <= row["attempts"] < 10


# -- streams -----------------------------------------------------------------------------------


def test_stream_cut_before_any_text_is_retried(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.cut_stream(""), Reply.text("whole answer", chunks=3))
    stream = reg.stream("qa", Q)
    assert "".join(stream) == "whole answer"
    assert stream.result is not None and stream.result.attempts == 2
    assert one_row(reg)["status"] == "ok"


def test_malformed_stream_is_retried(reg: Registry, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply.malformed(), Reply.text("clean"))
    stream = reg.stream("qa", Q)
    assert "".join(stream) == "clean"
    row = one_row(reg)
    assert (row["status"], row["attempts"]) == ("ok", 2)


def test_error_event_before_any_text_is_retried(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.stream_error_event(""), Reply.text("fine"))
    assert "".join(reg.stream("qa", Q)) == "fine"
    assert one_row(reg)["attempts"] == 2


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Reply.cut_stream("The answer is "), "connection_error"),
        (Reply.stream_error_event("The answer is ", "overloaded_error"), "overloaded_error"),
    ],
    ids=["cut-mid-way", "error-event-mid-way"],
)
def test_stream_broken_after_text_raises_with_the_partial_text(
    reg: Registry, fake_anthropic: FakeAnthropic, fault: Reply, error_type: str
) -> None:
    fake_anthropic.enqueue(fault, Reply.text("must not be used"))
    received: list[str] = []
    stream = reg.stream("qa", Q)
    with pytest.raises(StreamInterrupted) as info:
        for chunk in stream:
            received.append(chunk)
    assert info.value.partial_text == "The answer is " == "".join(received)
    assert info.value.run_id == stream.run_id
    assert len(fake_anthropic.requests) == 1
    row = one_row(reg)
    assert (row["status"], row["attempts"], row["error_type"]) == ("error", 1, error_type)
    assert row["output_text"] == "The answer is " and row["ttft_ms"] is not None


def test_stream_closed_early_is_logged_as_cancelled(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.text("a b c d e f", chunks=6, chunk_delay=0.01))
    with reg.stream("qa", Q) as stream:
        assert next(stream) == "a "
    unread = reg.stream("qa", Q)
    unread.close()
    rows = run_rows(reg)
    assert [(r["status"], r["error_type"]) for r in rows] == [
        ("error", "cancelled"),
        ("error", "cancelled"),
    ]
    assert rows[0]["attempts"] == 1 and rows[1]["attempts"] == 0
    assert len(fake_anthropic.requests) == 1


def test_an_abandoned_stream_is_logged_and_frees_its_slot_at_once(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    """Dropping the last reference (no close, no garbage-collector pass) logs the run and gives
    the concurrency slot back; a stream dropped unread is logged too."""
    reg.runner.limiter.configure("claude-sonnet-4-6", ModelLimits(concurrency=1))
    fake_anthropic.enqueue(Reply.text("a b c d e f", chunks=6, chunk_delay=0.01))
    gc_was_enabled = gc.isenabled()
    gc.disable()  # only reference counting may free the stream
    try:
        stream = reg.stream("qa", Q)
        assert next(stream) == "a "
        assert reg.runner.limiter.in_flight("claude-sonnet-4-6") == 1
        del stream
        assert reg.runner.limiter.in_flight("claude-sonnet-4-6") == 0
        unread = reg.stream("qa", Q)
        del unread
    finally:
        if gc_was_enabled:
            gc.enable()
    rows = run_rows(reg)
    assert [(r["status"], r["error_type"], r["attempts"]) for r in rows] == [
        ("error", "cancelled", 1),
        ("error", "cancelled", 0),
    ]
    assert len(fake_anthropic.requests) == 1


def test_stream_errors_before_the_request_are_raised_by_stream_itself(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    with pytest.raises(Exception, match="missing required variable"):
        reg.stream("qa", {})
    assert one_row(reg)["error_type"] == "render_error"
    assert fake_anthropic.requests == []


# -- concurrency and the client-side rate limit ----------------------------------------------


def test_fifty_runs_from_sixteen_threads_never_exceed_five_in_flight(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.runner.limiter.configure("claude-sonnet-4-6", ModelLimits(concurrency=5))
    fake_anthropic.latency = 0.05
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = list(range(50))

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                r = reg.run("qa", {"question": f"q{i}"})
                with lock:
                    results.append(r)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == 50
    assert 1 < fake_anthropic.max_in_flight <= 5
    rows = run_rows(reg)
    assert len(rows) == 50 and all(r["status"] == "ok" for r in rows)
    assert len({r["id"] for r in rows}) == 50
    assert reg.runner.limiter.in_flight("claude-sonnet-4-6") == 0


def test_queue_deadline_gives_a_clear_rate_limited_error(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.runner.limiter.configure("claude-sonnet-4-6", ModelLimits(concurrency=1))
    fake_anthropic.enqueue(Reply.slow(1.0, "slow"))
    holder = threading.Thread(target=reg.run, args=("qa", Q), name="holder")
    holder.start()
    fake_anthropic.wait_for_requests(1)
    start = time.perf_counter()
    with pytest.raises(RateLimited, match="no request slot for model claude-sonnet-4-6"):
        reg.run("qa", Q, timeout=0.2)
    assert time.perf_counter() - start < 0.2 + PROMPT
    holder.join(10)
    rows = run_rows(reg)
    assert sorted((r["status"], r["error_type"], r["attempts"]) for r in rows) == [
        ("error", "rate_limited", 0),
        ("ok", None, 1),
    ]


def test_token_limit_can_count_tokens_with_the_api(
    reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.runner.limiter.configure("claude-sonnet-4-6", ModelLimits(itpm=100_000, count_tokens=True))
    fake_anthropic.enqueue(Reply.text("", input_tokens=42), endpoint="count_tokens")
    assert reg.run("qa", Q).ok
    paths = [r.path for r in fake_anthropic.requests]
    assert paths == ["/v1/messages/count_tokens", "/v1/messages"]
    assert one_row(reg)["attempts"] == 1


def test_closed_runner_can_run_again(reg: Registry, fake_anthropic: FakeAnthropic) -> None:
    assert reg.run("qa", Q).ok
    reg.runner.close()
    fake_anthropic.enqueue(Reply.error(529), Reply.text("after close"))
    assert reg.run("qa", Q).text == "after close"
    assert [r["attempts"] for r in run_rows(reg)] == [1, 2]
