"""Neural-network ops: convolutions, pooling, normalization, matrix products, image resizing.
Layer patterns claim them; their records say what decoding checks, their output shapes, and
which of them have a data_format that passes/layout.py rewrites.
"""

from __future__ import annotations

import math

import numpy as np

from .numeric import broadcast, limit
from .record import NCHW, op
from .signature import Attr

_FORMAT = Attr("s")  # the values each op allows are TensorFlow's (signature.derive)
_PADDING = Attr("s", required=True)
_WINDOW = Attr("list(i)", required=True, lengths=(4,), minimum=1)
_CONV = {
    "strides": _WINDOW,
    "padding": _PADDING,
    "data_format": _FORMAT,
    "dilations": Attr("list(i)", lengths=(4,), minimum=1),
    "explicit_paddings": Attr("list(i)", lengths=(0, 8), minimum=0),
}
_POOL = {**_CONV, "ksize": _WINDOW}
del _POOL["dilations"]

# -- windows -----------------------------------------------------------------------------------


def _window(size, k, s, d, padding, pads=(0, 0)):
    if size is None:
        return None
    eff = (k - 1) * d + 1
    if padding == "SAME":
        return math.ceil(size / s)
    if padding == "EXPLICIT":
        size += pads[0] + pads[1]
    return (size - eff) // s + 1


def _conv_like(shape, ksize, strides, dilations, padding, channels, explicit=()):
    if shape is None or len(shape) != 4:
        return None
    pads = [(explicit[2 * i], explicit[2 * i + 1]) for i in range(4)] if explicit else [(0, 0)] * 4
    h = _window(shape[1], ksize[0], strides[1], dilations[1], padding, pads[1])
    w = _window(shape[2], ksize[1], strides[2], dilations[2], padding, pads[2])
    return (shape[0], h, w, channels)


_NHWC, _NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _nchw(fn):
    """A rule written for NHWC, applied to an NCHW node: its input shape and its 4-element
    attributes permuted to NHWC, its result back to NCHW."""

    def wrapped(node, ins, c):
        a = node.attrs
        if a.get("data_format", "NHWC") == "NHWC":
            return fn(a, ins, c)
        if a.get("data_format") != "NCHW" or ins[0] is None or len(ins[0]) != 4:
            return None
        attrs = dict(a)
        for key in ("strides", "ksize", "dilations"):
            if key in attrs:
                attrs[key] = [attrs[key][i] for i in _NHWC]
        pads = attrs.get("explicit_paddings")
        if pads:
            attrs["explicit_paddings"] = [pads[2 * i + j] for i in _NHWC for j in (0, 1)]
        out = fn(attrs, [tuple(ins[0][i] for i in _NHWC), *ins[1:]], c)
        return None if out is None else tuple(out[i] for i in _NCHW)

    wrapped.__doc__ = fn.__doc__
    return wrapped


def _conv(node, ins, c):
    """Filters are HWIO for Conv2D and HW(in)(multiplier) for depthwise: only the output
    channel count differs."""
    depthwise = node.op == "DepthwiseConv2dNative"

    def nhwc(a, ins, c):
        fshape = ins[1]
        if fshape is None:
            return None
        channels = fshape[2] * fshape[3] if depthwise else fshape[3]
        return _conv_like(
            ins[0],
            fshape[:2],
            a["strides"],
            a.get("dilations", [1] * 4),
            a["padding"],
            channels,
            a.get("explicit_paddings"),
        )

    return _nchw(nhwc)(node, ins, c)


def _pool(node, ins, c):
    def nhwc(a, ins, c):
        if ins[0] is None:
            return None
        return _conv_like(
            ins[0],
            a["ksize"][1:3],
            a["strides"],
            [1] * 4,
            a["padding"],
            ins[0][3],
            a.get("explicit_paddings"),
        )

    return _nchw(nhwc)(node, ins, c)


def _deconv(node, ins, c):
    sizes = c.partial_vector(node.inputs[0])
    if sizes is None or len(sizes) != 4:
        return None
    batch = ins[2][0] if ins[2] else None
    return (batch, *sizes[1:])


