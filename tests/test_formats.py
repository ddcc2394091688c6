"""Input formats: SavedModels (TF2, TF1, sharded), TF1 meta graph + checkpoint, GraphDef +
--checkpoint. Parity is the test: each fixture is converted, its weights loaded from the fixture
by the generated loader, and the model compared with TensorFlow running the original.

The fixtures come from tests/fixtures/formats/make_fixtures.py (every variable random, so a
swapped weight fails).
"""

from __future__ import annotations

import mmap
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen.checkpoint import (
    CheckpointError,
    CheckpointReader,
    _crc_update,
    _snappy,
    crc32c_masked,
)
from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.options import Options
from codegen.recipes import Variable
from codegen.verify import import_generated, max_error, seeded_inputs

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "formats"
CKPT = FIXTURES / "tf1_checkpoint"

# name -> (path, convert options, what load_weights takes, signature argument names)
CASES = {
    "tf2_savedmodel": (FIXTURES / "tf2_savedmodel", {}, FIXTURES / "tf2_savedmodel", ["pixels"]),
    "tf2_scores": (
        FIXTURES / "tf2_savedmodel",
        {"signature": "scores"},
        FIXTURES / "tf2_savedmodel",
        ["pixels"],
    ),
    "tf1_savedmodel": (FIXTURES / "tf1_savedmodel", {}, FIXTURES / "tf1_savedmodel", ["image"]),
    "sharded_savedmodel": (
        FIXTURES / "sharded_savedmodel",
        {},
        FIXTURES / "sharded_savedmodel",
        ["image"],
    ),
    "sliced_savedmodel": (
        FIXTURES / "sliced_savedmodel",
        {},
        FIXTURES / "sliced_savedmodel",
        ["pixels"],
    ),
    "tf1_meta": (CKPT / "model.ckpt.meta", {}, CKPT / "model.ckpt.meta", None),
    "tf1_prefix": (CKPT / "model.ckpt", {}, CKPT / "model.ckpt", None),
    "graphdef_checkpoint": (
        CKPT / "graph.pbtxt",
        {"checkpoint": str(CKPT / "model.ckpt")},
        CKPT / "model.ckpt",
        None,
    ),
}


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )


def cli_options(options: dict) -> list[str]:
    return [a for key, value in options.items() for a in (f"--{key}", str(value))]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    done = {}

    def get(name):
        if name not in done:
            path, options, _, _ = CASES[name]
            spec, files = convert(path, Options(**options))
            write_atomically(root / name, files)
            done[name] = (spec, files, root / name)
        return done[name]

    return get


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """The original model run by TensorFlow, independently of graph2py."""
    import tensorflow as tf

    path, options, _, args = CASES[name]
    if path.is_dir():
        tf.get_logger().setLevel("ERROR")
        fn = tf.saved_model.load(str(path)).signatures[options.get("signature", "serving_default")]
        (result,) = fn(**{args[0]: tf.constant(x)}).values()
        return result.numpy()
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        saver = tf.compat.v1.train.import_meta_graph(str(CKPT / "model.ckpt.meta"))
        saver.restore(sess, str(CKPT / "model.ckpt"))
        return sess.run("probabilities:0", {"pixels:0": x})


@pytest.mark.parametrize("name", list(CASES))
def test_parity(converted, name):
    spec, _, out = converted(name)
    model_module, loader = import_generated(out)
    model = loader.load_weights(model_module.build_model(), str(CASES[name][2]))
    x = seeded_inputs([spec.inputs[0].shape], ["float32"], batch=3, seed=7)[0]
    expected = reference(name, x)
    actual = np.asarray(model(x, training=False))
    error, bound = max_error(expected, actual)
    assert error <= bound, f"{name}: max |Δ| {error} > {bound}"


@pytest.mark.parametrize("name", list(CASES))
def test_weights_come_from_the_checkpoint(converted, name):
    """No frozen graph: every weight is a Variable(key) read, the loader reads no graph."""
    spec, files, _ = converted(name)

    def keys(recipe):
        assert not recipe.reads_graph(), recipe
        return [leaf.key for leaf in recipe.leaves() if isinstance(leaf, Variable)]

    read = [k for layer in spec.layers for w in layer.weights for k in keys(w.recipe)]
    assert len(read) == len(set(read)) == 8  # conv 2, batch norm 4, dense 2: each once
    source = files["load_weights.py"]
    assert "read = checkpoint_tensors(source)" in source and "graph_constants" not in source
    assert "tensorflow" not in source.replace("TensorFlow", "")


