"""Static shape inference: enough to write `keras.Input` shapes and to tell a Flatten from a
Reshape, a Dense on 2-D input from one on 4-D input, a global pool from a reduction.

Shapes are tuples with None for unknown dimensions (the batch, usually), or None when even the
rank is unknown. Ops without a rule get unknown shapes; patterns that need one then decline.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..graph import Graph, Node
from .fold import KERNELS, Constants, run_kernel

Shape = tuple  # of int | None

UNARY = {
    "Relu",
    "Relu6",
    "Elu",
    "Selu",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "Softsign",
    "Erf",
    "Erfc",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Sqrt",
    "Rsqrt",
    "Square",
    "Reciprocal",
    "Softmax",
    "LogSoftmax",
    "LeakyRelu",
    "Cast",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Identity",
    "Gelu",
    "Swish",
    "Log1p",
    "Expm1",
    "HardSwish",
    "Relu1",
    "LRN",
}
BINARY = {
    "Add",
    "AddV2",
    "Sub",
    "Mul",
    "RealDiv",
    "Div",
    "Maximum",
    "Minimum",
    "Pow",
    "SquaredDifference",
    "FloorDiv",
    "FloorMod",
    "DivNoNan",
    "Greater",
    "Less",
    "Equal",
    "GreaterEqual",
    "LessEqual",
    "NotEqual",
    "LogicalAnd",
    "LogicalOr",
}

RULES: dict[str, Callable] = {}


def rule(*ops):
    def register(fn):
        for op in ops:
            RULES[op] = fn
        return fn

    return register


def broadcast(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None:
        return None
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or y == x:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            return None
    return tuple(reversed(out))


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


@rule("Conv2D", "DepthwiseConv2dNative")
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


@rule("MaxPool", "AvgPool")
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


@rule("BiasAdd")
def _bias_add(node, ins, c):
    """The bias runs along the channel axis, last or (NCHW) second: the shape is x's."""
    return ins[0]


@rule("Conv2DBackpropInput")
def _deconv(node, ins, c):
    sizes = c.partial_vector(node.inputs[0])
    if sizes is None or len(sizes) != 4:
        return None
    batch = ins[2][0] if ins[2] else None
    return (batch, *sizes[1:])


@rule("MatMul")
def _matmul(node, ins, c):
    a, b = ins
    if a is None or b is None:
        return None
    rows = a[1] if node.attrs.get("transpose_a") else a[0]
    cols = b[0] if node.attrs.get("transpose_b") else b[1]
    return (rows, cols)


@rule("BatchMatMulV2", "BatchMatMul", "BatchMatMulV3")
def _batch_matmul(node, ins, c):
    a, b = ins
    if a is None or b is None:
        return None
    rows = a[-1] if node.attrs.get("adj_x") else a[-2]
    cols = b[-2] if node.attrs.get("adj_y") else b[-1]
    batch = broadcast(a[:-2], b[:-2])
    return None if batch is None else (*batch, rows, cols)


@rule("Reshape")
def _reshape(node, ins, c):
    target = c.partial_vector(node.inputs[1])
    if target is None:
        return None
    shape = ins[0]
    dims = [None if d is None else int(d) for d in target]
    if shape is not None and dims.count(-1) == 1 and all(d is not None for d in shape):
        known = math.prod(d for d in dims if d not in (-1, None))
        if None not in dims and known:
            dims[dims.index(-1)] = math.prod(shape) // known
    if shape is not None and -1 in dims and shape[0] is None:
        # a free batch dimension flows into the -1 when everything else is fixed
        rest = [d for d in dims if d != -1]
        if None not in rest and all(d is not None for d in shape[1:]):
            if math.prod(rest) == math.prod(shape[1:]):
                dims[dims.index(-1)] = None
    if shape is not None and shape[0] is None and dims and dims[0] == 1:
        # batch 1 baked into the target while the batch is free: each example is reshaped
        # alike (patterns/reshape.py writes it with a free batch)
        rest, size = dims[1:], math.prod(d or 0 for d in shape[1:])
        known = math.prod(d for d in rest if d not in (-1, None))
        if None not in shape[1:] and None not in rest and rest.count(-1) <= 1 and known:
            if -1 in rest and size % known == 0:
                rest[rest.index(-1)] = size // known
            if math.prod(rest) == size:
                dims = [None, *rest]
    return tuple(None if d == -1 else d for d in dims)


@rule("Squeeze")
def _squeeze(node, ins, c):
    shape = ins[0]
    if shape is None:
        return None
    axes = [a % len(shape) for a in node.attrs.get("squeeze_dims") or []]
    if not axes:
        if None in shape:
            return None
        return tuple(d for d in shape if d != 1)
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@rule("ExpandDims")
def _expand(node, ins, c):
    shape, axis = ins[0], c.value(node.inputs[1])
    if shape is None or axis is None:
        return None
    axis = int(axis) % (len(shape) + 1)
    return (*shape[:axis], 1, *shape[axis:])


