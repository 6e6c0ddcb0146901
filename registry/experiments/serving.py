"""The per-registry experiment runtime: serving variants fast, logging exposures, guardrails.

``assigned_version(reg, name, unit_id, label)`` is what ``Registry.get(..., unit_id=...)`` calls.
It keeps, per prompt, the running experiment (or the fact that none runs) for ``reg.cache_ttl``
seconds (0: looked up on every call; when it expires one thread reloads it while the others keep
serving the previous state), plus a bounded memo of unit -> served version, so a warm call costs
a couple of dictionary lookups, and an unseen unit one or two BLAKE2b hashes. Calls do not read
the clock: a timer thread marks each cached entry stale when its TTL ends (a forked child starts
with every entry stale), so the hot path tests a flag.

Exposures (a ``get`` with a unit id that is served a variant) are appended to an in-memory queue
(a lock-free ``deque.append``) and written by a background thread every ``flush_interval``
seconds (and by ``flush()`` and ``close()``) with one upsert per unit: ``experiment_assignments``
holds per unit its variant, first and last exposure (to the flush interval) and exposure count.
A process killed without ``close()`` loses at most its last interval of exposures.
Sticky experiments also write a unit's row synchronously the first time the unit is seen
(insert-or-ignore, then read back, so concurrent processes agree); that row decides the unit's
variant from then on, whatever the weights become.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..models.experiments import AssignmentRow
from ..names import DEFAULT_LABEL
from . import store
from .assignment import Allocation
from .definitions import Experiment

if TYPE_CHECKING:
    from ..service import RegistryService
    from ..versions import PromptVersion

logger = logging.getLogger(__name__)

#: units remembered per running experiment (the memo is cleared when full)
MEMO_SIZE = 65_536
#: run sources that count in reports and guardrails (tests, rubric grading, playground do not)
COUNTED_SOURCES = ("app", "http")
#: rows per upsert statement when writing exposures
FLUSH_BATCH = 1000

_A = AssignmentRow.__table__
_MISS: Any = object()
_monotonic = time.monotonic


def _discard(unit_id: str) -> None:
    """Exposure sink when exposure logging is off."""


#: what ``assign`` reads per prompt, unpacked in one step: (stale, active, memo, exposure
#: sink, serves calls without a label, base label); ``active`` None: nothing runs; ``stale``
#: is set by the timer thread when the entry's TTL ends
_Entry = tuple[
    bool,
    "_Active | None",
    "dict[str, PromptVersion | None] | None",
    Callable[[str], None],
    bool,
    "str | None",
]


class _Active:
    """A running experiment as served in this process."""

    __slots__ = ("allocation", "default_label", "experiment", "exposed", "memo", "served", "stamp")

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.allocation = Allocation(
            experiment.seed, [v.weight for v in experiment.variants], experiment.coverage
        )
        self.default_label = experiment.label == DEFAULT_LABEL
        self.served: list[PromptVersion | None] = [None] * len(experiment.variants)
        self.memo: dict[str, PromptVersion | None] = {}
        #: unit ids exposed since the last flush (one entry per exposure)
        self.exposed: deque[str] = deque()
        self.stamp = (experiment.id, experiment.updated_at, experiment.status)

    def variant_of(self, unit_id: str) -> str | None:
        """The variant key this process serves ``unit_id`` (None when outside coverage)."""
        served = self.memo.get(unit_id)
        if served is not None:
            return served.variant
        index = self.allocation.assign(unit_id)
        return None if index is None else self.experiment.variants[index].key


def _upsert(dialect: str) -> Callable[[Any], Any]:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class ExperimentRuntime:
    """Experiment state of one registry (get it with :func:`runtime`)."""

    #: seconds between background writes of buffered exposures
    flush_interval: float = 1.0

    def __init__(self, reg: RegistryService) -> None:
        self._reg = reg
        self._log_exposures = True
        self._running: dict[str, _Entry] = {}
        self._deadlines: list[tuple[float, int, str, _Entry]] = []
        self._deadline_seq = 0
        self._timer_cond = threading.Condition()
        self._timer_pid = 0
        #: experiments served by this process whose exposures may still need writing
        self._actives: list[_Active] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flusher_pid = 0
        self._closed = False
        _RUNTIMES.add(self)

    @property
    def log_exposures(self) -> bool:
        """Whether ``get`` calls with a unit id count exposures (default True)."""
        return self._log_exposures

    @log_exposures.setter
    def log_exposures(self, value: bool) -> None:
        self._log_exposures = value
        self._running.clear()  # the cached entries hold the exposure sink: rebuild them

    # -- serving ----------------------------------------------------------------------------

    def assign(self, name: str, unit_id: str, label: str | None) -> PromptVersion | None:
        """The version ``unit_id`` is served for ``name`` at ``label``, or None (label applies)."""
        # the hot path of ``get(name, unit_id=...)``: one dict lookup, the stale flag, one
        # unpack of a prebuilt tuple, the label check, the unit memo and a deque append
        entry = self._running.get(name)
        if entry is None or entry[0]:
            entry = self._refresh_or_stale(name, entry)
        _, active, memo, expose, serves_default, base_label = entry
        if active is None or ((not serves_default) if label is None else label != base_label):
            return None
        served = memo.get(unit_id, _MISS)  # type: ignore[union-attr]
        if served is _MISS:
            served = self._resolve(active, unit_id)
        if served is not None:
            expose(unit_id)
        return served  # type: ignore[no-any-return]

    def running(self, name: str) -> Experiment | None:
        """The experiment running on prompt ``name`` as this process sees it (cached)."""
        entry = self._running.get(name)
        if entry is None or entry[0]:
            entry = self._refresh(name)
        active = entry[1]
        return None if active is None else active.experiment

    def invalidate(self, name: str | None = None) -> None:
        """Forget the cached running experiment of a prompt (or of every prompt)."""
        if name is None:
            self._running.clear()
        else:
            self._running.pop(name, None)

    def _refresh_or_stale(self, name: str, entry: _Entry | None) -> _Entry:
        """Reload an expired entry; while one thread reloads, the others serve the stale one."""
        if entry is None or self._reg.cache_ttl <= 0:
            return self._refresh(name)
        if not self._refreshing.acquire(blocking=False):
            return entry
        try:
            return self._refresh(name)
        finally:
            self._refreshing.release()

    def _refresh(self, name: str) -> _Entry:
        with self._reg.db.snapshot() as s:
            experiment = store.load_running(s, name)
        old = self._running.get(name)
        active: _Active | None = None
        if experiment is not None:
            previous = old[1] if old is not None else None
            stamp = (experiment.id, experiment.updated_at, experiment.status)
            if previous is not None and previous.stamp == stamp:
                active = previous
            else:
                active = _Active(experiment)
                with self._lock:
                    self._actives.append(active)
            self._ensure_flusher()
        # kept even with a TTL of 0 (then always stale) so an unchanged experiment is reused
        ttl = self._reg.cache_ttl
        stale = ttl <= 0
        entry: _Entry
        if active is None:
            entry = (stale, None, None, _discard, False, None)
        else:
            expose = active.exposed.append if self._log_exposures else _discard
            label = active.experiment.label
            entry = (stale, active, active.memo, expose, active.default_label, label)
        self._running[name] = entry
        if not stale:
            self._expire_later(_monotonic() + ttl, name, entry)
        return entry

    # -- expiry -----------------------------------------------------------------------------

    def _expire_later(self, deadline: float, name: str, entry: _Entry) -> None:
        """Have the timer thread mark ``entry`` stale at ``deadline`` (monotonic seconds)."""
        with self._timer_cond:
            if self._closed:
                return
            self._deadline_seq += 1
            heapq.heappush(self._deadlines, (deadline, self._deadline_seq, name, entry))
            if self._timer_pid != os.getpid():
                self._timer_pid = os.getpid()
                threading.Thread(
                    target=self._expiry_loop,
                    args=(self._timer_cond,),
                    name="registry-experiments-ttl",
                    daemon=True,
                ).start()
            elif self._deadlines[0][1] == self._deadline_seq:
                self._timer_cond.notify()  # a new earliest deadline: wake the timer

    def _expiry_loop(self, cond: threading.Condition) -> None:
        with cond:
            while not self._closed and cond is self._timer_cond:
                heap = self._deadlines
                now = _monotonic()
                while heap and heap[0][0] <= now:
                    _, _, name, entry = heapq.heappop(heap)
                    if self._running.get(name) is entry:  # not reloaded or invalidated since
                        self._running[name] = (True, *entry[1:])
                cond.wait(heap[0][0] - now if heap else None)

    def _after_fork_in_child(self) -> None:
        """No timer thread survives a fork: the child starts with every entry stale."""
        self._timer_cond = threading.Condition()
        self._deadlines = []
        self._timer_pid = 0
        self._running = {name: (True, *entry[1:]) for name, entry in self._running.items()}

    def _resolve(self, active: _Active, unit_id: str) -> PromptVersion | None:
        index = active.allocation.assign(unit_id)
        served: PromptVersion | None = None
        if index is not None:
            if active.experiment.sticky:
                index = self._sticky_index(active.experiment, unit_id, index)
            served = active.served[index]
            if served is None:
                exp = active.experiment
                variant = exp.variants[index]
                served = self._reg.get(exp.prompt, version=variant.version).with_assignment(
                    exp.key, variant.key
                )
                active.served[index] = served
        if len(active.memo) >= MEMO_SIZE:
            active.memo.clear()
        active.memo[unit_id] = served
        return served

    def _sticky_index(self, experiment: Experiment, unit_id: str, index: int) -> int:
        """The persisted variant of a unit; the first assignment is written if there is none."""
        keys = [v.key for v in experiment.variants]
        where = sa.and_(_A.c.experiment_id == experiment.id, _A.c.unit_id == unit_id)
        with self._reg.db.engine.connect() as conn:
            stored = conn.execute(sa.select(_A.c.variant).where(where)).scalar_one_or_none()
        if stored is None:
            now = datetime.now(UTC)
            insert = _upsert(self._reg.db.dialect)(_A).values(
                experiment_id=experiment.id,
                unit_id=unit_id,
                variant=keys[index],
                exposures=0,
                first_seen=now,
                last_seen=now,
            )
            with self._reg.db.transaction() as s:
                s.execute(
                    insert.on_conflict_do_nothing(index_elements=["experiment_id", "unit_id"])
                )
                stored = s.execute(sa.select(_A.c.variant).where(where)).scalar_one()
        return keys.index(stored) if stored in keys else index

    # -- exposures --------------------------------------------------------------------------

    def _ensure_flusher(self) -> None:
        if self._flusher_pid == os.getpid() or self._closed or not self._log_exposures:
            return
        with self._lock:
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()  # a forked child starts its own thread
            self._stop = threading.Event()
            self._flusher = threading.Thread(
                target=self._flush_loop, name="registry-experiments-flush", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        stop = self._stop
        while not stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # keep serving; the next flush writes the newer exposures
                logger.exception("could not write experiment exposures")

    def flush(self) -> int:
        """Write buffered exposures now; returns how many units were written."""
        with self._flush_lock:
            with self._lock:
                actives = list(self._actives)
            # list() copies under the GIL: request threads may add prompts meanwhile
            current = {id(e[1]) for e in list(self._running.values()) if e[1] is not None}
            keep: list[dict[str, Any]] = []
            move: list[dict[str, Any]] = []
            finished: list[_Active] = []
            for active in actives:
                counts: dict[str, int] = {}
                queue = active.exposed
                for _ in range(len(queue)):  # what is there now; later ones wait for the next flush
                    unit_id = queue.popleft()
                    counts[unit_id] = counts.get(unit_id, 0) + 1
                if id(active) not in current:
                    finished.append(active)
                exp = active.experiment
                for unit_id, count in counts.items():
                    variant = active.variant_of(unit_id)
                    if variant is None:
                        continue
                    (keep if exp.sticky else move).append(
                        {
                            "experiment_id": exp.id,
                            "unit_id": unit_id,
                            "variant": variant,
                            "exposures": count,
                        }
                    )
            if finished:
                with self._lock:
                    self._actives = [a for a in self._actives if a not in finished or a.exposed]
            if keep or move:
                self._write_exposures(keep, move)
            return len(keep) + len(move)

    def _write_exposures(self, keep: list[dict[str, Any]], move: list[dict[str, Any]]) -> None:
        # timestamps come from the database clock: no per-row datetime binding (the slow part)
        insert = _upsert(self._reg.db.dialect)(_A).values(
            first_seen=sa.func.now(), last_seen=sa.func.now()
        )
        update = {
            "exposures": _A.c.exposures + insert.excluded.exposures,
            "last_seen": insert.excluded.last_seen,
        }
        # sticky units keep their stored variant; the others follow their current assignment
        batches = ((keep, update), (move, {**update, "variant": insert.excluded.variant}))
        with self._reg.db.transaction() as s:
            for rows, set_ in batches:
                if not rows:
                    continue
                rows.sort(key=lambda r: (r["experiment_id"], r["unit_id"]))  # no deadlocks
                stmt = insert.on_conflict_do_update(
                    index_elements=["experiment_id", "unit_id"], set_=set_
                )
                for i in range(0, len(rows), FLUSH_BATCH):
                    s.execute(stmt, rows[i : i + FLUSH_BATCH])

    def serves_unguarded(self, key: str) -> bool:
        """True when this process serves experiment ``key`` and it has no guardrails (they never
        change once created): a guardrail check would only read the experiment back."""
        for entry in list(self._running.values()):
            active = entry[1]
            if active is not None and active.experiment.key == key:
                return not active.experiment.guardrails
        return False

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the flusher and write what is buffered (called by ``Registry.close``)."""
        self._closed = True
        self._stop.set()
        with self._timer_cond:
            self._timer_cond.notify_all()
        flusher = self._flusher
        if flusher is not None and flusher.is_alive() and flusher is not threading.current_thread():
            flusher.join(timeout=10)
        try:
            self.flush()
        except Exception:
            logger.exception("could not write experiment exposures on close")


#: every live runtime, so that a forked child can mark their cached entries stale
_RUNTIMES: weakref.WeakSet[ExperimentRuntime] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for rt in list(_RUNTIMES):
        rt._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def runtime(reg: RegistryService) -> ExperimentRuntime:
    """The experiment runtime of ``reg`` (created on first use)."""
    return reg.component(ExperimentRuntime)


def assigned_version(
    reg: RegistryService, name: str, unit_id: str, label: str | None
) -> PromptVersion | None:
    """The experiment variant ``unit_id`` gets for ``name`` at ``label``, or None.

    None when no experiment runs on the prompt, the unit is outside coverage, or ``label`` is
    not the experiment's base label (``None`` means ``production``). ``Registry.get`` calls
    the runtime's ``assign`` through its serving policy.
    """
    return runtime(reg).assign(name, unit_id, label)


__all__ = ["COUNTED_SOURCES", "ExperimentRuntime", "assigned_version", "runtime"]
