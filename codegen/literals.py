"""Values as Python source: the one way a value from a spec or a graph becomes code text.

`literal` is Python's own `repr` (strings escaped by Python itself), so text from a graph can
never close a string or open a statement; emit.py (model.py) and loader.py (load_weights.py)
both write values through it. In a block function (blocks.py) a value may be a parameter, a
parameter plus a constant, a choice on a parameter, or a layer name built from one: written as
such, parameter names checked as identifiers and name text limited to what needs no escaping.
"""

from __future__ import annotations

import keyword
import math
from typing import Any

from .blocks import SAFE, Choice, NameTemplate, Offset, Param


def literal(value: Any) -> str:
    """Python source for a value from a spec. `repr` escapes strings; numpy scalars become
    plain Python numbers first so the output never mentions numpy types."""
    if isinstance(value, Param):
        return identifier_kw(value.name)
    if isinstance(value, Offset):
        sign = "+" if value.offset >= 0 else "-"
        return f"{identifier_kw(value.param)} {sign} {abs(value.offset)}"
    if isinstance(value, Choice):
        return (
            condition_source(value)
            if value.then is True and value.otherwise is False
            else (
                f"{literal(value.then)} if {identifier_kw(value.param)} == {literal(value.equals)} "
                f"else {literal(value.otherwise)}"
            )
        )
    if isinstance(value, NameTemplate):
        return name_template(value)
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"  # repr gives `nan`/`inf`, which are not Python literals
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    if isinstance(value, tuple):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def condition_source(flag) -> str:
    """A guarded layer's condition: a flag parameter, or `strides == 2` (blocks.Choice)."""
    if isinstance(flag, Choice):
        operator = "==" if flag.then is True else "!="
        return f"{identifier_kw(flag.param)} {operator} {literal(flag.equals)}"
    return identifier_kw(flag)


def name_template(template: NameTemplate) -> str:
    """`f"{name}_expand"`: blocks.py admits only text that needs no escaping in an f-string
    (no quote, backslash, brace or control character); checked again here, where it is written."""
    if not (SAFE.fullmatch(template.prefix) and SAFE.fullmatch(template.suffix)):
        raise ValueError(f"unsafe text in a layer name template: {template!r}")
    param = identifier_kw(template.param)
    if template.offset:
        param += f" {'+' if template.offset > 0 else '-'} {abs(template.offset)}"
    return f'f"{template.prefix}{{{param}}}{template.suffix}"'


def identifier_kw(name: str) -> str:
    """A keyword or parameter name taken from TensorFlow's op registry or our own tables,
    checked all the same: it is written into code verbatim."""
    if not name.isidentifier() or keyword.iskeyword(name) or name in ("self", "kwargs"):
        raise ValueError(f"not a keyword argument name: {name!r}")
    return name


def index_source(index: tuple) -> str:
    """What goes between the brackets of a subscript: ints, slices, None (a new axis) and
    Ellipsis."""

    def one(item) -> str:
        if item is None:
            return "None"
        if item is Ellipsis:
            return "..."
        if isinstance(item, slice):
            start = "" if item.start is None else literal(item.start)
            stop = "" if item.stop is None else literal(item.stop)
            return f"{start}:{stop}" + ("" if item.step is None else f":{literal(item.step)}")
        return literal(int(item))

    return ", ".join(one(i) for i in index) if index else "()"
