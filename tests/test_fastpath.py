"""The fast path: which templates are proven safe, that they render exactly as in the sandbox,
and that the escape and bomb tables cannot get through it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import RegistryError, RenderError, RenderLimitExceeded
from registry.contract_spec import validate_contract
from registry.fastpath import FastPrompt, prove
from registry.render_limits import RenderLimits
from registry.rendering import CompiledPrompt, make_environment
from tests.render_bombs import BOMBS
from tests.test_rendering import ESCAPES

SETTINGS = {"model": "claude-sonnet-4-6", "max_tokens": 100}
CONTRACT = {
    "company": "string",
    "documents": "array",
    "tags": "array",
    "tone": "string",
    "count": "integer",
    "doc": "object",
}
LIMITS = RenderLimits()


def compile_prompt(
    template: str, contract: dict[str, Any] | None = None, *, fast: bool = True
) -> CompiledPrompt:
    return CompiledPrompt(
        make_environment(limits=RenderLimits(fast_path=fast)),
        name="t",
        version=1,
        system=None,
        messages=[{"role": "user", "content": template}],
        settings=SETTINGS,
        contract=validate_contract(contract if contract is not None else CONTRACT),
    )


@pytest.mark.parametrize(
    "template",
    [
        "Hello {{ company }}",
        "{% for d in documents %}<{{ loop.index }} {{ d.title }}>{{ d['body'] }}{% endfor %}",
        "{% for d in documents if d.title != 'x' %}{{ d.title }}{% else %}none{% endfor %}",
        "{% for a in documents %}{% for b in tags %}{{ a }}{{ b }}{% endfor %}{% endfor %}",
        "{% if tone == 'formal' and count > 3 or not doc %}x{% elif tone in ['a', 'b'] %}y{% endif %}",
        "{{ doc.name if doc is defined else 'n/a' }} {{ documents|length }} {{ tags|first }}",
        "{{ company|default('Acme') }} {{ documents[0].title }} {% set t = doc.title %}{{ t }}",
        "{% for k, v in documents %}{{ k }}={{ v }}{% endfor %}",
    ],
)
def test_templates_that_only_read_declared_values_are_proven(template: str) -> None:
    assert compile_prompt(template).fast


@pytest.mark.parametrize(
    "template",
    [
        "{{ company|upper }}",  # a filter that builds a new string
        "{{ count * 2 }}",  # arithmetic
        "{{ company.center(10) }}",  # a call
        "{{ company.format }}",  # an attribute the sandbox wraps
        "{{ documents.append }}",  # an attribute the sandbox refuses
        "{{ doc._private }}",
        "{{ company ~ tone }}",
        "{% for i in range(count) %}{% endfor %}",  # not a declared array
        "{% for c in company %}{% endfor %}",  # a string is not a declared array
        "{% for d in documents %}{% for s in d.sections %}{% endfor %}{% endfor %}",
        "{% for d in documents recursive %}{{ loop(d) }}{% endfor %}",
        "{% set documents = tags %}{% for d in documents %}{% endfor %}",
        "{% if company == tone %}x{% endif %}",  # no constant side: costs the values' size
        "{% if 'x' in company %}x{% endif %}",  # 'in' a value: a scan of the value
        "{% macro m() %}{% endmacro %}",
        "{% include 'other' %}",
        "{{ [company, company] }}",
        "{{ loop }}",
        "{% for d in documents %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    ],
)
def test_everything_else_is_not(template: str) -> None:
    assert not compile_prompt(template).fast


def test_the_plan_counts_steps_from_the_lengths_of_the_arrays() -> None:
    env = make_environment()
    ast = env.parse(
        "x{% for a in documents %}{{ a }}{% for b in tags %}{{ b }}{% endfor %}{% endfor %}"
    )
    plan = prove(ast, validate_contract(CONTRACT))
    assert plan is not None
    small = plan.steps({"documents": [1, 2], "tags": [1, 2, 3]})
    large = plan.steps({"documents": [1] * 20, "tags": [1, 2, 3]})
    assert small is not None and large is not None and large > small * 5
    assert plan.steps({"documents": None, "tags": []}) is None  # the sandbox decides


def test_the_fast_path_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_RENDER_FAST_PATH", "0")
    assert not RenderLimits.from_env().fast_path
    assert not compile_prompt("Hello {{ company }}", fast=False).fast


# -- the same answers as the sandbox -----------------------------------------------------------

_reads = st.sampled_from(
    [
        "company",
        "tone",
        "count",
        "doc",
        "doc.title",
        "doc['k']",
        "d",
        "d.title",
        "d.k",
        "loop.index",
        "loop.last",
        "t",
        "'c'",
        "3",
    ]
)
_conditions = st.one_of(
    _reads.map(lambda r: r),
    st.tuples(
        _reads, st.sampled_from(["==", "!=", "<", ">="]), st.sampled_from(["'a'", "3", "'formal'"])
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    _reads.map(lambda r: f"{r} in ['a', 'formal', 3]"),
    st.tuples(_reads, st.sampled_from(["defined", "none", "string", "number", "odd"])).map(
        lambda t: f"{t[0]} is {t[1]}"
    ),
    _reads.map(lambda r: f"not {r}"),
)
_outputs = st.one_of(
    _reads,
    _reads.map(lambda r: f"{r}|default('x')"),
    _reads.map(lambda r: f"{r}|length"),
    st.tuples(_reads, _conditions, _reads).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
).map(lambda e: "{{ " + e + " }}")
_bodies = st.recursive(
    st.one_of(_outputs, st.sampled_from(["text ", "\n", "  - "])),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map("".join),
        st.tuples(_conditions, inner, inner).map(
            lambda t: f"{{% if {t[0]} %}}{t[1]}{{% else %}}{t[2]}{{% endif %}}"
        ),
        inner.map(lambda b: f"{{% for d in documents %}}{b}{{% endfor %}}"),
        inner.map(
            lambda b: f"{{% for t in tags if t != 'skip' %}}{b}{{% else %}}none{{% endfor %}}"
        ),
        st.tuples(_reads, inner).map(lambda t: f"{{% set t = {t[0]} %}}{t[1]}"),
    ),
    max_leaves=6,
)
_scalars = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.none(), st.booleans())
_values = st.fixed_dictionaries(
    {
        "company": st.text(max_size=10),
        "tone": st.sampled_from(["formal", "a", ""]),
        "count": st.integers(-3, 10),
        "doc": st.dictionaries(st.sampled_from(["title", "k"]), _scalars, max_size=2),
        "documents": st.lists(
            st.one_of(
                st.dictionaries(st.sampled_from(["title", "k"]), _scalars, max_size=2), _scalars
            ),
            max_size=4,
        ),
        "tags": st.lists(st.one_of(st.sampled_from(["a", "skip"]), _scalars), max_size=4),
        "d": st.dictionaries(st.sampled_from(["title", "k"]), _scalars, max_size=2),
        "t": st.text(max_size=5),
        "loop": st.dictionaries(st.sampled_from(["index", "last"]), _scalars, max_size=2),
    }
)


#: the grammar's names: loop targets (d, t) and ``loop`` are declared too, so that a template
#: reading them outside a loop is still proven (and then fails the same way in both)
_GRAMMAR_CONTRACT = {**CONTRACT, "d": "object", "t": "string", "loop": "object"}


def _outcome(prompt: CompiledPrompt, values: dict[str, Any]) -> tuple[str, str]:
    try:
        return "ok", prompt.render(values).messages[0]["content"]
    except RegistryError as exc:
        return type(exc).__name__, exc.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=_bodies, values=_values)
def test_the_fast_path_answers_exactly_as_the_sandbox(
    template: str, values: dict[str, Any]
) -> None:
    fast = compile_prompt(template, _GRAMMAR_CONTRACT)
    assert fast.fast, template
    guarded = compile_prompt(template, _GRAMMAR_CONTRACT, fast=False)
    assert _outcome(fast, values) == _outcome(guarded, values)


# -- the escape and bomb tables against it -----------------------------------------------------


@pytest.mark.parametrize(
    ("template", "contract", "values"),
    [(t, {}, {}) for t in ESCAPES]
    + [
        ("{{ doc.__class__ }}", {"doc": "object"}, {"doc": {}}),
        ("{{ doc['__class__'].__mro__ }}", {"doc": "object"}, {"doc": {}}),
        (
            "{% for d in documents %}{{ d.__class__.__mro__ }}{% endfor %}",
            CONTRACT,
            {"documents": [1]},
        ),
        ("{% for d in documents %}{{ loop._iterator }}{% endfor %}", CONTRACT, {"documents": [1]}),
        ("{{ documents.append }}", CONTRACT, {"documents": []}),
        ("{{ doc.update }}", {"doc": "object"}, {"doc": {}}),
    ],
)
def test_escapes_never_get_through_the_fast_path(
    template: str, contract: dict[str, Any], values: dict[str, Any]
) -> None:
    contract = validate_contract(contract)
    full = {
        **{
            n: [] if s["type"] == "array" else {} if s["type"] == "object" else "x"
            for n, s in contract.items()
        },
        **values,
    }
    fast = FastPrompt.compile([template], contract)
    if fast is not None:  # proven: then the fast path itself must not render it
        assert fast.render(full, LIMITS) is None
    with pytest.raises(RenderError):
        compile_prompt(template, contract).render(full)


@pytest.mark.parametrize("bomb", BOMBS, ids=[b.id for b in BOMBS])
def test_bombs_never_get_through_the_fast_path(bomb: Any) -> None:
    contract = validate_contract(bomb.variables)
    fast = FastPrompt.compile([bomb.template], contract)
    if fast is not None:  # proven: the fast path declines it (the sandbox then stops it)
        assert fast.render(contract_checked(contract, bomb.values), LIMITS) is None
    if bomb.includes:
        return  # needs the registry to resolve its include: run in test_render_bombs
    with pytest.raises(tuple(bomb.expect)):
        compile_prompt(bomb.template, bomb.variables).render(bomb.values)


def contract_checked(contract: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    from registry.contract import CompiledContract

    return CompiledContract(contract).check(values)


def test_a_proven_template_over_the_output_limit_is_refused_all_the_same() -> None:
    prompt = CompiledPrompt(
        make_environment(limits=RenderLimits(max_chars=100)),
        name="t",
        version=1,
        system=None,
        messages=[{"role": "user", "content": "{% for d in documents %}{{ company }}{% endfor %}"}],
        settings=SETTINGS,
        contract=validate_contract(CONTRACT),
    )
    assert prompt.fast
    values = {"company": "c" * 200, "documents": [1], "tags": [], "tone": "", "count": 0, "doc": {}}
    assert prompt.render(values).messages[0]["content"] == "c" * 200  # a value counts once
    with pytest.raises(RenderLimitExceeded, match="REGISTRY_RENDER_MAX_CHARS"):
        prompt.render({**values, "documents": [1, 2]})
