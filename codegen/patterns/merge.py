"""Ops between two or more computed tensors: Keras merge layers."""

from __future__ import annotations

from ..graph import Node
from .registry import Matcher, pattern

MERGE = {
    "Add": "Add",
    "AddV2": "Add",
    "Mul": "Multiply",
    "Sub": "Subtract",
    "Maximum": "Maximum",
    "Minimum": "Minimum",
}


def _same_rank(m: Matcher, tensors: list[str]) -> bool:
    """Keras merge layers line operands up from the batch axis, not NumPy-style from the last;
    the two agree only for operands of one rank (and a scalar has no batch axis at all)."""
    shapes = [m.shape(t) for t in tensors]
    return all(s is not None and len(s) >= 1 for s in shapes) and len({len(s) for s in shapes}) == 1


@pattern(*MERGE)
def elementwise(node: Node, m: Matcher):
    if len(node.inputs) != 2 or any(m.consts.is_const(t) for t in node.inputs):
        return None
    if not _same_rank(m, node.inputs):
        return None
    return m.layer(MERGE[node.op], [node], list(node.inputs), list_input=True)


@pattern("AddN")
def add_n(node: Node, m: Matcher):
    if any(m.consts.is_const(t) for t in node.inputs) or not _same_rank(m, node.inputs):
        return None
    return m.layer("Add", [node], list(node.inputs), list_input=True)


@pattern("ConcatV2")
def concat(node: Node, m: Matcher):
    tensors, axis = node.inputs[:-1], m.ints(node.inputs[-1])
    shape = m.shape(node.output(0))
    if axis is None or len(axis) != 1 or any(m.consts.is_const(t) for t in tensors):
        return None
    axis = axis[0]
    kwargs = {}
    if shape is not None and not shape:
        return None  # nothing to concatenate along in a scalar
    if shape is None:
        if axis != -1:
            kwargs["axis"] = axis
    elif axis % len(shape) != len(shape) - 1:
        kwargs["axis"] = axis % len(shape)
    if len(tensors) == 1:
        return None
    return m.layer("Concatenate", [node], list(tensors), kwargs=kwargs, list_input=True)
