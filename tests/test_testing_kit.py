"""The testing kit: script files, rate limits, the ``fake-anthropic`` command and the pytest
plugin as an app uses it (its own folder, its own prompts, the README's example test)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from click.testing import CliRunner

from registry import ValidationError
from registry.cli import main
from registry.testing import FakeAnthropic, RateLimit, load_script
from registry.testing.rate_limit import RateCounter
from registry.testing.script import parse_script

ROOT = Path(__file__).resolve().parent.parent
MESSAGES: list[Any] = [{"role": "user", "content": "Where is my refund?"}]

pytest_plugins = ["pytester"]


def ask(url: str, **kwargs: Any) -> anthropic.types.Message:
    with anthropic.Anthropic(api_key="k", base_url=url, max_retries=0) as client:
        return client.messages.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=MESSAGES, **kwargs
        )


def text_of(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


# -- script files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "kind", "status", "expected_error"),
    [
        ({"text": "hi"}, "text", 200, None),
        ({"error": 429, "retry_after": 2}, "error", 429, None),
        ({"error": 529}, "error", 529, None),
        ({"cut_stream": "half"}, "cut_stream", 200, None),
        ({"stream_error": "overloaded_error", "text": "so far"}, "stream_error", 529, None),
        ({"malformed": "{nope", "status": 200}, "malformed", 200, None),
        ({}, None, None, "replies.0: a reply needs exactly one of text, error"),
        ({"text": "a", "error": 500}, None, None, "(got text, error)"),
        ({"txt": "typo"}, None, None, "replies.0.txt: Extra inputs are not permitted"),
        ({"error": 200}, None, None, "replies.0.error: Input should be greater than or equal"),
        ({"stream_error": "nope"}, None, None, "unknown stream_error 'nope'"),
        ({"text": "x", "chunks": 0}, None, None, "replies.0.chunks"),
    ],
)
def test_script_reply_entries(
    entry: dict[str, Any], kind: str | None, status: int | None, expected_error: str | None
) -> None:
    if expected_error:
        with pytest.raises(ValidationError) as info:
            parse_script({"replies": [entry]})
        assert expected_error in info.value.message
        return
    (reply,) = parse_script({"replies": [entry]}).queue()
    assert (reply.kind, reply.status) == (kind, status)


def test_script_details_become_reply_fields() -> None:
    script = parse_script(
        {
            "replies": [
                {"error": 429, "retry_after": 1.5, "message": "slow down", "repeat": 2},
                {"text": "hi", "chunks": 2, "delay": 0.1, "headers": {"x-a": "1"}},
                {"stream_error": "api_error", "text": "par"},
            ]
        }
    )
    first, second, hi, broken = script.queue()
    assert first == second
    assert first.headers == {"retry-after": "1.5"} and first.error_message == "slow down"
    assert first.error_type == "rate_limit_error"
    assert (hi.output, hi.chunks, hi.delay, hi.headers) == ("hi", 2, 0.1, {"x-a": "1"})
    assert (broken.output, broken.error_type) == ("par", "api_error")


def test_load_script_reads_yaml_and_json_and_names_the_file(tmp_path: Path) -> None:
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("latency: 0.01\nreplies:\n  - text: one\n")
    assert load_script(yaml_file).queue()[0].output == "one"
    json_file = tmp_path / "s.json"
    json_file.write_text(json.dumps({"replies": [{"text": "two"}]}))
    assert load_script(json_file).queue()[0].output == "two"
    bad = tmp_path / "bad.yaml"
    bad.write_text("replies: [{text: a}]\nlatncy: 1\n")
    with pytest.raises(ValidationError, match=r"bad.yaml: latncy: Extra inputs"):
        load_script(bad)
    with pytest.raises(ValidationError, match="cannot read the script"):
        load_script(tmp_path / "missing.yaml")


def test_a_script_drives_the_server_in_order_then_rules_then_default() -> None:
    script = parse_script(
        {
            "latency": 0,
            "default": {"text": "fallback"},
            "replies": [{"text": "first"}, {"error": 529}, {"text": "third", "repeat": 2}],
            "rules": [{"contains": "refund", "reply": {"text": "Refunds take 5 days."}}],
        }
    )
    with FakeAnthropic() as fake:
        script.apply(fake)
        assert text_of(ask(fake.url)) == "first"
        with pytest.raises(anthropic.InternalServerError) as info:
            ask(fake.url)
        assert info.value.status_code == 529
        assert [text_of(ask(fake.url)) for _ in range(2)] == ["third", "third"]
        assert text_of(ask(fake.url)) == "Refunds take 5 days."  # the rule matches
        with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0) as client:
            other = client.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hello"}]
            )
        assert text_of(other) == "fallback"


# -- rate limits ----------------------------------------------------------------------------


def test_rate_limit_headers_count_down_and_an_enforced_limit_answers_429() -> None:
    with FakeAnthropic(rate_limit=RateLimit(requests=2, output_tokens=1000, enforce=True)) as fake:
        fake.enqueue("one", "two", "three")
        with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0) as client:
            first = client.messages.with_raw_response.create(
                model="m", max_tokens=5, messages=MESSAGES
            )
            assert first.headers["anthropic-ratelimit-requests-limit"] == "2"
            assert first.headers["anthropic-ratelimit-requests-remaining"] == "1"
            assert first.headers["anthropic-ratelimit-output-tokens-remaining"] == "999"
            assert first.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
            second = client.messages.with_raw_response.create(
                model="m", max_tokens=5, messages=MESSAGES
            )
            assert second.headers["anthropic-ratelimit-requests-remaining"] == "0"
            with pytest.raises(anthropic.RateLimitError) as info:
                client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
        refused = info.value.response
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert fake.queued == 1  # a refused request consumes no scripted reply


def test_rate_counter_windows_reset_and_unenforced_limits_only_report() -> None:
    now = [1000.0]
    counter = RateCounter(
        RateLimit(requests=1, input_tokens=10, window=60, enforce=True), clock=lambda: now[0]
    )
    assert not counter.admit(4).refused
    refused = counter.admit(4)
    assert refused.refused and refused.retry_after == 60
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    now[0] += 59.5
    assert counter.admit(4).retry_after == 1
    now[0] += 0.5  # a new window
    admitted = counter.admit(4)
    assert not admitted.refused
    assert admitted.headers["anthropic-ratelimit-input-tokens-remaining"] == "6"
    assert counter.admit(20).refused  # more input tokens than the window has left

    lenient = RateCounter(RateLimit(requests=1), clock=lambda: now[0])
    lenient.admit(1)
    over = lenient.admit(1)
    assert not over.refused and over.headers["anthropic-ratelimit-requests-remaining"] == "0"


# -- the fake-anthropic command -------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    script = tmp_path / "replies.yaml"
    script.write_text(
        "rate_limit: {requests: 100}\nreplies:\n  - text: scripted answer\n  - {error: 529}\n"
    )
    command = [sys.executable, "-m", "registry", "fake-anthropic", "--port", "0"]
    with subprocess.Popen(
        [*command, "--script", str(script), "--text", "after the script"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("Fake Anthropic API listening on http://127.0.0.1:"), line
            assert "2 scripted replies" in line
            yield process, line.split("listening on ", 1)[1].split()[0]
        finally:
            if process.poll() is None:
                process.kill()


def test_fake_anthropic_command_serves_a_script_until_sigterm(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = served
    message = ask(url)
    assert text_of(message) == "scripted answer"
    with pytest.raises(anthropic.InternalServerError):
        ask(url)
    assert text_of(ask(url)) == "after the script"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    assert "stopped after 3 request(s)" in process.stderr.read()


def test_fake_anthropic_command_refuses_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("replies:\n  - {text: a, eror: 500}\n")
    result = CliRunner().invoke(main, ["fake-anthropic", "--port", "0", "--script", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {bad}: replies.0.eror: Extra inputs are not permitted"


# -- the pytest plugin, as an app uses it ---------------------------------------------------


def test_plugin_fixtures_in_an_app_suite_run_the_readme_example(pytester: pytest.Pytester) -> None:
    prompts = pytester.mkdir("prompts")
    shutil.copy(ROOT / "templates_seed" / "support-answer.yaml", prompts)
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest.ini_options]\nregistry_prompts = "prompts"\n',
    )
    example = (ROOT / "tests" / "test_example_app.py").read_text()
    pytester.makepyfile(test_support_prompts=example)
    pytester.makepyfile(
        test_environment="""
        import os

        def test_fixtures_point_the_environment_at_the_fakes(registry_db, fake_anthropic):
            assert os.environ["ANTHROPIC_BASE_URL"] == fake_anthropic.url
            assert os.environ["REGISTRY_DATABASE_URL"].endswith("registry.db")
            assert [p.name for p in registry_db.prompts()] == ["support/support-answer"]
        """
    )
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)
    assert time.monotonic() - started < 120
