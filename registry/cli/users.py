"""``users create|list|set-role|set-password|disable|enable``: accounts of the web admin."""

from __future__ import annotations

import os
import sys

import click

from .base import State, pass_state
from .output import print_json, print_table

#: scripts give the password in this variable instead of typing it
PASSWORD_ENV = "REGISTRY_USER_PASSWORD"
ROLE_CHOICES = click.Choice(["viewer", "editor", "publisher", "admin"])


def _password() -> str:
    """The password from ``$REGISTRY_USER_PASSWORD``, else prompted twice (hidden)."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    # stdin replaced inside the process (click's CliRunner) is typed input too
    if not sys.stdin.isatty() and sys.stdin is sys.__stdin__:
        raise click.UsageError(
            f"no password: set {PASSWORD_ENV} when there is no terminal to type it in"
        )
    value: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password"
    )
    return value


@click.group()
def users() -> None:
    """Accounts of the web admin (roles: viewer < editor < publisher < admin)."""


@users.command("create")
@click.argument("name")
@click.option(
    "--role", type=ROLE_CHOICES, default="viewer", show_default=True, help="Role of the new user."
)
@pass_state
def create(state: State, name: str, role: str) -> None:
    """Create user NAME; the password is prompted twice, or read from $REGISTRY_USER_PASSWORD."""
    from ..users import check_user_name, create_user

    check_user_name(name)  # before the password prompt
    password = _password()
    user = create_user(state.registry, name, password, role=role)
    click.echo(f"created user {user.name} with role {user.role}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_(state: State, as_json: bool) -> None:
    """List every user with role, status and last login."""
    from ..users import list_users

    found = list_users(state.registry)
    if as_json:
        print_json(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "active": u.active,
                    "created_at": u.created_at.isoformat(),
                    "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                }
                for u in found
            ]
        )
        return
    if not found:
        click.echo("no users yet: create one with `prompt-registry users create NAME --role admin`")
        return
    print_table(
        ("name", "role", "status", "last login"),
        (
            (
                u.name,
                u.role,
                "active" if u.active else "disabled",
                u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
            )
            for u in found
        ),
    )


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICES)
@pass_state
def set_role_(state: State, name: str, role: str) -> None:
    """Give user NAME the role ROLE."""
    from ..users import set_role

    user = set_role(state.registry, name, role)
    click.echo(f"{user.name} is now {user.role}")


@users.command("set-password")
@click.argument("name")
@pass_state
def set_password_(state: State, name: str) -> None:
    """Set a new password for NAME (prompted or $REGISTRY_USER_PASSWORD); ends their sessions."""
    from ..users import set_password

    password = _password()
    set_password(state.registry, name, password)
    click.echo(f"password of {name} changed")


@users.command("disable")
@click.argument("name")
@pass_state
def disable(state: State, name: str) -> None:
    """Disable user NAME: they can no longer log in and their sessions end."""
    from ..users import disable_user

    disable_user(state.registry, name)
    click.echo(f"{name} is disabled")


@users.command("enable")
@click.argument("name")
@pass_state
def enable(state: State, name: str) -> None:
    """Re-enable user NAME."""
    from ..users import enable_user

    enable_user(state.registry, name)
    click.echo(f"{name} is enabled")


def register(group: click.Group) -> None:
    """Add ``users`` to the main group."""
    group.add_command(users)
