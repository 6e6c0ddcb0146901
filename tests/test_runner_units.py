"""Pure parts of the runner: JSON extraction and validation, retry policy, error
classification, the rate limiter, run options, request building, and the SDK's signature."""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

import anthropic
import httpx2
import pytest

from registry import RateLimited, ValidationError
from registry.model_settings import REQUEST_ONLY_PARAMS, SAMPLING_PARAMS, settings_fields
from registry.runner.options import RunOptions
from registry.runner.ratelimit import ModelLimits, RateLimiter, parse_limits
from registry.runner.request import must_stream, native_schema, request_hash
from registry.runner.retry import Failure, RetryPolicy, classify, refused_parameter
from registry.runner.structured import NoJSONFound, extract_json, parse_output, schema_errors

# -- the SDK contract ------------------------------------------------------------------------


def test_version_settings_match_the_installed_sdk_signature() -> None:
    params = set(inspect.signature(anthropic.resources.Messages.create).parameters) - {"self"}
    settings = set(settings_fields()) - set(SAMPLING_PARAMS)
    assert settings <= params, f"settings the SDK does not take: {settings - params}"
    assert params - settings <= REQUEST_ONLY_PARAMS, (
        f"SDK parameters that are neither settings nor request-only: "
        f"{params - settings - REQUEST_ONLY_PARAMS}"
    )
    assert not set(SAMPLING_PARAMS) & params  # they must travel in extra_body


