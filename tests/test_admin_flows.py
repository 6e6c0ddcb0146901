"""Web admin flows through the Flask test client: editing, validation, preview, diff, labels,
history, rollback, lost races, the playground and the run log. CSRF stays on."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry import Registry, users
from registry.models.runs import RunRow
from registry.testing import FakeAnthropic, Reply
from tests.conftest import simple_version
from tests.test_admin import (  # noqa: F401  (fixtures)
    PASSWORD,
    _fast_hashes,
    app,
    client_as,
    csrf_token,
    make_app,
    post,
    seeded_app,
)

SETTINGS_YAML = "model: claude-sonnet-4-6\nmax_tokens: 300\n"
CONTRACT_YAML = "question:\n  type: string\n  required: true\n"


def version_form(**overrides: Any) -> dict[str, Any]:
    """A valid editor form."""
    form = {
        "system": "You answer support questions.",
        "messages-0-role": "user",
        "messages-0-content": "{{ question }}",
        "settings": SETTINGS_YAML,
        "variables": CONTRACT_YAML,
        "output_schema": "",
        "message": "a change",
        "description": "",
        "tags": "",
    }
    form.update(overrides)
    return form


@pytest.fixture
def reg(app: Flask) -> Registry:  # noqa: F811
    """The registry ``app`` serves (SQLite)."""
    registry: Registry = app.extensions["registry"]
    return registry


@pytest.fixture
def editor(app: Flask) -> FlaskClient:  # noqa: F811
    return client_as(app, "editor")


@pytest.fixture
def publisher(app: Flask) -> FlaskClient:  # noqa: F811
    return client_as(app, "publisher")


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


# -- creating and editing versions ----------------------------------------------------------------


def test_new_prompt_flow(editor: FlaskClient, reg: Registry) -> None:
    page = editor.get("/admin/prompts/new")
    assert page.status_code == 200
    response = post(
        editor,
        "/admin/prompts/new",
        version_form(
            name="support/refunds",
            message="first draft",
            description="Refund answers",
            tags="support, billing",
        ),
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/prompts/support/refunds/-/v/1"
    v = reg.get("support/refunds", label="latest")
    assert (v.version, v.system, v.message, v.author) == (
        1,
        "You answer support questions.",
        "first draft",
        "editor",
    )
    assert v.variables["question"]["type"] == "string"
    prompt = reg.prompt("support/refunds")
    assert (prompt.description, prompt.tags) == ("Refund answers", ["billing", "support"])
    page = editor.get(response.headers["Location"])
    assert "Saved support/refunds version 1." in text(page)


def test_new_prompt_refuses_an_existing_name(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("taken", **simple_version())
    response = post(editor, "/admin/prompts/new", version_form(name="taken"))
    assert response.status_code == 422
    assert "already exists" in text(response)
    assert reg.get("taken", label="latest").version == 1


def test_edit_form_is_prefilled_from_the_chosen_version(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version(system="first system"))
    reg.create_version(
        "p",
        **simple_version(
            system="second system", settings={"model": "claude-sonnet-4-6", "max_tokens": 77}
        ),
    )
    latest = text(editor.get("/admin/prompts/p/-/edit"))
    assert "second system" in latest and "max_tokens: 77" in latest
    assert 'name="base_version" value="2"' in latest
    older = text(editor.get("/admin/prompts/p/-/edit?from=1"))
    assert "first system" in older and "second system" not in older
    assert "saving creates v3" in older
    # the variables found in the template are shown next to the contract
    assert 'id="variables-found"' in older and "question" in older


def test_saving_an_edit_creates_the_next_version_and_never_changes_old_ones(
    editor: FlaskClient, reg: Registry
) -> None:
    first = reg.create_version("p", **simple_version())
    form = version_form(
        system="Be brief.",
        **{"messages-1-role": "assistant", "messages-1-content": "Sure:"},
        message="shorter answers",
        base_version="1",
    )
    response = post(editor, "/admin/prompts/p/-/edit", form)
    assert response.status_code == 302
    v2 = reg.get("p", version=2)
    assert v2.system == "Be brief."
    assert v2.messages == [
        {"role": "user", "content": "{{ question }}"},
        {"role": "assistant", "content": "Sure:"},
    ]
    assert reg.get("p", version=1).content_hash == first.content_hash


def test_messages_can_be_removed_and_crlf_is_normalised(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version(
        "p",
        **simple_version(
            messages=[
                {"role": "user", "content": "{{ question }}"},
                {"role": "assistant", "content": "ok"},
            ]
        ),
    )
    form = version_form(
        **{
            "messages-0-content": "line one\r\n{{ question }}",
            "messages-1-role": "assistant",
            "messages-1-content": "ok",
            "messages-1-delete": "1",
        },
        base_version="1",
    )
    assert post(editor, "/admin/prompts/p/-/edit", form).status_code == 302
    assert reg.get("p", version=2).messages == [
        {"role": "user", "content": "line one\n{{ question }}"}
    ]


def test_identical_content_creates_nothing(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version(
        "p",
        **simple_version(
            system="Same.",
            settings={"model": "claude-sonnet-4-6", "max_tokens": 300},
            variables={"question": {"type": "string", "required": True}},
        ),
    )
    response = post(
        editor,
        "/admin/prompts/p/-/edit",
        version_form(system="Same.", base_version="1"),
        follow_redirects=True,
    )
    assert "Nothing saved: the content is identical to version 1" in text(response)
    assert reg.get("p", label="latest").version == 1


@pytest.mark.parametrize(
    ("overrides", "area", "expected"),
    [
        ({"system": "Hello\n{% if %}"}, "system", "system template, line 2"),
        ({"messages-0-content": "{{ question "}, "messages.0", "message 1 (user), line 1"),
        (
            {"messages-0-content": "{{ question }} {{ order_id }}"},
            "variables",
            "undeclared variable(s) &#39;order_id&#39;",
        ),
        (
            {"settings": "model: claude-sonnet-4-6\nmax_tokens: 300\ntemperature: 5\n"},
            "settings",
            "temperature",
        ),
        (
            {"settings": "model: claude-sonnet-4-6\n  max_tokens: [\n"},
            "settings",
            "not valid YAML or JSON at line",
        ),
        ({"variables": "- just\n- a list\n"}, "variables", "must be a mapping"),
        (
            {
                "settings": 'model: claude-sonnet-4-6\nmax_tokens: 300\nstop_sequences: ["\\ud800"]\n'
            },
            "settings",
            "lone UTF-16 surrogate",
        ),
        ({"output_schema": "type: nonsense\n"}, "output_schema", "not a valid JSON Schema"),
        ({"messages-0-content": "{{ question.__class__ }}"}, "messages.0", "sandbox violation"),
        ({"system": "{{ ''.__class__.__mro__ }}"}, "system", "sandbox violation"),
        (
            {"messages-0-content": "{{ 'x'|center(999999999) }}"},
            "messages.0",
            "over a render limit: the",
        ),
        ({"messages-0-role": "assistant"}, "messages.0", "first message must have role"),
        ({"message": ""}, "message", "commit message"),
    ],
)
def test_validation_errors_are_shown_inline_and_nothing_is_saved(
    editor: FlaskClient, reg: Registry, overrides: dict[str, str], area: str, expected: str
) -> None:
    reg.create_version("p", **simple_version())
    response = post(editor, "/admin/prompts/p/-/edit", version_form(base_version="1", **overrides))
    assert response.status_code == 422
    body = text(response)
    errors = re.findall(
        r'<div class="invalid-feedback d-block field-error" data-area="([^"]+)">([^<]*)</div>', body
    )
    assert errors, body[-2000:]
    assert any(a == area and expected in message for a, message in errors), errors
    assert "Nothing was saved" in body
    assert reg.get("p", label="latest").version == 1
    # what the editor typed is kept
    for key, value in overrides.items():
        if key.startswith(("system", "settings", "messages-0-content")) and value:
            assert (
                value.replace("<", "&lt;")
                .replace("'", "&#39;")
                .replace('"', "&#34;")
                .split("\n")[0]
                in body
            )


def test_stale_edit_warns_then_saves_when_confirmed(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version())
    reg.create_version("p", **simple_version(system="someone else's change"))
    form = version_form(system="my change from v1", base_version="1", message="mine")
    warned = post(editor, "/admin/prompts/p/-/edit", form)
    assert warned.status_code == 409
    assert "Version 2 was saved while you edited" in text(warned)
    assert 'name="confirm_stale" value="1"' in text(warned)
    assert reg.get("p", label="latest").version == 2
    saved = post(editor, "/admin/prompts/p/-/edit", {**form, "confirm_stale": "1"})
    assert saved.status_code == 302
    assert reg.get("p", label="latest").system == "my change from v1"


def test_analyze_shows_undeclared_and_unused_variables(editor: FlaskClient) -> None:
    response = post(
        editor,
        "/admin/prompts/-/analyze",
        version_form(
            **{"messages-0-content": "{{ question }} {{ extra }}"},
            variables="question: {type: string}\nunused: {type: string}\n",
        ),
    )
    body = text(response)
    assert "Not declared: extra" in body
    assert "Declared but unused: unused" in body


# -- version page, preview, diff -----------------------------------------------------------------


def test_version_page_shows_content_labels_and_a_preview(
    editor: FlaskClient, reg: Registry
) -> None:
    reg.create_version("p", **simple_version(labels=["staging"], system="Hello {{ question }}!"))
    page = text(editor.get("/admin/prompts/p/-/v/1"))
    assert "Hello {{ question }}!" in page
    assert 'id="version-labels"' in page and "staging" in page
    assert "Hello example!" in page  # placeholder values rendered right away
    assert 'id="token-estimate"' in page
    response = post(
        editor, "/admin/prompts/p/-/v/1", {"variables": '{"question": "Where is my invoice?"}'}
    )
    assert response.status_code == 200
    assert "Hello Where is my invoice?!" in text(response)
    yaml_vars = post(editor, "/admin/prompts/p/-/v/1", {"variables": "question: via yaml"})
    assert "Hello via yaml!" in text(yaml_vars)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ("{}", "missing required variable &#39;question&#39;"),
        ('{"question": "x", "other": 1}', "other"),
        ('{"question": 3}', "question"),
        ("[1, 2]", "must be a mapping"),
        ("{not json: [", "not valid JSON or YAML"),
        ('{"question": "\\ud800"}', "lone UTF-16 surrogate"),
        ('question: "\\udfff"', "lone UTF-16 surrogate"),
    ],
)
def test_preview_errors_are_explained(
    editor: FlaskClient, reg: Registry, variables: str, expected: str
) -> None:
    reg.create_version("p", **simple_version())
    response = post(editor, "/admin/prompts/p/-/v/1", {"variables": variables})
    assert response.status_code == 422
    error = re.search(r'id="preview-error">([^<]*)<', text(response))
    assert error and expected in error.group(1)


def test_preview_uses_the_prompts_test_cases(seeded_app: Flask) -> None:  # noqa: F811
    client = client_as(seeded_app, "viewer")
    reg: Registry = seeded_app.extensions["registry"]
    from registry.suites import list_cases

    cases = list_cases(reg, "extract-metrics")
    assert cases
    page = text(client.get("/admin/prompts/extract-metrics/-/v/1"))
    assert 'id="case-select"' in page
    first = cases[0].variables["document"]
    assert first[:30].replace("$", "$") in page
    other = text(client.get(f"/admin/prompts/extract-metrics/-/v/1?case={cases[-1].name}"))
    assert f'value="{cases[-1].name}" selected' in other


def test_diff_highlights_lines_and_lists_changed_keys(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version(system="line one\nline two"))
    reg.create_version(
        "p",
        **simple_version(
            system="line one\nline 2",
            settings={"model": "claude-sonnet-4-6", "max_tokens": 500, "temperature": 0.2},
            variables={
                "question": {"type": "string"},
                "tone": {"type": "string", "required": False, "default": "kind"},
            },
        ),
    )
    page = text(editor.get("/admin/prompts/p/-/diff?old=1&new=2"))
    assert '<div class="del">-line two</div>' in page
    assert '<div class="add">+line 2</div>' in page
    assert '<div class="ctx"> line one</div>' in page
    assert re.search(
        r'<tr class="table-warning">\s*<td><code>max_tokens</code></td><td>changed</td>', page
    )
    assert re.search(
        r'<tr class="table-success">\s*<td><code>temperature</code></td><td>added</td>', page
    )
    assert re.search(r'<tr class="table-success">\s*<td><code>tone</code></td>', page)
    same = text(editor.get("/admin/prompts/p/-/diff?old=2&new=2"))
    assert 'id="diff-empty"' in same
    default = text(editor.get("/admin/prompts/p/-/diff"))
    assert "v1</a> → <a" in default
    for url in ("/admin/prompts/p/-/diff?old=1&new=9", "/admin/prompts/nope/-/diff"):
        missing = editor.get(url)
        assert missing.status_code == 404, url
        assert 'id="not-found"' in text(missing), url


def test_missing_things_are_404_pages(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version())
    for url in (
        "/admin/prompts/nope/-/",
        "/admin/prompts/p/-/v/7",
        "/admin/prompts/nope/-/edit",
        "/admin/labels/nope/-/history",
        "/admin/runs/doesnotexist",
    ):
        response = editor.get(url)
        assert response.status_code == 404, url
        assert 'id="not-found"' in text(response)


# -- labels: move, conflict, history, rollback ---------------------------------------------------------


def test_move_that_lost_a_race_shows_the_conflict(publisher: FlaskClient, reg: Registry) -> None:
    for system in ("one", "two", "three"):
        reg.create_version("p", **simple_version(system=system))
    reg.set_label("p", "staging", 1, actor="x")
    page = text(publisher.get("/admin/prompts/p/-/v/3"))
    assert re.search(r'data-label="staging">.*?name="expected_version" value="1"', page, re.S)
    reg.set_label("p", "staging", 2, actor="someone-else", expected_version=1)  # the race
    response = post(
        publisher,
        "/admin/labels/p/-/move",
        {"label": "staging", "version": "3", "expected_version": "1"},
        follow_redirects=True,
    )
    body = text(response)
    assert (
        "Not moved: label &#39;staging&#39; of &#39;p&#39; is at version 2, not 1 as expected"
        in body
    )
    assert reg.prompt("p").labels["staging"] == 2


def test_history_lists_every_move_and_rollback_restores_the_previous_version(
    publisher: FlaskClient, reg: Registry
) -> None:
    for system in ("one", "two"):
        reg.create_version("p", **simple_version(system=system))
    post(
        publisher,
        "/admin/labels/p/-/move",
        {"label": "production", "version": "1", "expected_version": "0", "reason": "launch"},
    )
    post(
        publisher,
        "/admin/labels/p/-/move",
        {"label": "production", "version": "2", "expected_version": "1", "reason": "better"},
    )
    assert reg.get("p").version == 2
    history = text(publisher.get("/admin/labels/p/-/history"))
    rows = re.findall(r"<tr>\s*<td class=\"small text-nowrap\".*?</tr>", history, re.S)
    assert len(rows) == 2
    assert "better" in rows[0] and "launch" in rows[1]  # newest first
    rolled = post(
        publisher, "/admin/labels/p/-/rollback", {"label": "production"}, follow_redirects=True
    )
    assert "Rolled back: production of p points at version 1 again." in text(rolled)
    assert reg.get("p").version == 1
    last = reg.label_history("p", "production")[-1]
    assert (last.kind, last.actor, last.from_version, last.to_version) == (
        "rollback",
        "publisher",
        2,
        1,
    )
    filtered = text(publisher.get("/admin/labels/p/-/history?label=staging"))
    assert "No label moves yet." in filtered


def test_rollback_without_history_explains_why(publisher: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version(labels=["staging"]))
    response = post(
        publisher, "/admin/labels/p/-/rollback", {"label": "staging"}, follow_redirects=True
    )
    assert "Not rolled back: label &#39;staging&#39; of &#39;p&#39; has no earlier version" in text(
        response
    )


def test_custom_label_and_bad_label_names(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version())
    ok = post(
        editor,
        "/admin/labels/p/-/move",
        {"label": "canary", "version": "1", "expected_version": "0"},
    )
    assert ok.status_code == 303
    assert reg.prompt("p").labels["canary"] == 1
    bad = post(
        editor,
        "/admin/labels/p/-/move",
        {"label": "Not A Label", "version": "1", "expected_version": "0"},
        follow_redirects=True,
    )
    assert "Not moved: invalid label" in text(bad)
    latest = post(
        editor,
        "/admin/labels/p/-/move",
        {"label": "latest", "version": "1", "expected_version": "0"},
        follow_redirects=True,
    )
    assert "cannot be moved" in text(latest)


def test_global_audit_page(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("a", **simple_version(labels=["staging"]))
    reg.create_version("b", **simple_version(labels=["canary"]))
    page = text(editor.get("/admin/audit/"))
    assert page.index(">b</a>") < page.index(">a</a>")
    only = text(editor.get("/admin/audit/?label=canary"))
    assert ">b</a>" in only and ">a</a>" not in only


def test_archive_needs_a_publisher(
    editor: FlaskClient, publisher: FlaskClient, reg: Registry
) -> None:
    reg.create_version("p", **simple_version())
    assert post(editor, "/admin/prompts/p/-/archive", {"archived": "1"}).status_code == 403
    post(publisher, "/admin/prompts/p/-/archive", {"archived": "1"})
    assert reg.prompt("p").archived
    listed = text(publisher.get("/admin/prompts/"))
    assert "/admin/prompts/p/-/" not in listed
    assert "/admin/prompts/p/-/" in text(publisher.get("/admin/prompts/?archived=1"))


# -- the prompts list on both engines ------------------------------------------------------------------


def test_prompt_list_search_folder_tag_and_paging(reg_any: Registry) -> None:
    users.create_user(reg_any, "v", PASSWORD, role="viewer")
    for i in range(60):
        reg_any.create_version(
            f"team{i % 2}/p{i:02d}",
            **simple_version(),
            tags=["even" if i % 2 == 0 else "odd", "all"],
            description=f"prompt number {i}",
        )
    reg_any.set_label("team0/p00", "production", 1, actor="x")
    client = client_as(make_app(reg_any), "v")
    first = text(client.get("/admin/prompts/"))
    assert "1-50 of 60 prompts" in first
    assert "team0/p00" in first and "team1/p59" not in first
    second = text(client.get("/admin/prompts/?page=2"))
    assert "51-60 of 60 prompts" in second and "team1/p59" in second
    tagged = text(client.get("/admin/prompts/?tag=odd"))
    assert "1-30 of 30 prompts" in tagged and "team0/" not in tagged.split('id="prompts-table"')[1]
    folder = text(client.get("/admin/prompts/?folder=team0"))
    assert "1-30 of 30 prompts" in folder
    search = text(client.get("/admin/prompts/?q=P07"))
    assert "1-1 of 1 prompts" in search and "team1/p07" in search
    described = text(client.get("/admin/prompts/?q=number 42"))
    assert "team0/p42" in described
    labelled = first.split('id="prompts-table"')[1]
    assert "production" in labelled


@pytest.fixture
def reg_any(reg_engine: Registry) -> Registry:
    return reg_engine


@pytest.fixture
def reg_engine(db_url: str) -> Any:
    registry = Registry(db_url, cache_ttl=0)
    yield registry
    registry.close()


# -- playground --------------------------------------------------------------------------------------


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_playground_without_api_key_says_so(editor: FlaskClient, reg: Registry) -> None:
    reg.create_version("p", **simple_version())
    page = text(editor.get("/admin/playground/?name=p"))
    assert 'id="no-api-key"' in page
    token = csrf_token(editor)
    response = editor.post(
        "/admin/playground/run",
        json={"name": "p", "version": 1, "variables": {"question": "hi"}},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["type"] == "configuration_error"
    assert "ANTHROPIC_API_KEY" in error["message"]


def test_playground_needs_csrf_and_an_editor(app: Flask, reg: Registry) -> None:  # noqa: F811
    reg.create_version("p", **simple_version())
    editor = client_as(app, "editor")
    assert (
        editor.post(
            "/admin/playground/run", json={"name": "p", "version": 1, "variables": {}}
        ).status_code
        == 400
    )
    viewer = client_as(app, "viewer")
    token = csrf_token(viewer)
    assert (
        viewer.post(
            "/admin/playground/run",
            json={"name": "p", "version": 1},
            headers={"X-CSRFToken": token},
        ).status_code
        == 403
    )


def test_playground_streams_the_answer_and_logs_the_run(
    editor: FlaskClient, reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.create_version("p", **simple_version())
    fake_anthropic.enqueue(Reply.text("Your invoice is in Billing."))
    page = text(editor.get("/admin/playground/?name=p&version=1"))
    assert 'id="no-api-key"' not in page and 'id="run-form"' in page
    response = editor.post(
        "/admin/playground/run",
        json={"name": "p", "version": 1, "variables": '{"question": "Where is my invoice?"}'},
        headers={"X-CSRFToken": csrf_token(editor)},
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = sse_events(text(response))
    assert events[0][0] == "start"
    streamed = "".join(data["text"] for kind, data in events if kind == "text")
    assert streamed == "Your invoice is in Billing."
    kind, done = events[-1]
    assert kind == "done"
    assert done["input_tokens"] > 0 and done["output_tokens"] > 0
    assert done["latency_ms"] >= 0 and done["cost_usd"] is not None
    run = reg.runner.get_run(done["run_id"])
    assert (run.source, run.version, run.text) == ("playground", 1, "Your invoice is in Billing.")
    assert fake_anthropic.requests[-1].body["messages"][0]["content"] == "Where is my invoice?"
    listed = text(editor.get("/admin/runs/?source=playground"))
    assert done["run_id"] in listed
    detail = text(editor.get(f"/admin/runs/{done['run_id']}"))
    assert "Your invoice is in Billing." in detail and "Where is my invoice?" in detail


def test_playground_reports_an_api_error_in_the_stream(
    editor: FlaskClient, reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.create_version("p", **simple_version())
    fake_anthropic.enqueue(Reply.error(400, "invalid_request_error", "prompt is too long"))
    response = editor.post(
        "/admin/playground/run",
        json={"name": "p", "version": 1, "variables": {"question": "hi"}},
        headers={"X-CSRFToken": csrf_token(editor)},
    )
    events = sse_events(text(response))
    assert events[-1][0] == "error"
    assert "prompt is too long" in events[-1][1]["message"]


def test_playground_bad_variables(
    editor: FlaskClient, reg: Registry, fake_anthropic: FakeAnthropic
) -> None:
    reg.create_version("p", **simple_version())
    token = csrf_token(editor)
    missing = editor.post(
        "/admin/playground/run",
        json={"name": "p", "version": 1, "variables": {}},
        headers={"X-CSRFToken": token},
    )
    assert missing.status_code == 422
    assert "question" in missing.get_json()["error"]["message"]
    garbage = editor.post(
        "/admin/playground/run",
        json={"name": "p", "version": 1, "variables": "[oops"},
        headers={"X-CSRFToken": token},
    )
    assert garbage.status_code == 422
    for variables in ({"question": "\ud800"}, '{"question": "\\udfff"}'):
        lone = editor.post(
            "/admin/playground/run",
            json={"name": "p", "version": 1, "variables": variables},
            headers={"X-CSRFToken": token},
        )
        assert lone.status_code == 422
        assert "surrogate" in lone.get_json()["error"]["message"]
    assert fake_anthropic.requests == []


# -- the run log ------------------------------------------------------------------------------------


def add_runs(reg: Registry, rows: list[dict[str, Any]]) -> None:
    base = {
        "model": "claude-sonnet-4-6",
        "input_tokens": 10,
        "output_tokens": 5,
        "latency_ms": 120.0,
        "source": "app",
        "status": "ok",
    }
    with reg.db.transaction() as s:
        for row in rows:
            s.add(RunRow(id=uuid.uuid4().hex, **{**base, **row}))


def test_runs_list_filters_and_pages(editor: FlaskClient, reg: Registry) -> None:
    now = datetime.now(UTC)
    add_runs(
        reg,
        [
            {
                "prompt": "a",
                "version": 1,
                "label": "production",
                "created_at": now - timedelta(minutes=i),
            }
            for i in range(55)
        ],
    )
    add_runs(
        reg,
        [
            {
                "prompt": "b",
                "version": 2,
                "label": "staging",
                "status": "error",
                "error_type": "rate_limit_error",
                "created_at": now - timedelta(days=3),
            },
            {
                "prompt": "b",
                "version": 3,
                "label": None,
                "created_at": now - timedelta(days=10),
                "source": "playground",
            },
        ],
    )

    def count(query: str) -> str:
        found = re.search(
            r"(\d+-\d+ of \d+ runs|no runs)", text(editor.get("/admin/runs/" + query))
        )
        assert found
        return found.group(1)

    assert count("") == "1-50 of 57 runs"
    assert count("?page=2") == "51-57 of 57 runs"
    assert count("?prompt=a") == "1-50 of 55 runs"
    assert count("?prompt=b&version=2") == "1-1 of 1 runs"
    assert count("?label=staging") == "1-1 of 1 runs"
    assert count("?status=error") == "1-1 of 1 runs"
    assert count("?source=playground") == "1-1 of 1 runs"
    day = (now - timedelta(days=3)).date().isoformat()
    assert count(f"?since={day}&until={day}") == "1-1 of 1 runs"
    assert count(f"?until={(now - timedelta(days=5)).date().isoformat()}") == "1-1 of 1 runs"
    assert count("?prompt=nothing") == "no runs"
    errors = text(editor.get("/admin/runs/?version=x&since=yesterday&status=bad"))
    assert "version must be a number" in errors and "from must be a date" in errors
    page = text(editor.get("/admin/runs/?status=error"))
    assert "rate_limit_error" in page


def form_fields(page: str) -> dict[str, str]:
    """The values an unchanged editor form would submit (textareas, inputs, selected options)."""
    import html

    form = page[page.index('id="edit-form"') : page.index("</form>", page.index('id="edit-form"'))]
    fields: dict[str, str] = {}
    for name, value in re.findall(
        r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S
    ):
        fields[name] = html.unescape(value)
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="checkbox"' not in tag:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected', options)
        fields[name] = chosen.group(1) if chosen else "user"
    return fields


def test_every_seed_round_trips_through_the_editor_unchanged(seeded_app: Flask) -> None:  # noqa: F811
    reg: Registry = seeded_app.extensions["registry"]
    editor = client_as(seeded_app, "editor")
    for prompt in reg.prompts():
        page = text(editor.get(f"/admin/prompts/{prompt.name}/-/edit"))
        fields = form_fields(page)
        fields.pop("csrf_token", None)
        fields["message"] = "no change"
        response = post(
            editor, f"/admin/prompts/{prompt.name}/-/edit", fields, follow_redirects=True
        )
        assert "Nothing saved: the content is identical" in text(response), prompt.name
        assert reg.get(prompt.name, label="latest").version == prompt.latest_version


def test_description_and_tags_change_without_a_new_version(
    editor: FlaskClient, reg: Registry
) -> None:
    reg.create_version(
        "p",
        **simple_version(
            system="Same.",
            settings={"model": "claude-sonnet-4-6", "max_tokens": 300},
            variables={"question": {"type": "string", "required": True}},
        ),
    )
    form = version_form(system="Same.", base_version="1", description="Now described", tags="a b")
    response = post(editor, "/admin/prompts/p/-/edit", form, follow_redirects=True)
    assert "The description and tags were updated." in text(response)
    prompt = reg.prompt("p")
    assert (prompt.description, prompt.tags, prompt.latest_version) == (
        "Now described",
        ["a", "b"],
        1,
    )


def test_diff_lines_that_look_like_headers_are_still_changes(
    editor: FlaskClient, reg: Registry
) -> None:
    reg.create_version("p", **simple_version(system="keep\n-- a sql comment"))
    reg.create_version("p", **simple_version(system="keep\n++ plus plus"))
    page = text(editor.get("/admin/prompts/p/-/diff?old=1&new=2"))
    assert '<div class="del">--- a sql comment</div>' in page
    assert '<div class="add">+++ plus plus</div>' in page
    assert '<div class="file">--- v1</div>' in page
