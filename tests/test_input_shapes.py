"""Inputs declared without a shape, and the settings that turn training code into inference
code, without TensorFlow: a small graph in text format goes in, the inputs' inferred shapes
(passes/shapes.input_shapes, through prune) or the pruned graph come out.

A consumer fixes what it can of an input (a Conv2D's filter its rank and channels, a MatMul's
weights its features, a DepthToSpace its depth from what follows) and leaves the rest free, so
that one model serves every image size; nothing fixing the rank is an error naming the input
and its consumer.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from codegen.errors import UsageError
from codegen.passes.fold import Constants
from codegen.passes.prune import TensorSpec, apply_sets, prune
from codegen.passes.shapes import infer_shapes, undecided_rank
from graphs import BOOL, FLOAT, INT32, Shape, const, describe, graph_of, int_const, op

UNKNOWN = op("x", "Placeholder", dtype=FLOAT, shape=Shape(None))


def inferred(text: str, inputs=("x",)) -> dict:
    """The input shapes prune settles on for `text` with `inputs` named in --inputs."""
    pruned = prune(graph_of(text), [TensorSpec.parse(t) for t in inputs], None)
    return pruned.input_shapes


def test_a_conv_fixes_rank_and_channels_and_leaves_the_image_size_free():
    text = (
        UNKNOWN
        + const("k", np.zeros((3, 3, 3, 8)))
        + op("conv", "Conv2D", "x", "k", strides=[1, 1, 1, 1], padding="SAME")
        + const("b", np.zeros(8))
        + op("bias", "BiasAdd", "conv", "b")
        + op("act", "Tanh", "bias")
        + op("up", "DepthToSpace", "act", block_size=2)
    )
    assert inferred(text) == {"x:0": (None, None, None, 3)}
    graph = graph_of(text)
    shapes = infer_shapes(graph, Constants(graph), {"x:0": (None, None, None, 3)})
    assert shapes["up:0"] == (None, None, None, 2)


def test_an_nchw_conv_fixes_the_second_dimension():
    text = (
        UNKNOWN
        + const("k", np.zeros((3, 3, 5, 8)))
        + op("conv", "Conv2D", "x", "k", strides=[1, 1, 1, 1], padding="VALID", data_format="NCHW")
    )
    assert inferred(text) == {"x:0": (None, 5, None, None)}


def test_a_matmul_fixes_the_features_through_element_wise_ops():
    """x * 0.5 (a scalar: the product has x's shape), then a MatMul with 12 x 5 weights."""
    text = (
        UNKNOWN
        + const("half", 0.5, shape=())
        + op("scaled", "Mul", "x", "half")
        + const("w", np.zeros((12, 5)))
        + op("mm", "MatMul", "scaled", "w")
    )
    assert inferred(text) == {"x:0": (None, 12)}


def test_what_follows_fixes_what_the_consumer_alone_does_not():
    """A DepthToSpace alone fixes only the rank; the conv after it fixes its output's depth,
    and so the input's (4 x 2 x 2)."""
    text = (
        UNKNOWN
        + op("up", "DepthToSpace", "x", block_size=2)
        + const("k", np.zeros((1, 1, 4, 2)))
        + op("conv", "Conv2D", "up", "k", strides=[1, 1, 1, 1], padding="SAME")
    )
    assert inferred(text) == {"x:0": (None, None, None, 16)}


def test_squeeze_concat_and_transpose_carry_the_shape_back():
    text = (
        UNKNOWN
        + op("sq", "Squeeze", "x", squeeze_dims=[1])
        + op("y", "Placeholder", dtype=FLOAT, shape=Shape((None, 6)))
        + op("axis", "Const", dtype=INT32, value=np.array(1, np.int32))
        + op("joined", "ConcatV2", "sq", "y", "axis", N=2)
        + const("w", np.zeros((10, 3)))
        + op("mm", "MatMul", "joined", "w")
    )
    assert inferred(text, ("x", "y")) == {"x:0": (None, 1, None)}
    # without the MatMul, the other piece alone fixes the rank and the size off the axis
    alone = text.split('node { name: "w"')[0]
    assert inferred(alone, ("x", "y")) == {"x:0": (None, 1, None)}
    transposed = (
        UNKNOWN
        + int_const("perm", [0, 2, 1])
        + op("t", "Transpose", "x", "perm")
        + const("w", np.zeros((7, 3)))
        + op("mm", "BatchMatMulV2", "t", "w")
    )
    # a batched matmul fixes nothing of its operands' rank: only the Transpose's permutation
    assert inferred(transposed) == {"x:0": (None, None, None)}


def test_a_declared_shape_is_kept_and_a_given_one_wins():
    text = (
        op("x", "Placeholder", dtype=FLOAT, shape=Shape((None, None, None, None)))
        + const("k", np.zeros((3, 3, 3, 8)))
        + op("conv", "Conv2D", "x", "k", strides=[1, 1, 1, 1], padding="VALID")
    )
    assert inferred(text) == {"x:0": (None, None, None, 3)}
    assert inferred(text, ("x:0[2,32,32,3]",)) == {"x:0": (2, 32, 32, 3)}


def test_nothing_fixing_the_rank_names_the_input_and_its_consumer():
    text = UNKNOWN + int_const("target", [-1, 4]) + op("r", "Reshape", "x", "target")
    pruned = prune(graph_of(text), [TensorSpec.parse("x")], None)
    assert pruned.input_shapes == {}
    assert undecided_rank(pruned.graph, "x:0") == (
        "input 'x' has no static rank; its consumer 'r' (Reshape) does not fix it: give its "
        "shape, e.g. --inputs 'x:0[-1,224,224,3]'"
    )


ELEMENTS = (
    'attr { key: "output_types" value { list { type: DT_FLOAT } } } '
    'attr { key: "output_shapes" value { list { shape { unknown_rank: true } } } }'
)


def test_a_dataset_iterator_output_named_as_input_is_inferred():
    """The frozen graph's input is an IteratorGetNext of unknown shape (tf.data)."""
    text = (
        op("iterator", "IteratorV2", attrs=ELEMENTS)
        + op("images", "IteratorGetNext", "iterator", attrs=ELEMENTS)
        + const("k", np.zeros((5, 5, 1, 4)))
        + op("conv", "Conv2D", "images", "k", strides=[1, 1, 1, 1], padding="SAME")
    )
    pruned = prune(graph_of(text), [TensorSpec.parse("images:0")], None)
    assert [n.op for n in pruned.graph] == ["Placeholder", "Const", "Conv2D"]
    assert pruned.input_shapes == {"images:0": (None, None, None, 1)}


# -- a shape computed with tf.shape ---------------------------------------------------------------

DECONV = (
    op("x", "Placeholder", dtype=FLOAT, shape=Shape((None, None, None, 4)))
    + op("shape", "Shape", "x", out_type=INT32)
    + "".join(int_const(n, v) for n, v in [("b0", [0]), ("b1", [1]), ("b2", [2]), ("b3", [3])])
    + int_const("one", [1])
    + op("batch", "StridedSlice", "shape", "b0", "b1", "one", shrink_axis_mask=1, Index=INT32)
    + op("h", "StridedSlice", "shape", "b1", "b2", "one", shrink_axis_mask=1, Index=INT32)
    + op("w", "StridedSlice", "shape", "b2", "b3", "one", shrink_axis_mask=1, Index=INT32)
    + op("two", "Const", dtype=INT32, value=np.array(2, np.int32))
    + op("eight", "Const", dtype=INT32, value=np.array(8, np.int32))
    + op("h2", "Mul", "h", "two")
    + op("w2", "Mul", "w", "two")
    + op("sizes", "Pack", "batch", "h2", "w2", "eight", N=4, axis=0)
    + const("k", np.zeros((4, 4, 8, 4)))
    + op("up", "Conv2DBackpropInput", "sizes", "k", "x", strides=[1, 2, 2, 1], padding="SAME")
)


def test_a_transposed_conv_sized_from_tf_shape_has_a_rank_and_channels():
    graph = graph_of(DECONV)
    consts = Constants(graph)
    shapes = infer_shapes(graph, consts)
    assert shapes["up:0"] == (None, None, None, 8)


# -- --set and the settings it resolves -----------------------------------------------------------

KNOBS = textwrap.dedent("""
    node { name: "is_train" op: "Placeholder" attr { key: "dtype" value { type: DT_BOOL } }
           attr { key: "shape" value { shape { } } } }
    node { name: "keep_prob" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }
           attr { key: "shape" value { shape { unknown_rank: true } } } }
    node { name: "steps" op: "Placeholder" attr { key: "dtype" value { type: DT_INT32 } }
           attr { key: "shape" value { shape { dim { size: 2 } } } } }
    """)


def test_set_makes_constants_of_the_placeholders_dtype_and_shape():
    graph, inputs = apply_sets(
        graph_of(KNOBS),
        (("is_train", "False"), ("keep_prob", "0.75"), ("steps:0", "3")),
        [TensorSpec.parse("is_train"), TensorSpec.parse("x")],
    )
    values = {n.name: n.attrs["value"] for n in graph}
    assert values["is_train"].dtype == np.bool_ and values["is_train"].shape == ()
    assert not values["is_train"]
    assert values["keep_prob"].dtype == np.float32 and float(values["keep_prob"]) == 0.75
    assert values["steps"].tolist() == [3, 3] and values["steps"].dtype == np.int32
    assert [str(s) for s in inputs] == ["x:0"]  # a set placeholder is fed no more


@pytest.mark.parametrize(
    "sets, problem",
    [
        ((("is_train", "2"),), "--set is_train=2: a bool placeholder takes true or false"),
        ((("steps", "1.5"),), "--set steps=1.5: a int32 placeholder takes a whole number"),
        ((("steps", "1e10"),), "--set steps=1e10: a int32 placeholder takes a whole number"),
        (
            (("steps", "9999999999"),),
            "--set steps=9999999999: 9999999999 is out of the range of int32",
        ),
        ((("nothing", "1"),), "--set nothing: no placeholder named 'nothing' in the graph"),
        (
            (("keep_prob:1", "1"),),
            "--set keep_prob:1: no placeholder named 'keep_prob:1' in the graph",
        ),
    ],
)
def test_set_refuses_what_the_placeholder_cannot_hold(sets, problem):
    with pytest.raises(UsageError) as err:
        apply_sets(graph_of(KNOBS), sets, None)
    assert err.value.problems == [problem]


def dropout(keep_prob: float, tf1: bool) -> str:
    """`tf.nn.dropout(x, keep_prob)` as TF 2's compat.v1 writes it (a random mask compared
    with the rate, a SelectV2), or as TF 1 wrote it (floor(keep_prob + uniform), a Mul)."""
    text = (
        op("x", "Placeholder", dtype=FLOAT, shape=Shape((None, 8)))
        + op("keep_prob", "Const", dtype=FLOAT, value=np.array(keep_prob, np.float32))
        + const("one", 1.0, shape=())
        + op("relu", "Relu", "x")
        + op("shape", "Shape", "relu", out_type=INT32)
        + op("uniform", "RandomUniform", "shape", dtype=FLOAT, T=INT32)
    )
    if tf1:
        return text + (
            op("noise", "AddV2", "keep_prob", "uniform")
            + op("binary", "Floor", "noise")
            + op("scaled", "RealDiv", "relu", "keep_prob")
            + op("out", "Mul", "scaled", "binary")
        )
    return text + (
        op("rate", "Sub", "one", "keep_prob")
        + op("kept", "Sub", "one", "rate")
        + op("scaled", "RealDiv", "relu", "kept")
        + op("mask", "GreaterEqual", "uniform", "rate")
        + const("zero", 0.0, shape=())
        + op("out", "SelectV2", "mask", "scaled", "zero")
    )


@pytest.mark.parametrize("tf1", [False, True], ids=["tf2-compat", "tf1"])
def test_dropout_with_keep_prob_one_is_no_op(tf1):
    pruned = prune(graph_of(dropout(1.0, tf1)), None, [TensorSpec.parse("out")])
    assert describe(pruned.graph) == "x = Placeholder()\nrelu = Relu(x)\n"
    assert pruned.outputs == ["relu:0"]


@pytest.mark.parametrize("tf1", [False, True], ids=["tf2-compat", "tf1"])
def test_dropout_that_drops_stays(tf1):
    pruned = prune(graph_of(dropout(0.5, tf1)), None, [TensorSpec.parse("out")])
    assert "RandomUniform" in [n.op for n in pruned.graph]


def test_a_select_on_a_set_switch_takes_its_branch():
    text = (
        op("x", "Placeholder", dtype=FLOAT, shape=Shape((None, 4)))
        + op("is_train", "Placeholder", dtype=BOOL, shape=Shape(()))
        + op("train", "Relu", "x")
        + op("infer", "Tanh", "x")
        + op("out", "Select", "is_train", "train", "infer")
    )
    graph, inputs = apply_sets(graph_of(text), (("is_train", "false"),), None)
    pruned = prune(graph, inputs, [TensorSpec.parse("out")])
    assert describe(pruned.graph) == "x = Placeholder()\ninfer = Tanh(x)\n"


def test_an_input_that_feeds_no_output_stays_with_a_warning():
    text = (
        op("x", "Placeholder", dtype=FLOAT, shape=Shape((None, 4)))
        + op("mask", "Placeholder", dtype=FLOAT, shape=Shape((None, 4)))
        + op("out", "Relu", "x")
    )
    pruned = prune(graph_of(text), [TensorSpec.parse("x"), TensorSpec.parse("mask")], None)
    assert pruned.inputs == ["x:0", "mask:0"]
    assert [n.name for n in pruned.graph] == ["x", "mask", "out"]
    assert pruned.warnings == ["input tensor 'mask:0' does not feed the outputs"]


def test_token_ids_get_their_rank_from_what_reads_the_embeddings():
    """ids (declared without a shape) -> embedding lookup -> a Conv1D written as ExpandDims and
    Conv2D: batch and time stay free, the rank is 2."""
    text = (
        op("ids", "Placeholder", dtype=INT32, shape=Shape(None))
        + const("table", np.zeros((50, 8)))
        + op("axis", "Const", dtype=INT32, value=np.array(0, np.int32))
        + op("embedded", "GatherV2", "table", "ids", "axis")
        + op("one", "Const", dtype=INT32, value=np.array(1, np.int32))
        + op("rows", "ExpandDims", "embedded", "one")
        + const("k", np.zeros((1, 3, 8, 4)))
        + op("conv", "Conv2D", "rows", "k", strides=[1, 1, 1, 1], padding="SAME")
    )
    assert inferred(text, ("ids",)) == {"ids:0": (None, None)}


def test_a_reduction_and_a_slice_fix_the_rank():
    """A mean over axes 1 and 2 into a (?, 3) result: rank 4, channels 3 (a global pool). A
    strided slice's begin has one entry per dimension."""
    text = (
        UNKNOWN
        + int_const("axes", [1, 2])
        + op("mean", "Mean", "x", "axes")
        + const("w", np.zeros((3, 2)))
        + op("mm", "MatMul", "mean", "w")
    )
    assert inferred(text) == {"x:0": (None, None, None, 3)}
    sliced = (
        UNKNOWN
        + int_const("begin", [0, 1, 0])
        + int_const("end", [0, 3, 0])
        + int_const("strides", [1, 1, 1])
        + op("s", "StridedSlice", "x", "begin", "end", "strides", begin_mask=5, end_mask=5)
    )
    assert inferred(sliced) == {"x:0": (None, None, None)}


def test_a_squeeze_naming_an_axis_twice_fixes_nothing():
    """Found by the fuzzer (exit 70): squeeze_dims [1, 1] counted twice ran past the output's
    dimensions. TensorFlow refuses the squeeze at run time; the backward rule says nothing."""
    text = (
        UNKNOWN
        + op("sq", "Squeeze", "x", squeeze_dims=[1, 1])
        + const("w", np.zeros((4, 3)))
        + op("mm", "MatMul", "sq", "w")
    )
    pruned = prune(graph_of(text), [TensorSpec.parse("x:0[2,1,4]")], None)
    assert pruned.input_shapes == {"x:0": (2, 1, 4)}
    assert inferred(text) == {}  # nothing fixed: the error comes where a shape is needed
