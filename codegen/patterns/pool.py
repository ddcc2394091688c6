"""Pooling: MaxPool/AvgPool windows, and Mean/Max over H and W (or the steps of a sequence)
as global pooling."""

from __future__ import annotations

from ..graph import Node
from .registry import Matcher, pattern
from .conv import pair


@pattern("MaxPool", "AvgPool")
def pool2d(node: Node, m: Matcher):
    a = node.attrs
    if a.get("data_format", "NHWC") != "NHWC" or a.get("padding") not in ("SAME", "VALID"):
        return None
    ksize, strides = a["ksize"], a["strides"]
    if ksize[0] != 1 or ksize[3] != 1 or strides[0] != 1 or strides[3] != 1:
        return None
    size, step = pair(ksize[1:3]), pair(strides[1:3])
    kwargs = {"strides": step} if step != size else {}
    kwargs["padding"] = a["padding"].lower()
    cls = "MaxPooling2D" if node.op == "MaxPool" else "AveragePooling2D"
    return m.layer(cls, [node], [node.inputs[0]], args=[size], kwargs=kwargs)


@pattern("Mean", "Max")
def global_pool(node: Node, m: Matcher):
    x = node.inputs[0]
    shape, axes = m.shape(x), m.ints(node.inputs[1])
    if shape is None or len(shape) not in (3, 4) or axes is None:
        return None
    rank = len(shape)
    if sorted(a % rank for a in axes) != list(range(1, rank - 1)):
        return None  # over the steps (N, T, C) or the pixels (N, H, W, C) only
    kind = "Average" if node.op == "Mean" else "Max"
    cls = f"Global{kind}Pooling{rank - 2}D"
    kwargs = {"keepdims": True} if node.attrs.get("keep_dims") else {}
    return m.layer(cls, [node], [x], kwargs=kwargs)
