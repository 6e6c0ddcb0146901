"""The /api/v1 endpoints: every endpoint, every scope, keys, ETags, bad input, the document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from registry import Registry
from registry.api_keys import list_api_keys, revoke_api_key
from registry.web.api.routing import OPERATIONS
from tests.api_support import SEED_DIR, bearer, build_app, make_keys
from tests.conftest import simple_version


@dataclass
class Api:
    client: FlaskClient
    keys: dict[str, str]
    reg: Registry

    def call(self, method: str, path: str, scope: str | None = "write", **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if scope is not None:
            headers.update(bearer(self.keys[scope]))
        return self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)


def _api(reg: Registry) -> Api:
    reg.seed(SEED_DIR)
    app = build_app(reg)
    return Api(app.test_client(), make_keys(reg), reg)


@pytest.fixture
def api(sqlite_reg: Registry) -> Api:
    """The API over a seeded SQLite registry, with one key per scope."""
    return _api(sqlite_reg)


@pytest.fixture
def any_api(reg: Registry) -> Api:
    """The API over a seeded registry on each engine (for tests that write)."""
    return _api(reg)


def _error(resp: Any) -> dict[str, Any]:
    assert resp.mimetype == "application/json", resp.data[:200]
    body = resp.get_json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["type"], str)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in resp.get_data(as_text=True)
    return body["error"]  # type: ignore[no-any-return]


# -- service endpoints ----------------------------------------------------------------------


def test_health_needs_no_key(api: Api) -> None:
    resp = api.call("GET", "/health", scope=None)
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "sqlite", "version": "0.1.0"}


def test_openapi_document_describes_every_endpoint(api: Api) -> None:
    resp = api.call("GET", "/openapi.json", scope=None)
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "/api/v1"}]
    expected = {
        ("get", "/prompts"),
        ("get", "/prompts/{name}"),
        ("get", "/versions"),
        ("post", "/prompts/{name}/versions"),
        ("put", "/prompts/{name}/labels/{label}"),
        ("post", "/prompts/{name}/render"),
        ("post", "/prompts/{name}/run"),
        ("post", "/runs/{run_id}/feedback"),
        ("get", "/experiments/{key}/report"),
        ("get", "/health"),
        ("get", "/openapi.json"),
    }
    found = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert found == expected
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            public = path in ("/health", "/openapi.json")
            assert (op.get("security") == []) == public, (method, path)
            if not public:
                assert "401" in op["responses"] and "403" in op["responses"]
            for ref in json.dumps(op).split('"$ref": "')[1:]:
                name = ref.split('"')[0].rsplit("/", 1)[-1]
                assert name in doc["components"]["schemas"], name
    render_body = doc["paths"]["/prompts/{name}/render"]["post"]["requestBody"]
    assert render_body["content"]["application/json"]["schema"]["$ref"].endswith("RenderRequest")
    get_op = doc["paths"]["/prompts/{name}"]["get"]
    assert "304" in get_op["responses"] and "ETag" in get_op["responses"]["200"]["headers"]
    run_200 = doc["paths"]["/prompts/{name}/run"]["post"]["responses"]["200"]["content"]
    assert set(run_200) == {"application/json", "text/event-stream"}


def test_every_documented_operation_is_routed(api: Api) -> None:
    rules = {
        (method, rule.rule)
        for rule in api.client.application.url_map.iter_rules()
        for method in rule.methods or ()
    }
    for op in OPERATIONS:
        assert (op.method, "/api/v1" + op.rule) in rules, op.path


# -- keys and scopes ----------------------------------------------------------------------


def test_missing_key_is_401_with_a_bearer_challenge(api: Api) -> None:
    resp = api.call("GET", "/prompts", scope=None)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    err = _error(resp)
    assert err["type"] == "unauthorized"
    assert "Authorization: Bearer" in err["message"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer prk_deadbeef_notarealkeyatall",
        "Bearer something-else",
        "Basic dXNlcjpwdw==",
        "Bearer",
    ],
)
def test_invalid_key_is_401(api: Api, header: str) -> None:
    resp = api.call("GET", "/prompts", scope=None, headers={"Authorization": header})
    assert resp.status_code == 401
    assert "Bearer" in resp.headers["WWW-Authenticate"]
    assert _error(resp)["type"] == "unauthorized"


def test_revoked_key_is_refused_at_once(api: Api) -> None:
    assert api.call("GET", "/prompts", scope="read").status_code == 200
    revoke_api_key(api.reg, "key-read", actor="test")
    resp = api.call("GET", "/prompts", scope="read")
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert "revoked" in _error(resp)["message"]


def test_use_records_last_used_time(api: Api) -> None:
    before = {k.name: k.last_used_at for k in list_api_keys(api.reg)}
    assert before["key-read"] is None
    assert api.call("GET", "/prompts", scope="read").status_code == 200
    after = {k.name: k.last_used_at for k in list_api_keys(api.reg)}
    assert after["key-read"] is not None
    assert after["key-write"] is None


#: (method, path, body, least scope)
SCOPED = [
    ("GET", "/prompts", None, "read"),
    ("GET", "/prompts/summarize", None, "read"),
    ("POST", "/prompts/summarize/render", {"variables": {"text": "x"}}, "read"),
    ("POST", "/prompts/summarize/run", {"variables": {"text": "x"}}, "run"),
    ("POST", "/runs/0123/feedback", {"name": "thumbs_up", "value": 1.0}, "run"),
    ("GET", "/experiments/nope/report", None, "read"),
    (
        "POST",
        "/prompts/summarize/versions",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "settings": {"model": "claude-haiku-4-5", "max_tokens": 5},
        },
        "write",
    ),
    ("PUT", "/prompts/summarize/labels/staging", {"version": 1}, "write"),
]


@pytest.mark.parametrize("scope", ["read", "run", "write"])
@pytest.mark.parametrize(("method", "path", "body", "needs"), SCOPED)
def test_scopes_are_enforced(
    api: Api, scope: str, method: str, path: str, body: Any, needs: str
) -> None:
    order = ["read", "run", "write"]
    resp = api.call(method, path, scope=scope, json=body)
    if order.index(scope) < order.index(needs):
        assert resp.status_code == 403
        err = _error(resp)
        assert err["type"] == "permission_denied"
        assert f"scope {needs!r}" in err["message"]
    else:
        # allowed: whatever happens next (404 for the unknown run, 503 without a model key),
        # it is not an authorisation failure
        assert resp.status_code not in (401, 403), resp.get_json()


# -- fetching -----------------------------------------------------------------------------


def test_list_prompts_with_filters(api: Api) -> None:
    body = api.call("GET", "/prompts", scope="read").get_json()
    names = [p["name"] for p in body["prompts"]]
    assert names == sorted(names) and "support/support-answer" in names
    first = body["prompts"][0]
    assert set(first) == {
        "name",
        "description",
        "tags",
        "labels",
        "latest_version",
        "created_at",
        "updated_at",
        "archived",
    }
    folder = api.call("GET", "/prompts?folder=support", scope="read").get_json()
    assert {p["name"] for p in folder["prompts"]} == {
        "support/support-answer",
        "support/classify-ticket",
    }
    tagged = api.call("GET", "/prompts?tag=writing", scope="read").get_json()
    assert [p["name"] for p in tagged["prompts"]] == ["summarize"]
    found = api.call("GET", "/prompts?search=metric", scope="read").get_json()
    assert [p["name"] for p in found["prompts"]] == ["extract-metrics"]


def test_get_prompt_resolves_like_the_python_api(api: Api) -> None:
    reg = api.reg
    v2 = reg.create_version("summarize", **simple_version(labels=["staging"]))
    for query, expected in [
        ("", reg.get("summarize")),
        ("?label=staging", v2),
        ("?label=latest", v2),
        ("?version=1", reg.get("summarize", version=1)),
    ]:
        resp = api.call("GET", "/prompts/summarize" + query, scope="read")
        assert resp.status_code == 200, resp.get_json()
        data = resp.get_json()
        assert data["version"] == expected.version
        assert data["content_hash"] == expected.content_hash
        assert data["settings"] == expected.settings
        assert data["variables"] == expected.variables
        assert data["labels"] == expected.labels
        assert data["created_at"] == expected.created_at.isoformat()
        assert data["experiment"] is None and data["includes"] == {}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("?label=staging&version=1", 422, "version"),
        ("?version=abc", 422, "version"),
        ("?version=0", 422, "version"),
        ("?label=NOT%20A%20LABEL", 422, "label"),
        ("?label=nosuchlabel", 404, None),
        ("?version=99", 404, None),
    ],
)
def test_get_prompt_bad_selectors(api: Api, query: str, status: int, field: str | None) -> None:
    resp = api.call("GET", "/prompts/summarize" + query, scope="read")
    assert resp.status_code == status
    err = _error(resp)
    if field:
        assert err["field"] == field
        assert field in err["message"]


def test_unknown_prompt_is_404(api: Api) -> None:
    resp = api.call("GET", "/prompts/no/such/prompt", scope="read")
    assert resp.status_code == 404
    err = _error(resp)
    assert err["type"] == "not_found" and "no/such/prompt" in err["message"]


def test_folder_names_route_unambiguously(api: Api) -> None:
    reg = api.reg
    # names whose last part is a sub-resource word are still plain prompts
    for name in ("team/versions", "team/render", "x/labels/y", "team"):
        reg.create_version(name, **simple_version(system=f"I am {name}", labels=["staging"]))
    for name in ("team/versions", "team/render", "x/labels/y", "team"):
        got = api.call("GET", f"/prompts/{name}?label=staging", scope="read").get_json()
        assert got["name"] == name and got["system"] == f"I am {name}"
        rendered = api.call(
            "POST",
            f"/prompts/{name}/render",
            json={"label": "staging", "variables": {"question": "q"}},
        ).get_json()
        assert rendered["system"] == f"I am {name}"
    moved = api.call("PUT", "/prompts/x/labels/y/labels/beta", json={"version": 1})
    assert moved.status_code == 200 and moved.get_json()["name"] == "x/labels/y"
    assert reg.get("x/labels/y", label="beta").version == 1
    created = api.call(
        "POST", "/prompts/team/versions/versions", json=simple_version(author=None) | {"author": ""}
    )
    assert created.status_code in (200, 201), created.get_json()
    assert created.get_json()["name"] == "team/versions"


def test_etag_and_if_none_match(api: Api) -> None:
    reg = api.reg
    first = api.call("GET", "/prompts/summarize", scope="read")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "no-cache"
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = api.call(
            "GET", "/prompts/summarize", scope="read", headers={"If-None-Match": header}
        )
        assert again.status_code == 304, header
        assert again.data == b"" and again.headers["ETag"] == etag
    assert (
        api.call(
            "GET", "/prompts/summarize", scope="read", headers={"If-None-Match": '"stale"'}
        ).status_code
        == 200
    )
    # a new version on another label changes nothing this answer shows
    v2 = reg.create_version("summarize", **simple_version())
    same = api.call("GET", "/prompts/summarize", scope="read", headers={"If-None-Match": etag})
    assert same.status_code == 304
    # a label moved: the production answer lists labels, so its ETag changes too
    reg.set_label("summarize", "canary", 1)
    changed = api.call("GET", "/prompts/summarize", scope="read", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "canary" in changed.get_json()["labels"]
    staging = api.call("GET", "/prompts/summarize?label=staging", scope="read")
    api.call("PUT", "/prompts/summarize/labels/staging", json={"version": v2.version})
    moved = api.call(
        "GET",
        "/prompts/summarize?label=staging",
        scope="read",
        headers={"If-None-Match": staging.headers["ETag"]},
    )
    assert moved.status_code == 200 and moved.get_json()["version"] == v2.version


def test_includes_travel_with_the_version(api: Api) -> None:
    reg = api.reg
    reg.create_version(
        "snippets/tone",
        system="Be kind to {{ question }}.",
        labels=["production"],
        messages=[{"role": "user", "content": "x"}],
        settings={"model": "claude-haiku-4-5", "max_tokens": 5},
        variables={"question": {"type": "string"}},
    )
    reg.create_version(
        "composed",
        **simple_version(system='{% include "snippets/tone" %} Then answer.', labels=["staging"]),
    )
    data = api.call("GET", "/prompts/composed?label=staging", scope="read").get_json()
    assert data["includes"] == {"snippets/tone@production": "Be kind to {{ question }}."}
    rendered = api.call(
        "POST",
        "/prompts/composed/render",
        json={"label": "staging", "variables": {"question": "Bo"}},
    ).get_json()
    assert rendered["system"] == "Be kind to Bo. Then answer."


# -- rendering ----------------------------------------------------------------------------


def test_render_matches_local_render(api: Api) -> None:
    values = {"question": "Where is my invoice?", "documents": [{"title": "T", "body": "B"}]}
    resp = api.call(
        "POST", "/prompts/support/support-answer/render", scope="read", json={"variables": values}
    )
    assert resp.status_code == 200
    data = resp.get_json()
    local = api.reg.render("support/support-answer", values)
    assert data["system"] == local.system and data["messages"] == local.messages
    assert data["settings"] == local.settings and data["variables"] == local.variables
    assert data["request"] == {**local.settings, "system": local.system, "messages": local.messages}


@pytest.mark.parametrize(
    ("body", "status", "check"),
    [
        ({}, 422, ("variable", "text")),
        ({"variables": {"text": 3}}, 422, ("variable", "text")),
        ({"variables": {"text": "x", "nope": 1}}, 422, ("variable", "nope")),
        ({"variables": "text=x"}, 422, ("field", "variables")),
        ({"variables": {"text": "x"}, "version": "1"}, 422, ("field", "version")),
        ({"variables": {"text": "x"}, "version": 1, "label": "staging"}, 422, ("field", "version")),
        ({"variables": {"text": "x"}, "extra": True}, 422, ("field", "extra")),
        ({"variables": {"text": "x"}, "version": 42}, 404, None),
    ],
)
def test_render_bad_bodies(api: Api, body: Any, status: int, check: Any) -> None:
    resp = api.call("POST", "/prompts/summarize/render", scope="read", json=body)
    assert resp.status_code == status, resp.get_json()
    err = _error(resp)
    if check:
        key, value = check
        assert err[key] == value, err
        assert value in err["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "kind"),
    [
        (b"{not json", "application/json", 400, "bad_request"),
        (b"[1, 2]", "application/json", 400, "bad_request"),
        (b'"text"', "application/json", 400, "bad_request"),
        (b'{"variables": {"text": NaN}}', "application/json", 400, "bad_request"),
        (b"\xff\xfe\xfa", "application/json", 400, "bad_request"),
        # a lone surrogate escape decodes, but is no character: it could never be answered
        (b'{"variables": {"text": "\\ud800"}}', "application/json", 400, "bad_request"),
        (b'{"variables": {"\\udfff": "x"}}', "application/json", 400, "bad_request"),
        (b"text=hello", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"variables": {"text": "x"}}', "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_render_not_json(api: Api, data: bytes, content_type: str, status: int, kind: str) -> None:
    resp = api.call(
        "POST", "/prompts/summarize/render", scope="read", data=data, content_type=content_type
    )
    assert resp.status_code == status
    assert _error(resp)["type"] == kind


def test_a_complete_surrogate_pair_is_a_character(api: Api) -> None:
    resp = api.call(
        "POST",
        "/prompts/summarize/render",
        scope="read",
        data=b'{"variables": {"text": "\\ud83d\\ude00"}}',
        content_type="application/json",
    )
    assert resp.status_code == 200, resp.get_json()
    assert "\U0001f600" in json.dumps(resp.get_json(), ensure_ascii=False)


def test_ten_megabyte_body_is_413(api: Api) -> None:
    big = json.dumps({"variables": {"text": "x" * (10 * 1024 * 1024)}})
    resp = api.call(
        "POST", "/prompts/summarize/render", scope="read", data=big, content_type="application/json"
    )
    assert resp.status_code == 413
    err = _error(resp)
    assert "larger than the limit" in err["message"]


def test_unknown_prompt_render_is_404(api: Api) -> None:
    resp = api.call("POST", "/prompts/nope/render", scope="read", json={"variables": {}})
    assert resp.status_code == 404
    assert _error(resp)["type"] == "not_found"


# -- writing ------------------------------------------------------------------------------


def test_create_version(any_api: Api) -> None:
    body = simple_version(author="") | {"labels": ["staging"], "description": "from the API"}
    resp = any_api.call("POST", "/prompts/new/prompt/versions", json=body)
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["created"] is True and data["version"] == 1 and data["labels"] == ["staging"]
    assert data["author"] == "api-key:key-write"
    again = any_api.call("POST", "/prompts/new/prompt/versions", json=body)
    assert again.status_code == 200 and again.get_json()["created"] is False
    v = any_api.reg.get("new/prompt", label="staging")
    assert v.content_hash == data["content_hash"]
    assert any_api.reg.prompt("new/prompt").description == "from the API"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"settings": {"model": "claude-haiku-4-5", "max_tokens": "many"}}, "settings.max_tokens"),
        (
            {"settings": {"model": "claude-haiku-4-5", "max_tokens": 5, "colour": "red"}},
            "settings.colour",
        ),
        ({"system": "{{ undeclared }}"}, "variables"),
        ({"system": "{% if %}"}, "system template"),
        ({"labels": ["latest"]}, "label"),
        ({"message": 5}, "message"),
    ],
)
def test_create_version_field_errors(api: Api, change: dict[str, Any], field: str) -> None:
    body = simple_version(author="") | change
    resp = api.call("POST", "/prompts/summarize/versions", json=body)
    assert resp.status_code == 422, resp.get_json()
    err = _error(resp)
    assert err["field"] == field, err
    assert len(api.reg.versions("summarize")) == 1


def test_api_keys_cannot_touch_protected_labels(api: Api) -> None:
    resp = api.call(
        "POST", "/prompts/summarize/versions", json=simple_version(labels=["production"])
    )
    assert resp.status_code == 403
    assert "protected" in _error(resp)["message"]
    assert len(api.reg.versions("summarize")) == 1
    api.reg.create_version("summarize", **simple_version())
    moved = api.call("PUT", "/prompts/summarize/labels/production", json={"version": 2})
    assert moved.status_code == 403
    err = _error(moved)
    assert err["type"] == "permission_denied" and "prompt-registry label" in err["message"]
    assert api.reg.get("summarize").version == 1


def test_move_label_is_audited_and_compare_and_set(any_api: Api) -> None:
    reg = any_api.reg
    reg.create_version("summarize", **simple_version())
    resp = any_api.call(
        "PUT", "/prompts/summarize/labels/staging", json={"version": 2, "reason": "try v2"}
    )
    assert resp.status_code == 200
    assert resp.get_json() == {"name": "summarize", "label": "staging", "version": 2}
    event = reg.label_history("summarize", "staging")[-1]
    assert (event.actor, event.reason, event.to_version) == ("api-key:key-write", "try v2", 2)
    stale = any_api.call(
        "PUT", "/prompts/summarize/labels/staging", json={"version": 1, "expected_version": 1}
    )
    assert stale.status_code == 409 and _error(stale)["type"] == "conflict"
    assert reg.get("summarize", label="staging").version == 2
    ok = any_api.call(
        "PUT", "/prompts/summarize/labels/staging", json={"version": 1, "expected_version": 2}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/prompts/summarize/labels/staging", {"version": 99}, 404),
        ("/prompts/nope/labels/staging", {"version": 1}, 404),
        ("/prompts/summarize/labels/latest", {"version": 1}, 422),
        ("/prompts/summarize/labels/Bad Label", {"version": 1}, 422),
        ("/prompts/summarize/labels/staging", {"version": "1"}, 422),
        ("/prompts/summarize/labels/staging", {}, 422),
        ("/prompts/summarize/labels/staging", {"version": 1, "expected_version": -1}, 422),
    ],
)
def test_move_label_errors(api: Api, path: str, body: Any, status: int) -> None:
    resp = api.call("PUT", path, json=body)
    assert resp.status_code == status, resp.get_json()
    _error(resp)


# -- routing errors, internal errors, experiments -----------------------------------------


def test_unknown_endpoint_and_wrong_method_answer_json(api: Api) -> None:
    missing = api.call("GET", "/nothing/here", scope="read")
    assert missing.status_code == 404 and _error(missing)["type"] == "not_found"
    wrong = api.call("DELETE", "/prompts/summarize", scope="read")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["Allow"]
    assert _error(wrong)["type"] == "method_not_allowed"
    wrong_post = api.call("GET", "/prompts/summarize/run", scope="read")
    # a GET of ".../run" is a prompt named "summarize/run": it does not exist
    assert wrong_post.status_code == 404


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/prompts/summarize", "GET, HEAD, OPTIONS"),
        ("/prompts/summarize/render", "OPTIONS, POST"),
        ("/prompts/summarize/labels/staging", "OPTIONS, PUT"),
        ("/health", "GET, HEAD, OPTIONS"),
    ],
)
def test_options_lists_exactly_the_methods_of_the_resource(api: Api, path: str, allow: str) -> None:
    resp = api.call("OPTIONS", path, scope=None)
    assert resp.status_code == 204
    assert resp.headers["Allow"] == allow


def test_unknown_query_parameters_and_odd_urls(api: Api) -> None:
    typo = api.call("GET", "/prompts/summarize?lable=staging", scope="read")
    assert typo.status_code == 422
    err = _error(typo)
    assert err["field"] == "lable" and "unknown" in err["message"]
    assert api.call("GET", "/health?x=1", scope=None).status_code == 422
    for path in ("/prompts/a%0Ab/render", "/", "", "/prompts/%00"):
        resp = api.call("POST", path, scope="read", json={})
        assert resp.status_code in (404, 405, 422), path
        _error(resp)


def test_unexpected_errors_are_500_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(api.reg, "prompts", boom)
    resp = api.call("GET", "/prompts", scope="read")
    assert resp.status_code == 500
    err = _error(resp)
    assert err["type"] == "internal_error" and "incident" in err["message"]
    assert "secret" not in resp.get_data(as_text=True)


def test_experiment_report_unknown_is_404(api: Api) -> None:
    resp = api.call("GET", "/experiments/nope/report", scope="read")
    assert resp.status_code == 404
    _error(resp)


def test_experiment_report_and_unit_variants(api: Api) -> None:
    from registry import experiments

    reg = api.reg
    v1 = reg.get("summarize", version=1)
    reg.create_version(
        "summarize",
        system="Variant B",
        messages=v1.messages,
        settings=v1.settings,
        variables=v1.variables,
    )
    experiments.create(reg, "summary-test", prompt="summarize", variants=["a=1:50", "b=2:50"])
    experiments.start(reg, "summary-test")
    seen = {}
    for unit in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"):
        data = api.call("GET", f"/prompts/summarize?unit_id={unit}", scope="read").get_json()
        assert data["experiment"] == "summary-test"
        seen[data["variant"]] = data["version"]
        # sticky: the same unit gets the same variant again
        again = api.call("GET", f"/prompts/summarize?unit_id={unit}", scope="read").get_json()
        assert again["variant"] == data["variant"]
    assert seen == {"a": 1, "b": 2}
    resp = api.call("GET", "/experiments/summary-test/report", scope="read")
    assert resp.status_code == 200, resp.get_json()
    report = resp.get_json()
    expected = json.loads(
        json.dumps(experiments.build_report(reg, "summary-test").to_dict(), default=str)
    )
    report.pop("generated_at", None)
    expected.pop("generated_at", None)
    assert report == expected


def test_versions_of_a_prompt_oldest_first(api: Api) -> None:
    reg = api.reg
    reg.create_version("team/versions", **simple_version(system="one", labels=["staging"]))
    reg.create_version("team/versions", **simple_version(system="two"))
    listed = api.call("GET", "/versions?prompt=team/versions", scope="read")
    assert listed.status_code == 200
    versions = listed.get_json()["versions"]
    assert [(v["version"], v["system"], v["labels"]) for v in versions] == [
        (1, "one", ["staging"]),
        (2, "two", []),
    ]
    one = api.call("GET", "/prompts/team/versions?version=1", scope="read").get_json()
    assert versions[0] == one  # each exactly as GET /prompts/{name} shows it
    missing = api.call("GET", "/versions?prompt=team/version", scope="read")
    assert missing.status_code == 404
    assert "did you mean team/versions" in missing.get_json()["error"]["message"]
    assert api.call("GET", "/versions", scope="read").status_code == 422
    assert api.call("GET", "/versions?prompt=team/versions", scope=None).status_code == 401
