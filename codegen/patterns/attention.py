"""Einsum-shaped layers: Keras' EinsumDense (what MultiHeadAttention projects with), found as
the Einsum op with a constant kernel or as the MatMul + Reshape TensorFlow lowers it to, and the
Einsum between two computed tensors (attention scores) as keras.ops.einsum."""

from __future__ import annotations

import math
import string

from ..graph import Node
from ..names import keras_name
from ..spec import Call, Ref
from .registry import Matcher, pattern

LETTERS = string.ascii_lowercase


def lower_equation(equation: str) -> str | None:
    """The equation with its letters renamed to lowercase, consistently (Keras' symbolic einsum
    reads only lowercase subscripts), or None if it is not a plain explicit equation."""
    equation = equation.replace(" ", "")
    if "..." in equation or equation.count("->") != 1:
        return None
    used = [ch for ch in dict.fromkeys(equation) if ch.isalpha()]
    if len(used) > len(LETTERS) or any(not (ch.isalpha() or ch in ",->") for ch in equation):
        return None
    rename = {ch: LETTERS[i] for i, ch in enumerate(used)}
    return "".join(rename.get(ch, ch) for ch in equation)


def _bias(m: Matcher, tensor: str, dims: tuple[int, ...]):
    """A constant added to `tensor` over its trailing axes `dims[-k:]`: (node, bias tensor,
    k), the bias broadcast the way EinsumDense's `bias_axes` adds it."""
    user = m.user(tensor, "AddV2", "Add", "BiasAdd")
    if user is None:
        return None
    split = m.split_const(user)
    if not split or split[0] != tensor or (user.op == "BiasAdd" and user.inputs[0] != tensor):
        return None
    value = m.const(split[1])
    if value is None:
        return None
    shape = list(value.shape)
    while shape and shape[0] == 1:
        shape.pop(0)
    k = len(shape)
    if not k or tuple(shape) != tuple(dims[-k:]):
        return None
    return user, split[1], k


def _einsum_dense(m, nodes, x, equation, out_term, out_shape, kernel, kernel_shape, tensor):
    """EinsumDense over `nodes`, absorbing a following bias add over trailing output axes."""
    kwargs: dict = {"output_shape": out_shape}
    weights = [m.weight("kernel", kernel, kernel_shape)]
    new_dims = tuple(d for d in out_shape if d is not None)
    found = _bias(m, tensor, new_dims) if new_dims == out_shape[-len(new_dims) :] else None
    if found:
        node, bias, k = found
        nodes = [*nodes, node]
        kwargs["bias_axes"] = out_term[-k:]
        weights.append(m.weight("bias", bias, new_dims[-k:]))
        tensor = node.output(0)
    layer = m.layer(
        "EinsumDense", nodes, [x], args=[equation], kwargs=kwargs, weights=weights, output=tensor
    )
    scope = m.namer.layer_name([n.name for n in nodes])
    if layer is not None and scope:
        # the nodes' common scope (`mha/key`), not the kernel's (`mha/key/einsum/Einsum`,
        # an op scope inside the layer)
        layer.name = keras_name(scope)
    return layer


@pattern("BatchMatMulV2", "BatchMatMulV3", "BatchMatMul")
def split_heads(node: Node, m: Matcher):
    """x @ W then a reshape splitting the last axis into several: EinsumDense
    "abc,cde->abde", as TensorFlow lowers Keras 3's `EinsumDense` (MultiHeadAttention's query,
    key and value projections) on the TF backend."""
    x, w = node.inputs
    kernel, shape = m.const(w), m.shape(x)
    a = node.attrs
    if kernel is None or kernel.ndim != 2 or a.get("adj_x") or a.get("adj_y"):
        return None
    if shape is None or len(shape) < 3 or shape[-1] != kernel.shape[0]:
        return None
    reshape = m.user(node.output(0), "Reshape")
    target = m.shape(reshape.output(0)) if reshape is not None else None
    if target is None or not m.consts.is_const(reshape.inputs[1]):
        return None
    keep = len(shape) - 1
    dims = tuple(target[keep:])
    if (
        tuple(target[1:keep]) != tuple(shape[1:keep])
        or len(dims) < 2
        or None in dims
        or math.prod(dims) != kernel.shape[1]
    ):
        return None
    x_term = LETTERS[: len(shape)]
    new = LETTERS[len(shape) : len(shape) + len(dims)]
    out_term = x_term[:-1] + new
    equation = f"{x_term},{x_term[-1]}{new}->{out_term}"
    out_shape = (None,) * (keep - 1) + dims
    return _einsum_dense(
        m,
        [node, reshape],
        x,
        equation,
        out_term,
        out_shape,
        w,
        (kernel.shape[0], *dims),
        reshape.output(0),
    )


@pattern("Reshape")
def merge_heads(node: Node, m: Matcher):
    """A reshape merging the last axes, then x @ W: EinsumDense "abcd,cde->abe"
    (MultiHeadAttention's output projection)."""
    x = node.inputs[0]
    shape, merged = m.shape(x), m.shape(node.output(0))
    if shape is None or merged is None or not m.consts.is_const(node.inputs[1]):
        return None
    keep = len(merged) - 1
    dims = tuple(shape[keep:])
    if (
        keep < 2
        or len(dims) < 2
        or None in dims
        or tuple(merged[1:keep]) != tuple(shape[1:keep])
        or merged[-1] != math.prod(dims)
    ):
        return None
    mm = m.user(node.output(0), "BatchMatMulV2", "BatchMatMulV3", "BatchMatMul")
    if mm is None or mm.inputs[0] != node.output(0):
        return None
    kernel = m.const(mm.inputs[1])
    if kernel is None or kernel.ndim != 2 or mm.attrs.get("adj_x") or mm.attrs.get("adj_y"):
        return None
    units = int(kernel.shape[1])
    x_term = LETTERS[: len(shape)]
    unit = LETTERS[len(shape)]
    out_term = x_term[:keep] + unit
    equation = f"{x_term},{x_term[keep:]}{unit}->{out_term}"
    out_shape = (None,) * (keep - 1) + (units,)
    return _einsum_dense(
        m, [node, mm], x, equation, out_term, out_shape, mm.inputs[1], (*dims, units), mm.output(0)
    )


@pattern("Einsum")
def einsum(node: Node, m: Matcher):
    """Einsum(x, constant kernel) is an EinsumDense when x's first axis (the batch) leads the
    output; between two computed tensors (attention scores) it is keras.ops.einsum."""
    if len(node.inputs) != 2:
        return None
    equation = lower_equation(node.attrs.get("equation", ""))
    if equation is None:
        return None
    x, w = node.inputs
    if not m.consts.is_const(x) and not m.consts.is_const(w):
        return m.ops([node], Call("einsum", (equation, Ref(0), Ref(1))), [x, w])
    kernel, shape = m.const(w), m.shape(x)
    if kernel is None or m.consts.is_const(x) or shape is None:
        return None
    (x_term, k_term), out_term = (t.split(",") for t in equation.split("->"))
    out_term = out_term[0]
    if len(x_term) != len(shape) or not out_term or out_term[0] != x_term[0]:
        return None
    if x_term[0] in k_term or len(set(out_term)) != len(out_term):
        return None
    sizes = dict(zip(k_term, kernel.shape))
    out_shape = tuple(None if ch in x_term else int(sizes[ch]) for ch in out_term[1:])
    if any(ch not in x_term and ch not in sizes for ch in out_term):
        return None
    return _einsum_dense(
        m, [node], x, equation, out_term, out_shape, w, tuple(kernel.shape), node.output(0)
    )
