"""Parity on real architectures: convert, execute the generated code, compare with TF.

Every zoo model had all its variables (BatchNorm statistics included) set to seeded random
values before freezing, so a dropped or swapped parameter cannot match by accident.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import zoo
from codegen.verify import import_generated, max_error, run_graph, seeded_inputs


def _group(name):
    return pytest.param(name, marks=pytest.mark.xdist_group(name))


def run_both(model_zoo, name, converted=None, io_layout="keep"):
    spec, out, _ = converted or model_zoo.converted(name)
    model_mod, loader = import_generated(out)
    model = loader.load_weights(model_mod.build_model(), str(model_zoo.graph(name)))
    arrays = seeded_inputs([i.shape for i in spec.inputs], [i.dtype for i in spec.inputs])
    if name in zoo.NCHW:
        reference = run_nhwc_twin(model_zoo, name, spec, arrays, io_layout)
    else:
        reference = run_graph(
            model_zoo.graph(name), {i.tensor: a for i, a in zip(spec.inputs, arrays)}, spec.outputs
        )
    actual = model(arrays if len(arrays) > 1 else arrays[0], training=False)
    actual = actual if isinstance(actual, (list, tuple)) else [actual]
    return spec, model, reference, [np.asarray(a) for a in actual]


def run_nhwc_twin(model_zoo, name, spec, arrays, io_layout):
    """TensorFlow's CPU kernels refuse NCHW convolution and pooling, so an NCHW model's
    reference is its NHWC twin (same code, same variable values, channels_last): NCHW inputs
    are transposed in and 4-D outputs transposed back, unless the model speaks NHWC itself."""
    twin = zoo.reference_path(str(model_zoo.graph(name)))
    nhwc = io_layout == "nhwc"
    feeds = {
        i.tensor: a if nhwc or a.ndim != 4 else a.transpose(0, 2, 3, 1)
        for i, a in zip(spec.inputs, arrays)
    }
    outputs = run_graph(twin, feeds, spec.outputs)
    return [r if nhwc or r.ndim != 4 else r.transpose(0, 3, 1, 2) for r in outputs]


@pytest.mark.parametrize("name", [_group(n) for n in zoo.ALL])
def test_parity(model_zoo, name):
    spec, model, reference, actual = run_both(model_zoo, name)
    assert len(reference) == len(actual) == len(spec.outputs)
    for ref, got in zip(reference, actual):
        error, bound = max_error(ref, got)
        assert error <= bound, f"{name}: max|Δ| = {error:.3g} exceeds {bound:.3g}"
        # the comparison is meaningful only if the outputs actually vary
        assert np.std(ref) > 1e-6


# ConvNeXt nests a Sequential stem (whose inner layers are not in model.layers) and adds
# residuals with plain tensor ops, which have no layer name to recover.
NAME_SHARE = {"convnexttiny": 0.8}


@pytest.mark.parametrize("name", [_group(n) for n in zoo.APPLICATIONS])
def test_layer_names_and_parameter_count(model_zoo, name):
    spec, out, _ = model_zoo.converted(name)
    original = zoo.build_application(name)
    original_names = {layer.name for layer in original.layers}
    generated = [layer.name for layer in spec.layers]
    same = sum(n in original_names for n in generated)
    assert same >= NAME_SHARE.get(name, 0.95) * len(generated), sorted(
        set(generated) - original_names
    )[:20]
    model_mod, _ = import_generated(out)
    model = model_mod.build_model()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    expected = sum(int(np.prod(w.shape)) for w in original.trainable_weights)
    assert trainable == expected


@pytest.mark.parametrize("name", [_group("mobilenetv2"), _group("resnet50")])
def test_every_node_is_a_keras_layer(model_zoo, name):
    import keras

    spec, _, files = model_zoo.converted(name)
    assert all(hasattr(keras.layers, layer.cls) for layer in spec.layers)
    assert "keras.ops." not in files["model.py"] and "class " not in files["model.py"]
    assert "Lambda" not in files["model.py"]


@pytest.mark.parametrize(
    "name", [_group("xception"), _group("nasnetmobile"), _group("tf1_layers_cnn")]
)
def test_depthwise_pointwise_pairs_become_separable(model_zoo, name):
    spec, _, _ = model_zoo.converted(name)
    classes = [layer.cls for layer in spec.layers]
    assert "SeparableConv2D" in classes
    assert "DepthwiseConv2D" not in classes


@pytest.mark.parametrize("name", [_group("mobilenetv2")])
def test_generated_model_trains(model_zoo, name):
    import keras

    spec, out, _ = model_zoo.converted(name)
    model_mod, loader = import_generated(out)
    model = loader.load_weights(model_mod.build_model(), str(model_zoo.graph(name)))

    def loss(y_true, y_pred):  # a custom loss: the model must be differentiable end to end
        return keras.ops.mean(keras.ops.square(y_true - y_pred))

    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    before = [np.array(w) for w in model.trainable_weights]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, *spec.inputs[0].shape)).astype("float32")
    y = rng.normal(size=(2, *model.output_shape[1:])).astype("float32")
    history = model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = sum(
        not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights)
    )
    assert changed >= 0.9 * len(before)


def _report(spec):
    report = spec.report()
    return {path: sum(ops.values()) for path, ops in report.items()}


@pytest.mark.parametrize("name", [_group(n) for n in (*zoo.KERAS2, *zoo.SLIM)])
def test_tf1_and_keras2_cnns_are_keras_layers_only(model_zoo, name):
    """Every compute node of a tf-slim or Keras 2 CNN becomes a keras.layers layer: no
    keras.ops expression, no TensorFlow-only layer (FusedBatchNorm, slim's squeezes and
    softmax reshapes, batch-free reshapes all have layer patterns)."""
    import keras

    spec, _, files = model_zoo.converted(name)
    counts = _report(spec)
    assert counts["keras.ops"] == counts["tensorflow"] == 0, spec.report()
    assert counts["keras.layers"] > 50
    assert all(hasattr(keras.layers, layer.cls) for layer in spec.layers)
    assert "keras.ops." not in files["model.py"] and "class " not in files["model.py"]
    assert "BatchNormalization" in {layer.cls for layer in spec.layers}


@pytest.mark.parametrize("name", [_group(n) for n in zoo.KERAS2])
def test_keras2_layer_names_and_parameter_count(model_zoo, name):
    """Every layer with weights carries its Keras 2 name exactly (Keras 2 numbers its own
    layers `conv2d_1`, `conv2d_2`: no suffix may be taken for TF's uniquifier and shifted)."""
    spec, out, _ = model_zoo.converted(name)
    original = zoo.build_keras2(name)
    original_names = {layer.name for layer in original.layers}
    generated = [layer.name for layer in spec.layers]
    same = sum(n in original_names for n in generated)
    assert same >= 0.95 * len(generated), sorted(set(generated) - original_names)[:20]
    weighted = {layer.name for layer in spec.layers if layer.weights}
    assert weighted == {layer.name for layer in original.layers if layer.weights}
    model_mod, _ = import_generated(out)
    model = model_mod.build_model()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    expected = sum(int(np.prod(w.shape)) for w in original.trainable_weights)
    assert trainable == expected


@pytest.mark.parametrize("name", [_group("slim_mobilenet_v1")])
def test_slim_depthwise_pointwise_pairs(model_zoo, name):
    """slim writes MobileNetV1's depthwise and pointwise convs as two layers with a batch
    norm between, so they stay two Keras layers (no SeparableConv2D across a BatchNorm)."""
    spec, _, _ = model_zoo.converted(name)
    classes = [layer.cls for layer in spec.layers]
    assert classes.count("DepthwiseConv2D") == 13
    assert classes.count("Conv2D") == 15  # the stem, 13 pointwise, the logits


@pytest.mark.parametrize("name", [_group("nchw_cnn")])
def test_nchw_graph_computes_channels_last(model_zoo, name):
    """Layers compute NHWC; the only transposes are one Permute at the NCHW input and one at
    the NCHW feature-map output, so the model keeps the graph's layout."""
    spec, _, files = model_zoo.converted(name)
    assert spec.inputs[0].shape == zoo.NCHW[name]
    permutes = [layer for layer in spec.layers if layer.cls == "Permute"]
    assert [layer.args for layer in permutes] == [[(2, 3, 1)], [(3, 1, 2)]]
    assert permutes[0].inputs == [spec.inputs[0].tensor]
    assert permutes[1].outputs[0] in spec.outputs
    assert _report(spec)["keras.ops"] == _report(spec)["tensorflow"] == 0
    assert 'data_format="channels_first"' not in files["model.py"]


@pytest.mark.parametrize("name", [_group("nchw_cnn")])
def test_nchw_graph_with_nhwc_io(model_zoo, name, tmp_path):
    """--io-layout nhwc: the generated model takes and gives NHWC, with no Permute at all."""
    from codegen.cli import write_atomically
    from codegen.convert import convert
    from codegen.options import Options

    spec, files = convert(model_zoo.graph(name), Options(io_layout="nhwc"))
    write_atomically(tmp_path, files)
    c, h, w = zoo.NCHW[name]
    assert spec.inputs[0].shape == (h, w, c)
    assert "Permute" not in {layer.cls for layer in spec.layers}
    _, _, reference, actual = run_both(model_zoo, name, (spec, tmp_path, files), "nhwc")
    for ref, got in zip(reference, actual):
        error, bound = max_error(ref, got)
        assert error <= bound
    assert actual[1].shape[-1] == 32  # the feature map, channels last


@pytest.mark.parametrize("name", [_group("transformer_encoder")])
def test_transformer_layers(model_zoo, name):
    """Embedding from the wrapped GatherV2, EinsumDense for the four attention projections,
    LayerNormalization, Dense with GELU; only the score and context einsums between two
    computed tensors (and the constant position add) stay keras.ops."""
    spec, _, files = model_zoo.converted(name)
    classes = [layer.cls for layer in spec.layers]
    assert spec.inputs[0].dtype == "int32"
    assert classes.count("EinsumDense") == 4
    assert classes.count("Embedding") == 1
    assert classes.count("LayerNormalization") == 2
    assert 'activation="gelu"' in files["model.py"]
    assert spec.report()["keras.ops"] == {"AddV2": 1, "Einsum": 2}
    assert _report(spec)["tensorflow"] == 0


@pytest.mark.parametrize("name", [_group("transformer_encoder")])
def test_transformer_parity_over_the_vocabulary(model_zoo, name):
    """Token ids across the whole table, negative ones too (Keras wraps them)."""
    spec, out, _ = model_zoo.converted(name)
    model_mod, loader = import_generated(out)
    model = loader.load_weights(model_mod.build_model(), str(model_zoo.graph(name)))
    tokens = np.random.default_rng(1).integers(-100, 100, (3, *spec.inputs[0].shape), np.int32)
    reference = run_graph(model_zoo.graph(name), {spec.inputs[0].tensor: tokens}, spec.outputs)
    for ref, got in zip(reference, model(tokens, training=False)):
        error, bound = max_error(ref, np.asarray(got))
        assert error <= bound


@pytest.mark.parametrize("name", [_group("k2_attention")])
def test_keras2_attention_layers(model_zoo, name):
    """Keras 2 keeps EinsumDense as Einsum ops with constant kernels, and writes
    LayerNormalization as a batch-statistics FusedBatchNorm over reshaped rows (NCHW, which
    must not trigger the channels_last rewrite): EinsumDense and LayerNormalization again."""
    spec, _, _ = model_zoo.converted(name)
    classes = [layer.cls for layer in spec.layers]
    assert classes.count("EinsumDense") == 4
    assert classes.count("LayerNormalization") == 1
    assert "Permute" not in classes
    assert spec.report()["keras.ops"] == {"Einsum": 2}
    assert _report(spec)["tensorflow"] == 0
    names = {layer.name for layer in spec.layers}
    assert {"query", "key", "value", "attention_output", "norm"} <= names


def test_reshape_with_batch_one_baked_in(tmp_path):
    """reshape(x, [1, -1]) frozen from a batch-1 graph is a Flatten; [1, 5, 1] a Reshape with a
    free batch: the generated model runs any batch and matches the graph on batch 1."""
    import tensorflow as tf

    from codegen.cli import write_atomically
    from codegen.convert import convert

    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, 6, 6, 4), name="input")
        h = tf.reshape(tf.nn.relu(x), [1, -1], name="flatten")
        h = tf.matmul(h, rng.normal(size=(144, 5)).astype(np.float32), name="fc")
        tf.reshape(h, [1, 5, 1], name="output")
    pb = tmp_path / "baked.pb"
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    spec, files = convert(pb)
    assert [layer.cls for layer in spec.layers] == ["ReLU", "Flatten", "Dense", "Reshape"]
    assert spec.layers[-1].args == [(5, 1)]
    write_atomically(tmp_path / "out", files)
    model_mod, loader = import_generated(tmp_path / "out")
    model = loader.load_weights(model_mod.build_model(), str(pb))
    a = rng.uniform(-1, 1, (1, 6, 6, 4)).astype(np.float32)
    (reference,) = run_graph(pb, {"input:0": a}, spec.outputs)
    error, bound = max_error(reference, np.asarray(model(a)))
    assert error <= bound
    assert np.asarray(model(np.concatenate([a, a, a]))).shape == (3, 5, 1)