# -- structured output -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('Result:\n```\n{"a": [1, {"b": 2}]}\n```\nDone.', {"a": [1, {"b": 2}]}),
        ('The answer is {"a": "x}"} — hope it helps {not json}', {"a": "x}"}),
        ('{broken then {"a": 2}', {"a": 2}),
        ("42", 42),
    ],
)
def test_json_is_found_raw_fenced_or_in_prose(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no json here", "{unclosed"])
def test_no_json_raises(text: str) -> None:
    with pytest.raises(NoJSONFound):
        extract_json(text)


def test_schema_errors_name_the_path() -> None:
    schema = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert schema_errors({"a": 1, "b": ["x"]}, schema) == []
    errors = schema_errors({"b": ["x", 3]}, schema)
    assert "'a' is a required property" in errors
    assert any(e.startswith("at '/b/1'") for e in errors)
    parsed, problems = parse_output("nothing", schema)
    assert parsed is None and problems == ["the answer contains no JSON object or array"]


def test_native_schema_is_strict_and_splits_type_lists() -> None:
    schema = {
        "type": "object",
        "required": ["revenue"],
        "properties": {
            "revenue": {"type": "string"},
            "growth": {"type": ["string", "null"], "description": "percent"},
            "items": {"type": "array", "items": {"type": "object", "properties": {}}},
        },
    }
    strict = native_schema(schema)
    assert strict is not None
    assert strict["additionalProperties"] is False
    assert strict["properties"]["growth"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert strict["properties"]["items"]["items"]["additionalProperties"] is False
    assert schema["properties"]["growth"]["type"] == ["string", "null"]  # input untouched


# -- requests ----------------------------------------------------------------------------------


def test_request_hash_is_stable_and_exact() -> None:
    a = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    b = {"messages": [{"content": "hi", "role": "user"}], "max_tokens": 10, "model": "m"}
    assert request_hash(a) == request_hash(b)
    assert request_hash(a) != request_hash({**a, "max_tokens": 11})


def test_large_max_tokens_must_stream() -> None:
    assert not must_stream({"model": "claude-sonnet-4-6", "max_tokens": 21_000})
    assert must_stream({"model": "claude-sonnet-4-6", "max_tokens": 32_000})
    assert must_stream({"model": "claude-opus-4-0", "max_tokens": 10_000})


# -- retry policy and classification -----------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [policy.backoff(retry) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > 0  # jittered


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert 3.0 <= policy.delay(1, 3.0) <= 3.3  # type: ignore[operator]
    assert policy.delay(1, 0.0) == 0.0
    assert policy.delay(1, 100.0) is None


def _status_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = httpx2.Request("POST", "http://x/v1/messages")
    response = httpx2.Response(status, json=body, headers=headers or {}, request=request)
    return anthropic.Anthropic(api_key="k", base_url="http://x")._make_status_error(
        f"Error code: {status}", body=body, response=response
    )


def _body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (_status_error(429, _body("rate_limit_error", "slow down")), "rate_limit_error", True),
        (_status_error(529, _body("overloaded_error", "busy")), "overloaded_error", True),
        (_status_error(500, _body("api_error", "oops")), "api_error", True),
        (_status_error(400, _body("invalid_request_error", "bad")), "invalid_request_error", False),
        (_status_error(401, _body("authentication_error", "no")), "authentication_error", False),
        (
            _status_error(500, _body("api_error", "x"), {"x-should-retry": "false"}),
            "api_error",
            False,
        ),
        (
            _status_error(400, _body("invalid_request_error", "top_k: not supported")),
            "parameter_refused",
            False,
        ),
        (anthropic.APITimeoutError(httpx2.Request("POST", "http://x")), "timeout", True),
        (httpx2.RemoteProtocolError("peer closed"), "connection_error", True),
        (ValueError("Expecting value"), "bad_response", True),
        (RuntimeError("bug"), "internal_error", False),
    ],
)
def test_failures_are_classified(exc: BaseException, kind: str, retryable: bool) -> None:
    failure = classify(exc, settings=["model", "max_tokens", "top_k"])
    assert failure.kind == kind
    assert RetryPolicy().retryable(failure) is retryable


def test_retry_after_headers_are_read() -> None:
    ms = classify(_status_error(429, _body("rate_limit_error", "x"), {"retry-after-ms": "1500"}))
    s = classify(_status_error(429, _body("rate_limit_error", "x"), {"retry-after": "7"}))
    assert (ms.retry_after, s.retry_after) == (1.5, 7.0)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("temperature: Extra inputs are not permitted", "temperature"),
        ("`top_p` is not supported for this model", "top_p"),
        ("thinking.budget_tokens: must be at least 1024", "thinking"),
        ("'speed' is not available", "speed"),
        ("This model does not support images", None),
        ("messages: roles must alternate", None),
    ],
)
def test_refused_parameter_is_found_in_the_message(message: str, expected: str | None) -> None:
    assert refused_parameter(message, ["model", "max_tokens", "thinking", "speed"]) == expected


def test_stream_error_events_are_retryable_by_type() -> None:
    assert RetryPolicy().retryable(Failure("overloaded_error", "x", status=200))
    assert not RetryPolicy().retryable(Failure("invalid_request_error", "x", status=200))


# -- the rate limiter --------------------------------------------------------------------------


def test_waiters_are_served_in_arrival_order() -> None:
    limiter = RateLimiter({"m": ModelLimits(concurrency=1)})
    first = limiter.acquire("m", deadline=time.monotonic() + 5)
    order: list[int] = []
    gate = limiter._gates["m"]

    def wait(i: int) -> None:
        permit = limiter.acquire("m", deadline=time.monotonic() + 5)
        order.append(i)
        time.sleep(0.01)
        permit.release()

    threads = []
    for i in range(4):
        t = threading.Thread(target=wait, args=(i,))
        t.start()
        threads.append(t)
        while len(gate.queue) < i + 1:  # each waiter is queued before the next starts
            time.sleep(0.001)
    first.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3]
    assert limiter.in_flight("m") == 0


