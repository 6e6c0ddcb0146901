"""Resource-exhaustion templates ("bombs"), shared by the render-limit tests.

Each one either allocates gigabytes or runs for minutes in a plain Jinja2 sandbox. Through
the registry every one must end with a typed error, at save (the dry render) or at render.
``run_case`` runs one of them in a child process under a 1 GiB address-space limit.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from registry import Registry, RegistryError, RenderError, RenderLimitExceeded, SecurityError

SETTINGS = {"model": "claude-sonnet-4-6", "max_tokens": 100}
ADDRESS_SPACE = 1 << 30


def _nested_calls(depth: int) -> str:
    """``{% call twice() %}`` nested ``depth`` deep: 2 ** depth copies of the innermost text."""
    opened = "{% call twice() %}" * depth
    closed = "{% endcall %}" * depth
    return "{% macro twice() %}{{ caller() }}{{ caller() }}{% endmacro %}" + (
        opened + "{{ 'x' * 1000 }}" + closed
    )


@dataclass(frozen=True)
class Bomb:
    """A template that must end with one of ``expect`` (at save or at render)."""

    id: str
    template: str
    variables: dict[str, Any] = field(default_factory=dict)  # the contract
    values: dict[str, Any] = field(default_factory=dict)  # what it is rendered with
    includes: dict[str, str] = field(default_factory=dict)  # prompts saved first
    expect: tuple[type[RegistryError], ...] = (RenderLimitExceeded,)


_INT = {"type": "integer", "required": True}
_STR = {"type": "string", "required": True}
_ARRAY = {"type": "array", "required": True}

BOMBS: list[Bomb] = [
    # the table
    Bomb("percent-width", "{{ '%0999999999d' % 1 }}"),
    Bomb("format-width", "{{ '{:>999999999}'.format(1) }}"),
    Bomb("center-filter", "{{ 'x'|center(999999999) }}"),
    Bomb("indent-filter", "{{ 'x\nx'|indent(999999999) }}"),
    Bomb("replace-empty", "{{ ('a'*1000000)|replace('', 'b'*1000) }}"),
    Bomb("nested-list-repeat", "{{ [[0]*1000000]*1000000 }}"),
    Bomb(
        "namespace-squaring",
        "{% set ns = namespace(a=10) %}{% for i in range(30) %}{% set ns.a = ns.a * ns.a %}"
        "{% endfor %}{{ ns.a }}",
    ),
    Bomb("power-tower", "{{ ((((2**100)**100)**100)**100)**100 }}"),
    Bomb(
        "nested-range-loops",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    ),
    Bomb("loop-of-megabytes", "{% for i in range(3000) %}{{ 'a'*1000000 }}{% endfor %}"),
    Bomb("int-digits", "{{ ((2**100)**100)**100 }}"),
    # widths and precisions everywhere
    Bomb("percent-star-width", "{{ '%*d' % (999999999, 1) }}"),
    Bomb("percent-precision", "{{ '%.999999999f' % 1.5 }}"),
    Bomb("format-precision", "{{ '{:.999999999f}'.format(1.5) }}"),
    Bomb("format-nested-spec", "{{ '{0:{1}}'.format('x', 999999999) }}"),
    Bomb("format-filter", "{{ '%-999999999s'|format('x') }}"),
    Bomb("center-method", "{{ 'x'.center(999999999) }}"),
    Bomb("zfill-method", "{{ '1'.zfill(999999999) }}"),
    Bomb("expandtabs", "{{ ('\t' * 100000).expandtabs(100000) }}"),
    # recursion: macros and caller
    Bomb(
        "macro-forever",
        "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}",
        expect=(RenderError,),
    ),
    Bomb(
        "macro-doubling",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}x{% endmacro %}"
        "{{ f(60) }}",
    ),
    Bomb("caller-doubling", _nested_calls(40)),
    # huge sizes through filters
    Bomb("batch-fill", "{{ range(3)|batch(999999999, 'x')|list }}"),
    Bomb("slice-count", "{{ range(3)|slice(999999999)|list }}"),
    Bomb("dictsort-huge", "{{ dict(range(10000000)|batch(2)|list)|dictsort }}"),
    Bomb(
        "filter-doubling",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s|replace('a', 'aa')|replace('b', 'bb') %}{% endfor %}{{ ns.s }}",
    ),
    Bomb("string-filter-repeat", "{{ (range(100)|string) * 99999999 }}"),
    Bomb(
        "map-select-chain", "{{ range(100000000)|map('string')|select|map('upper')|list|length }}"
    ),
    Bomb(
        "loop-cycle",
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ loop.cycle('a', 'b') }}"
        "{% endfor %}{% endfor %}",
    ),
    Bomb(
        "tojson-doubling",
        "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
        "{% endfor %}{{ ns.a|tojson }}",
    ),
    Bomb(
        "tojson-deep-indent",
        "{% set ns = namespace(a=[0]) %}{% for i in range(800) %}{% set ns.a = [ns.a] %}"
        "{% endfor %}{{ ns.a|tojson(indent=1000) }}",
    ),
    Bomb("join-separator", "{{ range(100000)|join('x' * 100000) }}"),
    Bomb("join-method", "{{ ('y' * 100000).join('x' * 100000) }}"),
    Bomb("wordwrap-separator", "{{ ('a ' * 100000)|wordwrap(1, wrapstring='x' * 1000) }}"),
    Bomb("sum-of-lists", "{{ ([[1] * 500] * 500)|sum(start=[]) }}"),
    Bomb(
        "concat-doubling",
        "{% set ns = namespace(a='ab') %}{% for i in range(40) %}{% set ns.a = ns.a ~ ns.a %}"
        "{% endfor %}{{ ns.a|length }}",
    ),
    Bomb(
        "list-plus-doubling",
        "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}"
        "{% endfor %}{{ ns.a|length }}",
    ),
    Bomb(
        "set-block-retained",
        "{% set a = 'a' * 1000000 %}{% for i in range(1000) %}{% set b %}{{ a }}{{ a }}"
        "{% endset %}{% endfor %}",
    ),
    Bomb(
        "slices-retained",
        "{% set x = 'a' * 1000000 %}{% for i in range(1000) %}{{ x[i:] }}{% endfor %}",
    ),
    Bomb("range-forever", "{% for x in range(1000000000) if false %}{% endfor %}"),
    Bomb(
        "strings-as-loops",
        "{% for a in 'x' * 1000000 %}{% for b in 'y' * 1000000 %}{% endfor %}{% endfor %}",
    ),
    Bomb("big-int-parse", "{{ ('9' * 4000)|int * ('9' * 4000)|int }}"),
    Bomb("to-bytes", "{{ (1).to_bytes(999999999, 'big') }}", expect=(SecurityError,)),
    Bomb("fromkeys", "{{ {}.fromkeys('x' * 1000000, 'y' * 1000) }}", expect=(SecurityError,)),
    Bomb("urlize-target", "{{ ('http://a.b ' * 50000)|urlize(target='x' * 10000) }}"),
    # includes that each expand
    Bomb(
        "include-expanding",
        "{% for i in range(1000) %}{% include 'bomb-part@production' %}{% endfor %}",
        includes={"bomb-part": "{% for i in range(1000) %}{{ 'x' * 900 }}{% endfor %}"},
    ),
    # bombs driven by the values: they pass the save (placeholders) and stop at render
    Bomb("value-repeat", "{{ 'x' * n }}", {"n": _INT}, {"n": 10**9}),
    Bomb(
        "value-loops",
        "{% for i in range(n) %}{% for j in range(n) %}.{% endfor %}{% endfor %}",
        {"n": _INT},
        {"n": 100000},
    ),
    Bomb(
        "value-reinserted",
        "{% for i in range(1000) %}{{ doc }}{% endfor %}",
        {"doc": _STR},
        {"doc": "d" * 1_000_000},
    ),
    Bomb("value-replace", "{{ doc|replace('a', doc) }}", {"doc": _STR}, {"doc": "a" * 100_000}),
    # within the fast path's reach (plain loops over declared arrays): bounded all the same
    Bomb(
        "fast-nested-loops",
        "{% for a in xs %}{% for b in xs %}{{ doc }}{% endfor %}{% endfor %}",
        {"xs": _ARRAY, "doc": _STR},
        {"xs": ["x"] * 20_000, "doc": "d" * 1000},
    ),
    Bomb(
        "fast-reinserted-number",
        "{% for x in xs %}{{ n }}{{ loop.index }}{% endfor %}",
        {"xs": _ARRAY, "n": _INT},
        {"xs": ["x"] * 100_000, "n": 10**999},
    ),
    Bomb(
        "fast-reinserted-object",
        "{% for x in xs %}{{ d }}{% endfor %}",
        {"xs": _ARRAY, "d": {"type": "object", "required": True}},
        {"xs": ["x"] * 10_000, "d": {"k": "v" * 100_000}},
    ),
    Bomb(
        "value-recursive-loop",
        "{% for x in tree recursive %}{{ loop(tree) }}{% endfor %}",
        {"tree": _ARRAY},
        {"tree": [1, 2]},
        expect=(RenderLimitExceeded, RenderError),
    ),
]


def save_bomb(reg: Registry, bomb: Bomb) -> None:
    """Save the bomb's includes, then the bomb itself as ``bomb`` (labelled production)."""
    for name, source in bomb.includes.items():
        reg.create_version(
            name,
            messages=[{"role": "user", "content": source}],
            settings=SETTINGS,
            labels=["production"],
        )
    reg.create_version(
        "bomb",
        messages=[{"role": "user", "content": bomb.template}],
        settings=SETTINGS,
        variables=bomb.variables,
        labels=["production"],
    )


def run_case(bomb: Bomb, db_url: str, conn: Connection) -> None:
    """Child process: save and render ``bomb`` under a 1 GiB address-space limit.

    Sends ``(stage, error type name, message, wall seconds)``: ``stage`` is ``save``,
    ``render``, ``rendered`` (no error: a failure), ``memory`` or ``crash``.
    """
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    start = time.perf_counter()
    stage = "save"
    try:
        reg = Registry(db_url)
        try:
            save_bomb(reg, bomb)
            stage = "render"
            reg.get("bomb").render(bomb.values)
            stage = "rendered"
            result = (stage, "", "")
        except RegistryError as exc:
            result = (stage, type(exc).__name__, exc.message[:300])
    except MemoryError:
        result = ("memory", "MemoryError", f"at {stage}")
    except BaseException as exc:  # reported, never raised in the child
        result = ("crash", type(exc).__name__, str(exc)[:300])
    conn.send((*result, time.perf_counter() - start))
    conn.close()


__all__ = ["ADDRESS_SPACE", "BOMBS", "Bomb", "run_case", "save_bomb"]
