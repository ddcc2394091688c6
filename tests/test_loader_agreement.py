"""The generated load_weights.py reads exactly what the converter read: the same files (text or
binary told apart by content, whatever the suffix), every constant decoded to the same array or
refused by both, with the same caps. And as a script it refuses what it cannot read with one
line, exit 1, no traceback.

The converter's side is codegen.load (read_graph_file, decode_attr); the loader's side is what a
load_weights.py that graph2py generates reads with (codegen.runtime.graph_constants, which it
imports), run as it is written.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tensorboard.compat.proto import graph_pb2, tensor_pb2, types_pb2

from codegen.convert import convert
from codegen.errors import BadInputError
from codegen.load import decode_attr, read_graph_file, tensor_to_numpy
from codegen.runtime import LoadError
from graphs import Builder, Dtype, FLOAT

ROOT = Path(__file__).resolve().parent.parent
DT = types_pb2.DataType

# -- the constants: every dtype, long and short forms, and hostile ones --------------------------

# The typed field TF stores each dtype's values in when there is no tensor_content, with sample
# values for it; the numpy type of the dtype's raw bytes (None: numpy has none).
FIELDS = {
    "DT_FLOAT": ("float_val", [1.5, -2.25, float("nan"), float("inf"), -0.0, 3e-39], np.float32),
    "DT_DOUBLE": ("double_val", [1.5, -2.25, float("nan"), 1e300, -0.0, 5e-324], np.float64),
    "DT_HALF": (
        "half_val",
        np.float16([1.5, -2, 65504, 0, -0.0, 6e-8]).view(np.uint16),
        np.float16,
    ),
    "DT_BFLOAT16": ("half_val", [16320, 49152, 0, 1, 2, 3], None),
    "DT_INT32": ("int_val", [3, -7, 2**31 - 1, -(2**31), 0, 1], np.int32),
    "DT_INT16": ("int_val", [3, -7, 32767, -32768, 0, 1], np.int16),
    "DT_INT8": ("int_val", [3, -7, 127, -128, 0, 1], np.int8),
    "DT_UINT8": ("int_val", [3, 7, 255, 0, 1, 2], np.uint8),
    "DT_UINT16": ("int_val", [3, 7, 65535, 0, 1, 2], np.uint16),
    "DT_QINT8": ("int_val", [3, -7, 127, -128, 0, 1], np.int8),
    "DT_QUINT8": ("int_val", [3, 7, 255, 0, 1, 2], np.uint8),
    "DT_QINT16": ("int_val", [3, -7, 32767, -32768, 0, 1], np.int16),
    "DT_QUINT16": ("int_val", [3, 7, 65535, 0, 1, 2], np.uint16),
    "DT_QINT32": ("int_val", [3, -7, 2**31 - 1, -(2**31), 0, 1], np.int32),
    "DT_INT64": ("int64_val", [3, -7, 2**63 - 1, -(2**63), 2**40, 1], np.int64),
    "DT_UINT32": ("uint32_val", [3, 7, 2**32 - 1, 2**31, 0, 1], np.uint32),
    "DT_UINT64": ("uint64_val", [3, 7, 2**64 - 1, 2**63, 0, 1], np.uint64),
    "DT_BOOL": ("bool_val", [True, False, True, True, False, False], np.bool_),
    "DT_COMPLEX64": ("scomplex_val", [1.5, -2, 0, 1, 3, 4, 5, 6, 7, 8, 9, 10], np.complex64),
    "DT_COMPLEX128": ("dcomplex_val", [1.5, -2, 0, 1, 3, 4, 5, 6, 7, 8, 9, 10], np.complex128),
    "DT_STRING": ("string_val", [b"a", b"bc", b"", b"\xff", b"e", b"f"], None),
}
# What a converted graph's weights are made of: these must decode, in every form (the quantized
# types hold the codes of quantized weights, which Dequantize reads).
MUST_DECODE = (
    "DT_UINT16",
    "DT_UINT32",
    "DT_UINT64",
    "DT_INT8",
    "DT_INT16",
    "DT_BOOL",
    "DT_HALF",
    "DT_QUINT8",
    "DT_QINT8",
    "DT_QUINT16",
    "DT_QINT16",
    "DT_QINT32",
)


def tensor(dtype: int, shape, content: bytes = b"", field: str | None = None, values=()):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    if content:
        proto.tensor_content = content
    if field:
        getattr(proto, field).extend(values)
    return proto


def raw_bytes(name: str, values, numpy_type) -> bytes:
    """Six elements as tensor_content holds them."""
    if numpy_type is None:  # bytes to refuse (or strings, which have no raw form)
        return bytes(range(12))
    if numpy_type is np.float16:  # half_val holds the bit patterns
        return np.array(values, np.uint16).tobytes()
    if "COMPLEX" in name:
        pairs = np.array(values, np.float64).reshape(6, 2)
        return (pairs[:, 0] + 1j * pairs[:, 1]).astype(numpy_type).tobytes()
    return np.array(values, numpy_type).tobytes()


def constants() -> dict[str, tensor_pb2.TensorProto]:
    """Node name -> TensorProto: each dtype TF has in every form it can take, then the hostile
    ones (wrong lengths, values out of range, claims of 10^12 elements)."""
    found = {}
    for name, enum in sorted(DT.items(), key=lambda item: item[1]):
        field, values, numpy_type = FIELDS.get(name, (None, [0] * 6, None))
        per = 2 if "COMPLEX" in name else 1  # a complex value is two floats in the field
        content = raw_bytes(name, values, numpy_type)
        found[f"{name}/content"] = tensor(enum, [2, 3], content)
        found[f"{name}/content_scalar"] = tensor(enum, [], content[: len(content) // 6])
        found[f"{name}/empty"] = tensor(enum, [2, 3])
        found[f"{name}/zero_size"] = tensor(enum, [0, 3])
        if field:
            found[f"{name}/one"] = tensor(enum, [2, 3], field=field, values=values[:per])
            found[f"{name}/some"] = tensor(enum, [2, 3], field=field, values=values[: 2 * per])
            found[f"{name}/full"] = tensor(enum, [2, 3], field=field, values=values[: 6 * per])
            found[f"{name}/scalar"] = tensor(enum, [], field=field, values=values[:per])
    F = DT.Value("DT_FLOAT")
    hostile = {
        "bomb/10^12": tensor(F, [10**6, 10**6], field="float_val", values=[1.0]),
        "bomb/empty": tensor(F, [10**6, 10**6]),
        "bomb/overflowing_dims": tensor(F, [2**62, 2**62, 16], field="float_val", values=[1.0]),
        "bad/content_short": tensor(F, [3], content=b"\0" * 8),
        "bad/content_long": tensor(F, [1], content=b"\0" * 8),
        "bad/too_many_values": tensor(DT.Value("DT_INT32"), [2], field="int_val", values=[1, 2, 3]),
        "bad/negative_dim": tensor(F, [-1, 3], field="float_val", values=[1.0]),
        "bad/int16_out_of_range": tensor(
            DT.Value("DT_INT16"), [1], field="int_val", values=[70000]
        ),
        "bad/uint16_negative": tensor(DT.Value("DT_UINT16"), [2], field="int_val", values=[-1]),
        "bad/half_out_of_range": tensor(DT.Value("DT_HALF"), [1], field="half_val", values=[70000]),
        "bad/no_such_dtype": tensor(999, [2], content=b"\0" * 8),
        "bad/string_content": tensor(DT.Value("DT_STRING"), [2], content=b"ab"),
    }
    return {**found, **hostile}


def graph_def(protos: dict[str, tensor_pb2.TensorProto]) -> graph_pb2.GraphDef:
    graph = graph_pb2.GraphDef()
    for name, proto in protos.items():
        node = graph.node.add(name=name, op="Const")
        node.attr["dtype"].type = proto.dtype if proto.dtype in DT.values() else 1
        node.attr["value"].tensor.CopyFrom(proto)
    return graph


# Each file form: (file name, its bytes from the GraphDef). Misleading suffixes on purpose.
def binary(graph):
    return graph.SerializeToString()


def text(graph):
    return text_format.MessageToString(graph).encode()


def commented_text(graph):
    return b"# a graph, written by hand\n#\n\n   \r\n" + text(graph).replace(b"\n", b"\r\n")


FORMS = {
    "binary.pb": binary,
    "binary.pbtxt": binary,
    "binary.prototxt": binary,
    "text.pbtxt": text,
    "text.pb": text,
    "text.prototxt": text,
    "text.txt": text,
    "commented.bin": commented_text,
}


# -- both sides -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loader(tmp_path_factory):
    """The module a converted frozen graph's load_weights.py defines (not run as a script)."""
    root = tmp_path_factory.mktemp("loader")
    b = Builder()
    b.op("y", "MatMul", b.placeholder("x", (None, 4)), b.weight("k", 4, 3))
    (root / "graph.pb").write_bytes(b.graph.SerializeToString())
    _, files = convert(root / "graph.pb")
    module = types.ModuleType("generated_load_weights")
    module.__file__ = "load_weights.py"  # as imported from its file (SOURCE)
    exec(compile(files["load_weights.py"], "load_weights.py", "exec"), module.__dict__)
    return module


