"""The fast path: templates proven safe against their contract render as plain Jinja2.

A template is proven safe when its whole cost is known before it runs. It may only:

- output text, constants, declared variables, their keys and items (``doc.title``,
  ``row["id"]``, ``xs[0]``; never a name starting with ``_`` or naming a method of a builtin
  type) and the loop variable's properties (``loop.index``...);
- loop over declared variables of type ``array`` (nested loops too, each over a declared
  array), with an optional ``if`` filter and ``else``;
- branch with ``if``/``elif``/``else`` and ``a if c else b`` on comparisons with a constant,
  ``and``/``or``/``not`` and the cheap tests (``defined``, ``none``, ``number``...);
- use the filters ``length``, ``count``, ``default``, ``first``, ``last`` (with constant
  arguments) and ``{% set name = ... %}`` of such expressions.

No calls, arithmetic, other filters, macros, includes or blocks. Such a template allocates
nothing that grows with its loops except the pieces of its output, and every operation costs
at most the size of the template. So the number of steps it runs is a product of the lengths
of the arrays it is given (:meth:`FastPlan.steps`), checked before rendering against
``REGISTRY_RENDER_MAX_STEPS``; its output is checked against ``REGISTRY_RENDER_MAX_CHARS``
after; a value that is not a string (or a small integer) is measured before it is printed.
Within those bounds it runs with none of the sandbox's per-call checks.

Anything else, or any exception, falls back to the sandboxed, bounded render, which then gives
the canonical result or error: the fast path never changes what a render returns or raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.filters import FILTERS
from jinja2.sandbox import _mutable_spec
from jinja2.tests import TESTS

from .render_limits import Budget, RenderLimits, int_size
from .sandbox import PromptCodeGenerator

#: filters that return their input, one of its items or a number: nothing grows
FAST_FILTERS = frozenset({"length", "count", "default", "d", "first", "last"})
#: tests that cost nothing that grows with the values
FAST_TESTS = frozenset(
    {
        "defined",
        "undefined",
        "none",
        "boolean",
        "false",
        "true",
        "integer",
        "float",
        "number",
        "string",
        "mapping",
        "sequence",
        "iterable",
        "even",
        "odd",
        "divisibleby",
        "eq",
        "equalto",
        "==",
        "ne",
        "!=",
        "sameas",
    }
)
_COMPARE_OPS = frozenset({"eq", "ne", "lt", "lteq", "gt", "gteq", "in", "notin"})
#: attributes the sandbox answers differently from plain Jinja (wrapped or refused)
_SANDBOXED_ATTRS = frozenset({"format", "format_map"}.union(*(names for _, names in _mutable_spec)))
_LOOP_ATTRS = frozenset(
    {
        "index",
        "index0",
        "revindex",
        "revindex0",
        "first",
        "last",
        "length",
        "depth",
        "depth0",
        "previtem",
        "nextitem",
    }
)
#: integers printed without measuring them (a loop index, a count)
_SMALL_INT = 10**18


class NotProvable(Exception):
    """Internal: the template uses something the fast path does not allow."""


@dataclass(frozen=True)
class FastPlan:
    """What a proven template costs: fixed steps plus, per loop, a product of array lengths.

    ``loops`` holds ``(arrays, weight)``: the variables the loop and its enclosing loops
    iterate, and the nodes run per iteration.
    """

    base: int
    loops: tuple[tuple[tuple[str, ...], int], ...]

    def steps(self, values: Mapping[str, Any]) -> int | None:
        """Steps a render with ``values`` runs, or None when a loop's array is not a list."""
        total = self.base
        for arrays, weight in self.loops:
            count = weight
            for name in arrays:
                items = values.get(name)
                if type(items) is not list and type(items) is not tuple:
                    return None
                count *= len(items)
            total += count
        return total


def _node_count(node: nodes.Node) -> int:
    """Nodes of ``node``'s subtree, loops not included (they are counted on their own)."""
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        count += 1
        if isinstance(current, nodes.For) and current is not node:
            continue
        stack.extend(current.iter_child_nodes())
    return count


