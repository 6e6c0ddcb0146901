"""``serve``: the web admin and the HTTP API."""

from __future__ import annotations

import click

from .base import State, pass_state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Worker processes (gunicorn when > 1).",
)
@click.option("--debug", is_flag=True, help="Flask debug mode (development only).")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not run the periodic jobs in the server (run `prompt-registry worker` instead).",
)
@pass_state
def serve(state: State, host: str, port: int, workers: int, debug: bool, no_worker: bool) -> None:
    """Serve the web admin (/admin) and the HTTP API (/api/v1).

    Each server process also runs the periodic jobs of `prompt-registry worker` in a
    background thread (unless --no-worker).
    """
    from ..web import create_app

    config: dict[str, object] = {"REGISTRY_WORKER": not no_worker}
    if state.database:
        config["REGISTRY_DATABASE_URL"] = state.database
    if workers > 1:
        from ..web.gunicorn import run_gunicorn

        run_gunicorn(config, host=host, port=port, workers=workers)
        return
    app = create_app(config)
    click.echo(f"serving on http://{host}:{port}/ (admin at /admin, API at /api/v1)")
    app.run(host=host, port=port, debug=debug, threaded=True, use_reloader=False)


def register(group: click.Group) -> None:
    """Add ``serve`` to the main group."""
    group.add_command(serve)
