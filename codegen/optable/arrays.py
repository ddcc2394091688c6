"""Ops that move, cut, join or make arrays: reshapes, slices, concatenation, padding, gathers,
fills and ranges. Frozen graphs use them for shape arithmetic and weight preparation, which
constant folding evaluates, and patterns read their operands as constants.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .numeric import limit, same_shape, shape_operand
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


def _sliced_dim(dim, item):
    if isinstance(item, slice) and item == slice(None):
        return dim
    if dim is None or isinstance(item, int):
        return None
    return len(range(dim)[item])


def _strided_slice_shape(node, ins, c):
    """Bounds known: the index applied to the known dimensions. Bounds computed at run time:
    the rank from the masks, a dimension known only where the slice takes all of it."""
    shape = ins[0]
    if shape is None:
        return None
    bounds = [c.ints(t) for t in node.inputs[1:4]]
    count = ins[1][0] if ins[1] is not None and len(ins[1]) == 1 else None
    if bounds[0] is not None:
        count = len(bounds[0])
    if count is None:
        return None
    strides = bounds[2] or [0] * count
    fake = [b if b is not None else [0] * count for b in bounds[:2]]
    index = strided_slice_index(node, *fake, [s or 1 for s in strides], len(shape))
    known = all(b is not None for b in bounds)
    out, axis = [], 0
    for i, item in enumerate(index):
        if item is None:
            out.append(1)
        elif item is Ellipsis:
            rest = sum(1 for x in index[i + 1 :] if x is not None)
            for _ in range(len(shape) - axis - rest):
                out.append(shape[axis])
                axis += 1
        else:
            if not isinstance(item, int):
                bit = 1 << i
                full = node.attrs.get("begin_mask", 0) & node.attrs.get("end_mask", 0) & bit
                if known or (full and strides[i] == 1):
                    out.append(_sliced_dim(shape[axis], item))
                else:  # bounds computed at run time: the dimension is unknown
                    out.append(None)
            axis += 1
    out += shape[axis:]
    return tuple(out)


def _slice_shape(node, ins, c):
    shape, begin, size = ins[0], c.ints(node.inputs[1]), c.ints(node.inputs[2])
    if shape is None:
        return None
    if size is None:
        return (None,) * len(shape)
    return tuple(
        (d - b if d is not None and b is not None else None) if s == -1 else s
        for d, b, s in zip(shape, begin or [None] * len(shape), size)
    )


def _sliced_operands(node, ins, out, c):
    """A slice's begin has an entry per dimension of its input (without an ellipsis or new
    axes, which break that count)."""
    begin = ins[1] if len(ins) > 1 else None
    masks = node.attrs.get("ellipsis_mask", 0) or node.attrs.get("new_axis_mask", 0)
    if begin is None or len(begin) != 1 or begin[0] is None or masks:
        return [None] * len(ins)
    return [(None,) * begin[0], *[None] * (len(ins) - 1)]


_MASKS = {f"{k}_mask": Attr("i") for k in ("begin", "end", "ellipsis", "new_axis", "shrink_axis")}
op(
    "StridedSlice",
    attrs=_MASKS,
    shape=_strided_slice_shape,
    operands=_sliced_operands,
    kernel=_strided_slice,
)
op("Slice", shape=_slice_shape, operands=_sliced_operands)

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
    if shape is None:
        return None
    if axis is None:  # an axis computed at run time: one more dimension, which one unknown
        return (None,) * (len(shape) + 1)
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
    if any(not -rank <= a < rank for a in axes) or len({a % rank for a in axes}) != len(axes):
        return [None]  # an axis named twice or out of range: TensorFlow refuses it at run time
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
    return _blocks_moved(node, ins[0], node.op == "DepthToSpace")


def _space_depth_operands(node, ins, out, c):
    """The input is the output with its blocks moved back."""
    moved = _blocks_moved(node, out, node.op != "DepthToSpace")
    return [moved if moved is not None else (None,) * 4]


def _blocks_moved(node, x, up: bool):
    """x's shape with the node's blocks moved from channels to space (up) or back."""
    block, layout = node.attrs.get("block_size"), node.attrs.get("data_format", "NHWC")
    if x is None or len(x) != 4 or not isinstance(block, int) or block < 2:
        return None
    if layout not in ("NHWC", "NCHW"):
        return None
    nchw = layout == "NCHW"
    n, h, w, ch = (x[0], x[2], x[3], x[1]) if nchw else x
    scale = (lambda d: d * block) if up else (lambda d: d // block)
    depth = (lambda d: d // (block * block)) if up else (lambda d: d * block * block)
    h, w, ch = (None if d is None else f(d) for d, f in ((h, scale), (w, scale), (ch, depth)))
    return (n, ch, h, w) if nchw else (n, h, w, ch)


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
op("DepthToSpace", shape=_space_depth, operands=_space_depth_operands)
op("SpaceToDepth", shape=_space_depth, operands=_space_depth_operands)


def _broadcast_to(node, ins, c):
    """The target shape; where it is computed, a dimension of the input other than 1 is it."""
    target = shape_operand(c, node.inputs[1], ins[1])
    if target is None:
        return None
    x = ins[0]
    out = list(target)
    if x is not None and len(x) <= len(out):
        for i, d in enumerate(x, len(out) - len(x)):
            if out[i] is None and d not in (None, 1):
                out[i] = d
    return tuple(out)


def _tile(node, ins, c):
    shape, reps = ins[0], c.partial_vector(node.inputs[1])
    if shape is None:
        return None
    if reps is None or len(reps) != len(shape):
        return (None,) * len(shape)
    return tuple(None if d is None or r is None else d * r for d, r in zip(shape, reps))


op("BroadcastTo", shape=_broadcast_to)
op("Tile", shape=_tile)


def _blocks(node, ins, c, sign: int):
    """SpaceToBatchND (sign 1) and BatchToSpaceND (-1): the batch times (or divided by) the
    product of the block, each blocked dimension padded and divided (or multiplied and
    cropped); the dilated convolutions of TF1 (patterns/conv.py) read these."""
    shape, block, edges = ins[0], c.value(node.inputs[1]), c.value(node.inputs[2])
    if shape is None or block is None or block.ndim != 1:
        return None
    m = block.size
    if edges is None:  # computed from the input's own shape (its height and width unknown)
        edges = np.zeros((m, 2), np.int64)
        shape = (shape[0], *[None] * m, *shape[m + 1 :]) if len(shape) > m else shape
    if edges.shape != (m, 2) or len(shape) < m + 1 or np.any(block < 1):
        return None
    size = int(np.prod(block))
    batch = shape[0]
    if batch is not None:
        if sign < 0 and batch % size:
            return None
        batch = batch * size if sign > 0 else batch // size
    dims = []
    for d, b, (lo, hi) in zip(shape[1 : m + 1], block.tolist(), edges.tolist()):
        if d is None:
            dims.append(None)
        elif sign > 0:
            if (d + lo + hi) % b:
                return None
            dims.append((d + lo + hi) // b)
        else:
            dims.append(d * b - lo - hi)
    return (batch, *dims, *shape[m + 1 :])


op("SpaceToBatchND", shape=lambda n, ins, c: _blocks(n, ins, c, 1))
op("BatchToSpaceND", shape=lambda n, ins, c: _blocks(n, ins, c, -1))


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
    piece = tuple(None if i == axis else d for i, d in enumerate(known[0]))
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


def _top_k_shapes(node, ins, c):
    shape, k = ins[0], c.value(node.inputs[1])
    if shape is None:
        return None
    out = (*shape[:-1], None if k is None else int(k))
    return [out, out]


op("TopKV2", shapes=_top_k_shapes)
op("Unique", shapes=lambda node, ins, c: [(None,), ins[0]])

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


def _gather_operands(node, ins, out, c):
    """The indices have the output's dimensions where the gathered axis was (token ids of an
    embedding lookup: batch and time)."""
    params, axis = ins[0], c.value(node.inputs[2])
    batch_dims = int(node.attrs.get("batch_dims", 0))
    if out is None or params is None or axis is None or batch_dims:
        return [None, None, None]
    axis = int(axis) % len(params)
    rank = len(out) - len(params) + 1
    if rank < 0:
        return [None, None, None]
    return [None, tuple(out[axis : axis + rank]), None]


op("GatherV2", shape=_gather_shape, operands=_gather_operands, kernel=_gather)


def _one_hot(node, ins, c):
    shape, depth = ins[0], c.value(node.inputs[1])
    if shape is None:
        return None
    axis = node.attrs.get("axis", -1)
    axis = len(shape) if axis == -1 else axis
    return (*shape[:axis], None if depth is None else int(depth), *shape[axis:])


def _diagonal_length(rows, cols, k):
    if rows is None or cols is None:
        return None
    return max(0, min(rows, cols - k) if k >= 0 else min(rows + k, cols))


def _diag_part(node, ins, c):
    """The k-th diagonal, or the band of diagonals k[0]..k[1] padded to the longest."""
    shape = ins[0]
    if shape is None or len(shape) < 2:
        return None
    *batch, rows, cols = shape
    k = [0] if node.op == "MatrixDiagPart" else c.ints(node.inputs[1])
    if k is None:
        return None
    if len(k) == 1 or k[0] == k[-1]:
        return (*batch, _diagonal_length(rows, cols, k[0]))
    lengths = [_diagonal_length(rows, cols, d) for d in range(k[0], k[1] + 1)]
    return (*batch, k[1] - k[0] + 1, None if None in lengths else max(lengths))


def _diag(node, ins, c):
    """A matrix holding the diagonal(s) k[0]..k[-1]: num_rows x num_cols, a side of -1 the
    least that holds them, both -1 a square (matrix_diag_op.cc)."""
    shape = ins[0]
    if shape is None or not shape:
        return None
    if node.op == "MatrixDiag":
        return (*shape, shape[-1])
    k = c.ints(node.inputs[1])
    rows, cols = c.scalar(node.inputs[2]), c.scalar(node.inputs[3])
    if k is None or rows is None or cols is None:
        return None
    low, high = k[0], k[-1]
    batch = shape[:-2] if low != high else shape[:-1]
    length = shape[-1]
    rows, cols = int(rows), int(cols)
    fewest_rows = None if length is None else length - min(high, 0)
    fewest_cols = None if length is None else length + max(low, 0)
    if rows == -1 and cols == -1:
        side = None if length is None else max(fewest_rows, fewest_cols)
        return (*batch, side, side)
    return (*batch, fewest_rows if rows == -1 else rows, fewest_cols if cols == -1 else cols)


op("OneHot", shape=_one_hot)
op("Bucketize", shape=same_shape)
op("MatrixBandPart", shape=same_shape)
op("MatrixDiagPart", shape=_diag_part)
op("MatrixDiagPartV2", shape=_diag_part)
op("MatrixDiagPartV3", shape=_diag_part)
op("MatrixDiag", shape=_diag)
op("MatrixDiagV2", shape=_diag)
op("MatrixDiagV3", shape=_diag)
for _op in ("MatrixSetDiag", "MatrixSetDiagV2", "MatrixSetDiagV3"):
    op(_op, shape=same_shape)


def _scatter_nd(node, ins, c):
    return shape_operand(c, node.inputs[2], ins[2])


def _sparse_to_dense(node, ins, c):
    return shape_operand(c, node.inputs[1], ins[1])


op("ScatterNd", shape=_scatter_nd)
op("SparseToDense", shape=_sparse_to_dense)

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


def _fill_shape(node, ins, c):
    return shape_operand(c, node.inputs[0], ins[0])


def _range_shape(node, ins, c):
    values = [c.scalar(t) for t in node.inputs]
    if None in values or not values[2]:
        return (None,)
    start, stop, delta = values
    return (max(0, math.ceil((stop - start) / delta)),)


def _linspace_shape(node, ins, c):
    num = c.scalar(node.inputs[2])
    return (None if num is None else max(int(num), 0),)


op("Fill", shape=_fill_shape, kernel=_fill)
op("Range", shape=_range_shape, kernel=_range)
op("LinSpace", shape=_linspace_shape, kernel=_linspace)

# -- along an axis -----------------------------------------------------------------------------

# each keeps its input's shape
op("Cumsum", shape=same_shape)
op("Cumprod", shape=same_shape)
op("ReverseV2", shape=same_shape)
op("Roll", shape=same_shape)
