"""The render budget: every render is bounded in output, value sizes, steps, integers and time.

A :class:`Budget` is opened for each render (:func:`open_budget`) and found by the sandbox's
guards through a context variable, so every path that renders (Python, HTTP, admin, suites,
the client) is bounded the same way. Limits come from :class:`RenderLimits`, read from the
environment once per registry:

``REGISTRY_RENDER_MAX_CHARS`` (default 1,000,000)
    characters a render may generate, not counting variable values inserted as given; also the
    largest string, list or other value a template may build while rendering (plus the size of
    the values given), and one eighth of what it may build in all.
``REGISTRY_RENDER_TIMEOUT_MS`` (default 1000)
    wall-clock deadline of one render, checked at every loop iteration, call and filter.
``REGISTRY_RENDER_MAX_STEPS`` (default 1,000,000)
    loop iterations, calls and includes in all; an iteration counts one step per output its
    loop body holds, so the number of pieces a render collects is bounded too.
``REGISTRY_RENDER_MAX_INT_DIGITS`` (default 1000)
    the largest integer arithmetic may build, in decimal digits.
``REGISTRY_RENDER_FAST_PATH`` (default on; ``0`` turns it off)
    templates proven safe against their contract render without the sandbox's per-call
    checks (:mod:`registry.fastpath`), within the same bounds.

Going over any of them raises :class:`~registry.errors.RenderLimitExceeded`, naming the limit
and the variable that raises it. Sizes are measured as the length of a value's text
(:meth:`Budget.measure`): a list of a million ``0`` is three million characters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import lru_cache
from time import monotonic
from typing import Any

from jinja2.utils import Namespace

from .errors import ConfigurationError, RenderError, RenderLimitExceeded

#: how many times REGISTRY_RENDER_MAX_CHARS a render may build in intermediate values in all
WORK_FACTOR = 8

MAX_CHARS_ENV = "REGISTRY_RENDER_MAX_CHARS"
TIMEOUT_ENV = "REGISTRY_RENDER_TIMEOUT_MS"
MAX_STEPS_ENV = "REGISTRY_RENDER_MAX_STEPS"
MAX_INT_DIGITS_ENV = "REGISTRY_RENDER_MAX_INT_DIGITS"
FAST_PATH_ENV = "REGISTRY_RENDER_FAST_PATH"

_LOG2_10 = 3.321928094887362


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """The bounds of one render (see the module docstring for what each one bounds)."""

    max_chars: int = 1_000_000
    timeout_ms: int = 1000
    max_steps: int = 1_000_000
    max_int_digits: int = 1000
    fast_path: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RenderLimits:
        """Limits from ``REGISTRY_RENDER_*`` variables; unset ones keep their defaults.

        Raises ``ConfigurationError`` for a value that is not a positive integer.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field_name, var in (
            ("max_chars", MAX_CHARS_ENV),
            ("timeout_ms", TIMEOUT_ENV),
            ("max_steps", MAX_STEPS_ENV),
            ("max_int_digits", MAX_INT_DIGITS_ENV),
        ):
            raw = env.get(var, "").strip().replace("_", "")
            if not raw:
                continue
            try:
                number = int(raw)
            except ValueError:
                number = 0
            if number <= 0:
                raise ConfigurationError(f"{var} must be a positive integer, got {raw!r}")
            values[field_name] = number
        fast = env.get(FAST_PATH_ENV, "").strip().lower()
        if fast not in ("", "1", "0", "true", "false", "on", "off", "yes", "no"):
            raise ConfigurationError(f"{FAST_PATH_ENV} must be 0 or 1, got {fast!r}")
        return cls(**values, fast_path=fast not in ("0", "false", "off", "no"))

    def with_timeout(self, timeout_ms: int) -> RenderLimits:
        """The same limits with another deadline (save-time dry renders use a shorter one)."""
        return replace(self, timeout_ms=timeout_ms)

    @property
    def max_int_bits(self) -> int:
        """Bits an integer of ``max_int_digits`` decimal digits may have (rounded up)."""
        return int(self.max_int_digits * _LOG2_10) + 1


@lru_cache(maxsize=8)
def _int_bound(digits: int) -> int:
    """``10 ** digits``: the smallest number with one digit too many."""
    return int(10**digits)


_current: ContextVar[Budget | None] = ContextVar("registry_render_budget", default=None)

_CONTAINERS = (list, tuple, dict, set, frozenset)
_SCALAR_SIZES: dict[type, int] = {type(None): 4, bool: 5, float: 24, complex: 48}
_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))


def int_size(value: int) -> int:
    """Decimal digits of ``value`` (an upper estimate, without computing them), plus a sign."""
    return (value.bit_length() * 1233 >> 12) + 2