def test_waiting_past_the_deadline_raises_and_leaves_the_queue() -> None:
    limiter = RateLimiter({"*": ModelLimits(concurrency=1)})
    held = limiter.acquire("any-model", deadline=time.monotonic() + 1)
    start = time.monotonic()
    with pytest.raises(RateLimited, match="1 concurrent"):
        limiter.acquire("any-model", deadline=time.monotonic() + 0.05)
    assert time.monotonic() - start < 5  # the slot is held for good: only the deadline ends it
    assert len(limiter._gates["any-model"].queue) == 0
    held.release()
    limiter.acquire("any-model", deadline=time.monotonic() + 1).release()


def test_requests_per_minute_spaces_requests() -> None:
    limiter = RateLimiter({"m": ModelLimits(rpm=6)})  # one per 10 s, burst of one
    limiter.acquire("m", deadline=time.monotonic() + 1).release()
    with pytest.raises(RateLimited, match="6 requests/min"):
        limiter.acquire("m", deadline=time.monotonic() + 0.05)


def test_input_tokens_per_minute_are_counted() -> None:
    limiter = RateLimiter({"m": ModelLimits(itpm=600)})  # 10 tokens/s, bucket of 100
    limiter.acquire("m", deadline=time.monotonic() + 1, tokens=90).release()
    with pytest.raises(RateLimited, match="600 input tokens/min"):
        limiter.acquire("m", deadline=time.monotonic() + 0.05, tokens=50)
    # a request larger than the bucket still runs once the bucket is full
    limiter2 = RateLimiter({"m": ModelLimits(itpm=600)})
    limiter2.acquire("m", deadline=time.monotonic() + 1, tokens=5000).release()


def test_models_without_limits_pass_straight_through() -> None:
    limiter = RateLimiter({"other": ModelLimits(concurrency=1)})
    permits = [limiter.acquire("free", deadline=time.monotonic()) for _ in range(100)]
    for p in permits:
        p.release()


def test_reconfiguring_keeps_counting_the_requests_in_flight() -> None:
    limiter = RateLimiter({"m": ModelLimits(concurrency=1)})
    held = limiter.acquire("m", deadline=time.monotonic() + 1)
    limiter.configure("m", ModelLimits(concurrency=1, rpm=600))
    with pytest.raises(RateLimited):
        limiter.acquire("m", deadline=time.monotonic() + 0.05)
    limiter.configure("m", ModelLimits(concurrency=2))
    second = limiter.acquire("m", deadline=time.monotonic() + 1)
    assert limiter.in_flight("m") == 2
    held.release()
    second.release()
    assert limiter.in_flight("m") == 0
    limiter.configure("m", None)  # no limit any more: straight through
    assert [limiter.acquire("m", deadline=time.monotonic()) for _ in range(5)]


def test_limits_are_parsed_from_the_environment_format() -> None:
    limits = parse_limits("claude-sonnet-4-6: rpm=50, concurrency=5, itpm=40000; *: concurrency=16")
    assert limits["claude-sonnet-4-6"] == ModelLimits(rpm=50, concurrency=5, itpm=40000)
    assert limits["*"] == ModelLimits(concurrency=16)
    assert parse_limits("") == {}
    for bad in ("nonsense", "m: rpm=fast", "m: colour=blue", "m: concurrency=0"):
        with pytest.raises(ValidationError):
            parse_limits(bad)


# -- options -----------------------------------------------------------------------------------


def test_run_options_are_validated() -> None:
    opts = RunOptions.parse({"cache": True, "timeout": 3, "source": "http", "metadata": {"a": 1}})
    assert (opts.cache, opts.timeout, opts.source, opts.metadata) == (True, 3.0, "http", {"a": 1})
    assert RunOptions.parse({}) == RunOptions()
    for bad in (
        {"temperature": 0.2},
        {"timeout": 0},
        {"timeout": "fast"},
        {"max_retries": -1},
        {"cache": "yes"},
        {"source": "Not A Source"},
        {"metadata": {"x": object()}},
        {"metadata": {"x": "y" * 20_000}},
    ):
        with pytest.raises(ValidationError):
            RunOptions.parse(bad)
