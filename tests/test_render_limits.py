"""The render budget: what is bounded, what still works, where the errors surface.

The bomb table itself (child processes, HTTP) is ``tests/test_render_bombs.py``.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import (
    ConfigurationError,
    Registry,
    RegistryError,
    RenderError,
    RenderLimitExceeded,
    SecurityError,
    render_limits,
)
from registry.api_keys import create_api_key
from registry.client import RegistryClient
from registry.contract_spec import validate_contract
from registry.render_limits import (
    FAST_PATH_ENV,
    MAX_CHARS_ENV,
    MAX_INT_DIGITS_ENV,
    MAX_STEPS_ENV,
    TIMEOUT_ENV,
    Budget,
    RenderLimits,
)
from registry.rendering import CompiledPrompt, analyze, make_environment
from registry.sandbox import output_weight
from tests.api_support import LiveServer, bearer, build_app
from tests.conftest import simple_version

SETTINGS = {"model": "claude-sonnet-4-6", "max_tokens": 100}


def compile_prompt(
    template: str, contract: dict[str, Any] | None = None, limits: RenderLimits | None = None
) -> CompiledPrompt:
    return CompiledPrompt(
        make_environment(limits=limits or RenderLimits()),
        name="t",
        version=1,
        system=None,
        messages=[{"role": "user", "content": template}],
        settings=SETTINGS,
        contract=validate_contract(contract or {}),
    )


def render(template: str, contract: dict[str, Any] | None = None, **values: Any) -> str:
    limits = values.pop("limits", None)
    return str(compile_prompt(template, contract, limits).render(values).messages[0]["content"])


# -- harmless things keep working ------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 2 ** 0.5 }}", "1.4142135623730951"),
        ("{{ 2 ** -3 }}", "0.125"),
        ("{{ 2 ** 100.5 > 10 ** 30 }}", "True"),
        ("{{ 2 ** -101 > 0 }}", "True"),
        ("{{ 10 ** 9 }}", "1000000000"),
        ("{{ (2 ** 100 * 3 ** 50) % 1000 }}", str((2**100 * 3**50) % 1000)),
        ("{{ (10 ** 999) // 10 ** 998 }}", "10"),
        ("{{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ -7 }}", "3 3.5 1 -7"),
        ("{{ '%05d|%-4s|%.2f' % (42, 'ab', 3.14159) }}", "00042|ab  |3.14"),
        ("{{ '{:>6}|{:^5}|{:.1%}'.format('x', 'y', 0.5) }}", "     x|  y  |50.0%"),
        ("{{ '{a}-{b}'.format_map({'a': 1, 'b': 2}) }}", "1-2"),
        ("{{ 'x'|center(5) }}|{{ 'ab'.ljust(4) }}|{{ '7'.zfill(3) }}", "  x  |ab  |007"),
        ("{{ 'a,b'|replace(',', ', ') }} {{ 'a-b'.replace('-', '+') }}", "a, b a+b"),
        ("{{ ['a', 'b']|join(', ') }} {{ '-'.join(['x', 'y']) }}", "a, b x-y"),
        ("{{ 'ab' * 3 }} {{ [1, 2] * 2 }} {{ (1,) + (2,) }}", "ababab [1, 2, 1, 2] (1, 2)"),
        ("{{ 'a\nb'|indent(2, true) }}", "  a\n  b"),
        ("{{ 'one two three'|wordwrap(7) }}", "one two\nthree"),
        (
            "{{ range(3)|batch(2, 0)|list }} {{ range(5)|slice(2)|list }}",
            "[[0, 1], [2, 0]] [[0, 1, 2], [3, 4]]",
        ),
        ("{{ [1, 2, 3]|sum }} {{ [[1], [2]]|sum(start=[]) }}", "6 [1, 2]"),
        ("{{ {'b': 1, 'a': 2}|dictsort }}", "[('a', 2), ('b', 1)]"),
        ("{{ [{'a': [1]}]|tojson(indent=1) }}", '[\n {\n  "a": [\n   1\n  ]\n }\n]'),
        (
            "{{ 'see http://x.io'|urlize }}",
            'see <a href="http://x.io" rel="noopener">http://x.io</a>',
        ),
        ("{{ ('abc'[1:]) }}{{ [1, 2, 3][::2] }}", "bc[1, 3]"),
        ("{% for x in 'ab' %}{{ loop.index }}{{ loop.cycle('-', '+') }}{% endfor %}", "1-2+"),
        ("{{ dict(a=1)|list }} {{ {'a': 1}.get('a') }} {{ 'a b'.split() }}", "['a'] 1 ['a', 'b']"),
        ("{{ (12).bit_length() }} {{ 'Ab'.swapcase() }} {{ [3, 1].index(1) }}", "4 aB 1"),
        (
            "{% macro m(x) %}<{{ x }}{{ caller() }}>{% endmacro %}{% call m(1) %}c{% endcall %}",
            "<1c>",
        ),
        (
            "{% for n in [[1, [2]], [3]] recursive %}{% if n is iterable %}"
            "{{ loop(n) }}{% else %}{{ n }}{% endif %}{% endfor %}",
            "123",
        ),
    ],
)
def test_harmless_templates_still_render(template: str, expected: str) -> None:
    assert render(template) == expected


def test_the_budget_counts_only_what_the_template_generates() -> None:
    """A document longer than the limit, inserted as it is, is fine; repeating it is not."""
    limits = RenderLimits(max_chars=1000)
    doc = "d" * 5000
    contract = {"doc": "string"}
    out = render("Summarise:\n{{ doc }}\nThanks.", contract, doc=doc, limits=limits)
    assert out == f"Summarise:\n{doc}\nThanks."
    assert render("{{ doc|upper }}", contract, doc=doc, limits=limits) == doc.upper()
    with pytest.raises(RenderLimitExceeded, match="REGISTRY_RENDER_MAX_CHARS=1,000") as info:
        render("{{ doc }}{{ doc }}", contract, doc=doc, limits=limits)
    assert info.value.limit == "REGISTRY_RENDER_MAX_CHARS"
    assert info.value.maximum == 1000
    with pytest.raises(RenderLimitExceeded):
        render("{{ 'x' * 1001 }}", limits=limits)
    assert render("{{ 'x' * 1000 }}", limits=limits) == "x" * 1000


def test_system_and_messages_share_one_budget() -> None:
    prompt = CompiledPrompt(
        make_environment(limits=RenderLimits(max_chars=100)),
        name="t",
        version=1,
        system="{{ 'a' * 60 }}",
        messages=[{"role": "user", "content": "{{ 'b' * 60 }}"}],
        settings=SETTINGS,
        contract={},
    )
    with pytest.raises(RenderLimitExceeded, match="rendered prompt is over 100"):
        prompt.render({})


def test_loop_steps_count_the_outputs_of_the_body() -> None:
    limits = RenderLimits(max_steps=100)
    assert render("{% for i in range(90) %}{{ i }}{% endfor %}", limits=limits)
    with pytest.raises(RenderLimitExceeded, match="REGISTRY_RENDER_MAX_STEPS=100"):
        render("{% for i in range(40) %}<{{ i }}>{{ i }}{% endfor %}", limits=limits)
    with pytest.raises(RenderLimitExceeded, match="REGISTRY_RENDER_MAX_STEPS"):
        render("{{ range(1000)|list|length }}", limits=limits)


def test_output_weight_counts_outputs_not_nested_loops() -> None:
    env = make_environment()
    body = env.parse(
        "a{{ x }}b{% if y %}{{ y }}{% else %}c{% endif %}{% for z in w %}{{ z }}{{ z }}{% endfor %}"
    ).body
    assert output_weight(body) == 3 + 1 + 1 + 1  # a{{x}}b, {{y}}, c, and the loop itself


def test_integers_are_bounded_by_digits() -> None:
    limits = RenderLimits(max_int_digits=50)
    assert render("{{ 10 ** 49 }}", limits=limits) == str(10**49)
    for template in (
        "{{ 10 ** 50 }}",
        "{{ (10 ** 30) * (10 ** 30) }}",
        "{{ [10 ** 40, 10 ** 40]|sum * 10 ** 10 }}",
    ):
        with pytest.raises(RenderLimitExceeded, match="REGISTRY_RENDER_MAX_INT_DIGITS=50"):
            render(template, limits=limits)
    with pytest.raises(RenderLimitExceeded, match="more than"):
        render("{{ n }}", {"n": "integer"}, n=10**60, limits=limits)


def test_the_deadline_stops_a_render_that_never_ends() -> None:
    limits = RenderLimits(timeout_ms=50)
    with pytest.raises(RenderLimitExceeded, match="REGISTRY_RENDER_TIMEOUT_MS=50 ms") as info:
        render(
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
            limits=limits,
        )
    assert info.value.limit == "REGISTRY_RENDER_TIMEOUT_MS"


def test_methods_of_builtin_values_are_allowed_by_name() -> None:
    for template in (
        "{{ (1).to_bytes(10, 'big') }}",
        "{{ 'x'.encode() }}",
        "{{ {}.fromkeys('ab') }}",
    ):
        with pytest.raises(SecurityError, match="not allowed in templates"):
            render(template)


def test_every_limit_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for var in (MAX_CHARS_ENV, TIMEOUT_ENV, MAX_STEPS_ENV, MAX_INT_DIGITS_ENV, FAST_PATH_ENV):
        assert f"| `{var}` |" in readme, var
        assert var in RenderLimits.__doc__ + render_limits.__doc__, var


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_RENDER_MAX_CHARS", "2_000")
    monkeypatch.setenv("REGISTRY_RENDER_TIMEOUT_MS", "300")
    limits = RenderLimits.from_env()
    assert (limits.max_chars, limits.timeout_ms, limits.max_steps) == (2000, 300, 1_000_000)
    assert make_environment().limits == limits
    for bad in ("abc", "0", "-5"):
        monkeypatch.setenv("REGISTRY_RENDER_MAX_STEPS", bad)
        with pytest.raises(
            ConfigurationError, match="REGISTRY_RENDER_MAX_STEPS must be a positive"
        ):
            RenderLimits.from_env()


def test_registry_renders_under_the_environments_limits(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("REGISTRY_RENDER_MAX_CHARS", "50")
    with Registry(sqlite_url) as reg:
        assert reg.render_limits.max_chars == 50
        reg.create_version(
            "p",
            messages=[{"role": "user", "content": "{{ 'x' * n }}"}],
            settings=SETTINGS,
            variables={"n": {"type": "integer"}},
            labels=["production"],
        )
        assert reg.render("p", {"n": 50}).messages[0]["content"] == "x" * 50
        with pytest.raises(RenderLimitExceeded, match="p v1: "):
            reg.render("p", {"n": 200})


def test_templates_of_the_environment_render_only_under_a_budget() -> None:
    """Even Jinja's own ``Template.render`` on our environment is bounded."""
    env = make_environment(limits=RenderLimits(max_chars=100))
    assert env.from_string("{{ 'a' * 3 }}").render() == "aaa"
    assert list(env.from_string("{{ x }}").generate(x="y")) == ["y"]
    with pytest.raises(RegistryError):
        env.from_string("{{ 'a' * 101 }}").render()


