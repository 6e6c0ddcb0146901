"""Label moves reach every Registry on PostgreSQL through LISTEN/NOTIFY within a second."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry import PermissionDenied, Registry
from registry.notify import CHANNEL, LabelNotifier
from tests.conftest import simple_version

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def settle(writer: Registry, reader: Registry) -> None:
    """Wait until ``reader`` has acted on every notification ``writer`` sent so far.

    Notifications arrive in commit order, so once a marker sent last has been acted upon,
    so have the earlier ones (the announcements of the writes a test sets up with)."""
    marker = ("settle-marker", "production")
    reader.reads.label_cache[marker] = (float("inf"), None)  # type: ignore[assignment]
    writer.invalidate(marker[0])
    assert wait_for(lambda: marker not in reader.reads.label_cache)


def notifier(reg: Registry) -> LabelNotifier:
    found: LabelNotifier = reg.component(LabelNotifier)
    return found


@pytest.fixture
def pair(pg_url: str) -> Iterator[tuple[Registry, Registry]]:
    """Two registries on one PostgreSQL database, both caching labels for a minute."""
    writer, reader = Registry(pg_url, cache_ttl=60), Registry(pg_url, cache_ttl=60)
    assert notifier(reader).wait_listening() and notifier(writer).wait_listening()
    yield writer, reader
    writer.close()
    reader.close()


def test_a_move_is_seen_by_another_instance(pair: tuple[Registry, Registry]) -> None:
    writer, reader = pair
    writer.create_version("p", **simple_version(labels=["staging"]))
    writer.create_version("p", **simple_version(system="second"))
    assert reader.get("p", label="staging").version == 1  # cached for 60 s
    writer.set_label("p", "staging", 2, actor="ana")
    assert wait_for(lambda: reader.get("p", label="staging").version == 2, timeout=1.0)


def test_new_versions_deletes_and_releases_are_seen(pair: tuple[Registry, Registry]) -> None:
    writer, reader = pair
    writer.create_version("a", **simple_version(labels=["beta"]))
    writer.create_version("b", **simple_version(labels=["beta"]))
    assert reader.get("a", label="latest").version == 1
    writer.create_version("a", **simple_version(system="v2"))
    assert wait_for(lambda: reader.get("a", label="latest").version == 2, timeout=1.0)
    writer.create_version("b", **simple_version(system="v2"))
    assert reader.get("a", label="beta").version == 1 and reader.get("b", label="beta").version == 1
    writer.release({"a": 2, "b": 2}, label="beta", actor="ana")
    assert wait_for(
        lambda: (
            (reader.get("a", label="beta").version, reader.get("b", label="beta").version) == (2, 2)
        ),
        timeout=1.0,
    )
    writer.delete_label("b", "beta", actor="ana")

    def gone() -> bool:
        try:
            reader.get("b", label="beta")
        except LookupError:
            return True
        return False

    assert wait_for(gone, timeout=1.0)


def test_nothing_is_announced_for_a_refused_move(pair: tuple[Registry, Registry]) -> None:
    writer, reader = pair
    writer.create_version("p", **simple_version(labels=["staging", "beta"]))
    writer.create_version("p", **simple_version(system="second"))
    settle(writer, reader)  # the announcements of these saves must not drop what is read next
    reader.get("p", label="staging")
    reader.get("p", label="beta")

    def refuse(session: object, move: object) -> None:
        raise PermissionDenied("no moves today")

    # runs after the notifier's guard, in the same transaction
    writer.hooks.label_guards.append(refuse)
    with pytest.raises(PermissionDenied):
        writer.set_label("p", "staging", 2)
    writer.hooks.label_guards.remove(refuse)
    writer.set_label("p", "beta", 2)  # a move that commits, announced after the refused one
    assert wait_for(lambda: reader.get("p", label="beta").version == 2, timeout=1.0)
    assert ("p", "staging") in reader.reads.label_cache  # the refused move was never announced
    assert reader.get("p", label="staging").version == 1


def test_malformed_and_own_notifications_are_ignored(
    pair: tuple[Registry, Registry], pg_url: str
) -> None:
    writer, reader = pair
    writer.create_version("p", **simple_version(labels=["staging"]))
    settle(writer, reader)
    reader.get("p", label="staging")
    own = '{"o": "' + notifier(reader).origin + '", "p": "p", "l": "staging"}'
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        for payload in ("not json", '{"x": 1}', "[]", own):
            conn.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})
        conn.commit()
    engine.dispose()
    writer.create_version("q", **simple_version())  # announced after the bogus ones
    assert wait_for(lambda: notifier(reader).received >= 1, timeout=2.0)
    assert ("p", "staging") in reader.reads.label_cache
    assert notifier(reader).listening.is_set()


def test_listener_reconnects_and_forgets_everything(
    pair: tuple[Registry, Registry], pg_url: str
) -> None:
    writer, reader = pair
    writer.create_version("p", **simple_version(labels=["staging"]))
    writer.create_version("p", **simple_version(system="second"))
    reader.get("p", label="staging")
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%' "
                "AND pid <> pg_backend_pid()"
            )
        ).all()
    engine.dispose()
    assert killed
    # a move made while nobody listens is lost, so the reconnected listener drops every entry
    assert wait_for(lambda: ("p", "staging") not in reader.reads.label_cache, timeout=5.0)
    assert notifier(reader).wait_listening(5.0)
    reader.get("p", label="staging")
    writer.set_label("p", "staging", 2)
    assert wait_for(lambda: reader.get("p", label="staging").version == 2, timeout=1.0)


def test_no_listener_without_a_cache_and_none_on_sqlite(pg_url: str, sqlite_url: str) -> None:
    uncached = Registry(pg_url, cache_ttl=0)
    try:
        n = notifier(uncached)
        assert n._thread is None  # nothing cached, nothing to invalidate
        assert n.guard in uncached.hooks.label_guards  # but its moves are still announced
    finally:
        uncached.close()
    local = Registry(sqlite_url)
    try:
        assert not local.has_component(LabelNotifier)
    finally:
        local.close()


def test_close_stops_the_listener(pg_url: str) -> None:
    reg = Registry(pg_url, cache_ttl=5)
    n = notifier(reg)
    assert n.wait_listening()
    thread = n._thread
    assert thread is not None and thread.is_alive()
    reg.close()
    assert not thread.is_alive()


CHILD = """
import sys, time
from registry import Registry
url, name, label, old = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reg = Registry(url, cache_ttl=60)
from registry.notify import LabelNotifier
reg.component(LabelNotifier).wait_listening(10)
assert reg.get(name, label=label).version == old
print("ready", flush=True)
deadline = time.time() + 20
while time.time() < deadline:
    v = reg.get(name, label=label).version
    if v != old:
        print("seen", repr(time.time()), v, flush=True)
        break
    time.sleep(0.001)
else:
    print("timeout", flush=True)
reg.close()
"""


def test_a_move_reaches_another_process_within_a_second(pg_url: str) -> None:
    writer = Registry(pg_url, cache_ttl=60)
    try:
        writer.create_version("p", **simple_version(labels=["staging"]))
        writer.create_version("p", **simple_version(system="second"))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, pg_url, "p", "staging", "1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.2)
            moved_at = time.time()
            writer.set_label("p", "staging", 2, actor="ana")
            line = child.stdout.readline().split()
            assert line[0] == "seen", line
            delay = float(line[1]) - moved_at
            assert int(line[2]) == 2
            print(f"\nthe other process saw the move after {delay * 1000:.0f} ms")
            # the promise is about a second (printed above); what the assertion proves is that the
            # move came by notification, long before the child's 60 s cache TTL, so a loaded
            # machine cannot fail it
            assert delay < 10.0, f"the other process saw the move after {delay:.3f} s"
        finally:
            child.wait(timeout=30)
    finally:
        writer.close()
