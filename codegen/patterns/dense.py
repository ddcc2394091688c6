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
    tensordot = None if batched else _tensordot(m, node)
    if tensordot:
        inputs, region, out = tensordot
        nodes = region
        anchor = region[-1]  # the layer's scope is the Tensordot's, not its MatMul's (one deeper)
    elif not batched and m.shape(x) is not None and len(m.shape(x)) != 2:
        return None
    features = int(kernel.shape[1] if transposed else kernel.shape[0])
    shape = m.shape(inputs[0])
    if shape is not None and shape[-1] not in (None, features):
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


def _tensordot(m: Matcher, mm: Node):
    """Recognise reshape(matmul(reshape(x, [-1, C]), W), shape(x)[:-1] + [units]).

    Matched by what it computes rather than by names: walk back from the MatMul through
    reshape/transpose plumbing to one data tensor x, forward to a Reshape whose static shape is
    x's with the last axis replaced; every plumbing node must feed only this region.
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
    return [x], ordered, after.output(0)
