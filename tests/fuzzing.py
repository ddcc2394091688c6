"""Mutants of valid GraphDefs for the fuzz test (tests/test_fuzz.py) and the long campaign
(bench/fuzz.py). One implementation, two drivers: every choice comes from a `random.Random`,
which is hypothesis's `st.randoms()` in the test (so failures shrink) and a seeded plain
`random.Random` in the campaign (so it runs without hypothesis's overhead).

The contract checked on every mutant: graph2py converts it or raises a `Graph2PyError`;
anything else is a crash. Imports no TensorFlow: the seeds are built as protos.
"""

from __future__ import annotations

import copy
import math
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tensorboard.compat.proto import (
    attr_value_pb2,
    graph_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

from graphs import FLOAT, INT32, Builder, Dtype, Func, attr, shape_proto, tensor_proto

STRING = Dtype(types_pb2.DT_STRING)

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "examples" / "lenet.pb"

# -- seed graphs, built with tests/graphs.py ---------------------------------------------------

CONV = {"strides": [1, 1, 1, 1], "padding": "SAME", "data_format": "NHWC"}


def branchy() -> graph_pb2.GraphDef:
    """Conv+bias+relu, separable conv, FusedBatchNormV3, a residual Add, Pad, both pools,
    ConcatV2, a StridedSlice crop, global mean, Dense, Softmax."""
    b = Builder(1)
    x = b.placeholder("input", [None, 8, 7, 3])
    h = b.op("block1/conv/Conv2D", "Conv2D", x, b.weight("block1/conv/kernel", 3, 3, 3, 4), **CONV)
    h = b.op("block1/conv/BiasAdd", "BiasAdd", h, b.weight("block1/conv/bias", 4))
    h = b.op("block1/conv/Relu", "Relu", h)
    dw = b.weight("sep/depthwise_kernel", 3, 3, 4, 1)
    h = b.op("sep/separable_conv2d/depthwise", "DepthwiseConv2dNative", h, dw, **CONV)
    pw = b.weight("sep/pointwise_kernel", 1, 1, 4, 6)
    h = b.op("sep/separable_conv2d", "Conv2D", h, pw, **{**CONV, "padding": "VALID"})
    stats = [b.weight(f"bn/{k}", 6, positive=True) for k in ("gamma", "beta", "mean", "var")]
    h = b.op(
        "bn/FusedBatchNormV3",
        "FusedBatchNormV3",
        h,
        *stats,
        epsilon=0.001,
        is_training=False,
        data_format="NHWC",
    )
    h = b.op("act", "Relu6", h)
    s = b.op("short/Conv2D", "Conv2D", x, b.weight("short/kernel", 1, 1, 3, 6), **CONV)
    h = b.op("add", "AddV2", h, s)
    pads = b.const("pad/paddings", np.array([[0, 0], [1, 1], [0, 1], [0, 0]], np.int32))
    h = b.op("pad", "Pad", h, pads)
    window = {"ksize": [1, 2, 2, 1], "strides": [1, 2, 2, 1], "data_format": "NHWC"}
    mp = b.op("pool", "MaxPool", h, padding="VALID", **window)
    ap = b.op("avgpool", "AvgPool", h, padding="SAME", **window)
    h = b.op("concat", "ConcatV2", mp, ap, b.const("concat/axis", np.int32(-1)), N=2)
    begin = b.const("crop/begin", np.array([0, 1, 0, 0], np.int32))
    end = b.const("crop/end", np.array([0, 4, 4, 0], np.int32))
    step = b.const("crop/strides", np.array([1, 1, 1, 1], np.int32))
    h = b.op("crop", "StridedSlice", h, begin, end, step, T=FLOAT, begin_mask=9, end_mask=9)
    axes = b.const("gap/axes", np.array([1, 2], np.int32))
    h = b.op("gap", "Mean", h, axes, keep_dims=False)
    h = b.op("fc/MatMul", "MatMul", h, b.weight("fc/kernel", 12, 5), transpose_b=False)
    h = b.op("fc/BiasAdd", "BiasAdd", h, b.weight("fc/bias", 5))
    b.op("probs", "Softmax", h)
    return b.graph


def sequence() -> graph_pb2.GraphDef:
    """BatchMatMul as Dense with a fused swish, decomposed LayerNormalization, Reshape, MatMul,
    Rescaling, LeakyReLU, ExpandDims, Transpose (Permute), Squeeze."""
    b = Builder(2)
    x = b.placeholder("input", [None, 5, 6])
    h = b.op("proj/MatMul", "BatchMatMulV2", x, b.weight("proj/kernel", 6, 8))
    h = b.op("proj/BiasAdd", "AddV2", h, b.weight("proj/bias", 8))
    sig = b.op("proj/Sigmoid", "Sigmoid", h)
    h = b.op("proj/mul", "Mul", h, sig)
    axis = b.const("ln/axes", np.array([-1], np.int32))
    mean = b.op("ln/moments/mean", "Mean", h, axis, keep_dims=True)
    sq = b.op("ln/moments/SquaredDifference", "SquaredDifference", h, mean)
    var = b.op("ln/moments/variance", "Mean", sq, axis, keep_dims=True)
    add = b.op("ln/add", "AddV2", var, b.const("ln/epsilon", np.float32(0.001)))
    rs = b.op("ln/Rsqrt", "Rsqrt", add)
    gm = b.op("ln/mul", "Mul", rs, b.weight("ln/gamma", 8, positive=True))
    xm = b.op("ln/mul_1", "Mul", h, gm)
    neg = b.op("ln/Neg", "Neg", mean)
    mm = b.op("ln/mul_2", "Mul", neg, gm)
    ab = b.op("ln/add_1", "AddV2", mm, b.weight("ln/beta", 8))
    h = b.op("ln/add_2", "AddV2", xm, ab)
    target = b.const("flatten/shape", np.array([-1, 40], np.int32))
    h = b.op("flatten", "Reshape", h, target, Tshape=INT32)
    h = b.op("out/MatMul", "MatMul", h, b.weight("out/kernel", 40, 3))
    h = b.op("scale/mul", "Mul", h, b.const("scale/factor", np.float32(2.0)))
    h = b.op("scale/add", "AddV2", h, b.const("scale/offset", np.float32(0.5)))
    h = b.op("leaky", "LeakyRelu", h, alpha=0.1)
    h = b.op("expand", "ExpandDims", h, b.const("expand/dim", np.int32(-1)))
    h = b.op("permute", "Transpose", h, b.const("permute/perm", np.array([0, 2, 1], np.int32)))
    b.op("squeeze", "Squeeze", h, squeeze_dims=[1])
    return b.graph


def calls() -> graph_pb2.GraphDef:
    """A PartitionedCall into the function library, decomposed tf.nn batch norm, hard-swish,
    a transposed conv whose output size is computed from Shape(x), GELU through Erf, a global
    pool with keepdims, a dynamic-batch Reshape."""
    b = Builder(3)
    x = b.placeholder("input", [None, 6, 6, 2])
    fn = b.graph.library.function.add()
    fn.signature.name = "conv_fn"
    fn.signature.input_arg.add(name="inp", type=types_pb2.DT_FLOAT)
    fn.signature.input_arg.add(name="k", type=types_pb2.DT_FLOAT)
    fn.signature.output_arg.add(name="out", type=types_pb2.DT_FLOAT)
    conv = fn.node_def.add(name="conv", op="Conv2D", input=["inp", "k"])
    for key, value in {**CONV, "T": FLOAT}.items():
        conv.attr[key].CopyFrom(attr(value))
    relu = fn.node_def.add(name="relu", op="Relu", input=["conv:output:0"])
    relu.attr["T"].CopyFrom(attr(FLOAT))
    fn.ret["out"] = "relu:activations:0"
    call = b.node(
        "block/call",
        "PartitionedCall",
        [x, b.weight("block/kernel", 3, 3, 2, 4)],
        f=Func("conv_fn"),
    )
    var = b.weight("bn/moving_variance", 4, positive=True)
    add = b.op("bn/batchnorm/add", "AddV2", var, b.const("bn/batchnorm/eps", np.float32(0.001)))
    rs = b.op("bn/batchnorm/Rsqrt", "Rsqrt", add)
    s = b.op("bn/batchnorm/mul", "Mul", rs, b.weight("bn/gamma", 4, positive=True))
    xm = b.op("bn/batchnorm/mul_1", "Mul", call, s)
    mm = b.op("bn/batchnorm/mul_2", "Mul", b.weight("bn/moving_mean", 4), s)
    sub = b.op("bn/batchnorm/sub", "Sub", b.weight("bn/beta", 4), mm)
    h = b.op("bn/batchnorm/add_1", "AddV2", xm, sub)
    a = b.op("hs/add", "AddV2", h, b.const("hs/three", np.float32(3.0)))
    r = b.op("hs/Relu6", "Relu6", a)
    d = b.op("hs/mul", "Mul", r, b.const("hs/sixth", np.float32(1 / 6)))
    h = b.op("hs/mul_1", "Mul", h, d)
    shape = b.op("up/Shape", "Shape", h, T=FLOAT, out_type=INT32)
    one = b.const("up/one", np.array([1], np.int32))
    batch = b.op(
        "up/strided_slice",
        "StridedSlice",
        shape,
        b.const("up/zero", np.array([0], np.int32)),
        one,
        one,
        T=INT32,
        shrink_axis_mask=1,
    )
    sizes = b.op(
        "up/stack",
        "Pack",
        batch,
        b.const("up/h", np.int32(12)),
        b.const("up/w", np.int32(12)),
        b.const("up/c", np.int32(3)),
        T=INT32,
        N=4,
        axis=0,
    )
    kernel = b.weight("up/kernel", 3, 3, 3, 4)
    h = b.op(
        "up/conv2d_transpose",
        "Conv2DBackpropInput",
        sizes,
        kernel,
        h,
        strides=[1, 2, 2, 1],
        padding="SAME",
        data_format="NHWC",
    )
    h = b.op("up/BiasAdd", "BiasAdd", h, b.weight("up/bias", 3))
    half = b.op("gelu/mul", "Mul", h, b.const("gelu/half", np.float32(0.5)))
    inner = b.op("gelu/mul_1", "Mul", h, b.const("gelu/rsqrt2", np.float32(1 / math.sqrt(2))))
    erf = b.op("gelu/Erf", "Erf", inner)
    e = b.op("gelu/add", "AddV2", erf, b.const("gelu/one", np.float32(1.0)))
    h = b.op("gelu/mul_2", "Mul", half, e)
    axes = b.const("gap/axes", np.array([1, 2], np.int32))
    h = b.op("gap", "Mean", h, axes, keep_dims=True)
    shape = b.op("head/Shape", "Shape", h, T=FLOAT, out_type=INT32)
    batch = b.op(
        "head/strided_slice",
        "StridedSlice",
        shape,
        b.const("head/zero", np.array([0], np.int32)),
        b.const("head/one", np.array([1], np.int32)),
        b.const("head/one_1", np.array([1], np.int32)),
        T=INT32,
        shrink_axis_mask=1,
    )
    target = b.op("head/stack", "Pack", batch, b.const("head/c", np.int32(3)), T=INT32, N=2)
    h = b.op("head/Reshape", "Reshape", h, target, Tshape=INT32)
    b.op("probs", "Softmax", h)
    return b.graph


def tiny() -> graph_pb2.GraphDef:
    """Three ops: the cheapest seed, so most mutants of it reach the code generator."""
    b = Builder(4)
    x = b.placeholder("x", [None, 4])
    h = b.op("dense/MatMul", "MatMul", x, b.weight("dense/kernel", 4, 2))
    h = b.op("dense/BiasAdd", "BiasAdd", h, b.weight("dense/bias", 2))
    b.op("dense/Relu", "Relu", h)
    return b.graph


def strings() -> graph_pb2.GraphDef:
    """String ops without an op-table record (TensorFlow-only layers): their string attributes
    (a separator, a regex and its rewrite) and a string constant reach the generated code."""
    b = Builder(5)
    x = b.placeholder("text", [None], dtype=STRING)
    suffix = b.node("suffix", "Const", dtype=STRING)
    b.graph.node[-1].attr["value"].tensor.CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"-end"])
    )
    h = b.node("join", "StringJoin", [x, suffix], N=2, separator=", ")
    h = b.node("clean", "StaticRegexReplace", [h], pattern="a+", rewrite="b", replace_global=True)
    b.node("length", "StringLength", [h], unit="BYTE")
    return b.graph


