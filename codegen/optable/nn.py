"""Neural-network ops: convolutions, pooling, normalization, matrix products, image resizing.
Layer patterns claim them; their records say what decoding checks, their output shapes, and
which of them have a data_format that passes/layout.py rewrites.
"""

from __future__ import annotations

import math

import numpy as np

from .numeric import broadcast, limit, same_operand, same_shape
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
    """The output shape is the input_sizes operand; computed from tf.shape of the input (a
    fully convolutional net), its entries may be unknown, but its length is the rank and the
    filter gives the channels."""
    sizes = c.partial_vector(node.inputs[0])
    if sizes is None and ins[0] is not None and ins[0] == (4,):
        sizes = [None] * 4
        channels = ins[1][2] if ins[1] is not None and len(ins[1]) == 4 else None
        sizes[1 if node.attrs.get("data_format") == "NCHW" else 3] = channels
    if sizes is None or len(sizes) != 4:
        return None
    batch = ins[2][0] if ins[2] else None
    return (batch, *sizes[1:])


# -- what an image op fixes of its input -------------------------------------------------------


def _image(node, batch=None, spatial=(None, None), channels=None) -> tuple:
    """A 4-D shape in the node's data_format."""
    if node.attrs.get("data_format", "NHWC") == "NCHW":
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


def _image_dims(node, shape) -> tuple | None:
    """(batch, (height, width), channels) of a 4-D shape in the node's data_format."""
    if shape is None or len(shape) != 4:
        return None
    if node.attrs.get("data_format", "NHWC") == "NCHW":
        return shape[0], tuple(shape[2:]), shape[1]
    return shape[0], tuple(shape[1:3]), shape[3]


def _same_spatial(node, out) -> tuple:
    """With SAME padding and stride 1 a window op keeps the spatial sizes."""
    dims = _image_dims(node, out)
    if dims is None or node.attrs.get("padding") != "SAME":
        return (None, None)
    strides = _image_dims(node, node.attrs.get("strides", [1] * 4))[1]
    return tuple(d if s == 1 else None for d, s in zip(dims[1], strides))


def _conv_operands(node, ins, out, c):
    """A convolution's filter fixes its input's rank (4) and channels (its third dimension);
    the output gives the batch (and, with stride 1 and SAME padding, the spatial sizes)."""
    fshape = ins[1]
    channels = fshape[2] if fshape is not None and len(fshape) == 4 else None
    batch = (_image_dims(node, out) or (None,))[0]
    return [_image(node, batch, _same_spatial(node, out), channels), None]


def _deconv_operands(node, ins, out, c):
    """A transposed convolution reads out_backprop: 4-D, the filter's last dimension deep."""
    fshape = ins[1]
    channels = fshape[3] if fshape is not None and len(fshape) == 4 else None
    batch = (_image_dims(node, out) or (None,))[0]
    return [None, None, _image(node, batch, (None, None), channels)]


def _pool_operands(node, ins, out, c):
    dims = _image_dims(node, out)
    if dims is None:
        return [_image(node)]
    return [_image(node, dims[0], _same_spatial(node, out), dims[2])]


def _normalized_operands(node, ins, out, c):
    """FusedBatchNorm: a 4-D input with as many channels as the scale has entries; a
    volumetric one (NDHWC/NCDHW) fixes only what its output does."""
    if node.attrs.get("data_format", "NHWC") in ("NDHWC", "NCDHW"):
        return [out, *[None] * (len(ins) - 1)]
    scale = ins[1] if len(ins) > 1 else None
    channels = scale[0] if scale is not None and len(scale) == 1 else None
    shape = out if out is not None and len(out) == 4 else _image(node)
    dims = _image_dims(node, shape)
    found = _image(node, dims[0], dims[1], dims[2] if dims[2] is not None else channels)
    return [found, *[None] * (len(ins) - 1)]


