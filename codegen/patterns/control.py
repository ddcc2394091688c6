"""Ops that training-time control flow leaves in a frozen graph, as keras.ops expressions.

A FusedBatchNorm with is_training=True normalises with the statistics of the batch it is
given, not the moving ones: TF1 graphs frozen with the training branch taken, or a BatchNorm
frozen from a model called with training=True, compute exactly that at inference. A Keras
BatchNormalization does so only in training mode (and then updates its moving statistics), so
the layer pattern (norm.py) declines such nodes and they become the same arithmetic in
keras.ops: the mean and (biased) variance over every axis but the channels.
"""

from __future__ import annotations

from ..graph import Node
from ..spec import Call
from . import Matcher, fallback
from .ops import operands


@fallback("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def batch_statistics_norm(node: Node, m: Matcher):
    if not node.attrs.get("is_training") or any(m.graph.users(node.output(i)) for i in range(1, 6)):
        return None
    fmt = node.attrs.get("data_format", "NHWC")
    shape = m.shape(node.inputs[0])
    rank = len(shape) if shape is not None else len(fmt)
    if fmt not in ("NHWC", "NCHW", "NDHWC", "NCDHW") or rank != len(fmt):
        return None
    channels = fmt.index("C")
    axes = tuple(i for i in range(rank) if i != channels)
    (x, scale, offset), inputs = operands(m, node.inputs[:3])
    eps = float(node.attrs.get("epsilon", 1e-4))
    kw = (("axis", axes),)
    expr = Call(
        "batch_normalization",
        (x, Call("mean", (x,), kw), Call("var", (x,), kw), channels - rank),
        (("offset", offset), ("scale", scale), ("epsilon", _f32(eps))),
    )
    return m.ops([node], expr, inputs)


def _f32(value: float) -> float:
    from .norm import _f32 as shortest

    return shortest(value)
