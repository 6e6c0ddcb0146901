"""Tests of the fake Anthropic Messages API server, driven through the real ``anthropic`` SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import requests

from registry.testing import FakeAnthropic, Reply, estimate_tokens

MODEL = "claude-test-model"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello there, fake Claude!"}]
ROOT = Path(__file__).resolve().parent.parent


def _text(message: anthropic.types.Message) -> str:
    """The concatenated text blocks of ``message``."""
    return "".join(block.text for block in message.content if block.type == "text")


def _server_threads() -> list[threading.Thread]:
    """Threads started by any FakeAnthropic that are still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("fake-anthropic")]


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    """A running fake server, stopped after the test."""
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def make_client(server: FakeAnthropic) -> Iterator[Any]:
    """A factory of SDK clients pointed at ``server`` (closed after the test)."""
    clients: list[anthropic.Anthropic] = []

    def make(**kwargs: Any) -> anthropic.Anthropic:
        kwargs.setdefault("max_retries", 0)
        client = anthropic.Anthropic(api_key="test-key", base_url=server.url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Any) -> anthropic.Anthropic:
    """An SDK client pointed at the fake server, without retries."""
    result: anthropic.Anthropic = make_client()
    return result


def test_create_parses_to_message(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.enqueue(Reply.text("Hello, world!", input_tokens=12, output_tokens=5))

    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert _text(message) == "Hello, world!"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == 12
    assert message.usage.output_tokens == 5
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    assert message._request_id == "req_fake_1"

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/messages"
    assert request.request_id == "req_fake_1"
    assert request.body == {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}
    assert request.headers["content-type"] == "application/json"
    assert "anthropic-version" in request.headers
    assert request.headers["authorization"] == "Bearer test-key"
    assert not request.stream


def test_default_reply_echoes_last_user_message(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    message = client.messages.create(
        model=MODEL, max_tokens=64, system="Be terse.", messages=messages
    )

    assert message.content[0].type == "text"
    assert _text(message) == "echo: second question"
    expected_input = estimate_tokens("Be terse.\nfirst\nok\nsecond question")
    assert message.usage.input_tokens == expected_input
    assert message.usage.output_tokens == estimate_tokens("echo: second question")


def test_default_and_responder(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.default = "fixed default"
    message = client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert _text(message) == "fixed default"

    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> str | None:
        seen.append(body)
        return "from responder" if body["max_tokens"] == 9 else None

    server.responder = responder
    server.enqueue("queued first")
    texts = [
        client.messages.create(model=MODEL, max_tokens=n, messages=MESSAGES).content[0]
        for n in (9, 9, 10)
    ]
    assert [block.text for block in texts if block.type == "text"] == [
        "queued first",
        "from responder",
        "fixed default",
    ]
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("reply", "stop_reason", "stop_sequence"),
    [
        (Reply.text("cut off", stop_reason="max_tokens"), "max_tokens", None),
        (Reply.text("up to", stop_reason="stop_sequence"), "stop_sequence", "STOP"),
        (Reply.text("x", stop_reason="stop_sequence", stop_sequence="##"), "stop_sequence", "##"),
        (Reply.text("", stop_reason="refusal"), "refusal", None),
    ],
)
def test_stop_reasons(
    server: FakeAnthropic,
    client: anthropic.Anthropic,
    reply: Reply,
    stop_reason: str,
    stop_sequence: str | None,
) -> None:
    server.enqueue(reply, reply)
    message = client.messages.create(
        model=MODEL, max_tokens=8, messages=MESSAGES, stop_sequences=["STOP", "END"]
    )
    assert message.stop_reason == stop_reason
    assert message.stop_sequence == stop_sequence

    with client.messages.stream(
        model=MODEL, max_tokens=8, messages=MESSAGES, stop_sequences=["STOP", "END"]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == stop_reason
    assert final.stop_sequence == stop_sequence
    assert [b.text for b in final.content if b.type == "text"] == [
        b.text for b in message.content if b.type == "text"
    ]


def test_stream_helper_gives_text_and_final_message(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    server.enqueue(Reply.text(text, input_tokens=7, output_tokens=11))

    with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        chunks = list(stream.text_stream)
        final = stream.get_final_message()
        assert stream.request_id == "req_fake_1"

    assert len(chunks) == 4
    assert "".join(chunks) == text
    assert final.content[0].type == "text"
    assert _text(final) == text
    assert final.stop_reason == "end_turn"
    assert final.model == MODEL
    assert final.usage.input_tokens == 7
    assert final.usage.output_tokens == 11
    assert server.requests[0].stream


def test_stream_true_yields_raw_events(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.enqueue(Reply.text("abcdefgh", chunks=3))

    stream = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    events = list(stream)

    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    deltas = [
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]
    assert deltas == ["abc", "def", "gh"]
    start = events[0]
    assert start.type == "message_start"
    assert start.message.content == []
    assert start.message.stop_reason is None
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == estimate_tokens("abcdefgh")


def test_wire_format_of_sse_stream(server: FakeAnthropic) -> None:
    server.enqueue(Reply.text("hi there"))
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 5, "messages": MESSAGES, "stream": True}
    response = requests.post(f"{server.url}/v1/messages", json=body, timeout=5)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["request-id"] == "req_fake_1"
    blocks = [block for block in response.text.split("\n\n") if block]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ")
        assert data_line.startswith("data: ")
        assert json.loads(data_line[len("data: ") :])["type"] == event_line[len("event: ") :]


def test_rate_limit_is_retried_and_both_requests_recorded(
    server: FakeAnthropic, make_client: Any
) -> None:
    client = make_client(max_retries=2)
    server.enqueue(Reply.error(429, headers={"retry-after": "0"}), Reply.text("after retry"))

    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert _text(message) == "after retry"
    assert message._request_id == "req_fake_2"
    first, second = server.requests
    assert first.body == second.body
    assert first.headers["x-stainless-retry-count"] == "0"
    assert second.headers["x-stainless-retry-count"] == "1"
    assert server.queued == 0


def test_overloaded_raises_overloaded_error_without_retries(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.enqueue(Reply.error(529))

    with pytest.raises(anthropic.OverloadedError) as info:
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert info.value.status_code == 529
    assert info.value.type == "overloaded_error"
    assert info.value.api_message == "Overloaded"
    assert info.value.request_id == "req_fake_1"
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_fake_1",
    }
    assert len(server.requests) == 1


def test_overloaded_is_retried_by_default(server: FakeAnthropic, make_client: Any) -> None:
    client = make_client(max_retries=anthropic.DEFAULT_MAX_RETRIES)
    server.enqueue(Reply.error(529, headers={"retry-after-ms": "10"}), "recovered")

    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert _text(message) == "recovered"
    assert len(server.requests) == 2


def test_bad_request_is_not_retried(server: FakeAnthropic, make_client: Any) -> None:
    client = make_client(max_retries=2)
    server.enqueue(Reply.error(400, message="messages: at least one message is required"))

    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert info.value.type == "invalid_request_error"
    assert info.value.api_message == "messages: at least one message is required"
    assert len(server.requests) == 1


def test_reject_params(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.reject_params = {"temperature"}
    server.enqueue("untouched")

    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model=MODEL, max_tokens=64, messages=MESSAGES, extra_body={"temperature": 0.2}
        )

    assert info.value.api_message == "temperature: Extra inputs are not permitted"
    assert server.requests[0].json["temperature"] == 0.2
    assert server.queued == 1  # a rejected request does not consume a scripted reply
    ok = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert _text(ok) == "untouched"


def test_slow_reply_times_out_quickly(server: FakeAnthropic, make_client: Any) -> None:
    client = make_client(timeout=0.5, max_retries=0)
    server.enqueue(Reply.slow(5.0))

    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert time.monotonic() - started < 4.0  # the reply takes 5 s: the timeout cut it


def test_cut_stream_raises_in_sdk(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.enqueue(Reply.cut_stream("partial answer"), Reply.cut_stream("partial answer"))

    received: list[str] = []
    # The SDK does not wrap this: the raw httpx2 error escapes the iterator (no retry either).
    with (
        pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"),
        client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream,
    ):
        received.extend(stream.text_stream)
    assert "".join(received) == "partial answer"

    events: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        for event in client.messages.create(
            model=MODEL, max_tokens=64, messages=MESSAGES, stream=True
        ):
            events.append(event.type)
    assert "message_stop" not in events
    assert events[0] == "message_start"
    assert len(server.requests) == 2


def test_cut_non_streaming_body_is_a_retried_connection_error(
    server: FakeAnthropic, make_client: Any
) -> None:
    server.enqueue(Reply.cut_stream("x"))
    with pytest.raises(anthropic.APIConnectionError):
        make_client(max_retries=0).messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)

    server.reset()
    server.enqueue(Reply.cut_stream("x"), "whole")
    retrying = make_client(max_retries=1)
    message = retrying.with_options(timeout=5).messages.create(
        model=MODEL, max_tokens=8, messages=MESSAGES
    )
    assert _text(message) == "whole"
    assert len(server.requests) == 2


def test_error_event_mid_stream_raises_api_status_error(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.enqueue(Reply.stream_error_event("some text", error_type="overloaded_error"))

    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream,
    ):
        received.extend(stream.text_stream)

    assert "".join(received) == "some text"
    error = info.value
    # The error class is picked from the HTTP status of the stream (200), not from the event.
    assert type(error) is anthropic.APIStatusError
    assert not isinstance(error, anthropic.OverloadedError)
    assert error.status_code == 200
    assert error.type == "overloaded_error"
    assert error.api_message == "Overloaded"
    assert error.request_id == "req_fake_1"
    assert error.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_stream_error_reply_on_non_streaming_request_is_http_error(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.enqueue(Reply.stream_error_event("x", error_type="overloaded_error"))
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)


def test_malformed_body(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.enqueue(Reply.malformed(), Reply.malformed())

    # The SDK lets the JSON decoding error escape unwrapped (and does not retry it).
    with pytest.raises(json.JSONDecodeError):
        client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    with pytest.raises(json.JSONDecodeError):
        list(client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True))
    assert len(server.requests) == 2


def test_count_tokens(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "x" * 400}]
    result = client.messages.count_tokens(model=MODEL, system="y" * 39, messages=messages)
    assert result.input_tokens == estimate_tokens("y" * 39 + "\n" + "x" * 400) == 110

    tiny = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": ""}])
    assert tiny.input_tokens == 1

    server.enqueue(Reply.text("", input_tokens=42), endpoint="count_tokens")
    server.enqueue(Reply.error(429), endpoint="count_tokens")
    assert client.messages.count_tokens(model=MODEL, messages=messages).input_tokens == 42
    with pytest.raises(anthropic.RateLimitError):
        client.messages.count_tokens(model=MODEL, messages=messages)
    assert [r.path for r in server.requests] == ["/v1/messages/count_tokens"] * 4


def test_unknown_path_is_404_with_error_shape(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    response = requests.post(f"{server.url}/v1/nope", json={}, timeout=5)
    assert response.status_code == 404
    assert response.headers["request-id"] == "req_fake_1"
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "not_found_error"
    assert isinstance(payload["error"]["message"], str)

    with pytest.raises(anthropic.NotFoundError):
        client.models.list()
    assert [r.path for r in server.requests] == ["/v1/nope", "/v1/models"]


def test_invalid_json_and_missing_params_are_400(server: FakeAnthropic) -> None:
    url = f"{server.url}/v1/messages"
    response = requests.post(url, data=b"{nope", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"

    response = requests.post(url, json={"model": MODEL, "messages": MESSAGES}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "max_tokens: Field required"
    assert server.requests[0].body is None
    assert server.requests[0].raw_body == b"{nope"


def test_api_key_check(server: FakeAnthropic, make_client: Any) -> None:
    server.api_key = "right-key"
    with pytest.raises(anthropic.AuthenticationError):
        make_client().messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    good = anthropic.Anthropic(api_key="right-key", base_url=server.url, max_retries=0)
    with good:
        assert good.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES).content
    headers = {"x-api-key": "right-key"}
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}
    response = requests.post(f"{server.url}/v1/messages", json=body, headers=headers, timeout=5)
    assert response.status_code == 200


def test_max_in_flight_counts_concurrency(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.default = Reply.text("concurrent", delay=0.3)
    results: list[str] = []
    errors: list[anthropic.APIError] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            message = client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
            block = message.content[0]
            with lock:
                results.append(block.text if block.type == "text" else "")
        except anthropic.APIError as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    server.wait_for_requests(5, timeout=5)
    assert server.in_flight == 5
    for thread in threads:
        thread.join(5)

    assert errors == []
    assert results == ["concurrent"] * 5
    assert server.max_in_flight == 5
    assert server.in_flight == 0

    server.reset()
    server.default = Reply.text("sequential", delay=0.01)
    for _ in range(3):
        client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert server.max_in_flight == 1
    assert len(server.requests) == 3


def test_latency_and_chunk_delay(server: FakeAnthropic, client: anthropic.Anthropic) -> None:
    server.latency = 0.2
    started = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert time.monotonic() - started >= 0.2

    server.latency = 0.0
    server.enqueue(Reply.text("abcd", chunks=4, chunk_delay=0.05))
    started = time.monotonic()
    with client.messages.stream(model=MODEL, max_tokens=8, messages=MESSAGES) as stream:
        assert list(stream.text_stream) == ["a", "b", "c", "d"]
    assert time.monotonic() - started >= 0.2


def test_reset_clears_queue_requests_and_counters(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    server.enqueue("a", "b")
    server.enqueue("c", endpoint="count_tokens")
    assert server.max_in_flight == 1
    server.reset()
    assert server.requests == []
    assert server.queued == 0
    assert server.max_in_flight == 0
    assert server.in_flight == 0
    assert client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens >= 1


def test_stop_joins_all_threads_promptly() -> None:
    before = set(_server_threads())
    fake = FakeAnthropic().start()
    client = anthropic.Anthropic(api_key="test-key", base_url=fake.url, max_retries=0)
    client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # keep-alive connection
    fake.enqueue(Reply.slow(30.0))
    errors: list[anthropic.APIError] = []

    def pending_call() -> None:
        try:
            client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
        except anthropic.APIError as exc:
            errors.append(exc)

    caller = threading.Thread(target=pending_call)
    caller.start()
    fake.wait_for_requests(2, timeout=5)
    assert len(set(_server_threads()) - before) >= 2

    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 4.5  # not held by the pending call (joined for 5 s)
    caller.join(5)
    client.close()

    assert not caller.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], anthropic.APIConnectionError)
    assert [t for t in _server_threads() if t not in before] == []
    assert not fake.running
    with pytest.raises(RuntimeError):
        _ = fake.url
    fake.stop()  # idempotent

    # A stopped server can be started again.
    with fake:
        assert requests.post(f"{fake.url}/x", timeout=5).status_code == 404
    assert [t for t in _server_threads() if t not in before] == []
