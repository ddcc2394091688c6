"""Resource bounds that depend on the input, not on luck: hostile inputs that used to hang, run
for minutes or allocate until MemoryError each get one error line and exit 3, fast and in
bounded memory.

- Files: only regular files are opened (a FIFO or a link to /dev/zero is refused, never read).
- Constants: decoded (short forms expanded) and folded constants draw on one budget per
  conversion, proportional to the input's size (`--max-constant-mb` sets it); an allocation is
  checked before it is made.
- Inlining is bounded by the nodes it would produce; ranks above TensorFlow's 254 are refused;
  text nested deeper than the parser's recursion is refused.
- Checkpoints: wire types and lengths are checked before use, a slice must lie in its data file,
  snappy decompression stops at the declared length.

Every child runs with its address space limited (LIMIT_BYTES) and a timeout (SECONDS): a bound
that regresses fails the test with MemoryError or a timeout instead of exhausting the machine.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import graph_pb2, types_pb2

from codegen.checkpoint import CheckpointError, CheckpointReader, _slice_key, _snappy, crc32c_masked
from graphs import BOOL, FLOAT, INT32, Builder, Func, attr, const, int_const, op, placeholder

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "formats"
PREFIX = "graph2py: error: "
LIMIT_BYTES = 1536 << 20  # address space of each conversion (a conversion of LeNet needs < 1 GiB)
SECONDS = 10


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def run(*args, seconds: float = SECONDS) -> subprocess.CompletedProcess:
    """`python -m codegen ARGS` in at most LIMIT_BYTES of address space; fails the test when it
    takes longer than `seconds` (a hang, or a bound that no longer holds)."""
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "codegen", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=seconds,
            preexec_fn=_limited,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {seconds} s")
    result.seconds = time.monotonic() - start
    return result


def rejected(result, *fragments: str) -> str:
    """Exit 3 with exactly one error line holding every fragment; no traceback, no output."""
    assert result.returncode == 3, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith(PREFIX) and "Traceback" not in result.stderr, lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "graph.pbtxt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- only regular files are opened -------------------------------------------------------------


@pytest.fixture()
def savedmodel(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(FIXTURES / "sharded_savedmodel", copy)
    return copy


@pytest.mark.parametrize(
    "name", ["variables.index", "variables.data-00001-of-00003"], ids=["index", "shard"]
)
def test_fifo_in_a_savedmodel_is_refused_not_opened(savedmodel, name):
    """A FIFO blocks `open()` until a writer comes: it must never be opened for reading."""
    fifo = savedmodel / "variables" / name
    fifo.unlink()
    os.mkfifo(fifo)
    rejected(run(savedmodel), name, "not a regular file")


@pytest.mark.parametrize(
    "name, device",
    [
        ("graph.pb", "/dev/zero"),
        ("graph.pbtxt", "/dev/urandom"),
        ("model.ckpt.meta", "/dev/urandom"),
        ("saved/saved_model.pb", "/dev/zero"),
        ("saved/variables/variables.index", "/dev/zero"),
    ],
)
def test_link_to_an_endless_device_is_refused(tmp_path, name, device):
    if name.startswith("saved/"):
        shutil.copytree(FIXTURES / "tf1_savedmodel", tmp_path / "saved")
        (tmp_path / name).unlink()
    elif name.endswith(".meta"):
        for file in (FIXTURES / "tf1_checkpoint").glob("model.ckpt.*"):
            shutil.copy(file, tmp_path)
        (tmp_path / name).unlink()
    (tmp_path / name).symlink_to(device)
    source = tmp_path / "saved" if name.startswith("saved/") else tmp_path / name
    rejected(run(source), Path(name).name, "not a regular file")


def test_regular_file_reader_reads_no_more_than_the_size(tmp_path):
    from codegen.files import read_input

    path = tmp_path / "g.pb"
    path.write_bytes(b"abc")
    assert read_input(path) == b"abc"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        read_input(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        read_input(tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_generated_graph_loader_reads_only_regular_files(tmp_path, kind):
    """A GraphDef's load_weights.py reads the graph as graph2py does (codegen/files.py): given
    a FIFO or a link to /dev/zero, one error line, not a hang or a MemoryError."""
    graph = write(
        tmp_path, placeholder() + const("w", [[1.0] * 3] * 4) + op("y", "MatMul", "x", "w")
    )
    out = tmp_path / "out"
    result = run(graph, "-o", out)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "weights.pbtxt"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import load_weights\n"
        "try:\n    load_weights.read_weights(sys.argv[2])\n"
        "except ValueError as err:\n    print(err)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, str(out), str(path)],
            capture_output=True,
            text=True,
            timeout=SECONDS,
            preexec_fn=_limited,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still reading after {SECONDS} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not a regular file" in result.stdout, result.stdout


LANGUAGE_SERVER_READS = {
    # the digest of a graph a model names (hovers, go to definition)
    "digest": "from codegen.lsp.graphs import ShaCache; print(ShaCache().get(PATH))",
    # the options an existing model.py was generated with (Regenerate, Check)
    "options": "from codegen.lsp.worker import generated_options; "
    "print(generated_options('g.pb', str(PATH.parent)))",
}


@pytest.mark.parametrize("reads", LANGUAGE_SERVER_READS)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_language_server_reads_only_regular_files(tmp_path, reads, kind):
    """The language server reads what graph2py reads, through codegen/files.py: a FIFO or a
    link to /dev/zero named like a graph or a model.py is no file to it, not a hang."""
    path = tmp_path / "model.py"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind)
    script = (
        f"from pathlib import Path; PATH = Path({str(path)!r}); " + LANGUAGE_SERVER_READS[reads]
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=SECONDS,
            preexec_fn=_limited,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still reading after {SECONDS} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() in ("None", "{}"), result.stdout


# -- the constant budget -----------------------------------------------------------------------


def scalar(name: str, value: int) -> str:
    """An int32 scalar Const."""
    return int_const(name, [value]).replace("dim { size: 1 } ", "")


def fill(name: str, dims: list[int], value: float = 1.0) -> str:
    return (
        int_const(f"{name}/dims", dims)
        + const(f"{name}/value", value, shape=())
        + op(
            name,
            "Fill",
            f"{name}/dims",
            f"{name}/value",
            attrs='attr { key: "T" value { type: DT_FLOAT } }',
        )
    )


def test_fill_of_a_huge_shape_is_refused_before_allocating(tmp_path):
    text = placeholder() + fill("big", [1 << 20, 1 << 20]) + op("out", "AddV2", "x", "big")
    line = rejected(run(write(tmp_path, text)), "node 'big'", "4 TiB", "--max-constant-mb")
    assert "constant budget" in line


def test_many_fills_each_within_the_old_cap_are_refused_once_the_budget_is_spent(tmp_path):
    """40 Fills of 62.5 MiB each (under the old per-result cap): 2.4 GiB in all, folded one
    by one; the budget (64 MiB for a small file) pays for the first."""
    text = placeholder(shape=(-1, 4000))
    for i in range(40):
        text += fill(f"f{i}", [4096, 4000], float(i))
        text += op(f"a{i}", "AddV2", "x" if i == 0 else f"a{i - 1}", f"f{i}")
    rejected(run(write(tmp_path, text)), "node 'f1'", "62.5 MiB", "constant budget")


@pytest.mark.parametrize("kind", ["ConcatV2", "Pack"])
def test_joining_one_constant_a_thousand_times_is_refused(tmp_path, kind):
    """4 MiB, read 1000 times by one ConcatV2 (or Pack): 4 GiB from a 100 KB file."""
    text = placeholder(shape=(-1, 1024)) + fill("base", [1024, 1024])
    inputs = ["base"] * 1000
    if kind == "ConcatV2":
        text += scalar("axis", 0)
        inputs.append("axis")
        attrs = 'attr { key: "N" value { i: 1000 } } attr { key: "T" value { type: DT_FLOAT } }'
    else:
        attrs = 'attr { key: "N" value { i: 1000 } } attr { key: "T" value { type: DT_FLOAT } }'
    text += op("joined", kind, *inputs, attrs=attrs) + op("out", "AddV2", "x", "joined")
    rejected(run(write(tmp_path, text)), "node 'joined'", "3.9 GiB", "constant budget")


def test_matmul_kernel_checks_the_size_before_allocating():
    """MatMul is folded only by the RNN step check (passes/rnn/evaluate.py), on a loop body's
    constants: [n, 1] @ [1, m] makes n * m elements of two small operands. 4 TiB here, refused
    naming the node instead of a MemoryError."""
    from codegen import optable
    from codegen.budget import ConstantBudgetError
    from codegen.graph import Node

    kernel = optable.get("MatMul").kernel
    a, b = np.ones((1 << 20, 1), np.float32), np.ones((1, 1 << 20), np.float32)
    with pytest.raises(ConstantBudgetError, match="node 'mm'.*4 TiB"):
        kernel(Node("mm", "MatMul", ["a", "b"]), a, b)
    node = Node("mm", "MatMul", ["a", "b"], {"transpose_a": True, "transpose_b": True})
    assert kernel(node, np.ones((3, 2)), np.ones((4, 3))).shape == (2, 4)


def test_range_of_a_trillion_is_refused(tmp_path):
    text = (
        placeholder(shape=(-1,))
        + scalar("start", 0)
        + scalar("limit", 10**9)
        + scalar("delta", 1)
        + op(
            "r",
            "Range",
            "start",
            "limit",
            "delta",
            attrs='attr { key: "Tidx" value { type: DT_INT32 } }',
        )
        + op("c", "Cast", "r", attrs='attr { key: "DstT" value { type: DT_FLOAT } }')
        + op("out", "AddV2", "x", "c")
    )
    rejected(run(write(tmp_path, text)), "node 'r'", "constant budget")


def test_split_into_a_billion_parts_is_refused_at_decode(tmp_path):
    text = (
        placeholder(shape=(-1, 0))
        + scalar("axis", 1)
        + op("s", "Split", "axis", "x", num_split=10**9)
        + op("r", "Relu", "s")
    )
    rejected(run(write(tmp_path, text)), "node 's'", "1000000000")


def test_an_op_without_a_record_is_under_the_output_bound_too(tmp_path):
    """DynamicPartition has no op-table record: its output count (num_partitions) comes from
    TensorFlow's registry, and the 65,536-output bound holds for it as for Split."""
    text = (
        placeholder(shape=(-1,))
        + int_const("parts", [0])
        + op("dp", "DynamicPartition", "x", "parts", num_partitions=10**9)
        + op("r", "Relu", "dp:5")
    )
    rejected(run(write(tmp_path, text)), "node 'dp'", "1000000000 outputs", "65536")


