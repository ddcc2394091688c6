"""TF1 TensorArrays as tensors (passes/arrays.py), without TensorFlow: text GraphDefs in, the
nodes the pass leaves (and the While node the frame becomes) out, and the keras.ops code the
converter writes for them."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from tensorboard.compat.proto import types_pb2

from codegen.errors import UnsupportedError
from codegen.passes.arrays import arrays_as_tensors
from codegen.passes.control import functionalize_frames
from graphs import FLOAT, INT32, Dtype, Shape, describe, nodes_of, op, parse, placeholder

RESOURCE = Dtype(types_pb2.DT_RESOURCE)
FRAME = "while/while_context"


def assert_graph(nodes, expected: str, attrs=()) -> None:
    assert describe(nodes, attrs) == textwrap.dedent(expected).lstrip("\n")


def i32(name: str, value) -> str:
    return op(name, "Const", dtype=INT32, value=np.array(value, np.int32))


def array(name: str, size: int, element=None, dtype=FLOAT, **more) -> str:
    shape = Shape(element) if element is not None else Shape(None)
    return i32(f"{name}/size", size) + op(
        name, "TensorArrayV3", f"{name}/size", dtype=dtype, element_shape=shape, **more
    )


def loop(dtype=FLOAT, written="while/Tanh") -> str:
    """TF1: ta = TensorArray(dtype, size=3); a while loop writes tanh(h) (or its counter) at
    step i; the array is stacked after it."""
    return (
        placeholder("x", (-1, 4))
        + array("TensorArray", 3, dtype=dtype)
        + i32("Const", 0)
        + op("while/Enter", "Enter", "Const", T=INT32, frame_name=FRAME)
        + op("while/Enter_1", "Enter", "x", T=FLOAT, frame_name=FRAME)
        + op("while/Enter_2", "Enter", "TensorArray:1", T=FLOAT, frame_name=FRAME)
        + op("while/Merge", "Merge", "while/Enter", "while/NextIteration")
        + op("while/Merge_1", "Merge", "while/Enter_1", "while/NextIteration_1")
        + op("while/Merge_2", "Merge", "while/Enter_2", "while/NextIteration_2")
        + i32("while/Less/y", 3)
        + op("while/Less", "Less", "while/Merge", "while/Less/y")
        + op("while/LoopCond", "LoopCond", "while/Less")
        + op("while/Switch", "Switch", "while/Merge", "while/LoopCond")
        + op("while/Switch_1", "Switch", "while/Merge_1", "while/LoopCond")
        + op("while/Switch_2", "Switch", "while/Merge_2", "while/LoopCond")
        + op("while/Identity", "Identity", "while/Switch:1")
        + op("while/Identity_1", "Identity", "while/Switch_1:1")
        + op("while/Identity_2", "Identity", "while/Switch_2:1")
        + op("while/Tanh", "Tanh", "while/Identity_1")
        + op(
            "while/Write/Enter",
            "Enter",
            "TensorArray",
            T=RESOURCE,
            frame_name=FRAME,
            is_constant=True,
        )
        + op(
            "while/Write",
            "TensorArrayWriteV3",
            "while/Write/Enter",
            "while/Identity",
            written,
            "while/Identity_2",
            T=dtype,
        )
        + i32("while/add/y", 1)
        + op("while/add", "AddV2", "while/Identity", "while/add/y")
        + op("while/NextIteration", "NextIteration", "while/add")
        + op("while/NextIteration_1", "NextIteration", "while/Tanh")
        + op("while/NextIteration_2", "NextIteration", "while/Write")
        + op("while/Exit", "Exit", "while/Switch")
        + op("while/Exit_1", "Exit", "while/Switch_1")
        + op("while/Exit_2", "Exit", "while/Switch_2")
        + i32("stack/range", [0, 1, 2])
        + op(
            "stack",
            "TensorArrayGatherV3",
            "TensorArray",
            "stack/range",
            "while/Exit_2",
            dtype=dtype,
            element_shape=Shape((-1, 4)),
        )
    )


LOOP = loop()


def test_an_array_written_in_a_loop_is_a_loop_variable():
    """The flow entering the loop becomes the array's zeros, carried as a float32 loop
    variable; the handle and its Enter are gone; the write is a row update of the carried
    tensor and the stack after the loop gathers from the While's output."""
    nodes, _ = nodes_of(LOOP)
    after = functionalize_frames(nodes, "graph", parse(LOOP))
    assert_graph(
        after,
        """
        x = Placeholder()
        TensorArray/size = Const()
        TensorArray = _Graph2pyTensorArray(TensorArray/size) element_shape=(None, 4)
        Const = Const()
        stack/range = Const()
        stack = _Graph2pyArrayGather(while:2, stack/range)
        while = While(Const, x, TensorArray) T=['int32', 'float32', 'float32']
        """,
        attrs=["T", "element_shape"],
    )
    frame = after[-1].attrs["_frame"]
    writes = [n for n in frame["nodes"] if n.op == "_Graph2pyArrayWrite"]
    assert_graph(
        writes, "while/Write = _Graph2pyArrayWrite(while/Identity_2, while/Identity, while/Tanh)\n"
    )
    assert frame["results"] == ["while/add:0", "while/Tanh:0", "while/Write:0"]


