"""Shape vectors computed at run time, as TF1 code builds them (`tf.shape(x)[0]`, a Pack of
dynamic sizes and constants, `tf.shape(x)[1] * 2`), read symbolically: which entry is which
tensor's batch or spatial size. A Reshape or a transposed conv that takes such a vector becomes
a layer with a static target once each entry is known in terms of its input; the arithmetic
then has no consumer left and the layer absorbs it, also when several layers share it (one
`tf.shape(x)` feeding the reshapes of every attention head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..graph import Node
from ..optable.arrays import strided_slice_index
from .registry import Matcher

# Past this depth a shape computation is not plumbing a layer can absorb.
MAX_DEPTH = 12

# Ops a run-time shape vector is computed with.
PLUMBING_OPS = {
    "Shape",
    "StridedSlice",
    "Pack",
    "ConcatV2",
    "GatherV2",
    "Prod",
    "Cast",
    "Mul",
    "AddV2",
    "Add",
    "Sub",
    "Squeeze",
    "Reshape",
}


@dataclass(frozen=True)
class Dim:
    """An entry of a run-time shape vector: scale * shape(tensor)[axis] + offset."""

    tensor: str
    axis: int
    scale: int = 1
    offset: int = 0

    def plain(self) -> bool:
        return self.scale == 1 and self.offset == 0


Entry = int | Dim | None  # None: computed some other way


def shape_vector(m: Matcher, tensor: str, depth: int = 0) -> list[Entry] | None:
    """The entries of a 1-D integer tensor: constants as ints, sizes read from `Shape(y)` that
    the static shapes leave unknown as Dims, anything else None; None when not even its
    length is known."""
    if m.consts.is_const(tensor):
        return m.ints(tensor)
    if depth > MAX_DEPTH:
        return None
    node = m.node(tensor)
    ins = node.inputs
    if node.op == "Shape":
        shape = m.shape(ins[0])
        if shape is None:
            return None
        return [d if d is not None else Dim(ins[0], i) for i, d in enumerate(shape)]
    if node.op in ("Cast", "Squeeze"):
        return shape_vector(m, ins[0], depth + 1)
    if node.op == "Reshape":
        vec = shape_vector(m, ins[0], depth + 1)
        return vec if vec is not None and len(vec) == 1 else None
    if node.op == "Pack":
        parts = [shape_vector(m, t, depth + 1) for t in ins]
        if any(p is None or len(p) != 1 for p in parts):
            return None
        return [p[0] for p in parts]
    if node.op == "ConcatV2":
        parts = [shape_vector(m, t, depth + 1) for t in ins[:-1]]
        return None if any(p is None for p in parts) else [d for p in parts for d in p]
    if node.op == "StridedSlice":
        return _sliced(m, node, depth)
    if node.op == "GatherV2":
        vec, idx = shape_vector(m, ins[0], depth + 1), m.ints(ins[1])
        if vec is None or idx is None or not all(-len(vec) <= i < len(vec) for i in idx):
            return None
        return [vec[i] for i in idx]
    if node.op == "Prod":
        vec = shape_vector(m, ins[0], depth + 1)
        if vec is None:
            return None
        known = [d for d in vec if isinstance(d, int)]
        product = 1
        for d in known:
            product *= d
        rest = [d for d in vec if not isinstance(d, int)]
        if not rest:
            return [product]
        if len(rest) == 1 and isinstance(rest[0], Dim):
            return [_affine(rest[0], product, 0)]
        return [None]
    if node.op in ("Mul", "AddV2", "Add", "Sub"):
        return _arithmetic(m, node, depth)
    return None


def _sliced(m: Matcher, node: Node, depth: int) -> list[Entry] | None:
    vec = shape_vector(m, node.inputs[0], depth + 1)
    begin, end, strides = (m.ints(t) for t in node.inputs[1:4])
    if vec is None or begin is None or end is None or strides is None:
        return None
    try:
        index = strided_slice_index(node, begin, end, strides, 1)
    except ValueError:
        return None
    if len(index) != 1:
        return None
    if isinstance(index[0], int):
        return [vec[index[0]]] if -len(vec) <= index[0] < len(vec) else None
    if isinstance(index[0], slice):
        return list(vec[index[0]])
    return None


def _affine(d: Entry, scale: int, offset: int) -> Entry:
    if d is None:
        return None
    if isinstance(d, int):
        return d * scale + offset
    return Dim(d.tensor, d.axis, d.scale * scale, d.offset * scale + offset)


def _arithmetic(m: Matcher, node: Node, depth: int) -> list[Entry] | None:
    """An element-wise op of a shape vector and one integer constant scalar."""
    split = m.split_const(node)
    if split is None:
        return None
    data, const = split
    c = m.const(const)
    if c is None or c.size != 1 or c.dtype.kind not in "iu":
        return None
    c = int(c.reshape(()))
    vec = shape_vector(m, data, depth + 1)
    if vec is None:
        return None
    if node.op == "Mul":
        return [_affine(d, c, 0) for d in vec]
    if node.op == "Sub" and node.inputs[0] != data:
        return [_affine(d, -1, c) for d in vec]  # c - vector
    return [_affine(d, 1, c if node.op != "Sub" else -c) for d in vec]


# op -> (the input that is a shape vector, whether a node of that op takes its vector as a
# static layer argument). Modules with such layers register here (reshape.py, conv.py).
CONSUMERS: dict[str, tuple[int, Callable[[Node, Matcher], bool]]] = {}


def consumer(op: str, index: int):
    def register(fn: Callable[[Node, Matcher], bool]):
        CONSUMERS[op] = (index, fn)
        return fn

    return register


def absorbed(m: Matcher, node: Node) -> list[Node] | None:
    """The shape arithmetic feeding `node`'s shape vector that `node`'s layer absorbs, or None
    when the arithmetic is used by anything but layers that take their vectors as static
    arguments. Arithmetic shared by several such layers is absorbed by the first of them (in
    graph order); the others absorb none of it."""
    index, _ = CONSUMERS[node.op]
    found: dict[str, Node] = {}
    exits: dict[str, Node] = {node.name: node}
    stack = [node.inputs[index]]
    while stack:
        t = stack.pop()
        producer = m.node(t)
        if producer.name in found or m.consts.is_const(t):
            continue
        if producer.op not in PLUMBING_OPS or len(found) > 64:
            return None
        found[producer.name] = producer
        if producer.op != "Shape":
            stack.extend(producer.inputs)
        for user in m.graph.users(producer.output(0)):
            if user.name in found or user.name in exits:
                continue
            use = CONSUMERS.get(user.op)
            if use is not None and user.inputs[use[0]] == producer.output(0):
                if producer.output(0) in user.inputs[: use[0]] + user.inputs[use[0] + 1 :]:
                    return None  # also read as data
                exits[user.name] = user
            elif user.op in PLUMBING_OPS and user.op != "Shape":
                stack.append(user.output(0))
            else:
                return None
    for name, user in exits.items():
        if name != node.name and not CONSUMERS[user.op][1](user, m):
            return None
    if m.graph.in_order(exits)[0] is not node:
        return []
    if any(n.name in m.covered for n in found.values()):
        return None
    return m.graph.in_order(found)
