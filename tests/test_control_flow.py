"""Control flow: training flags resolved statically, data-dependent conditions as
keras.ops.where, batch-statistics BatchNorm, loops as keras.ops.while_loop.

Each graph comes in the forms TF writes it: TF1 Switch/Merge frames (control flow v1),
functional If/Case/While (v2, and `convert_variables_to_constants_v2(lower_control_flow=False)`)
and lowered frames (its default). Every variable, BatchNorm statistics included, is a seeded
random value; data-dependent conditions and loops are checked on inputs that take each branch
or trip count, so a swapped then/else or a lost iteration fails.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from codegen.cli import main, write_atomically
from codegen.convert import convert
from codegen.options import Options
from codegen.passes.prune import TensorSpec
from codegen.verify import import_generated, max_error, run_graph

SHAPE = (6, 5, 3)


# -- builders ---------------------------------------------------------------------------------


def build_tf1_training_flag(path: Path, control_flow_v2: bool) -> None:
    """The TF1 idiom: an `is_training` placeholder with default False drives batch norm,
    dropout and a tf.cond; frozen with graph_util. With control flow v1 the conditions are
    Switch/Merge frames, with v2 (TF2's default, even in TF1 graphs) functional If nodes."""
    from tf_keras.src.legacy_tf_layers import convolutional, core, normalization

    v1 = tf.compat.v1
    was_v2 = v1.control_flow_v2_enabled()
    (v1.enable_control_flow_v2 if control_flow_v2 else v1.disable_control_flow_v2)()
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, (None, *SHAPE), name="input")
            is_training = v1.placeholder_with_default(False, [], name="is_training")
            h = convolutional.conv2d(x, 4, 3, padding="same", name="conv")
            h = normalization.batch_normalization(h, training=is_training, name="bn")
            h = tf.nn.relu(h)
            h = core.dropout(h, 0.5, training=is_training, name="dropout")
            h = tf.cond(is_training, lambda: h * 2.0, lambda: h + 1.0)
            # branches of constants alone, tied to their side by control edges only
            h = h * tf.cond(is_training, lambda: tf.constant(0.5), lambda: tf.constant(1.5))
            tf.identity(h, name="output")
            rng = np.random.default_rng(1 + control_flow_v2)
            with v1.Session(graph=graph) as sess:
                for v in v1.global_variables():
                    low = 0.5 if "variance" in v.name or "gamma" in v.name else -1.0
                    v.load(rng.uniform(low, 1.5, v.shape.as_list()).astype(np.float32), sess)
                frozen = v1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(), ["output"]
                )
    finally:
        (v1.enable_control_flow_v2 if was_v2 else v1.disable_control_flow_v2)()
    ops = Counter(n.op for n in frozen.node)
    assert ops["Switch" if not control_flow_v2 else "If"] > 0, ops
    path.write_bytes(frozen.SerializeToString(deterministic=True))


def conditions(rng):
    """A training flag with a default, conditions on the data, a Case with a constant index
    and one with a computed index, and a batch norm on batch statistics."""
    w = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 4)).astype(np.float32))
    gamma = tf.constant(rng.uniform(0.5, 1.5, 4).astype(np.float32))
    beta = tf.constant(rng.normal(0, 1, 4).astype(np.float32))

    def fn(x):
        training = tf.compat.v1.placeholder_with_default(False, [], name="training")
        conv = tf.nn.conv2d(x, w, 1, "SAME")
        y = tf.cond(training, lambda: conv * 2.0, lambda: conv + 1.0)
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: y * 3.0, lambda: tf.tanh(y))
        y = tf.switch_case(tf.constant(1), [lambda: y + 1.0, lambda: y - 1.0, lambda: y * 5.0])
        index = tf.cast(tf.reduce_mean(x) > 0, tf.int32) * 2
        y = tf.switch_case(index, [lambda: y + 2.0, lambda: y * 7.0, lambda: tf.nn.relu(y)])
        return tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=0.01, is_training=True)[0]

    return fn


