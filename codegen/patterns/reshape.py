"""Layout ops on the data path: Reshape/Flatten/Squeeze/ExpandDims, Pad, Transpose, and the
StridedSlice forms that are crops."""

from __future__ import annotations

import math

from ..graph import Node
from ..passes.fold import Dim
from .plumbing import absorbed, consumer
from .registry import Matcher, pattern
from .sizes import sizes


def _reshape_layer(m: Matcher, node: Node, x: str, out_shape):
    """Reshape to `out_shape` (batch first), as Flatten when that is what it is."""
    in_shape = m.shape(x)
    if out_shape is None or in_shape is None or len(out_shape) < 1:
        return None
    rest = list(out_shape[1:])
    if rest.count(None) > 1:
        return None
    if None not in in_shape[1:] and None not in rest and math.prod(rest) != math.prod(in_shape[1:]):
        return None  # the reshape moves data across the batch axis
    if len(rest) == 1 and len(in_shape) > 2:
        return m.layer("Flatten", [node], [x])
    target = tuple(-1 if d is None else int(d) for d in rest)
    return m.layer("Reshape", [node], [x], args=[target])


def batch_free(target, in_shape):
    """A reshape target with batch 1 baked in (`[1, -1]`, `[1, 7, 7, 64]`) as the same reshape
    of every example (`[-1, 3136]`, `[-1, 7, 7, 64]`), when the input's batch is free or 1 and
    each example's size is known and kept; None otherwise."""
    if target[0] != 1 or in_shape[0] not in (None, 1) or None in in_shape[1:]:
        return None
    size = math.prod(in_shape[1:])
    rest = list(target[1:])
    if None in rest or rest.count(-1) > 1:
        return None
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        if not known or size % known:
            return None
        rest[rest.index(-1)] = size // known
    if math.prod(rest) != size:
        return None
    return [-1, *rest]


@pattern("Reshape")
def reshape(node: Node, m: Matcher):
    if not m.consts.is_const(node.inputs[1]):
        target = runtime_target(node, m)
        if target is not None:
            plumbing = absorbed(m, node)
            if plumbing is None:
                return None
            layer = _reshape_layer(m, node, node.inputs[0], target)
            if layer is not None:
                layer.nodes[:0] = [n.name for n in plumbing]
                layer.ops[:0] = [n.op for n in plumbing]
            return layer
    return _static_reshape(node, m)


@consumer("Reshape", 1)
def runtime_target(node: Node, m: Matcher) -> tuple | None:
    """The output shape of a reshape to a vector computed at run time whose first entry is the
    batch size read from a tensor's shape (`tf.shape(y)[0]`, y of the same batch) and whose
    other entries are constants but for at most one (the -1 of a Keras Reshape): TF1 code
    splitting attention heads, `reshape(t, [batch, seq, heads, size])`."""
    x = node.inputs[0]
    vec, in_shape = m.consts.shape_terms(node.inputs[1]), m.shape(x)
    if not vec or not in_shape or in_shape[0] is not None:  # a scalar has no batch axis
        return None
    first = vec[0]
    if not (isinstance(first, Dim) and first.plain() and first.axis == 0):
        return None
    batch_source = m.shape(first.tensor)
    if not batch_source or batch_source[0] is not None:
        return None
    rest = [d if isinstance(d, int) and d >= 0 else None for d in vec[1:]]
    if rest.count(None) > 1 or any(d == 0 for d in rest):
        return None
    if None not in in_shape[1:]:
        size, known = math.prod(in_shape[1:]), math.prod(d for d in rest if d is not None)
        if size % known if None in rest else size != known:
            return None  # the reshape moves data across the batch axis
    out = (None, *rest)
    return out if _reshape_layer(m, node, x, out) is not None else None


