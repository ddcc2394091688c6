"""Convolutions: Conv2D (grouped too), DepthwiseConv2dNative, depthwise+pointwise as
SeparableConv2D, Conv2DBackpropInput as Conv2DTranspose; each absorbs a following bias add and,
when it sits in the same layer scope, its activation."""

from __future__ import annotations

from collections import ChainMap

from ..graph import Node
from ..passes.fold import Constants
from .registry import Matcher, pattern
from .activation import fused_activation


def pair(values) -> int | tuple[int, int]:
    """(2, 2) -> 2: Keras accepts either and the short form reads better."""
    a, b = int(values[0]), int(values[1])
    return a if a == b else (a, b)


def spatial_attrs(node: Node) -> dict | None:
    """strides/padding/dilation_rate in Keras terms, or None for layouts we do not map here."""
    a = node.attrs
    if a.get("data_format", "NHWC") != "NHWC" or a.get("padding") not in ("SAME", "VALID"):
        return None
    strides = a.get("strides", [1, 1, 1, 1])
    dilations = a.get("dilations", [1, 1, 1, 1])
    if strides[0] != 1 or strides[3] != 1 or dilations[0] != 1 or dilations[3] != 1:
        return None
    return {
        "strides": pair(strides[1:3]),
        "padding": a["padding"].lower(),
        "dilation_rate": pair(dilations[1:3]),
    }


def bias_add(m: Matcher, tensor: str, channels: int) -> tuple[Node, str] | None:
    """A BiasAdd, or an Add of a constant C-vector, applied to `tensor`: (node, bias tensor)."""
    user = m.user(tensor, "BiasAdd", "AddV2", "Add")
    if user is None:
        return None
    if user.op == "BiasAdd":
        if user.inputs[0] != tensor or user.attrs.get("data_format", "NHWC") != "NHWC":
            return None
        bias = user.inputs[1]
    else:
        split = m.split_const(user)
        if not split or split[0] != tensor:
            return None
        bias = split[1]
    value = m.const(bias)
    if value is None or value.size != channels or (value.ndim and value.shape[-1] != channels):
        return None
    return user, bias


def with_bias_and_activation(m, anchor, nodes, tensor, channels, kwargs, weights):
    """Absorb the bias add and same-scope activation that follow a conv or matmul."""
    found = bias_add(m, tensor, channels)
    if found:
        node, bias = found
        nodes.append(node)
        weights.append(m.weight("bias", bias, (channels,)))
        tensor = node.output(0)
    else:
        kwargs["use_bias"] = False
    act = fused_activation(m, anchor, tensor)
    if act:
        kwargs["activation"] = act[0]
        nodes.extend(act[1])
        tensor = act[2]
    return tensor


def _kernel(value) -> bool:
    """A 4-D kernel with something in it: every size of it divides or multiplies a shape."""
    return value is not None and value.ndim == 4 and value.size > 0


def _image(shape) -> bool:
    """Unknown, or NHWC: a conv pattern reads the channel axis of its input."""
    return shape is None or len(shape) == 4


@pattern("Conv2D")
def conv2d(node: Node, m: Matcher):
    x, f = node.inputs
    kernel = m.const(f)
    spatial = spatial_attrs(node)
    in_shape = m.shape(x)
    if not _kernel(kernel) or spatial is None or not _image(in_shape):
        return None
    filters = kernel.shape[3]
    kwargs = dict(spatial)
    if in_shape is not None and in_shape[-1] and in_shape[-1] != kernel.shape[2]:
        if in_shape[-1] % kernel.shape[2]:
            return None
        kwargs["groups"] = in_shape[-1] // kernel.shape[2]
    nodes, weights = [node], [m.weight("kernel", f)]
    out = with_bias_and_activation(m, node, nodes, node.output(0), filters, kwargs, weights)
    return m.layer(
        "Conv2D",
        nodes,
        [x],
        args=[filters, pair(kernel.shape[:2])],
        kwargs=kwargs,
        weights=weights,
        output=out,
    )


