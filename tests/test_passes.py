"""Each graph pass on its own, before and after (LibCST's assertCodemod, for graphs): a small
graph written out in text format goes in, and the graph that comes out is compared with a
literal, one node per line (`name = Op(inputs) attr=value`, see graphs.describe), or its
values with numpy's. No TensorFlow, no code generation.

The passes are called as codegen/passes/ defines them; graphs are decoded by graphs.graph_of
(the converter's own decoding) and recipes are read through `recipe_text` only, so that a
change of those APIs is one edit here.
"""

from __future__ import annotations

import textwrap
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from codegen.budget import ConstantBudgetError
from codegen.errors import UnsupportedError, UsageError
from codegen.passes.control import functionalize_frames, resolve_control_flow
from codegen.passes.fold import Constants
from codegen.passes.inline import inline_functions
from codegen.passes.layout import channels_last
from codegen.passes.prune import TensorSpec, bypass_defaults, prune
from codegen.passes.rnn import lift_recurrent
from codegen.passes.shapes import infer_shapes
from codegen.recipes import Operand, Read, Step, Ufunc
from graphs import (
    BOOL,
    FLOAT,
    INT32,
    Builder,
    Func,
    Shape,
    const,
    describe,
    graph_of,
    int_const,
    nodes_of,
    op,
    parse,
    placeholder,
)

CASES = Path(__file__).resolve().parent / "cases"


def assert_graph(nodes, expected: str, attrs=()) -> None:
    """The nodes, described one per line, are exactly `expected` (indentation removed)."""
    assert describe(nodes, attrs) == textwrap.dedent(expected).lstrip("\n")


def recipe_text(recipe) -> str:
    """A weight recipe (codegen/recipes.py) as one line: `transpose(read(k), (1, 0))`. The only
    place these tests look inside a recipe."""
    match recipe:
        case None:
            return "None"
        case Read(node):
            return f"read({node})"
        case Operand(ref):
            return f"input({ref!r})"
        case Ufunc(name, args):  # Ufunc("multiply", (a, b)) reads multiply(a, b)
            return f"{name}({', '.join(_part(a) for a in args)})"
    parts = [getattr(recipe, f.name) for f in fields(recipe)]
    return f"{type(recipe).__name__.lower()}({', '.join(_part(p) for p in parts)})"


def _part(part) -> str:
    return recipe_text(part) if isinstance(part, Step) else repr(part)


def value(consts: Constants, tensor: str):
    found = consts.value(tensor)
    return None if found is None else found.tolist()


# -- inline.inline_functions --------------------------------------------------------------------


def test_inline_splices_the_body_under_the_call():
    """A call's body is named `<call>/<node>`; readers of the call read the body's result."""
    b = Builder()
    x = b.placeholder("x", [None, 3])
    fn = b.function("scale_fn", {"v": FLOAT}, {"out": FLOAT})
    mul = fn.op("mul", "Mul", "v", fn.const("two", np.float32(2.0)))
    fn.op("Identity", "Identity", f"{mul}:z:0")
    fn.ret["out"] = "Identity:output:0"
    call = b.node(
        "block/call", "PartitionedCall", [x], Tin=[FLOAT], Tout=[FLOAT], f=Func("scale_fn")
    )
    b.op("relu", "Relu", call)
    before = graph_of(b.graph)
    assert_graph(
        before,
        """
        x = Placeholder()
        block/call = PartitionedCall(x)
        relu = Relu(block/call)
        """,
    )
    assert_graph(
        inline_functions(before),
        """
        x = Placeholder()
        block/call/two = Const()
        block/call/mul = Mul(x, block/call/two)
        block/call/Identity = Identity(block/call/mul)
        relu = Relu(block/call/Identity)
        """,
    )


def test_inline_nested_calls_clashing_names_and_unread_results():
    """A call inside a body is inlined in turn; a body node whose name the graph already has
    (TF names a cond's output `cond/Identity`) gets `_1`; what only an unread result needs
    (a branch's intermediate, returned for the gradient) is dropped."""
    b = Builder()
    x = b.placeholder("x", [None, 3])
    inner = b.function("inner_fn", {"a": FLOAT}, {"out": FLOAT})
    inner.op("Relu", "Relu", "a")
    inner.ret["out"] = "Relu:activations:0"
    outer = b.function("outer_fn", {"a": FLOAT}, {"y": FLOAT, "aux": FLOAT})
    outer.op("neg", "Neg", "a")
    outer.node(
        "call", "PartitionedCall", ["neg:y:0"], Tin=[FLOAT], Tout=[FLOAT], f=Func("inner_fn")
    )
    outer.op("Identity", "Identity", "call:output:0")
    outer.op("sq", "Square", "a")
    outer.ret["y"] = "Identity:output:0"
    outer.ret["aux"] = "sq:y:0"
    b.node(
        "cond", "StatefulPartitionedCall", [x], Tin=[FLOAT], Tout=[FLOAT, FLOAT], f=Func("outer_fn")
    )
    b.op("cond/Identity", "Identity", "cond")
    assert_graph(
        inline_functions(graph_of(b.graph)),
        """
        x = Placeholder()
        cond/neg = Neg(x)
        cond/call/Relu = Relu(cond/neg)
        cond/Identity_1 = Identity(cond/call/Relu)
        cond/Identity = Identity(cond/Identity_1)
        """,
    )


