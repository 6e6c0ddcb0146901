"""``fake-anthropic``: the testing kit's fake Anthropic API as a server of its own."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click


@click.command("fake-anthropic")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=int, help="Port (0: any free port, printed)."
)
@click.option(
    "--script",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML or JSON file of scripted replies, latency and rate limits "
    "(see registry.testing.script).",
)
@click.option("--latency", type=float, default=None, help="Seconds added to every request.")
@click.option(
    "--text", default=None, help="Answer with this text once scripted replies run out (else echo)."
)
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def fake_anthropic(
    host: str,
    port: int,
    script: str | None,
    latency: float | None,
    text: str | None,
    verbose: bool,
) -> None:
    """Serve a fake Anthropic Messages API for tests, until Ctrl-C or SIGTERM.

    Point an app at it with ANTHROPIC_BASE_URL=http://HOST:PORT (any ANTHROPIC_API_KEY). It
    answers /v1/messages (JSON or streamed) and /v1/messages/count_tokens: scripted replies
    first, then --text, else an echo of the last user message.
    """
    from ..testing import FakeAnthropic, load_script

    loaded = load_script(script) if script else None
    server = FakeAnthropic(host, port, verbose=verbose)
    if loaded is not None:
        loaded.apply(server)
    if latency is not None:
        server.latency = latency
    if text is not None and (loaded is None or loaded.default is None):
        server.default = text
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    server.start()
    try:
        queued = f", {server.queued} scripted replies" if server.queued else ""
        click.echo(f"Fake Anthropic API listening on {server.url} (Ctrl-C to stop{queued})")
        click.echo(
            f"point apps at it: ANTHROPIC_BASE_URL={server.url} ANTHROPIC_API_KEY=any-key",
            err=True,
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        served = len(server.requests)
        server.stop()
        click.echo(f"stopped after {served} request(s)", err=True)


def register(group: click.Group) -> None:
    """Add ``fake-anthropic`` to the main group."""
    group.add_command(fake_anthropic)
