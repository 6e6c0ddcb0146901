"""The fake server's Message Batches API, driven through the real ``anthropic`` SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from registry.testing import FakeAnthropic, Reply
from registry.testing.script import parse_script


def item(custom_id: str, text: str = "hi", **params: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def client(server: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0) as c:
        yield c


def test_a_batch_moves_from_in_progress_to_ended_with_counts_by_outcome(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.batch_polls = 3
    server.enqueue(
        Reply.text("one"),
        Reply.error(529),
        Reply.expired(),
        Reply.canceled(),
        endpoint="batch_items",
    )
    created = client.messages.batches.create(requests=[item(f"c{i}", f"q{i}") for i in range(8)])
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 8 and created.results_url is None
    seen = []
    for _ in range(3):
        batch = client.messages.batches.retrieve(created.id)
        assert batch.processing_status == "in_progress"
        seen.append(batch.request_counts.processing)
    assert seen == sorted(seen, reverse=True) and seen[0] < 8 and seen[-1] > 0
    ended = client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 5, 1)
    assert (counts.expired, counts.canceled) == (1, 1)
    assert ended.results_url and ended.results_url.startswith(server.url)

    results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
    assert set(results) == {f"c{i}" for i in range(8)}
    assert results["c0"].type == "succeeded" and results["c0"].message.content[0].text == "one"
    assert results["c1"].type == "errored"
    assert results["c1"].error.error.type == "overloaded_error"
    assert results["c2"].type == "expired" and results["c3"].type == "canceled"
    c5 = results["c5"]
    assert c5.type == "succeeded" and c5.message.content[0].text == "echo: q5"
    assert c5.message.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("submitted", [f"c{i}" for i in range(20)]),
        ("reversed", [f"c{i}" for i in range(19, -1, -1)]),
    ],
)
def test_results_order_can_be_chosen(
    server: FakeAnthropic, client: anthropic.Anthropic, order: Any, expected: list[str]
) -> None:
    server.batch_polls, server.batch_result_order = 0, order
    batch = client.messages.batches.create(requests=[item(f"c{i}") for i in range(20)])
    client.messages.batches.retrieve(batch.id)
    assert [r.custom_id for r in client.messages.batches.results(batch.id)] == expected


def test_results_are_shuffled_by_default(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    batch = client.messages.batches.create(requests=[item(f"c{i}") for i in range(20)])
    server.end_batch(batch.id)
    ids = [r.custom_id for r in client.messages.batches.results(batch.id)]
    assert sorted(ids) == sorted(f"c{i}" for i in range(20)) and ids != [f"c{i}" for i in range(20)]


def test_results_before_the_end_are_refused(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.batch_polls = 5
    batch = client.messages.batches.create(requests=[item("a")])
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)
    # the SDK never asks before the end; asked anyway, the endpoint says why
    raw = httpx2.get(f"{server.url}/v1/messages/batches/{batch.id}/results")
    assert raw.status_code == 400 and "still in_progress" in raw.json()["error"]["message"]


def test_cancel_ends_the_batch_and_cancels_what_was_not_processed(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.batch_polls = 3
    batch = client.messages.batches.create(requests=[item(f"c{i}") for i in range(8)])
    first = client.messages.batches.retrieve(batch.id)
    done = 8 - first.request_counts.processing
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 8 - done and ended.request_counts.succeeded == done
    outcomes = [r.result.type for r in client.messages.batches.results(batch.id)]
    assert outcomes.count("canceled") == 8 - done


@pytest.mark.parametrize(
    ("requests", "expected_error"),
    [
        ([], "requests: must be a non-empty list"),
        ([item("a"), item("a")], "requests.1.custom_id: duplicate custom_id 'a'"),
        ([item("has space")], "requests.0.custom_id: String should match pattern"),
        ([item("x" * 65)], "requests.0.custom_id: String should match pattern"),
        ([{"custom_id": "a", "params": {"model": "m", "messages": []}}], "params.max_tokens"),
        ([item("a", stream=True)], "params.stream: streaming is not allowed"),
    ],
)
def test_bad_batches_are_refused_like_the_api_does(
    server: FakeAnthropic, client: anthropic.Anthropic, requests: Any, expected_error: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.create(requests=requests)
    assert expected_error in str(info.value)
    assert server.batches == []


def test_list_retrieve_unknown_and_delete(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.batch_polls = 0
    ids = [client.messages.batches.create(requests=[item("a")]).id for _ in range(3)]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.messages.batches.list()] == ids[::-1]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")
    server.batch_polls = 5
    running = client.messages.batches.create(requests=[item("a")])
    with pytest.raises(anthropic.BadRequestError, match="cancel it first"):
        client.messages.batches.delete(running.id)
    client.messages.batches.retrieve(ids[0])
    assert client.messages.batches.delete(ids[0]).type == "message_batch_deleted"
    assert ids[0] not in {b.id for b in server.batches}


def test_scripted_errors_answer_the_batches_api_itself(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.enqueue(Reply.error(529), endpoint="batches")
    with pytest.raises(anthropic.InternalServerError):
        client.messages.batches.create(requests=[item("a")])
    assert server.batches == []
    batch = client.messages.batches.create(requests=[item("a")])
    server.enqueue(Reply.error(500), endpoint="batches")
    with pytest.raises(anthropic.InternalServerError):
        client.messages.batches.retrieve(batch.id)
    assert client.messages.batches.retrieve(batch.id).id == batch.id
    with pytest.raises(ValueError, match="error replies only"):
        server.enqueue(Reply.text("x"), endpoint="batches")


def test_batch_items_use_the_responder_and_count_creations(
    server: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    server.responder = lambda body: "refund" if "money" in str(body["messages"]) else None
    server.batch_polls = 0
    batch = client.messages.batches.create(requests=[item("a", "money back?"), item("b", "hello")])
    client.messages.batches.retrieve(batch.id)
    texts = {
        r.custom_id: r.result.message.content[0].text
        for r in client.messages.batches.results(batch.id)
        if r.result.type == "succeeded"
    }
    assert texts == {"a": "refund", "b": "echo: hello"}
    creations = [r for r in server.requests_to("/v1/messages/batches") if r.method == "POST"]
    assert len(creations) == len(server.batches) == 1
    assert server.batch(batch.id).custom_ids == ["a", "b"]
    assert server.queued == 0  # the /v1/messages queue is not consumed by batches


def test_a_script_file_configures_batches_and_the_prompt_cache() -> None:
    script = parse_script(
        {
            "prompt_cache": {"min_tokens": 10},
            "batch": {
                "polls": 0,
                "order": "submitted",
                "items": [{"text": "x"}, {"expired": True}, {"canceled": True}, {"error": 500}],
            },
        }
    )
    with FakeAnthropic() as fake:
        script.apply(fake)
        assert fake.prompt_cache is not None and fake.prompt_cache.min_tokens == 10
        with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0) as client:
            batch = client.messages.batches.create(requests=[item(f"c{i}") for i in range(4)])
            client.messages.batches.retrieve(batch.id)
            kinds = [r.result.type for r in client.messages.batches.results(batch.id)]
    assert kinds == ["succeeded", "expired", "canceled", "errored"]
    assert parse_script({"prompt_cache": None}).prompt_cache is None


def test_the_readme_script_example_is_a_valid_script() -> None:
    import yaml

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index("```yaml\nlatency:") + len("```yaml\n")
    script = parse_script(yaml.safe_load(readme[start : readme.index("```", start)]))
    assert script.batch.polls == 2 and len(script.batch.items) == 3
    assert script.prompt_cache is not None and script.prompt_cache.min_tokens == 1024