def test_inline_leaves_a_graph_without_calls_alone():
    graph = graph_of(placeholder("x") + op("r", "Relu", "x"))
    assert inline_functions(graph) is graph


# -- control.resolve_control_flow -----------------------------------------------------------------

# TF1 tf.cond(pred, lambda: x * x, lambda: -x): Switch sends x to output 1 (true) or 0 (false).
COND = """
node { name: "cond/Switch" op: "Switch" input: "x" input: "PRED" }
node { name: "cond/mul" op: "Mul" input: "cond/Switch:1" input: "cond/Switch:1" }
node { name: "cond/neg" op: "Neg" input: "cond/Switch" }
node { name: "cond/Merge" op: "Merge" input: "cond/neg" input: "cond/mul" }
node { name: "out" op: "Relu" input: "cond/Merge" }
"""


def test_control_switch_merge_on_a_default_is_resolved():
    """`is_training` (a PlaceholderWithDefault, default False) decides the cond: the false side
    stays, the Switch, the Merge, the true side and the setting itself go."""
    text = (
        placeholder("x", (-1, 3))
        + op("is_training/input", "Const", dtype=BOOL, value=np.array(False))
        + op(
            "is_training",
            "PlaceholderWithDefault",
            "is_training/input",
            dtype=BOOL,
            shape=Shape(()),
        )
        + COND.replace("PRED", "is_training")
    )
    assert_graph(
        resolve_control_flow(graph_of(text)),
        """
        x = Placeholder()
        cond/neg = Neg(x)
        cond/Merge/value_index = Const()
        out = Relu(cond/neg)
        """,
    )


def test_control_switch_merge_on_data_becomes_a_select():
    text = (
        placeholder("x", (-1, 3))
        + int_const("axes", [0, 1])
        + op("Sum", "Sum", "x", "axes")
        + const("zero", 0.0, shape=())
        + op("pred", "Greater", "Sum", "zero")
        + COND.replace("PRED", "pred")
    )
    assert_graph(
        resolve_control_flow(graph_of(text)),
        """
        x = Placeholder()
        axes = Const()
        Sum = Sum(x, axes)
        zero = Const()
        pred = Greater(Sum, zero)
        cond/mul = Mul(x, x)
        cond/neg = Neg(x)
        cond/Merge = SelectV2(pred, cond/mul, cond/neg)
        out = Relu(cond/Merge)
        """,
    )


def _if_graph(flag: bool | None):
    """x -> If(cond, then: Relu, else: Neg) -> Sigmoid; cond a constant, or sum(x) > 0."""
    b = Builder()
    x = b.placeholder("x", [None, 3])
    then = b.function("then_fn", {"h": FLOAT}, {"out": FLOAT})
    then.op("Relu", "Relu", "h")
    then.ret["out"] = "Relu:activations:0"
    other = b.function("else_fn", {"h": FLOAT}, {"out": FLOAT})
    other.op("Neg", "Neg", "h")
    other.ret["out"] = "Neg:y:0"
    if flag is None:
        total = b.op("Sum", "Sum", x, b.const("axes", np.array([0, 1], np.int32)), Tidx=INT32)
        cond = b.op("pred", "Greater", total, b.const("zero", np.float32(0)))
    else:
        cond = b.const("flag", np.bool_(flag))
    branches = {"then_branch": Func("then_fn"), "else_branch": Func("else_fn")}
    b.node("cond", "If", [cond, x], Tcond=BOOL, Tin=[FLOAT], Tout=[FLOAT], **branches)
    b.op("out", "Sigmoid", "cond")
    return graph_of(b.graph)


@pytest.mark.parametrize(
    "flag, expected",
    [
        (True, "x = Placeholder()\ncond/Relu = Relu(x)\nout = Sigmoid(cond/Relu)\n"),
        (False, "x = Placeholder()\ncond/Neg = Neg(x)\nout = Sigmoid(cond/Neg)\n"),
    ],
)
def test_control_if_on_a_constant_calls_its_branch(flag, expected):
    assert_graph(resolve_control_flow(_if_graph(flag)), expected)