def seeds() -> dict[str, graph_pb2.GraphDef]:
    """The valid graphs mutants start from; each converts as it is."""
    lenet = graph_pb2.GraphDef()
    lenet.ParseFromString(LENET.read_bytes())
    return {
        "lenet": lenet,
        "branchy": branchy(),
        "sequence": sequence(),
        "calls": calls(),
        "tiny": tiny(),
        "strings": strings(),
    }


# -- mutations ----------------------------------------------------------------------------------

# Values chosen to sit on boundaries: zero, signs, widths of int32/int64, non-finite floats.
INTS = [0, 1, -1, 2, 3, 4, 7, 255, -2, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 10**9]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf")]
STRINGS = ["", "SAME", "VALID", "EXPLICIT", "NHWC", "NCHW", "same", "x", "\n", "é", "\x00"]
HOSTILE_NAMES = [
    "",
    "class",
    "print",
    "__import__",
    "line\nbreak",
    "ünï/cødé",
    "a:1",
    "^ctrl",
    "x:y:z",
    "/",
    "a//b",
    " ",
    "input",
    "0",
    "model",
    "keras",
    "'\"; import os",
]
OPS = [
    "Conv2D",
    "DepthwiseConv2dNative",
    "Conv2DBackpropInput",
    "MatMul",
    "BatchMatMulV2",
    "BiasAdd",
    "FusedBatchNorm",
    "FusedBatchNormV3",
    "MaxPool",
    "AvgPool",
    "Mean",
    "Max",
    "ConcatV2",
    "Pad",
    "Reshape",
    "Squeeze",
    "ExpandDims",
    "Transpose",
    "StridedSlice",
    "Relu",
    "Relu6",
    "Softmax",
    "LeakyRelu",
    "Sigmoid",
    "Add",
    "AddV2",
    "AddN",
    "Mul",
    "Sub",
    "RealDiv",
    "Maximum",
    "Rsqrt",
    "Neg",
    "Erf",
    "Shape",
    "Pack",
    "Fill",
    "Range",
    "Cast",
    "GatherV2",
    "Prod",
    "Identity",
    "IdentityN",
    "Const",
    "Placeholder",
    "PartitionedCall",
    "NoOp",
    "Split",
    "Unpack",
]
DTYPES = [int(v) for v in types_pb2.DataType.values()] + [999, -1]


