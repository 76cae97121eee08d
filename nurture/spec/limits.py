"""What one template may cost: the limits, and the checks that refuse an operation before it runs.

A template comes from a sequence file or an API body, so it may ask for `9**(9**9)`, a name
repeated a billion times or loops inside loops. Each check here runs before the operation
that could grow a value, so a refusal costs microseconds, never the memory it would take.
"""

import math
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from jinja2.sandbox import SecurityError

MAX_OUTPUT = 100_000  # characters of one rendered text: a message body, a subject, a title
MAX_SIZE = 100_000  # characters and items of one value a template makes (a string, a list)
MAX_DIGITS = 1_000  # digits of an integer a template makes
MAX_RANGE = 10_000  # items of one range()
MAX_WORK = 1_000_000  # units of work of one render: a character or an item made, a loop turn
LOOP_TURN = 10  # units of one turn of a loop (in Python it costs more than a character made)
CALL = 20  # units of one call: a macro, a method, range()
_MAX_BITS = int(MAX_DIGITS * math.log2(10))
_WIDTH = re.compile(r"%[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")
_SPEC_NUMBER = re.compile(r"\d+")


class TemplateLimit(SecurityError):
    """A template asked for more than a render may cost; the message names the limit."""


def size(value: Any, cap: int = MAX_SIZE) -> int:
    """Characters and items in a value and what it holds, counted up to a little over `cap`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise TemplateLimit(f"an integer over the limit of {MAX_DIGITS:,} digits")
    if not isinstance(value, (list, tuple, set, frozenset, dict)):
        return 1
    total, pending = 0, [value]
    while pending and total <= cap:  # iterative: a value may nest deeper than Python recurses
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            pending += item
        else:
            total += 1
    return total


def sized(value: Any, what: str = "a value") -> Any:
    """The value, when it is within MAX_SIZE; else TemplateLimit."""
    if size(value) > MAX_SIZE:
        raise TemplateLimit(f"{what} over the limit of {MAX_SIZE:,} characters and items")
    return value


def at_most(number: Any, limit: int, what: str) -> None:
    """Refuse a count or width (`center(1000000000)`) over its limit."""
    if isinstance(number, int) and number > limit:
        raise TemplateLimit(f"{what} {number:,} is over the limit of {limit:,}")


def check_power(base: Any, exponent: Any) -> None:
    """Refuse `base ** exponent` when the integer it makes would have over MAX_DIGITS digits."""
    if not (_is_int(base) and _is_int(exponent)) or exponent <= 0 or abs(base) <= 1:
        return  # floats overflow at once with an error; a negative exponent makes a float
    if exponent * math.log2(abs(base)) > _MAX_BITS:
        raise TemplateLimit(
            f"{_short(base)} ** {_short(exponent)} has over the limit of {MAX_DIGITS:,} digits"
        )


def check_product(left: Any, right: Any) -> None:
    """Refuse a repetition (`text * n`, `list * n`) or a product of integers over the limits."""
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > _MAX_BITS + 1:
            raise TemplateLimit(f"a product over the limit of {MAX_DIGITS:,} digits")
        return
    repeated, times = (left, right) if _is_int(right) else (right, left)
    if not _is_int(times) or not isinstance(repeated, (str, list, tuple)):
        return
    length = size(repeated)
    if length * times > MAX_SIZE:
        raise TemplateLimit(
            f"repeating {_what(repeated, length)} {times:,} times is over the limit"
            f" of {MAX_SIZE:,} characters and items"
        )


def check_percent_format(text: Any) -> None:
    """Refuse `'%0999999999d' % x`: a width or precision over MAX_SIZE, or one taken from `*`."""
    if not isinstance(text, str):
        return
    for match in _WIDTH.finditer(text):
        for number in match.groups():
            if number == "*":
                raise TemplateLimit("a width taken from the arguments ('%*d') is not allowed")
            if number is not None:
                at_most(_digits_value(number), MAX_SIZE, "a width of")


def check_brace_format(text: Any) -> None:
    """Refuse `'{:>999999999}'.format(x)`: a width over MAX_SIZE, or one taken from an argument."""
    if not isinstance(text, str):
        return
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # the call itself reports the broken format
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise TemplateLimit("a width taken from the arguments ('{:{}}') is not allowed")
        for number in _SPEC_NUMBER.findall(spec or ""):
            at_most(_digits_value(number), MAX_SIZE, "a width of")


def check_range(*args: Any) -> range:
    """range(), with at most MAX_RANGE items."""
    numbers = range(*args)
    try:
        length = len(numbers)
    except OverflowError:  # more items than Python can count
        length = MAX_RANGE + 1
    if length > MAX_RANGE:
        raise TemplateLimit(f"range of {length:,} items is over the limit of {MAX_RANGE:,} items")
    return numbers


def bounded_list(items: Iterable[Any], what: str) -> Any:
    """An iterator read into a list of at most MAX_SIZE items; other values as they are."""
    if not isinstance(items, Iterator):
        return items
    listed = list(islice(items, MAX_SIZE + 1))
    if len(listed) > MAX_SIZE:
        raise TemplateLimit(f"{what} over the limit of {MAX_SIZE:,} items")
    return listed


def _digits_value(number: str) -> int:
    return int(number) if len(number) < 20 else MAX_SIZE * 10  # int('9'*5000) would itself fail


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(number: int) -> str:
    bits = abs(number).bit_length()
    return f"{number:,}" if bits < 64 else f"a {bits:,}-bit integer"


def _what(repeated: Any, length: int) -> str:
    if isinstance(repeated, str):
        return f"a text of {length:,} characters"
    return f"a list of {length:,} characters and items"