def test_control_if_on_data_computes_both_branches_and_selects():
    assert_graph(
        resolve_control_flow(_if_graph(None)),
        """
        x = Placeholder()
        axes = Const()
        Sum = Sum(x, axes)
        zero = Const()
        pred = Greater(Sum, zero)
        cond/then/Relu = Relu(x)
        cond/else/Neg = Neg(x)
        cond = SelectV2(pred, cond/then/Relu, cond/else/Neg)
        out = Sigmoid(cond)
        """,
    )


# -- control.functionalize_frames -----------------------------------------------------------------

# TF1 tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 0.5), (0, x)), lowered.
WHILE = (
    placeholder("x", (-1, 3))
    + op("Const", "Const", dtype=INT32, value=np.array(0, np.int32))
    + op("while/Enter", "Enter", "Const", T=INT32, frame_name="while/while_context")
    + op("while/Enter_1", "Enter", "x", T=FLOAT, frame_name="while/while_context")
    + op("while/Merge", "Merge", "while/Enter", "while/NextIteration")
    + op("while/Merge_1", "Merge", "while/Enter_1", "while/NextIteration_1")
    + op("while/Less/y", "Const", "^while/Merge", dtype=INT32, value=np.array(3, np.int32))
    + op("while/Less", "Less", "while/Merge", "while/Less/y")
    + op("while/LoopCond", "LoopCond", "while/Less")
    + op("while/Switch", "Switch", "while/Merge", "while/LoopCond")
    + op("while/Switch_1", "Switch", "while/Merge_1", "while/LoopCond")
    + op("while/Identity", "Identity", "while/Switch:1")
    + op("while/Identity_1", "Identity", "while/Switch_1:1")
    + op("while/add/y", "Const", "^while/Identity", dtype=INT32, value=np.array(1, np.int32))
    + op("while/add", "AddV2", "while/Identity", "while/add/y")
    + op("while/mul/y", "Const", "^while/Identity", dtype=FLOAT, value=np.array(0.5, np.float32))
    + op("while/mul", "Mul", "while/Identity_1", "while/mul/y")
    + op("while/NextIteration", "NextIteration", "while/add")
    + op("while/NextIteration_1", "NextIteration", "while/mul")
    + op("while/Exit", "Exit", "while/Switch")
    + op("while/Exit_1", "Exit", "while/Switch_1")
    + op("out", "Relu", "while/Exit_1")
)


def test_frames_a_while_frame_becomes_one_while_node():
    """The frame's nodes become the While's condition and body (`_frame`); its Exit is the
    While's output of that loop variable."""
    nodes, _ = nodes_of(WHILE)
    after = functionalize_frames(nodes, "graph", parse(WHILE))
    assert_graph(
        after,
        """
        x = Placeholder()
        Const = Const()
        out = Relu(while:1)
        while = While(Const, x) T=['int32', 'float32']
        """,
        attrs=["T"],
    )
    frame = after[-1].attrs["_frame"]
    assert_graph(
        sorted(frame["nodes"], key=lambda n: n.name),
        """
        while/Identity = Identity(while/Switch:1)
        while/Identity_1 = Identity(while/Switch_1:1)
        while/Less = Less(while/Merge, while/Less/y)
        while/Less/y = Const()
        while/add = AddV2(while/Identity, while/add/y)
        while/add/y = Const()
        while/mul = Mul(while/Identity_1, while/mul/y)
        while/mul/y = Const()
        """,
    )
    assert frame["cond"] == "while/Less:0"
    assert frame["results"] == ["while/add:0", "while/mul:0"]
    assert frame["args"] == {
        "while/Merge:0": 0,
        "while/Switch:1": 0,
        "while/Merge_1:0": 1,
        "while/Switch_1:1": 1,
    }


def test_frames_keep_the_control_edges_of_tf1_conditionals():
    """A TF1 cond's constant branch hangs on its pivot by a control edge only; decoding drops
    control edges, so they are kept as the `_control_inputs` attribute for the deadness
    analysis of resolve_control_flow. A graph without frames keeps its nodes."""
    text = (
        placeholder("x", (-1, 3))
        + op("pred", "Const", dtype=BOOL, value=np.array(True))
        + op("cond/Switch", "Switch", "pred", "pred")
        + op("cond/switch_t", "Identity", "cond/Switch:1")
        + op("cond/Const", "Const", "^cond/switch_t", dtype=FLOAT, value=np.array(0.5, np.float32))
        + op("cond/Merge", "Merge", "cond/Const", "x")
    )
    nodes, _ = nodes_of(text)
    after = functionalize_frames(nodes, "graph", parse(text))
    assert [n.name for n in after] == [n.name for n in nodes]
    assert {n.name: n.attrs["_control_inputs"] for n in after if "_control_inputs" in n.attrs} == {
        "cond/Const": ["cond/switch_t"]
    }