class _Prover:
    """Walks a template and builds its plan, or raises ``NotProvable``."""

    def __init__(self, contract: Mapping[str, Mapping[str, Any]]) -> None:
        self.contract = contract
        self.arrays = {n for n, spec in contract.items() if spec.get("type") == "array"}
        self.loops: list[tuple[tuple[str, ...], int]] = []
        self.rebound: set[str] = set()

    def prove(self, template: nodes.Template) -> FastPlan:
        for target in template.find_all(nodes.Name):
            if target.ctx in ("store", "param"):
                self.rebound.add(target.name)
        base = 0
        for node in template.body:
            base += _node_count(node)
            self.statement(node, (), frozenset())
        iterated = {n for arrays, _ in self.loops for n in arrays}
        if iterated & self.rebound:
            raise NotProvable("a loop's array is assigned to")
        return FastPlan(base=base, loops=tuple(self.loops))

    def statement(self, node: nodes.Node, outer: tuple[str, ...], local: frozenset[str]) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self.expression(child, outer, local)
        elif isinstance(node, nodes.If):
            self.expression(node.test, outer, local)
            for part in (*node.body, *node.else_):
                self.statement(part, outer, local)
            for branch in node.elif_:
                self.statement(branch, outer, local)
        elif isinstance(node, nodes.For):
            self.loop(node, outer, local)
        elif isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
            self.expression(node.node, outer, local)
        else:
            raise NotProvable(type(node).__name__)

    def loop(self, node: nodes.For, outer: tuple[str, ...], local: frozenset[str]) -> None:
        if node.recursive or not isinstance(node.iter, nodes.Name):
            raise NotProvable("a loop over something else than a declared array")
        name = node.iter.name
        if name not in self.arrays or name in local:
            raise NotProvable(f"a loop over {name!r}, not a declared array")
        targets: list[nodes.Node] = (
            list(node.target.items) if isinstance(node.target, nodes.Tuple) else [node.target]
        )
        names = {t.name for t in targets if isinstance(t, nodes.Name)}
        if len(names) != len(targets):
            raise NotProvable("a loop target that is not a name")
        inner = local | names | {"loop"}
        arrays = (*outer, name)
        weight = 1
        if node.test is not None:
            self.expression(node.test, arrays, inner)
            weight += _node_count(node.test)
        for part in node.body:
            weight += _node_count(part)
            self.statement(part, arrays, inner)
        for part in node.else_:
            weight += _node_count(part)
            self.statement(part, outer, local)
        self.loops.append((arrays, weight))

    def expression(self, node: nodes.Node, outer: tuple[str, ...], local: frozenset[str]) -> None:
        if self.constant(node):
            return
        if isinstance(node, nodes.Name):
            known = node.name in self.contract or node.name in local
            if not (known or node.name in self.rebound):
                raise NotProvable(f"{node.name!r} is neither declared nor set by the template")
            return
        if isinstance(node, nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == "loop" and "loop" in local:
                if node.attr not in _LOOP_ATTRS:
                    raise NotProvable(f"loop.{node.attr}")
                return
            self.key(node.attr)
            self.expression(node.node, outer, local)
            return
        if isinstance(node, nodes.Getitem):
            if not isinstance(node.arg, nodes.Const) or type(node.arg.value) not in (str, int):
                raise NotProvable("a subscript that is not a constant key or index")
            if isinstance(node.arg.value, str):
                self.key(node.arg.value)
            self.expression(node.node, outer, local)
            return
        if isinstance(node, nodes.And | nodes.Or):
            self.expression(node.left, outer, local)
            self.expression(node.right, outer, local)
            return
        if isinstance(node, nodes.Not):
            self.expression(node.node, outer, local)
            return
        if isinstance(node, nodes.CondExpr):
            for part in (node.test, node.expr1, node.expr2):
                if part is not None:
                    self.expression(part, outer, local)
            return
        if isinstance(node, nodes.Compare):
            self.compare(node, outer, local)
            return
        if isinstance(node, nodes.Filter | nodes.Test):
            allowed = FAST_FILTERS if isinstance(node, nodes.Filter) else FAST_TESTS
            if node.name not in allowed or node.dyn_args is not None or node.dyn_kwargs:
                raise NotProvable(f"the {node.name!r} filter or test")
            if not all(self.constant(a) for a in (*node.args, *(k.value for k in node.kwargs))):
                raise NotProvable("a filter or test argument that is not a constant")
            if node.node is None:
                raise NotProvable("a filter block")
            self.expression(node.node, outer, local)
            return
        raise NotProvable(type(node).__name__)

    def compare(self, node: nodes.Compare, outer: tuple[str, ...], local: frozenset[str]) -> None:
        """Every comparison involves a constant, so it costs at most the constant's size."""
        left: nodes.Expr = node.expr
        for op in node.ops:
            right = op.expr
            if op.op not in _COMPARE_OPS:
                raise NotProvable(op.op)
            if op.op in ("in", "notin"):
                if not self.constant(right):
                    raise NotProvable("'in' a value that is not a constant")
            elif not (self.constant(left) or self.constant(right)):
                raise NotProvable("a comparison without a constant side")
            left = right
        self.expression(node.expr, outer, local)
        for op in node.ops:
            self.expression(op.expr, outer, local)

    @staticmethod
    def constant(node: nodes.Node) -> bool:
        if isinstance(node, nodes.Const):
            return True
        if isinstance(node, nodes.List | nodes.Tuple):
            return all(isinstance(i, nodes.Const) for i in node.items)
        return False

    @staticmethod
    def key(name: str) -> None:
        if name.startswith("_") or name in _SANDBOXED_ATTRS:
            raise NotProvable(f"the attribute {name!r}")


def prove(template: nodes.Template, contract: Mapping[str, Mapping[str, Any]]) -> FastPlan | None:
    """The plan of a template proven safe against ``contract``, or None."""
    try:
        return _Prover(contract).prove(template)
    except NotProvable:
        return None


# -- the plain environment the proven templates run in --------------------------------------


class FastCodeGenerator(PromptCodeGenerator):
    """Plain code: no loop guards, no step counting; small integers print directly."""

    text_of = (
        f"str(_o) if _o.__class__ is int and -{_SMALL_INT} < _o < {_SMALL_INT} "
        "else environment.fast_text(_o, context)"
    )


class FastEnvironment(jinja2.Environment):
    """Plain (unsandboxed) Jinja2 for proven templates: same options as the sandbox."""

    code_generator_class = FastCodeGenerator

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            optimized=False,
            cache_size=0,
        )
        self.filters = {name: FILTERS[name] for name in FAST_FILTERS}
        self.tests = {name: TESTS[name] for name in FAST_TESTS}
        self.globals = {}

    def fast_text(self, value: Any, context: Any) -> str:
        """Text of an output value that is not a string: measured under a budget first."""
        budget: Budget | None = getattr(context, "registry_budget", None)
        if budget is None:
            limits, values = context.registry_fast
            budget = Budget(limits, values)
            context.registry_budget = budget
        if type(value) is int:
            budget.check_int(value, "an output number")
            budget.charge(int_size(value))
            return str(value)
        size = budget.size_of(value)
        budget.will_make(size, "the text of an output value")
        budget.charge(size)
        return str(value)


