"""The Jinja2 environment every prompt template runs in: sandboxed and bounded.

:class:`PromptSandbox` is Jinja's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`
(no attribute starting with ``_``, no mutation of lists and dicts) with a render budget
(:mod:`registry.render_limits`) enforced inside the environment itself:

- its code generator (:class:`BoundedCodeGenerator`) counts every loop iteration (weighted
  by the outputs of the loop body) and every include, routes ``~``, list/tuple/dict literals,
  slices and output through size checks, and never evaluates template expressions while
  compiling (no constant folding: a save never runs a user's expression);
- arithmetic (``+ - * / // % **``) is intercepted: repetition, ``%`` widths and big integers
  are checked before they are built;
- every call is counted and checked: methods of strings, numbers, lists and dicts are
  allowed by name (``center``, ``replace``, ``join``... with their sizes checked first),
  ``format``/``format_map`` have their field widths checked;
- every filter is wrapped: lazy inputs are iterated under the step count, the filters that
  can blow up (``center``, ``indent``, ``wordwrap``, ``replace``, ``join``, ``format``,
  ``batch``, ``sum``, ``tojson``, ``pprint``, ``urlize``) check their result size before
  building it, and every result is measured;
- ``range`` is bounded and ``lipsum`` is gone.

Templates of this environment render only inside a budget (:class:`PromptTemplate` opens one
when called directly); :func:`render_template` is the one loop that collects the output.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from functools import update_wrapper
from itertools import islice
from operator import add as operator_add
from string import Formatter
from typing import Any, cast

import jinja2
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError as SandboxViolation
from jinja2.filters import (
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_pprint,
    do_replace,
    do_tojson,
    do_urlize,
    do_wordwrap,
    make_attrgetter,
    sync_do_join,
    sync_do_slice,
)
from jinja2.runtime import LoopContext
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Cycler, pass_environment, pass_eval_context
from markupsafe import Markup, soft_str

from .render_limits import Budget, RenderLimits, current, int_size, open_budget

#: the operators the sandbox intercepts (all arithmetic: none is folded at compile time)
ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "**"})

#: steps a recursive ``loop(...)`` call is counted as when its loop's weight is unknown
_RECURSION_WEIGHT = 64

# -- what templates may call ---------------------------------------------------------------

_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "escape",
        "unescape",
        "striptags",
    }
)
_NUMBER_METHODS = frozenset(
    {
        "bit_length",
        "bit_count",
        "conjugate",
        "is_integer",
        "as_integer_ratio",
    }
)
_SEQUENCE_METHODS = frozenset({"count", "index", "copy"})
_DICT_METHODS = frozenset({"get", "items", "keys", "values", "copy"})
_JINJA_METHODS: dict[type, frozenset[str]] = {
    LoopContext: frozenset({"cycle", "changed"}),
    Cycler: frozenset({"next", "reset"}),
}
#: builtin types whose methods are allowed only by name (their other methods can blow up)
_BUILTIN_TYPES = (str, bytes, bytearray, int, float, complex, list, tuple, dict, set, frozenset,
                  range, memoryview, type)  # fmt: skip


#: properties of a loop variable, read directly in generated code
LOOP_ATTRS = frozenset(
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


def output_weight(body: Iterable[nodes.Node]) -> int:
    """How many pieces of output ``body`` can produce per run, not counting nested loops.

    Nested loops, macro and call-block bodies are counted by their own guards (one piece
    each here); branches of an ``if`` all count, so this is an upper bound.
    """
    count = 0
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.Output):
            count += len(node.nodes)
        elif isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock | nodes.Include):
            count += 1
        else:
            stack.extend(node.iter_child_nodes())
    return max(count, 1)


def _is_constant(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const | nodes.TemplateData)


class PromptCodeGenerator(CodeGenerator):
    """Code generation shared by the sandbox and the fast path.

    - nothing is evaluated while compiling (no constant folding: only literals are constant),
      so compiling or analysing a template never runs a user's expression;
    - a dict's key and a loop's property are read directly (what Jinja's ``getattr`` would
      return for them, without its attribute lookup first): the hot path of prompt templates;
    - a string is output as it is; any other value goes through ``text_of`` (measured).
    """

    #: the expression that turns a non-string output value ``_o`` into text
    text_of = "environment.stringify(_o)"

    def __init__(self, environment: jinja2.Environment, *args: Any, **kwargs: Any) -> None:
        super().__init__(environment, *args, **kwargs)
        self.optimizer = None  # no constant folding, whatever the environment says

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData | nodes.Const):
            return super()._output_child_to_const(node, frame, finalize)
        raise nodes.Impossible()

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super()._output_child_pre(node, frame, finalize)
            self.write("environment.measured(")
        else:
            self.write("(_o if (_o := ")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            self.write(")")
            super()._output_child_post(node, frame, finalize)
        else:
            self.write(f").__class__ is str else {self.text_of})")

    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        attr = node.attr
        if node.ctx != "load" or hasattr(dict, attr):
            super().visit_Getattr(node, frame)
            return
        self.write("(")
        if attr in LOOP_ATTRS:
            self.write(f"_g.{attr} if (_g := ")
            self.visit(node.node, frame)
            self.write(f").__class__ is LoopContext else _g[{attr!r}] if _g.__class__ is dict")
        else:
            self.write(f"_g[{attr!r}] if (_g := ")
            self.visit(node.node, frame)
            self.write(").__class__ is dict")
        self.write(f" and {attr!r} in _g else environment.getattr(_g, {attr!r}))")


class BoundedCodeGenerator(PromptCodeGenerator):
    """The sandbox's code generator: the render budget's checks compiled into the template."""

    def __init__(self, environment: jinja2.Environment, *args: Any, **kwargs: Any) -> None:
        super().__init__(environment, *args, **kwargs)
        #: id of a loop's iterable node -> (weight, recursive), until it is written
        self._loop_iters: dict[int, tuple[int, bool]] = {}

    def pull_dependencies(self, nodes: Iterable[nodes.Node]) -> None:
        # called where the root function and each block function start: count their output
        body = list(nodes)
        super().pull_dependencies(body)
        self.writeline(f"environment.charge_steps({output_weight(body)})")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iters[id(node.iter)] = (output_weight(node.body), node.recursive)
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        guard = self._loop_iters.pop(id(node), None) if self._loop_iters else None
        if guard is None:
            return super().visit(node, *args, **kwargs)
        # the iterable of a for loop: every item it yields is counted
        weight, recursive = guard
        self.write(f"environment.{'recursive_loop_guard' if recursive else 'loop_guard'}(")
        super().visit(node, *args, **kwargs)
        self.write(f", {weight})")
        return None

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if isinstance(node.arg, nodes.Slice):  # Jinja slices directly; ours are measured
            self.write("environment.getitem(")
            self.visit(node.node, frame)
            self.write(", slice(")
            for i, part in enumerate((node.arg.start, node.arg.stop, node.arg.step)):
                if i:
                    self.write(", ")
                if part is None:
                    self.write("None")
                else:
                    self.visit(part, frame)
            self.write("))")
            return
        super().visit_Getitem(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _built(self, node: nodes.Expr, items: Iterable[nodes.Node], frame: Frame) -> bool:
        if all(_is_constant(i) for i in items):
            return False
        self.write("environment.built(")
        return True

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        wrapped = self._built(node, node.items, frame)
        super().visit_List(node, frame)
        if wrapped:
            self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        wrapped = node.ctx == "load" and self._built(node, node.items, frame)
        super().visit_Tuple(node, frame)
        if wrapped:
            self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        parts = [p for pair in node.items for p in (pair.key, pair.value)]
        wrapped = self._built(node, parts, frame)
        super().visit_Dict(node, frame)
        if wrapped:
            self.write(")")


class _VariableFinder(PromptCodeGenerator, meta.TrackingCodeGenerator):
    """Jinja's variable tracker without constant folding (analysis never runs user code)."""

    def __init__(self, environment: jinja2.Environment) -> None:
        CodeGenerator.__init__(
            self, environment, "<introspection>", "<introspection>", optimized=False
        )
        self.undeclared_identifiers: set[str] = set()