@pattern("DepthwiseConv2dNative")
def depthwise(node: Node, m: Matcher):
    x, f = node.inputs
    kernel = m.const(f)
    spatial = spatial_attrs(node)
    if not _kernel(kernel) or spatial is None or not _image(m.shape(x)):
        return None
    multiplier = kernel.shape[3]
    channels = kernel.shape[2] * multiplier
    pointwise = m.user(node.output(0), "Conv2D")
    if pointwise is not None and m.same_layer(node, pointwise):
        pw = m.const(pointwise.inputs[1])
        pw_spatial = spatial_attrs(pointwise)
        if (
            _kernel(pw)
            and pw.shape[:2] == (1, 1)
            and pw_spatial == {"strides": 1, "padding": "valid", "dilation_rate": 1}
        ):
            kwargs = dict(spatial)
            if multiplier != 1:
                kwargs["depth_multiplier"] = multiplier
            nodes = [node, pointwise]
            weights = [
                m.weight("depthwise_kernel", f),
                m.weight("pointwise_kernel", pointwise.inputs[1]),
            ]
            out = with_bias_and_activation(
                m, node, nodes, pointwise.output(0), pw.shape[3], kwargs, weights
            )
            return m.layer(
                "SeparableConv2D",
                nodes,
                [x],
                args=[pw.shape[3], pair(kernel.shape[:2])],
                kwargs=kwargs,
                weights=weights,
                output=out,
            )
    kwargs = dict(spatial)
    if multiplier != 1:
        kwargs["depth_multiplier"] = multiplier
    nodes, weights = [node], [m.weight("kernel", f)]
    out = with_bias_and_activation(m, node, nodes, node.output(0), channels, kwargs, weights)
    return m.layer(
        "DepthwiseConv2D",
        nodes,
        [x],
        args=[pair(kernel.shape[:2])],
        kwargs=kwargs,
        weights=weights,
        output=out,
    )