_FAST_ENV = FastEnvironment()


class FastPrompt:
    """The proven templates of a version and their plans."""

    __slots__ = ("_templates", "plans")

    def __init__(self, templates: Sequence[jinja2.Template], plans: Sequence[FastPlan]) -> None:
        self._templates = tuple(templates)
        self.plans = tuple(plans)

    @classmethod
    def compile(
        cls, sources: Iterable[str], contract: Mapping[str, Mapping[str, Any]]
    ) -> FastPrompt | None:
        """Prove and compile every source, or None when one of them is not provable."""
        templates, plans = [], []
        for source in sources:
            try:
                ast = _FAST_ENV.parse(source)
            except jinja2.TemplateSyntaxError:
                return None
            plan = prove(ast, contract)
            if plan is None:
                return None
            templates.append(_FAST_ENV.from_string(ast))
            plans.append(plan)
        return cls(templates, plans)

    def render(self, values: dict[str, Any], limits: RenderLimits) -> list[str] | None:
        """The rendered texts, or None when the guarded render must decide (over a bound, or
        any error: the sandbox then gives the canonical answer)."""
        steps = 0
        for plan in self.plans:
            found = plan.steps(values)
            if found is None:
                return None
            steps += found
        if steps > limits.max_steps:
            return None
        out: list[str] = []
        total = 0
        try:
            for template in self._templates:
                context = template.new_context(values)
                context.registry_fast = (limits, values)  # type: ignore[attr-defined]
                pieces = list(template.root_render_func(context))
                total += sum(map(len, pieces))
                out.append("".join(pieces))
        except Exception:
            return None
        if total > limits.max_chars and total > Budget(limits, values).cap():
            return None
        return out


__all__ = [
    "FAST_FILTERS",
    "FAST_TESTS",
    "FastCodeGenerator",
    "FastEnvironment",
    "FastPlan",
    "FastPrompt",
    "prove",
]