def test_analysis_never_evaluates_an_expression() -> None:
    """Jinja folds constant expressions while compiling; ours never do, so a save is cheap."""
    tracemalloc.start()
    try:
        for source in (
            "{{ '%0999999999d' % 1 }}",
            "{{ 'x'|center(999999999) }}",
            "{{ ('a' * 1000000)|replace('', 'b' * 1000) }}",
            "{{ 'x' ~ ('y'|center(999999999)) }}",
        ):
            analyze(source, "system")
            make_environment().from_string(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


# -- saves ----------------------------------------------------------------------------------------


def test_save_refuses_a_version_a_test_case_blows_up_naming_the_case(reg: Registry) -> None:
    from registry.suites import create_case

    reg.create_version(
        "p",
        messages=[{"role": "user", "content": "{{ 'x' * n }}"}],
        settings=SETTINGS,
        variables={"n": {"type": "integer"}},
    )
    create_case(reg, "p", "small", variables={"n": 3})
    create_case(reg, "p", "huge", variables={"n": 10**9})
    with pytest.raises(RenderLimitExceeded, match="rendering it with test case 'huge'") as info:
        reg.create_version(
            "p",
            messages=[{"role": "user", "content": "{{ 'y' * n }}"}],
            settings=SETTINGS,
            variables={"n": {"type": "integer"}},
        )
    assert info.value.details["sample"] == "test case 'huge'"
    assert [v.version for v in reg.versions("p")] == [1]


def test_save_ignores_render_errors_that_depend_on_the_values(sqlite_reg: Registry) -> None:
    """Placeholders cannot satisfy every template: only a limit refuses the save."""
    saved = sqlite_reg.create_version(
        "p",
        messages=[{"role": "user", "content": "{{ doc.title }} {{ 10 / (n - 1) }}"}],
        settings=SETTINGS,
        variables={"doc": {"type": "object"}, "n": {"type": "integer"}},
    )
    assert saved.version == 1


def test_save_uses_declared_defaults(sqlite_reg: Registry) -> None:
    with pytest.raises(RenderLimitExceeded, match="contract's defaults"):
        sqlite_reg.create_version(
            "p",
            messages=[{"role": "user", "content": "{% for i in range(n) %}{{ i }}{% endfor %}"}],
            settings=SETTINGS,
            variables={"n": {"type": "integer", "required": False, "default": 10**7}},
        )


def test_seed_and_import_check_the_files_test_cases_before_writing(
    sqlite_reg: Registry, tmp_path: Any
) -> None:
    from registry.transfer import import_registry

    prompt = {
        "name": "p",
        "settings": SETTINGS,
        "messages": [{"role": "user", "content": "{{ 'x' * n }}"}],
        "variables": {"n": {"type": "integer"}},
        "tests": [{"name": "boom", "variables": {"n": 10**9}, "assert": [{"type": "is-json"}]}],
    }
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "p.yaml").write_text(json.dumps(prompt), encoding="utf-8")
    with pytest.raises(RenderLimitExceeded, match="test case 'boom'"):
        sqlite_reg.seed(tmp_path / "seed")
    assert sqlite_reg.prompts() == []
    export = {
        "prompts": [
            {
                "name": "p",
                "labels": {},
                "tests": prompt["tests"],
                "versions": [
                    {
                        "version": 1,
                        "system": None,
                        "messages": prompt["messages"],
                        "settings": SETTINGS,
                        "variables": prompt["variables"],
                        "output_schema": None,
                        "message": "",
                        "author": "",
                        "created_at": "2025-01-01T00:00:00+00:00",
                    }
                ],
            }
        ],
    }
    with pytest.raises(RenderLimitExceeded, match="test case 'boom'"):
        import_registry(sqlite_reg, export)
    assert sqlite_reg.prompts() == []


