"""Ops that move, cut, join or make arrays: reshapes, slices, concatenation, padding, gathers,
fills and ranges. Frozen graphs use them for shape arithmetic and weight preparation, which
constant folding evaluates, and patterns read their operands as constants.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .numeric import limit, same_shape
from .record import op
from .signature import Attr

# -- slicing -----------------------------------------------------------------------------------


def strided_slice_index(node, begin, end, strides, rank: int) -> tuple:
    """The Python index tuple equivalent to a StridedSlice node's masks. ValueError when the
    operands cannot be one (a zero stride, lengths that differ)."""
    if not len(begin) == len(end) == len(strides) or not all(int(s) for s in strides):
        raise ValueError("StridedSlice operands disagree or have a zero stride")
    a = node.attrs
    begin_mask, end_mask = a.get("begin_mask", 0), a.get("end_mask", 0)
    ellipsis_mask, new_axis_mask = a.get("ellipsis_mask", 0), a.get("new_axis_mask", 0)
    shrink_mask = a.get("shrink_axis_mask", 0)
    index: list[Any] = []
    for i in range(len(begin)):
        bit = 1 << i
        if ellipsis_mask & bit:
            index.append(Ellipsis)
        elif new_axis_mask & bit:
            index.append(None)
        elif shrink_mask & bit:
            index.append(int(begin[i]))
        else:
            b = None if begin_mask & bit else int(begin[i])
            e = None if end_mask & bit else int(end[i])
            s = int(strides[i])
            index.append(slice(b, e, None if s == 1 else s))
    return tuple(index)


def _strided_slice(node, x, begin, end, strides):
    return np.asarray(x[strided_slice_index(node, begin, end, strides, x.ndim)])


_MASKS = {f"{k}_mask": Attr("i") for k in ("begin", "end", "ellipsis", "new_axis", "shrink_axis")}
op("StridedSlice", attrs=_MASKS, kernel=_strided_slice)
op("Slice")

# -- reshaping ---------------------------------------------------------------------------------


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


def _expand(node, ins, c):
    shape, axis = ins[0], c.value(node.inputs[1])
    if shape is None or axis is None:
        return None
    axis = int(axis) % (len(shape) + 1)
    return (*shape[:axis], 1, *shape[axis:])


def _transpose(node, ins, c):
    perm = c.value(node.inputs[1])
    if ins[0] is None or perm is None:
        return None
    return tuple(ins[0][int(p)] for p in perm)


def _squeeze_operands(node, ins, out, c):
    """The output with a 1 put back at each squeezed axis (only when they are named)."""
    axes = node.attrs.get("squeeze_dims") or []
    if out is None or not axes:
        return [None]
    rank = len(out) + len(axes)
    ones = {a % rank for a in axes}
    rest = iter(out)
    return [tuple(1 if i in ones else next(rest) for i in range(rank))]


def _expand_operands(node, ins, out, c):
    axis = c.value(node.inputs[1])
    if out is None or axis is None or not out:
        return [None, None]
    axis = int(axis) % len(out)
    return [(*out[:axis], *out[axis + 1 :]), None]


def _transpose_operands(node, ins, out, c):
    perm = c.value(node.inputs[1])
    if perm is None:
        return [None, None]
    shape = [None] * len(perm)
    if out is not None and len(out) == len(perm):
        for i, p in enumerate(perm):
            shape[int(p)] = out[i]
    return [tuple(shape), None]


def _space_depth(node, ins, c):
    """DepthToSpace and SpaceToDepth: each block of the spatial grid to or from channels."""
    x, block = ins[0], int(node.attrs.get("block_size", 0))
    layout = node.attrs.get("data_format", "NHWC")
    if x is None or len(x) != 4 or block < 1 or layout not in ("NHWC", "NCHW"):
        return None
    nchw = layout == "NCHW"
    n, h, w, ch = (x[0], x[2], x[3], x[1]) if nchw else x
    up = node.op == "DepthToSpace"
    scale = (lambda d: d * block) if up else (lambda d: d // block)
    depth = (lambda d: d // (block * block)) if up else (lambda d: d * block * block)
    h, w, ch = (None if d is None else f(d) for d, f in ((h, scale), (w, scale), (ch, depth)))
    return (n, ch, h, w) if nchw else (n, h, w, ch)


def _space_depth_operands(node, ins, out, c):
    """The inverse of _space_depth: the same rule run the other way."""
    block = int(node.attrs.get("block_size", 0))
    if out is None or len(out) != 4 or block < 1:
        return [(None,) * 4]
    inverse = "SpaceToDepth" if node.op == "DepthToSpace" else "DepthToSpace"
    return [_space_depth(type(node)(node.name, inverse, node.inputs, node.attrs), [out], c)]


op(
    "Reshape",
    shape=_reshape,
    kernel=lambda n, x, s: np.reshape(x, [int(d) for d in s]),
)
op(
    "Squeeze",
    attrs={"squeeze_dims": Attr("list(i)")},
    shape=_squeeze,
    operands=_squeeze_operands,
    kernel=lambda n, x: np.squeeze(x, axis=tuple(n.attrs.get("squeeze_dims") or []) or None),
)
op(
    "ExpandDims",
    shape=_expand,
    operands=_expand_operands,
    kernel=lambda n, x, a: np.expand_dims(x, int(a)),
)
op(
    "Transpose",
    shape=_transpose,
    operands=_transpose_operands,
    kernel=lambda n, x, p: np.transpose(x, [int(i) for i in p]),
)
op("BroadcastTo")
op("Tile")
_BLOCK = {"block_size": Attr("i", required=True, minimum=2), "data_format": Attr("s")}
op("DepthToSpace", attrs=_BLOCK, shape=_space_depth, operands=_space_depth_operands)
op("SpaceToDepth", attrs=_BLOCK, shape=_space_depth, operands=_space_depth_operands)


def _shape(node, ins, c):
    return None if ins[0] is None else (len(ins[0]),)


# Constants evaluates Shape itself, from the shapes inferred so far.
op("Shape", attrs={"out_type": Attr("type")}, shape=_shape)

# -- joining and splitting ---------------------------------------------------------------------


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


def _pack(node, ins, c):
    first = ins[0]
    if first is None:
        return None
    axis = node.attrs.get("axis", 0) % (len(first) + 1)
    return (*first[:axis], len(ins), *first[axis:])


def _split(node, axis, x):
    parts = int(node.attrs.get("num_split", 1))
    limit(node, 0, x, arrays=parts)  # views of x, but a billion of them are no small thing
    return list(np.split(x, parts, axis=int(axis)))


def _split_v(node, x, sizes, axis):
    limit(node, 0, x, arrays=np.size(sizes))
    bounds = np.cumsum([int(s) for s in sizes])[:-1]
    return list(np.split(x, bounds, axis=int(axis)))


def _unpack(node, x):
    axis = int(node.attrs.get("axis", 0))
    limit(node, x.size, x, arrays=x.shape[axis])
    return [np.take(x, i, axis=axis) for i in range(x.shape[axis])]


def _concat_kernel(node, *xs):
    """ConcatV2: one copy of every operand (one tensor may be read a thousand times)."""
    limit(node, sum(np.size(x) for x in xs[:-1]), *xs[:-1])
    return np.concatenate(xs[:-1], axis=int(xs[-1]))


def _pack_kernel(node, *xs):
    limit(node, sum(np.size(x) for x in xs), *xs)
    return np.stack(xs, axis=node.attrs.get("axis", 0))


def _concat_operands(node, ins, out, c):
    """Every piece has the output's rank (or a known piece's) and its size off the axis."""
    axis = c.value(node.inputs[-1])
    known = [s for s in (out, *ins[:-1]) if s is not None]
    if axis is None or not known:
        return [None] * len(ins)
    rank = len(known[0])
    if not rank:
        return [None] * len(ins)
    axis = int(axis) % rank
    piece = tuple(None if i == axis or out is None else d for i, d in enumerate(out or known[0]))
    return [piece] * (len(ins) - 1) + [None]


def _pack_operands(node, ins, out, c):
    if out is None or not out:
        return [None] * len(ins)
    axis = node.attrs.get("axis", 0) % len(out)
    return [(*out[:axis], *out[axis + 1 :])] * len(ins)


op(
    "ConcatV2",
    list_min=1,
    shape=_concat,
    operands=_concat_operands,
    kernel=_concat_kernel,
)
op(
    "Pack",
    attrs={"axis": Attr("i")},
    list_min=1,
    shape=_pack,
    operands=_pack_operands,
    kernel=_pack_kernel,
)
# Constant folding evaluates output 0 of an op only; the RNN step check evaluates these.
_SEVERAL = "not folded: several outputs"
_PARTS = Attr("i", required=True, minimum=1)
op("Split", attrs={"num_split": _PARTS}, kernel=_split, folds=False, why=_SEVERAL)
op("SplitV", attrs={"num_split": _PARTS}, kernel=_split_v, folds=False, why=_SEVERAL)
op(
    "Unpack",
    attrs={"num": Attr("i", required=True, minimum=0)},
    kernel=_unpack,
    folds=False,
    why=_SEVERAL,
)
op("TopKV2")
op("Unique")

# -- padding -----------------------------------------------------------------------------------


def _pad(node, ins, c):
    pads = c.value(node.inputs[1])
    if ins[0] is None or pads is None:
        return None
    return tuple(None if d is None else d + int(p[0]) + int(p[1]) for d, p in zip(ins[0], pads))


def _pad_operands(node, ins, out, c):
    """The paddings have a row per dimension: the input's rank, and its size where known."""
    pads = c.value(node.inputs[1])
    if pads is None or pads.ndim != 2:
        return [None] * len(ins)
    if out is None or len(out) != len(pads):
        return [(None,) * len(pads), *[None] * (len(ins) - 1)]
    shape = tuple(None if d is None else d - int(p[0]) - int(p[1]) for d, p in zip(out, pads))
    return [shape, *[None] * (len(ins) - 1)]