def test_frames_a_frame_that_is_no_plain_loop_is_reported():
    """Without its LoopCond the frame is no loop graph2py can read: one line names it."""
    text = WHILE.replace('op: "LoopCond"', 'op: "Identity"')
    nodes, _ = nodes_of(text)
    with pytest.raises(UnsupportedError) as err:
        functionalize_frames(nodes, "graph.pbtxt", parse(text))
    assert err.value.problems == [
        "graph.pbtxt: while loop 'while/while_context' is not one graph2py can read"
    ]


# -- rnn.lift_recurrent ---------------------------------------------------------------------------

LSTM_LOOP = (CASES / "rnn_lstm_while.pbtxt").read_text(encoding="utf-8")


def test_rnn_a_keras_lstm_while_loop_becomes_one_lstm_node():
    """The loop, its tensor lists, counters and zero states go; the LSTM node reads the
    batch-major input and the three weights, the result view keeps the stacked output's name."""
    nodes, functions = nodes_of(LSTM_LOOP)
    after = lift_recurrent(nodes, functions)
    assert_graph(
        after,
        """
        input = Placeholder()
        lstm/kernel = Const()
        lstm/recurrent_kernel = Const()
        lstm/bias = Const()
        lstm/lstm = _Graph2pyLSTM(input, lstm/kernel, lstm/recurrent_kernel, lstm/bias) units=2
        lstm/transpose_1 = _Graph2pyRNNResult(lstm/lstm) units=2 ports=[0] kinds=['seq']
        """,
        attrs=["units", "ports", "kinds"],
    )
    lstm = after[-2]
    assert (lstm.attrs["return_sequences"], lstm.attrs["return_state"]) == (True, False)
    assert {k: recipe_text(r) for k, r in lstm.attrs["weights"].items()} == {
        "kernel": "input(1)",
        "recurrent_kernel": "input(2)",
        "bias": "input(3)",
    }
    assert lstm.attrs["shapes"] == {"kernel": (3, 8), "recurrent_kernel": (2, 8), "bias": (8,)}


def test_rnn_a_loop_computing_another_cell_stays_a_loop():
    """The same loop with ReLU for the cell output's tanh is no Keras LSTM: nothing changes."""
    text = LSTM_LOOP.replace('name: "Tanh_1"\n      op: "Tanh"', 'name: "Tanh_1"\n      op: "Relu"')
    assert text != LSTM_LOOP
    nodes, functions = nodes_of(text)
    before = describe(nodes)
    assert describe(lift_recurrent(nodes, functions)) == before
    assert "while = While(" in before


STATIC_STACK = (CASES / "rnn_static_stacked.pbtxt").read_text(encoding="utf-8")


def test_rnn_a_static_stack_becomes_two_layers_the_upper_reading_the_lower():
    """static_rnn over MultiRNNCell([LSTMCell, GRUCell]): the GRU's steps read the LSTM's
    steps one by one; both lift, the GRU reading the LSTM's sequence (no Unpack left), the
    last h keeping its graph name."""
    nodes, functions = nodes_of(STATIC_STACK)
    after = lift_recurrent(nodes, functions)
    ops = [n.op for n in after]
    assert ops.count("_Graph2pyLSTM") == ops.count("_Graph2pyGRU") == 1
    assert not {"Unpack", "ConcatV2", "MatMul", "Fill"} & set(ops)
    lstm, gru = (n for n in after if n.op in ("_Graph2pyLSTM", "_Graph2pyGRU"))
    assert lstm.inputs[0] == "x:0" and gru.inputs[0] == lstm.output(0)
    assert lstm.attrs["return_sequences"] and not gru.attrs["return_sequences"]
    assert after[-1].name == "rnn/multi_rnn_cell_2/cell_1/gru_cell/add_2"


def test_rnn_a_static_stack_whose_upper_cell_is_no_gru_keeps_it():
    """The same stack with ReLU for one step's GRU candidate tanh: the LSTM lifts and hands
    its steps on through an Unpack of its sequence; the other cell stays as written."""
    relu = 'name: "rnn/multi_rnn_cell_1/cell_1/gru_cell/Tanh"\n  op: "Relu"'
    text = STATIC_STACK.replace(relu.replace("Relu", "Tanh"), relu)
    assert text != STATIC_STACK
    after = lift_recurrent(*nodes_of(text))
    ops = [n.op for n in after]
    assert ops.count("_Graph2pyLSTM") == 1 and "_Graph2pyGRU" not in ops
    (lstm,) = [n for n in after if n.op == "_Graph2pyLSTM"]
    (unpack,) = [n for n in after if n.op == "Unpack" and n.inputs[0] == lstm.output(0)]
    assert unpack.attrs == {"num": 3, "axis": 1}
    readers = [n for n in after if any(t.startswith(unpack.name) for t in n.inputs)]
    assert [n.op for n in readers] == ["ConcatV2"] * 6  # each step's [x, h] and [x, r * h]