def short_form_constants(count: int, dims: tuple[int, ...]) -> str:
    text = placeholder()
    for i in range(count):
        text += const(f"c{i}", 1.0, shape=dims)  # one stored value, repeated to the shape
    return text + op("out", "Relu", "x")


def test_many_short_form_constants_are_refused_once_the_budget_is_spent(tmp_path):
    """120 constants of 16 MiB each (under the old per-tensor cap), none of them used: 1.9 GiB
    expanded while decoding, before pruning."""
    path = write(tmp_path, short_form_constants(120, (4096, 1024)))
    rejected(run(path), "node 'c4'", "16 MiB", "constant budget", "--max-constant-mb")


def test_max_constant_mb_raises_and_lowers_the_budget(tmp_path):
    path = write(tmp_path, short_form_constants(5, (4096, 1024)))
    rejected(run(path), "node 'c4'")
    out = tmp_path / "out"
    result = run(path, "--max-constant-mb", "100", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "--max-constant-mb 100" in (out / "model.py").read_text()
    rejected(run(path, "--max-constant-mb", "20"), "node 'c1'", "20 MiB")


def test_the_budget_grows_with_the_input(tmp_path):
    """An 8 MiB weight scaled 12 times: 96 MiB folded, more than the 64 MiB minimum, within
    the 128 MiB that 16 times the input's size allows."""
    b = Builder()
    b.placeholder("x", (None, 1024))
    w = b.const("w", np.ones((1024, 2048), np.float32))
    for i in range(12):
        w = b.op(f"scaled{i}", "Mul", w, b.const(f"s{i}", np.float32(1.5)))
    b.op("out", "MatMul", "x", w)
    path = tmp_path / "g.pb"
    path.write_bytes(b.graph.SerializeToString())
    result = run(path)
    assert result.returncode == 0, result.stderr
    rejected(run(path, "--max-constant-mb", "60"), "node 'scaled7'", "60 MiB as given")


def loop_with_a_fill(dims: tuple[int, int]) -> graph_pb2.GraphDef:
    """A functional While whose body adds a Fill of `dims` to its loop variable: only the
    patterns (patterns/control.py, writing the body out as keras.ops) fold that Fill, after
    the passes."""
    b = Builder()
    x = b.placeholder("x", [None, *dims])
    args = {"i": INT32, "v": FLOAT}
    cond = b.function("cond", args, {"identity": BOOL})
    less = cond.op("Less", "Less", "i", cond.const("Less/y", np.int32(3)), T=INT32)
    cond.op("Identity", "Identity", f"{less}:z:0", T=BOOL)
    cond.ret["identity"] = "Identity:output:0"
    body = b.function("body", args, {"identity": INT32, "identity_1": FLOAT})
    step = body.op("add", "AddV2", "i", body.const("add/y", np.int32(1)), T=INT32)
    shape = body.const("big/dims", np.array(dims, np.int32))
    big = body.op("big", "Fill", shape, body.const("big/value", np.float32(0.5)), index_type=INT32)
    total = body.op("add_1", "AddV2", "v", f"{big}:output:0")
    body.ret["identity"] = f"{step}:z:0"
    body.ret["identity_1"] = f"{total}:z:0"
    counter = b.const("while/loop_counter", np.int32(0))
    loop = b.node(
        "while",
        "While",
        [counter, x],
        T=[INT32, FLOAT],
        cond=Func("cond"),
        body=Func("body"),
        parallel_iterations=10,
        output_shapes=[],
    )
    b.op("Identity", "Identity", f"{loop}:1")
    return b.graph


def test_constants_folded_by_the_patterns_draw_on_the_budget(tmp_path):
    """A loop body's Fill of 2 MiB is folded while the patterns run (analyze.py), after every
    pass: --max-constant-mb 1 refuses it there too, naming the node."""
    path = tmp_path / "g.pb"
    path.write_bytes(loop_with_a_fill((512, 1024)).SerializeToString())
    rejected(run(path, "--max-constant-mb", "1"), "/big'", "Fill", "2 MiB", "1 MiB as given")
    small = tmp_path / "small.pb"
    small.write_bytes(loop_with_a_fill((2, 3)).SerializeToString())
    result = run(small, "--max-constant-mb", "1")
    assert result.returncode == 0, result.stderr


# -- inlining, ranks, nesting ----------------------------------------------------------------


def exponential_library(levels: int = 16, calls: int = 4) -> graph_pb2.GraphDef:
    """f0 calls f1 `calls` times, f1 calls f2 `calls` times, ...: calls**levels bodies."""
    b = Builder()
    x = b.placeholder("x", (None, 4))
    b.node("call", "PartitionedCall", [x], f=Func("f0"), Tin=[FLOAT], Tout=[FLOAT])
    b.op("out", "Relu", "call")
    for level in range(levels):
        f = b.function(f"f{level}", {"x": FLOAT}, {"y": FLOAT})
        if level == levels - 1:
            f.op("id", "Identity", "x")
            f.ret["y"] = "id:output:0"
            continue
        parts = []
        for i in range(calls):
            callee = Func(f"f{level + 1}")
            f.node(f"c{i}", "PartitionedCall", ["x"], f=callee, Tin=[FLOAT], Tout=[FLOAT])
            parts.append(f"c{i}:output:0")
        total = parts[0]
        for i, part in enumerate(parts[1:]):
            total = f.op(f"a{i}", "AddV2", total, part) + ":z:0"
        f.ret["y"] = total
    return b.graph


def test_exponential_function_library_is_refused_before_inlining(tmp_path):
    path = tmp_path / "g.pb"
    path.write_bytes(exponential_library().SerializeToString())
    line = rejected(run(path), "inlining", "nodes")
    assert "1,000,000" in line


def test_a_modest_library_still_inlines(tmp_path):
    path = tmp_path / "g.pb"
    path.write_bytes(exponential_library(levels=4, calls=3).SerializeToString())
    result = run(path)
    assert result.returncode == 0, result.stderr


def test_placeholder_of_rank_a_million_is_refused_at_decode(tmp_path):
    b = Builder()
    b.placeholder("x", (1,) * 1_000_001)
    b.op("r", "Relu", "x")
    path = tmp_path / "g.pb"
    path.write_bytes(b.graph.SerializeToString())
    rejected(run(path), "node 'x'", "rank 1000001", "254")


def test_constant_of_rank_300_is_refused_at_decode(tmp_path):
    text = placeholder() + const("c", 1.0, shape=(1,) * 300) + op("r", "Relu", "x")
    rejected(run(write(tmp_path, text)), "node 'c'", "rank 300", "254")


def test_text_nested_deeper_than_the_parser_recurses(tmp_path):
    """NameAttrList holds AttrValues, which hold NameAttrLists: text can nest without end."""
    depth = 5000
    nested = 'attr { key: "a" value { func { name: "f" ' * depth + "} } } " * depth
    text = placeholder() + f'node {{ name: "r" op: "Relu" input: "x" {nested}}}\n'
    rejected(run(write(tmp_path, text)), "graph.pbtxt", "nested too deeply")


def test_text_saved_model_nested_too_deeply(tmp_path):
    depth = 5000
    nested = 'attr { key: "a" value { func { name: "f" ' * depth + "} } } " * depth
    text = f'meta_graphs {{ graph_def {{ node {{ name: "r" op: "Relu" {nested}}} }} }}\n'
    (tmp_path / "saved").mkdir()
    write(tmp_path / "saved", text, "saved_model.pbtxt")
    rejected(run(tmp_path / "saved"), "saved_model.pbtxt", "nested too deeply")


# -- checkpoints -------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def message(*fields: tuple[int, int | bytes]) -> bytes:
    """A protobuf message: an int field as a varint, a bytes field length-delimited."""
    out = b""
    for number, value in fields:
        if isinstance(value, int):
            out += varint(number << 3) + varint(value)
        else:
            out += varint(number << 3 | 2) + varint(len(value)) + value
    return out


def table(entries: dict[bytes, bytes], data_block: bytes | None = None, kind: int = 0) -> bytes:
    """A LevelDB table as checkpoint indexes are: one data block (`data_block` replaces its
    stored bytes, `kind` 1 for snappy), one index block, the footer."""
    block = b""
    for key in sorted(entries):
        block += varint(0) + varint(len(key)) + varint(len(entries[key])) + key + entries[key]
    block += (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    stored = block if data_block is None else data_block

    def trailer(content: bytes, kind: int) -> bytes:
        return bytes([kind]) + crc32c_masked(content + bytes([kind])).to_bytes(4, "little")

    out = stored + trailer(stored, kind)
    handle = varint(0) + varint(len(stored))
    last = max(entries) + b"\xff"
    index = varint(0) + varint(len(last)) + varint(len(handle)) + last + handle
    index += (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    index_at = len(out)
    out += index + trailer(index, 0)
    footer = (varint(0) + varint(0) + varint(index_at) + varint(len(index))).ljust(40, b"\0")
    return out + footer + (0xDB4775248B80FB57).to_bytes(8, "little")


def snappy_literal(data: bytes) -> bytes:
    """`data` as a snappy block of literals only."""
    out = varint(len(data))
    for i in range(0, len(data), 60):
        chunk = data[i : i + 60]
        out += bytes([(len(chunk) - 1) << 2]) + chunk
    return out


@pytest.fixture()
def checkpoint(tmp_path):
    """A copy of the TF1 checkpoint (GraphDef + --checkpoint): (graph, prefix, its entries)."""
    for file in (FIXTURES / "tf1_checkpoint").iterdir():
        shutil.copy(file, tmp_path)
    prefix = tmp_path / "model.ckpt"
    entries = CheckpointReader._read_table((tmp_path / "model.ckpt.index").read_bytes())
    return tmp_path / "graph.pbtxt", prefix, entries


def test_table_writer_round_trips(checkpoint):
    graph, prefix, entries = checkpoint
    (prefix.parent / "model.ckpt.index").write_bytes(table(entries))
    assert CheckpointReader(prefix).tensor("net/dense_bias").shape == (5,)
    block = table(entries)
    compressed = table(entries, data_block=snappy_literal(block[: block.index(b"\xff")]), kind=1)
    assert compressed != block


def convert_with(checkpoint, entries: dict[bytes, bytes], **table_args):
    graph, prefix, _ = checkpoint
    (prefix.parent / "model.ckpt.index").write_bytes(table(entries, **table_args))
    return run(graph, "--checkpoint", prefix)


DENSE = b"net/dense_bias"  # dtype 1, shape [5], offset 512, size 20


@pytest.mark.parametrize(
    "fields, problem",
    [
        (((1, 1), (2, 5), (4, 512), (5, 20)), "field 2"),  # the shape as a varint
        (((1, 1), (2, message((2, message((1, 5))))), (4, b"\x80\x04"), (5, 20)), "field 4"),
        (((1, b"\x01"), (2, message((2, message((1, 5))))), (4, 512), (5, 20)), "field 1"),
        (((1, 1), (2, message((2, 5))), (4, 512), (5, 20)), "field 2"),  # a dim as a varint
    ],
    ids=["shape-varint", "offset-bytes", "dtype-bytes", "dim-varint"],
)
def test_wrong_wire_types_are_refused(checkpoint, fields, problem):
    entries = dict(checkpoint[2])
    entries[DENSE] = message(*fields)
    rejected(
        convert_with(checkpoint, entries), "model.ckpt", "net/dense_bias", problem, "wire type"
    )


def test_header_with_a_wrong_wire_type_is_refused(checkpoint):
    entries = dict(checkpoint[2])
    entries[b""] = message((1, b"\x01"), (3, message((1, 1))))
    rejected(convert_with(checkpoint, entries), "model.ckpt.index", "wire type")


def test_length_past_the_end_is_refused(checkpoint):
    entries = dict(checkpoint[2])
    entries[DENSE] = varint(2 << 3 | 2) + varint(1 << 40) + b"\x12\x02"
    rejected(convert_with(checkpoint, entries), "net/dense_bias", "past the end")


def test_slice_claiming_4_tib_is_refused_before_allocating(tmp_path):
    """A sliced variable whose shape and first slice claim 4 TiB: the slice is not in its data
    file, which is found before anything is allocated."""
    copy = tmp_path / "model"
    shutil.copytree(FIXTURES / "sliced_savedmodel", copy)
    index = copy / "variables" / "variables.index"
    entries = CheckpointReader._read_table(index.read_bytes())
    key = "w/dense_kernel/.ATTRIBUTES/VARIABLE_VALUE"
    full = CheckpointReader(copy / "variables" / "variables").entry(key)
    total = (1 << 20) * (1 << 20) * 4
    fields = [(1, 1), (2, message((2, message((1, 1 << 20))), (2, message((1, 1 << 20)))))]
    fields += [(7, s) for s in full[-1]]
    entries[key.encode()] = message(*fields)
    first = _slice_key(key, [0, 0], [1, 5]).encode("utf-8", "surrogateescape")
    rest = 64 * 5 * 4 - 20
    shape = message((2, message((1, 1))), (2, message((1, 5))))
    entries[first] = message((1, 1), (2, shape), (5, total - rest))
    index.write_bytes(table(entries))
    rejected(run(copy), "w/dense_kernel", "data file")


def test_snappy_bomb_stops_at_the_declared_length(checkpoint):
    """A data block that declares 100 bytes and would expand to 200 MB (copies of 64 bytes, 3
    bytes each): decompression stops at byte 100."""
    copy = bytes([((64 - 1) << 2) | 2]) + (1).to_bytes(2, "little")
    bomb = varint(100) + b"\x00a" + copy * 3_300_000
    rejected(
        convert_with(checkpoint, checkpoint[2], data_block=bomb, kind=1),
        "model.ckpt.index",
        "snappy",
    )


def test_snappy_declared_length_is_checked_against_the_block():
    with pytest.raises(CheckpointError, match="declares"):
        _snappy(varint(1 << 40) + b"\x00a")
    data = bytes(range(200))
    assert _snappy(snappy_literal(data)) == data
    overlap = varint(9) + b"\x08abc" + bytes([((6 - 1) << 2) | 2]) + (3).to_bytes(2, "little")
    assert _snappy(overlap) == b"abcabcabc"
    with pytest.raises(CheckpointError):
        _snappy(varint(5) + b"\x08abc" + bytes([((6 - 1) << 2) | 2]) + (3).to_bytes(2, "little"))


def test_generated_checkpoint_loader_reads_only_regular_files(tmp_path):
    """The reader checkpoint loaders import (codegen.runtime) opens files as graph2py does: a
    FIFO for the index is one error line (run in a child: a hang fails the test, not the
    session)."""
    shutil.copytree(FIXTURES / "tf1_checkpoint", tmp_path / "ckpt")
    index = tmp_path / "ckpt" / "model.ckpt.index"
    index.unlink()
    os.mkfifo(index)
    script = (
        "import sys\nfrom codegen.runtime import checkpoint_tensors\n"
        "try:\n    checkpoint_tensors(sys.argv[1])\nexcept ValueError as err:\n    print(err)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, tmp_path / "ckpt" / "model.ckpt"],
            capture_output=True,
            text=True,
            timeout=SECONDS,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the checkpoint reader hangs on a FIFO")
    assert "model.ckpt.index: cannot read the checkpoint index: not a regular file" in result.stdout


def test_mutated_entries_never_crash_the_reader(tmp_path):
    """Entries (not bytes of the file, which block checksums mostly catch) mutated and written
    into a valid table: a value or CheckpointError, never TypeError, IndexError or a huge
    allocation."""
    source = FIXTURES / "sliced_savedmodel" / "variables"
    shutil.copytree(source, tmp_path / "variables")
    original = CheckpointReader._read_table((source / "variables.index").read_bytes())
    keys = sorted(original)
    rng = np.random.default_rng(0)
    for _ in range(300):
        entries = dict(original)
        key = keys[rng.integers(len(keys))]
        data = bytearray(entries[key])
        for _ in range(rng.integers(1, 4)):
            if data:
                position = rng.integers(len(data))
                data[position] = rng.choice([data[position] ^ 2, data[position] ^ 0x80, 0xFF, 0])
        if rng.random() < 0.2:
            data = data[: rng.integers(0, len(data) + 1)]
        entries[key] = bytes(data)
        (tmp_path / "variables" / "variables.index").write_bytes(table(entries))
        try:
            reader = CheckpointReader(tmp_path / "variables" / "variables")
            for name in reader.keys():
                if not name.startswith("_"):
                    reader.tensor(name)
        except CheckpointError:
            pass


def test_running_out_of_memory_is_one_error_line(tmp_path, monkeypatch, capsys):
    """Found by the fuzz campaign (seed 14, cases 37497, 47142, 66096: eight 256 MiB
    constants under a 2 GiB address-space cap): a budget that fits the input can still exceed
    what the process may allocate. That is one line, exit 3, not an internal error."""
    from codegen import cli, convert

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 256. MiB for an array")

    monkeypatch.setattr(convert, "convert", exhausted)
    monkeypatch.setattr(cli, "convert", exhausted, raising=False)
    graph = Path(__file__).parent.parent / "examples" / "lenet.pb"
    assert cli.main([str(graph), "-o", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graph2py: error: out of memory")
    assert not (tmp_path / "out").exists()