@pattern("Conv2DBackpropInput")
def conv2d_transpose(node: Node, m: Matcher):
    sizes, f, x = node.inputs
    kernel = m.const(f)
    spatial = spatial_attrs(node)
    in_shape, out_shape = m.shape(x), m.shape(node.output(0))
    if not _kernel(kernel) or spatial is None:
        return None
    if in_shape is None or len(in_shape) != 4 or out_shape is None or len(out_shape) != 4:
        return None
    if spatial["dilation_rate"] != 1:
        return None
    filters = kernel.shape[2]
    kwargs = dict(spatial)
    del kwargs["dilation_rate"]
    strides = node.attrs["strides"][1:3]
    same = spatial["padding"] == "same"
    natural, padding = [], []
    for i in range(2):
        k, s, size, want = kernel.shape[i], strides[i], in_shape[1 + i], out_shape[1 + i]
        if size is None or want is None:
            return None
        # Keras's output size without output_padding, and its formula once output_padding is
        # set: (in - 1) * s + k - 2 * pad + output_padding, pad = k // 2 for "same"
        natural.append(size * s if same else (size - 1) * s + k)
        padding.append(want - ((size - 1) * s + k - 2 * (k // 2 if same else 0)))
    if list(out_shape[1:3]) != natural:
        if any(not 0 <= p < s for p, s in zip(padding, strides)):
            return None
        kwargs["output_padding"] = pair(padding)
    plumbing = m.shape_plumbing(sizes, x)
    if plumbing is None:
        return None
    nodes, weights = [*plumbing, node], [m.weight("kernel", f)]
    out = with_bias_and_activation(m, node, nodes, node.output(0), filters, kwargs, weights)
    return m.layer(
        "Conv2DTranspose",
        nodes,
        [x],
        args=[filters, pair(kernel.shape[:2])],
        kwargs=kwargs,
        weights=weights,
        output=out,
    )


# What tf.nn.convolution computes a dilated conv's paddings and crops with when the input's
# height and width are unknown (required_space_to_batch_paddings): shape arithmetic on Shape(x).
_PADDING_ARITHMETIC = {
    "Shape",
    "StridedSlice",
    "Pack",
    "ConcatV2",
    "Add",
    "AddV2",
    "Sub",
    "FloorMod",
    "Cast",
}


def _padding_plumbing(m: Matcher, tensors: list[str], x: str, own: set[str]) -> list[Node] | None:
    """The nodes computing `tensors` from Shape(x) alone, or None when anything else feeds
    them or reads one of them (`own`: the nodes allowed to read them)."""
    found: dict[str, Node] = {}
    stack = list(tensors)
    while stack:
        t = stack.pop()
        node = m.node(t)
        if node.name in found or m.consts.is_const(t):
            continue
        if node.op not in _PADDING_ARITHMETIC or node.name in m.covered:
            return None
        if node.op == "Shape" and node.inputs[0] != x:
            return None
        found[node.name] = node
        if node.op != "Shape":
            stack.extend(node.inputs)
    readers = set(found) | own
    for node in found.values():
        if any(u.name not in readers for u in m.graph.users(node.output(0))):
            return None
    return m.graph.in_order(found)


def _net_padding(m: Matcher, x: str, pads_t: str, crops_t: str) -> list | None:
    """What the paddings less the crops pad the dilated conv's input by, per spatial axis, for
    every input size: read from the constants, or, when they are computed from the input's
    shape, by evaluating that arithmetic for several heights and widths (it must not vary)."""
    pads, crops = m.const(pads_t), m.const(crops_t)
    if pads is not None and crops is not None:
        trials = [(pads, crops)]
    else:
        shape = m.shape(x)
        if shape is None or len(shape) != 4:
            return None
        trials = []
        for h, w in ((7, 9), (8, 8), (11, 6), (12, 13)):
            probe = Constants(m.graph, ChainMap({x: (1, h, w, shape[3] or 1)}, m.shapes))
            pads, crops = probe.value(pads_t), probe.value(crops_t)
            if pads is None or crops is None:
                return None
            trials.append((pads, crops))
    found = None
    for pads, crops in trials:
        if pads.shape != (2, 2) or crops.shape != (2, 2):
            return None
        net = [(int(p[0]) - int(c[0]), int(p[1]) - int(c[1])) for p, c in zip(pads, crops)]
        if found is not None and net != found:
            return None
        found = net
    return found


@pattern("SpaceToBatchND")
def atrous_conv2d(node: Node, m: Matcher):
    """TF1's dilated convolution (tf.nn.atrous_conv2d, or conv2d with dilations through
    tf.nn.convolution): SpaceToBatchND with block [r, r], a stride-1 VALID Conv2D, then
    BatchToSpaceND with the same block, is one Conv2D with dilation_rate r. The paddings less
    the crops are what the dilated conv pads: none for "valid", TensorFlow's SAME split (the
    odd pixel at the end) for "same". With the height and width unknown, TF computed paddings
    and crops from Shape(x); that arithmetic joins the layer."""
    x, block_t, pads_t = node.inputs
    block = m.ints(block_t)
    conv = m.user(node.output(0), "Conv2D")
    if block is None or len(block) != 2 or min(block) < 1 or conv is None:
        return None
    back = m.user(conv.output(0), "BatchToSpaceND")
    kernel = m.const(conv.inputs[1])
    if conv.inputs[0] != node.output(0) or back is None or not _kernel(kernel):
        return None
    in_shape = m.shape(x)
    if not _image(in_shape) or m.ints(back.inputs[1]) != block:
        return None
    if spatial_attrs(conv) != {"strides": 1, "padding": "valid", "dilation_rate": 1}:
        return None
    if in_shape is not None and in_shape[-1] is not None and in_shape[-1] != kernel.shape[2]:
        return None  # grouped atrous convs are not what TF1 wrote
    net = _net_padding(m, x, pads_t, back.inputs[2])
    plumbing = _padding_plumbing(m, [pads_t, back.inputs[2]], x, {node.name, back.name})
    if net is None or plumbing is None:
        return None
    same = []
    for (before, after), k, r in zip(net, kernel.shape[:2], block):
        total = (int(k) - 1) * int(r)
        same.append((before, after) == (total // 2, total - total // 2))
    if all(n == (0, 0) for n in net):
        padding = "valid"
    elif all(same):
        padding = "same"
    else:
        return None
    kwargs = {"padding": padding, "dilation_rate": pair(block)}
    filters = kernel.shape[3]
    nodes, weights = [node, conv, *plumbing, back], [m.weight("kernel", conv.inputs[1])]
    out = with_bias_and_activation(m, conv, nodes, back.output(0), filters, kwargs, weights)
    return m.layer(
        "Conv2D",
        nodes,
        [x],
        args=[filters, pair(kernel.shape[:2])],
        kwargs=kwargs,
        weights=weights,
        output=out,
    )
