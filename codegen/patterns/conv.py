"""Convolutions: Conv2D (grouped too), DepthwiseConv2dNative, depthwise+pointwise as
SeparableConv2D, Conv2DBackpropInput as Conv2DTranspose; each absorbs a following bias add and,
when it sits in the same layer scope, its activation."""

from __future__ import annotations

from collections import ChainMap

from ..graph import Node
from ..passes.fold import Constants, Dim
from ..spec import Item, Kind, Layer, Ref, internal_tensor
from .activation import fused_activation
from .plumbing import absorbed, consumer
from .registry import Matcher, pattern


def short(values) -> int | tuple[int, ...]:
    """(2, 2) -> 2, (1, 1, 1) -> 1: Keras accepts either and the short form reads better."""
    values = tuple(int(v) for v in values)
    return values[0] if len(set(values)) == 1 else values


def pair(values) -> int | tuple[int, int]:
    """The first two of `values` (a height and a width), short where they agree."""
    return short(tuple(values)[:2])


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
    stride = None
    if kwargs["strides"] != 1 and kwargs["dilation_rate"] != 1:
        stride = _stride_of_dilated(node, kernel.shape, in_shape)
        if stride is None or node.attrs.get("T", "float32") != "float32":
            return None
        del kwargs["strides"]
    nodes, weights = [node], [m.weight("kernel", f)]
    out = with_bias_and_activation(m, node, nodes, node.output(0), filters, kwargs, weights)
    layer = m.layer(
        "Conv2D",
        nodes,
        [x],
        args=[filters, pair(kernel.shape[:2])],
        kwargs=kwargs,
        weights=weights,
        output=out,
    )
    if layer is None or stride is None:
        return layer
    # bias and activation commute with dropping positions, so the stride may come last
    layer.outputs = [internal_tensor(node.name, "dilated")]
    strided = Layer(
        kind=Kind.OPS,
        name=f"{layer.name}_strided",
        inputs=layer.outputs,
        outputs=[out],
        nodes=[],
        ops=[],
        expr=Item(Ref(0), (slice(None), *stride, slice(None))),
        note=f"the strides {tuple(node.attrs['strides'][1:3])} of the Conv2D above",
    )
    return [layer, strided]


def _stride_of_dilated(node: Node, kernel_shape, in_shape) -> tuple[slice, slice] | None:
    """A Conv2D with strides and dilations both above 1, which Keras refuses, is the dilated
    conv at stride 1 sampled every s-th position: output i of the strided conv reads the window
    at i*s - pad_s, the stride-1 conv's output j the window at j - pad_1 (pad_* the top/left
    padding TF chooses for each), so i is j = i*s + pad_1 - pad_s. With "valid" padding both
    pads are 0; with "same" they depend on the input size, which must then be known."""
    a = node.attrs
    index = []
    for i in range(2):
        k, s, d = int(kernel_shape[i]), int(a["strides"][1 + i]), int(a["dilations"][1 + i])
        reach = (k - 1) * d + 1
        size = in_shape[1 + i] if in_shape is not None else None
        if a["padding"] == "VALID":
            if size is None:
                index.append(slice(None, None, s))
                continue
            if size < reach:
                return None
            out, full, offset = (size - reach) // s + 1, size - reach + 1, 0
        else:
            if size is None:
                return None
            out, full = -(-size // s), size
            offset = (reach - 1) // 2 - max((out - 1) * s + reach - size, 0) // 2
        end = offset + (out - 1) * s + 1
        index.append(slice(offset or None, end if end < full else None, s))
    return tuple(index)


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


@consumer("Conv2DBackpropInput", 0)
def transpose_kwargs(node: Node, m: Matcher) -> dict | None:
    """Conv2DTranspose's strides/padding/output_padding for a Conv2DBackpropInput, whose
    output size is its own operand: a constant, or computed at run time from its input's size
    (`tf.shape(x)[1] * 2`, as super-resolution nets write it). Keras derives the size from the
    input instead, (in - 1) * s + k - 2 * pad + output_padding (pad = k // 2 for "same"), or
    without output_padding in * s ("same") and in * s + max(k - s, 0) ("valid"); an output
    size that differs from those by a constant is an output_padding in [0, s)."""
    sizes, f, x = node.inputs
    kernel, spatial, in_shape = m.const(f), spatial_attrs(node), m.shape(x)
    if not _kernel(kernel) or spatial is None or spatial["dilation_rate"] != 1:
        return None
    if in_shape is None or len(in_shape) != 4:
        return None
    out_shape = m.shape(node.output(0))
    vec = m.consts.shape_terms(sizes)
    if vec is None or len(vec) != 4:
        return None
    same = spatial["padding"] == "same"
    natural, padding = [], []
    for i, s in enumerate(node.attrs["strides"][1:3]):
        k, size = int(kernel.shape[i]), in_shape[1 + i]
        pad = k // 2 if same else 0
        want = out_shape[1 + i] if out_shape is not None and len(out_shape) == 4 else None
        want = vec[1 + i] if want is None else want
        if size is not None and isinstance(want, int):
            natural.append(want == (size * s if same else size * s + max(k - s, 0)))
            padding.append(want - ((size - 1) * s + k - 2 * pad))
        elif isinstance(want, Dim) and (want.tensor, want.axis, want.scale) == (x, 1 + i, s):
            natural.append(want.offset == (0 if same else max(k - s, 0)))
            padding.append(want.offset + s - k + 2 * pad)
        else:
            return None
    kwargs = dict(spatial)
    del kwargs["dilation_rate"]
    if not all(natural):
        if any(not 0 <= p < s for p, s in zip(padding, node.attrs["strides"][1:3])):
            return None
        kwargs["output_padding"] = pair(padding)
    return kwargs


@pattern("Conv2DBackpropInput")
def conv2d_transpose(node: Node, m: Matcher):
    sizes, f, x = node.inputs
    kwargs = transpose_kwargs(node, m)
    if kwargs is None:
        return None
    plumbing = absorbed(m, node)
    if plumbing is None:
        return None
    kernel = m.const(f)
    filters = kernel.shape[2]
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


@pattern("Conv3D")
def conv3d(node: Node, m: Matcher):
    """Conv3D on NDHWC input (strides and dilation not both above 1, which Keras refuses)."""
    x, f = node.inputs
    kernel, in_shape, a = m.const(f), m.shape(x), node.attrs
    if kernel is None or kernel.ndim != 5 or kernel.size == 0:
        return None
    if in_shape is not None and len(in_shape) != 5:
        return None
    strides, dilations = a.get("strides", [1] * 5), a.get("dilations", [1] * 5)
    if a.get("data_format", "NDHWC") != "NDHWC" or a.get("padding") not in ("SAME", "VALID"):
        return None
    if strides[0] != 1 or strides[4] != 1 or dilations[0] != 1 or dilations[4] != 1:
        return None
    if max(strides[1:4]) > 1 and max(dilations[1:4]) > 1:
        return None
    if in_shape is not None and in_shape[-1] and in_shape[-1] != kernel.shape[3]:
        return None  # grouped: TF's CPU kernel has none either
    filters = kernel.shape[4]
    kwargs = {
        "strides": short(strides[1:4]),
        "padding": a["padding"].lower(),
        "dilation_rate": short(dilations[1:4]),
    }
    nodes, weights = [node], [m.weight("kernel", f)]
    out = with_bias_and_activation(m, node, nodes, node.output(0), filters, kwargs, weights)
    return m.layer(
        "Conv3D",
        nodes,
        [x],
        args=[filters, short(kernel.shape[:3])],
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