# -- every path ---------------------------------------------------------------------------------


def test_http_render_and_run_answer_the_typed_error_and_the_client_rebuilds_it(
    sqlite_reg: Registry,
) -> None:
    sqlite_reg.create_version(
        "p",
        messages=[{"role": "user", "content": "{{ 'x' * n }}"}],
        settings=SETTINGS,
        variables={"n": {"type": "integer"}},
        labels=["production"],
    )
    key = create_api_key(sqlite_reg, "k", "run")[0]
    with LiveServer(build_app(sqlite_reg)) as server:
        for path, body in (
            ("render", {"variables": {"n": 10**9}}),
            ("run", {"variables": {"n": 10**9}}),
        ):
            answer = requests.post(
                f"{server.url}/api/v1/prompts/p/{path}", json=body, headers=bearer(key), timeout=30
            )
            assert answer.status_code == 422, answer.text
            error = answer.json()["error"]
            assert error["type"] == "render_limit_exceeded"
            assert error["limit"] == "REGISTRY_RENDER_MAX_CHARS"
            assert error["maximum"] == 1_000_000
        client = RegistryClient(server.url, key)
        try:
            assert client.render("p", {"n": 2}).messages[0]["content"] == "xx"
            with pytest.raises(RenderLimitExceeded) as info:
                client.render("p", {"n": 10**9})
            assert info.value.limit == "REGISTRY_RENDER_MAX_CHARS"
        finally:
            client.close()