@pytest.mark.parametrize("op", ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_fused_batch_norm_versions(tmp_path, op, data_format):
    """Every FusedBatchNorm version, in both layouts: TensorFlow runs inference-mode batch norm
    in NCHW on CPU, so here the reference is the NCHW graph itself."""
    import tensorflow as tf

    from codegen.cli import write_atomically
    from codegen.convert import convert

    rng = np.random.default_rng(3)
    shape = (4, 5, 6) if data_format == "NCHW" else (5, 6, 4)
    stats = [rng.uniform(0.5, 1.5, 4), rng.uniform(-0.2, 0.2, 4)]
    stats += [rng.uniform(-0.2, 0.2, 4), rng.uniform(0.5, 1.5, 4)]
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, *shape), name="input")
        y = getattr(tf.raw_ops, op)(
            x=x,
            **dict(
                zip(("scale", "offset", "mean", "variance"), (s.astype("float32") for s in stats))
            ),
            epsilon=0.01,
            data_format=data_format,
            is_training=False,
            name="bn",
        )[0]
        tf.nn.relu(y, name="output")
    pb = tmp_path / "bn.pb"
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    spec, files = convert(pb)
    classes = [layer.cls for layer in spec.layers]
    assert "BatchNormalization" in classes and _report(spec)["keras.ops"] == 0
    assert classes.count("Permute") == (2 if data_format == "NCHW" else 0)
    write_atomically(tmp_path / "out", files)
    model_mod, loader = import_generated(tmp_path / "out")
    model = loader.load_weights(model_mod.build_model(), str(pb))
    a = rng.uniform(-1, 1, (2, *shape)).astype(np.float32)
    (reference,) = run_graph(pb, {"input:0": a}, spec.outputs)
    error, bound = max_error(reference, np.asarray(model(a)))
    assert error <= bound and np.std(reference) > 1e-3


