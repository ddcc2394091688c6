"""Scale and shift by constants (x * a + b, x / a, x - b) as Keras' Rescaling layer."""

from __future__ import annotations

from ..graph import Node
from .registry import Matcher, pattern


def _affine(m: Matcher, node: Node):
    """(scale, offset) of a single Mul/Add/Sub/RealDiv by a scalar constant, or None."""
    split = m.split_const(node)
    if not split:
        return None
    value = m.scalar(split[1])
    if value is None:
        return None
    x_first = node.inputs[0] == split[0]
    if node.op == "Mul":
        return value, 0.0
    if node.op in ("Add", "AddV2"):
        return 1.0, value
    if node.op == "Sub":
        return (1.0, -value) if x_first else (-1.0, value)
    if node.op == "RealDiv" and x_first and value != 0:
        return 1.0 / value, 0.0
    return None


@pattern("Mul", "Add", "AddV2", "Sub", "RealDiv")
def rescaling(node: Node, m: Matcher):
    affine = _affine(m, node)
    if affine is None:
        return None
    scale, offset = affine
    nodes, out = [node], node.output(0)
    # x * a followed by + b in the same layer is one Rescaling(a, b), as Keras writes it
    nxt = m.user(out, "Add", "AddV2", "Sub")
    if nxt is not None and m.same_layer(node, nxt) and node.op in ("Mul", "RealDiv"):
        more = _affine(m, nxt)
        if more is not None and more[0] == 1.0:
            offset = more[1]
            nodes.append(nxt)
            out = nxt.output(0)
    x = m.split_const(node)[0]
    kwargs = {"offset": offset} if offset else {}
    return m.layer("Rescaling", nodes, [x], args=[scale], kwargs=kwargs, output=out)


@pattern("Mul")
def channel_scale(node: Node, m: Matcher):
    """x * gamma with gamma a vector over the last axis: a learned per-channel scale (ConvNeXt's
    LayerScale). Keras has no such layer, so a small backend-neutral helper layer is emitted."""
    split = m.split_const(node)
    if not split:
        return None
    x, gamma = split
    value, shape = m.const(gamma), m.shape(x)
    if not shape or value is None or value.size < 2 or value.size != shape[-1]:
        return None
    if value.ndim and value.shape[-1] != value.size:
        return None
    weights = [m.weight("gamma", gamma, (value.size,))]
    return m.layer("ChannelScale", [node], [x], weights=weights)
