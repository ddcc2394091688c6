"""Recurrent loops lifted to keras.layers.LSTM/GRU: a Keras 2 text model (frozen loops lowered
to TF1 frames) and `tf.compat.v1.nn.dynamic_rnn` LSTM and GRU graphs (functional While loops).

Every variable is a seeded random value, so a gate block out of place, a forget bias not folded
or a kernel row belonging to the recurrent part fails parity. Each model also names the layer
classes it must produce (the loop must be lifted, not computed some other way), runs with no
keras.ops or TensorFlow-only node left over, and takes one training step that moves the
recurrent kernel.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.verify import import_generated, max_error, run_graph

T, F, UNITS = 6, 5, 4  # dynamic_rnn: steps, features, units (all different: no silent transposes)


def text_model(path: Path, masked: bool = False) -> dict:
    """Keras 2 (tf_keras) Embedding + LSTM(return_sequences) + GRU + Dense on int32 tokens;
    `masked`: Embedding(mask_zero=True), the loops reading the mask from a tensor list."""
    import tf_keras

    rng = np.random.default_rng(11)
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Embedding(20, 8, mask_zero=masked),
            tf_keras.layers.LSTM(6, return_sequences=True),
            tf_keras.layers.GRU(5),
            tf_keras.layers.Dense(3),
        ]
    )
    model.build((None, 7))
    for v in model.variables:
        v.assign(rng.normal(0.0, 0.6, v.shape).astype(np.float32))
    spec = tf.TensorSpec((None, 7), tf.int32, name="tokens")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString(deterministic=True))
    tokens = rng.integers(0, 20, (3, 7)).astype(np.int32)
    classes = ["Embedding", "LSTM", "GRU", "Dense"]
    if not masked:
        return {"path": path, "x": tokens, "classes": classes}
    tokens[:, :2] = tokens[:, :2] * (tokens[:, :2] % 2)  # some padding
    # the model casts its tokens to float (no Input layer) and back, compares with 0 for the mask
    return {"path": path, "x": tokens, "classes": classes, "ops": {"NotEqual": 1, "Cast": 2}}


def keras2_frames(path: Path) -> dict:
    """Keras 2 as TF 1.x ran it (graph mode, TF1 behaviour and control flow): every layer a
    while frame over tensor arrays. Embedding(mask_zero=True) masks an LSTM returning
    sequences and a GRU reading them backwards; the mask is scattered into a tensor array
    beside the sequence (reversed with it for the GRU) and each step keeps the old state where
    it is off."""
    import tf_keras

    def make():
        return tf_keras.Sequential(
            [
                tf_keras.Input((None,), dtype="int32", name="tokens"),
                tf_keras.layers.Embedding(20, F, mask_zero=True),
                tf_keras.layers.LSTM(UNITS, return_sequences=True),
                tf_keras.layers.GRU(UNITS + 1, go_backwards=True),
            ]
        )

    rng = np.random.default_rng(24)
    path.write_bytes(_keras2_graph(make, rng))
    tokens = rng.integers(1, 20, (4, 9)).astype(np.int32)
    for row, pad in enumerate((0, 3, 6, 8)):
        tokens[row, :pad] = 0  # padded at the front, as pad_sequences does
    tokens[1, 5] = 0  # and a token masked mid-sentence
    classes = ["Embedding", "LSTM", "GRU"]
    return {"path": path, "x": tokens, "classes": classes, "ops": {"NotEqual": 1}}


def keras2_tagger(path: Path) -> dict:
    """Keras 2 in TF1 frames: a masked Bidirectional LSTM tagger with a per-step softmax. Keras
    2's Bidirectional zeroes the outputs of masked steps (zero_output_for_mask); the softmax
    (a layer of its own once converted) must not receive the mask Keras 3 would hand on."""
    import tf_keras

    def make():
        return tf_keras.Sequential(
            [
                tf_keras.Input((None,), dtype="int32", name="tokens"),
                tf_keras.layers.Embedding(20, F, mask_zero=True),
                tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(UNITS, return_sequences=True)),
                tf_keras.layers.Dense(3, activation="softmax"),
            ]
        )

    rng = np.random.default_rng(30)
    path.write_bytes(_keras2_graph(make, rng))
    tokens = rng.integers(1, 20, (3, 8)).astype(np.int32)
    tokens[1, :3] = 0
    tokens[2, 5:] = 0
    classes = ["Embedding", "LSTM", "LSTM", "Unmasked", "Unmasked", "Concatenate", "Dense"]
    classes.append("Softmax")
    return {"path": path, "x": tokens, "classes": classes, "ops": {"NotEqual": 1, "ReverseV2": 1}}


def keras2_seq2seq(path: Path) -> dict:
    """Keras 2 in TF1 frames, initial states from the graph: an encoder LSTM's final h and c
    start a decoder LSTM (`initial_state=[h, c]`), whose sequence feeds a GRU started from a
    Dense of the encoder's h."""
    import tf_keras

    def make():
        source = tf_keras.Input((None, F), name="source")
        target = tf_keras.Input((None, F - 2), name="target")
        _, h, c = tf_keras.layers.LSTM(UNITS, return_state=True)(source)
        y = tf_keras.layers.LSTM(UNITS, return_sequences=True)(target, initial_state=[h, c])
        start = tf_keras.layers.Dense(UNITS + 1, activation="tanh")(h)
        y = tf_keras.layers.GRU(UNITS + 1)(y, initial_state=start)
        return tf_keras.Model([source, target], y)

    rng = np.random.default_rng(27)
    path.write_bytes(_keras2_graph(make, rng))
    x = [rng.uniform(-2, 2, (3, T, F)), rng.uniform(-2, 2, (3, T + 2, F - 2))]
    classes = ["LSTM", "LSTM", "Dense", "GRU"]
    return {"path": path, "x": [a.astype(np.float32) for a in x], "classes": classes}