def loops(rng):
    """A loop whose trip count depends on the data (scale until the norm passes a threshold)
    and a fixed-count loop with a tensor accumulator reading a loop invariant."""
    w = tf.constant(rng.normal(0, 0.5, (3, 3)).astype(np.float32))

    def fn(x):
        (y,) = tf.while_loop(lambda v: tf.norm(v) < 20.0, lambda v: v * 1.5, [x])
        _, acc = tf.while_loop(
            lambda i, a: i < 4,
            lambda i, a: (i + 1, a + tf.tanh(x @ w + tf.cast(i, tf.float32)) * 0.5),
            [tf.constant(0), tf.zeros_like(x)],
        )
        return acc + y

    return fn


def freeze(fn, path: Path, lower: bool = True, shape=SHAPE) -> None:
    spec = tf.TensorSpec((None, *shape), tf.float32, name="input")
    concrete = tf.function(fn).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=lower)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString(deterministic=True))


# -- helpers ----------------------------------------------------------------------------------


def converted(path: Path, out: Path, inputs=None):
    spec, files = convert(path, Options(inputs=inputs))
    write_atomically(out, files)
    model_mod, loader = import_generated(out)
    model = loader.load_weights(model_mod.build_model(), str(path))
    loaded = sum(math.prod(w.shape) for layer in spec.layers for w in layer.weights)
    assert sum(math.prod(w.shape) for w in model.weights) == loaded, "a variable left unloaded"
    return spec, model, files["model.py"]


def assert_parity(path, spec, model, x, output: str) -> None:
    """`output` is the graph's own name for the output: spec.outputs may name a tensor inside
    an inlined branch or a loop, which the graph does not have."""
    assert spec.graph_outputs == [output]
    (reference,) = run_graph(path, {spec.inputs[0].tensor: x}, [output])
    error, bound = max_error(reference, np.asarray(model(x, training=False)))
    assert error <= bound, f"max|Δ| = {error:.3g} exceeds {bound:.3g}"
    assert np.std(reference) > 1e-6


def inputs_both_ways(seed: int = 0) -> list[np.ndarray]:
    """A batch whose sum (and mean) is positive and one whose sum is negative: data-dependent
    conditions take each branch once."""
    x = np.random.default_rng(seed).uniform(-1, 1, (2, *SHAPE)).astype(np.float32)
    x -= x.mean()
    return [x + 0.3, x - 0.3]


# -- training flags resolved statically --------------------------------------------------------


