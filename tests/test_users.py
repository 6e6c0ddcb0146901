"""Accounts: the users service on both engines, and ``manage.py users``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from registry import ConflictError, NotFound, Registry, ValidationError, users
from registry.cli import main

PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


def test_create_and_authenticate(reg: Registry) -> None:
    created = users.create_user(reg, "ana", PASSWORD, role="editor")
    assert (created.name, created.role, created.active, created.last_login_at) == (
        "ana",
        "editor",
        True,
        None,
    )
    user = users.authenticate(reg, "ana", PASSWORD)
    assert user is not None and user.role == "editor"
    assert user.last_login_at is not None
    assert users.get_user(reg, "ana").last_login_at is not None
    assert users.authenticate(reg, "ana", "wrong password") is None
    assert users.authenticate(reg, "bob", PASSWORD) is None


def test_default_hash_is_scrypt(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "PASSWORD_METHOD", "scrypt")
    users.create_user(reg, "slow", PASSWORD)
    import sqlalchemy as sa

    with reg.db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("scrypt:") and PASSWORD not in stored
    assert users.authenticate(reg, "slow", PASSWORD) is not None


def test_names_roles_and_passwords_are_checked(reg: Registry) -> None:
    with pytest.raises(ValidationError, match="invalid user name"):
        users.create_user(reg, "bad name", PASSWORD)
    with pytest.raises(ValidationError, match="unknown role 'owner'"):
        users.create_user(reg, "ana", PASSWORD, role="owner")
    with pytest.raises(ValidationError, match="at least 8 characters"):
        users.create_user(reg, "ana", "short")
    users.create_user(reg, "ana", PASSWORD)
    with pytest.raises(ConflictError, match="already exists"):
        users.create_user(reg, "ana", PASSWORD)
    with pytest.raises(NotFound):
        users.set_role(reg, "nobody", "admin")


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "editor", False),
        ("editor", "editor", True),
        ("editor", "publisher", False),
        ("publisher", "editor", True),
        ("publisher", "admin", False),
        ("admin", "publisher", True),
        ("owner", "viewer", False),
    ],
)
def test_role_order(role: str, required: str, allowed: bool) -> None:
    assert users.role_at_least(role, required) is allowed


def test_disabled_users_cannot_log_in_and_lose_sessions(reg: Registry) -> None:
    user = users.create_user(reg, "ana", PASSWORD, role="editor")
    token = users.start_session(reg, user)
    assert users.session_user(reg, token) == user
    users.disable_user(reg, "ana")
    assert users.session_user(reg, token) is None
    assert users.authenticate(reg, "ana", PASSWORD) is None
    users.enable_user(reg, "ana")
    assert users.authenticate(reg, "ana", PASSWORD) is not None


def test_sessions_end_on_logout_expiry_and_password_change(reg: Registry) -> None:
    user = users.create_user(reg, "ana", PASSWORD)
    kept = users.start_session(reg, user)
    ended = users.start_session(reg, user)
    users.end_session(reg, ended)
    assert users.session_user(reg, ended) is None
    assert users.session_user(reg, kept) is not None
    expired = users.start_session(reg, user, lifetime=timedelta(seconds=-1))
    assert users.session_user(reg, expired) is None
    assert users.session_user(reg, "not-a-token") is None
    users.set_password(reg, "ana", "a brand new password")
    assert users.session_user(reg, kept) is None
    assert users.authenticate(reg, "ana", PASSWORD) is None
    assert users.authenticate(reg, "ana", "a brand new password") is not None


def test_role_change_applies_to_open_sessions(reg: Registry) -> None:
    user = users.create_user(reg, "ana", PASSWORD, role="viewer")
    token = users.start_session(reg, user)
    users.set_role(reg, "ana", "publisher")
    found = users.session_user(reg, token)
    assert found is not None and found.role == "publisher" and found.can("editor")


def test_list_and_count(reg: Registry) -> None:
    assert users.count_users(reg) == 0
    users.create_user(reg, "zoe", PASSWORD)
    users.create_user(reg, "adam", PASSWORD, role="admin")
    assert [u.name for u in users.list_users(reg)] == ["adam", "zoe"]
    assert users.count_users(reg) == 2


# -- CLI ---------------------------------------------------------------------------------------


def cli(db_url: str, *args: str, **kw: Any) -> Result:
    return CliRunner().invoke(main, ["--database", db_url, *args], catch_exceptions=False, **kw)


def test_cli_create_prompts_twice(sqlite_url: str) -> None:
    result = cli(
        sqlite_url, "users", "create", "ana", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "created user ana with role admin" in result.output
    with Registry(sqlite_url) as reg:
        assert users.authenticate(reg, "ana", PASSWORD) is not None


def test_cli_create_refuses_mismatched_or_short_passwords(sqlite_url: str) -> None:
    mismatch = cli(sqlite_url, "users", "create", "ana", input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0
    short = cli(sqlite_url, "users", "create", "ana", env={"REGISTRY_USER_PASSWORD": "short"})
    assert short.exit_code == 1
    assert "at least 8 characters" in short.output
    with Registry(sqlite_url) as reg:
        assert users.count_users(reg) == 0


def test_cli_password_from_environment_and_other_commands(sqlite_url: str) -> None:
    env = {"REGISTRY_USER_PASSWORD": PASSWORD}
    assert cli(sqlite_url, "users", "create", "bob", "--role", "editor", env=env).exit_code == 0
    listed = cli(sqlite_url, "users", "list")
    assert "bob" in listed.output and "editor" in listed.output and "never" in listed.output
    assert cli(sqlite_url, "users", "set-role", "bob", "publisher").exit_code == 0
    assert cli(sqlite_url, "users", "disable", "bob").exit_code == 0
    as_json = cli(sqlite_url, "users", "list", "--json")
    assert '"role": "publisher"' in as_json.output and '"active": false' in as_json.output
    assert cli(sqlite_url, "users", "enable", "bob").exit_code == 0
    new_env = {"REGISTRY_USER_PASSWORD": "the next password"}
    assert cli(sqlite_url, "users", "set-password", "bob", env=new_env).exit_code == 0
    with Registry(sqlite_url) as reg:
        assert users.authenticate(reg, "bob", "the next password") is not None
    missing = cli(sqlite_url, "users", "set-role", "nobody", "admin")
    assert missing.exit_code == 1
    assert "user 'nobody' does not exist" in missing.output
    bad_role = cli(sqlite_url, "users", "set-role", "bob", "owner")
    assert bad_role.exit_code == 2


def test_cli_users_commands_have_help() -> None:
    group = main.commands["users"]
    assert group.help
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, name
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, (name, param.name)