# -- any template -------------------------------------------------------------------------------

_NAMES = {"s": "string", "n": "integer", "xs": "array", "d": "object"}
_ATOMS = [
    "s",
    "n",
    "xs",
    "d",
    "d.k",
    "xs[0]",
    "x",
    "1",
    "7",
    "99999",
    "'ab'",
    "'%5d'",
    "'{:>9}'",
    "range(n)",
    "[s, s]",
]
_FILTERS = [
    "upper", "length", "string", "list", "join(s)", "center(n)", "indent(n)", "replace('a', s)",
    "batch(n, s)", "tojson", "sum", "first", "reverse", "sort", "wordwrap(n)", "truncate(n)",
    "format(n)", "int", "default(s)", "unique", "pprint", "slice(n)", "map('upper')", "select",
]  # fmt: skip
_METHODS = [
    "upper()",
    "center(n)",
    "replace('a', s)",
    "split()",
    "join(xs)",
    "zfill(n)",
    "format(s, n)",
]
_OPERATORS = ["+", "-", "*", "%", "**", "//", "~", "in", "=="]

_expressions = st.recursive(
    st.sampled_from(_ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(_OPERATORS), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(inner, st.sampled_from(_FILTERS)).map(lambda t: f"({t[0]}|{t[1]})"),
        st.tuples(inner, st.sampled_from(_METHODS)).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
    ),
    max_leaves=6,
)
_templates = st.recursive(
    st.one_of(st.sampled_from(["text ", "\n"]), _expressions.map(lambda e: "{{ " + e + " }}")),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map("".join),
        st.tuples(_expressions, inner).map(
            lambda t: f"{{% for x in {t[0]} %}}{t[1]}{{% endfor %}}"
        ),
        st.tuples(_expressions, inner).map(lambda t: f"{{% if {t[0]} %}}{t[1]}{{% endif %}}"),
        st.tuples(_expressions, inner).map(
            lambda t: (
                f"{{% set ns = namespace(v={t[0]}) %}}{{% for i in range(3) %}}"
                f"{{% set ns.v = ns.v ~ ns.v %}}{{% endfor %}}{t[1]}{{{{ ns.v }}}}"
            )
        ),
    ),
    max_leaves=5,
)
_values = st.fixed_dictionaries(
    {
        "s": st.text(max_size=30),
        "n": st.one_of(st.integers(-3, 50), st.integers(-(10**12), 10**12)),
        "xs": st.lists(st.text(max_size=10), max_size=5),
        "d": st.dictionaries(st.sampled_from(["k", "j"]), st.text(max_size=10)),
    }
)
_SMALL = RenderLimits(max_chars=20_000, timeout_ms=200, max_steps=20_000, max_int_digits=200)
_ENV = make_environment(limits=_SMALL)
_CONTRACT = validate_contract({name: {"type": kind} for name, kind in _NAMES.items()})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=_templates, values=_values)
def test_any_template_ends_in_a_registry_error_or_a_bounded_output(
    template: str, values: dict[str, Any]
) -> None:
    try:
        prompt = CompiledPrompt(
            _ENV,
            name="t",
            version=1,
            system=None,
            messages=[{"role": "user", "content": template}],
            settings=SETTINGS,
            contract=_CONTRACT,
        )
        out = prompt.render(values).messages[0]["content"]
    except RegistryError:
        return
    given_size = Budget(_SMALL).measure(values, stop=1 << 40)
    assert len(out) <= _SMALL.max_chars + given_size


def test_simple_version_still_saves(sqlite_reg: Registry) -> None:
    assert sqlite_reg.create_version("p", **simple_version()).version == 1
    with pytest.raises(RenderError):
        sqlite_reg.render("p", {}, version=1)
