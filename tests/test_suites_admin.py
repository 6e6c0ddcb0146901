"""Admin pages of regression suites: test cases per prompt (list, create, edit, delete), a suite
run started from the version page, results, history and comparison, by role, CSRF on."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask, render_template_string, session
from flask.testing import FlaskClient

from registry import Registry
from registry.suites import list_cases, run_suite, sync_cases_from_file
from registry.testing import FakeAnthropic
from registry.users import get_user, start_session
from registry.web import get_registry
from registry.web.admin.security import SESSION_TOKEN_KEY
from tests.test_admin import _fast_hashes, app, login, post  # noqa: F401  (fixtures)
from tests.test_suites import CASES, capitals_responder, make_prompt


@pytest.fixture
def suite_app(app: Flask, fake_anthropic: FakeAnthropic) -> Flask:  # noqa: F811
    """The admin on a registry with ``capitals`` v1 (good, production) and v2 (bad)."""
    fake_anthropic.responder = capitals_responder
    reg = get_registry(app)
    make_prompt(reg, labels=["production", "staging"])
    sync_cases_from_file(reg, "capitals", CASES[:2], author="seed")
    make_prompt(reg, system="BAD", labels=[])
    return app


def client_as(flask_app: Flask, role: str) -> FlaskClient:
    client = flask_app.test_client()
    assert login(client, role).status_code == 302
    return client


def wait_for_runs(flask_app: Flask) -> None:
    for thread in list(flask_app.extensions.get("suite_threads", [])):
        thread.join(60)
        assert not thread.is_alive()


def text(response: object) -> str:
    """The page's text with entities decoded and whitespace collapsed."""
    return " ".join(html.unescape(response.get_data(as_text=True)).split())  # type: ignore[attr-defined]


def test_viewers_read_but_cannot_edit_or_run(suite_app: Flask) -> None:
    viewer = client_as(suite_app, "viewer")
    index = viewer.get("/admin/suites/")
    assert index.status_code == 200 and "capitals" in text(index)
    page = viewer.get("/admin/suites/prompt/capitals")
    assert page.status_code == 200
    assert 'data-case="France"' in text(page) and "New case" not in text(page)
    case_id = list_cases(get_registry(suite_app), "capitals")[0].id
    assert viewer.get(f"/admin/suites/case/{case_id}").status_code == 200
    assert post(viewer, "/admin/suites/new/capitals", {"name": "x"}).status_code == 403
    assert post(viewer, f"/admin/suites/case/{case_id}", {"name": "x"}).status_code == 403
    assert post(viewer, f"/admin/suites/case/{case_id}/delete").status_code == 403
    assert post(viewer, "/admin/suites/run/capitals", {"version": "1"}).status_code == 403
    assert suite_app.test_client().get("/admin/suites/").status_code == 302  # anonymous: login


def test_editors_create_edit_and_delete_cases_with_errors_on_the_form(suite_app: Flask) -> None:
    editor = client_as(suite_app, "editor")
    reg = get_registry(suite_app)
    form = editor.get("/admin/suites/new/capitals")
    assert form.status_code == 200 and "country:" in text(form)  # prefilled from the contract
    bad = post(
        editor,
        "/admin/suites/new/capitals",
        {"name": "italy", "variables": "country: Italy", "assertions": "- {type: contains}\n"},
    )
    assert bad.status_code == 422
    assert "test case 'italy', assertion 1 (contains): value: Field required" in text(bad)
    assert "country: Italy" in bad.get_data(as_text=True)  # what was typed is kept
    not_yaml = post(editor, "/admin/suites/new/capitals", {"name": "x", "variables": "[1, 2"})
    assert not_yaml.status_code == 422 and "variables: not valid YAML" in text(not_yaml)
    created = post(
        editor,
        "/admin/suites/new/capitals",
        {
            "name": "italy",
            "variables": '{"country": "Italy"}',
            "assertions": "- {type: icontains, value: rome}",
        },
    )
    assert created.status_code == 302 and created.headers["Location"].endswith(
        "/admin/suites/prompt/capitals"
    )
    [italy] = [c for c in list_cases(reg, "capitals") if c.name == "italy"]
    assert italy.variables == {"country": "Italy"} and italy.created_by == "editor"
    edited = post(
        editor,
        f"/admin/suites/case/{italy.id}",
        {
            "name": "italia",
            "variables": "country: Italy",
            "assertions": "- {type: regex, value: '(?i)rome'}",
        },
    )
    assert edited.status_code == 302
    [italia] = [c for c in list_cases(reg, "capitals") if c.id == italy.id]
    assert italia.name == "italia" and italia.assertions == [{"type": "regex", "value": "(?i)rome"}]
    clash = post(
        editor,
        f"/admin/suites/case/{italy.id}",
        {"name": "France", "variables": "", "assertions": ""},
    )
    assert clash.status_code == 422 and "already has a test case" in text(clash)
    assert post(editor, f"/admin/suites/case/{italy.id}/delete").status_code == 302
    assert "italia" not in {c.name for c in list_cases(reg, "capitals")}
    assert editor.get("/admin/suites/case/999999").status_code == 404
    assert editor.get("/admin/suites/prompt/nope").status_code == 404


