"""The op table (codegen/optable) against itself, TensorFlow's registry and numpy.

Every record agrees with tf_ops.json; every op graph2py handles anywhere has a record; every op
with a keras.ops spelling has a shape rule and a fold kernel (or says why not); and each fold
kernel gives TensorFlow's values in TensorFlow's dtype on a small array. TensorFlow is not
imported: tests/test_op_table.py proves the same ops against TensorFlow itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from tensorboard.compat.proto import node_def_pb2

from codegen import opdefs, optable
from codegen.graph import Graph, Node, decode_node
from codegen.optable.numeric import run_kernel
from codegen.optable.signature import AS_INPUTS, INT, LIST, ONE
from codegen.passes import rnn, shapes
from codegen.passes.fold import Constants
from codegen.passes.prune import IDENTITY_OPS
from codegen.patterns import FALLBACKS, PATTERNS
from codegen.supported import load_all

# Ops handled by passes of their own rather than by a record: control flow.
CONTROL_FLOW = {"While", "StatelessWhile"}

# -- the records against each other and TensorFlow's registry ----------------------------------


def test_every_record_is_a_tensorflow_op_with_its_inputs_and_outputs():
    for op, info in optable.RECORDS.items():
        definition = opdefs.get(op)
        assert definition is not None, op
        plain = sum(1 for _, length in definition.inputs if not length)
        lists = [length for _, length in definition.inputs if length]
        low, high = info.signature.inputs
        if lists:
            assert high is None and low >= plain, op
        else:
            assert (low, high) == (plain, plain), op
        assert len(info.signature.outputs) == len(definition.outputs), op
        for (key, how), (_, length) in zip(info.signature.outputs, definition.outputs):
            assert (how == ONE) == (not length) and (key or "") == length, op
            assert how in (ONE, INT, LIST, AS_INPUTS), op


# Checked attributes tf_ops.json does not list: the type of PlaceholderWithDefault's input
# (the table leaves out attributes TensorFlow infers from the inputs), and AvgPool's
# explicit_paddings, which TensorFlow's AvgPool lacks but the pooling shape rule reads for both
# pools (a graph that carries one anyway has it checked).
UNLISTED = {("PlaceholderWithDefault", "dtype"), ("AvgPool", "explicit_paddings")}


def test_checked_attributes_are_the_ops_own():
    """A misspelt attribute would never be checked (and never be missing)."""
    for op, info in optable.RECORDS.items():
        names = {name for name, _, _ in opdefs.get(op).attrs}
        names |= set(opdefs.get(op).allowed_values)  # inferred dtypes (T) among them
        names |= {key for unlisted, key in UNLISTED if unlisted == op}
        assert set(info.signature.attrs) <= names, (op, set(info.signature.attrs) - names)


def test_output_counts_follow_tensorflow():
    cases = [
        ("Split", 2, {"num_split": 3}, 3),
        ("Split", 2, {"num_split": [1, 2]}, None),  # malformed: no count
        ("Unpack", 1, {"num": 0}, 0),
        ("IdentityN", 3, {}, 3),
        ("PartitionedCall", 2, {"Tout": ["float32"]}, 1),
        ("PartitionedCall", 2, {"Tout": 2}, None),
        ("FusedBatchNormV3", 5, {}, 6),
        ("TopKV2", 2, {}, 2),
        ("NoOp", 0, {}, 0),
        ("Tan", 1, {}, 1),
    ]
    for op, inputs, attrs, count in cases:
        node = Node("n", op, [f"x:{i}" for i in range(inputs)], attrs)
        assert optable.output_count(node) == count, op
    assert optable.output_count(Node("n", "NoSuchOp", [])) is None


def test_every_op_handled_anywhere_has_a_record():
    load_all()
    handled = set(PATTERNS) | set(FALLBACKS) | set(shapes.RULES) | rnn.STEP_OPS | IDENTITY_OPS
    handled = {op for op in handled if op != "*" and not op.startswith("_")} - CONTROL_FLOW
    assert sorted(handled - set(optable.RECORDS)) == []


def test_keras_ops_spellings_have_a_shape_rule_and_a_fold_kernel():
    lacking = [
        op
        for op, info in optable.RECORDS.items()
        if info.keras and (info.shape is None or info.fold_kernel is None) and not info.why
    ]
    assert lacking == []


def test_families_fit_their_signatures():
    arity = {optable.UNARY: (1, 1), optable.BINARY: (2, 2), optable.REDUCTION: (2, 2)}
    for op, info in optable.RECORDS.items():
        if info.family in arity:
            assert info.signature.inputs == arity[info.family], op
            assert info.shape is not None, op
        if info.recipe:
            assert info.fold_kernel is not None and hasattr(np, info.recipe), op
        if info.family == optable.NCHW:
            assert "data_format" in info.signature.attrs, op


def test_pass_rules_do_not_shadow_the_table():
    assert not set(shapes.RULES) & {op for op, i in optable.RECORDS.items() if i.shape}
    with pytest.raises(ValueError, match="has a shape rule"):
        shapes.rule("Tan")(lambda node, ins, c: None)


def test_a_record_is_checked_when_decoded():
    proto = node_def_pb2.NodeDef(name="t", op="Tan", input=["x", "y"])
    _, problems = decode_node(proto, "g")
    assert problems == ["g: node 't': Tan takes 1 input, not 2"]
    proto = node_def_pb2.NodeDef(name="c", op="ConcatV2", input=["x"])
    assert decode_node(proto, "g")[1] == ["g: node 'c': ConcatV2 takes at least 2 inputs, not 1"]


# -- the fold kernels the table gained, on small arrays -----------------------------------------

F = np.array([-0.9, -0.25, 0.0, 0.5, 0.8], np.float32)
WIDE = np.array([-7.0, -1.5, 0.0, 2.0, 7.0], np.float32)
SPECIAL = np.array([np.nan, np.inf, -np.inf, 1.0, 0.0], np.float32)
I = np.array([-9, -2, 0, 3, 100], np.int32)
SHIFT = np.array([0, 1, 2, 3, 4], np.int32)
ERF = np.array([math.erf(float(x)) for x in F])


def _f32(values):
    return np.asarray(values, np.float32)


def _softmax(x):
    e = np.exp(x.astype(np.float64) - x.max())
    return e / e.sum()


NEW_KERNELS = [
    # (op, inputs, attrs, expected: values in the dtype TensorFlow gives)
    ("Acos", [F], {}, _f32(np.arccos(F.astype(np.float64)))),
    ("Acosh", [1 + F * F], {}, _f32(np.arccosh((1 + F * F).astype(np.float64)))),
    ("Asin", [F], {}, _f32(np.arcsin(F.astype(np.float64)))),
    ("Asinh", [WIDE], {}, _f32(np.arcsinh(WIDE.astype(np.float64)))),
    ("Atan", [WIDE], {}, _f32(np.arctan(WIDE.astype(np.float64)))),
    ("Atanh", [F], {}, _f32(np.arctanh(F.astype(np.float64)))),
    ("Cos", [WIDE], {}, _f32(np.cos(WIDE.astype(np.float64)))),
    ("Cosh", [F], {}, _f32(np.cosh(F.astype(np.float64)))),
    ("Sin", [WIDE], {}, _f32(np.sin(WIDE.astype(np.float64)))),
    ("Sinh", [F], {}, _f32(np.sinh(F.astype(np.float64)))),
    ("Tan", [F], {}, _f32(np.tan(F.astype(np.float64)))),
    ("Elu", [WIDE], {}, _f32([math.expm1(-7), math.expm1(-1.5), 0, 2, 7])),
    (
        "Selu",
        [WIDE],
        {},
        _f32(
            1.0507009873554805
            * np.array(
                [
                    1.6732632423543772 * math.expm1(-7),
                    1.6732632423543772 * math.expm1(-1.5),
                    0,
                    2,
                    7,
                ]
            )
        ),
    ),  # noqa: E501
    ("Relu", [WIDE], {}, _f32([0, 0, 0, 2, 7])),
    ("Relu", [I], {}, np.array([0, 0, 0, 3, 100], np.int32)),
    ("Relu6", [WIDE], {}, _f32([0, 0, 0, 2, 6])),
    ("Softplus", [WIDE], {}, _f32([math.log1p(math.exp(float(x))) for x in WIDE])),
    ("Softsign", [WIDE], {}, _f32([float(x) / (1 + abs(float(x))) for x in WIDE])),
    ("Softmax", [WIDE], {}, _f32(_softmax(WIDE))),
    ("Softmax", [np.stack([F, WIDE])], {}, _f32(np.stack([_softmax(F), _softmax(WIDE)]))),
    ("LogSoftmax", [WIDE], {}, _f32(np.log(_softmax(WIDE)))),
    ("Erf", [F], {}, _f32(ERF)),
    ("Erfc", [F], {}, _f32([math.erfc(float(x)) for x in F])),
    ("Erfinv", [_f32(ERF)], {}, F),
    ("Erfinv", [_f32([-1, 1, 1.5])], {}, _f32([-np.inf, np.inf, np.nan])),
    ("Expm1", [F], {}, _f32([math.expm1(float(x)) for x in F])),
    ("Log1p", [F], {}, _f32([math.log1p(float(x)) for x in F])),
    ("Inv", [WIDE[WIDE != 0]], {}, _f32(1 / WIDE[WIDE != 0].astype(np.float64))),
    ("Invert", [I], {}, np.array([8, 1, -1, -4, -101], np.int32)),
    ("IsFinite", [SPECIAL], {}, np.array([False, False, False, True, True])),
    ("IsInf", [SPECIAL], {}, np.array([False, True, True, False, False])),
    ("IsNan", [SPECIAL], {}, np.array([True, False, False, False, False])),
    ("LogicalNot", [np.array([True, False])], {}, np.array([False, True])),
    ("Rint", [_f32([-2.5, -1.5, -0.5, 0.5, 1.5])], {}, _f32([-2, -2, -0, 0, 2])),
    ("Round", [_f32([-2.5, -1.5, -0.5, 0.5, 1.5])], {}, _f32([-2, -2, -0, 0, 2])),
    ("Round", [I], {}, I),
    ("Atan2", [F, WIDE], {}, _f32(np.arctan2(F.astype(np.float64), WIDE))),
    ("BitwiseAnd", [I, SHIFT], {}, I & SHIFT),
    ("BitwiseOr", [I, SHIFT], {}, I | SHIFT),
    ("BitwiseXor", [I, SHIFT], {}, I ^ SHIFT),
    ("LeftShift", [I, SHIFT], {}, np.array([-9, -4, 0, 24, 1600], np.int32)),
    ("RightShift", [I, SHIFT], {}, np.array([-9, -1, 0, 0, 6], np.int32)),
    ("DivNoNan", [F, _f32([0, 2, 0, 4, 0])], {}, _f32([0, -0.125, 0, 0.125, 0])),
    ("FloorMod", [WIDE, _f32([2, 2, 2, -3, 3])], {}, _f32([1, 0.5, 0, -1, 1])),
    ("FloorMod", [I, np.int32(4)], {}, np.array([3, 2, 0, 3, 0], np.int32)),
    ("Pow", [_f32([2, 3, 4]), _f32([3, 0.5, -1])], {}, _f32([8, math.sqrt(3), 0.25])),
    ("Pow", [np.int32(3), np.int32(4)], {}, np.int32(81)),
    ("Equal", [F, _f32(0)], {}, np.array([False, False, True, False, False])),
    ("NotEqual", [F, _f32(0)], {}, np.array([True, True, False, True, True])),
    ("Greater", [F, _f32(0)], {}, np.array([False, False, False, True, True])),
    ("GreaterEqual", [F, _f32(0)], {}, np.array([False, False, True, True, True])),
    ("Less", [F, _f32(0)], {}, np.array([True, True, False, False, False])),
    ("LessEqual", [F, _f32(0)], {}, np.array([True, True, True, False, False])),
    (
        "LogicalAnd",
        [np.array([True, True, False]), np.array(True)],
        {},
        np.array([True, True, False]),
    ),  # noqa: E501
    (
        "LogicalOr",
        [np.array([True, False]), np.array([False, False])],
        {},
        np.array([True, False]),
    ),  # noqa: E501
    ("All", [np.array([[True, False], [True, True]]), np.int32(1)], {}, np.array([False, True])),
    (
        "Any",
        [np.array([[True, False], [False, False]]), np.int32(1)],
        {"keep_dims": True},
        np.array([[True], [False]]),
    ),  # noqa: E501
]


@pytest.mark.parametrize(
    "op, inputs, attrs, expected",
    NEW_KERNELS,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(NEW_KERNELS)],
)
def test_new_fold_kernel(op, inputs, attrs, expected):
    kernel = optable.fold_kernels()[op]
    node = Node("n", op, [f"x:{i}" for i in range(len(inputs))], attrs)
    got = run_kernel(kernel, node, [np.asarray(x) for x in inputs])
    assert got is not None, op
    assert got.dtype == expected.dtype, (op, got.dtype)
    assert got.shape == expected.shape, op
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)


def test_float_kernels_keep_float16_and_float64():
    """No promotion to float64 and no demotion either: the value's float type is the op's."""
    for op, info in optable.RECORDS.items():
        if info.family != optable.UNARY or info.fold_kernel is None:
            continue
        for dtype in (np.float16, np.float64):
            x = F.astype(dtype)
            got = run_kernel(info.fold_kernel, Node("n", op, ["x:0"]), [x])
            if got is None or op in ("IsFinite", "IsInf", "IsNan", "LogicalNot", "Cast"):
                continue
            assert got.dtype == dtype, (op, dtype, got.dtype)


def test_kernels_refuse_what_numpy_cannot_do():
    kernels = optable.fold_kernels()
    node = Node("n", "Softmax", ["x:0"])
    assert run_kernel(kernels["Softmax"], node, [np.float32(1)]) is None  # no last axis
    node = Node("n", "Erf", ["x:0"])
    assert run_kernel(kernels["Erf"], node, [np.array(["a"], object)]) is None
    node = Node("n", "Pow", ["x:0", "y:0"])
    assert run_kernel(kernels["Pow"], node, [np.int32(2), np.int32(-1)]) is None


# -- shape rules: patterns after these ops see shapes ------------------------------------------


@pytest.mark.parametrize(
    "op",
    sorted(
        op
        for op, info in optable.RECORDS.items()
        if info.family in (optable.UNARY, optable.BINARY) and info.keras
    ),
)
def test_element_wise_ops_have_their_operands_shape(op):
    info = optable.get(op)
    placeholder = {"dtype": "float32", "shape": (None, 4, 5)}
    nodes = [Node("x", "Placeholder", [], placeholder)]
    if info.family == optable.BINARY:
        nodes.append(Node("y", "Placeholder", [], {"dtype": "float32", "shape": (5,)}))
    nodes.append(Node("op", op, [n.output() for n in nodes]))
    graph = Graph(nodes)
    assert shapes.infer_shapes(graph, Constants(graph))["op:0"] == (None, 4, 5)


def _const(name, value):
    return Node(
        name, "Const", [], {"dtype": np.asarray(value).dtype.name, "value": np.asarray(value)}
    )


def _shape_of(nodes, tensor="op:0"):
    graph = Graph(nodes)
    return shapes.infer_shapes(graph, Constants(graph))[tensor]


X = Node("x", "Placeholder", [], {"dtype": "float32", "shape": (None, 4, 5)})
K = Node("k", "Placeholder", [], {"dtype": "int32", "shape": ()})
STRING = Node("s", "Placeholder", [], {"dtype": "string", "shape": ()})


@pytest.mark.parametrize(
    "nodes, expected",
    [
        # operands known only at run time leave the rank (TensorFlow-only layers build from it)
        ([X, K, Node("op", "ExpandDims", ["x:0", "k:0"])], (None, None, None, None)),
        ([X, K, Node("op", "Sum", ["x:0", "k:0"])], (None, None)),
        ([X, K, Node("op", "Mean", ["x:0", "k:0"], {"keep_dims": True})], (None, None, None)),
        (
            [
                X,
                K,
                Node("b", "Pack", ["k:0", "k:0", "k:0"], {"N": 3, "T": "int32"}),
                _const("e", np.int32([0, 9, 9])),
                _const("st", np.int32([1, 1, 1])),
                Node(
                    "op",
                    "StridedSlice",
                    ["x:0", "b:0", "e:0", "st:0"],
                    {"begin_mask": 5, "end_mask": 5},
                ),
            ],
            (None, None, 5),
        ),
        ([X, _const("d", np.int32([3, 2])), Node("op", "Fill", ["d:0", "k:0"]), K], (3, 2)),
        (
            [X, Node("sh", "Shape", ["x:0"]), Node("op", "BroadcastTo", ["k:0", "sh:0"]), K],
            (None, 4, 5),
        ),
        (
            [
                Node("m", "Placeholder", [], {"dtype": "float32", "shape": (None, 4, 6)}),
                _const("kk", np.int32([-1, 2])),
                _const("p", np.float32(0)),
                Node("op", "MatrixDiagPartV3", ["m:0", "kk:0", "p:0"]),
            ],
            (None, 4, 4),
        ),
        (
            [
                X,
                _const("kk", np.int32(1)),
                _const("n", np.int32(-1)),
                _const("p", np.float32(0)),
                Node("op", "MatrixDiagV3", ["x:0", "kk:0", "n:0", "n:0", "p:0"]),
            ],
            (None, 4, 6, 6),
        ),
        # the speech-commands front end: 1 s at 16 kHz, 30 ms windows every 10 ms
        (
            [
                STRING,
                Node("op", "DecodeWav", ["s:0"], {"desired_channels": 1, "desired_samples": 16000}),
            ],
            (16000, 1),
        ),
        (
            [
                STRING,
                Node("w", "DecodeWav", ["s:0"], {"desired_channels": 1, "desired_samples": 16000}),
                Node("op", "AudioSpectrogram", ["w:0"], {"window_size": 480, "stride": 160}),
            ],
            (1, 98, 257),
        ),
    ],
    ids=[
        "ExpandDims",
        "Sum",
        "Mean_keep_dims",
        "StridedSlice",
        "Fill",
        "BroadcastTo",
        "MatrixDiagPartV3",
        "MatrixDiagV3",
        "DecodeWav",
        "AudioSpectrogram",
    ],
)
def test_shapes_of_run_time_operands(nodes, expected):
    """Forward shape rules for operands computed at run time (axes, bounds, shapes): what a
    TensorFlow-only layer states to Keras, as TensorFlow's own shape functions give them."""
    assert _shape_of(nodes) == expected