def _input_shape(node, ins, c):
    """The bias (or normalization) runs along the channel axis, last or (NCHW) second: the
    shape is x's."""
    return ins[0]


def _bias_add(node, x, bias):
    if node.attrs.get("data_format", "NHWC") == "NCHW" and x.ndim > 2:
        bias = np.reshape(bias, (-1,) + (1,) * (x.ndim - 2))
    return x + bias


# A layer's weights meet its input here: the layer patterns read these with their constant
# operands, and constant folding leaves them to them. The RNN step check evaluates them.
_LAYER = "not folded: a layer pattern reads it"

op("Conv2D", attrs=_CONV, family=NCHW, channels_last=True, shape=_conv)
op("DepthwiseConv2dNative", attrs=_CONV, family=NCHW, channels_last=True, shape=_conv)
op("Conv2DBackpropInput", attrs=_CONV, shape=_deconv)
op("MaxPool", attrs=_POOL, family=NCHW, channels_last=True, shape=_pool)
op("AvgPool", attrs=_POOL, family=NCHW, channels_last=True, shape=_pool)
op(
    "BiasAdd",
    attrs={"data_format": _FORMAT},
    family=NCHW,
    channels_last=True,
    shape=_input_shape,
    kernel=_bias_add,
    folds=False,
    why=_LAYER,
)
for _op in ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"):
    op(
        _op,
        attrs={"epsilon": Attr("f"), "is_training": Attr("b"), "data_format": _FORMAT},
        family=NCHW,
        channels_last=True,
        shape=_input_shape,
    )

# -- matrix products ---------------------------------------------------------------------------


def _matmul_shape(node, ins, c):
    a, b = ins
    if a is None or b is None:
        return None
    rows = a[1] if node.attrs.get("transpose_a") else a[0]
    cols = b[0] if node.attrs.get("transpose_b") else b[1]
    return (rows, cols)


def _matmul(node, a, b):
    """a @ b, the result's size checked first (numeric.limit): [n, 1] @ [1, m] is n * m
    elements of two small operands."""
    if node.attrs.get("transpose_a"):
        a = a.T
    if node.attrs.get("transpose_b"):
        b = b.T
    if a.ndim >= 2 and b.ndim >= 2:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        limit(node, math.prod(batch) * a.shape[-2] * b.shape[-1], a, b)
    return a @ b


def _batch_matmul_shape(node, ins, c):
    a, b = ins
    if a is None or b is None:
        return None
    rows = a[-1] if node.attrs.get("adj_x") else a[-2]
    cols = b[-2] if node.attrs.get("adj_y") else b[-1]
    batch = broadcast(a[:-2], b[:-2])
    return None if batch is None else (*batch, rows, cols)


def _einsum(node, ins, c):
    """Each output letter's size from the first operand that has it (no ellipsis)."""
    equation = node.attrs.get("equation", "")
    if "..." in equation or "->" not in equation or any(s is None for s in ins):
        return None
    lhs, out = equation.replace(" ", "").split("->")
    terms = lhs.split(",")
    if len(terms) != len(ins) or any(len(t) != len(s) for t, s in zip(terms, ins)):
        return None
    sizes: dict[str, int | None] = {}
    for term, shape in zip(terms, ins):
        for letter, dim in zip(term, shape):
            if sizes.get(letter) is None:
                sizes[letter] = dim
    return tuple(sizes[letter] for letter in out)


op(
    "MatMul",
    attrs={"transpose_a": Attr("b"), "transpose_b": Attr("b")},
    shape=_matmul_shape,
    kernel=_matmul,
    folds=False,
    why=_LAYER,
)
for _op in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
    op(_op, attrs={"adj_x": Attr("b"), "adj_y": Attr("b")}, shape=_batch_matmul_shape)
op("Einsum", shape=_einsum)

# -- images ------------------------------------------------------------------------------------

op("ResizeBilinear")
op("ResizeNearestNeighbor")