def test_run_a_suite_from_the_version_page_and_read_the_results(suite_app: Flask) -> None:
    editor = client_as(suite_app, "editor")
    reg = get_registry(suite_app)
    version_page = text(editor.get("/admin/prompts/capitals/-/v/2"))
    assert 'id="suite-panel"' in version_page and "Run suite on v2" in version_page
    assert "production is gated: its regression suite has never run on v2" in version_page
    panel = editor.get("/admin/suites/version/2/capitals")
    assert panel.status_code == 200
    assert "production is gated for v2" in text(panel) and "never run on v2" in text(panel)
    started = post(editor, "/admin/suites/run/capitals", {"version": "2", "concurrency": "2"})
    assert started.status_code == 302
    run_id = int(re.search(r"/result/(\d+)", started.headers["Location"]).group(1))  # type: ignore[union-attr]
    wait_for_runs(suite_app)
    result = editor.get(f"/admin/suites/result/{run_id}")
    page = text(result)
    assert result.status_code == 200 and "0 passed, 2 failed" in page
    assert 'contains "Paris"' in page and "I am not sure, sorry." in page
    assert 'http-equiv="refresh"' not in page  # finished: no more refreshing
    gated = text(editor.get("/admin/suites/version/2/capitals"))
    assert f"suite run #{run_id} on v2 failed" in gated

    good = run_suite(reg, "capitals", version=1)
    compare = editor.get(f"/admin/suites/compare?old={good.id}&new={run_id}")
    assert compare.status_code == 200
    assert "2 regression(s), 0 fix(es)" in text(compare) and "pass->fail" in text(compare)

    history = text(editor.get("/admin/suites/prompt/capitals"))
    assert f'data-run="{run_id}"' in history and f'data-run="{good.id}"' in history
    index = text(editor.get("/admin/suites/"))
    assert f"#{good.id}</a> v1" in index


def test_a_run_that_cannot_start_says_why(suite_app: Flask) -> None:
    editor = client_as(suite_app, "editor")
    missing = post(editor, "/admin/suites/run/capitals", {"version": "9"}, follow_redirects=True)
    assert "has no version 9" in text(missing)
    make_prompt(get_registry(suite_app), "empty")
    none = post(editor, "/admin/suites/run/empty", {"version": "1"}, follow_redirects=True)
    assert "has no test cases" in text(none)


def test_an_unexpected_failure_before_the_start_is_a_message_not_a_500(
    suite_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("registry.web.admin.suites.run_suite", broken)
    editor = client_as(suite_app, "editor")
    page = post(editor, "/admin/suites/run/capitals", {"version": "2"}, follow_redirects=True)
    assert page.status_code == 200
    assert "the suite could not start: OSError: disk full" in text(page)
    wait_for_runs(suite_app)


def test_the_version_panel_include_for_the_version_page(
    suite_app: Flask, fake_anthropic: FakeAnthropic
) -> None:
    reg: Registry = get_registry(suite_app)
    editor = client_as(suite_app, "editor")
    editor.get("/admin/")  # a request to carry the login
    template = "{% with name='capitals', version=2 %}{% include 'admin_ui/suites/_version_panel.html' %}{% endwith %}"
    with suite_app.test_request_context("/admin/"):
        session[SESSION_TOKEN_KEY] = start_session(reg, get_user(reg, "editor"))
        html = " ".join(render_template_string(template).split())
    assert "production is gated" in html and "Run suite on v2" in html