def keras22(path: Path) -> dict:
    """Keras 2.2 (standalone, and tf.keras in TF 1.x) as its TensorFlow backend wrote a
    recurrent layer, rebuilt here op for op since neither ships any more: zero initial states
    tiled from a sum of zeros_like(inputs), the mask read from its own tensor array and tiled
    to the output's width per step (`where(mask, new, old)` with TF1's Select), every output
    written, the last read back after the loop at `last_time - 1`; cells of implementation 1
    (one product per gate, weights sliced outside the loop) with Keras 2's default
    hard_sigmoid recurrent activation. Embedding(mask_zero=True) → LSTM(return_sequences) →
    GRU (reset_after=False, Keras 2's only GRU)."""
    rng = np.random.default_rng(28)

    def make(tokens):
        v1 = tf.compat.v1
        table = v1.get_variable("embedding/embeddings", (20, F))
        x = tf.gather(table, tokens)
        mask = tf.not_equal(tokens, 0)
        with v1.variable_scope("lstm_1"):
            y = _keras22_rnn(_keras22_lstm(F, UNITS), x, 2, mask, sequences=True)
        with v1.variable_scope("gru_1"):
            return _keras22_rnn(_keras22_gru(UNITS, UNITS + 1), y, 1, mask)

    path.write_bytes(_frozen_tf1(make, seed=29, x=(tf.int32, (None, T)), frames=True))
    tokens = rng.integers(1, 20, (4, T)).astype(np.int32)
    for row, pad in enumerate((0, 2, 4, 5)):
        tokens[row, :pad] = 0
    return {
        "path": path,
        "x": tokens,
        "classes": ["Embedding", "LSTM", "GRU"],
        "ops": {"NotEqual": 1},
    }


def _hard_sigmoid(x):
    """Keras 2's: slope 0.2 (Keras 3's is 1/6)."""
    return tf.clip_by_value(0.2 * x + 0.5, 0.0, 1.0)


def _keras22_lstm(n_in, units):
    v1 = tf.compat.v1
    kernel = v1.get_variable("kernel", (n_in, 4 * units))
    recurrent = v1.get_variable("recurrent_kernel", (units, 4 * units))
    bias = v1.get_variable("bias", (4 * units,))
    gates = [slice(g * units, (g + 1) * units) for g in range(4)]
    k = [kernel[:, g] for g in gates]
    r = [recurrent[:, g] for g in gates]
    b = [bias[g] for g in gates]

    def step(x, states):
        h, c = states
        z = [tf.nn.bias_add(tf.matmul(x, k[g]), b[g]) + tf.matmul(h, r[g]) for g in range(4)]
        i, f, o = _hard_sigmoid(z[0]), _hard_sigmoid(z[1]), _hard_sigmoid(z[3])
        c = f * c + i * tf.tanh(z[2])
        h = o * tf.tanh(c)
        return h, [h, c]

    return step, units


