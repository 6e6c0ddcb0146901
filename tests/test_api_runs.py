"""Runs over HTTP: JSON runs, Server-Sent Events read by a real SSE client, feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sseclient
from flask.testing import FlaskClient

from registry import Registry
from registry.testing import FakeAnthropic, Reply
from tests.api_support import SEED_DIR, LiveServer, bearer, build_app, make_keys

SUMMARY = {"variables": {"text": "The meeting moved to Friday."}}


@pytest.fixture
def seeded(sqlite_reg: Registry) -> Registry:
    sqlite_reg.seed(SEED_DIR)
    return sqlite_reg


@pytest.fixture
def keys(seeded: Registry) -> dict[str, str]:
    return make_keys(seeded)


@pytest.fixture
def client(seeded: Registry) -> FlaskClient:
    return build_app(seeded).test_client()


@pytest.fixture
def live(seeded: Registry) -> Iterator[LiveServer]:
    with LiveServer(build_app(seeded)) as server:
        yield server


def _events(server: LiveServer, key: str, body: dict[str, Any], path: str) -> list[Any]:
    response = requests.post(
        f"{server.url}/api/v1/prompts/{path}/run",
        json=body | {"stream": True},
        headers=bearer(key) | {"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = list(sseclient.SSEClient(response).events())
    response.close()
    return events


def test_run_returns_the_summary_and_logs_source_http(
    client: FlaskClient, keys: dict[str, str], seeded: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.text("- Friday\n- Budget", input_tokens=20, output_tokens=6))
    resp = client.post("/api/v1/prompts/summarize/run", json=SUMMARY, headers=bearer(keys["run"]))
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    assert data["text"] == "- Friday\n- Budget"
    assert data["status"] == "ok" and data["version"] == 1 and data["name"] == "summarize"
    assert (data["input_tokens"], data["output_tokens"]) == (20, 6)
    assert data["source"] == "http"
    assert seeded.runner.get_run(data["run_id"]).source == "http"
    sent = fake_anthropic.requests_to("/v1/messages")[-1].json
    assert sent["model"] == "claude-haiku-4-5" and sent["temperature"] == 0.4


def test_run_failure_is_a_json_error_with_the_run_id(
    client: FlaskClient, keys: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.error(400, "invalid_request_error", "prompt is too long"))
    resp = client.post("/api/v1/prompts/summarize/run", json=SUMMARY, headers=bearer(keys["run"]))
    assert 400 <= resp.status_code < 600 and resp.status_code != 500
    err = resp.get_json()["error"]
    assert err["run_id"] and "too long" in err["message"]


def test_run_without_model_key_is_503(client: FlaskClient, keys: dict[str, str]) -> None:
    resp = client.post("/api/v1/prompts/summarize/run", json=SUMMARY, headers=bearer(keys["run"]))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["type"] == "configuration_error"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"variables": {}}, 422),
        ({"variables": {"text": "x"}, "stream": "yes"}, 422),
        ({"variables": {"text": "x"}, "timeout": 0}, 422),
        ({"variables": {"text": "x"}, "source": "cli"}, 422),
    ],
)
def test_run_bad_bodies(
    client: FlaskClient, keys: dict[str, str], fake_anthropic: FakeAnthropic, body: Any, status: int
) -> None:
    resp = client.post("/api/v1/prompts/summarize/run", json=body, headers=bearer(keys["run"]))
    assert resp.status_code == status
    assert fake_anthropic.requests_to("/v1/messages") == []


def test_stream_sends_deltas_then_done(
    live: LiveServer, keys: dict[str, str], seeded: Registry, fake_anthropic: FakeAnthropic
) -> None:
    text = 'Line one,\nline two: data with "quotes" and unicode é.'
    fake_anthropic.enqueue(Reply.text(text, chunks=5))
    events = _events(live, keys["run"], SUMMARY, "summarize")
    kinds = [e.event for e in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"delta"} and len(kinds) >= 3
    deltas = "".join(json.loads(e.data)["text"] for e in events[:-1])
    assert deltas == text
    summary = json.loads(events[-1].data)
    assert summary["text"] == text and summary["status"] == "ok" and summary["stream"] is True
    assert seeded.runner.get_run(summary["run_id"]).source == "http"


def test_stream_error_midway_is_an_error_event(
    live: LiveServer, keys: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(
        Reply.stream_error_event("partial answer ", "overloaded_error", chunks=2)
    )
    events = _events(live, keys["run"], SUMMARY, "summarize")
    kinds = [e.event for e in events]
    assert kinds[0] == "delta" and kinds[-1] == "error" and "done" not in kinds
    error = json.loads(events[-1].data)
    assert error["type"] and error["message"] and error["run_id"]
    assert "Traceback" not in events[-1].data


def test_stream_of_unknown_prompt_is_a_plain_404(
    live: LiveServer, keys: dict[str, str], fake_anthropic: FakeAnthropic
) -> None:
    response = requests.post(
        f"{live.url}/api/v1/prompts/nope/run",
        json=SUMMARY | {"stream": True},
        headers=bearer(keys["run"]),
        timeout=10,
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["type"] == "not_found"


def test_feedback(
    client: FlaskClient, keys: dict[str, str], seeded: Registry, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply.text("ok"))
    run = client.post("/api/v1/prompts/summarize/run", json=SUMMARY, headers=bearer(keys["run"]))
    run_id = run.get_json()["run_id"]
    resp = client.post(
        f"/api/v1/runs/{run_id}/feedback",
        json={"name": "thumbs_up", "value": 1.0, "comment": "good"},
        headers=bearer(keys["run"]),
    )
    assert resp.status_code == 201
    assert resp.get_json() == {
        "run_id": run_id,
        "name": "thumbs_up",
        "value": 1.0,
        "comment": "good",
    }
    missing = client.post(
        "/api/v1/runs/no-such-run/feedback",
        json={"name": "thumbs_up", "value": 1},
        headers=bearer(keys["run"]),
    )
    assert missing.status_code == 404
    bad = client.post(
        f"/api/v1/runs/{run_id}/feedback",
        json={"name": "x", "value": "high"},
        headers=bearer(keys["run"]),
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "value"
    read_only = client.post(
        f"/api/v1/runs/{run_id}/feedback",
        json={"name": "x", "value": 1},
        headers=bearer(keys["read"]),
    )
    assert read_only.status_code == 403
