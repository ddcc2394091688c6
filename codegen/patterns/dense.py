"""MatMul with a constant right operand as Dense, on 2-D input and, through the
Reshape/MatMul/Reshape (Tensordot) form Keras uses for `x @ W` on N-D input, on 3-D/4-D input;
plain TF writes that `x @ W` as one BatchMatMulV2 instead."""

from __future__ import annotations

from ..graph import Node
from ..recipes import Transpose
from ..spec import Layer, internal_tensor
from .registry import Matcher, pattern
from .conv import with_bias_and_activation

# Ops a Tensordot region uses to compute the reshapes around its MatMul.
_TENSORDOT_PLUMBING = {
    "Shape",
    "GatherV2",
    "Prod",
    "Pack",
    "ConcatV2",
    "Reshape",
    "Transpose",
    "Cast",
    "StridedSlice",
}


@pattern("MatMul", "BatchMatMulV2", "BatchMatMulV3")
def matmul(node: Node, m: Matcher):
    """A BatchMatMul of N-D x by a 2-D constant broadcasts W over x's leading axes: exactly a
    Dense on the last axis, whatever x's rank."""
    x, w = node.inputs
    kernel = m.const(w)
    a, batched = node.attrs, node.op != "MatMul"
    if kernel is None or kernel.ndim != 2 or a.get("transpose_a") or a.get("adj_x"):
        return None
    transposed = bool(a.get("transpose_b") or a.get("adj_y"))
    units = kernel.shape[0] if transposed else kernel.shape[1]
    weight = m.weight("kernel", w)
    if weight is not None and transposed:
        weight.recipe = Transpose(weight.recipe, (1, 0))
        weight.shape = weight.shape[::-1]
    nodes, inputs, out = [node], [x], node.output(0)
    anchor = node
    shape = m.shape(x) if m.shape(x) is not None or batched else (None, None)
    tensordot = None if batched else _tensordot(m, node, units)
    if tensordot:
        inputs, region, out, shape = tensordot
        nodes = region
        anchor = region[-1]  # the layer's scope is the Tensordot's, not its MatMul's (one deeper)
    elif not batched and len(shape) != 2:
        return None
    features = int(kernel.shape[1] if transposed else kernel.shape[0])
    if shape is not None and (not shape or shape[-1] not in (None, features)):
        return None
    kwargs: dict = {}
    weights = [weight]
    out = with_bias_and_activation(m, anchor, nodes, out, units, kwargs, weights)
    dense = m.layer(
        "Dense", nodes, inputs, args=[units], kwargs=kwargs, weights=weights, output=out
    )
    if dense is None or shape is None or shape[-1] is not None:
        return dense
    return _with_features(dense, shape, features)


def _with_features(dense: Layer, shape: tuple, features: int) -> list[Layer] | None:
    """A Dense builds its kernel from its input's last axis. Where the graph leaves that axis
    unknown (x reshaped to [-1, prod(shape(x)[-1:])] by a Tensordot over an input of unknown
    width), the kernel still says it: a Reshape to the same shape with the width stated goes
    first, so the model builds. Needs the axes between batch and width known but one."""
    middle = list(shape[1:-1])
    if middle.count(None) > 1:
        return None
    target = (*(-1 if d is None else int(d) for d in middle), features)
    widened = internal_tensor(dense.nodes[0], "features")
    reshape = Layer(
        name=f"{dense.name}_features",
        inputs=list(dense.inputs),
        outputs=[widened],
        nodes=[],
        ops=[],
        cls="Reshape",
        args=[target],
        note=f"the input of the Dense below, its width ({features}) as the kernel has it",
    )
    dense.inputs = [widened]
    return [reshape, dense]


def _tensordot(m: Matcher, mm: Node, units: int):
    """Recognise reshape(matmul(reshape(x, [-1, C]), W), shape(x)[:-1] + [units]): the layer's
    input x, the region's nodes, its output and x's shape.

    Matched by what it computes rather than by names: walk back from the MatMul through
    reshape/transpose plumbing to one data tensor x, forward to a Reshape whose static shape is
    x's with the last axis replaced; every plumbing node must feed only this region. Where the
    static shapes lost x's rank (an op before it without a shape rule), tf.tensordot's own
    arithmetic still says it: the sizes it gathers from Shape(x).
    """
    a = m.node(mm.inputs[0])
    if a.op != "Reshape":
        return None
    region = {a.name: a}
    x = a.inputs[0]
    src = m.node(x)
    if src.op == "Transpose":
        perm = m.ints(src.inputs[1])
        if perm is None or perm != list(range(len(perm))):
            return None
        region[src.name] = src
        x = src.inputs[0]
    after = m.user(mm.output(0), "Reshape")
    if after is None:
        return None
    x_shape, out_shape = m.shape(x), m.shape(after.output(0))
    if x_shape is None or out_shape is None:
        rank = _gathered_rank(m, a, after, x, units)
        x_shape = (None,) * rank if x_shape is None and rank else x_shape
        out_shape = (*x_shape[:-1], units) if x_shape is not None and rank else out_shape
    if (
        x_shape is None
        or out_shape is None
        or len(x_shape) < 3
        or tuple(out_shape[:-1]) != tuple(x_shape[:-1])
    ):
        return None
    # the shape computations between x and the two reshapes
    stack = [t for n in (a, after) for t in n.inputs[1:]]
    while stack:
        node = m.node(stack.pop())
        if node.name in region or m.consts.is_const(node.output(0)):
            continue
        if node.op not in _TENSORDOT_PLUMBING:
            return None
        region[node.name] = node
        stack.extend(t for t in node.inputs if t != x)
    for node in region.values():
        for out in range(1):
            for user in m.graph.users(node.output(out)):
                if user.name not in region and user is not mm and user is not after:
                    return None
    ordered = m.graph.in_order(region) + [mm, after]
    return [x], ordered, after.output(0), tuple(x_shape)


def _gathered_rank(m: Matcher, reshape: Node, after: Node, x: str, units: int) -> int | None:
    """x's rank when the reshapes are tf.tensordot's over x's last axis: to
    [prod(shape(x)[free]), prod(shape(x)[axes])] and back to concat(shape(x)[free], [units]),
    free = [0, ..., r - 2] and axes = [r - 1]."""
    target, back = m.node(reshape.inputs[1]), m.node(after.inputs[1])
    if target.op != "Pack" or len(target.inputs) != 2 or back.op != "ConcatV2":
        return None
    prods = [m.node(t) for t in target.inputs]
    if any(p.op != "Prod" or m.ints(p.inputs[1]) != [0] for p in prods):
        return None
    free, axes = (_gathered(m, p.inputs[0], x) for p in prods)
    if free is None or axes is None or len(back.inputs) != 3:
        return None
    if _gathered(m, back.inputs[0], x) != free or m.ints(back.inputs[1]) != [units]:
        return None
    rank = len(free) + 1
    if free != list(range(rank - 1)) or axes != [rank - 1]:
        return None
    return rank


def _gathered(m: Matcher, tensor: str, x: str) -> list[int] | None:
    """The constant indices of a GatherV2 from Shape(x), or None."""
    node = m.node(tensor)
    if node.op != "GatherV2" or m.scalar(node.inputs[2]) != 0:
        return None
    shape = m.node(node.inputs[0])
    if shape.op != "Shape" or shape.inputs[0] != x:
        return None
    return m.ints(node.inputs[1])
