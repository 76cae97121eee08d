"""Any template, however costly it asks to be, is checked and rendered in bounded time and memory.

Hypothesis writes templates of powers, products, repetitions, ranges, joins, filters, string
methods and loops, with numbers small and huge; `nurture validate`'s check and a render must
each answer (a problem, a text, or a permanent failure) within TIME_BOUND and MEMORY_BOUND.
"""

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurture.channels import PermanentFailure
from nurture.engine.actions import render
from nurture.spec.limits import MAX_OUTPUT
from nurture.spec.templates import check_template

TIME_BOUND = 2.0  # CPU seconds of this process (not the wall clock); a bounded render takes ms
MEMORY_BOUND = 50 * 2**20  # bytes at peak; the limits keep a render to a few MB
CONTEXT = {"lead": {"name": "Ana Ruiz", "first_name": "Ana", "tags": ["vip", "new"]}}
CONTEXT["lead"]["fields"] = {"n": 10**9, "big": 9**9, "note": "x" * 1000}
SETTINGS = settings(
    max_examples=150,
    deadline=None,  # the bounds below are asserted per call, with a margin for a busy machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

numbers = st.one_of(
    st.integers(-3, 12),
    st.sampled_from([99, 1_000, 10**5, 10**6, 10**9, 10**100]),
    st.sampled_from(["lead.fields.n", "lead.fields.big", "9**9"]),
).map(str)
texts = st.sampled_from(["'ab'", "lead.name", "lead.fields.note", "''", "'%0*d'", "'{:>9}'"])
atoms = st.one_of(numbers, texts, st.just("lead.tags"))


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(inner, inner)
    return st.one_of(
        pair.map(lambda p: f"({p[0]} ** {p[1]})"),
        pair.map(lambda p: f"({p[0]} * {p[1]})"),
        pair.map(lambda p: f"({p[0]} + {p[1]})"),
        pair.map(lambda p: f"({p[0]} ~ {p[1]})"),
        pair.map(lambda p: f"({p[0]} % {p[1]})"),
        pair.map(lambda p: f"[{p[0]}, {p[1]}]"),
        inner.map(lambda a: f"range({a})"),
        pair.map(lambda p: f"({p[0]})|join({p[1]})"),
        pair.map(lambda p: f"({p[0]})|center({p[1]})"),
        pair.map(lambda p: f"({p[0]})|indent({p[1]})"),
        pair.map(lambda p: f"({p[0]})|replace('', {p[1]})"),
        pair.map(lambda p: f"({p[0]})|batch({p[1]}, 0)|list"),
        pair.map(lambda p: f"({p[0]})|format({p[1]})"),
        inner.map(lambda a: f"({a})|map('string')|list"),
        inner.map(lambda a: f"({a})|string|upper"),
        pair.map(lambda p: f"({p[0]}).ljust({p[1]})"),
        pair.map(lambda p: f"({p[0]}).format({p[1]})"),
    )


expressions = st.recursive(atoms, _combine, max_leaves=8)
statements = st.one_of(
    expressions.map(lambda e: f"{{{{ {e} }}}}"),
    st.tuples(expressions, expressions).map(
        lambda p: (
            f"{{% for x in {p[0]} %}}{{% for y in {p[0]} %}}{{{{ {p[1]} }}}}"
            "{% endfor %}{% endfor %}"
        )
    ),
    st.tuples(expressions, expressions).map(
        lambda p: (
            f"{{% set s = namespace(t={p[0]}) %}}{{% for _ in range(60) %}}"
            f"{{% set s.t = s.t ~ s.t ~ {p[1]} %}}{{% endfor %}}{{{{ s.t }}}}"
        )
    ),
)
templates = st.lists(statements, min_size=1, max_size=3).map(" ".join)


def bounded(call: Callable[[], Any]) -> None:
    """Run the call twice: once timed, once under tracemalloc (which slows it down)."""
    started = time.process_time()
    call()
    elapsed = time.process_time() - started
    assert elapsed < TIME_BOUND, f"took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peaked at {peak / 2**20:.1f} MB"


def _render(source: str) -> None:
    try:
        text = render(source, CONTEXT)
    except PermanentFailure as failure:
        assert str(failure).startswith("template error: ")
    else:
        assert text is not None and len(text) <= MAX_OUTPUT


@SETTINGS
@given(templates)
def test_validate_checks_any_template_in_bounded_time_and_memory(source):
    bounded(lambda: check_template(source))


@SETTINGS
@given(templates)
def test_any_template_renders_or_fails_in_bounded_time_and_memory(source):
    bounded(lambda: _render(source))