class Budget:
    """What one render has used so far; raises ``RenderLimitExceeded`` at the first bound.

    ``values`` are the variables the render was given: their size is allowed on top of
    ``max_chars`` (a long document inserted as it is does not count), but it is only measured
    the first time something goes over ``max_chars``.
    """

    __slots__ = (
        "_cap",
        "_sizes",
        "deadline",
        "limits",
        "max_chars",
        "max_int_bits",
        "max_steps",
        "output",
        "steps",
        "values",
        "work",
        "work_limit",
    )

    def __init__(self, limits: RenderLimits, values: Mapping[str, Any] | None = None) -> None:
        self.limits = limits
        self.values = values
        self.max_chars = limits.max_chars
        self.max_steps = limits.max_steps
        self.max_int_bits = limits.max_int_bits
        self.deadline = monotonic() + limits.timeout_ms / 1000
        self.steps = 0
        self.work = 0
        self.work_limit = WORK_FACTOR * limits.max_chars
        self.output = 0
        self._cap: int | None = None
        # id -> (object, size) of containers measured in this render; the object is kept so
        # its id cannot be reused by another object while the render runs
        self._sizes: dict[int, tuple[Any, int]] = {}

    # -- the allowance for values given ----------------------------------------------------

    def cap(self) -> int:
        """The largest size a value may have: ``max_chars`` plus the size of the values given."""
        if self._cap is None:
            given = 0
            if self.values:
                given = self.measure(self.values, stop=1 << 62)
            self._cap = self.max_chars + given
            self.work_limit = WORK_FACTOR * self._cap
        return self._cap

    # -- checks ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Check the deadline."""
        if monotonic() > self.deadline:
            self.timed_out()

    def step(self, count: int = 1) -> None:
        """Count ``count`` steps (a loop iteration, call or include) and check the deadline."""
        self.steps += count
        if self.steps > self.max_steps:
            self.too_many_steps()
        if monotonic() > self.deadline:
            self.timed_out()

    def will_make(self, size: int, what: str) -> None:
        """Refuse to build a value of ``size`` characters before building it."""
        if size > self.max_chars and size > self.cap():
            self.too_big(size, what)

    def made(self, value: Any, what: str = "a value") -> Any:
        """Account for a value the template just built (a string, list or integer); return it."""
        kind = type(value)
        if kind is str:
            size = len(value)
        elif kind is int:
            return self.check_int(value, what)
        elif isinstance(value, (_CONTAINERS, str)):
            size = self.size_of(value)
        else:
            return value
        if size > self.max_chars and size > self.cap():
            self.too_big(size, what)
        self.charge(size)
        return value

    def made_refs(self, value: Any, what: str) -> Any:
        """Account for a container that holds existing values (a literal, ``[x] * n``).

        Its printed size must fit like any value's, but only its slots are new memory.
        """
        size = self.size_of(value)
        if size > self.max_chars and size > self.cap():
            self.too_big(size, what)
        self.charge(len(value) + 1)
        return value

    def size_of(self, value: Any) -> int:
        """``measure(value)``, walking only as far as the limit needs."""
        if self._cap is None:
            size = self.measure(value, stop=self.max_chars)
            if size <= self.max_chars:
                return size
        return self.measure(value, stop=self.cap())

    def charge(self, size: int) -> None:
        """Count ``size`` characters of values built, against ``WORK_FACTOR`` times the cap."""
        self.work += size
        if self.work > self.work_limit and self.work > WORK_FACTOR * self.cap():
            raise RenderLimitExceeded(
                f"the template builds more than {self.work_limit:,} characters of values "
                f"while rendering ({WORK_FACTOR} times {MAX_CHARS_ENV}={self.max_chars:,} plus "
                f"the size of the values given); raise {MAX_CHARS_ENV} to allow more",
                limit=MAX_CHARS_ENV,
                maximum=self.max_chars,
            )
        if monotonic() > self.deadline:
            self.timed_out()

    def check_int(self, value: int, what: str) -> int:
        """Refuse an integer with more than ``max_int_digits`` digits."""
        bits = value.bit_length()
        if bits >= self.max_int_bits - 4 and (
            bits > self.max_int_bits or abs(value) >= _int_bound(self.limits.max_int_digits)
        ):
            self.int_too_big(what)
        return value

    def add_output(self, size: int) -> None:
        """Count ``size`` characters of rendered text against the output limit."""
        self.output += size
        if self.output > self.max_chars and self.output > self.cap():
            raise RenderLimitExceeded(
                f"the rendered prompt is over {self.cap():,} characters: the template may "
                f"generate at most {MAX_CHARS_ENV}={self.max_chars:,} characters besides the "
                f"variable values it inserts; raise {MAX_CHARS_ENV} to allow more",
                limit=MAX_CHARS_ENV,
                maximum=self.max_chars,
            )

    # -- failures --------------------------------------------------------------------------

    def timed_out(self) -> None:
        """Raise: the deadline passed."""
        raise RenderLimitExceeded(
            f"rendering took longer than {TIMEOUT_ENV}={self.limits.timeout_ms} ms; "
            f"simplify the template or raise {TIMEOUT_ENV}",
            limit=TIMEOUT_ENV,
            maximum=self.limits.timeout_ms,
        )

    def too_many_steps(self) -> None:
        """Raise: loops, calls and includes ran too many steps."""
        raise RenderLimitExceeded(
            f"loops, calls and includes ran more than {MAX_STEPS_ENV}={self.max_steps:,} steps "
            "(a loop iteration counts one step per output in its body); loop over less or "
            f"raise {MAX_STEPS_ENV}",
            limit=MAX_STEPS_ENV,
            maximum=self.max_steps,
        )

    def too_big(self, size: int, what: str) -> None:
        """Raise: a value of ``size`` characters would be built."""
        raise RenderLimitExceeded(
            f"{what} would be {size:,} characters long; a value built while rendering may be "
            f"at most {MAX_CHARS_ENV}={self.max_chars:,} characters plus the size of the "
            f"values given; raise {MAX_CHARS_ENV} to allow more",
            limit=MAX_CHARS_ENV,
            maximum=self.max_chars,
        )

    def int_too_big(self, what: str) -> None:
        """Raise: an integer over ``max_int_digits`` digits."""
        raise RenderLimitExceeded(
            f"{what} would be an integer of more than {MAX_INT_DIGITS_ENV}="
            f"{self.limits.max_int_digits:,} digits; raise {MAX_INT_DIGITS_ENV} to allow more",
            limit=MAX_INT_DIGITS_ENV,
            maximum=self.limits.max_int_digits,
        )

    # -- sizes -----------------------------------------------------------------------------

    def measure(self, value: Any, stop: int) -> int:
        """The length of ``value``'s text, estimated without building it.

        Containers are walked once per render (their size is remembered); the walk stops as
        soon as the size passes ``stop`` and then returns a number above ``stop``.
        """
        kind = type(value)
        if kind is str:
            return len(value)
        if kind is int:
            return int_size(value)
        scalar = _SCALAR_SIZES.get(kind)
        if scalar is not None:
            return scalar
        if isinstance(value, str):
            return len(value)
        if isinstance(value, int):
            return int_size(value)
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        if isinstance(value, _CONTAINERS) or _children(value) is not None:
            return self._walk(value, stop)
        return 16

    def _walk(self, root: Any, stop: int) -> int:
        """Size of a container, children first, without recursion (inputs may nest deeply)."""
        sizes = self._sizes
        total = 0
        # each frame: [container, iterator over its children, size so far]
        stack: list[list[Any]] = [[root, iter(_children(root) or ()), 2]]
        open_ids = {id(root)}
        while stack:
            frame = stack[-1]
            descended = False
            for child in frame[1]:
                kind = type(child)
                if kind is str:
                    size = len(child) + 4
                elif kind is int:
                    size = int_size(child) + 2
                elif kind in _SCALAR_SIZES:
                    size = _SCALAR_SIZES[kind] + 2
                else:
                    known = sizes.get(id(child))
                    if known is not None:
                        size = known[1] + 2
                    elif isinstance(child, str):
                        size = len(child) + 4
                    elif isinstance(child, int):
                        size = int_size(child) + 2
                    elif id(child) in open_ids:
                        size = 7  # a container holding itself prints as [...]
                    else:
                        children = _children(child)
                        if children is None:
                            size = 18
                        else:
                            stack.append([child, iter(children), 2])
                            open_ids.add(id(child))
                            descended = True
                            break
                frame[2] += size
                total += size
                if total > stop:
                    return total
            if descended:
                continue
            stack.pop()
            container, _, size = frame
            open_ids.discard(id(container))
            if _memoizable(container):
                sizes[id(container)] = (container, size)
            if not stack:
                return int(size)
            stack[-1][2] += size + 2
            total += 4
        return total  # pragma: no cover - the loop returns