def _keras22_gru(n_in, units):
    v1 = tf.compat.v1
    kernel = v1.get_variable("kernel", (n_in, 3 * units))
    recurrent = v1.get_variable("recurrent_kernel", (units, 3 * units))
    bias = v1.get_variable("bias", (3 * units,))
    gates = [slice(g * units, (g + 1) * units) for g in range(3)]
    k = [kernel[:, g] for g in gates]
    r = [recurrent[:, g] for g in gates]
    b = [bias[g] for g in gates]

    def step(x, states):
        (h,) = states
        xz, xr, xh = (tf.nn.bias_add(tf.matmul(x, k[g]), b[g]) for g in range(3))
        z = _hard_sigmoid(xz + tf.matmul(h, r[0]))
        rr = _hard_sigmoid(xr + tf.matmul(h, r[1]))
        hh = tf.tanh(xh + tf.matmul(rr * h, r[2]))
        h = z * h + (1 - z) * hh
        return h, [h]

    return step, units


def _keras22_rnn(cell, x, n_states, mask, sequences=False):
    """Keras 2.2's backend.rnn (the while loop, masked) and RNN.get_initial_state."""
    step_function, units = cell
    zeros = tf.expand_dims(tf.reduce_sum(tf.zeros_like(x), axis=(1, 2)), -1)
    states = tuple(tf.tile(zeros, [1, units]) for _ in range(n_states))
    inputs = tf.transpose(x, [1, 0, 2])
    mask = tf.transpose(tf.expand_dims(mask, -1), [1, 0, 2])
    steps = tf.shape(inputs)[0]
    input_ta = tf.TensorArray(x.dtype, size=steps, tensor_array_name="input_ta").unstack(inputs)
    mask_ta = tf.TensorArray(tf.bool, size=steps, tensor_array_name="mask_ta").unstack(mask)
    output_ta = tf.TensorArray(x.dtype, size=steps, tensor_array_name="output_ta")

    def body(time, output_ta_t, *states):
        mask_t = mask_ta.read(time)
        output, new_states = step_function(input_ta.read(time), states)
        tiled = tf.tile(mask_t, tf.stack([1, tf.shape(output)[1]]))
        output = tf.compat.v1.where(tiled, output, states[0])
        new_states = [
            tf.compat.v1.where(tf.tile(mask_t, tf.stack([1, tf.shape(s)[1]])), n, s)
            for n, s in zip(new_states, states)
        ]
        return (time + 1, output_ta_t.write(time, output), *new_states)

    time = tf.constant(0, dtype="int32", name="time")
    final = tf.compat.v1.while_loop(
        lambda time, *_: time < steps, body, (time, output_ta, *states), maximum_iterations=T
    )
    if sequences:
        return tf.transpose(final[1].stack(), [1, 0, 2])
    return final[1].read(final[0] - 1)


def _keras2_graph(make, rng) -> bytes:
    """The frozen graph of the Keras 2 model `make()` builds in a TF1 graph, as TF 1.x built
    it (TF1 behaviour and control flow), its variables drawn from `rng`."""
    from tensorflow.python import tf2
    from tensorflow.python.ops import control_flow_util

    graph = tf.compat.v1.Graph()
    was, v2 = tf2.enabled(), control_flow_util.ENABLE_CONTROL_FLOW_V2
    tf2.disable()
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
        with graph.as_default():
            model = make()
            with tf.compat.v1.Session(graph=graph) as session:
                for v in tf.compat.v1.global_variables():
                    value = rng.normal(0.0, 0.6, v.shape).astype(np.float32)
                    session.run(v.initializer, {v.initial_value: value})
                frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                    session, graph.as_graph_def(), [model.output.op.name]
                )
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2
        if was:
            tf2.enable()
    return frozen.SerializeToString(deterministic=True)


def dynamic_rnn(path: Path, kind: str, frames: bool = False, time_major: bool = False) -> dict:
    """A TF1 graph: dynamic_rnn over LSTMCell (outputs and the final c) or GRUCell (the final
    state; with `time_major`, the outputs too), frozen with convert_variables_to_constants. Its
    loop is a functional While, or with `frames` TF1's own control flow (Enter/Merge/Switch/Exit
    and tensor arrays), as graphs written by TF 1.x have it."""
    from tensorflow.python.ops import control_flow_util

    rng = np.random.default_rng(12 if kind == "lstm" else 13)
    graph = tf.compat.v1.Graph()
    v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = not frames
    try:
        frozen = _dynamic_rnn(graph, kind, rng, time_major)
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2
    path.write_bytes(frozen.SerializeToString(deterministic=True))
    classes = ["LSTM"] if kind == "lstm" else ["GRU"]
    x = rng.uniform(-2, 2, (T, 3, F) if time_major else (3, T, F)).astype(np.float32)
    # time-major: the sequence is transposed in and out of the layer
    ops = {"Transpose": 2} if time_major else {}
    return {"path": path, "x": x, "classes": classes, "ops": ops}


