"""Normalisations: FusedBatchNorm (all versions), the decomposed BatchNorm that Keras 3 and
tf.nn.batch_normalization freeze to, the decomposed LayerNormalization (moments), Keras 2's
LayerNormalization (a batch-statistics FusedBatchNorm over reshaped rows), and the Keras
preprocessing Normalization layer."""

from __future__ import annotations

import re

import numpy as np

from ..graph import Node
from .registry import Matcher, pattern


@pattern("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def fused_batch_norm(node: Node, m: Matcher):
    # channels last: NHWC, or NDHWC on volumetric input (FusedBatchNormV3 only)
    layout = node.attrs.get("data_format", "NHWC")
    if node.attrs.get("is_training") or layout not in ("NHWC", "NDHWC"):
        return None
    shape = m.shape(node.inputs[0])
    if layout == "NDHWC" and (shape is None or len(shape) != 5):
        return None
    if any(m.graph.users(node.output(i)) for i in range(1, 6)):
        return None
    x, scale, offset, mean, var = node.inputs[:5]
    channels = m.const(scale).size if m.const(scale) is not None else None
    if channels is None:
        return None
    c = (channels,)
    kwargs: dict = {"epsilon": f32(float(node.attrs.get("epsilon", 1e-3)))}
    weights = []
    if _literal(m, scale, 1.0):
        kwargs["scale"] = False
    else:
        weights.append(m.weight("gamma", scale, c))
    if _literal(m, offset, 0.0):
        kwargs["center"] = False
    else:
        weights.append(m.weight("beta", offset, c))
    weights += [m.weight("moving_mean", mean, c), m.weight("moving_variance", var, c)]
    return m.layer("BatchNormalization", [node], [x], kwargs=kwargs, weights=weights)


def _literal(m: Matcher, tensor: str, fill: float) -> bool:
    """A constant the graph's author wrote, not a frozen variable, holding only `fill`: the
    ones (zeros) a fused batch norm gets for `scale=False` (`center=False`) in Keras 2 and
    tf-slim. Such a layer has no gamma (beta) to train."""
    value = m.const(tensor)
    name = m.node(tensor).name.rsplit("/", 1)[-1]
    return (
        value is not None
        and m.node(tensor).op == "Const"
        and re.fullmatch(r"Const(_\d+)?", name) is not None
        and bool(np.all(value == fill))
    )


def f32(value: float) -> float:
    """The shortest decimal that round-trips through float32: 1.001e-05, not 1.0010000230..."""
    import numpy as np

    with np.errstate(over="ignore"):  # beyond float32's range is inf, as TF reads it too
        return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def _rsqrt_of_var_eps(m: Matcher, tensor: str):
    """rsqrt(var + eps) [* gamma] as stored in the graph: (var, eps, gamma or None)."""
    node = m.node(tensor)
    gamma = None
    if node.op == "Mul":
        a, b = (m.node(t) for t in node.inputs)
        if a.op == "Rsqrt":
            node, gamma = a, node.inputs[1]
        elif b.op == "Rsqrt":
            node, gamma = b, node.inputs[0]
        else:
            return None
    if node.op != "Rsqrt":
        return None
    add = m.node(node.inputs[0])
    if add.op not in ("AddV2", "Add"):
        return None
    for var, eps in (add.inputs, add.inputs[::-1]):
        e = m.scalar(eps)
        if e is not None and m.const(var) is not None and m.const(var).size > 1:
            return var, e, gamma
    return None


@pattern("Mul")
def batch_norm(node: Node, m: Matcher):
    """x * s + (beta - mean * s), s = rsqrt(var + eps) * gamma: tf.nn.batch_normalization."""
    split = m.split_const(node)
    if not split:
        return None
    x, s = split
    parts = _rsqrt_of_var_eps(m, s)
    if parts is None:
        return None
    var, eps, gamma = parts
    shape = m.shape(x)
    channels = m.const(var).size
    if not shape or shape[-1] != channels or m.const(var).shape[-1] != channels:
        return None
    add = m.user(node.output(0), "AddV2", "Add")
    if add is None:
        return None
    shift = m.node(next((t for t in add.inputs if t != node.output(0)), node.output(0)))
    beta = None
    if shift.op == "Sub":
        beta, mean_mul = shift.inputs[0], m.node(shift.inputs[1])
    elif shift.op == "Neg":
        mean_mul = m.node(shift.inputs[0])
    elif shift.op == "Mul":
        mean_mul = shift  # without offset TF writes -mean * s, i.e. Neg(mean) * s
    else:
        return None
    if mean_mul.op != "Mul" or s not in mean_mul.inputs:
        return None
    mean = next(t for t in mean_mul.inputs if t != s) if len(set(mean_mul.inputs)) == 2 else None
    if shift.op == "Mul":
        neg = m.node(mean) if mean is not None else None
        mean = neg.inputs[0] if neg is not None and neg.op == "Neg" else None
    if mean is None or m.const(mean) is None:
        return None
    c = (channels,)
    kwargs: dict = {"epsilon": f32(eps)}
    weights = []
    if gamma is not None:
        weights.append(m.weight("gamma", gamma, c))
    else:
        kwargs["scale"] = False
    if beta is not None:
        weights.append(m.weight("beta", beta, c))
    else:
        kwargs["center"] = False
    weights += [m.weight("moving_mean", mean, c), m.weight("moving_variance", var, c)]
    return m.layer(
        "BatchNormalization", [node, add], [x], kwargs=kwargs, weights=weights, output=add.output(0)
    )


@pattern("Mean")
def layer_norm(node: Node, m: Matcher):
    """Keras 3's LayerNormalization on TF: moments over the last axis, then
    x * (rsqrt(var + eps) * gamma) + (beta - mean * (rsqrt(var + eps) * gamma))."""
    x = node.inputs[0]
    shape = m.shape(x)
    axes = m.ints(node.inputs[1])
    if not shape or axes is None or [a % len(shape) for a in axes] != [len(shape) - 1]:
        return None
    if shape[-1] is None:
        return None  # the normalised axis sizes gamma and beta
    if not node.attrs.get("keep_dims"):
        return None
    users = {u.op: u for u in m.graph.users(node.output(0))}
    sqdiff, neg = users.get("SquaredDifference"), users.get("Neg")
    if sqdiff is None or neg is None or len(users) != 2 or x not in sqdiff.inputs:
        return None
    variance = m.user(sqdiff.output(0), "Mean")
    if variance is None:
        return None
    add = m.user(variance.output(0), "AddV2", "Add")
    split = m.split_const(add) if add else None
    eps = m.scalar(split[1]) if split else None
    if eps is None:
        return None
    rsqrt = m.user(add.output(0), "Rsqrt")
    if rsqrt is None:
        return None
    scale_users = m.graph.users(rsqrt.output(0))
    nodes = [node, sqdiff, variance, add, rsqrt]
    gamma = None
    s = rsqrt.output(0)
    if len(scale_users) == 1 and scale_users[0].op == "Mul" and m.split_const(scale_users[0]):
        gmul = scale_users[0]
        gamma = m.split_const(gmul)[1]
        s = gmul.output(0)
        nodes.append(gmul)
    s_users = m.graph.users(s)
    x_mul = next((u for u in s_users if u.op == "Mul" and x in u.inputs), None)
    mean_mul = next((u for u in s_users if u.op == "Mul" and neg.output(0) in u.inputs), None)
    if x_mul is None or mean_mul is None or len(s_users) != 2:
        return None
    nodes += [x_mul, neg, mean_mul]
    shift, beta = mean_mul, None
    add_beta = m.user(mean_mul.output(0), "AddV2", "Add")
    if add_beta is not None and m.split_const(add_beta):
        beta = m.split_const(add_beta)[1]
        nodes.append(add_beta)
        shift = add_beta
    final = m.user(shift.output(0), "AddV2", "Add")
    if final is None or x_mul.output(0) not in final.inputs:
        return None
    nodes.append(final)
    c = (shape[-1],)
    kwargs: dict = {"epsilon": f32(eps)}
    weights = []
    if gamma is not None:
        weights.append(m.weight("gamma", gamma, c))
    else:
        kwargs["scale"] = False
    if beta is not None:
        weights.append(m.weight("beta", beta, c))
    else:
        kwargs["center"] = False
    return m.layer(
        "LayerNormalization", nodes, [x], kwargs=kwargs, weights=weights, output=final.output(0)
    )


@pattern("Mean")
def centred_layer_norm(node: Node, m: Matcher):
    """LayerNormalization as TF1 code spells it out (tensor2tensor, BERT ports):
    (x - mean) * rsqrt(var + eps) [* gamma] [+ beta], the variance the mean of
    SquaredDifference(x, mean) (`tf.nn.moments`) or of Square(x - mean)."""
    x = node.inputs[0]
    shape, axes = m.shape(x), m.ints(node.inputs[1])
    if not shape or axes is None or [a % len(shape) for a in axes] != [len(shape) - 1]:
        return None
    if shape[-1] is None or not node.attrs.get("keep_dims"):
        return None
    mean = node.output(0)
    users = m.graph.users(mean)
    sub = next((u for u in users if u.op == "Sub" and u.inputs == [x, mean]), None)
    if sub is None or mean in m.outputs:
        return None
    sqdiff = next((u for u in users if u.op == "SquaredDifference" and x in u.inputs), None)
    if sqdiff is not None and len(users) == 2:
        spread = sqdiff
    elif len(users) == 1:
        spread = next((u for u in m.graph.users(sub.output(0)) if u.op == "Square"), None)
    else:
        return None
    if spread is None or spread.output(0) in m.outputs:
        return None
    variance = m.user(spread.output(0), "Mean")
    if (
        variance is None
        or m.ints(variance.inputs[1]) != axes
        or not variance.attrs.get("keep_dims")
    ):
        return None
    add = m.user(variance.output(0), "AddV2", "Add")
    split = m.split_const(add) if add else None
    eps = m.scalar(split[1]) if split else None
    rsqrt = m.user(add.output(0), "Rsqrt") if eps is not None else None
    scaled = m.user(rsqrt.output(0), "Mul") if rsqrt is not None else None
    if scaled is None or set(scaled.inputs) != {sub.output(0), rsqrt.output(0)}:
        return None
    readers = {u.name for u in m.graph.users(sub.output(0))}
    if readers != {scaled.name} | ({spread.name} if spread is not sqdiff else set()):
        return None
    nodes = [node, sub, spread, variance, add, rsqrt, scaled]
    c, out = (shape[-1],), scaled.output(0)
    kwargs: dict = {"epsilon": f32(eps)}
    weights = []
    for op, key, flag in (("Mul", "gamma", "scale"), ("AddV2", "beta", "center")):
        user = m.user(out, op, "Add") if op == "AddV2" else m.user(out, op)
        split = m.split_const(user) if user is not None else None
        value = m.const(split[1]) if split and split[0] == out else None
        if value is None or value.size != shape[-1] or value.shape[-1:] != c:
            kwargs[flag] = False
            continue
        weights.append(m.weight(key, split[1], c))
        nodes.append(user)
        out = user.output(0)
    return m.layer("LayerNormalization", nodes, [x], kwargs=kwargs, weights=weights, output=out)


@pattern("Sub")
def normalization(node: Node, m: Matcher):
    """Keras' preprocessing Normalization: (x - mean) / maximum(sqrt(var), epsilon)."""
    split = m.split_const(node)
    if not split or split[0] != node.inputs[0]:
        return None
    x, mean = split
    div = m.user(node.output(0), "RealDiv")
    if div is None or div.inputs[0] != node.output(0):
        return None
    denom = m.node(div.inputs[1])
    if denom.op != "Maximum":
        return None
    sqrt = next((m.node(t) for t in denom.inputs if m.node(t).op == "Sqrt"), None)
    if sqrt is None or m.const(sqrt.inputs[0]) is None or m.const(mean) is None:
        return None
    mean_v, var_v = m.const(mean).reshape(-1), m.const(sqrt.inputs[0]).reshape(-1)
    return m.layer(
        "Normalization",
        [node, div],
        [x],
        kwargs={"mean": [f32(v) for v in mean_v], "variance": [f32(v) for v in var_v]},
        output=div.output(0),
    )


# What Keras 2's LayerNormalization computes its reshapes and unit scale/offset with.
_LN_PLUMBING = {"Shape", "StridedSlice", "Prod", "Pack", "Fill", "Cast"}


@pattern("Reshape")
def keras2_layer_norm(node: Node, m: Matcher):
    """Keras 2 (tf_keras) LayerNormalization over the last axis: reshape x to
    [1, rows, features, 1], FusedBatchNorm in training mode with data_format NCHW (statistics
    per row), scale ones and offset zeros, reshape back to shape(x), then * gamma + beta."""
    x = node.inputs[0]
    shape = m.shape(x)
    bn = m.user(node.output(0), "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
    if bn is None or shape is None or not shape or shape[-1] is None:
        return None
    a = bn.attrs
    if not a.get("is_training") or a.get("data_format") != "NCHW" or bn.inputs[0] != node.output(0):
        return None
    if any(m.graph.users(bn.output(i)) for i in range(1, 6)):
        return None
    if not (_filled(m, bn.inputs[1], 1.0) and _filled(m, bn.inputs[2], 0.0)):
        return None
    back = m.user(bn.output(0), "Reshape")
    if back is None or m.node(back.inputs[1]).op != "Shape" or m.node(back.inputs[1]).inputs != [x]:
        return None
    nodes, out, c = [node, bn, back], back.output(0), (shape[-1],)
    kwargs: dict = {"epsilon": f32(float(a.get("epsilon", 1e-3)))}
    weights = []
    for op, key, flag in (("Mul", "gamma", "scale"), ("AddV2", "beta", "center")):
        user = m.user(out, op, "Add") if op == "AddV2" else m.user(out, op)
        split = m.split_const(user) if user is not None else None
        value = m.const(split[1]) if split and split[0] == out else None
        if value is None or value.size != shape[-1] or not m.same_layer(node, user):
            kwargs[flag] = False
            continue
        weights.append(m.weight(key, split[1], c))
        nodes.append(user)
        out = user.output(0)
    if not weights:
        return None  # without gamma or beta, nothing says which axes were normalised
    plumbing = _ln_plumbing(m, [node.inputs[1], bn.inputs[1], bn.inputs[2], back.inputs[1]], x)
    if plumbing is None:
        return None
    nodes[:0] = plumbing
    return m.layer("LayerNormalization", nodes, [x], kwargs=kwargs, weights=weights, output=out)


def _filled(m: Matcher, tensor: str, fill: float) -> bool:
    """A constant of `fill`s, or a Fill of one with a computed size (the row count)."""
    value = m.const(tensor)
    if value is not None:
        return bool(np.all(value == fill))
    node = m.node(tensor)
    return node.op == "Fill" and m.scalar(node.inputs[1]) == fill


def _ln_plumbing(m: Matcher, tensors: list[str], x: str) -> list[Node] | None:
    """The shape arithmetic from shape(x) to the reshapes and fills, used by nothing else."""
    found: dict[str, Node] = {}
    stack = list(tensors)
    while stack:
        t = stack.pop()
        node = m.node(t)
        if t == x or node.name in found or m.consts.is_const(t):
            continue
        if node.op not in _LN_PLUMBING or node.name in m.covered:
            return None
        found[node.name] = node
        if node.op != "Shape":
            stack.extend(node.inputs)
        elif node.inputs != [x]:
            return None
    consumers = set(found) | {n.name for n in m.graph.users(x)}
    for node in found.values():
        for user in m.graph.users(node.output(0)):
            if user.name not in consumers and user.op not in (
                "Reshape",
                "FusedBatchNormV3",
                "FusedBatchNormV2",
                "FusedBatchNorm",
            ):
                return None
    return m.graph.in_order(found)
