"""Values as Python source: the one way a value from a spec or a graph becomes code text.

`literal` is Python's own `repr` (strings escaped by Python itself), so text from a graph can
never close a string or open a statement; emit.py (model.py) and loader.py (load_weights.py)
both write values through it.
"""

from __future__ import annotations

import math
from typing import Any


def literal(value: Any) -> str:
    """Python source for a value from a spec. `repr` escapes strings; numpy scalars become
    plain Python numbers first so the output never mentions numpy types."""
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
