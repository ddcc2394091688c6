"""Activations: single ops, and the compositions Keras 3 and TF freeze them to
(swish as x*sigmoid(x), hard-swish as x*relu6(x+3)/6, GELU through Erf or Erfc)."""

from __future__ import annotations

import math

from ..graph import Node
from ..spec import Call, Ref
from .norm import f32
from .registry import Matcher, pattern

# op -> Keras activation name usable as `activation=` or `Activation(...)`
SIMPLE = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Elu": "elu",
    "Selu": "selu",
    "Softplus": "softplus",
    "Softsign": "softsign",
}


def _close(value, target, tol=1e-6) -> bool:
    return value is not None and abs(value - target) <= tol * max(1.0, abs(target))


def fused_activation(m: Matcher, anchor: Node, tensor: str) -> tuple[str, list[Node], str] | None:
    """An activation applied to `tensor` that belongs to `anchor`'s layer (same scope):
    (keras name, nodes, output tensor). Used by Conv2D/Dense to absorb `activation=`."""
    if tensor in m.outputs:
        return None
    users = m.graph.users(tensor)
    if len(users) == 1 and users[0].op in SIMPLE:
        found = SIMPLE[users[0].op], users, users[0].output(0)
    else:
        found = swish(m, tensor) or hard_swish(m, tensor) or gelu(m, tensor)
        # a composite reads x more than once; every reader of x must be part of it
        if found and not {u.name for u in users} <= {n.name for n in found[1]}:
            found = None
    if found and all(m.same_layer(anchor, n) and n.name not in m.covered for n in found[1]):
        return found
    return None


def swish(m: Matcher, x: str) -> tuple[str, list[Node], str] | None:
    """x * sigmoid(x), or Keras 3's x * sigmoid(1.0 * x)."""
    for first in m.graph.users(x):
        nodes = []
        sig = first
        if first.op == "Mul":
            split = m.split_const(first)
            if not split or split[0] != x or not _close(m.scalar(split[1]), 1.0):
                continue
            sig = m.user(first.output(0), "Sigmoid")
            if sig is None:
                continue
            nodes.append(first)
        elif first.op != "Sigmoid":
            continue
        out = m.user(sig.output(0), "Mul")
        if out is None or set(out.inputs) != {x, sig.output(0)}:
            continue
        return "swish", [*nodes, sig, out], out.output(0)
    return None


def _hard_sigmoid_chain(m: Matcher, x: str):
    """relu6(x + 3) / 6 (or * 1/6): returns (nodes, output tensor)."""
    for add in m.graph.users(x):
        if add.op not in ("AddV2", "Add"):
            continue
        split = m.split_const(add)
        if not split or split[0] != x or not _close(m.scalar(split[1]), 3.0):
            continue
        relu6 = m.user(add.output(0), "Relu6")
        if relu6 is None:
            continue
        scale = m.user(relu6.output(0), "RealDiv", "Mul")
        if scale is None:
            continue
        split = m.split_const(scale)
        if not split or split[0] != relu6.output(0):
            continue
        factor = m.scalar(split[1])
        want = 6.0 if scale.op == "RealDiv" else 1.0 / 6.0
        if scale.op == "RealDiv" and scale.inputs[0] != relu6.output(0):
            continue
        if _close(factor, want):
            return [add, relu6, scale], scale.output(0)
    return None


def hard_swish(m: Matcher, x: str):
    chain = _hard_sigmoid_chain(m, x)
    if chain is None:
        return None
    nodes, hs = chain
    out = m.user(hs, "Mul")
    if out is None or set(out.inputs) != {x, hs}:
        return None
    return "hard_swish", [*nodes, out], out.output(0)