def _static_reshape(node: Node, m: Matcher):
    x = node.inputs[0]
    target = m.consts.partial_vector(node.inputs[1])
    in_shape = m.shape(x)
    if not target or in_shape is None:
        return None  # unknown, or a reshape to a scalar, which drops the batch axis
    if target[0] not in (-1, None):
        target = batch_free(target, in_shape)
        if target is None:
            return None  # a fixed batch size that moves data across examples
    elif target[0] is None:  # computed: a batch (Shape(x)[0]), not a product with it
        found = sizes(m, node.inputs[1])
        if not found or found[0][0] != 1 or len(found[0][1]) != 1 or found[0][1][0][1] != 0:
            return None
    rest = [None if d in (-1, None) else d for d in target[1:]]
    if rest.count(None) > 1:
        return None
    plumbing = m.shape_plumbing(node.inputs[1], x)
    if plumbing is None:
        return None
    layer = _reshape_layer(m, node, x, (None, *rest))
    if layer is not None and plumbing:
        layer.nodes[:0] = [n.name for n in plumbing]
        layer.ops[:0] = [n.op for n in plumbing]
    return layer


@pattern("Squeeze", "ExpandDims")
def squeeze(node: Node, m: Matcher):
    out = m.shape(node.output(0))
    in_shape = m.shape(node.inputs[0])
    if out is None or in_shape is None or not out or not in_shape:
        return None
    if out[0] is not None or in_shape[0] is not None:
        return None
    return _reshape_layer(m, node, node.inputs[0], out)


@pattern("Pad", "PadV2")
def zero_padding(node: Node, m: Matcher):
    x = node.inputs[0]
    pads, shape = m.const(node.inputs[1]), m.shape(x)
    if pads is None or shape is None or len(shape) != 4 or pads.shape != (4, 2):
        return None
    if pads.dtype.kind not in "iu" or (pads < 0).any():
        return None  # TF pads by integers; a negative pad is a crop
    if node.op == "PadV2" and m.scalar(node.inputs[2]) != 0:
        return None
    if pads[0].any() or pads[3].any():
        return None
    (t, b), (l, r) = (int(v) for v in pads[1]), (int(v) for v in pads[2])
    if t == b == l == r:
        padding = t
    elif t == b and l == r:
        padding = (t, l)
    else:
        padding = ((t, b), (l, r))
    return m.layer(
        "ZeroPadding2D", [node], [x], kwargs={"padding": padding} if padding != 1 else {}
    )


@pattern("Transpose")
def permute(node: Node, m: Matcher):
    perm = m.ints(node.inputs[1])
    if not perm or perm[0] != 0 or perm == list(range(len(perm))):
        return None
    if sorted(perm) != list(range(len(perm))):
        return None  # not a permutation
    return m.layer("Permute", [node], [node.inputs[0]], args=[tuple(perm[1:])])


@pattern("StridedSlice")
def cropping(node: Node, m: Matcher):
    """x[:, a:b, c:d, :] on NHWC data is a Cropping2D."""
    x = node.inputs[0]
    shape = m.shape(x)
    begin, end, strides = (m.ints(t) for t in node.inputs[1:4])
    a = node.attrs
    if shape is None or len(shape) != 4 or begin is None or end is None or strides is None:
        return None
    if (
        not len(begin) == len(end) == len(strides) == 4
        or any(s != 1 for s in strides)
        or any(a.get(k, 0) for k in ("ellipsis_mask", "new_axis_mask", "shrink_axis_mask"))
    ):
        return None
    crops = []
    for axis in range(4):
        bit = 1 << axis
        lo = 0 if a.get("begin_mask", 0) & bit else int(begin[axis])
        size = shape[axis]
        if a.get("end_mask", 0) & bit:
            hi = size
        else:
            hi = int(end[axis])
            if size is None:
                return None
            hi = hi + size if hi < 0 else min(hi, size)
        if axis in (0, 3):
            if lo != 0 or hi != size:
                return None
            continue
        if size is None or lo < 0 or hi < lo:
            return None  # an empty or reversed crop is not a Cropping2D
        crops.append((lo, size - hi))
    return m.layer("Cropping2D", [node], [x], kwargs={"cropping": tuple(crops)})