def outcome(read):
    """('array', dtype, shape, values) or ('error', message) of a read."""
    try:
        value = read()
    except ValueError as err:
        return ("error", str(err))
    values = value.tolist() if value.dtype == object else value.tobytes()
    return ("array", value.dtype.str, value.shape, values)


def converter_reads(path: Path) -> dict:
    graph, _ = read_graph_file(path)
    return {node.name: outcome(lambda n=node: decode_attr(n.attr["value"])) for node in graph.node}


def loader_reads(loader, path: Path, names) -> dict:
    read = loader.graph_constants(str(path))
    return {name: outcome(lambda n=name: read(n)) for name in names}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    graph = graph_def(constants())
    paths = {}
    for name, write in FORMS.items():
        paths[name] = root / name
        paths[name].write_bytes(write(graph))
    return paths


@pytest.mark.parametrize("form", FORMS)
def test_every_constant_decodes_the_same(loader, files, form):
    path = files[form]
    ours = converter_reads(path)
    theirs = loader_reads(loader, path, ours)
    for name, expected in ours.items():
        got = theirs[name]
        if expected[0] == "error":
            # the loader names the file and the node, then says what the converter says
            assert got[0] == "error", (name, got)
            assert got[1] == f"{path}: constant node {name!r}: {expected[1]}", name
        else:
            assert got == expected, name