def _dynamic_rnn(graph, kind, rng, time_major):
    from tf_keras.src.layers.rnn import legacy_cells

    with graph.as_default():
        shape = (T, None, F) if time_major else (None, T, F)
        x = tf.compat.v1.placeholder(tf.float32, shape, name="x")
        cell = legacy_cells.LSTMCell(UNITS) if kind == "lstm" else legacy_cells.GRUCell(UNITS)
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            cell, x, dtype=tf.float32, time_major=time_major
        )
        names = []
        if kind == "lstm" or time_major:
            names.append(tf.identity(outputs, name="outputs").op.name)
        if kind == "lstm":
            names.append(tf.identity(state.c, name="final_c").op.name)
        else:
            names.append(tf.identity(state, name="final_h").op.name)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.global_variables():
                session.run(v.assign(rng.normal(0.0, 0.6, v.shape).astype(np.float32)))
            return tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), names
            )


def keras3_model(path: Path) -> dict:
    """Keras 3: a Bidirectional LSTM (a backward loop, its sequence flipped back, concatenated)
    and a GRU with reset_after=False reading backwards."""
    rng = np.random.default_rng(14)
    model = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True)),
            keras.layers.GRU(UNITS, reset_after=False, go_backwards=True),
        ]
    )
    for v in model.variables:
        v.assign(rng.normal(0.0, 0.6, v.shape).astype(np.float32))
    spec = tf.TensorSpec((None, T, F), tf.float32, name="x")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString(deterministic=True))
    return {
        "path": path,
        "x": rng.uniform(-2, 2, (3, T, F)).astype(np.float32),
        "classes": ["LSTM", "LSTM", "Concatenate", "GRU"],
        "ops": {"ReverseV2": 1},  # Bidirectional's flip of the backward sequence
    }


def static_rnn(path: Path, kind: str) -> dict:
    """A TF1 graph: static_rnn, the cell unrolled once per step, over LSTMCell (every step's
    output stacked, and the final c) or GRUCell (the last output)."""
    from tf_keras.src.layers.rnn import legacy_cells

    def make(x):
        cell = legacy_cells.LSTMCell(UNITS) if kind == "lstm" else legacy_cells.GRUCell(UNITS)
        outputs, state = tf.compat.v1.nn.static_rnn(cell, tf.unstack(x, T, 1), dtype=tf.float32)
        if kind == "lstm":
            return [tf.stack(outputs, 1), state.c]
        return [outputs[-1]]

    path.write_bytes(_frozen_tf1(make, seed=16 if kind == "lstm" else 17))
    rng = np.random.default_rng(18)
    classes = ["LSTM"] if kind == "lstm" else ["GRU"]
    return {"path": path, "x": rng.uniform(-2, 2, (3, T, F)).astype(np.float32), "classes": classes}


def static_stack(path: Path) -> dict:
    """static_rnn over MultiRNNCell([LSTMCell, GRUCell]): the GRU's steps read the LSTM's
    step outputs one by one, no unstacked sequence of their own; every output stacked."""
    from tf_keras.src.layers.rnn import legacy_cells

    def make(x):
        cells = legacy_cells.MultiRNNCell(
            [legacy_cells.LSTMCell(UNITS), legacy_cells.GRUCell(UNITS + 1)]
        )
        outputs, _ = tf.compat.v1.nn.static_rnn(cells, tf.unstack(x, T, 1), dtype=tf.float32)
        return [tf.stack(outputs, 1)]

    path.write_bytes(_frozen_tf1(make, seed=25))
    x = np.random.default_rng(26).uniform(-2, 2, (3, T, F)).astype(np.float32)
    return {"path": path, "x": x, "classes": ["LSTM", "GRU"]}


