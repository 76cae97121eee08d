"""The template sandbox: Jinja's immutable sandbox, with a bound on what one render may cost.

Every operator that can grow a value (`**`, `*`, `%`, `+`, `~`) and every call and filter is
checked against spec.limits before it runs, each value made is measured, each render has a
work budget (loop turns count too) and its text a size limit. Jinja folds constants while it
compiles; the operators it would fold are intercepted and filters refuse to run outside a
render, so compiling a template never runs any of its arithmetic.

`renderer` is the engine's way in: a template that only prints text and values (`Hi {{
lead.first_name }}`, no loop, call, filter or operator) can spend no work, so it renders
without a meter, its text measured once at the end (it cannot make more than its values hold).
"""

from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from nurture.spec import limits
from nurture.spec.filter_limits import FILTER_CHECKS, METHOD_CHECKS
from nurture.spec.limits import MAX_OUTPUT, MAX_WORK, TemplateLimit


class Meter:
    """The work one render has left."""

    def __init__(self) -> None:
        self.left = MAX_WORK

    def charge(self, units: int) -> None:
        """Spend units of work; TemplateLimit when the render has none left."""
        self.left -= units
        if self.left < 0:
            raise TemplateLimit(f"template does over the limit of {MAX_WORK:,} units of work")


_DICT_ATTRIBUTES = frozenset(dir(dict))
"""What `a.b` finds on a dict before its keys (`items`, `keys`...)."""

_METER: ContextVar[Meter | None] = ContextVar("template_meter", default=None)


class _NotWhileCompiling(Exception):
    """Raised by a filter Jinja calls to fold a constant: it runs at render time, metered."""


def _charge(units: int) -> None:
    meter = _METER.get()
    if meter is not None:
        meter.charge(units)


def _made(value: Any, what: str = "a value") -> Any:
    """A value a template made, measured and paid for."""
    _charge(limits.size(limits.sized(value, what)))
    return value


class _Metered(NodeTransformer):
    """Loops pay per turn and `a ~ b` is measured: both become calls of the environment's."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _environment_call("loop", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _environment_call("measured", node)


def _environment_call(name: str, node: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.EnvironmentAttribute(name), [node], [], None, None)
    call.set_lineno(node.lineno)
    return call


class _MeteredCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        if not getattr(node, "metered", False):  # a tree is compiled once, but twice is harmless
            _Metered().visit(node)
            node.metered = True  # type: ignore[attr-defined]
        super().visit_Template(node, frame)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every template is compiled and rendered in: strict, immutable, bounded."""

    intercepted_binops = frozenset({"**", "*", "%", "+"})
    code_generator_class = _MeteredCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=StrictUndefined, **options)
        self.filters = {name: _metered(name, f) for name, f in self.filters.items()}
        self.globals["range"] = limits.check_range
        # `{{ link('https://...') }}`: a tracked link where the engine renders (its own `link`
        # in the context); the address itself anywhere else (previews, checks).
        self.globals["link"] = str
        # lipsum(1000000) writes a million paragraphs, and no message needs it.
        del self.globals["lipsum"]

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`a.b` of a dict (the context's `lead`, `coach`...): its key, when `b` is none of a
        dict's attributes, without raising and catching an AttributeError first (as the
        sandbox would, to the same answer); anything else as the sandbox does."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`**`, `*` and `%` checked before they run; every result measured."""
        if operator == "**":
            limits.check_power(left, right)
        elif operator == "*":
            limits.check_product(left, right)
        elif operator == "%":
            limits.check_percent_format(left)
        return _made(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """A call (a macro, `range`, a method) paid for; string methods' widths checked."""
        _charge(limits.CALL)
        args = tuple(limits.bounded_list(arg, "an argument") for arg in args)
        target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        if isinstance(getattr(target, "__self__", None), str):
            check = METHOD_CHECKS.get(getattr(target, "__name__", ""))
            if check is not None:
                check(target.__self__, *args, **kwargs)
        return _made(super().call(context, obj, *args, **kwargs))

    def concat(self, chunks: Iterable[str]) -> str:
        """A rendered text (or a macro's, a block's), within MAX_OUTPUT; a render's meter starts here."""
        if _METER.get() is not None:
            return _joined(chunks)
        token = _METER.set(Meter())
        try:
            return _joined(chunks)
        finally:
            _METER.reset(token)

    def loop(self, items: Iterable[Any]) -> Iterator[Any]:
        """The items of a `for` loop, each turn paid for."""
        for item in items:
            _charge(limits.LOOP_TURN)
            yield item

    def measured(self, text: str) -> str:
        """The text `a ~ b` made, measured."""
        return _made(text, "a text")


_FLAT = (nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Const)
"""The nodes of a template that prints text and values and does nothing else."""


def renderer(environment: BoundedEnvironment, source: str) -> Callable[[dict[str, Any]], str]:
    """Render `source` with a context: compiled once (keep the function), bounded as ever."""
    template = environment.from_string(source)
    # Every render merges the globals into its context: a flat dict merges several times
    # faster than Jinja's ChainMap (the hot path renders thousands a second).
    template.globals = dict(template.globals)
    tree = environment.parse(source)
    if not all(isinstance(node, _FLAT) for node in tree.find_all(nodes.Node)):
        return template.render
    produce, context_of = template.root_render_func, template.new_context

    def flat(context: dict[str, Any]) -> str:
        text = "".join(produce(context_of(context)))
        if len(text) > MAX_OUTPUT:
            raise TemplateLimit(f"rendered text is over the limit of {MAX_OUTPUT:,} characters")
        return text

    return flat


def _joined(chunks: Iterable[str]) -> str:
    parts, length = [], 0
    for chunk in chunks:
        length += len(chunk)
        if length > MAX_OUTPUT:
            raise TemplateLimit(f"rendered text is over the limit of {MAX_OUTPUT:,} characters")
        parts.append(chunk)
    return "".join(parts)


def _metered(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses to fold while compiling, checks its arguments and pays its way."""
    first = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    check = FILTER_CHECKS.get(name)

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if _METER.get() is None:
            raise _NotWhileCompiling(name)
        if len(args) > first:
            value = limits.bounded_list(args[first], f"the input of filter {name!r}")
            value = limits.sized(value, f"the input of filter {name!r}")
            args = (*args[:first], value, *args[first + 1 :])
            _charge(limits.size(value))
            if check is not None:
                check(*args[first:], **kwargs)
        return _made(function(*args, **kwargs), f"the result of filter {name!r}")

    return bounded