def _pick_node(graph, rng, op=None):
    nodes = [n for n in graph.node if op is None or n.op == op]
    return rng.choice(nodes) if nodes else None


def _some_name(graph, rng) -> str:
    if graph.node and rng.random() < 0.85:
        return rng.choice(graph.node).name
    return rng.choice(HOSTILE_NAMES + ["ghost"])


def _some_ref(graph, rng) -> str:
    """An input reference, mostly well formed, sometimes not."""
    name = _some_name(graph, rng)
    r = rng.random()
    if r < 0.5:
        return name
    if r < 0.8:
        return f"{name}:{rng.choice([0, 1, 2, 5, 7])}"
    return rng.choice(
        [f"^{name}", f"{name}:-1", f"{name}:99999999999999999999", f"{name}:a:0", ":0"]
    )


def drop_node(graph, rng):
    if graph.node:
        del graph.node[rng.randrange(len(graph.node))]


def duplicate_node(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None:
        graph.node.insert(rng.randrange(len(graph.node) + 1), copy.deepcopy(node))


def rename_node(graph, rng):
    """A hostile name, with the references to it renamed as well (a valid graph) or not."""
    node = _pick_node(graph, rng)
    if node is None:
        return
    old, new = node.name, rng.choice(HOSTILE_NAMES + [n.name for n in graph.node])
    node.name = new
    if rng.random() < 0.6:
        for other in graph.node:
            for i, ref in enumerate(other.input):
                if ref == old or ref.startswith(old + ":"):
                    other.input[i] = new + ref[len(old) :]


def rewire_input(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None and node.input:
        node.input[rng.randrange(len(node.input))] = _some_ref(graph, rng)


def add_input(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None:
        node.input.insert(rng.randrange(len(node.input) + 1), _some_ref(graph, rng))


def remove_input(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None and node.input:
        del node.input[rng.randrange(len(node.input))]


def change_op(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None:
        node.op = rng.choice(OPS + ["Bogus", ""])


def delete_attr(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None and node.attr:
        del node.attr[rng.choice(sorted(node.attr))]


def random_attr(rng) -> attr_value_pb2.AttrValue:
    """Any AttrValue kind with boundary contents."""
    a = attr_value_pb2.AttrValue()
    kind = rng.choice(["s", "i", "f", "b", "type", "shape", "tensor", "list", "func", "none"])
    if kind == "s":
        a.s = rng.choice(
            [s.encode() for s in STRINGS]
            + [b"\xff\xfe", bytes(rng.randrange(256) for _ in range(3))]
        )
    elif kind == "i":
        a.i = rng.choice(INTS)
    elif kind == "f":
        a.f = rng.choice(FLOATS)
    elif kind == "b":
        a.b = rng.random() < 0.5
    elif kind == "type":
        a.type = rng.choice(DTYPES)
    elif kind == "shape":
        a.shape.CopyFrom(random_shape(rng))
    elif kind == "tensor":
        a.tensor.CopyFrom(random_tensor(rng))
    elif kind == "list":
        n = rng.choice([0, 1, 2, 3, 4, 5])
        sub = rng.choice(["i", "f", "s", "b", "type", "shape"])
        field = getattr(a.list, sub)
        for _ in range(n):
            if sub == "i":
                field.append(rng.choice(INTS))
            elif sub == "f":
                field.append(rng.choice(FLOATS))
            elif sub == "s":
                field.append(rng.choice(STRINGS).encode())
            elif sub == "b":
                field.append(rng.random() < 0.5)
            elif sub == "type":
                field.append(rng.choice(DTYPES))
            else:
                field.add().CopyFrom(random_shape(rng))
        if n == 0:
            a.list.SetInParent()
    elif kind == "func":
        a.func.name = rng.choice(["conv_fn", "missing", ""])
    return a


def random_shape(rng) -> tensor_shape_pb2.TensorShapeProto:
    if rng.random() < 0.1:
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    rank = rng.choice([0, 1, 2, 3, 4, 5, 6])
    dims = [rng.choice([-1, -7, 0, 1, 2, 3, 4, 5, 8, 100, 2**31, 2**62]) for _ in range(rank)]
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
    )


def random_tensor(rng) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=rng.choice(DTYPES))
    proto.tensor_shape.CopyFrom(random_shape(rng))
    r = rng.random()
    if r < 0.3:
        proto.tensor_content = bytes(
            rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 8, 12, 16, 64]))
        )
    elif r < 0.5:
        proto.float_val.extend(rng.choice(FLOATS) for _ in range(rng.randrange(5)))
    elif r < 0.7:
        proto.int_val.extend(
            rng.choice(INTS[:10] + [70000, -70000]) for _ in range(rng.randrange(5))
        )
    elif r < 0.8:
        proto.half_val.extend(
            rng.choice([0, 1, 15360, 65535, 70000]) for _ in range(rng.randrange(3))
        )
    elif r < 0.9:
        proto.string_val.extend(rng.choice([b"", b"abc", b"\xff"]) for _ in range(rng.randrange(3)))
    else:
        proto.int64_val.extend(rng.choice(INTS) for _ in range(rng.randrange(4)))
    return proto


def corrupt_attr(graph, rng):
    """Replace an attribute (existing or new, by a name patterns read) with any value."""
    node = _pick_node(graph, rng)
    if node is None:
        return
    keys = sorted(node.attr) + [
        "strides",
        "padding",
        "ksize",
        "dilations",
        "data_format",
        "value",
        "dtype",
        "shape",
        "keep_dims",
        "squeeze_dims",
        "epsilon",
        "alpha",
        "transpose_b",
        "begin_mask",
        "shrink_axis_mask",
        "explicit_paddings",
        "f",
        "N",
        "num_split",
        "axis",
    ]
    node.attr[rng.choice(keys)].CopyFrom(random_attr(rng))


def tweak_list_attr(graph, rng):
    """A plausible list attribute with one entry changed or the length changed: strides of 0,
    negative dilations, three strides, explicit paddings of odd length."""
    candidates = [
        (n, k)
        for n in graph.node
        for k in sorted(n.attr)  # protobuf maps iterate in a per-process hash order
        if n.attr[k].WhichOneof("value") == "list"
    ]
    if not candidates:
        return
    node, key = rng.choice(candidates)
    values = list(node.attr[key].list.i) or [1, 1, 1, 1]
    r = rng.random()
    if r < 0.5:
        values[rng.randrange(len(values))] = rng.choice(INTS)
    elif r < 0.75:
        values.append(rng.choice(INTS))
    else:
        values = values[: rng.randrange(len(values))]
    node.attr[key].list.ClearField("i")
    node.attr[key].list.i.extend(values)


def corrupt_tensor(graph, rng):
    """Damage a constant: content length, dtype, shape, short-form values, non-finite floats."""
    consts = [n for n in graph.node if n.op == "Const" and n.attr["value"].HasField("tensor")]
    if not consts:
        return
    node = rng.choice(consts)
    t = node.attr["value"].tensor
    r = rng.randrange(9)
    if r == 0 and t.tensor_content:
        t.tensor_content = t.tensor_content[: rng.randrange(len(t.tensor_content))]
    elif r == 1:
        t.tensor_content = t.tensor_content + bytes(
            rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 8]))
        )
    elif r == 2:
        t.dtype = rng.choice(DTYPES)
    elif r == 3:
        t.tensor_shape.CopyFrom(random_shape(rng))
    elif r == 4 and t.tensor_shape.dim:
        dim = rng.choice(t.tensor_shape.dim)
        # an int64 field: doubling twice over must not overflow the mutator itself
        dim.size = rng.choice(
            [-1, -3, 0, min(dim.size + 1, 2**62), min(dim.size * 2, 2**62), 2**40]
        )
    elif r == 5:
        t.ClearField("tensor_content")
        rng.choice([t.float_val, t.int_val, t.int64_val]).extend(
            rng.choice(INTS[:9]) for _ in range(rng.choice([0, 1, 2, 100]))
        )
    elif r == 6 and t.dtype == types_pb2.DT_FLOAT and len(t.tensor_content) >= 4:
        data = bytearray(t.tensor_content)
        i = 4 * rng.randrange(len(data) // 4)
        data[i : i + 4] = struct.pack("<f", rng.choice(FLOATS))
        t.tensor_content = bytes(data)
    elif r == 7:
        node.attr["value"].CopyFrom(
            attr(np.asarray(rng.choice([np.nan, np.inf, -1.0, 0.0]), np.float32))
        )
    else:
        t.CopyFrom(random_tensor(rng))


def corrupt_placeholder(graph, rng):
    """Rank 0, rank 6, negative or huge dims, unknown rank, a missing or odd dtype."""
    node = _pick_node(graph, rng, "Placeholder")
    if node is None:
        return
    r = rng.random()
    if r < 0.6:
        node.attr["shape"].shape.CopyFrom(random_shape(rng))
    elif r < 0.8:
        node.attr["dtype"].type = rng.choice(DTYPES)
    else:
        node.attr["shape"].CopyFrom(random_attr(rng))


def corrupt_function(graph, rng):
    """The function library: drop a function, a body node, rewire a body input or a return."""
    if not graph.library.function:
        return
    fn = rng.choice(graph.library.function)
    r = rng.randrange(6)
    if r == 0:
        graph.library.ClearField("function")
    elif r == 1 and fn.node_def:
        del fn.node_def[rng.randrange(len(fn.node_def))]
    elif r == 2 and fn.node_def:
        body = rng.choice(fn.node_def)
        refs = [
            "inp",
            "k",
            "conv:output:0",
            "conv:output:9",
            "relu:activations:0",
            "nope:x:0",
            "a:b:c:d",
            "conv",
        ]
        if body.input:
            body.input[rng.randrange(len(body.input))] = rng.choice(refs)
        else:
            body.input.append(rng.choice(refs))
    elif r == 3:
        for key in list(fn.ret):
            fn.ret[key] = rng.choice(
                ["relu:activations:0", "inp", "ghost:out:0", "conv:output:3", ""]
            )
        if rng.random() < 0.3:
            fn.ClearField("ret")
    elif r == 4 and fn.node_def:
        body = rng.choice(fn.node_def)
        body.attr[rng.choice(sorted(body.attr) + ["strides", "padding"])].CopyFrom(random_attr(rng))
    else:
        args = [fn.signature.input_arg, fn.signature.output_arg][rng.randrange(2)]
        if args:
            del args[rng.randrange(len(args))]
        else:
            args.add(name="extra", type=types_pb2.DT_FLOAT)


def retune_attr(graph, rng):
    """An attribute set to another value of its own kind that TF could well hold: the graph
    stays well formed, so the change reaches shape inference and the patterns."""
    candidates = [
        (n, k) for n in graph.node for k in sorted(n.attr) if k not in ("value", "dtype", "T")
    ]
    if not candidates:
        return
    node, key = rng.choice(candidates)
    a = node.attr[key]
    kind = a.WhichOneof("value")
    if kind == "s":
        a.s = rng.choice(["SAME", "VALID", "EXPLICIT", "NHWC", "NCHW"]).encode()
    elif kind == "i":
        a.i = rng.randrange(-3, 16)
    elif kind == "f":
        a.f = rng.choice(FLOATS + [0.1, 1e-5])
    elif kind == "b":
        a.b = not a.b
    elif kind == "list" and len(a.list.i):
        values = [rng.choice([1, 1, 2, 3]) for _ in a.list.i]
        a.list.ClearField("i")
        a.list.i.extend(values)
    elif kind == "shape":
        a.shape.CopyFrom(_nearby_shape(a.shape, rng))


def _nearby_shape(shape, rng) -> tensor_shape_pb2.TensorShapeProto:
    """The shape with one dim changed, dropped or added."""
    dims = [d.size for d in shape.dim]
    r = rng.random()
    if dims and r < 0.5:
        dims[rng.randrange(len(dims))] = rng.choice([-1, 0, 1, 2, 3, 5, 9])
    elif dims and r < 0.75:
        del dims[rng.randrange(len(dims))]
    else:
        dims.insert(rng.randrange(len(dims) + 1), rng.choice([-1, 1, 2, 4]))
    return shape_proto([None if d == -1 else d for d in dims])


def retune_const(graph, rng):
    """A constant given new values of its dtype (small ints for axes, permutations and
    paddings; any float, NaN and infinity included, for weights), the same values in another
    shape of the same size, or no values at all (a zero in its shape)."""
    consts = [
        n
        for n in graph.node
        if n.op == "Const"
        and n.attr["value"].tensor.dtype in (types_pb2.DT_FLOAT, types_pb2.DT_INT32)
    ]
    if not consts:
        return
    node = rng.choice(consts)
    try:
        from codegen.load import tensor_to_numpy

        value = np.array(tensor_to_numpy(node.attr["value"].tensor))
    except ValueError:
        return
    r = rng.random()
    if r < 0.1 and value.ndim:
        shape = list(value.shape)
        shape[rng.randrange(len(shape))] = 0
        value = np.zeros(shape, value.dtype)  # empty, yet well formed
    elif r < 0.35 and value.size > 1:
        first = rng.choice([d for d in range(1, value.size + 1) if value.size % d == 0])
        value = value.reshape(first, -1) if rng.random() < 0.5 else value.reshape(-1)
    elif value.dtype == np.int32:
        value = np.array([rng.randrange(-3, 6) for _ in range(value.size)], np.int32).reshape(
            value.shape
        )
    else:
        flat = value.reshape(-1).copy()
        for _ in range(rng.choice([1, 2, flat.size])):
            if flat.size:
                flat[rng.randrange(flat.size)] = rng.choice(FLOATS)
        value = flat.reshape(value.shape)
    node.attr["value"].tensor.CopyFrom(tensor_proto(value))


def reshape_placeholder(graph, rng):
    node = _pick_node(graph, rng, "Placeholder")
    if node is not None:
        node.attr["shape"].shape.CopyFrom(_nearby_shape(node.attr["shape"].shape, rng))


# -- hostile text in every text field ------------------------------------------------------------

MARK = "PWNED"  # what a payload that ran would create in the working directory
# Ways out of a string literal, a comment or a docstring, each of which would run the mkdir.
PAYLOADS = [
    f'p"""\n__import__("os").mkdir("{MARK}")\n"""\\N{{x}}'
    f" coding=utf-7 +AAo-__import__(+ACI-os+ACI-).mkdir(+ACI-{MARK}+ACI-)+AAo-#'''",
    f'"""; __import__("os").mkdir("{MARK}"); """',
    f"'''; __import__('os').mkdir('{MARK}'); '''",
    f'"); __import__("os").mkdir("{MARK}"); ("',
    f"'); __import__('os').mkdir('{MARK}'); ('",
    f'x\n__import__("os").mkdir("{MARK}")\n#',
    f'x\r__import__("os").mkdir("{MARK}")\r#',
    f'x\u2028__import__("os").mkdir("{MARK}")\u2029#',
    f'x\x0c__import__("os").mkdir("{MARK}")\x85#',
    f"# -*- coding: utf-7 -*-\n+AAo-__import__(+ACI-os+ACI-).mkdir(+ACI-{MARK}+ACI-)+AAo-",
    f'{{__import__("os").mkdir("{MARK}")}}',
    f'\\\n__import__("os").mkdir("{MARK}")',
]
# Fragments: quotes, backslashes, every kind of line break and control, terminal escape
# sequences, encoding declarations, the characters of a Python format string.
TEXT_PIECES = [
    '"',
    "'",
    '"""',
    "'''",
    "\\",
    "\\N{x}",
    "\\x",
    "\\u12",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x00",
    "\x0b",
    "\x0c",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u202e",
    "\ufeff",
    "\x1b[31m",
    "\x1b[2J\x1b[H",
    "\x1b]0;graph2py: error: spoofed\x07",
    "\x1b]8;;https://example.invalid\x1b\\link\x1b]8;;\x1b\\",
    "\ngraph2py: error: spoofed",
    "# coding: utf-7",
    "# -*- coding: latin-1 -*-",
    "+AAo-",
    "{",
    "}}",
    "%s",
    "`",
    "$x",
    "é",
    "Ω",
    "😀",
    "/",
    ":",
    "^",
    " ",
    ".",
    "-",
    "0",
    "class",
    "__init__",
]


def hostile_text(rng, base: str = "") -> str:
    """Text that tries to break out of wherever graph2py writes it: a payload that would create
    MARK if it ever ran, or one to three fragments, around, before or after `base` (a name the
    graph already had, so that a rename keeps most of it readable)."""
    if rng.random() < 0.3:
        text = rng.choice(PAYLOADS)
    else:
        text = "".join(rng.choice(TEXT_PIECES) for _ in range(rng.choice([1, 1, 2, 3])))
    r = rng.random()
    if base and r < 0.4:
        return base + text
    if base and r < 0.55:
        return text + base
    if base and r < 0.75:
        cut = rng.randrange(len(base) + 1)
        return base[:cut] + text + base[cut:]
    return text


def hostile_bytes(rng, base: str = "") -> bytes:
    """hostile_text as UTF-8, now and then with bytes that are no UTF-8 at all."""
    data = hostile_text(rng, base).encode()
    if rng.random() < 0.1:
        data += rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
    return data


def _split_ref(ref: str) -> tuple[str, str, str]:
    """(control mark, node name, ":port" or ":out:port" tail) of an input reference."""
    mark = "^" if ref.startswith("^") else ""
    name, colon, tail = ref[len(mark) :].partition(":")
    return mark, name, colon + tail


def rename_everywhere(nodes, old: str, new: str, scope: bool = False) -> None:
    """Rename node `old` (with `scope`, every node under `old/` too) and every reference to it
    among `nodes`, so that the graph stays valid and the new name reaches the generated code."""

    def renamed(name: str) -> str:
        if name == old:
            return new
        if scope and name.startswith(old + "/"):
            return new + name[len(old) :]
        return name

    for node in nodes:
        node.name = renamed(node.name)
        for i, ref in enumerate(node.input):
            mark, name, tail = _split_ref(ref)
            if renamed(name) != name:
                node.input[i] = mark + renamed(name) + tail


def text_node_name(graph, rng):
    """A node (or a whole scope) renamed to hostile text, with its references: a valid graph."""
    node = _pick_node(graph, rng)
    if node is None:
        return
    old = node.name
    scope = "/" in old and rng.random() < 0.4
    if scope:
        old = old.rsplit("/", 1)[0]
    rename_everywhere(graph.node, old, hostile_text(rng, old), scope=scope)
    return "text_node_name" + (" (scope)" if scope else "")


def text_op(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None:
        node.op = hostile_text(rng, node.op if rng.random() < 0.5 else "")


def text_input(graph, rng):
    node = _pick_node(graph, rng)
    if node is None:
        return
    ref = hostile_text(rng, _some_name(graph, rng) if rng.random() < 0.5 else "")
    ref += rng.choice(["", "", ":0", ":1", ":out:0"])
    if rng.random() < 0.1:
        ref = "^" + ref
    if node.input and rng.random() < 0.7:
        node.input[rng.randrange(len(node.input))] = ref
    else:
        node.input.append(ref)


def text_device(graph, rng):
    node = _pick_node(graph, rng)
    if node is not None:
        node.device = hostile_text(rng, rng.choice(["", "/device:CPU:0", "/job:w/task:0"]))


def text_attr_key(graph, rng):
    """An attribute under a hostile key: a copy of one the node has, or any value."""
    node = _pick_node(graph, rng)
    if node is None:
        return
    keys = sorted(node.attr)
    old = rng.choice(keys) if keys else ""
    value = attr_value_pb2.AttrValue()
    value.CopyFrom(node.attr[old] if keys and rng.random() < 0.7 else random_attr(rng))
    if keys and rng.random() < 0.5:
        del node.attr[old]
    node.attr[hostile_text(rng, old)].CopyFrom(value)


def text_string_attr(graph, rng):
    """A string attribute (or a list of strings) set to hostile bytes: one the node has
    (padding, data_format, a regex, a separator), or a new one (`_class`, a label)."""
    node = _pick_node(graph, rng)
    if node is None:
        return
    strings = [
        k
        for k in sorted(node.attr)
        if node.attr[k].WhichOneof("value") == "s" or len(node.attr[k].list.s)
    ]
    if strings and rng.random() < 0.8:
        key = rng.choice(strings)
        a = node.attr[key]
        if a.WhichOneof("value") == "s":
            a.s = hostile_bytes(rng, a.s.decode(errors="replace"))
        else:
            i = rng.randrange(len(a.list.s))
            a.list.s[i] = hostile_bytes(rng, a.list.s[i].decode(errors="replace"))
    elif rng.random() < 0.5:
        node.attr["_class"].list.s.append(b"loc:@" + hostile_bytes(rng, node.name))
    else:
        node.attr[rng.choice(["label", "message", "container", "shared_name"])].s = hostile_bytes(
            rng
        )


def text_string_tensor(graph, rng):
    """A string constant holding hostile bytes: an existing one, or a new one fed to a
    StringJoin when the graph has one (else left unused)."""
    consts = [
        n
        for n in graph.node
        if n.op == "Const" and n.attr["value"].tensor.dtype == types_pb2.DT_STRING
    ]
    if consts and rng.random() < 0.7:
        t = rng.choice(consts).attr["value"].tensor
    else:
        node = graph.node.add(name=hostile_text(rng, "text_const"), op="Const")
        node.attr["dtype"].type = types_pb2.DT_STRING
        t = node.attr["value"].tensor
        t.dtype = types_pb2.DT_STRING
        joins = [n for n in graph.node if n.op == "StringJoin"]
        if joins:
            join = rng.choice(joins)
            join.input.append(node.name)
            join.attr["N"].i = sum(not ref.startswith("^") for ref in join.input)
    t.ClearField("string_val")
    count = rng.choice([1, 1, 2, 3])
    if count > 1 or rng.random() < 0.3:
        t.tensor_shape.CopyFrom(shape_proto([count]))
    else:
        t.ClearField("tensor_shape")
    t.string_val.extend(hostile_bytes(rng) for _ in range(count))


def _function_references(graph):
    """Every AttrValue naming a function: `f`, `then_branch`, `body`, lists of functions, at the
    top level and in function bodies."""
    nodes = list(graph.node) + [n for fn in graph.library.function for n in fn.node_def]
    for node in nodes:
        for key in sorted(node.attr):
            a = node.attr[key]
            if a.WhichOneof("value") == "func":
                yield a.func
            for func in a.list.func:
                yield func


def text_function_name(graph, rng):
    """A library function renamed to hostile text, with (mostly) its callers."""
    if not graph.library.function:
        return
    fn = rng.choice(graph.library.function)
    old, new = fn.signature.name, hostile_text(rng, fn.signature.name)
    fn.signature.name = new
    if rng.random() < 0.8:
        for func in _function_references(graph):
            if func.name == old:
                func.name = new


def text_function_arg(graph, rng):
    """A function's input or output argument renamed, its uses in the body (or its `ret` key)
    renamed too: a valid function with a hostile argument name."""
    if not graph.library.function:
        return
    fn = rng.choice(graph.library.function)
    args = list(fn.signature.input_arg) + list(fn.signature.output_arg)
    if not args:
        return
    arg = rng.choice(args)
    old, new = arg.name, hostile_text(rng, arg.name)
    arg.name = new
    if old in fn.ret:
        fn.ret[new] = fn.ret[old]
        del fn.ret[old]
    else:
        rename_everywhere(fn.node_def, old, new)


def text_function_node(graph, rng):
    """A node of a function body renamed, with its uses in the body and in `ret`."""
    bodies = [fn for fn in graph.library.function if fn.node_def]
    if not bodies:
        return
    fn = rng.choice(bodies)
    node = rng.choice(fn.node_def)
    old, new = node.name, hostile_text(rng, node.name)
    rename_everywhere(fn.node_def, old, new)
    for key in list(fn.ret):
        mark, name, tail = _split_ref(fn.ret[key])
        if name == old:
            fn.ret[key] = new + tail


TEXT_CHANNELS = [
    text_node_name,
    text_node_name,
    text_op,
    text_input,
    text_device,
    text_attr_key,
    text_string_attr,
    text_string_attr,
    text_string_tensor,
    text_function_name,
    text_function_arg,
    text_function_node,
]


def hostile_string(graph, rng):
    """Hostile text in one of the graph's text fields (TEXT_CHANNELS)."""
    channel = rng.choice(TEXT_CHANNELS)
    return channel(graph, rng) or channel.__name__


# -- sizes at the extremes ---------------------------------------------------------------------

HUGE = [2**62, 2**63 - 1, 2**31, 2**31 - 1, 10**9, 65_537, 65_536, 2**40]


def _extreme_dims(rng) -> list[int]:
    r = rng.random()
    if r < 0.3:
        return [1] * rng.choice([253, 254, 255, 256, 1000])
    if r < 0.5:
        return [rng.choice([0, -1, 1, 2**62, 2**31, 2**63 - 1]) for _ in range(rng.randrange(1, 6))]
    return [rng.choice([1, 2, 1024, 2**16, 2**20, 2**31]) for _ in range(rng.randrange(1, 5))]


def extreme_size(graph, rng):
    """Sizes at the extremes: ranks 254 and 255, dims of 0, -1 and 2^62, short-form constants
    claiming billions of elements (one, or many each under a per-tensor cap), output counts
    (num_split, N, num_partitions) of a billion, Fill/Range/Tile/BroadcastTo bombs."""
    r = rng.randrange(8)
    nodes = [n for n in graph.node if n.op not in ("Const",)] or list(graph.node)
    target = rng.choice(nodes).name if nodes else "ghost"
    if r == 0:
        node = _pick_node(graph, rng, "Placeholder")
        if node is not None:
            node.attr["shape"].shape.CopyFrom(shape_proto(_extreme_dims(rng)))
        return "extreme_size (placeholder shape)"
    if r == 1:
        count = rng.choice([1, 1, 8, 64])
        dims = rng.choice([[2**20, 2**12], [2**31], [4096, 4096, 4], [1024, 1024], [2**62]])
        for i in range(count):
            node = graph.node.add(name=f"huge_short_form_{i}", op="Const")
            node.attr["dtype"].type = types_pb2.DT_FLOAT
            t = node.attr["value"].tensor
            t.dtype = types_pb2.DT_FLOAT
            t.tensor_shape.CopyFrom(shape_proto(dims))
            t.float_val.append(1.5)
        if graph.node and rng.random() < 0.5:
            consumer = rng.choice(graph.node)
            consumer.input.append(f"huge_short_form_{count - 1}")
        return f"extreme_size ({count} short-form constants of {dims})"
    if r == 2:
        node = graph.node.add(name="split_axis", op="Const")
        node.attr["dtype"].type = types_pb2.DT_INT32
        node.attr["value"].tensor.CopyFrom(tensor_proto(np.int32(0)))
        split = graph.node.add(name="huge_split", op=rng.choice(["Split", "Unpack", "SplitV"]))
        split.input.extend(["split_axis", target] if split.op == "Split" else [target])
        split.attr["T"].type = types_pb2.DT_FLOAT
        split.attr["num_split" if split.op != "Unpack" else "num"].i = rng.choice(HUGE + [0, -1])
        return f"extreme_size ({split.op} count)"
    if r == 3:
        counted = [n for n in graph.node if "N" in n.attr or n.op in ("ConcatV2", "Pack", "AddN")]
        node = rng.choice(counted) if counted else _pick_node(graph, rng)
        if node is not None:
            node.attr["N"].i = rng.choice(HUGE + [0, -1, 2**63 - 1])
        return "extreme_size (N)"
    if r == 4:
        parts = graph.node.add(name="parts", op="Const")
        parts.attr["dtype"].type = types_pb2.DT_INT32
        parts.attr["value"].tensor.CopyFrom(tensor_proto(np.zeros([1], np.int32)))
        node = graph.node.add(name="partition", op="DynamicPartition")
        node.input.extend([target, "parts"])
        node.attr["T"].type = types_pb2.DT_FLOAT
        node.attr["num_partitions"].i = rng.choice(HUGE + [0, -1])
        return "extreme_size (DynamicPartition)"
    if r == 5:
        dims = np.array(_extreme_dims(rng)[:8], np.int64)
        shape = graph.node.add(name="bomb_shape", op="Const")
        shape.attr["dtype"].type = types_pb2.DT_INT64
        shape.attr["value"].tensor.CopyFrom(tensor_proto(dims))
        kind = rng.choice(["Fill", "Tile", "BroadcastTo", "Reshape", "Range", "Zeros"])
        value = graph.node.add(name="bomb_value", op="Const")
        value.attr["dtype"].type = types_pb2.DT_FLOAT
        value.attr["value"].tensor.CopyFrom(
            tensor_proto(np.ones([1] * min(len(dims), 8), np.float32))
        )
        node = graph.node.add(name="bomb", op=kind)
        if kind == "Fill":
            node.input.extend(["bomb_shape", "bomb_value"])
            node.attr["index_type"].type = types_pb2.DT_INT64
        elif kind == "Range":
            limit, delta = rng.choice([(1e30, 1.0), (1.0, 1e-30), (1e12, 1.0), (-1.0, 1e-9)])
            value.attr["value"].tensor.CopyFrom(tensor_proto(np.float32(0.0)))
            for name, number in (("bomb_limit", limit), ("bomb_delta", delta)):
                const = graph.node.add(name=name, op="Const")
                const.attr["dtype"].type = types_pb2.DT_FLOAT
                const.attr["value"].tensor.CopyFrom(tensor_proto(np.float32(number)))
            node.input.extend(["bomb_value", "bomb_limit", "bomb_delta"])
            node.attr["Tidx"].type = types_pb2.DT_FLOAT
        elif kind == "Zeros":
            node.op = "ZerosLike"
            node.input.append("bomb_value")
        else:
            node.input.extend(["bomb_value", "bomb_shape"])
            node.attr[
                "Tmultiples" if kind == "Tile" else "Tshape" if kind == "Reshape" else "Tidx"
            ].type = types_pb2.DT_INT64
        node.attr["T"].type = types_pb2.DT_FLOAT
        if graph.node and rng.random() < 0.7:
            rng.choice(graph.node[:-3] or graph.node).input.append("bomb")
        return f"extreme_size ({kind} of {dims.tolist()[:6]})"
    if r == 6:
        consts = [n for n in graph.node if n.op == "Const"]
        if consts:
            t = rng.choice(consts).attr["value"].tensor
            t.tensor_shape.CopyFrom(shape_proto(_extreme_dims(rng)))
        return "extreme_size (constant shape)"
    node = _pick_node(graph, rng)
    if node is not None:
        shapes = node.attr["_output_shapes"].list.shape
        shapes.add().CopyFrom(shape_proto(_extreme_dims(rng)))
    return "extreme_size (_output_shapes)"


MUTATIONS = [
    retune_attr,
    retune_const,
    reshape_placeholder,
    drop_node,
    duplicate_node,
    rename_node,
    rewire_input,
    add_input,
    remove_input,
    change_op,
    delete_attr,
    corrupt_attr,
    tweak_list_attr,
    corrupt_tensor,
    corrupt_placeholder,
    corrupt_function,
    hostile_string,
    hostile_string,
    hostile_string,
    extreme_size,
]


def flip_bytes(data: bytes, rng) -> bytes:
    data = bytearray(data)
    for _ in range(rng.choice([1, 2, 4, 16])):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def splice_bytes(data: bytes, rng) -> bytes:
    """Truncate, cut a span out, or insert junk."""
    if not data:
        return data
    i = rng.randrange(len(data))
    r = rng.random()
    if r < 0.4:
        return data[:i]
    j = min(len(data), i + rng.choice([1, 2, 8, 64]))
    if r < 0.7:
        return data[:i] + data[j:]
    return data[:i] + bytes(rng.randrange(256) for _ in range(rng.choice([1, 3, 9]))) + data[i:]


# Larger graphs are not written as text: protobuf's text parser spends 30 ms on LeNet's weights,
# and the parser's error handling is exercised as well on a small graph.
TEXT_LIMIT = 64_000


@dataclass
class Mutant:
    data: bytes
    suffix: str  # ".pb" or ".pbtxt"
    steps: list[str]  # what was done, for a readable failure report
    inputs: list[str] | None = None  # --inputs specs, e.g. "pool1:0[1,4,4,6]"
    outputs: list[str] | None = None  # --outputs specs


def mutate(seed: graph_pb2.GraphDef, rng: random.Random) -> Mutant:
    """One to four structural mutations, then sometimes damage to the serialized bytes (binary,
    or text for small graphs)."""
    graph = graph_pb2.GraphDef()
    graph.CopyFrom(seed)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        fn = rng.choice(MUTATIONS)
        steps.append(fn(graph, rng) or fn.__name__)
    data = graph.SerializeToString(deterministic=True)
    text = rng.random() < 0.15 and len(data) < TEXT_LIMIT
    if text:
        data = text_format.MessageToString(graph).encode()
    r = rng.random()
    if r < 0.01:
        data = data[: rng.choice([0, 1])]
        steps.append(f"{len(data)} bytes")
    elif r < 0.12:
        data = flip_bytes(data, rng)
        steps.append("flip_bytes")
    elif r < 0.2:
        data = splice_bytes(data, rng)
        steps.append("splice_bytes")
    mutant = Mutant(data, ".pbtxt" if text else ".pb", steps)
    if rng.random() < 0.1:
        mutant.inputs = tensor_specs(graph, rng, shapes=True)
        steps.append(f"--inputs {','.join(mutant.inputs)}")
    if rng.random() < 0.1:
        mutant.outputs = tensor_specs(graph, rng, shapes=False)
        steps.append(f"--outputs {','.join(mutant.outputs)}")
    return mutant


def tensor_specs(graph, rng, shapes: bool) -> list[str]:
    """One or two tensors named as on the command line: interior tensors too, other ports,
    with a shape override now and then (of the wrong rank, or with a zero)."""
    specs = []
    for _ in range(rng.choice([1, 1, 2])):
        spec = f"{_some_name(graph, rng)}:{rng.choice([0, 0, 0, 1])}"
        if shapes and rng.random() < 0.5:
            dims = rng.choice([[1, 8, 7, 3], [-1, 4], [2, 5, 6], [], [0, 3], [-1, 6, 6, 2, 1]])
            spec += "[" + ",".join(map(str, dims)) + "]"
        specs.append(spec)
    return specs


# -- running one case -------------------------------------------------------------------------


def convert_mutant(mutant: Mutant, workdir: Path, files=("model.py", "load_weights.py")):
    """Write the mutant to `workdir` and convert it in-process. Returns the rendered files;
    raises whatever graph2py raises."""
    from codegen.convert import convert
    from codegen.options import Options
    from codegen.passes.prune import TensorSpec

    path = workdir / f"mutant{mutant.suffix}"
    path.write_bytes(mutant.data)
    inputs, outputs = (
        [TensorSpec.parse(text) for text in specs] if specs else None
        for specs in (mutant.inputs, mutant.outputs)
    )
    _, rendered = convert(path, Options(inputs=inputs, outputs=outputs), files=files)
    for name, source in rendered.items():
        compile(source, name, "exec")  # generated code that does not compile is a crash too
    return rendered


def category(err: BaseException) -> str:
    """A rejection's first line with the specifics (paths, names, numbers) blurred, so that
    a campaign's tally groups by kind of problem."""
    import re

    line = str(err).splitlines()[0] if str(err) else type(err).__name__
    line = re.sub(r"^\S*mutant\.pb(txt)?: ", "", line)
    line = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "'…'", line)
    line = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?\b", "N", line)
    line = re.sub(r"\[[^\]]*\]|\([^)]*\)", "[…]", line)
    return f"{type(err).__name__}: {line[:90]}"
