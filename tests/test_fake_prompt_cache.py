"""The fake server's prompt cache: cache writes and reads for ``cache_control`` marks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from registry.testing import FakeAnthropic, Reply
from registry.testing.prompt_cache import PromptCache

DOC = "The handbook. " * 400  # ~1,400 tokens by the fake's estimate
EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def client(server: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0) as c:
        yield c


def ask(client: anthropic.Anthropic, question: str, **request: Any) -> Any:
    request.setdefault("messages", [{"role": "user", "content": question}])
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=20, **request).usage


def cached_system(ttl: str | None = None) -> list[dict[str, Any]]:
    mark = dict(EPHEMERAL, ttl=ttl) if ttl else EPHEMERAL
    return [{"type": "text", "text": DOC, "cache_control": mark}]


def test_first_call_writes_the_prefix_and_the_next_reads_it(client: anthropic.Anthropic) -> None:
    first = ask(client, "Where is my invoice?", system=cached_system())
    assert first.cache_creation_input_tokens > 1000 and first.cache_read_input_tokens == 0
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    second = ask(client, "How do refunds work?", system=cached_system())
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert 0 < second.input_tokens < 20  # only the question after the breakpoint


def test_no_marks_means_no_cache_accounting(client: anthropic.Anthropic) -> None:
    for _ in range(2):
        usage = ask(client, "hi", system=DOC)
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
        assert usage.input_tokens > 1000


def test_a_prefix_below_the_minimum_is_not_cached(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    short = [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    for _ in range(2):
        usage = ask(client, "hi", system=short)
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
    server.prompt_cache = PromptCache(min_tokens=1)
    ask(client, "hi", system=short)
    assert ask(client, "hi", system=short).cache_read_input_tokens > 0


def test_one_hour_writes_are_reported_apart(client: anthropic.Anthropic) -> None:
    usage = ask(client, "hi", system=cached_system("1h"))
    assert usage.cache_creation.ephemeral_1h_input_tokens == usage.cache_creation_input_tokens > 0
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_a_message_mark_extends_a_cached_system_prefix(client: anthropic.Anthropic) -> None:
    doc_message = {
        "role": "user",
        "content": [
            {"type": "text", "text": DOC, "cache_control": EPHEMERAL},
            {"type": "text", "text": "What is on page 2?"},
        ],
    }
    first = ask(client, "", system=cached_system(), messages=[doc_message])
    assert first.cache_creation_input_tokens > 2000  # both breakpoints written
    other = ask(client, "other", system=cached_system())
    assert 1000 < other.cache_read_input_tokens < first.cache_creation_input_tokens


def test_tools_and_automatic_caching_are_breakpoints(client: anthropic.Anthropic) -> None:
    tool = {
        "name": "lookup",
        "description": DOC,
        "input_schema": {"type": "object"},
        "cache_control": EPHEMERAL,
    }
    ask(client, "a", tools=[tool])
    assert ask(client, "b", tools=[tool]).cache_read_input_tokens > 1000
    ask(client, "c", system=DOC, extra_body={"cache_control": EPHEMERAL})
    assert (
        ask(
            client, "c", system=DOC, extra_body={"cache_control": EPHEMERAL}
        ).cache_read_input_tokens
        > 1000
    )


def test_streams_report_cache_usage_too(client: anthropic.Anthropic) -> None:
    ask(client, "warm", system=cached_system())
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=20,
        system=cached_system(),
        messages=[{"role": "user", "content": "hello"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens > 1000


def test_scripted_cache_counts_are_reported_as_given(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.enqueue(
        Reply.text("x", input_tokens=10, cache_read_input_tokens=500),
        Reply.text("y", cache_creation_input_tokens=300, cache_ttl="1h"),
    )
    first = ask(client, "hi")
    assert (first.input_tokens, first.cache_read_input_tokens) == (10, 500)
    second = ask(client, "hi")
    assert second.cache_creation_input_tokens == 300
    assert second.cache_creation.ephemeral_1h_input_tokens == 300
    with pytest.raises(ValueError, match="cache_ttl"):
        Reply.text("z", cache_ttl="2h")


@pytest.mark.parametrize(
    ("system", "expected_error"),
    [
        (
            [{"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)],
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            [
                {"type": "text", "text": "a", "cache_control": EPHEMERAL},
                {"type": "text", "text": "b", "cache_control": dict(EPHEMERAL, ttl="1h")},
            ],
            "ttl='1h' cache_control block must not come after a ttl='5m'",
        ),
        (
            [{"type": "text", "text": "a", "cache_control": {"type": "persistent"}}],
            "system.0.cache_control: type must be 'ephemeral'",
        ),
    ],
)
def test_marks_the_api_refuses_are_400(
    client: anthropic.Anthropic, system: Any, expected_error: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        ask(client, "hi", system=system)
    assert expected_error in str(info.value)


def test_the_cache_can_be_turned_off_and_is_forgotten_on_reset(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    ask(client, "a", system=cached_system())
    server.reset()
    assert ask(client, "a", system=cached_system()).cache_read_input_tokens == 0
    server.prompt_cache = None
    usage = ask(client, "a", system=cached_system())
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)


def test_entries_expire_after_their_ttl() -> None:
    now = [0.0]
    cache = PromptCache(min_tokens=1, clock=lambda: now[0])
    body = {"model": "m", "system": cached_system(), "messages": [{"role": "user", "content": "q"}]}
    assert cache.account(body).cache_creation_input_tokens > 0
    now[0] = 299.0
    assert cache.account(body).cache_read_input_tokens > 0  # a read refreshes the entry
    now[0] = 598.0
    assert cache.account(body).cache_read_input_tokens > 0
    now[0] = 899.0
    assert cache.account(body).cache_read_input_tokens == 0