def test_the_forms_agree_with_each_other(files):
    """A text graph and a binary one holding the same constants decode to the same arrays, so
    the comparison above covers the same values in every form."""
    reads = {form: converter_reads(path) for form, path in files.items()}
    for form, found in reads.items():
        assert found == reads["binary.pb"], form


def test_what_a_model_is_made_of_decodes(files):
    found = converter_reads(files["text.pb"])
    for dtype in MUST_DECODE:
        for form in ("content", "content_scalar", "one", "some", "full", "scalar", "empty"):
            assert found[f"{dtype}/{form}"][0] == "array", (dtype, form, found[f"{dtype}/{form}"])
    assert np.frombuffer(found["DT_UINT16/some"][3], np.uint16).tolist() == [3, 7, 7, 7, 7, 7]
    assert "would expand 1 stored values to 3814697 MiB" in found["bomb/10^12"][1]
    assert found["bomb/empty"][0] == found["bomb/overflowing_dims"][0] == "error"


def test_a_constant_without_a_tensor_is_refused(loader, tmp_path):
    graph = graph_pb2.GraphDef()
    graph.node.add(name="none", op="Const")
    graph.node.add(name="int", op="Const").attr["value"].i = 3
    path = tmp_path / "graph.pb"
    path.write_bytes(binary(graph))
    read = loader.graph_constants(str(path))
    for name in ("none", "int"):
        with pytest.raises(LoadError, match=f"constant node '{name}' holds no tensor"):
            read(name)


def test_complex_values_are_pairs_of_floats(files):
    found = converter_reads(files["text.pb"])
    full = np.frombuffer(found["DT_COMPLEX64/full"][3], np.complex64)
    assert full.tolist() == [1.5 - 2j, 1j, 3 + 4j, 5 + 6j, 7 + 8j, 9 + 10j]
    assert np.frombuffer(found["DT_COMPLEX128/scalar"][3], np.complex128).tolist() == [1.5 - 2j]
    some = np.frombuffer(found["DT_COMPLEX64/some"][3], np.complex64)
    assert some.tolist() == [1.5 - 2j] + [1j] * 5