def test_rnn_a_while_loop_that_is_no_rnn_is_left_alone():
    nodes, functions = nodes_of((CASES / "control_while_loop.pbtxt").read_text(encoding="utf-8"))
    before = describe(nodes)
    assert describe(lift_recurrent(nodes, functions)) == before


@pytest.mark.parametrize("axis", [np.inf, -np.inf, np.nan], ids=["inf", "-inf", "nan"])
def test_rnn_a_concat_whose_axis_is_no_integer_is_no_step(axis):
    """A ConcatV2 of [x, h] read by a MatMul of a stored kernel has the form of an unrolled
    step; with a float axis (TensorFlow takes int32 and int64 only) it is none and stays as
    written, and the static stack beside it still lifts. int() of such an axis raised: on
    infinity an internal error (fuzz seed 15, case 31695), on NaN a ValueError that made
    the pass give up on every chain of the graph."""
    odd = (
        placeholder("odd/x", (-1, 3))
        + placeholder("odd/h", (-1, 2))
        + const("odd/axis", axis, shape=())
        + op("odd/concat", "ConcatV2", "odd/x", "odd/h", "odd/axis", N=2)
        + const("odd/kernel", np.ones((5, 8)))
        + op("odd/mm", "MatMul", "odd/concat", "odd/kernel")
    )
    nodes, functions = nodes_of(odd)
    before = describe(nodes)
    assert describe(lift_recurrent(nodes, functions)) == before
    assert "odd/concat = ConcatV2(odd/x, odd/h, odd/axis)" in before
    after = lift_recurrent(*nodes_of(STATIC_STACK + odd))
    ops = [n.op for n in after]
    assert ops.count("_Graph2pyLSTM") == ops.count("_Graph2pyGRU") == 1
    assert set(before.splitlines()) <= set(describe(after).splitlines())


# -- prune.prune ----------------------------------------------------------------------------------

DENSE = (
    placeholder("x", (-1, 4))
    + const("w", np.ones((4, 2)))
    + op("w/read", "Identity", "w")
    + op("mm", "MatMul", "x", "w/read")
    + op("relu", "Relu", "mm")
    + op("output", "Identity", "relu")
    + const("unused", 1.0, shape=())
    + op("init", "NoOp")
)


def test_prune_bypasses_identities_and_drops_what_no_output_needs():
    """The sink `output` (an Identity) is the output; the model output is the tensor behind
    it, the source output keeps its name. Constants and NoOps are no outputs."""
    pruned = prune(graph_of(DENSE), None, None)
    assert_graph(
        pruned.graph,
        """
        x = Placeholder()
        w = Const()
        mm = MatMul(x, w)
        relu = Relu(mm)
        """,
    )
    assert (pruned.inputs, pruned.outputs, pruned.source_outputs) == (
        ["x:0"],
        ["relu:0"],
        ["output:0"],
    )


def test_prune_to_given_inputs_and_outputs():
    """--inputs an interior tensor (with a shape): it becomes a Placeholder of its name and
    dtype, shaped as inferred; what is above it goes. --outputs an interior tensor."""
    text = DENSE + op("extra", "Sigmoid", "relu")
    pruned = prune(graph_of(text), [TensorSpec.parse("mm:0[-1,2]")], [TensorSpec.parse("relu")])
    assert_graph(
        pruned.graph,
        """
        mm = Placeholder() dtype='float32' shape=(None, 2)
        relu = Relu(mm)
        """,
        attrs=["dtype", "shape"],
    )
    assert (pruned.inputs, pruned.outputs, pruned.input_shapes) == (
        ["mm:0"],
        ["relu:0"],
        {"mm:0": (None, 2)},
    )


def test_prune_every_sink_is_an_output():
    pruned = prune(graph_of(DENSE + op("extra", "Sigmoid", "x")), None, None)
    assert pruned.outputs == ["relu:0", "extra:0"]


def test_prune_an_output_that_needs_an_unlisted_placeholder_is_an_error():
    text = DENSE + placeholder("y", (-1, 2)) + op("sum", "AddV2", "relu", "y")
    with pytest.raises(UsageError) as err:
        prune(graph_of(text), [TensorSpec.parse("x")], [TensorSpec.parse("sum")])
    assert err.value.problems == [
        "the outputs depend on placeholder 'y', which --inputs does not list (list it, or fix "
        "its value with --set y=VALUE)"
    ]


# -- prune.bypass_defaults ------------------------------------------------------------------------

