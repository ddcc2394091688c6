"""What a loop step computes that the rest of graph2py writes otherwise: keras.ops forms for ops
that are layers outside a loop, and shapes the step's arrays need.

A loop's condition and body are keras.ops expressions of its variables (patterns/control.py),
run by Keras on real tensors. A Conv2D there cannot be a layer: a layer's weights would belong
to no model, so its kernel enters the loop as a variable and the step calls keras.ops.conv. An
image pyramid resizes to a size computed each step, which the keras.ops path outside a loop
declines (it needs a constant) but a step on real tensors can take.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..graph import Graph, Node
from ..optable.arrays import strided_slice_index
from ..passes.fold import Constants
from ..passes.shapes import RULES, infer_shapes, shape_rule
from ..spec import Call, Item
from .ops import operands
from .registry import Matcher

# op -> the forms a loop step tries before the fallbacks (see above).
LOOP_FORMS: dict[str, list] = {}


def _loop_form(*ops: str):
    def register(fn):
        for op in ops:
            LOOP_FORMS.setdefault(op, []).append(fn)
        return fn

    return register


@_loop_form("Conv2D")
def _conv(node: Node, m: Matcher):
    strides, dilations = node.attrs.get("strides"), node.attrs.get("dilations") or [1, 1, 1, 1]
    padding = node.attrs.get("padding")
    if node.attrs.get("data_format", "NHWC") != "NHWC" or padding not in ("SAME", "VALID"):
        return None
    if not isinstance(strides, list) or len(strides) != 4 or len(dilations) != 4:
        return None
    if strides[1:3] != [1, 1] and dilations[1:3] != [1, 1]:
        return None  # Keras refuses both at once
    (x, kernel), inputs = operands(m, node.inputs[:2])
    kwargs = [("strides", tuple(strides[1:3])), ("padding", padding.lower())]
    if dilations[1:3] != [1, 1]:
        kwargs.append(("dilation_rate", tuple(dilations[1:3])))
    return m.ops([node], Call("conv", (x, kernel), tuple(kwargs)), inputs)


@_loop_form("MaxPool", "AvgPool")
def _pool(node: Node, m: Matcher):
    ksize, strides, padding = (node.attrs.get(k) for k in ("ksize", "strides", "padding"))
    if node.attrs.get("data_format", "NHWC") != "NHWC" or padding not in ("SAME", "VALID"):
        return None
    if not isinstance(ksize, list) or not isinstance(strides, list) or len(ksize) != 4:
        return None
    if ksize[0] != 1 or ksize[3] != 1 or len(strides) != 4:
        return None
    fn = "max_pool" if node.op == "MaxPool" else "average_pool"
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = (("strides", tuple(strides[1:3])), ("padding", padding.lower()))
    return m.ops([node], Call(fn, (x, tuple(ksize[1:3])), kwargs), inputs)


@_loop_form("StridedSlice")
def _strided_slice(node: Node, m: Matcher):
    """A slice of a tensor whose rank the step leaves unknown (a resized image's maps): the
    index does not depend on it, and the body runs on real tensors."""
    bounds = [m.ints(t) for t in node.inputs[1:4]]
    if bounds[0] is None:
        return _element_at(node, m)
    if any(b is None for b in bounds):
        return None
    try:
        index = strided_slice_index(node, *bounds, 0)
    except ValueError:
        return None
    if len(index) == 1 and isinstance(index[0], slice):
        index = (*index, Ellipsis)  # as patterns/ops.py writes a lone slice
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Item(x, index), inputs)


def _element_at(node: Node, m: Matcher):
    """`x[i]` or `x[i, j]` at indices the step computes (a StridedSlice of begin Pack(i),
    every axis shrunk): one take per axis."""
    begin = m.node(node.inputs[1])
    rank = len(begin.inputs)
    every = (1 << rank) - 1
    masks = [node.attrs.get(f"{k}_mask", 0) for k in ("begin", "end", "ellipsis", "new_axis")]
    if begin.op != "Pack" or node.attrs.get("shrink_axis_mask", 0) != every or any(masks):
        return None
    if m.ints(node.inputs[3]) != [1] * rank:
        return None
    refs, inputs = operands(m, [node.inputs[0], *begin.inputs])
    expr = refs[0]
    for index in refs[1:]:
        expr = Call("take", (expr, index), (("axis", 0),))
    return m.ops([node], expr, inputs)


@_loop_form("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(node: Node, m: Matcher):
    """To a size computed in the step: keras.ops.image.resize samples at half-pixel centres,
    so only TF's half_pixel_centers resize agrees (as patterns/ops.py requires too)."""
    if not node.attrs.get("half_pixel_centers") or node.attrs.get("align_corners"):
        return None
    pack = m.node(node.inputs[1])
    if pack.op == "Pack" and len(pack.inputs) == 2:  # tf.stack([height, width])
        (x, height, width), inputs = operands(m, [node.inputs[0], *pack.inputs])
        hw = (height, width)
    else:
        (x, size), inputs = operands(m, node.inputs[:2])
        hw = (Item(size, (0,)), Item(size, (1,)))
    kwargs = (("interpolation", "nearest"),) if node.op == "ResizeNearestNeighbor" else ()
    return m.ops([node], Call("image.resize", (x, hw), kwargs), inputs)


# Ops whose other outputs have output 0's shape. Shape inference knows output 0 only; a step
# reads the others (TopKV2's indices) as often, and the arrays it writes need static shapes.
SAME_SHAPED = {"TopKV2": 2, "Unpack": None, "Split": None}


def _top_k_shape(node, ins, c):
    k = c.scalar(node.inputs[1])
    return None if ins[0] is None or k is None else (*ins[0][:-1], int(k))


def _resize_shape(node, ins, c):
    size = c.ints(node.inputs[1])
    if ins[0] is None or len(ins[0]) != 4:
        return None
    return (ins[0][0], *(size if size is not None and len(size) == 2 else (None, None)), ins[0][3])


# Shapes a step needs and the op table does not give yet (without them an image pyramid's boxes
# have no static shape), used only while a step's shapes are inferred: a rule registered for
# good would exist only once the patterns are loaded, after the first graph's shapes, and two
# conversions in one process would differ.
STEP_RULES = {
    "TopKV2": _top_k_shape,
    "ResizeBilinear": _resize_shape,
    "ResizeNearestNeighbor": _resize_shape,
}


@contextmanager
def _step_rules():
    added = {op: fn for op, fn in STEP_RULES.items() if shape_rule(op) is None}
    RULES.update(added)
    try:
        yield
    finally:
        for op in added:
            RULES.pop(op, None)


def step_shapes(graph: Graph, consts: Constants) -> dict:
    """Shapes in a loop step, the rules above and every output of SAME_SHAPED ops included:
    inferred, those outputs set, inferred again."""
    with _step_rules():
        shapes = infer_shapes(graph, consts)
        extra = {}
        for node in graph:
            if node.op in SAME_SHAPED and shapes.get(node.output(0)) is not None:
                count = SAME_SHAPED[node.op] or int(
                    node.attrs.get("num", node.attrs.get("num_split", 1))
                )
                extra.update({node.output(k): shapes[node.output(0)] for k in range(1, count)})
        if not extra:
            return shapes
        consts.shapes.update(extra)
        return infer_shapes(graph, consts)