def block_lstm(path: Path, op: str) -> dict:
    """TF 1.x's fused LSTM op (LSTMBlockFusedCell): the time-major sequence in, every h
    transposed back out, and the last cell state."""

    def make(x):
        rng = np.random.default_rng(19)
        w = tf.Variable(rng.normal(0.0, 0.5, (F + UNITS, 4 * UNITS)).astype(np.float32))
        b = tf.Variable(rng.normal(0.0, 0.5, (4 * UNITS,)).astype(np.float32))
        xt = tf.transpose(x, [1, 0, 2])
        zeros = tf.zeros(tf.stack([tf.shape(x)[0], UNITS]))
        peephole = tf.zeros([UNITS])
        lstm = getattr(tf.raw_ops, op)
        extra = {"forget_bias": 1.0} if op == "BlockLSTM" else {}
        _, cs, _, _, _, _, h = lstm(
            seq_len_max=tf.cast(tf.shape(xt)[0], tf.int64),
            x=xt,
            cs_prev=zeros,
            h_prev=zeros,
            w=w,
            wci=peephole,
            wcf=peephole,
            wco=peephole,
            b=b,
            cell_clip=-1.0,
            use_peephole=False,
            **extra,
        )
        return [tf.transpose(h, [1, 0, 2]), cs[-1]]

    path.write_bytes(_frozen_tf1(make, seed=20))
    x = np.random.default_rng(21).uniform(-2, 2, (3, T, F)).astype(np.float32)
    return {"path": path, "x": x, "classes": ["LSTM"]}


def stacked_rnn(path: Path) -> dict:
    """dynamic_rnn over MultiRNNCell([LSTMCell, GRUCell]): two cells in one loop, read as the
    outputs (the GRU's) and the LSTM's final c."""
    from tf_keras.src.layers.rnn import legacy_cells

    def make(x):
        cells = [legacy_cells.LSTMCell(UNITS), legacy_cells.GRUCell(UNITS + 1)]
        outputs, state = tf.compat.v1.nn.dynamic_rnn(
            legacy_cells.MultiRNNCell(cells), x, dtype=tf.float32
        )
        return [outputs, state[0].c]

    path.write_bytes(_frozen_tf1(make, seed=22))
    x = np.random.default_rng(23).uniform(-2, 2, (3, T, F)).astype(np.float32)
    return {"path": path, "x": x, "classes": ["LSTM", "GRU"]}


BUILDERS = {
    "keras2_text": text_model,
    "keras2_text_masked": lambda p: text_model(p, masked=True),
    "keras2_frames_masked": keras2_frames,
    "keras2_seq2seq": keras2_seq2seq,
    "keras2_tagger": keras2_tagger,
    "keras22_hard_sigmoid": keras22,
    "static_rnn_stacked": static_stack,
    "dynamic_rnn_lstm": lambda p: dynamic_rnn(p, "lstm"),
    "dynamic_rnn_gru": lambda p: dynamic_rnn(p, "gru"),
    "dynamic_rnn_lstm_frames": lambda p: dynamic_rnn(p, "lstm", frames=True),
    "dynamic_rnn_gru_frames": lambda p: dynamic_rnn(p, "gru", frames=True),
    "dynamic_rnn_gru_time_major": lambda p: dynamic_rnn(p, "gru", time_major=True),
    "dynamic_rnn_stacked": stacked_rnn,
    "keras3_bidirectional": keras3_model,
    "static_rnn_lstm": lambda p: static_rnn(p, "lstm"),
    "static_rnn_gru": lambda p: static_rnn(p, "gru"),
    "block_lstm": lambda p: block_lstm(p, "BlockLSTM"),
    "block_lstm_v2": lambda p: block_lstm(p, "BlockLSTMV2"),
}


class Converted(dict):
    """Each model built, frozen, converted and imported on first use, once per module (a
    model that fails to convert fails its own tests only)."""

    def __init__(self, root_factory):
        super().__init__()
        self.root_factory = root_factory

    def __missing__(self, name):
        root = self.root_factory.mktemp(name)
        case = BUILDERS[name](root / "graph.pb")
        spec, files = convert(case["path"])
        write_atomically(root / "out", files)
        model_mod, loader = import_generated(root / "out")
        model = loader.load_weights(model_mod.build_model(), str(case["path"]))
        self[name] = {**case, "spec": spec, "model": model}
        return self[name]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return Converted(tmp_path_factory)


CASES = sorted(BUILDERS)


@pytest.mark.parametrize("name", CASES)
def test_loops_become_recurrent_layers(converted, name):
    case = converted[name]
    spec = case["spec"]
    layers = [layer.cls for layer in spec.layers if layer.path == "keras.layers"]
    assert sorted(layers) == sorted(case["classes"])
    report = spec.report()
    assert report["keras.ops"] == case.get("ops", {}) and report["tensorflow"] == {}, report


