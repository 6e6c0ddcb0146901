"""Rendering: the sandbox, strict variables, the contract, caching of compiled templates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import RenderError, SecurityError, TemplateSyntaxError, ValidationError
from registry.contract import CompiledContract
from registry.contract_spec import validate_contract
from registry.rendering import CompiledPrompt, IncludeRef, analyze, make_environment

ENV = make_environment()


def compile_prompt(template: str, contract: dict[str, object] | None = None) -> CompiledPrompt:
    return CompiledPrompt(
        ENV,
        name="t",
        version=1,
        system=None,
        messages=[{"role": "user", "content": template}],
        settings={"model": "claude-sonnet-4-6", "max_tokens": 10},
        contract=validate_contract(contract or {}),
    )


def render(template: str, contract: dict[str, object] | None = None, **values: object) -> str:
    return compile_prompt(template, contract).render(values).messages[0]["content"]


#: the sandbox-escape table: every one must end in a RenderError (also through the fast path)
ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__class__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{x.__class__}'.format_map({'x': ''}) }}",
    "{{ ('{0.__class__}'|format)('x') }}",
    "{% set x = [] %}{{ x.append(1) }}",
    "{{ {}.update(a=1) }}",
    "{{ 'a' * 10000000 }}",
    "{{ [1] * 10000000 }}",
    "{{ 10 ** 1000 }}",
    "{{ lipsum(1000) }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_refuses_escapes_and_abuse(template: str) -> None:
    with pytest.raises(RenderError):
        render(template)


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ [].append(1) }}"],
)
def test_sandbox_violations_are_security_errors(template: str) -> None:
    with pytest.raises(SecurityError):
        render(template)


def test_strict_undefined_attribute_is_an_error() -> None:
    with pytest.raises(RenderError, match="has no attribute"):
        render("{{ doc.missing }}", {"doc": "object"}, doc={"title": "x"})


def test_missing_required_variable_names_it() -> None:
    with pytest.raises(RenderError, match="missing required variable 'question'") as info:
        render("{{ question }}", {"question": "string"})
    assert info.value.variable == "question"


def test_unknown_variable_names_it() -> None:
    with pytest.raises(RenderError, match="unknown variable 'extra'"):
        render("{{ question }}", {"question": "string"}, question="q", extra=1)


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("string", "x", 3),
        ("integer", 3, 3.5),
        ("integer", 3, True),
        ("number", 3.5, "3.5"),
        ("number", 2, False),
        ("boolean", True, 1),
        ("array", [1, 2], "12"),
        ("object", {"a": 1}, [("a", 1)]),
    ],
)
def test_types_are_checked(type_name: str, good: object, bad: object) -> None:
    contract = {"v": {"type": type_name}}
    render("{{ v }}", contract, v=good)
    with pytest.raises(RenderError, match=f"'v' must be of type {type_name}"):
        render("{{ v }}", contract, v=bad)


def test_defaults_and_optional_variables() -> None:
    contract = {
        "n": {"type": "integer", "default": 3},
        "who": {"type": "string", "required": False},
    }
    assert render("{{ n }}{% if who %} {{ who }}{% endif %}", contract) == "3"
    assert render("{{ n }}{% if who %} {{ who }}{% endif %}", contract, n=5, who="ana") == "5 ana"


def test_loop_and_conditional() -> None:
    contract = {"docs": "array", "formal": "boolean"}
    out = render(
        "{% for d in docs %}[{{ d.title }}]{% endfor %}{% if formal %}Dear{% else %}Hi{% endif %}",
        contract,
        docs=[{"title": "a"}, {"title": "b"}],
        formal=False,
    )
    assert out == "[a][b]Hi"


def test_syntax_error_reports_the_line() -> None:
    with pytest.raises(TemplateSyntaxError, match="line 2"):
        analyze("fine\n{% if x %}never closed", "system template")


def test_analyze_lists_variables_and_includes() -> None:
    info = analyze('{{ a }}{% for x in items %}{{ x }}{% endfor %}{% include "snip@3" %}', "t")
    assert info.variables == {"a", "items"}
    assert info.includes == (IncludeRef("snip", version=3),)


def test_dynamic_include_is_refused() -> None:
    with pytest.raises(ValidationError, match="literally"):
        analyze("{% include name %}", "t")


def test_include_ref_parsing() -> None:
    assert IncludeRef.parse("a") == IncludeRef("a", label="production")
    assert IncludeRef.parse("team/a@staging") == IncludeRef("team/a", label="staging")
    assert IncludeRef.parse("a@12") == IncludeRef("a", version=12)


def test_to_request_moves_sampling_settings_to_extra_body() -> None:
    prompt = CompiledPrompt(
        ENV,
        name="t",
        version=1,
        system="sys {{ a }}",
        messages=[{"role": "user", "content": "{{ a }}"}],
        settings={
            "model": "claude-haiku-4-5",
            "max_tokens": 5,
            "temperature": 0.2,
            "stop_sequences": ["x"],
        },
        contract=validate_contract({"a": "string"}),
    )
    request = prompt.render({"a": "hi"}).to_request()
    assert request == {
        "model": "claude-haiku-4-5",
        "max_tokens": 5,
        "stop_sequences": ["x"],
        "system": "sys hi",
        "messages": [{"role": "user", "content": "hi"}],
        "extra_body": {"temperature": 0.2},
    }


def test_rendered_request_is_a_copy() -> None:
    prompt = compile_prompt("{{ a }}", {"a": "string"})
    first = prompt.render({"a": "x"}).to_request()
    first["messages"][0]["content"] = "mutated"
    first["model"] = "other"
    assert prompt.render({"a": "x"}).to_request()["model"] == "claude-sonnet-4-6"


def test_sensitive_variables_are_redacted() -> None:
    contract = CompiledContract(
        validate_contract({"secret": {"type": "string", "sensitive": True}, "q": "string"})
    )
    assert contract.redact({"secret": "s3", "q": "x"}) == {"secret": "[redacted]", "q": "x"}


template_text = st.text(alphabet=st.sampled_from(list("{}%#-+ ab\n'\"")), max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        template_text, st.sampled_from(["{{ 7*7 }}", "{% raw %}", "{% for x in y %}", "{#"])
    )
)
def test_values_are_rendered_literally_never_evaluated(value: str) -> None:
    assert render("<{{ v }}>", {"v": "string"}, v=value) == f"<{value}>"


@settings(max_examples=100, deadline=None)
@given(items=st.lists(template_text, max_size=5))
def test_values_in_loops_are_literal(items: list[str]) -> None:
    out = render("{% for i in items %}{{ i }}|{% endfor %}", {"items": "array"}, items=items)
    assert out == "".join(f"{i}|" for i in items)


def test_changing_a_rendered_result_does_not_change_the_version() -> None:
    prompt = CompiledPrompt(
        ENV,
        name="t",
        version=1,
        system=None,
        messages=[{"role": "user", "content": "hi"}],
        settings={"model": "claude-haiku-4-5", "max_tokens": 5, "metadata": {"user_id": "u"}},
        contract={},
    )
    first = prompt.render({})
    first.settings["max_tokens"] = 999
    first.to_request()["metadata"]["user_id"] = "changed"
    again = prompt.render({}).to_request()
    assert again["max_tokens"] == 5 and again["metadata"] == {"user_id": "u"}