def test_an_int_array_is_carried_with_its_dtype():
    """The flow is float32 whatever the array holds: the loop plumbing carrying an int32
    array's contents is retyped, so the While's loop variable is int32."""
    nodes, _ = nodes_of(loop(INT32, "while/Identity"))
    after = functionalize_frames(nodes, "graph")
    (found,) = [n for n in after if n.op == "While"]
    assert found.attrs["T"] == ["int32", "float32", "int32"]


def test_arrays_outside_loops():
    """TensorArray.unstack (a scatter of range(rows)) holds the value itself; Size is the
    constant size; Concat is its own node, its lengths a constant; reads take a row."""
    text = (
        placeholder("x", (3, 2, 5))
        + array("ta", 3, (2, 5))
        + op("rows/Shape", "Shape", "x")
        + i32("rows/begin", [0])
        + i32("rows/end", [1])
        + op(
            "rows",
            "StridedSlice",
            "rows/Shape",
            "rows/begin",
            "rows/end",
            "rows/end",
            shrink_axis_mask=1,
        )
        + i32("start", 0)
        + i32("delta", 1)
        + op("range", "Range", "start", "rows", "delta")
        + op("unstack", "TensorArrayScatterV3", "ta", "range", "x", "ta:1", T=FLOAT)
        + i32("one", 1)
        + op("read", "TensorArrayReadV3", "ta", "one", "unstack", dtype=FLOAT)
        + op("size", "TensorArraySizeV3", "ta", "unstack")
        + op("concat", "TensorArrayConcatV3", "ta", "unstack", dtype=FLOAT)
        + op("lengths", "Identity", "concat:1", T=Dtype(types_pb2.DT_INT64))
        + op("close", "TensorArrayCloseV3", "ta")
    )
    nodes, _ = nodes_of(text)
    after = arrays_as_tensors(nodes)
    assert_graph(
        after,
        """
        x = Placeholder()
        unstack = Identity(x)
        one = Const()
        read = _Graph2pyArrayRead(unstack, one)
        size = Const()
        concat = _Graph2pyArrayConcat(unstack)
        concat/lengths = Const()
        lengths = Identity(concat/lengths)
        """,
    )
    values = {n.name: n.attrs.get("value") for n in after if n.op == "Const"}
    assert values["size"].tolist() == 3 and values["concat/lengths"].tolist() == [2, 2, 2]


def test_an_array_without_a_constant_size_is_reported():
    text = (
        placeholder("x", (-1, 4))
        + i32("size", 0)
        + op("ta", "TensorArrayV3", "size", dtype=FLOAT, dynamic_size=True)
        + op("w", "TensorArrayWriteV3", "ta", "size", "x", "ta:1", T=FLOAT)
    )
    nodes, _ = nodes_of(text)
    with pytest.raises(UnsupportedError) as err:
        arrays_as_tensors(nodes, "g.pbtxt")
    assert err.value.problems == [
        "g.pbtxt: TensorArray 'ta' has no constant size and no loop that bounds it; graph2py"
        " preallocates arrays (see passes/arrays.py)"
    ]


def test_a_graph_without_arrays_is_left_alone():
    nodes, _ = nodes_of(placeholder("x") + op("y", "Relu", "x"))
    assert arrays_as_tensors(nodes) is nodes


def test_the_loop_is_written_as_keras_ops(tmp_path):
    """The loop carries the array and writes a row with slice_update; the array's element
    shape has the batch, which only the first value written gives: the loop allocates it
    like that value. The step reads tanh(h) twice (state and write), which is named once."""
    from codegen.convert import convert
    from codegen.options import Options
    from codegen.passes.prune import TensorSpec

    path = tmp_path / "loop.pbtxt"
    path.write_text(LOOP, encoding="utf-8")
    wanted = Options(inputs=[TensorSpec.parse("x:0")], outputs=[TensorSpec.parse("stack:0")])
    spec, files = convert(path, wanted)
    source = files["model.py"]
    assert spec.report()["keras.ops"] == {"TensorArrayGatherV3": 1, "TensorArrayV3": 1, "While": 1}
    assert source.count("tanh := keras.ops.tanh(") == 1
    assert "keras.ops.slice_update(" in source
    assert "keras.ops.zeros_like(\n" in source and "keras.ops.repeat(" in source
    assert "tensorflow" not in source