def find_variables(ast: nodes.Template) -> set[str]:
    """The variables a parsed template reads from its context (no expression is evaluated)."""
    assert ast.environment is not None
    finder = _VariableFinder(ast.environment)
    finder.visit(ast)
    return finder.undeclared_identifiers


class PromptTemplate(jinja2.Template):
    """A template of the prompt sandbox: rendering it directly opens a render budget."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render under the environment's limits (or the budget of the render running)."""
        values = dict(*args, **kwargs)
        env = cast(PromptSandbox, self.environment)
        with open_budget(env.limits, values) as budget:
            return render_template(self, values, budget)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """The whole rendered text at once (a budget cannot span a paused generator)."""
        yield self.render(*args, **kwargs)

    def make_module(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> jinja2.environment.TemplateModule:
        """Run the template as a module under a budget."""
        env = cast(PromptSandbox, self.environment)
        with open_budget(env.limits, vars):
            return super().make_module(vars, shared, locals)


def render_template(template: jinja2.Template, values: dict[str, Any], budget: Budget) -> str:
    """Render ``template`` with ``values`` inside ``budget``; count the text it outputs."""
    context = template.new_context(values)
    pieces = list(islice(template.root_render_func(context), budget.max_steps + 1))
    if len(pieces) > budget.max_steps:
        budget.too_many_steps()
    budget.add_output(sum(map(len, pieces)))
    return "".join(pieces)


# -- format strings ------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)


def _check_width(budget: Budget, digits: str, what: str) -> None:
    if len(digits) > 18:
        budget.too_big(10**18, what)
    budget.will_make(int(digits), what)


def check_percent(budget: Budget, fmt: str, args: Any) -> None:
    """Refuse ``fmt % args`` when a width or precision would build too long a string."""
    if "%" not in fmt:
        return
    seq = args if isinstance(args, tuple) else (args,)
    index = 0
    for m in _PERCENT.finditer(fmt):
        if m.group("conv") == "%":
            continue
        for part in (m.group("width"), m.group("prec")):
            if part == "*":
                star = seq[index] if index < len(seq) else 0
                index += 1
                if isinstance(star, int):
                    budget.will_make(abs(star), f"the width {star} in {fmt[:40]!r}")
            elif part:
                _check_width(budget, part, f"the width {part} in {fmt[:40]!r}")
        if m.group("key") is None:
            index += 1


class _BoundedFields:
    """A ``string.Formatter`` whose field widths and precisions are checked first."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = current()
        budget.tick()
        for digits in _DIGITS.findall(format_spec):
            _check_width(budget, digits, f"the format field {{:{format_spec[:40]}}}")
        return budget.made(
            super().format_field(value, format_spec),  # type: ignore[misc]
            "a formatted field",
        )


class _Formatter(_BoundedFields, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    pass


def _guarded_format(env: PromptSandbox, owner: str, is_map: bool) -> Callable[..., str]:
    formatter: Formatter
    if isinstance(owner, Markup):
        formatter = _EscapeFormatter(env, escape=owner.escape)
    else:
        formatter = _Formatter(env)
    kind = type(owner)

    def format_call(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one mapping argument")
            kwargs = args[0]
            args = ()
        budget = current()
        return cast(str, budget.made(kind(formatter.vformat(owner, args, kwargs)), "format()"))

    format_call.__name__ = "format_map" if is_map else "format"
    return format_call


# -- method checks -------------------------------------------------------------------------


def _int_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], i: int, name: str, dflt: int) -> int:
    value = args[i] if len(args) > i else kwargs.get(name, dflt)
    return value if isinstance(value, int) else 0


def _check_str_method(
    budget: Budget, owner: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Check a size-changing string method before calling it; return the arguments to use."""
    what = f"str.{name}()"
    if name in ("center", "ljust", "rjust", "zfill"):
        budget.will_make(max(len(owner), _int_arg(args, kwargs, 0, "width", 0)), what)
    elif name == "expandtabs":
        tab = _int_arg(args, kwargs, 0, "tabsize", 8)
        budget.will_make(len(owner) + owner.count("\t") * max(tab, 0), what)
    elif name == "replace":
        old = args[0] if args else kwargs.get("old", "")
        new = args[1] if len(args) > 1 else kwargs.get("new", "")
        count = (
            _int_arg(args, kwargs, 2, "count", -1) if (len(args) > 2 or "count" in kwargs) else -1
        )
        budget.will_make(replaced_size(owner, old, new, count), what)
    elif name == "join":
        items = list(loop_items(budget, args[0] if args else kwargs.get("iterable", ())))
        size = sum(len(i) if isinstance(i, str) else 0 for i in items)
        budget.will_make(size + max(len(items) - 1, 0) * len(owner), what)
        return (items,)
    else:
        raise SandboxViolation(f"str.{name}() is not allowed in templates")
    return args


def replaced_size(s: Any, old: Any, new: Any, count: int) -> int:
    """Length of ``s.replace(old, new, count)``, computed without building it."""
    if not (isinstance(s, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    found = len(s) + 1 if old == "" else s.count(old)
    if count >= 0:
        found = min(found, count)
    return len(s) + found * (len(new) - len(old))


def _method_owner(obj: Any) -> tuple[Any, str] | None:
    """``(owner, name)`` of a bound method, else None."""
    if isinstance(obj, types.BuiltinMethodType | types.MethodType | types.MethodWrapperType):
        owner = getattr(obj, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            return owner, obj.__name__
    return None


# -- loops ---------------------------------------------------------------------------------


def loop_items(budget: Budget, iterable: Any, weight: int = 1) -> Iterator[Any]:
    """Iterate ``iterable``, counting ``weight`` steps and checking the deadline per item."""
    for item in iterable:
        budget.steps += weight
        if budget.steps > budget.max_steps:
            budget.too_many_steps()
        budget.tick()
        yield item


class RecursiveLoop:
    """The iterable of a recursive loop: counted like any loop, and carries its weight."""

    __slots__ = ("_items", "weight")

    def __init__(self, budget: Budget, iterable: Any, weight: int) -> None:
        self.weight = weight
        self._items = loop_items(budget, iterable, weight)

    def __iter__(self) -> RecursiveLoop:
        return self

    def __next__(self) -> Any:
        return next(self._items)


def _is_lazy(value: Any) -> bool:
    """An iterable whose size is not known before iterating it (generators, ranges, views)."""
    kind = type(value)
    if kind in _CONCRETE:
        return False
    return hasattr(kind, "__next__") or kind in _LAZY


_CONCRETE = frozenset({str, list, tuple, dict, set, frozenset, int, float, bool, type(None)})
_LAZY = frozenset({range, type({}.keys()), type({}.values()), type({}.items()), map, filter, zip})


# -- filters -------------------------------------------------------------------------------


def _filter_center(value: Any, width: int = 80) -> str:
    current().will_make(
        max(len(soft_str(value)), width if isinstance(width, int) else 0), "the 'center' filter"
    )
    return do_center(value, width)


def _filter_indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = soft_str(s)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    current().will_make(len(text) + (text.count("\n") + 1) * max(step, 0), "the 'indent' filter")
    return do_indent(s, width, first, blank)


@pass_environment
def _filter_wordwrap(
    environment: jinja2.Environment,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    text = soft_str(s)
    sep = environment.newline_sequence if wrapstring is None else soft_str(wrapstring)
    lines = 2 * len(text) // max(width if isinstance(width, int) else 1, 1) + text.count("\n") + 2
    current().will_make(len(text) + lines * len(sep), "the 'wordwrap' filter")
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def _filter_replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    size = replaced_size(soft_str(s), soft_str(old), soft_str(new), -1 if count is None else count)
    current().will_make(size, "the 'replace' filter")
    return do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _filter_join(
    eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    budget = current()
    items = list(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    size = sum(budget.size_of(item) for item in items)
    budget.will_make(size + max(len(items) - 1, 0) * len(soft_str(d)), "the 'join' filter")
    return sync_do_join(eval_ctx, items, d)


def _filter_format(value: str, *args: Any, **kwargs: Any) -> str:
    check_percent(current(), soft_str(value), kwargs or args)
    return do_format(value, *args, **kwargs)


def _filter_batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[Any]:
    if fill_with is not None and isinstance(linecount, int):
        budget = current()
        budget.will_make(max(linecount, 0) * (budget.size_of(fill_with) + 2), "the 'batch' filter")
    return do_batch(value, linecount, fill_with)


def _filter_slice(value: Collection[Any], slices: int, fill_with: Any = None) -> Iterator[Any]:
    budget = current()
    if isinstance(slices, int) and slices > budget.max_steps:
        budget.too_many_steps()
    return sync_do_slice(value, slices, fill_with)


@pass_environment
def _filter_sum(
    environment: jinja2.Environment,
    iterable: Iterable[Any],
    attribute: str | int | None = None,
    start: Any = 0,
) -> Any:
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    env = cast(PromptSandbox, environment)
    total = start
    for item in iterable:
        total = env.call_binop(None, "+", total, item)
    return total


@pass_eval_context
def _filter_tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
    budget = current()
    step = indent if isinstance(indent, int) else len(indent) if isinstance(indent, str) else 0
    budget.will_make(nested_size(budget, value, max(step, 0)), "the 'tojson' filter")
    return do_tojson(eval_ctx, value, indent)


def _filter_pprint(value: Any) -> str:
    budget = current()
    budget.will_make(nested_size(budget, value, 1), "the 'pprint' filter")
    return do_pprint(value)


@pass_eval_context
def _filter_urlize(eval_ctx: Any, value: str, *args: Any, **kwargs: Any) -> str:
    text = soft_str(value)
    extra = sum(len(soft_str(a)) for a in (*args, *kwargs.values()) if isinstance(a, str)) + 60
    current().will_make(3 * len(text) + (len(text) // 4 + 1) * extra, "the 'urlize' filter")
    return do_urlize(eval_ctx, value, *args, **kwargs)


def nested_size(budget: Budget, value: Any, indent: int) -> int:
    """Length of ``value`` printed one item a line, indented ``indent`` per nesting level.

    Refuses first when the flat text alone is too long; then walks every item once (the
    flat size bounds how many there are) and stops as soon as the total is too long.
    """
    flat = budget.size_of(value)
    budget.will_make(flat, "the text of a value")
    if indent <= 0:
        return flat
    limit = max(budget.max_chars, budget.cap())
    total = flat
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and total <= limit:
        item, depth = stack.pop()
        total += depth * indent + 1
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return total


_SPECIAL_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "wordwrap": _filter_wordwrap,
    "replace": _filter_replace,
    "join": _filter_join,
    "format": _filter_format,
    "batch": _filter_batch,
    "slice": _filter_slice,
    "sum": _filter_sum,
    "tojson": _filter_tojson,
    "pprint": _filter_pprint,
    "urlize": _filter_urlize,
}


#: filters that return their input or one of its items: nothing new to measure
_SELECTING_FILTERS = frozenset({"first", "last", "random", "min", "max", "default", "d", "attr"})


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: deadline, counted iteration of lazy input, measured result."""
    if getattr(func, "jinja_async_variant", False):
        func = getattr(func, "__wrapped__", func)  # the sync implementation
    pass_arg = getattr(func, "jinja_pass_arg", None)
    at = 0 if pass_arg is None else 1
    what = f"the '{name}' filter"
    selecting = name in _SELECTING_FILTERS

    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        if len(args) > at and _is_lazy(args[at]):
            args = (*args[:at], loop_items(budget, args[at]), *args[at + 1 :])
        result = func(*args, **kwargs)
        if selecting or (len(args) > at and result is args[at]):
            return result
        return budget.made(result, what)

    update_wrapper(guarded, func)
    return guarded


def guarded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Every filter of ``filters`` wrapped by the render budget (size-changing ones checked)."""
    return {
        name: _guard_filter(name, _SPECIAL_FILTERS.get(name, func))
        for name, func in filters.items()
    }


# -- globals -------------------------------------------------------------------------------


def bounded_range(*args: int) -> range:
    """``range`` that refuses more items than a render may iterate."""
    budget = current()
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = budget.max_steps + 1
    if count > budget.max_steps:
        budget.too_many_steps()
    return numbers


def bounded_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    """``dict`` over counted input, measured."""
    budget = current()
    source = [loop_items(budget, a) if _is_lazy(a) else a for a in args]
    return cast(dict[Any, Any], budget.made(dict(*source, **kwargs), "dict()"))


# -- the environment -----------------------------------------------------------------------


class PromptSandbox(ImmutableSandboxedEnvironment):
    """The sandbox every template runs in, with the render budget enforced inside it."""

    code_generator_class = BoundedCodeGenerator
    template_class = PromptTemplate
    intercepted_binops = ARITHMETIC

    def __init__(self, *args: Any, limits: RenderLimits | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("optimized", False)
        super().__init__(*args, **kwargs)
        self.limits = limits or RenderLimits.from_env()
        self.filters = guarded_filters(self.filters)
        self.globals.pop("lipsum", None)
        self.globals["range"] = bounded_range
        self.globals["dict"] = bounded_dict

    # -- budget hooks called by generated code --------------------------------------------

    def charge_steps(self, count: int) -> None:
        """A template (or an include) starts: count the pieces its top level outputs."""
        current().step(count)

    def loop_guard(self, iterable: Any, weight: int) -> Iterator[Any]:
        """The iterable of a loop, counted ``weight`` steps an item."""
        return loop_items(current(), iterable, weight)

    def recursive_loop_guard(self, iterable: Any, weight: int) -> RecursiveLoop:
        """The iterable of a recursive loop (its ``loop(...)`` calls reuse the weight)."""
        return RecursiveLoop(current(), iterable, weight)

    def stringify(self, value: Any) -> str:
        """The text of an output value that is not a plain string, measured before it is built."""
        budget = current()
        if type(value) is int:
            if value.bit_length() > 64:  # a big number printed over and over adds up
                budget.check_int(value, "an output number")
                budget.charge(int_size(value))
            return str(value)
        return str(self.measured(value))

    def measured(self, value: Any) -> Any:
        """``value``, once the text it prints as is known to fit (and counted as built)."""
        if type(value) is str:
            return value
        budget = current()
        if type(value) is int:
            return budget.check_int(value, "an output number")
        size = budget.size_of(value)
        budget.will_make(size, "the text of an output value")
        budget.charge(size)
        return value

    def concat_values(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``, measured before it is built."""
        budget = current()
        size = sum(len(p) if type(p) is str else budget.size_of(p) for p in parts)
        budget.will_make(size, "the '~' concatenation")
        budget.charge(size)
        return "".join(map(str, parts))

    def built(self, value: Any) -> Any:
        """A list, tuple or dict literal the template just built, measured."""
        return current().made_refs(value, "a list or dict literal")

    def concat(self, parts: Iterable[str]) -> str:
        """Join the output of a macro, block or ``set`` block, measured before it is joined."""
        budget = current()
        if not isinstance(parts, list):
            parts = list(islice(parts, budget.max_steps + 1))
            if len(parts) > budget.max_steps:
                budget.too_many_steps()
        size = sum(map(len, parts))
        budget.will_make(size, "the output of a macro or block")
        budget.charge(size)
        return "".join(parts)

    # -- the sandbox's own hooks ----------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Arithmetic with its result size checked (before building it where it can blow up)."""
        budget = current()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(n, int) and isinstance(seq, str | list | tuple):
                    budget.will_make(budget.size_of(seq) * max(n, 0), "the result of '*'")
                    if isinstance(seq, str):
                        return budget.made(seq * n, "the result of '*'")
                    return budget.made_refs(seq * n, "the result of '*'")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > budget.max_int_bits + 1
            ):
                budget.int_too_big("the result of '*'")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and abs(left) > 1
                and (left.bit_length() - 1) * right > budget.max_int_bits
            ):
                budget.int_too_big("the result of '**'")
        elif operator == "%" and isinstance(left, str):
            check_percent(budget, left, right)
        elif (
            operator == "+"
            and isinstance(left, str | list | tuple)
            and isinstance(right, str | list | tuple)
        ):
            size = budget.size_of(left) + budget.size_of(right)
            budget.will_make(size, "the result of '+'")
            if not isinstance(left, str):
                return budget.made_refs(operator_add(left, right), "the result of '+'")
        return budget.made(self.binop_table[operator](left, right), f"the result of '{operator}'")

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``x[i]``; a slice is measured (it copies)."""
        if type(argument) is slice:
            budget = current()
            budget.tick()
            return budget.made(super().getitem(obj, argument), "a slice")
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` with the sandbox's field access and checked widths."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        return _guarded_format(self, owner, value.__name__ == "format_map")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from a template: counted; methods of builtin values allowed by name and checked."""
        budget = current()
        budget.step()
        if isinstance(__obj, LoopContext) and args:  # a recursive loop(...) call
            inner = getattr(__obj, "_iterator", None)
            weight = getattr(inner, "weight", _RECURSION_WEIGHT)
            args = (RecursiveLoop(budget, args[0], weight), *args[1:])
            return super().call(__context, __obj, *args, **kwargs)
        found = _method_owner(__obj)
        if found is None:  # macros (their output is measured), globals, the caller's own
            return super().call(__context, __obj, *args, **kwargs)
        owner, name = found
        if isinstance(owner, str):
            if name in ("format", "format_map"):
                __obj = _guarded_format(__self, owner, name == "format_map")
            elif name not in _STR_METHODS:
                args = _check_str_method(budget, owner, name, args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            return result if result is owner else budget.made(result, f"str.{name}()")
        if isinstance(owner, _BUILTIN_TYPES):
            if not _allowed_method(owner, name):
                raise SandboxViolation(
                    f"{type(owner).__name__}.{name}() is not allowed in templates"
                )
            if name == "copy":
                return budget.made_refs(super().call(__context, __obj, *args, **kwargs), "copy()")
        elif type(owner) in _JINJA_METHODS and name not in _JINJA_METHODS[type(owner)]:
            raise SandboxViolation(f"{type(owner).__name__}.{name}() is not allowed")
        return super().call(__context, __obj, *args, **kwargs)


def _allowed_method(owner: Any, name: str) -> bool:
    if isinstance(owner, type):
        return False  # classmethods such as dict.fromkeys or int.from_bytes
    if isinstance(owner, int | float):
        return name in _NUMBER_METHODS
    if isinstance(owner, list | tuple):
        return name in _SEQUENCE_METHODS
    if isinstance(owner, dict):
        return name in _DICT_METHODS
    return False


__all__ = [
    "ARITHMETIC",
    "LOOP_ATTRS",
    "BoundedCodeGenerator",
    "PromptCodeGenerator",
    "PromptSandbox",
    "PromptTemplate",
    "check_percent",
    "find_variables",
    "guarded_filters",
    "output_weight",
    "render_template",
]
