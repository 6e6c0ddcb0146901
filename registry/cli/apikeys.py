"""API key commands: ``apikeys create|list|revoke``."""

from __future__ import annotations

import getpass

import click

from .base import State, pass_state
from .output import print_json, print_table

#: the key scopes (``registry.api_keys.SCOPES``, which a test compares): spelled out here so
#: that the command line starts without loading the ORM models the key service needs
SCOPES = ("read", "run", "write")


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


@click.group()
def apikeys() -> None:
    """Create, list and revoke API keys of the HTTP API."""


@apikeys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default="read",
    show_default=True,
    help="read: fetch and render; run: also run and feedback; write: also create versions "
    "and move unprotected labels.",
)
@click.option("--created-by", default=None, help="Who asked for the key (default: OS user).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the key included).")
@pass_state
def apikeys_create(
    state: State, name: str, scope: str, created_by: str | None, as_json: bool
) -> None:
    """Create a key NAME; the key is printed once and cannot be shown again."""
    from ..api_keys import create_api_key  # lazy for cold start: the ORM models

    token, info = create_api_key(
        state.registry,
        name,
        scope,
        created_by=created_by if created_by is not None else _operator(),
    )
    if as_json:
        print_json(info.to_dict() | {"key": token})
        return
    click.echo(token)
    click.echo(
        f"created key {info.id} {info.name!r} (scope {info.scope}, starts {info.prefix}); "
        "store it now: it is shown only once.",
        err=True,
    )


@apikeys.command("list")
@click.option("--active", is_flag=True, help="Hide revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def apikeys_list(state: State, active: bool, as_json: bool) -> None:
    """List keys (never the keys themselves): name, scope, prefix, last use, revocation."""
    from ..api_keys import list_api_keys  # lazy for cold start: the ORM models

    keys = list_api_keys(state.registry, include_revoked=not active)
    if as_json:
        print_json([k.to_dict() for k in keys])
        return
    print_table(
        ("id", "name", "scope", "prefix", "created", "last used", "revoked"),
        (
            (
                k.id,
                k.name,
                k.scope,
                k.prefix + "...",
                f"{k.created_at:%Y-%m-%d %H:%M}" + (f" by {k.created_by}" if k.created_by else ""),
                f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            )
            for k in keys
        ),
    )


@apikeys.command("revoke")
@click.argument("key")
@click.option("--actor", default=None, help="Who revokes it (default: OS user).")
@pass_state
def apikeys_revoke(state: State, key: str, actor: str | None) -> None:
    """Revoke KEY (its id or its name); requests with it are refused from now on."""
    from ..api_keys import get_api_key, revoke_api_key  # lazy for cold start: the ORM models

    before = get_api_key(state.registry, key)
    info = revoke_api_key(state.registry, key, actor=actor if actor is not None else _operator())
    if not before.active:
        click.echo(f"key {info.id} {info.name!r} was already revoked on {info.revoked_at:%Y-%m-%d}")
    else:
        click.echo(f"revoked key {info.id} {info.name!r} ({info.prefix}...)")


def register(group: click.Group) -> None:
    """Add ``apikeys`` to the main group."""
    group.add_command(apikeys)
