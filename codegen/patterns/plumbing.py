"""Shape vectors computed at run time, as TF1 code builds them (`tf.shape(x)[0]`, a Pack of
dynamic sizes and constants, `tf.shape(x)[1] * 2`). `Constants.shape_terms` (passes/fold.py)
reads them symbolically: which entry is which tensor's batch or spatial size. A Reshape or a
transposed conv that takes such a vector becomes a layer with a static target once each entry is
known in terms of its input; the arithmetic then has no consumer left and the layer absorbs it
(`absorbed`, here), also when several layers share it (one `tf.shape(x)` feeding the reshapes of
every attention head).
"""

from __future__ import annotations

from typing import Callable

from ..graph import Node
from .registry import Matcher

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