@pytest.fixture(scope="module", params=["cond_v1_switch_merge", "cond_v2_if"])
def tf1_graph(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "tf1.pb"
    build_tf1_training_flag(path, control_flow_v2=request.param.endswith("_if"))
    return path


def test_training_flag_resolves_to_keras_layers(tf1_graph, tmp_path):
    spec, model, source = converted(tf1_graph, tmp_path / "out")
    report = spec.report()
    assert not report["keras.ops"] and not report["tensorflow"], report
    assert [layer.cls for layer in spec.layers] == [
        "Conv2D",
        "BatchNormalization",
        "ReLU",
        "Rescaling",
        "Rescaling",
    ]
    assert [i.name for i in spec.inputs] == ["input"], "is_training is no model input"
    x = np.random.default_rng(3).uniform(-1, 1, (2, *SHAPE)).astype(np.float32)
    assert_parity(tf1_graph, spec, model, x, "output:0")


# -- conditions on computed values, Case, batch statistics ------------------------------------


@pytest.fixture(scope="module", params=["lowered", "functional"])
def tf2_graph(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "conditions.pb"
    freeze(conditions(np.random.default_rng(5)), path, lower=request.param == "lowered")
    return path


def test_data_dependent_conditions_select(tf2_graph, tmp_path):
    spec, model, source = converted(tf2_graph, tmp_path / "out")
    report = spec.report()
    assert not report["tensorflow"], report
    assert report["keras.ops"]["FusedBatchNormV3"] == 1
    assert report["keras.ops"]["SelectV2"] == 3  # one for the cond, two for the 3-way Case
    assert "keras.ops.where(" in source and "keras.ops.var(" in source
    assert [i.name for i in spec.inputs] == ["input"]
    for x in inputs_both_ways():
        assert_parity(tf2_graph, spec, model, x, "Identity:0")


def test_inputs_keeps_a_default_placeholder(tf2_graph, tmp_path):
    """Naming the flag in --inputs keeps it: the training branch is then chosen at run time."""
    wanted = [TensorSpec.parse("input:0"), TensorSpec.parse("training:0")]
    spec, model, _ = converted(tf2_graph, tmp_path / "out", wanted)
    assert [i.name for i in spec.inputs] == ["input", "training"]
    x = inputs_both_ways()[0]
    for flag in (False, True):
        feeds = {spec.inputs[0].tensor: x, spec.inputs[1].tensor: np.array(flag)}
        (reference,) = run_graph(tf2_graph, feeds, ["Identity:0"])
        actual = np.asarray(model([x, np.array([flag])], training=False))
        error, bound = max_error(reference, actual)
        assert error <= bound, f"training={flag}: max|Δ| = {error:.3g} exceeds {bound:.3g}"


def test_what_only_the_untaken_branch_reads_is_dropped(tmp_path):
    """A TF1 batch norm computes batch moments outside its cond, for the training branch only:
    once the branch is gone they must not become extra model outputs."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, 3), name="input")
        is_training = tf.compat.v1.placeholder_with_default(False, [], name="is_training")
        moments = tf.reduce_mean(x, axis=0)
        mean = tf.cond(is_training, lambda: moments, lambda: tf.constant([0.1, -0.2, 0.3]))
        tf.identity(x - mean, name="output")
    path = tmp_path / "untaken.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString(deterministic=True))
    spec, model, _ = converted(path, tmp_path / "out")
    x = np.random.default_rng(0).uniform(-2, 2, (2, 3)).astype(np.float32)
    assert_parity(path, spec, model, x, "output:0")
    assert "Mean" not in str(spec.report())


def test_default_with_unknown_batch_stays_an_input(tmp_path):
    """Example data as a default (shape [None, 3]) is an input, not a setting to fold away."""
    graph = tf.Graph()
    with graph.as_default():
        default = np.ones((1, 3), np.float32)
        x = tf.compat.v1.placeholder_with_default(default, [None, 3], name="input")
        tf.identity(tf.tanh(x) * 2.0 + 0.5, name="output")
    path = tmp_path / "example_default.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString(deterministic=True))
    spec, model, _ = converted(path, tmp_path / "out")
    assert [(i.name, i.shape) for i in spec.inputs] == [("input", (3,))]
    x = np.random.default_rng(0).uniform(-2, 2, (2, 3)).astype(np.float32)
    assert_parity(path, spec, model, x, "output:0")


def test_functional_case(tmp_path):
    """StatelessCase (TF1 graph, control flow v2): an index with a default resolves, a computed
    one selects; an index out of range takes the last branch, as in TF."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, *SHAPE), name="input")
        mode = tf.compat.v1.placeholder_with_default(7, [], name="mode")
        y = tf.switch_case(mode, [lambda: x + 1.0, lambda: x * 2.0, lambda: tf.tanh(x)])
        index = tf.cast(tf.reduce_sum(x) > 0, tf.int32)
        tf.identity(tf.switch_case(index, [lambda: y - 1.0, lambda: y * 3.0]), name="output")
    assert Counter(n.op for n in graph.as_graph_def().node)["StatelessCase"] == 2
    path = tmp_path / "case.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString(deterministic=True))
    spec, model, source = converted(path, tmp_path / "out")
    assert spec.report()["keras.ops"].get("SelectV2") == 1, spec.report()
    assert "keras.ops.tanh(" in source or "tanh" in source
    for x in inputs_both_ways(1):
        assert_parity(path, spec, model, x, "output:0")


@pytest.mark.parametrize("training", [True, False], ids=["batch_statistics", "moving"])
@pytest.mark.parametrize("op", ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"])
def test_fused_batch_norm(op, training, tmp_path):
    """is_training=True in a frozen graph normalises with the batch's own statistics (keras.ops:
    mean and variance over N, H, W); False with the stored ones (a BatchNormalization)."""
    rng = np.random.default_rng(len(op) + training)
    gamma = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    beta = rng.normal(0, 1, 3).astype(np.float32)
    mean = rng.normal(0, 1, 3).astype(np.float32) if not training else np.zeros(0, np.float32)
    var = rng.uniform(0.5, 1.5, 3).astype(np.float32) if not training else np.zeros(0, np.float32)

    def fn(x):
        return getattr(tf.raw_ops, op)(
            x=x * 3.0 + 1.0,
            scale=gamma,
            offset=beta,
            mean=mean,
            variance=var,
            epsilon=0.003,
            is_training=training,
        )[0]

    path = tmp_path / "bn.pb"
    freeze(fn, path)
    spec, model, source = converted(path, tmp_path / "out")
    if training:
        assert spec.report()["keras.ops"].get(op) == 1, spec.report()
        assert "keras.ops.var(" in source
    else:
        assert spec.report()["keras.layers"].get(op) == 1, spec.report()
        assert "keras.layers.BatchNormalization(" in source
    x = np.random.default_rng(0).uniform(-1, 1, (3, *SHAPE)).astype(np.float32)
    assert_parity(path, spec, model, x, "Identity:0")


# -- loops ------------------------------------------------------------------------------------


def nested_loops(x):
    """An inner loop whose trip count is the outer loop's counter."""

    def outer_body(i, v):
        _, w = tf.while_loop(lambda j, u: j < i, lambda j, u: (j + 1, u * 1.1 + 0.1), [0, v])
        return i + 1, w

    return tf.while_loop(lambda i, v: i < 4, outer_body, [tf.constant(0), x])[1]


def build_tf1_loops(path: Path, fn=None) -> None:
    """The loops in a TF1 graph with control flow v1: frames with constant Enters."""
    v1 = tf.compat.v1
    was_v2 = v1.control_flow_v2_enabled()
    v1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, (None, 3), name="input")
            fn = fn or loops(np.random.default_rng(7))
            tf.identity(fn(x), name="Identity")
    finally:
        (v1.enable_control_flow_v2 if was_v2 else v1.disable_control_flow_v2)()
    assert any(n.op == "Enter" and n.attr["is_constant"].b for n in graph.as_graph_def().node)
    path.write_bytes(graph.as_graph_def().SerializeToString(deterministic=True))


@pytest.fixture(scope="module", params=["functional", "lowered", "tf1_frames"])
def loop_graph(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("loop_" + request.param) / "loops.pb"
    if request.param == "tf1_frames":
        build_tf1_loops(path)
    else:
        freeze(loops(np.random.default_rng(7)), path, request.param == "lowered", shape=(3,))
    return path


def test_while_loops_as_keras_ops(loop_graph, tmp_path):
    spec, model, source = converted(loop_graph, tmp_path / "out")
    report = spec.report()
    assert not report["tensorflow"], report
    assert sum(n for op, n in report["keras.ops"].items() if "While" in op) == 2, report
    assert source.count("keras.ops.while_loop(") == 2
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3)).astype(np.float32)
    for scale in (0.2, 1.0, 6.0):  # different trip counts of the data-dependent loop
        assert_parity(loop_graph, spec, model, x * scale, "Identity:0")


@pytest.mark.parametrize("form", ["functional", "tf1_frames"])
def test_nested_loops(form, tmp_path):
    path = tmp_path / "nested.pb"
    if form == "tf1_frames":
        build_tf1_loops(path, nested_loops)
    else:
        freeze(nested_loops, path, lower=False, shape=(3,))
    spec, model, source = converted(path, tmp_path / "out")
    assert source.count("keras.ops.while_loop(") == 2 and not spec.report()["tensorflow"]
    x = np.random.default_rng(4).uniform(-1, 1, (2, 3)).astype(np.float32)
    assert_parity(path, spec, model, x, "Identity:0")


def test_loop_without_keras_form_is_reported(tmp_path, capsys):
    """A loop whose body has an op with no keras.ops form (an exclusive cumsum) cannot be a
    keras.ops.while_loop: one line names it, exit 4."""

    def fn(x):
        body = lambda i, v: (i + 1, tf.math.cumsum(v, axis=1, exclusive=True) + 1.0)
        return tf.while_loop(lambda i, v: i < 3, body, [tf.constant(0), x])[1]

    path = tmp_path / "loop.pb"
    freeze(fn, path, lower=True, shape=(3,))
    assert main([str(path), "-o", str(tmp_path / "out")]) == 4
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["graph2py: error: no pattern for 1 While node"], errors


# -- TensorArrays in TF1 loops (passes/arrays.py) --------------------------------------------


def dynamic_array_loop(x):
    """TF1's accumulate-then-stack idiom with a growing array: `size=0, dynamic_size=True`,
    written at the counter of a loop of four steps; stacked and reduced after it."""
    w = tf.constant(np.random.default_rng(11).normal(0, 0.5, (3, 3)).astype(np.float32))
    states = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def body(i, h, states):
        h = tf.tanh(h @ w + tf.cast(i, tf.float32) * 0.1)
        return i + 1, h, states.write(i, h)

    _, _, states = tf.while_loop(lambda i, h, s: i < 4, body, [tf.constant(0), x, states])
    stacked = states.stack()  # (4, batch, 3)
    return tf.reduce_sum(stacked * tf.cast(states.size(), tf.float32), axis=0)


def test_dynamic_size_array_grows_to_the_trip_count(tmp_path):
    path = tmp_path / "dynamic.pb"
    build_tf1_loops(path, dynamic_array_loop)
    spec, model, source = converted(path, tmp_path / "out")
    report = spec.report()
    assert not report["tensorflow"], report
    assert report["keras.ops"]["TensorArrayV3"] == 1 and report["keras.ops"]["While"] == 1
    assert "keras.ops.slice_update(" in source and "keras.ops.while_loop(" in source
    x = np.random.default_rng(5).uniform(-1, 1, (2, 3)).astype(np.float32)
    assert_parity(path, spec, model, x, "Identity:0")


def test_array_of_data_dependent_size_is_reported(tmp_path, capsys):
    """A dynamic array written by a loop whose trip count the data decides has no size a
    loop variable could take on every backend: one line says so, exit 4."""

    def fn(x):
        states = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        body = lambda i, h, s: (i + 1, h * 1.5, s.write(i, h))
        cond = lambda i, h, s: tf.reduce_sum(tf.abs(h)) < 20.0
        _, _, states = tf.while_loop(cond, body, [tf.constant(0), x, states])
        return states.stack()

    path = tmp_path / "data_dependent.pb"
    build_tf1_loops(path, fn)
    assert main([str(path), "-o", str(tmp_path / "out")]) == 4
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "has no constant size and no loop that bounds it" in errors[0]


def nested_array_loops(x):
    """An array of six rows written by an inner loop (three steps) of an outer loop (two),
    at index 3 * i + j; gathered in reverse after both."""
    rows = tf.TensorArray(tf.float32, size=6, element_shape=[3])

    def outer(i, rows):
        def inner(j, rows):
            value = tf.reduce_sum(x, axis=0) * tf.cast(j + 1, tf.float32) + tf.cast(i, tf.float32)
            return j + 1, rows.write(3 * i + j, value)

        _, rows = tf.while_loop(lambda j, r: j < 3, inner, [tf.constant(0), rows])
        return i + 1, rows

    _, rows = tf.while_loop(lambda i, r: i < 2, outer, [tf.constant(0), rows])
    return x[:, :1] * tf.reshape(rows.gather([5, 4, 3, 2, 1, 0]), [1, 18])


def test_array_written_in_a_nested_loop(tmp_path):
    path = tmp_path / "nested_array.pb"
    build_tf1_loops(path, nested_array_loops)
    spec, model, source = converted(path, tmp_path / "out")
    assert source.count("keras.ops.while_loop(") == 2 and not spec.report()["tensorflow"]
    x = np.random.default_rng(6).uniform(-1, 1, (2, 3)).astype(np.float32)
    assert_parity(path, spec, model, x, "Identity:0")
