"""Sizes as shape arithmetic computes them (Shape, StridedSlice, Pack, Mul, Prod, ...): a
constant times dimensions known only at run time, so that patterns can tell `tf.shape(x)[0]`
(the batch) from `tf.shape(x)[0] * tf.shape(x)[1]` (two dimensions merged), which
Constants.partial_vector both calls unknown.
"""

from __future__ import annotations

from ..optable.arrays import strided_slice_index
from .registry import Matcher

# A size as shape arithmetic computes it: a constant times dimensions known only at run time,
# each named (tensor, axis). Enough to see that Shape(x)[0] * Shape(x)[1] is x's first two
# dimensions merged.
Size = tuple  # (int, tuple of (tensor, axis), sorted)
MAX_SIZE_DEPTH = 16


def sizes(m: Matcher, tensor: str, depth: int = 0) -> list[Size] | None:
    """The entries of a 1-D shape vector as sizes, or None past what this follows (Shape,
    StridedSlice of one entry or a range, Pack, ConcatV2, Mul, Prod, Cast, constants)."""
    ints = m.ints(tensor)
    if ints is not None:
        return [(i, ()) for i in ints]
    node = m.node(tensor)
    if depth > MAX_SIZE_DEPTH or node.op not in SIZE_OPS:
        return None
    ins = node.inputs
    if node.op == "Shape":
        shape = m.shape(ins[0])
        if shape is None:
            return None
        return [(d, ()) if d is not None else (1, ((ins[0], i),)) for i, d in enumerate(shape)]
    if node.op == "Cast":
        return sizes(m, ins[0], depth + 1)
    if node.op in ("Pack", "ConcatV2"):
        parts = [sizes(m, t, depth + 1) for t in (ins if node.op == "Pack" else ins[:-1])]
        if any(p is None for p in parts) or (node.op == "Pack" and any(len(p) != 1 for p in parts)):
            return None
        return [size for part in parts for size in part]
    if node.op == "StridedSlice":
        vector, bounds = sizes(m, ins[0], depth + 1), [m.ints(t) for t in ins[1:4]]
        if vector is None or None in bounds:
            return None
        try:
            index = strided_slice_index(node, *bounds, 1)
        except ValueError:
            return None
        if len(index) != 1 or index[0] is None or index[0] is Ellipsis:
            return None
        if isinstance(index[0], int):
            return [vector[index[0]]] if -len(vector) <= index[0] < len(vector) else None
        return list(vector[index[0]])
    parts = [sizes(m, t, depth + 1) for t in ins[:2]]
    if any(p is None for p in parts):
        return None
    if node.op == "Prod":
        if m.ints(ins[1]) != [0] or node.attrs.get("keep_dims"):
            return None
        return [product(parts[0])]
    a, b = parts  # Mul of two scalars (or one scalar and a vector)
    if len(a) != 1 and len(b) != 1:
        return None
    return [product([x, y]) for x in a for y in b]


SIZE_OPS = {"Shape", "Cast", "Pack", "ConcatV2", "StridedSlice", "Mul", "Prod"}


def product(sizes: list[Size]) -> Size:
    factor, dims = 1, []
    for f, d in sizes:
        factor *= f
        dims += d
    return factor, tuple(sorted(dims))