@pytest.mark.parametrize("name", [_group("nchw_cnn")])
def test_io_layout_on_the_command_line(model_zoo, name, tmp_path):
    """`graph2py SRC --io-layout nhwc` writes an NHWC-input model and says so in the
    regenerate line of its header."""
    from codegen.cli import main

    assert main([str(model_zoo.graph(name)), "--io-layout", "nhwc", "-o", str(tmp_path)]) == 0
    source = (tmp_path / "model.py").read_text()
    c, h, w = zoo.NCHW[name]
    assert f"shape=({h}, {w}, {c})" in source and "--io-layout nhwc" in source
    assert "Permute" not in source


def _structure(model) -> list[tuple]:
    """Each layer's name, class, configuration and the layers it reads: what a model computes,
    apart from its weights."""
    rows = []
    for layer in model.layers:
        config = {k: v for k, v in layer.get_config().items() if k != "name"}
        inbound = sorted(
            t._keras_history.operation.name
            for node in layer._inbound_nodes
            for t in node.input_tensors
        )
        rows.append((layer.name, type(layer).__name__, repr(config), inbound))
    return rows


@pytest.mark.parametrize("name", [_group(n) for n in zoo.APPLICATIONS])
def test_flat_and_factored_build_the_same_model(model_zoo, name, tmp_path):
    """Block functions and loops are spelling: `--flat` builds exactly the model the factored
    code builds (the same layers, configurations and wiring), so parity of one is parity of both."""
    from codegen.cli import write_atomically
    from codegen.convert import convert
    from codegen.options import Options

    _, factored_dir, files = model_zoo.converted(name)
    _, flat_files = convert(model_zoo.graph(name), Options(flat=True))
    write_atomically(tmp_path, flat_files)
    factored = import_generated(factored_dir)[0].build_model()
    flat = import_generated(tmp_path)[0].build_model()
    assert _structure(factored) == _structure(flat)
    assert factored.count_params() == flat.count_params()
    if name in ("mobilenetv2", "resnet50", "densenet121", "inceptionv3", "xception"):
        head = files["model.py"].split("def build_model")[0]
        assert "\ndef " in head, f"{name}: no block function"
    # the language server reads every layer's name from the factored code, without running it
    from codegen.lsp import blocks, model_file

    text = files["model.py"]
    calls = model_file.layer_calls(text)
    found = {n for n, c in calls.items() if not c.callee.endswith(("Input", "add_weight"))}
    found -= {factored.name}
    expanded = blocks.expand(text)
    assert expanded.complete
    found |= set(expanded.instances)
    assert found == {
        layer.name for layer in factored.layers if type(layer).__name__ != "InputLayer"
    }