DEFAULTS = (
    op("keep_prob/input", "Const", dtype=FLOAT, value=np.array(0.5, np.float32))
    + op("keep_prob", "PlaceholderWithDefault", "keep_prob/input", dtype=FLOAT, shape=Shape(()))
    + const("example", np.zeros((2, 3)))
    + op("x", "PlaceholderWithDefault", "example", dtype=FLOAT, shape=Shape((None, 3)))
    + op("scaled", "Mul", "x", "keep_prob")
)


def test_defaults_a_setting_is_its_default_and_data_is_an_input():
    """keep_prob (shape [], constant default) is replaced by its default; x (a batch of any
    size) becomes a Placeholder."""
    assert_graph(
        bypass_defaults(graph_of(DEFAULTS), None),
        """
        keep_prob/input = Const()
        example = Const()
        x = Placeholder() shape=(None, 3)
        scaled = Mul(x, keep_prob/input)
        """,
        attrs=["shape"],
    )


def test_defaults_named_in_inputs_stay_inputs():
    inputs = [TensorSpec.parse("keep_prob"), TensorSpec.parse("x")]
    assert_graph(
        bypass_defaults(graph_of(DEFAULTS), inputs),
        """
        keep_prob/input = Const()
        keep_prob = Placeholder() shape=()
        example = Const()
        x = Placeholder() shape=(None, 3)
        scaled = Mul(x, keep_prob)
        """,
        attrs=["shape"],
    )


# -- fold.Constants -------------------------------------------------------------------------------