def gelu(m: Matcher, x: str):
    """Exact GELU as TF writes it: 0.5*x*erfc(-x/sqrt(2)) or 0.5*x*(1+erf(x/sqrt(2)))."""
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    users = m.graph.users(x)
    half = next((u for u in users if u.op == "Mul" and _scaled(m, u, x, 0.5)), None)
    if half is None:
        return None
    final = m.user(half.output(0), "Mul")
    if final is None:
        return None
    other = (
        next(t for t in final.inputs if t != half.output(0))
        if len(set(final.inputs)) == 2
        else None
    )
    if other is None:
        return None
    e = m.node(other)
    if e.op == "Erfc":
        inner = m.node(e.inputs[0])
        if inner.op != "Mul" or m.user(inner.output(0)) is not e:
            return None
        split = m.split_const(inner)
        if not split or not _close(m.scalar(split[1]), inv_sqrt2, 1e-5):
            return None
        neg = m.node(split[0])
        if neg.op != "Neg" or neg.inputs[0] != x:
            return None
        return "gelu", [half, neg, inner, e, final], final.output(0)
    if e.op in ("AddV2", "Add"):
        split = m.split_const(e)
        if not split or not _close(m.scalar(split[1]), 1.0):
            return None
        erf = m.node(split[0])
        if erf.op != "Erf":
            return None
        inner = m.node(erf.inputs[0])
        split = m.split_const(inner) if inner.op in ("Mul", "RealDiv") else None
        if not split or split[0] != x:
            return None
        factor = m.scalar(split[1])
        if not (
            _close(factor, inv_sqrt2, 1e-5)
            if inner.op == "Mul"
            else _close(factor, math.sqrt(2.0), 1e-5)
        ):
            return None
        return "gelu", [half, inner, erf, e, final], final.output(0)
    return None


def _scaled(m: Matcher, node: Node, x: str, factor: float) -> bool:
    split = m.split_const(node)
    return bool(split) and split[0] == x and _close(m.scalar(split[1]), factor)


@pattern("Relu6")
def relu6(node: Node, m: Matcher):
    return m.layer("ReLU", [node], [node.inputs[0]], args=[6.0])


@pattern("Relu")
def relu(node: Node, m: Matcher):
    return m.layer("ReLU", [node], [node.inputs[0]])


@pattern("Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign")
def simple(node: Node, m: Matcher):
    found = swish(m, node.inputs[0]) if node.op == "Sigmoid" else None
    if found and found[1][0] is node:
        return m.layer("Activation", found[1], [node.inputs[0]], args=[found[0]])
    return m.layer("Activation", [node], [node.inputs[0]], args=[SIMPLE[node.op]])


@pattern("Mul")
def composite_from_mul(node: Node, m: Matcher):
    """Swish written as x * sigmoid(1.0 * x), and GELU's 0.5 * x: both start with a Mul."""
    split = m.split_const(node)
    if not split:
        return None
    x = split[0]
    for found in (swish(m, x), gelu(m, x)):
        if found and found[1][0] is node:
            return m.layer("Activation", found[1], [x], args=[found[0]])
    return None


@pattern("AddV2", "Add")
def hard_swish_from_add(node: Node, m: Matcher):
    split = m.split_const(node)
    if not split:
        return None
    found = hard_swish(m, split[0])
    if found and found[1][0] is node:
        return m.layer("Activation", found[1], [split[0]], args=[found[0]])
    chain = _hard_sigmoid_chain(m, split[0])
    if chain and chain[0][0] is node:
        return m.layer("Activation", chain[0], [split[0]], args=["hard_sigmoid"])
    return None


@pattern("Neg")
def gelu_from_neg(node: Node, m: Matcher):
    found = gelu(m, node.inputs[0])
    if found and node in found[1]:
        return m.layer("Activation", found[1], [node.inputs[0]], args=["gelu"])
    return None


@pattern("Softmax")
def softmax(node: Node, m: Matcher):
    return m.layer("Softmax", [node], [node.inputs[0]])


@pattern("LeakyRelu")
def leaky_relu(node: Node, m: Matcher):
    """LeakyReLU; a negative slope (which TF allows and the Keras layer refuses) is
    keras.ops.leaky_relu, the same select on every backend. TF computes an integer input's
    leaky relu in float32 (tf.nn.leaky_relu casts first), so the op itself is always float."""
    alpha = f32(float(node.attrs.get("alpha", 0.2)))
    if alpha < 0:
        kwargs = (("negative_slope", alpha),)
        return m.ops([node], Call("leaky_relu", (Ref(0),), kwargs), [node.inputs[0]])
    return m.layer("LeakyReLU", [node], [node.inputs[0]], kwargs={"negative_slope": alpha})
