"""keras.ops results used once are written inside the expression that uses them.

Patterns give one keras.ops layer per graph node (or per small group), so a custom layer's
`log1p(abs(x[:, :18]))` would come out as three statements and three variable names nobody
chose. A spec → spec pass folds a keras.ops layer into its one reader when that reader is a
keras.ops expression too, up to a depth and a length a reader takes in at a glance. The folded
layer covers both layers' nodes (the provenance comment and the conversion report see every
source node still); the code computes the same calls in the same order.

Loops (expressions holding a Lambda), keras.layers layers and TensorFlow-only layers are
neither folded nor folded into.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Any

from .spec import Call, Item, Kind, Lambda, Layer, Ref

# Calls and subscripts nested in one another in a folded expression, at most:
# `keras.ops.log1p(keras.ops.abs(x[:, :18]))` is three.
MAX_DEPTH = 3
# Characters of a folded expression's source, at most, each variable counted as NAME_WIDTH:
# about what fits on one line beside its assignment.
MAX_SOURCE = 80
NAME_WIDTH = 12


def nest(layers: list[Layer], outputs: list[str]) -> list[Layer]:
    """`layers` with each keras.ops layer whose one result is read once, by another keras.ops
    layer, and is no model output folded into that reader. A `Constant` layer placed by such a
    result (its anchor: the value does not depend on it) is placed by the folded layer's own
    first input instead, so that it does not count as a second reader."""
    readers: dict[str, int] = {}
    for layer in layers:
        if not _is_constant(layer):
            for tensor in layer.inputs:
                readers[tensor] = readers.get(tensor, 0) + 1
    returned = set(outputs)
    producer = {
        layer.outputs[0]: i
        for i, layer in enumerate(layers)
        if _plain(layer)
        and len(layer.outputs) == 1
        and layer.inputs
        and readers.get(layer.outputs[0]) == 1
        and layer.outputs[0] not in returned
    }
    state: list[Layer | None] = list(layers)  # each layer with what it absorbed; None: folded
    folded: dict[str, Layer] = {}  # a tensor no longer computed -> the layer that gave it
    for i in _producers_first(layers):
        layer = layers[i]
        if not _plain(layer):
            continue
        for tensor in layer.inputs:
            j = producer.get(tensor)
            if j is None or state[j] is None:
                continue
            merged = _fold(state[j], state[i], tensor)
            if merged is not None:
                folded[tensor] = state[j]
                state[i], state[j] = merged, None
    return [_placed(layer, folded) for layer in state if layer is not None]


def _producers_first(layers: list[Layer]) -> list[int]:
    """The layers' indices, each after those computing its inputs: patterns may give a layer
    before the one computing its input (analyze.py orders them afterwards), and a result is
    folded into its reader only once it holds what it folds in itself."""
    made = {t: i for i, layer in enumerate(layers) for t in layer.outputs}
    waiting: dict[int, list[int]] = {}
    missing = []
    for i, layer in enumerate(layers):
        sources = {made[t] for t in layer.inputs if t in made and made[t] != i}
        for j in sources:
            waiting.setdefault(j, []).append(i)
        missing.append(len(sources))
    ready = [i for i, count in enumerate(missing) if not count]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in waiting.pop(i, ()):
            missing[k] -= 1
            if not missing[k]:
                heapq.heappush(ready, k)
    return order + [i for i, count in enumerate(missing) if count]  # a cycle: as given


def _placed(layer: Layer, folded: dict[str, Layer]) -> Layer:
    """A Constant placed by a result no longer computed, placed by what that was computed from."""
    if not (_is_constant(layer) and layer.inputs and layer.inputs[0] in folded):
        return layer
    anchor = layer.inputs[0]
    while anchor in folded:
        anchor = folded[anchor].inputs[0]
    return replace(layer, inputs=[anchor])


def _is_constant(layer: Layer) -> bool:
    return layer.kind is Kind.LAYER and layer.cls == "Constant"


def _plain(layer: Layer) -> bool:
    """A keras.ops layer with nodes of its own (a chain's later step says what it does for the
    layer before, in a note) and no loop in it."""
    return layer.kind is Kind.OPS and bool(layer.nodes) and not _has_lambda(layer.expr)


def _fold(inner: Layer, outer: Layer, tensor: str) -> Layer | None:
    """`outer` computing `inner`'s result itself, in place of reading `tensor`; None when it
    reads it more than once or the expression would grow too deep or too long."""
    if len(outer.inputs) > MAX_SOURCE // NAME_WIDTH + 1:
        return None  # too long whatever it reads (a concatenation of thousands, say)
    slot = outer.inputs.index(tensor)
    if _uses(outer.expr, slot) != 1:
        return None
    inputs = [t for t in outer.inputs if t != tensor]
    read = set(inputs)
    inputs += [t for t in dict.fromkeys(inner.inputs) if t not in read]
    index = {t: i for i, t in enumerate(inputs)}
    outer_refs = [Ref(index[t]) if t != tensor else None for t in outer.inputs]
    inner_refs = [Ref(index[t]) for t in inner.inputs]
    body = _substitute(inner.expr, inner_refs)
    outer_refs[slot] = body
    expr = _substitute(outer.expr, outer_refs)
    if _depth(expr) > MAX_DEPTH or _width(expr) > MAX_SOURCE:
        return None
    expr, inputs = _renumbered(expr, inputs)
    return Layer(
        kind=Kind.OPS,
        name=outer.name,
        inputs=inputs,
        outputs=list(outer.outputs),
        nodes=[*inner.nodes, *outer.nodes],
        ops=[*inner.ops, *outer.ops],
        expr=expr,
    )


def _children(expr: Any) -> list:
    if isinstance(expr, Call):
        return [*expr.args, *(v for _, v in expr.kwargs)]
    if isinstance(expr, Item):
        return [expr.value]
    if isinstance(expr, (list, tuple)):
        return list(expr)
    return []


def _has_lambda(expr: Any) -> bool:
    return isinstance(expr, Lambda) or any(_has_lambda(c) for c in _children(expr))


def _uses(expr: Any, index: int) -> int:
    """How many times the expression reads its input `index`."""
    if isinstance(expr, Ref):
        return int(expr.index == index)
    return sum(_uses(c, index) for c in _children(expr))


def _substitute(expr: Any, refs: list) -> Any:
    """`expr` with each Ref(i) replaced by refs[i]."""
    if isinstance(expr, Ref):
        return refs[expr.index]
    if isinstance(expr, Call):
        args = tuple(_substitute(a, refs) for a in expr.args)
        kwargs = tuple((k, _substitute(v, refs)) for k, v in expr.kwargs)
        return Call(expr.fn, args, kwargs)
    if isinstance(expr, Item):
        return Item(_substitute(expr.value, refs), expr.index)
    if isinstance(expr, list):
        return [_substitute(v, refs) for v in expr]
    if isinstance(expr, tuple):
        return tuple(_substitute(v, refs) for v in expr)
    return expr


def _renumbered(expr: Any, inputs: list[str]) -> tuple[Any, list[str]]:
    """The inputs in the order the expression first reads them, as the code reads left to
    right."""
    first: dict[int, None] = {}  # input index -> None, in reading order

    def visit(e: Any) -> None:
        if isinstance(e, Ref):
            first.setdefault(e.index)
            return
        for c in _children(e):
            visit(c)

    visit(expr)
    order = [*first, *(i for i in range(len(inputs)) if i not in first)]
    position = {old: new for new, old in enumerate(order)}
    return _substitute(expr, [Ref(position[i]) for i in range(len(inputs))]), [
        inputs[i] for i in order
    ]


def _is_literal(expr: Any) -> bool:
    """A constant written into the code (`keras.ops.convert_to_tensor([...])`, a number): no
    step of the computation, however it is spelled."""
    if isinstance(expr, Call):
        return expr.fn == "convert_to_tensor" and all(_is_literal(a) for a in expr.args)
    if isinstance(expr, (list, tuple)):
        return all(_is_literal(v) for v in expr)
    return not isinstance(expr, (Ref, Item, Lambda))


def _depth(expr: Any) -> int:
    """Calls and subscripts nested in one another, literals not counted."""
    if _is_literal(expr):
        return 0
    below = max((_depth(c) for c in _children(expr)), default=0)
    return below + (1 if isinstance(expr, (Call, Item)) else 0)


def _width(expr: Any) -> int:
    """About how many characters the expression's source takes, a variable as NAME_WIDTH."""
    if isinstance(expr, Ref):
        return NAME_WIDTH
    if isinstance(expr, Call):
        parts = [_width(a) for a in expr.args]
        parts += [len(k) + 1 + _width(v) for k, v in expr.kwargs]
        return len("keras.ops.") + len(expr.fn) + 2 + sum(parts) + 2 * max(len(parts) - 1, 0)
    if isinstance(expr, Item):
        return _width(expr.value) + 2 + 4 * len(expr.index)
    if isinstance(expr, (list, tuple)):
        return 2 + sum(_width(v) + 2 for v in expr)
    return len(repr(expr))