WEIGHTS = (
    placeholder("x", (-1, 2, 3))
    + placeholder("fixed", (2, 3))
    + const("k_t", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    + int_const("perm", [1, 0])
    + op("k", "Transpose", "k_t", "perm")
    + int_const("flat_shape", [6])
    + op("k_flat", "Reshape", "k", "flat_shape")
    + const("half", 0.5, shape=())
    + op("k_half", "Mul", "k_flat", "half")
    + op("k_sum", "AddV2", "k_half", "k_flat")
    + op("fixed_shape", "Shape", "fixed", out_type=INT32)
    + op("shape", "Shape", "x", out_type=INT32)
    + int_const("begin", [1])
    + int_const("end", [3])
    + int_const("stride", [1])
    + op("dims", "StridedSlice", "shape", "begin", "end", "stride")
    + int_const("axis0", [0])
    + op("size", "Prod", "dims", "axis0")
    + op("y", "Mul", "x", "half")
)


def test_fold_values():
    consts = Constants(graph_of(WEIGHTS))
    assert value(consts, "k:0") == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    assert value(consts, "k_flat:0") == [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    assert value(consts, "k_half:0") == [0.5, 2.0, 1.0, 2.5, 1.5, 3.0]
    assert value(consts, "k_sum:0") == [1.5, 6.0, 3.0, 7.5, 4.5, 9.0]
    assert consts.value("k_sum:0").dtype == np.float32
    assert value(consts, "y:0") is None  # computed from the data
    assert value(consts, "shape:0") is None  # without shapes the Shape is unknown


def test_fold_shapes_make_shape_arithmetic_constant_or_partly_known():
    """With the placeholders' shapes, Shape of a fully known tensor folds; Shape(x) with a
    free batch does not, but its known entries are read by partial_vector (a reshape target)."""
    consts = Constants(graph_of(WEIGHTS), {"x:0": (None, 2, 3), "fixed:0": (2, 3)})
    assert value(consts, "fixed_shape:0") == [2, 3]
    assert consts.value("fixed_shape:0").dtype == np.int32
    assert value(consts, "shape:0") is None
    assert consts.partial_vector("shape:0") == [None, 2, 3]
    assert consts.partial_vector("dims:0") == [2, 3]
    assert consts.partial_vector("size:0") == [6]


def test_fold_recipes_spell_out_how_a_weight_is_made():
    consts = Constants(graph_of(WEIGHTS))
    assert recipe_text(consts.recipe("k_t:0")) == "read(k_t)"
    assert recipe_text(consts.recipe("k:0")) == "transpose(read(k_t), (1, 0))"
    assert recipe_text(consts.recipe("k_flat:0")) == "reshape(transpose(read(k_t), (1, 0)), (6,))"
    assert recipe_text(consts.recipe("k_half:0")) == (
        "multiply(reshape(transpose(read(k_t), (1, 0)), (6,)), 0.5)"
    )
    assert recipe_text(consts.recipe("y:0")) == "None"


def test_fold_refuses_to_grow_a_huge_constant():
    """A Fill of 2**30 elements is refused before it is allocated (a hostile graph's memory
    bomb: more than the constant budget, see budget.py), naming the node and the size; a
    small one folds."""
    text = (
        int_const("huge", [1 << 15, 1 << 15])
        + int_const("small", [2, 2])
        + const("one", 1.0, shape=())
        + op("big", "Fill", "huge", "one")
        + op("ok", "Fill", "small", "one")
    )
    consts = Constants(graph_of(text))
    assert value(consts, "ok:0") == [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(ConstantBudgetError, match="node 'big': folding Fill makes 4 GiB"):
        consts.value("big:0")


# -- shapes.infer_shapes --------------------------------------------------------------------------


def test_shapes_of_an_image_model():
    text = (
        placeholder("x", (-1, 9, 9, 3))
        + const("k", np.zeros((3, 3, 3, 4)))
        + op("conv", "Conv2D", "x", "k", strides=[1, 2, 2, 1], padding="SAME")
        + const("b", np.zeros(4))
        + op("bias", "BiasAdd", "conv", "b")
        + op("pool", "MaxPool", "bias", ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
        + int_const("flat", [-1, 16])
        + op("reshape", "Reshape", "pool", "flat")
        + const("w", np.zeros((16, 5)))
        + op("mm", "MatMul", "reshape", "w")
        + op("relu", "Relu", "mm")
        + int_const("axes", [1, 2])
        + op("mean", "Mean", "bias", "axes", keep_dims=True)
        + op("mystery", "NoSuchOp", "relu")
    )
    graph = graph_of(text)
    assert infer_shapes(graph, Constants(graph)) == {
        "x:0": (None, 9, 9, 3),
        "k:0": (3, 3, 3, 4),
        "conv:0": (None, 5, 5, 4),
        "b:0": (4,),
        "bias:0": (None, 5, 5, 4),
        "pool:0": (None, 2, 2, 4),
        "flat:0": (2,),
        "reshape:0": (None, 16),
        "w:0": (16, 5),
        "mm:0": (None, 5),
        "relu:0": (None, 5),
        "axes:0": (2,),
        "mean:0": (None, 1, 1, 4),
        "mystery:0": None,
    }


def test_shapes_of_layout_ops_nchw_and_overrides():
    """NCHW conv (its rule run on NHWC and permuted back), Pad, Transpose, ConcatV2,
    ExpandDims, Squeeze, a Reshape whose -1 takes the free batch, and the input shape given
    on the command line instead of the placeholder's."""
    text = (
        placeholder("x", (-1, -1, -1, -1))
        + const("k", np.zeros((3, 3, 3, 4)))
        + op("conv", "Conv2D", "x", "k", strides=[1, 1, 2, 2], padding="VALID", data_format="NCHW")
        + op(
            "pads", "Const", dtype=INT32, value=np.array([[0, 0], [0, 0], [1, 1], [2, 2]], np.int32)
        )
        + op("pad", "Pad", "conv", "pads")
        + int_const("perm", [0, 2, 3, 1])
        + op("nhwc", "Transpose", "pad", "perm")
        + op("axis", "Const", dtype=INT32, value=np.array(-1, np.int32))
        + op("concat", "ConcatV2", "nhwc", "nhwc", "axis")
        + op("dim", "Const", dtype=INT32, value=np.array(1, np.int32))
        + op("expand", "ExpandDims", "concat", "dim")
        + op("squeeze", "Squeeze", "expand", squeeze_dims=[1])
        + int_const("target", [-1, 8])
        + op("rows", "Reshape", "squeeze", "target")
    )
    graph = graph_of(text)
    shapes = infer_shapes(graph, Constants(graph), {"x:0": (None, 3, 8, 8)})
    assert {t: s for t, s in shapes.items() if graph.producer(t).op != "Const"} == {
        "x:0": (None, 3, 8, 8),
        "conv:0": (None, 4, 3, 3),
        "pad:0": (None, 4, 5, 7),
        "nhwc:0": (None, 5, 7, 4),
        "concat:0": (None, 5, 7, 8),
        "expand:0": (None, 1, 5, 7, 8),
        "squeeze:0": (None, 5, 7, 8),
        "rows:0": (None, 8),
    }


# -- layout.channels_last -------------------------------------------------------------------------

NCHW_CONV = (
    placeholder("x", (-1, 3, 8, 8))
    + const("k", np.zeros((3, 3, 3, 4)))
    + op(
        "conv/Conv2D", "Conv2D", "x", "k", strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW"
    )
    + const("b", np.zeros(4))
    + op("conv/BiasAdd", "BiasAdd", "conv/Conv2D", "b", data_format="NCHW")
    + op("conv/Relu", "Relu", "conv/BiasAdd")
)


def _consts(pruned) -> dict:
    """The new constants a layout rewrite adds (permutations, axes), by name."""
    consts = Constants(pruned.graph)
    return {
        n.name: value(consts, n.output())
        for n in pruned.graph
        if n.op == "Const" and n.name not in ("k", "b", "axes")
    }


def test_layout_an_nchw_graph_computes_in_nhwc_between_two_transposes():
    """The conv and its bias are rewritten to NHWC (strides permuted), the input transposed to
    NHWC once, the output back to NCHW under the output's own name."""
    pruned = channels_last(prune(graph_of(NCHW_CONV), None, None))
    assert_graph(
        pruned.graph,
        """
        x = Placeholder() shape=(None, 3, 8, 8)
        k = Const()
        x_to_nhwc/perm = Const()
        x_to_nhwc = Transpose(x, x_to_nhwc/perm)
        conv/Conv2D = Conv2D(x_to_nhwc, k) data_format='NHWC' strides=[1, 2, 2, 1]
        b = Const()
        conv/BiasAdd = BiasAdd(conv/Conv2D, b) data_format='NHWC'
        conv/Relu_nhwc = Relu(conv/BiasAdd)
        conv/Relu/to_nchw/perm = Const()
        conv/Relu = Transpose(conv/Relu_nhwc, conv/Relu/to_nchw/perm)
        """,
        attrs=["data_format", "strides", "shape"],
    )
    assert _consts(pruned) == {
        "x_to_nhwc/perm": [0, 2, 3, 1],
        "conv/Relu/to_nchw/perm": [0, 3, 1, 2],
    }
    assert (pruned.inputs, pruned.outputs) == (["x:0"], ["conv/Relu:0"])


def test_layout_io_nhwc_takes_and_gives_nhwc():
    pruned = channels_last(prune(graph_of(NCHW_CONV), None, None), "nhwc")
    assert_graph(
        pruned.graph,
        """
        x = Placeholder() shape=(None, 8, 8, 3)
        k = Const()
        conv/Conv2D = Conv2D(x, k) data_format='NHWC' strides=[1, 2, 2, 1]
        b = Const()
        conv/BiasAdd = BiasAdd(conv/Conv2D, b) data_format='NHWC'
        conv/Relu = Relu(conv/BiasAdd)
        """,
        attrs=["data_format", "strides", "shape"],
    )


def test_layout_a_reduction_over_h_and_w_takes_the_nhwc_axes():
    """Mean over NCHW's H and W is Mean over NHWC's 1 and 2; its 2-D result is the same in
    both layouts, so nothing is transposed back."""
    text = (
        placeholder("x", (-1, 3, 8, 8))
        + const("k", np.zeros((3, 3, 3, 4)))
        + op("conv", "Conv2D", "x", "k", strides=[1, 1, 1, 1], padding="SAME", data_format="NCHW")
        + op(
            "pool",
            "MaxPool",
            "conv",
            ksize=[1, 1, 2, 2],
            strides=[1, 1, 2, 2],
            padding="VALID",
            data_format="NCHW",
        )
        + int_const("axes", [2, 3])
        + op("mean", "Mean", "pool", "axes", keep_dims=False)
        + op("probs", "Softmax", "mean")
    )
    pruned = channels_last(prune(graph_of(text), None, None))
    assert_graph(
        pruned.graph,
        """
        x = Placeholder()
        k = Const()
        x_to_nhwc/perm = Const()
        x_to_nhwc = Transpose(x, x_to_nhwc/perm)
        conv = Conv2D(x_to_nhwc, k) data_format='NHWC' strides=[1, 1, 1, 1]
        pool = MaxPool(conv) data_format='NHWC' ksize=[1, 2, 2, 1] strides=[1, 2, 2, 1]
        axes = Const()
        mean/nhwc_axes = Const()
        mean = Mean(pool, mean/nhwc_axes)
        probs = Softmax(mean)
        """,
        attrs=["data_format", "ksize", "strides"],
    )
    assert _consts(pruned) == {"x_to_nhwc/perm": [0, 2, 3, 1], "mean/nhwc_axes": [1, 2]}


def test_layout_leaves_an_nhwc_graph_alone():
    pruned = prune(graph_of(placeholder("x", (-1, 4, 4, 3)) + op("r", "Relu", "x")), None, None)
    assert channels_last(pruned, "nhwc") is pruned


def test_layout_keeps_the_source_outputs():
    """`check` asks TensorFlow for the source outputs (spec.graph_outputs); after the layout
    pass they are empty, so an NCHW graph's output named by an Identity is asked for by the
    tensor behind it (and a tensor only an inlined function has would not exist)."""
    text = NCHW_CONV + op("output", "Identity", "conv/Relu")
    pruned = prune(graph_of(text), None, None)
    assert pruned.source_outputs == ["output:0"]
    assert channels_last(pruned).source_outputs == ["output:0"]
