"""API keys: created once, stored hashed, scoped, revocable, last use; CLI and admin page."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from registry import AuthenticationError, ConflictError, NotFound, Registry, ValidationError, users
from registry import api_keys as keys_module
from registry.api_keys import (
    ApiKeyInfo,
    authenticate_api_key,
    create_api_key,
    get_api_key,
    hash_token,
    list_api_keys,
    require_scope,
    revoke_api_key,
)
from registry.cli import main
from registry.errors import PermissionDenied
from registry.models.api_keys import ApiKeyRow
from tests.test_admin import PASSWORD, csrf_token, login, make_app, post


def test_key_is_returned_once_and_only_its_hash_is_stored(reg: Registry) -> None:
    token, info = create_api_key(reg, "checkout-app", "run", created_by="ana")
    assert re.fullmatch(r"prk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)
    assert token.startswith(info.prefix) and len(info.prefix) == 12
    assert (info.name, info.scope, info.created_by, info.active) == (
        "checkout-app",
        "run",
        "ana",
        True,
    )
    with reg.db.engine.connect() as conn:
        row = conn.execute(sa.select(ApiKeyRow.__table__)).one()
    assert row.key_hash == hash_token(token)
    assert token not in " ".join(str(v) for v in row)
    assert authenticate_api_key(reg, token).id == info.id
    other, _ = create_api_key(reg, "other-app", "read")
    assert other != token


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "API key is required"),
        ("", "API key is required"),
        ("sk-ant-somethingelse", "not a registry key"),
        ("prk_00000000_" + "a" * 43, "no such key"),
        ("prk_" + "x" * 300, "not a registry key"),
    ],
)
def test_bad_tokens_are_refused(sqlite_reg: Registry, token: str | None, message: str) -> None:
    create_api_key(sqlite_reg, "app", "read")
    with pytest.raises(AuthenticationError, match=message):
        authenticate_api_key(sqlite_reg, token)


def test_revoked_key_stops_working_at_once(reg: Registry) -> None:
    token, info = create_api_key(reg, "app", "write")
    assert authenticate_api_key(reg, token).active  # now in the authentication cache
    revoked = revoke_api_key(reg, "app", actor="bob")
    assert not revoked.active and revoked.revoked_by == "bob" and revoked.revoked_at is not None
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate_api_key(reg, token)
    again = revoke_api_key(reg, info.id, actor="carol")  # idempotent, keeps the first revocation
    assert again.revoked_by == "bob" and again.revoked_at == revoked.revoked_at


def test_revocation_in_another_process_is_honoured_after_the_cache_ttl(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "AUTH_CACHE_TTL", 0.0)
    server, admin = Registry(sqlite_url), Registry(sqlite_url)
    try:
        token, _ = create_api_key(admin, "app", "read")
        authenticate_api_key(server, token)
        revoke_api_key(admin, "app")
        with pytest.raises(AuthenticationError, match="revoked"):
            authenticate_api_key(server, token)
    finally:
        server.close()
        admin.close()


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [("read", {"read"}), ("run", {"read", "run"}), ("write", {"read", "run", "write"})],
)
def test_scopes_are_ordered(sqlite_reg: Registry, scope: str, allowed: set[str]) -> None:
    _, info = create_api_key(sqlite_reg, f"k-{scope}", scope)
    for wanted in ("read", "run", "write"):
        assert info.allows(wanted) == (wanted in allowed)
        if wanted in allowed:
            require_scope(info, wanted)
        else:
            with pytest.raises(PermissionDenied, match=f"scope {wanted!r}"):
                require_scope(info, wanted)


@pytest.mark.parametrize(
    ("name", "scope", "error"),
    [
        ("app", "admin", ValidationError),
        ("9lives", "read", ValidationError),
        ("", "read", ValidationError),
        ("has space", "read", ValidationError),
        ("x" * 101, "read", ValidationError),
    ],
)
def test_invalid_names_and_scopes(
    sqlite_reg: Registry, name: str, scope: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        create_api_key(sqlite_reg, name, scope)
    assert list_api_keys(sqlite_reg) == []


def test_names_are_unique_even_after_revocation(reg: Registry) -> None:
    create_api_key(reg, "app", "read")
    with pytest.raises(ConflictError, match="active key"):
        create_api_key(reg, "app", "write")
    revoke_api_key(reg, "app")
    with pytest.raises(ConflictError, match="revoked key"):
        create_api_key(reg, "app", "write")
    create_api_key(reg, "app-2", "write")
    assert [k.name for k in list_api_keys(reg)] == ["app", "app-2"]
    assert [k.name for k in list_api_keys(reg, include_revoked=False)] == ["app-2"]


def test_unknown_key_to_revoke(sqlite_reg: Registry) -> None:
    with pytest.raises(NotFound, match="apikeys list"):
        revoke_api_key(sqlite_reg, "ghost")
    with pytest.raises(NotFound):
        get_api_key(sqlite_reg, 42)


def test_last_use_is_written_at_most_once_a_minute(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, info = create_api_key(reg, "app", "read")
    assert get_api_key(reg, info.id).last_used_at is None
    authenticate_api_key(reg, token)
    first = get_api_key(reg, info.id).last_used_at
    assert first is not None
    statements: list[str] = []
    sa.event.listen(reg.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(5):
        authenticate_api_key(reg, token)
    assert not any(s.lstrip().upper().startswith("UPDATE") for s in statements)
    assert get_api_key(reg, info.id).last_used_at == first
    # a minute later (for this process and for the database), the next use is recorded
    with reg.db.transaction() as s:
        s.execute(
            sa.update(ApiKeyRow)
            .where(ApiKeyRow.id == info.id)
            .values(last_used_at=first - timedelta(minutes=2))
        )
    monkeypatch.setattr(keys_module, "LAST_USED_RESOLUTION", 0.0)
    authenticate_api_key(reg, token)
    assert get_api_key(reg, info.id).last_used_at > first - timedelta(minutes=2)


def test_info_to_dict_never_holds_the_key(sqlite_reg: Registry) -> None:
    token, info = create_api_key(sqlite_reg, "app", "read")
    data = info.to_dict()
    assert token not in json.dumps(data)
    assert set(data) == {
        "id",
        "name",
        "prefix",
        "scope",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
        "active",
    }
    assert isinstance(info, ApiKeyInfo)


# -- CLI ----------------------------------------------------------------------------------


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    db = ["--database", f"sqlite:///{tmp_path / 'cli.db'}"]
    created = runner.invoke(main, [*db, "apikeys", "create", "checkout", "--scope", "run"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith("prk_")
    assert "shown only once" in created.stderr
    listing = json.loads(runner.invoke(main, [*db, "apikeys", "list", "--json"]).stdout)
    assert [(k["name"], k["scope"], k["active"]) for k in listing] == [("checkout", "run", True)]
    assert token not in json.dumps(listing)
    table = runner.invoke(main, [*db, "apikeys", "list"])
    assert table.exit_code == 0 and "checkout" in table.output and token not in table.output
    revoked = runner.invoke(main, [*db, "apikeys", "revoke", "checkout"])
    assert revoked.exit_code == 0 and "revoked key" in revoked.output
    twice = runner.invoke(main, [*db, "apikeys", "revoke", str(listing[0]["id"])])
    assert twice.exit_code == 0 and "already revoked" in twice.output
    active = json.loads(runner.invoke(main, [*db, "apikeys", "list", "--active", "--json"]).stdout)
    assert active == []
    reg = Registry(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        with pytest.raises(AuthenticationError):
            authenticate_api_key(reg, token)
    finally:
        reg.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["apikeys", "create", "x", "--scope", "admin"], "Invalid value for '--scope'"),
        (["apikeys", "create", "1bad"], "invalid key name"),
        (["apikeys", "revoke", "ghost"], "no API key 'ghost'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["--database", f"sqlite:///{tmp_path / 'e.db'}", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


# -- admin page ---------------------------------------------------------------------------


@pytest.fixture
def admin_app(sqlite_reg: Registry, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")
    users.create_user(sqlite_reg, "root", PASSWORD, role="admin")
    users.create_user(sqlite_reg, "pub", PASSWORD, role="publisher")
    return make_app(sqlite_reg)


def test_admin_creates_lists_and_revokes_keys(admin_app: Flask, sqlite_reg: Registry) -> None:
    client = admin_app.test_client()
    assert login(client, "root").status_code == 302
    page = client.get("/admin/api-keys/")
    assert page.status_code == 200 and "No API keys yet" in page.get_data(as_text=True)
    created = post(client, "/admin/api-keys/create", {"name": "web-shop", "scope": "write"})
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    html = created.get_data(as_text=True)
    token = re.search(r'id="new-api-key-value">(prk_[^<]+)<', html)
    assert token, html
    info = authenticate_api_key(sqlite_reg, token.group(1))
    assert (info.name, info.scope, info.created_by) == ("web-shop", "write", "root")
    listing = client.get("/admin/api-keys/").get_data(as_text=True)
    assert "web-shop" in listing and token.group(1) not in listing
    duplicate = post(
        client,
        "/admin/api-keys/create",
        {"name": "web-shop", "scope": "read"},
        follow_redirects=True,
    )
    assert "already exists" in duplicate.get_data(as_text=True)
    revoked = post(client, f"/admin/api-keys/{info.id}/revoke", follow_redirects=True)
    assert "revoked" in revoked.get_data(as_text=True)
    assert get_api_key(sqlite_reg, info.id).revoked_by == "root"
    with pytest.raises(AuthenticationError):
        authenticate_api_key(sqlite_reg, token.group(1))


def test_only_admins_manage_keys(admin_app: Flask, sqlite_reg: Registry) -> None:
    anonymous = admin_app.test_client()
    assert anonymous.get("/admin/api-keys/").status_code == 302
    client = admin_app.test_client()
    assert login(client, "pub").status_code == 302
    assert client.get("/admin/api-keys/").status_code == 403
    token = csrf_token(client)
    refused = client.post(
        "/admin/api-keys/create", data={"name": "x", "scope": "read", "csrf_token": token}
    )
    assert refused.status_code == 403
    assert list_api_keys(sqlite_reg) == []