# -- telling text from binary -----------------------------------------------------------------


def first_node_of_35_bytes() -> graph_pb2.GraphDef:
    """A binary GraphDef that opens with b'\\n#': the tag of its first node, then that node's
    length, 35, which is '#'. The whole file is ASCII: only its structure says binary."""
    b = Builder()
    b.node("inputs7", "Placeholder", dtype=FLOAT)
    b.op("y", "Relu", "inputs7")
    assert b.graph.SerializeToString()[:2] == b"\n#"
    return b.graph


def straddling_text() -> bytes:
    """A text GraphDef whose comment puts a two-byte character across byte 4096."""
    b = Builder()
    b.op("y", "Relu", b.placeholder("x", (None, 4)))
    comment = b"# " + b"-" * (4095 - 2) + "é".encode() + b"\n"
    assert comment[4095:4097] == "é".encode()
    return comment + text(b.graph)


SNIFFED = {
    "binary_opening_like_a_comment.pb": first_node_of_35_bytes().SerializeToString(),
    "binary_named.pbtxt": first_node_of_35_bytes().SerializeToString(),
    "text_with_a_character_across_4096.pb": straddling_text(),
    "versions_first.pb": b"versions { producer: 1 }\n" + text(first_node_of_35_bytes()),
    "library_first.pb": b"library {\n}\n" + text(first_node_of_35_bytes()),
}


