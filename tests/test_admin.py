"""Web admin: login, sessions, roles and CSRF, through the Flask test client.

CSRF protection stays ON in these tests: every write fetches a token from a page first, as a
browser would. Helpers and fixtures here are reused by ``test_admin_flows.py``.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry import Registry, users
from registry.web import create_app
from tests.conftest import SEED_DIR, simple_version

PASSWORD = "correct horse battery"
ROLES = ("viewer", "editor", "publisher", "admin")

_TOKEN = re.compile(r'name="csrf[-_]token" (?:content|value)="([^"]+)"')


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt is slow on purpose; tests do not need that."""
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


def make_app(reg: Registry, **config: Any) -> Flask:
    """An app serving ``reg`` with CSRF on."""
    settings = {
        "REGISTRY": reg,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": True,
    }
    settings.update(config)
    return create_app(settings)


def csrf_token(client: FlaskClient) -> str:
    """A CSRF token for this client's session, read from a page like a browser would."""
    page = client.get("/admin/")
    if page.status_code != 200:
        page = client.get("/admin/login/")
    found = _TOKEN.search(page.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """POST a form with a valid CSRF token."""
    payload = dict(data or {})
    payload["csrf_token"] = csrf_token(client)
    return client.post(url, data=payload, **kw)


def login(client: FlaskClient, name: str, password: str = PASSWORD) -> Any:
    """Log in through the form."""
    return post(client, "/admin/login/", {"name": name, "password": password})


@pytest.fixture
def app(sqlite_reg: Registry) -> Flask:
    """The app on an empty SQLite registry with one user per role (named after the role)."""
    for role in ROLES:
        users.create_user(sqlite_reg, role, PASSWORD, role=role)
    return make_app(sqlite_reg)


@pytest.fixture
def seeded_app(app: Flask) -> Flask:
    """``app`` with the seed prompts."""
    reg: Registry = app.extensions["registry"]
    reg.seed(SEED_DIR)
    return app


def client_as(app: Flask, role: str | None) -> FlaskClient:
    """A client logged in as the user of ``role`` (anonymous for None)."""
    client = app.test_client()
    if role is not None:
        response = login(client, role)
        assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def clients(seeded_app: Flask) -> dict[str | None, FlaskClient]:
    """One logged-in client per role, and an anonymous one under None."""
    return {role: client_as(seeded_app, role) for role in (None, *ROLES)}


# -- login, logout, sessions -----------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_login_with_next(app: Flask) -> None:
    response = app.test_client().get("/admin/prompts/?q=x")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/?next=")
    assert "prompts" in response.headers["Location"]


def test_login_with_right_password_opens_session_and_redirects_to_next(app: Flask) -> None:
    client = app.test_client()
    response = post(
        client, "/admin/login/", {"name": "editor", "password": PASSWORD, "next": "/admin/prompts/"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/prompts/"
    page = client.get("/admin/prompts/")
    assert page.status_code == 200
    assert 'id="current-user"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "password"),
    [("editor", "wrong password"), ("nobody", PASSWORD), ("editor", ""), ("", PASSWORD)],
)
def test_wrong_credentials_do_not_log_in(app: Flask, name: str, password: str) -> None:
    client = app.test_client()
    response = post(client, "/admin/login/", {"name": name, "password": password})
    assert response.status_code == 401
    assert "Wrong user name or password" in response.get_data(as_text=True)
    assert client.get("/admin/prompts/").status_code == 302


def test_disabled_user_cannot_log_in_and_loses_open_sessions(app: Flask) -> None:
    reg: Registry = app.extensions["registry"]
    client = client_as(app, "editor")
    assert client.get("/admin/prompts/").status_code == 200
    users.disable_user(reg, "editor")
    assert client.get("/admin/prompts/").status_code == 302
    assert login(app.test_client(), "editor").status_code == 401


def test_login_refuses_an_offsite_next_url(app: Flask) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client = app.test_client()
        response = post(
            client, "/admin/login/", {"name": "viewer", "password": PASSWORD, "next": target}
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/"


def test_repeated_failures_are_throttled(app: Flask) -> None:
    client = app.test_client()
    for _ in range(10):
        assert (
            post(client, "/admin/login/", {"name": "admin", "password": "nope-nope"}).status_code
            == 401
        )
    blocked = post(client, "/admin/login/", {"name": "admin", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.get_data(as_text=True)
    # other accounts are not locked out by someone guessing at "admin"
    assert login(client, "viewer").status_code == 302


def test_logout_ends_the_session_even_for_a_copied_cookie(app: Flask) -> None:
    client = client_as(app, "editor")
    cookie = client.get_cookie("registry_session")
    assert cookie is not None
    response = post(client, "/admin/logout/")
    assert response.status_code == 302
    assert client.get("/admin/prompts/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("registry_session", cookie.value)
    assert replay.get("/admin/prompts/").status_code == 302


def test_logout_needs_a_post_with_csrf(app: Flask) -> None:
    client = client_as(app, "editor")
    assert client.get("/admin/logout/").status_code == 200  # a confirmation page, no logout
    assert client.post("/admin/logout/").status_code == 400
    assert client.get("/admin/prompts/").status_code == 200


def test_password_change_ends_sessions(app: Flask) -> None:
    reg: Registry = app.extensions["registry"]
    client = client_as(app, "viewer")
    users.set_password(reg, "viewer", "another password")
    assert client.get("/admin/prompts/").status_code == 302
    assert login(app.test_client(), "viewer", "another password").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(app: Flask) -> None:
    response = login(app.test_client(), "viewer")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("registry_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/admin/login/", base_url="https://localhost")
    token = _TOKEN.search(page.get_data(as_text=True))
    assert token
    response = client.post(
        "/admin/login/",
        data={"name": "viewer", "password": PASSWORD, "csrf_token": token.group(1)},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/admin/login/"},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_login_page_tells_how_to_create_the_first_admin(sqlite_reg: Registry) -> None:
    page = make_app(sqlite_reg).test_client().get("/admin/login/").get_data(as_text=True)
    assert "users create NAME --role admin" in page


# -- secret key --------------------------------------------------------------------------------


def test_secret_key_is_generated_once_beside_the_database(
    sqlite_reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGISTRY_SECRET_KEY", raising=False)
    first = create_app({"REGISTRY": sqlite_reg})
    second = create_app({"REGISTRY": sqlite_reg})
    db_file = Path(sqlite_reg.db.url.database or "")
    key_file = db_file.with_name(db_file.name + ".secret-key")
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.secret_key == second.secret_key == key_file.read_text().strip()
    assert len(str(first.secret_key)) >= 40


def test_secret_key_from_config_or_environment(
    sqlite_reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_SECRET_KEY", "from-the-environment")
    assert create_app({"REGISTRY": sqlite_reg}).secret_key == "from-the-environment"
    assert (
        create_app({"REGISTRY": sqlite_reg, "SECRET_KEY": "from-config"}).secret_key
        == "from-config"
    )


# -- CSRF -----------------------------------------------------------------------------------------


def test_no_write_without_a_csrf_token(
    clients: dict[str | None, FlaskClient], seeded_app: Flask
) -> None:
    reg: Registry = seeded_app.extensions["registry"]
    admin = clients["admin"]
    before = reg.get("summarize", label="latest").version
    writes = [
        (
            "/admin/prompts/summarize/-/edit",
            {"message": "x", "messages-0-role": "user", "messages-0-content": "hi"},
        ),
        ("/admin/prompts/new", {"name": "fresh", "message": "x", "messages-0-content": "hi"}),
        (
            "/admin/labels/summarize/-/move",
            {"label": "staging", "version": "1", "expected_version": "0"},
        ),
        ("/admin/labels/summarize/-/rollback", {"label": "production"}),
        (
            "/admin/users/create",
            {"name": "mallory", "password": PASSWORD, "password2": PASSWORD, "role": "admin"},
        ),
        ("/admin/users/viewer/role", {"role": "admin"}),
        ("/admin/logout/", {}),
    ]
    for url, data in writes:
        for token in (None, "forged-token"):
            payload = dict(data)
            if token:
                payload["csrf_token"] = token
            response = admin.post(url, data=payload)
            assert response.status_code == 400, url
            assert "could not be accepted" in response.get_data(as_text=True)
    assert reg.get("summarize", label="latest").version == before
    assert "qa" not in reg.prompt("summarize").labels
    assert [u.name for u in users.list_users(reg)] == sorted(ROLES)
    assert users.get_user(reg, "viewer").role == "viewer"
    assert admin.get("/admin/prompts/").status_code == 200  # still logged in


def test_login_form_needs_csrf_too(app: Flask) -> None:
    response = app.test_client().post("/admin/login/", data={"name": "admin", "password": PASSWORD})
    assert response.status_code == 400


def test_csrf_token_from_another_session_is_refused(app: Flask) -> None:
    reg: Registry = app.extensions["registry"]
    reg.create_version("p", **simple_version())
    other = client_as(app, "viewer")
    stolen = csrf_token(other)
    editor = client_as(app, "editor")
    response = editor.post(
        "/admin/labels/p/-/move",
        data={"label": "staging", "version": "1", "expected_version": "0", "csrf_token": stolen},
    )
    assert response.status_code == 400
    assert "staging" not in reg.prompt("p").labels


def test_api_blueprint_is_exempt_from_csrf(sqlite_reg: Registry) -> None:
    from flask import Blueprint

    from registry.web.admin import init_app

    flask_app = Flask("exempt-test")
    flask_app.config.update(TESTING=True, SECRET_KEY="k", REGISTRY=sqlite_reg)
    flask_app.extensions["registry"] = sqlite_reg
    api = Blueprint("api_v1", __name__, url_prefix="/api/v1")
    nested = Blueprint("keys", __name__, url_prefix="/keys")

    @api.post("/ping")
    def ping() -> str:
        return "pong"

    @nested.post("/ping")
    def nested_ping() -> str:
        return "nested pong"

    api.register_blueprint(nested)
    flask_app.register_blueprint(api)

    @flask_app.post("/not-api")
    def not_api() -> str:
        return "should need a token"

    init_app(flask_app)
    client = flask_app.test_client()
    assert client.post("/api/v1/ping").get_data(as_text=True) == "pong"
    assert client.post("/api/v1/keys/ping").get_data(as_text=True) == "nested pong"
    assert client.post("/not-api").status_code == 400


# -- roles: every view for every role ---------------------------------------------------------

READ_PAGES = [
    "/admin/",
    "/admin/prompts/",
    "/admin/prompts/?q=support&tag=support",
    "/admin/prompts/support/support-answer/-/",
    "/admin/prompts/support/support-answer/-/v/1",
    "/admin/prompts/support/support-answer/-/diff?old=1&new=1",
    "/admin/labels/support/support-answer/-/history",
    "/admin/runs/",
    "/admin/audit/",
]
EDITOR_PAGES = [
    "/admin/prompts/new",
    "/admin/prompts/summarize/-/edit",
    "/admin/playground/",
    "/admin/playground/?name=summarize",
]
ADMIN_PAGES = ["/admin/users/"]


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_page_for_every_role(
    clients: dict[str | None, FlaskClient], role: str | None
) -> None:
    client = clients[role]
    rank = -1 if role is None else ROLES.index(role)
    for pages, needed in ((READ_PAGES, 0), (EDITOR_PAGES, 1), (ADMIN_PAGES, 3)):
        for url in pages:
            response = client.get(url)
            if role is None:
                assert response.status_code == 302, url
                assert "/admin/login/" in response.headers["Location"]
            elif rank >= needed:
                assert response.status_code == 200, (url, response.get_data(as_text=True)[-500:])
            else:
                assert response.status_code == 403, url
                body = response.get_data(as_text=True)
                assert "Not allowed (403)" in body
                assert f"logged in as <strong>{role}</strong>" in body


@pytest.mark.parametrize("role", ROLES)
def test_menu_shows_only_what_the_role_may_open(
    clients: dict[str | None, FlaskClient], role: str
) -> None:
    home = clients[role].get("/admin/").get_data(as_text=True)
    assert ("/admin/users/" in home) is (role == "admin")
    assert ("/admin/playground/" in home) is (role != "viewer")
    assert "/admin/prompts/" in home


def test_viewer_cannot_create_a_version(
    clients: dict[str | None, FlaskClient], seeded_app: Flask
) -> None:
    reg: Registry = seeded_app.extensions["registry"]
    before = reg.get("summarize", label="latest").version
    response = post(
        clients["viewer"],
        "/admin/prompts/summarize/-/edit",
        {
            "system": "changed",
            "messages-0-role": "user",
            "messages-0-content": "{{ text }}",
            "settings": "model: claude-sonnet-4-6\nmax_tokens: 100\n",
            "variables": "text: {type: string}\n",
            "message": "viewer edit",
            "base_version": str(before),
        },
    )
    assert response.status_code == 403
    assert reg.get("summarize", label="latest").version == before
    new = post(clients["viewer"], "/admin/prompts/new", {"name": "by-viewer", "message": "x"})
    assert new.status_code == 403
    with pytest.raises(LookupError):
        reg.get("by-viewer", label="latest")


def test_viewer_cannot_move_any_label(
    clients: dict[str | None, FlaskClient], seeded_app: Flask
) -> None:
    reg: Registry = seeded_app.extensions["registry"]
    response = post(
        clients["viewer"],
        "/admin/labels/summarize/-/move",
        {"label": "qa", "version": "1", "expected_version": "0"},
    )
    assert response.status_code == 403
    assert "qa" not in reg.prompt("summarize").labels


def test_editor_moves_staging_but_not_production(
    clients: dict[str | None, FlaskClient], seeded_app: Flask
) -> None:
    reg: Registry = seeded_app.extensions["registry"]
    reg.create_version("p", **simple_version(labels=["production"]))
    reg.create_version("p", **simple_version(system="v2"))
    editor = clients["editor"]
    ok = post(
        editor,
        "/admin/labels/p/-/move",
        {"label": "staging", "version": "2", "expected_version": "0", "reason": "try"},
    )
    assert ok.status_code == 303
    assert reg.prompt("p").labels["staging"] == 2
    refused = post(
        editor,
        "/admin/labels/p/-/move",
        {"label": "production", "version": "2", "expected_version": "1"},
    )
    assert refused.status_code == 403
    assert "publisher" in refused.get_data(as_text=True)
    assert reg.prompt("p").labels["production"] == 1
    rollback = post(editor, "/admin/labels/p/-/rollback", {"label": "production"})
    assert rollback.status_code == 403
    assert reg.prompt("p").labels["production"] == 1


def test_publisher_moves_production(
    clients: dict[str | None, FlaskClient], seeded_app: Flask
) -> None:
    reg: Registry = seeded_app.extensions["registry"]
    reg.create_version("p", **simple_version(labels=["production"]))
    reg.create_version("p", **simple_version(system="v2"))
    response = post(
        clients["publisher"],
        "/admin/labels/p/-/move",
        {"label": "production", "version": "2", "expected_version": "1", "reason": "ship it"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "production of p now points at version 2" in response.get_data(as_text=True)
    assert reg.get("p").version == 2
    event = reg.label_history("p", "production")[-1]
    assert (event.actor, event.reason, event.from_version, event.to_version) == (
        "publisher",
        "ship it",
        1,
        2,
    )


def test_only_admins_override_the_suite_gate(
    clients: dict[str | None, FlaskClient], seeded_app: Flask
) -> None:
    from registry.suites import create_case

    reg: Registry = seeded_app.extensions["registry"]
    reg.create_version("gated", **simple_version())
    create_case(
        reg,
        "gated",
        "smoke",
        variables={"question": "hi"},
        assertions=[{"type": "contains", "value": "x"}],
    )
    form = {
        "label": "production",
        "version": "1",
        "expected_version": "0",
        "reason": "no suite run",
    }
    page = clients["publisher"].get("/admin/prompts/gated/-/v/1").get_data(as_text=True)
    assert "gate-problem" in page  # the page warns before anyone tries
    assert 'name="override"' in clients["admin"].get("/admin/prompts/gated/-/v/1").get_data(
        as_text=True
    )
    assert 'name="override"' not in clients["publisher"].get("/admin/prompts/gated/-/v/1").get_data(
        as_text=True
    )
    refused = post(clients["publisher"], "/admin/labels/gated/-/move", form, follow_redirects=True)
    assert "Not moved: cannot move &#39;production&#39;" in refused.get_data(as_text=True)
    assert "production" not in reg.prompt("gated").labels
    sneaky = post(clients["publisher"], "/admin/labels/gated/-/move", {**form, "override": "1"})
    assert sneaky.status_code == 403
    no_reason = post(
        clients["admin"],
        "/admin/labels/gated/-/move",
        {**form, "override": "1", "reason": ""},
        follow_redirects=True,
    )
    assert "needs a reason" in no_reason.get_data(as_text=True)
    assert "production" not in reg.prompt("gated").labels
    done = post(
        clients["admin"],
        "/admin/labels/gated/-/move",
        {**form, "override": "1"},
        follow_redirects=True,
    )
    assert "now points at version 1" in done.get_data(as_text=True)
    assert reg.label_history("gated", "production")[-1].kind == "override"


# -- users page ------------------------------------------------------------------------------------


def test_admin_manages_users(clients: dict[str | None, FlaskClient], seeded_app: Flask) -> None:
    reg: Registry = seeded_app.extensions["registry"]
    admin = clients["admin"]
    created = post(
        admin,
        "/admin/users/create",
        {"name": "ana", "password": PASSWORD, "password2": PASSWORD, "role": "editor"},
        follow_redirects=True,
    )
    assert "User ana created with role editor" in created.get_data(as_text=True)
    assert users.get_user(reg, "ana").role == "editor"
    mismatch = post(
        admin,
        "/admin/users/create",
        {"name": "bo", "password": PASSWORD, "password2": "x", "role": "viewer"},
        follow_redirects=True,
    )
    assert "The two passwords differ" in mismatch.get_data(as_text=True)
    post(admin, "/admin/users/ana/role", {"role": "publisher"})
    assert users.get_user(reg, "ana").role == "publisher"
    post(admin, "/admin/users/ana/active", {"active": "0"})
    assert not users.get_user(reg, "ana").active
    selfdemote = post(admin, "/admin/users/admin/role", {"role": "viewer"}, follow_redirects=True)
    assert "cannot remove your own admin role" in selfdemote.get_data(as_text=True)
    assert users.get_user(reg, "admin").role == "admin"
    assert post(clients["publisher"], "/admin/users/ana/role", {"role": "admin"}).status_code == 403
    assert users.get_user(reg, "ana").role == "publisher"


# -- capability pages ---------------------------------------------------------------------------------


def test_a_capability_registers_its_page(sqlite_reg: Registry) -> None:
    from registry.web.admin import get_admin
    from registry.web.admin.base import expose
    from registry.web.admin.security import ProtectedView

    calls: list[str] = []

    class HelloView(ProtectedView):
        required_role = "publisher"

        @expose("/")
        def index(self) -> str:
            return "hello from an extension"

    def register(admin: Any, app: Flask) -> None:
        calls.append(app.name)
        admin.add_view(HelloView(name="Hello", endpoint="hello", url="hello"))

    users.create_user(sqlite_reg, "pub", PASSWORD, role="publisher")
    users.create_user(sqlite_reg, "ed", PASSWORD, role="editor")
    app = make_app(sqlite_reg)
    register(get_admin(app), app)  # as registry.web.admin.views does for each capability
    assert calls == [app.name]
    assert (
        client_as(app, "pub").get("/admin/hello/").get_data(as_text=True)
        == "hello from an extension"
    )
    assert client_as(app, "ed").get("/admin/hello/").status_code == 403
    assert app.test_client().get("/admin/hello/").status_code == 302


def test_a_registry_error_escaping_a_page_is_a_4xx_page_not_a_500(sqlite_reg: Registry) -> None:
    from registry.web.admin import get_admin
    from registry.web.admin.base import expose
    from registry.web.admin.security import ProtectedView

    class LooseView(ProtectedView):
        @expose("/")
        def index(self) -> str:
            return "index"

        @expose("/<path:name>/")
        def show(self, name: str) -> str:
            return sqlite_reg.get(name, version=1).name  # lets NotFound/ValidationError escape

    users.create_user(sqlite_reg, "viewer", PASSWORD, role="viewer")
    app = make_app(sqlite_reg, PROPAGATE_EXCEPTIONS=False)
    get_admin(app).add_view(LooseView(name="Loose", endpoint="loose", url="loose"))
    client = client_as(app, "viewer")
    missing = client.get("/admin/loose/nope/")
    assert missing.status_code == 404
    assert 'id="registry-error"' in missing.get_data(as_text=True)
    bad = client.get("/admin/loose/bad%20name!/")
    assert bad.status_code == 422
    assert "invalid prompt name" in bad.get_data(as_text=True)
    assert "Traceback" not in bad.get_data(as_text=True)
    # the JSON API keeps its own error bodies
    api = app.test_client().get("/api/v1/prompts/bad%20name!")
    assert api.is_json and "error" in api.get_json()


def test_views_are_built_per_app(sqlite_reg: Registry) -> None:
    first, second = make_app(sqlite_reg), make_app(sqlite_reg)
    assert first.extensions["registry_admin"] is not second.extensions["registry_admin"]


def test_no_password_is_stored_in_clear(sqlite_reg: Registry) -> None:
    import sqlalchemy as sa

    users.create_user(sqlite_reg, "zed", "plain text secret", role="viewer")
    with sqlite_reg.db.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT password_hash FROM users WHERE name = 'zed'")
        ).scalar_one()
    assert "plain text secret" not in stored
    assert stored.startswith("pbkdf2:sha256")


def test_session_token_is_stored_hashed(app: Flask) -> None:
    import sqlalchemy as sa

    reg: Registry = app.extensions["registry"]
    client = client_as(app, "viewer")
    with client.session_transaction() as session:
        token = session["registry_login"]
    with reg.db.engine.connect() as conn:
        stored = list(conn.execute(sa.text("SELECT token_hash FROM user_sessions")).scalars())
    assert token not in stored
    assert len(stored) == 1


def test_admin_pages_are_not_framed_or_cached(app: Flask) -> None:
    response = client_as(app, "viewer").get("/admin/prompts/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
