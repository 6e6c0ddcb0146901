"""Prompt commands: ``prompts list|show|history|diff``, ``render``, ``label``, ``seed``,
``export``, ``import``, ``archive``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .base import State, parse_vars, pass_state, selector_options
from .output import print_json, print_table, stdout_console


@click.group()
def prompts() -> None:
    """List and inspect prompts."""


@prompts.command("list")
@click.option("--folder", default=None, help="Only prompts under this folder (team/...).")
@click.option("--tag", default=None, help="Only prompts with this tag.")
@click.option("--search", default=None, help="Only names containing this text.")
@click.option("--archived", is_flag=True, help="Include archived prompts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def prompts_list(
    state: State,
    folder: str | None,
    tag: str | None,
    search: str | None,
    archived: bool,
    as_json: bool,
) -> None:
    """List prompts with their newest version and labels."""
    found = state.registry.prompts(folder=folder, tag=tag, search=search, include_archived=archived)
    if as_json:
        print_json(
            [
                {
                    "name": p.name,
                    "description": p.description,
                    "tags": p.tags,
                    "labels": p.labels,
                    "latest_version": p.latest_version,
                    "archived": p.archived,
                }
                for p in found
            ]
        )
        return
    print_table(
        ("name", "latest", "labels", "tags", "description"),
        (
            (
                p.name + (" (archived)" if p.archived else ""),
                f"v{p.latest_version}",
                ", ".join(f"{k}=v{v}" for k, v in p.labels.items()),
                ", ".join(p.tags),
                p.description,
            )
            for p in found
        ),
    )


@prompts.command("show")
@click.argument("name")
@selector_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def prompts_show(
    state: State, name: str, label: str | None, version: int | None, as_json: bool
) -> None:
    """Show one version of a prompt (default: the production label)."""
    v = state.registry.get(name, label=label, version=version)
    data = v.to_dict()
    data["labels"] = v.labels
    if as_json:
        print_json(data)
        return
    console = stdout_console()
    console.print(f"[bold]{v.name}[/bold] v{v.version}  labels: {', '.join(data['labels']) or '-'}")
    console.print(f"by {v.author or '-'} at {v.created_at:%Y-%m-%d %H:%M} — {v.message or ''}")
    console.print(f"settings: {json.dumps(v.settings)}")
    if v.variables:
        console.print(
            "variables: "
            + ", ".join(
                f"{k} ({s['type']}{'' if s['required'] else ', optional'})"
                for k, s in v.variables.items()
            )
        )
    if v.system:
        console.print("[bold]system[/bold]", markup=True)
        console.print(v.system, markup=False)
    for m in v.messages:
        console.print(f"[bold]{m['role']}[/bold]", markup=True)
        console.print(m["content"], markup=False)
    if v.output_schema:
        console.print(f"output schema: {json.dumps(v.output_schema)}")


@prompts.command("history")
@click.argument("name")
@click.option("--labels", "show_labels", is_flag=True, help="Show label moves instead of versions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def prompts_history(state: State, name: str, show_labels: bool, as_json: bool) -> None:
    """Versions of a prompt (oldest first), or the audit of its label moves."""
    reg = state.registry
    if show_labels:
        events = reg.label_history(name)
        if as_json:
            print_json(events)
            return
        print_table(
            ("when", "label", "from", "to", "who", "kind", "why", "release"),
            (
                (
                    f"{e.created_at:%Y-%m-%d %H:%M:%S}",
                    e.label,
                    f"v{e.from_version}" if e.from_version else "-",
                    f"v{e.to_version}" if e.to_version else "-",
                    e.actor or "-",
                    e.kind,
                    e.reason,
                    e.release_id or "",
                )
                for e in events
            ),
        )
        return
    labels = reg.prompt(name).labels
    by_version: dict[int, list[str]] = {}
    for lbl, n in labels.items():
        by_version.setdefault(n, []).append(lbl)
    versions = reg.versions(name)
    if as_json:
        print_json(
            [
                {
                    "version": v.version,
                    "created_at": v.created_at,
                    "author": v.author,
                    "labels": by_version.get(v.version, []),
                    "message": v.message,
                    "content_hash": v.content_hash,
                }
                for v in versions
            ]
        )
        return
    print_table(
        ("version", "when", "author", "labels", "message"),
        (
            (
                f"v{v.version}",
                f"{v.created_at:%Y-%m-%d %H:%M}",
                v.author or "-",
                ", ".join(by_version.get(v.version, [])),
                v.message,
            )
            for v in versions
        ),
    )


@prompts.command("diff")
@click.argument("name")
@click.argument("old", type=int)
@click.argument("new", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def prompts_diff(state: State, name: str, old: int, new: int, as_json: bool) -> None:
    """Show what changed from version OLD to version NEW."""
    result = state.registry.diff(name, old, new)
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(str(result))


@click.command()
@click.argument("name")
@selector_options
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="A variable (repeatable).")
@click.option("--vars-file", default=None, help="JSON or YAML file of variables.")
@click.option(
    "--request", "as_request", is_flag=True, help="Print the Messages API request as JSON."
)
@pass_state
def render(
    state: State,
    name: str,
    label: str | None,
    version: int | None,
    pairs: tuple[str, ...],
    vars_file: str | None,
    as_request: bool,
) -> None:
    """Render a prompt with variables and print the result."""
    rendered = state.registry.render(
        name, parse_vars(pairs, vars_file), label=label, version=version
    )
    if as_request:
        print_json(rendered.to_request())
        return
    if rendered.system:
        click.echo("[system]")
        click.echo(rendered.system)
    for m in rendered.messages:
        click.echo(f"[{m['role']}]")
        click.echo(m["content"])


@click.command()
@click.argument("name")
@click.argument("label")
@click.argument("version", type=int)
@click.option(
    "--expect", type=int, default=None, help="Only move if the label is at this version (0: unset)."
)
@click.option("--reason", default="", help="Why (kept in the audit).")
@click.option("--actor", default=None, envvar="USER", help="Who (default: $USER).")
@click.option(
    "--override", is_flag=True, help="Bypass the regression-suite gate (recorded in the audit)."
)
@pass_state
def label(
    state: State,
    name: str,
    label: str,
    version: int,
    expect: int | None,
    reason: str,
    actor: str | None,
    override: bool,
) -> None:
    """Point LABEL of prompt NAME at VERSION (audited, compare-and-set with --expect)."""
    state.registry.set_label(
        name,
        label,
        version,
        actor=actor or "",
        expected_version=expect,
        reason=reason,
        override=override,
    )
    click.echo(f"{name}: {label} -> v{version}")


@click.command()
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def seed(state: State, directory: str | None, as_json: bool) -> None:
    """Load the YAML prompt files of DIRECTORY (idempotent: unchanged files create nothing).

    Without DIRECTORY, the example prompts shipped with the package (``templates_seed/`` of
    the repository) are loaded.
    """
    from ..resources import seed_dir

    results = state.registry.seed(Path(directory) if directory else seed_dir())
    if as_json:
        print_json([{"name": n, "version": v, "created": c} for n, v, c in results])
        return
    for name, version, created in results:
        click.echo(f"{name}: v{version} {'created' if created else 'unchanged'}")
    click.echo(f"{sum(1 for r in results if r[2])} new version(s) from {len(results)} file(s)")


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--prompt", "names", multiple=True, help="Only this prompt (repeatable).")
@pass_state
def export_cmd(state: State, path: str, names: tuple[str, ...]) -> None:
    """Write every prompt, version and label to PATH (.json, else YAML)."""
    doc = state.registry.export(path, names=names or None)
    click.echo(f"exported {len(doc['prompts'])} prompt(s) to {path}")


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--actor", default="import", show_default=True, help="Recorded as the mover of labels."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def import_cmd(state: State, path: str, actor: str, as_json: bool) -> None:
    """Load an export file; versions already present are skipped."""
    report = state.registry.import_(path, actor=actor)
    if as_json:
        print_json(report)
        return
    click.echo(
        f"imported {len(report['prompts'])} prompt(s): {report['created']} version(s) created, "
        f"{report['skipped']} already present, {report['labels']} label move(s)"
    )


@click.command()
@click.argument("name")
@click.option("--undo", is_flag=True, help="Unarchive instead.")
@click.option("--reason", default="", help="Why (kept in the audit).")
@click.option("--actor", default=None, envvar="USER", help="Who (default: $USER).")
@pass_state
def archive(state: State, name: str, undo: bool, reason: str, actor: str | None) -> None:
    """Archive a prompt (hidden from lists, read-only, still served) or bring it back (audited)."""
    if undo:
        state.registry.unarchive(name, actor=actor or "", reason=reason)
        click.echo(f"{name}: unarchived")
    else:
        state.registry.archive(name, actor=actor or "", reason=reason)
        click.echo(f"{name}: archived")


def register(group: click.Group) -> None:
    """Add the prompt commands to the main group."""
    for command in (prompts, render, label, seed, export_cmd, import_cmd, archive):
        group.add_command(command)