@pytest.mark.parametrize("name, data", SNIFFED.items(), ids=list(SNIFFED))
def test_the_format_is_told_by_content(loader, tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    graph, _ = read_graph_file(path)  # the converter reads it...
    assert [n.name for n in graph.node][-1] == "y"
    read = loader.graph_constants(str(path))  # ...and so does the loader
    with pytest.raises(ValueError, match="has no constant node 'x'"):
        read("x")


def test_both_refuse_what_is_neither(loader, tmp_path):
    path = tmp_path / "notes.pbtxt"
    path.write_bytes(b"nodes { name: 'x' }\n")  # not a GraphDef field: not text, and not binary
    with pytest.raises(BadInputError, match="not a binary GraphDef"):
        read_graph_file(path)
    with pytest.raises(LoadError, match="not a binary GraphDef"):
        loader.graph_constants(str(path))


# -- end to end: converted, then loaded by the script -----------------------------------------


def dense(kernel: tensor_pb2.TensorProto | None = None, cast: bool = False) -> Builder:
    """x[?, 4] @ k[4, 3]; k given as a TensorProto (cast to float32 when `cast`) or random."""
    b = Builder()
    x = b.placeholder("x", (None, 4))
    if kernel is None:
        k = b.weight("k", 4, 3)
    else:
        k = b.node("k_raw" if cast else "k", "Const", dtype=Dtype(kernel.dtype))
        b.graph.node[-1].attr["value"].tensor.CopyFrom(kernel)
        if cast:
            k = b.node("k", "Cast", [k], SrcT=Dtype(kernel.dtype), DstT=FLOAT, Truncate=False)
    b.op("y", "MatMul", x, k, transpose_a=False, transpose_b=False)
    return b


def run(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def converted(tmp_path: Path, graph: graph_pb2.GraphDef, name: str, as_text: bool) -> Path:
    """`graph2py GRAPH -o DIR` (must succeed); the graph file."""
    path = tmp_path / name
    path.write_bytes(text(graph) if as_text else binary(graph))
    result = run("-m", "codegen", path, "-o", tmp_path / "out")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return path


def saved(tmp_path: Path, graph_file: Path) -> np.ndarray:
    """Run `python load_weights.py GRAPH --save W.weights.h5`; the kernel it saved."""
    import h5py

    target = tmp_path / "w.weights.h5"
    result = run(tmp_path / "out" / "load_weights.py", graph_file, "--save", target)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "saved" in result.stdout
    found = []
    with h5py.File(target) as f:
        f.visititems(
            lambda name, item: found.append(item[()]) if isinstance(item, h5py.Dataset) else None
        )
    (kernel,) = [v for v in found if v.shape == (4, 3)]
    return kernel


@pytest.mark.parametrize("name, as_text", [("text.pb", True), ("binary.pbtxt", False)])
def test_a_misleading_suffix_converts_and_loads(tmp_path, name, as_text):
    graph = dense().graph
    path = converted(tmp_path, graph, name, as_text)
    expected = decode_attr(graph.node[1].attr["value"])
    np.testing.assert_array_equal(saved(tmp_path, path), expected)


def test_a_uint16_constant_cast_to_float_loads(tmp_path):
    values = np.arange(60000, 60012, dtype=np.uint16).reshape(4, 3)
    kernel = tensor(DT.Value("DT_UINT16"), [4, 3], values.tobytes())
    path = converted(tmp_path, dense(kernel, cast=True).graph, "graph.pb", as_text=False)
    loader = (tmp_path / "out" / "load_weights.py").read_text()
    assert '"y/kernel": ("k_raw", lambda x: x.astype("float32")),' in loader
    np.testing.assert_array_equal(saved(tmp_path, path), values.astype(np.float32))


def one_error_line(result, *fragments):
    """Exit 1, one line on stderr naming the problem, no traceback, nothing saved."""
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("load_weights.py: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""


@pytest.fixture(scope="module")
def dense_out(tmp_path_factory) -> Path:
    """A directory holding a converted graph (graph.pb) and its code (out/)."""
    root = tmp_path_factory.mktemp("dense")
    converted(root, dense().graph, "graph.pb", as_text=False)
    return root


def test_a_constant_claiming_10_12_elements_is_refused_by_both(dense_out, tmp_path):
    bomb = tmp_path / "bomb.pb"
    bomb_kernel = tensor(DT.Value("DT_FLOAT"), [10**6, 10**6], field="float_val", values=[1])
    bomb.write_bytes(binary(dense(bomb_kernel).graph))
    result = run("-m", "codegen", bomb, "-o", tmp_path / "out")
    assert result.returncode == 3 and "would expand" in result.stderr
    target = tmp_path / "w.weights.h5"
    result = run(dense_out / "out" / "load_weights.py", bomb, "--save", target)
    one_error_line(result, str(bomb), "constant node 'k'", "would expand 1 stored values")
    assert not target.exists()


@pytest.mark.parametrize(
    "content, fragments",
    [
        (None, ["cannot read"]),
        (b"node { name: 'k' ", ["not a text GraphDef"]),
        (bytes(range(256)) * 4, ["not a binary GraphDef"]),
        (b"", ["file is empty"]),
    ],
    ids=["missing", "truncated_text", "random_bytes", "empty"],
)
def test_an_unreadable_source_is_one_line(dense_out, tmp_path, content, fragments):
    source = tmp_path / "other.pb"
    if content is not None:
        source.write_bytes(content)
    target = tmp_path / "w.keras"
    result = run(dense_out / "out" / "load_weights.py", source, "--save", target)
    one_error_line(result, str(source), *fragments)
    assert not target.exists()


def test_a_weight_inside_a_function_body_loads(tmp_path):
    """Inlined, the weight is named call/k, which no node of the file has: the loader reads it
    from the function library (`dense_fn:k`)."""
    from graphs import Func

    b = Builder()
    x = b.placeholder("x", (None, 4))
    f = b.function("dense_fn", {"a": FLOAT}, {"out": FLOAT})
    f.weight("k", 4, 3)
    f.op("m", "MatMul", "a", "k:output:0", transpose_a=False, transpose_b=False)
    f.ret["out"] = "m:product:0"
    b.node("call", "StatefulPartitionedCall", [x], f=Func("dense_fn"), Tin=[FLOAT], Tout=[FLOAT])
    b.op("y", "Identity", "call")
    path = tmp_path / "graph.pb"
    path.write_bytes(binary(b.graph))
    _, files = convert(path)
    module = types.ModuleType("generated_load_weights")
    module.__file__ = "load_weights.py"  # as imported from its file (SOURCE)
    exec(compile(files["load_weights.py"], "load_weights.py", "exec"), module.__dict__)
    ((kernel, names),) = module.read_weights(str(path)).values()
    assert names == ["dense_fn:k"]
    stored = next(n for n in b.graph.library.function[0].node_def if n.name == "k")
    np.testing.assert_array_equal(kernel, tensor_to_numpy(stored.attr["value"].tensor))
    assert '": "dense_fn:k",' in files["load_weights.py"]