def _children(value: Any) -> Any:
    """What ``value`` prints the text of, or None for a value without children."""
    if isinstance(value, dict):
        return _pairs(value)
    if isinstance(value, (_CONTAINERS, _VIEWS)):
        return value
    attrs = _namespace_attrs(value)
    if attrs is not None:
        return _pairs(attrs)
    return None


def _pairs(mapping: Mapping[Any, Any]) -> Iterator[Any]:
    for key, item in mapping.items():
        yield key
        yield item


def _memoizable(value: Any) -> bool:
    """Containers a template cannot change (the sandbox forbids mutating lists and dicts)."""
    return isinstance(value, _CONTAINERS)


def _namespace_attrs(value: Any) -> Mapping[str, Any] | None:
    """The attributes of a Jinja ``namespace()`` (it prints them all)."""
    if isinstance(value, Namespace):
        attrs: Mapping[str, Any] = object.__getattribute__(value, "_Namespace__attrs")
        return attrs
    return None


def current() -> Budget:
    """The budget of the render running in this context.

    Raises ``RenderError`` when there is none: templates of the prompt sandbox only run
    inside a render.
    """
    budget = _current.get()
    if budget is None:
        raise RenderError("templates of the prompt sandbox render only inside a render budget")
    return budget


def active() -> Budget | None:
    """The budget of the render running in this context, or None."""
    return _current.get()


@contextmanager
def open_budget(limits: RenderLimits, values: Mapping[str, Any] | None = None) -> Iterator[Budget]:
    """Run a render under a fresh budget (nested renders share the outer one)."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    budget = Budget(limits, values)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