def _resize_operands(node, ins, out, c):
    dims = _image_dims(node, out)
    return [_image(node) if dims is None else _image(node, dims[0], (None, None), dims[2]), None]


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

_IMAGE = {"family": NCHW, "channels_last": True}
op("Conv2D", attrs=_CONV, **_IMAGE, shape=_conv, operands=_conv_operands)
op("DepthwiseConv2dNative", attrs=_CONV, **_IMAGE, shape=_conv, operands=_conv_operands)
op("Conv2DBackpropInput", attrs=_CONV, shape=_deconv, operands=_deconv_operands)
op("MaxPool", attrs=_POOL, **_IMAGE, shape=_pool, operands=_pool_operands)
op("AvgPool", attrs=_POOL, **_IMAGE, shape=_pool, operands=_pool_operands)


def _conv3d(node, ins, c):
    """NDHWC only (a layer pattern reads nothing else); the filter is DHWIO."""
    a, shape, fshape = node.attrs, ins[0], ins[1]
    if a.get("data_format", "NDHWC") != "NDHWC" or shape is None or len(shape) != 5:
        return None
    if fshape is None or len(fshape) != 5:
        return None
    strides, dilations = a["strides"], a.get("dilations", [1] * 5)
    spatial = [
        _window(shape[1 + i], fshape[i], strides[1 + i], dilations[1 + i], a["padding"])
        for i in range(3)
    ]
    return (shape[0], *spatial, fshape[4])


op(
    "Conv3D",
    attrs={
        "strides": Attr("list(i)", required=True, lengths=(5,), minimum=1),
        "padding": _PADDING,
        "data_format": _FORMAT,
        "dilations": Attr("list(i)", lengths=(5,), minimum=1),
    },
    shape=_conv3d,
)
op(
    "BiasAdd",
    attrs={"data_format": _FORMAT},
    family=NCHW,
    channels_last=True,
    shape=_input_shape,
    operands=same_operand,
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
        operands=_normalized_operands,
    )

# -- matrix products ---------------------------------------------------------------------------


def _matmul_shape(node, ins, c):
    a, b = ins
    if a is None or b is None:
        return None
    rows = a[1] if node.attrs.get("transpose_a") else a[0]
    cols = b[0] if node.attrs.get("transpose_b") else b[1]
    return (rows, cols)


def _matmul_operands(node, ins, out, c):
    """Each operand is a matrix; the other gives its inner dimension, the output its outer."""
    a, b = (s if s is not None and len(s) == 2 else (None, None) for s in ins)
    ta, tb = node.attrs.get("transpose_a"), node.attrs.get("transpose_b")
    rows, cols = out if out is not None and len(out) == 2 else (None, None)
    inner_b, inner_a = b[1 if tb else 0], a[0 if ta else 1]
    return [
        (inner_b, rows) if ta else (rows, inner_b),
        (cols, inner_a) if tb else (inner_a, cols),
    ]


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
    operands=_matmul_operands,
    kernel=_matmul,
    folds=False,
    why=_LAYER,
)
for _op in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
    op(_op, attrs={"adj_x": Attr("b"), "adj_y": Attr("b")}, shape=_batch_matmul_shape)
op("Einsum", shape=_einsum)

# -- images ------------------------------------------------------------------------------------


def resized_shape(node, ins, c):
    """(batch, the size operand, channels)."""
    size = c.partial_vector(node.inputs[1])
    if ins[0] is None or len(ins[0]) != 4 or size is None or len(size) != 2:
        return None
    return (ins[0][0], *size, ins[0][3])


op("ResizeBilinear", shape=resized_shape, operands=_resize_operands)
op("ResizeNearestNeighbor", shape=resized_shape, operands=_resize_operands)
# colour and contrast adjustments keep the image's shape
for _op in ("AdjustContrastv2", "AdjustSaturation", "AdjustHue", "RGBToHSV", "HSVToRGB"):
    op(_op, shape=same_shape)
