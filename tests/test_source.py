"""``PromptSource``: ``Registry`` and ``RegistryClient`` offer the same get/render/run/stream/feedback/
prompts/versions."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from registry import PromptSource, Registry
from registry.client import RegistryClient
from registry.source import RunStream

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("get", "render", "run", "stream", "feedback", "prompts", "versions")


def test_registry_and_client_are_prompt_sources_at_run_time(sqlite_url: str) -> None:
    reg = Registry(sqlite_url)
    client = RegistryClient("http://127.0.0.1:9", "prk_unused")
    try:
        assert isinstance(reg, PromptSource)
        assert isinstance(client, PromptSource)
    finally:
        client.close()
        reg.close()


@pytest.mark.parametrize("method", METHODS)
def test_signatures_agree_with_the_protocol(method: str) -> None:
    """Same parameters (names, kinds, defaults) and the same return annotation, everywhere."""
    want = inspect.signature(getattr(PromptSource, method))
    for cls in (Registry, RegistryClient):
        got = inspect.signature(getattr(cls, method))
        assert list(got.parameters.values()) == list(want.parameters.values()), cls
    assert (
        inspect.signature(getattr(Registry, method)).return_annotation
        == inspect.signature(getattr(RegistryClient, method)).return_annotation
        or method == "stream"  # StreamResult and RemoteStream, both RunStream
    )


def test_streams_offer_what_a_run_stream_promises() -> None:
    from registry.client import RemoteStream
    from registry.runner import StreamResult

    promised = {n for n in dir(RunStream) if n in ("text", "close", "__iter__", "__next__")}
    assert promised == {"text", "close", "__iter__", "__next__"}
    for cls in (StreamResult, RemoteStream):
        assert all(callable(getattr(cls, n, None)) or n == "text" for n in promised), cls
        assert isinstance(getattr(cls, "text", None), property), cls


def test_mypy_accepts_both_as_a_prompt_source(tmp_path: Path) -> None:
    """The static check: assigning either class to ``PromptSource`` type-checks (and a class
    missing a method does not, so the check can fail)."""
    # unique module names: mypy's incremental cache (shared with `mypy registry`) keys by name
    tag = uuid.uuid4().hex[:8]
    good = tmp_path / f"source_ok_{tag}.py"
    good.write_text(
        textwrap.dedent(
            """
            from registry import PromptSource, Registry
            from registry.client import RegistryClient

            def take(source: PromptSource) -> None: ...

            def check(reg: Registry, client: RegistryClient) -> None:
                take(reg)
                take(client)
            """
        )
    )
    bad = tmp_path / f"source_bad_{tag}.py"
    bad.write_text(
        textwrap.dedent(
            """
            from registry import PromptSource, RegistryService

            def take(source: PromptSource) -> None: ...

            def check(core: RegistryService) -> None:
                take(core)  # no run/stream/feedback: not a PromptSource
            """
        )
    )
    mypy = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent"]
    out = subprocess.run([*mypy, str(good), str(bad)], cwd=ROOT, capture_output=True, text=True)
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert errors, out.stdout + out.stderr
    assert all(line.startswith(str(bad)) for line in errors), out.stdout
    assert any("PromptSource" in line for line in errors), out.stdout