@pytest.mark.parametrize("name", ["tf2_savedmodel", "tf1_savedmodel"])
def test_savedmodel_keeps_the_signature_argument_names(converted, name):
    spec, files, out = converted(name)
    argument = CASES[name][3][0]
    assert [i.name for i in spec.inputs] == [argument]
    assert f'keras.Input(shape=(8, 8, 3), name="{argument}")' in files["model.py"]
    model_module, _ = import_generated(out)
    assert [t.name for t in model_module.build_model().inputs] == [argument]


def test_signature_option_picks_another_signature(converted):
    default, _, _ = converted("tf2_savedmodel")
    scores, _, _ = converted("tf2_scores")
    assert default.layers[-1].cls == "Softmax" and scores.layers[-1].cls == "Dense"


@pytest.mark.parametrize(
    "name", ["tf2_savedmodel", "sharded_savedmodel", "sliced_savedmodel", "graphdef_checkpoint"]
)
def test_cli_writes_the_same_files(converted, name, tmp_path):
    path, options, _, _ = CASES[name]
    result = cli(path, *cli_options(options), "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    # the header records the source relative to where the files are written
    _, files = convert(path, Options(**options), directory=tmp_path / "out")
    for file, text in files.items():
        assert (tmp_path / "out" / file).read_text() == text


def test_loader_script_imports_numpy_and_graph2py_runtime(converted, tmp_path):
    """load_weights.py imports numpy, the standard library and graph2py's reader interface
    (codegen.runtime: no TensorFlow, no Keras until it builds the model), and as a script
    saves the weights read from the SavedModel directory."""
    import ast

    _, files, out = converted("sharded_savedmodel")
    imported = set()
    for node in ast.walk(ast.parse(files["load_weights.py"])):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"argparse", "contextlib", "os", "sys", "numpy", "codegen.runtime", "model"}
    result = subprocess.run(
        [
            sys.executable,
            str(out / "load_weights.py"),
            str(FIXTURES / "sharded_savedmodel"),
            "--save",
            str(tmp_path / "model.weights.h5"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "model.weights.h5").is_file()


def test_keras_export(tmp_path):
    """A Keras 3 model exported with `model.export`: layer names survive, weights load."""
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_fixtures
    finally:
        sys.path.remove(str(FIXTURES))
    path = tmp_path / "exported"
    make_fixtures.keras_savedmodel(path, seed=6)
    spec, files = convert(path)
    assert [i.name for i in spec.inputs] == ["photo"]
    assert [l.name for l in spec.layers][:4] == ["conv", "bn", "relu", "pool"]
    write_atomically(tmp_path / "out", files)
    model_module, loader = import_generated(tmp_path / "out")
    model = loader.load_weights(model_module.build_model(), str(path))
    x = seeded_inputs([spec.inputs[0].shape], ["float32"], batch=3, seed=1)[0]
    import tensorflow as tf

    (expected,) = tf.saved_model.load(str(path)).signatures["serving_default"](photo=x).values()
    error, bound = max_error(expected.numpy(), np.asarray(model(x, training=False)))
    assert error <= bound


def test_savedmodel_conversion_does_not_import_tensorflow():
    code = (
        "import sys; from codegen.convert import convert; "
        f"convert({str(FIXTURES / 'tf2_savedmodel')!r}); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_check_runs_the_signature():
    result = cli("check", FIXTURES / "tf2_savedmodel", "--signature", "scores")
    assert result.returncode == 0, result.stderr
    assert "yes" in result.stdout


# -- the checkpoint reader ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        CKPT / "model.ckpt",
        FIXTURES / "tf2_savedmodel" / "variables" / "variables",
        FIXTURES / "sharded_savedmodel" / "variables" / "variables",
        FIXTURES / "sliced_savedmodel" / "variables" / "variables",
    ],
)
def test_reader_agrees_with_tensorflow(prefix):
    import tensorflow as tf

    ours, theirs = CheckpointReader(prefix), tf.train.load_checkpoint(str(prefix))
    assert set(ours.keys()) == set(theirs.get_variable_to_shape_map())
    for key in ours.keys():
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert ours.string(key) == theirs.get_tensor(key)
            continue
        value = ours.tensor(key)
        if ours.entry(key)[-1]:  # saved in slices: assembled into a new array
            np.testing.assert_array_equal(value, theirs.get_tensor(key))
            continue
        base = value
        while isinstance(base, np.ndarray):
            base = base.base
        base = base.obj if isinstance(base, memoryview) else base
        assert not value.flags.writeable and isinstance(base, mmap.mmap)  # a mapped view
        np.testing.assert_array_equal(value, theirs.get_tensor(key))


def test_sharded_fixtures_have_several_data_files():
    assert CheckpointReader(FIXTURES / "sharded_savedmodel/variables/variables").num_shards == 3
    assert len(list((FIXTURES / "sharded_savedmodel/variables").glob("variables.data-*"))) == 3
    sliced = CheckpointReader(FIXTURES / "sliced_savedmodel/variables/variables")
    assert sliced.num_shards >= 3
    assert any(sliced.entry(key)[-1] for key in sliced.keys())  # some variable is in slices


def test_crc32c_and_snappy():
    crc = 0xE3069283  # CRC-32C of b"123456789"
    assert crc32c_masked(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    data = np.random.default_rng(0).integers(0, 256, 300_001, dtype=np.uint8).tobytes()
    plain = _crc_update(0xFFFFFFFF, data) ^ 0xFFFFFFFF  # byte by byte, no numpy lanes
    assert crc32c_masked(data) == (((plain >> 15) | (plain << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert _snappy(bytes([9, 8, 97, 98, 99, 9, 3])) == b"abcabcabc"
    with pytest.raises(CheckpointError):
        _snappy(bytes([9, 8, 97, 98, 99, 9, 9]))


# -- bad input: one line, exit 3, nothing written ------------------------------------------------


def one_line_error(result, *fragments) -> str:
    assert result.returncode == 3, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def sharded_copy(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(FIXTURES / "sharded_savedmodel", copy)
    return copy


def test_missing_shard(sharded_copy, tmp_path):
    (sharded_copy / "variables" / "variables.data-00001-of-00003").unlink()
    result = cli(sharded_copy, "-o", tmp_path / "out")
    one_line_error(result, "variables.data-00001-of-00003", "cannot read checkpoint data")
    assert not (tmp_path / "out").exists()


def test_truncated_shard(sharded_copy):
    shard = sharded_copy / "variables" / "variables.data-00002-of-00003"
    shard.write_bytes(shard.read_bytes()[:10])
    one_line_error(cli(sharded_copy), "variables.data-00002-of-00003", "truncated")


def test_corrupted_shard(sharded_copy):
    shard = sharded_copy / "variables" / "variables.data-00000-of-00003"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    one_line_error(cli(sharded_copy), "checksum mismatch")


def test_truncated_index(sharded_copy):
    index = sharded_copy / "variables" / "variables.index"
    index.write_bytes(index.read_bytes()[:100])
    one_line_error(cli(sharded_copy), "variables.index", "not a checkpoint index")


def test_directory_that_is_not_a_savedmodel(tmp_path):
    one_line_error(
        cli(tmp_path),
        f"{tmp_path} is a directory but not a SavedModel: no saved_model.pb or saved_model.pbtxt",
    )


def test_unknown_signature_lists_the_available_ones():
    line = one_line_error(cli(FIXTURES / "tf2_savedmodel", "--signature", "nope"), "'nope'")
    assert "available: scores, serving_default" in line


def test_unknown_tag_lists_the_tag_sets():
    line = one_line_error(cli(FIXTURES / "tf2_savedmodel", "--tag", "train"), "'train'")
    assert "available: serve" in line


def test_checkpoint_without_the_variable():
    other = FIXTURES / "tf2_savedmodel" / "variables" / "variables"
    result = cli(CKPT / "graph.pbtxt", "--checkpoint", other)
    one_line_error(result, "the checkpoint has no variable 'net/")


def test_missing_checkpoint(tmp_path):
    result = cli(CKPT / "graph.pbtxt", "--checkpoint", tmp_path / "nothing")
    one_line_error(result, "nothing.index", "cannot read the checkpoint index")


def test_signature_option_on_a_graphdef_is_a_usage_error():
    result = cli(CKPT / "graph.pbtxt", "--signature", "serving_default")
    assert result.returncode == 2 and "SavedModels only" in result.stderr


def test_graphdef_with_variables_needs_a_checkpoint():
    result = cli(CKPT / "graph.pbtxt")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--checkpoint PREFIX" in result.stderr


@pytest.mark.parametrize("content", [b"", b"\x0a\xff\xff\xff", b"not a proto at all \xff\xfe"])
def test_corrupt_saved_model_pb(tmp_path, content):
    (tmp_path / "saved_model.pb").write_bytes(content)
    one_line_error(cli(tmp_path), "saved_model.pb")


def test_corrupt_meta_graph(tmp_path):
    meta = tmp_path / "model.ckpt.meta"
    meta.write_bytes((CKPT / "model.ckpt.meta").read_bytes()[:3000])
    one_line_error(cli(meta), "model.ckpt.meta")


def test_meta_graph_without_its_checkpoint(tmp_path):
    meta = tmp_path / "model.ckpt.meta"
    shutil.copy(CKPT / "model.ckpt.meta", meta)
    one_line_error(cli(meta), "model.ckpt.index", "cannot read the checkpoint index")


def test_text_saved_model(tmp_path):
    """saved_model.pbtxt is read like saved_model.pb."""
    from google.protobuf import text_format

    from codegen.formats import saved_model_class

    path = tmp_path / "model"
    shutil.copytree(FIXTURES / "tf2_savedmodel", path)
    saved = saved_model_class()()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    (path / "saved_model.pb").unlink()
    (path / "saved_model.pbtxt").write_text(text_format.MessageToString(saved))
    spec, _ = convert(path, files=("model.py",))
    assert [i.name for i in spec.inputs] == ["pixels"] and len(spec.layers) == 7


def test_checkpoint_option_on_a_savedmodel_is_a_usage_error():
    result = cli(FIXTURES / "tf2_savedmodel", "--checkpoint", CKPT / "model.ckpt")
    assert result.returncode == 2 and "variables/ directory" in result.stderr


def test_only_the_variables_the_outputs_need_are_read(monkeypatch):
    from codegen.analyze import analyze_file
    from codegen.passes.prune import TensorSpec

    read = []
    original = CheckpointReader.tensor

    def spy(self, key):
        read.append(key)
        return original(self, key)

    monkeypatch.setattr(CheckpointReader, "tensor", spy)
    spec = analyze_file(CKPT / "model.ckpt.meta", Options(outputs=[TensorSpec.parse("Relu:0")]))
    assert [layer.cls for layer in spec.layers] == ["Conv2D", "BatchNormalization", "ReLU"]
    assert sorted(read) == sorted(
        f"net/{k}"
        for k in ("conv_kernel", "conv_bias", "bn_gamma", "bn_beta", "bn_mean", "bn_variance")
    )


def test_inspect_a_savedmodel():
    import json

    result = cli("inspect", FIXTURES / "tf2_savedmodel", "--signature", "scores", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [t["name"] for t in summary["inputs"]] == ["pixels:0"]
    assert summary["convertible"] and summary["parameters"] == 453


def test_check_per_layer_on_a_savedmodel_says_why_not():
    result = cli("check", FIXTURES / "tf1_savedmodel", "--per-layer")
    assert result.returncode == 0, result.stderr
    assert "not available for SavedModels" in result.stdout


def _graph_with_constant_weights(tmp_path, kernel_filters: int):
    """A TF1 graph whose conv kernel is a variable scaled by a graph constant and whose dense
    kernel is a graph constant of its own, with its checkpoint: (GraphDef path, prefix, run)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 6, 6, 2], name="x")
        kernel = tf.compat.v1.get_variable(
            "kernel", initializer=rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
        )
        scale = tf.constant(rng.uniform(0.5, 2, 4).astype(np.float32), name="scale")
        y = tf.nn.relu(tf.nn.conv2d(x, kernel * scale, 1, "SAME"))
        y = tf.reshape(y, [-1, 6 * 6 * 4])
        dense = tf.constant(rng.normal(size=(144, kernel_filters)).astype(np.float32), name="dense")
        tf.identity(tf.matmul(y, dense), name="out")
        saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        prefix = saver.save(sess, str(tmp_path / "ckpt"), write_state=False)
        tf.io.write_graph(graph.as_graph_def(), str(tmp_path), "graph.pbtxt")
        x_value = rng.uniform(-1, 1, (2, 6, 6, 2)).astype(np.float32)
        expected = sess.run("out:0", {"x:0": x_value})
    return tmp_path / "graph.pbtxt", prefix, x_value, expected


def test_small_graph_constants_are_written_into_the_loader(tmp_path):
    path, prefix, x, expected = _graph_with_constant_weights(tmp_path, kernel_filters=1)
    spec, files = convert(path, Options(checkpoint=prefix))
    source = files["load_weights.py"]
    table = source[source.index("WEIGHTS = {") : source.index("def load_weights")]
    assert table.count("np.array(") == 2 and "graph[" not in source  # scale, dense kernel
    write_atomically(tmp_path / "out", files)
    model_module, loader = import_generated(tmp_path / "out")
    model = loader.load_weights(model_module.build_model(), prefix)
    error, bound = max_error(expected, np.asarray(model(x)))
    assert error <= bound


def test_large_graph_constant_weight_is_reported(tmp_path):
    path, prefix, _, _ = _graph_with_constant_weights(tmp_path, kernel_filters=3)
    result = cli(path, "--checkpoint", prefix, "-o", tmp_path / "out")
    assert result.returncode == 4 and "large constant of the graph" in result.stderr


def test_loader_formatting_shortcut_gives_what_black_gives(converted):
    """convert formats the embedded reader once per process; the file is black's all the same."""
    from codegen.postprocess import format_source

    _, files, _ = converted("sliced_savedmodel")
    assert format_source(files["load_weights.py"]) == files["load_weights.py"]


def test_mutated_checkpoint_index_never_crashes_the_reader(tmp_path):
    """Byte flips and truncations of an index (the sliced one: slices, several shards) give
    values or CheckpointError, nothing else."""
    source = FIXTURES / "sliced_savedmodel" / "variables"
    shutil.copytree(source, tmp_path / "variables")
    original = (source / "variables.index").read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(200):
        data = bytearray(original)
        for position in rng.integers(0, len(data), rng.integers(1, 4)):
            data[position] = rng.integers(0, 256)
        if rng.random() < 0.2:
            data = data[: rng.integers(0, len(data))]
        (tmp_path / "variables" / "variables.index").write_bytes(bytes(data))
        try:
            reader = CheckpointReader(tmp_path / "variables" / "variables")
            for key in reader.keys():
                if not key.startswith("_"):
                    reader.tensor(key)
        except CheckpointError:
            pass


def test_training_graph_meta(tmp_path):
    """A TF1 training graph's .meta (optimizer, slots, global step) converts for the output
    asked for; the optimizer's slots are never read."""
    from codegen.passes.prune import TensorSpec

    import tensorflow as tf

    rng = np.random.default_rng(4)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        w = tf.compat.v1.get_variable("w", initializer=rng.normal(size=(4, 3)).astype(np.float32))
        b = tf.compat.v1.get_variable("b", initializer=rng.normal(size=3).astype(np.float32))
        out = tf.nn.softmax(tf.matmul(x, w) + b, name="out")
        loss = tf.reduce_mean(tf.square(out))
        step = tf.compat.v1.train.get_or_create_global_step()
        tf.compat.v1.train.AdamOptimizer().minimize(loss, global_step=step)
        saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        prefix = saver.save(sess, str(tmp_path / "model.ckpt"), write_state=False)
        x_value = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        expected = sess.run("out:0", {"x:0": x_value})
    spec, files = convert(tmp_path / "model.ckpt.meta", Options(outputs=[TensorSpec.parse("out")]))
    assert [layer.cls for layer in spec.layers] == ["Dense", "Softmax"]
    assert "Adam" not in files["load_weights.py"].split("def assign_all")[0]
    write_atomically(tmp_path / "out", files)
    model_module, loader = import_generated(tmp_path / "out")
    model = loader.load_weights(model_module.build_model(), prefix)
    error, bound = max_error(expected, np.asarray(model(x_value)))
    assert error <= bound