@pytest.mark.parametrize("name", CASES)
def test_parity(converted, name):
    case, model, spec = converted[name], converted[name]["model"], converted[name]["spec"]
    xs = case["x"] if isinstance(case["x"], list) else [case["x"]]
    feeds = {i.tensor: x for i, x in zip(spec.inputs, xs)}
    references = run_graph(case["path"], feeds, spec.outputs)
    actual = model(case["x"], training=False)
    actual = actual if isinstance(actual, (list, tuple)) else [actual]
    assert len(actual) == len(references)
    for reference, got in zip(references, actual):
        error, bound = max_error(reference, np.asarray(got))
        assert error <= bound, f"{name}: max|Δ| = {error:.3g} exceeds {bound:.3g}"
        assert np.std(reference) > 1e-3


@pytest.mark.parametrize("name", CASES)
def test_trainable(converted, name):
    """One gradient step moves the recurrent layers' kernels; the loss stays finite."""
    case, model = converted[name], converted[name]["model"]
    recurrent = [l for l in model.layers if isinstance(l, (keras.layers.LSTM, keras.layers.GRU))]
    before = [np.array(l.cell.recurrent_kernel) for l in recurrent]
    loaded = model.get_weights()  # the model is shared with the parity test
    try:
        with tf.GradientTape() as tape:
            outputs = model(case["x"], training=True)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            loss = sum(tf.reduce_mean(tf.square(o - 0.5)) for o in outputs)
        grads = tape.gradient(loss, model.trainable_variables)
        keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_variables))
        assert math.isfinite(float(loss))
        for layer, old in zip(recurrent, before):
            moved = np.max(np.abs(np.array(layer.cell.recurrent_kernel) - old))
            assert moved > 1e-6, layer.name
    finally:
        model.set_weights(loaded)


def _frozen_tf1(make, seed: int = 15, x=(tf.float32, (None, T, F)), frames=False) -> bytes:
    """A TF1 graph of make(x) (a tensor or a list of them) with seeded random variables,
    frozen; with `frames`, its loops TF1's (Enter, Merge, Switch, Exit)."""
    from tensorflow.python.ops import control_flow_util

    v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = not frames
    try:
        return _frozen(make, seed, x)
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2


def _frozen(make, seed, x) -> bytes:
    rng = np.random.default_rng(seed)
    graph = tf.compat.v1.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(*x, name="x")
        made = make(x)
        made = made if isinstance(made, list) else [made]
        names = [tf.identity(y, name=f"y{i}").op.name for i, y in enumerate(made)]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.global_variables():
                session.run(v.assign(rng.normal(0.0, 0.6, v.shape).astype(np.float32)))
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), names
            )
    return frozen.SerializeToString()


def _lstm_rnn(**cell_kwargs):
    def make(x, sequence_length=None):
        from tf_keras.src.layers.rnn import legacy_cells

        cell = legacy_cells.LSTMCell(UNITS, **cell_kwargs)
        return tf.compat.v1.nn.dynamic_rnn(
            cell, x, sequence_length=sequence_length, dtype=tf.float32
        )[0]

    return make


NOT_KERAS = {
    # a mask: the step selects between the new and the old state
    "sequence_length": lambda x: _lstm_rnn()(x, tf.fill(tf.shape(x)[:1], 3)),
    # a cell Keras's LSTM does not have
    "peepholes": _lstm_rnn(use_peepholes=True),
    # a loop that is no RNN at all
    "cumulative": lambda x: tf.while_loop(
        lambda i, acc: i < T, lambda i, acc: (i + 1, acc + x[:, i]), (0, tf.zeros_like(x[:, 0]))
    )[1],
}


@pytest.mark.parametrize("name", sorted(NOT_KERAS))
def test_other_loops_are_left_alone(name):
    """A loop that is not exactly a Keras LSTM/GRU stays a loop (for the control-flow
    patterns), however close it comes."""
    from codegen.pipeline import decode
    from tensorflow.core.framework import graph_pb2

    graph = decode(graph_pb2.GraphDef.FromString(_frozen_tf1(NOT_KERAS[name])))
    ops = {node.op for node in graph}
    assert ops & {"While", "StatelessWhile"}, sorted(ops)
    assert not any(op.startswith("_Graph2py") for op in ops)