@rule("Mean", "Max", "Min", "Sum", "Prod", "All", "Any", "ArgMax", "ArgMin")
def _reduction(node, ins, c):
    shape, axes = ins[0], c.value(node.inputs[1])
    if shape is None or axes is None:
        return None
    axes = {int(a) % len(shape) for a in np.atleast_1d(axes)}
    if node.op in ("ArgMax", "ArgMin"):
        return tuple(d for i, d in enumerate(shape) if i not in axes)
    keep = node.attrs.get("keep_dims", False)
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)


@rule("ConcatV2")
def _concat(node, ins, c):
    axis = c.value(node.inputs[-1])
    shapes = ins[:-1]
    if axis is None or any(s is None for s in shapes):
        return None
    axis = int(axis) % len(shapes[0])
    total = sum(s[axis] for s in shapes) if all(s[axis] is not None for s in shapes) else None
    out = list(shapes[0])
    for s in shapes[1:]:
        out = [a if a is not None else b for a, b in zip(out, s)]
    out[axis] = total
    return tuple(out)


@rule("Pad", "PadV2", "MirrorPad")
def _pad(node, ins, c):
    pads = c.value(node.inputs[1])
    if ins[0] is None or pads is None:
        return None
    return tuple(None if d is None else d + int(p[0]) + int(p[1]) for d, p in zip(ins[0], pads))


@rule("Transpose")
def _transpose(node, ins, c):
    perm = c.value(node.inputs[1])
    if ins[0] is None or perm is None:
        return None
    return tuple(ins[0][int(p)] for p in perm)


@rule("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _fused_bn(node, ins, c):
    return ins[0]


@rule("GatherV2")
def _gather(node, ins, c):
    """params[..., indices, ...] along `axis`: indices' dims replace the gathered one."""
    params, indices, axis = ins[0], ins[1], c.value(node.inputs[2])
    batch_dims = int(node.attrs.get("batch_dims", 0))
    if params is None or indices is None or axis is None or batch_dims:
        return None
    axis = int(axis) % len(params)
    return (*params[:axis], *indices, *params[axis + 1 :])


@rule("Einsum")
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


@rule("Shape")
def _shape(node, ins, c):
    return None if ins[0] is None else (len(ins[0]),)


@rule("Pack")
def _pack(node, ins, c):
    first = ins[0]
    if first is None:
        return None
    axis = node.attrs.get("axis", 0) % (len(first) + 1)
    return (*first[:axis], len(ins), *first[axis:])


def _via_numpy(node: Node, ins: list, c: Constants) -> Shape | None:
    """Run the numpy kernel on zeros, twice with different batch sizes: the dims that change
    with the batch are the free ones."""
    kernel = KERNELS.get(node.op)
    if kernel is None or any(s is None for s in ins):
        return None
    results = []
    for batch in (2, 3):
        args = []
        for tensor, shape in zip(node.inputs, ins):
            value = c.value(tensor)
            if value is None:
                dims = [batch if d is None else d for d in shape]
                if math.prod(max(d, 1) for d in dims) > 1 << 22:
                    return None  # too large to try (numpy refuses even an empty array this wide)
                value = np.zeros(dims, np.float32)
            args.append(value)
        result = run_kernel(kernel, node, args)
        if result is None:
            return None
        results.append(result.shape)
    a, b = results
    if len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def infer_shapes(
    graph: Graph, consts: Constants, input_shapes: dict[str, Shape] | None = None
) -> dict[str, Shape | None]:
    """Shapes of every node's first output, in one topological sweep."""
    shapes = consts.shapes
    overrides = input_shapes or {}
    for node in graph:
        out = node.output(0)
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            shape = overrides.get(out, node.attrs.get("shape"))
            shapes[out] = tuple(shape) if shape is not None else None
            continue
        value = consts.value(out)
        if value is not None:
            shapes[out] = tuple(value.shape)
            continue
        ins = [shapes.get(t) for t in node.inputs]
        if node.op in UNARY:
            shapes[out] = ins[0] if ins else None
        elif node.op in BINARY:
            shapes[out] = broadcast(ins[0], ins[1]) if len(ins) == 2 else None
        elif node.op in RULES:
            try:
                shapes[out] = _checked(RULES[node.op](node, ins, consts))
            except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
                shapes[out] = None  # operands the rule cannot make sense of: shape unknown
        else:
            shapes[out] = _checked(_via_numpy(node, ins, consts))
    return shapes


def _checked(shape) -> Shape | None:
    """A rule's result as a shape: a dimension that is not a size (negative, as from a window
    larger than its input, or not an integer at all) is unknown rather than passed on."""
    if shape is None:
        return None
    return tuple(_size(d) for d in shape)


def _size(dim) -> int | None:
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim >= 0:
        return int(dim)
    return None