op("Pad", shape=_pad, operands=_pad_operands)
op("PadV2", shape=_pad, operands=_pad_operands)
op("MirrorPad", shape=_pad, operands=_pad_operands)

# -- gathering ---------------------------------------------------------------------------------


def _gather_shape(node, ins, c):
    """params[..., indices, ...] along `axis`: indices' dims replace the gathered one."""
    params, indices, axis = ins[0], ins[1], c.value(node.inputs[2])
    batch_dims = int(node.attrs.get("batch_dims", 0))
    if params is None or indices is None or axis is None or batch_dims:
        return None
    axis = int(axis) % len(params)
    return (*params[:axis], *indices, *params[axis + 1 :])


def _gather(node, x, indices, axis):
    x, indices = np.asarray(x), np.asarray(indices)
    axis = int(axis)
    limit(node, x.size // max(x.shape[axis], 1) * indices.size, x)
    return np.take(x, indices, axis=axis)


op("GatherV2", shape=_gather_shape, kernel=_gather)
op("OneHot")
op("Bucketize")
op("MatrixBandPart")
op("MatrixDiagPart")
op("MatrixDiagPartV3")

# -- making arrays -----------------------------------------------------------------------------


def _fill(node, dims, value):
    dims = [int(d) for d in np.atleast_1d(dims)]
    limit(node, math.prod(dims) if all(d >= 0 for d in dims) else 0, value)
    return np.full(dims, value)


def _range(node, start, stop, delta):
    """TensorFlow's Range keeps its operands' dtype (Tidx); numpy's arange of int32 scalars
    would give int64, and of float32 ones float64."""
    count = math.ceil((stop - start) / delta) if delta else 0
    limit(node, max(count, 0), start, stop, delta)
    return np.arange(start, stop, delta, dtype=np.result_type(start, stop, delta))


def _linspace(node, start, stop, num):
    num = int(num)
    limit(node, max(num, 0), start, stop)
    return np.linspace(start, stop, num).astype(np.result_type(start))


op("Fill", kernel=_fill)
op("Range", kernel=_range)
op("LinSpace", kernel=_linspace)

# -- along an axis -----------------------------------------------------------------------------

# each keeps its input's shape
op("Cumsum", shape=same_shape)
op("Cumprod", shape=same_shape)
op("ReverseV2", shape=same_shape)
op("Roll", shape=same_shape)
