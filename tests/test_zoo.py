"""Parity on real architectures: convert, execute the generated code, compare with TF.

Every zoo model had all its variables (BatchNorm statistics included) set to seeded random
values before freezing, so a dropped or swapped parameter cannot match by accident.
"""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from codegen.verify import import_generated, max_error, run_graph, seeded_inputs


def _group(name):
    return pytest.param(name, marks=pytest.mark.xdist_group(name))


def run_both(model_zoo, name):
    spec, out, _ = model_zoo.converted(name)
    model_mod, loader = import_generated(out)
    model = loader.load_weights(model_mod.build_model(), str(model_zoo.graph(name)))
    arrays = seeded_inputs([i.shape for i in spec.inputs], [i.dtype for i in spec.inputs])
    reference = run_graph(
        model_zoo.graph(name), {i.tensor: a for i, a in zip(spec.inputs, arrays)}, spec.outputs
    )
    actual = model(arrays if len(arrays) > 1 else arrays[0], training=False)
    actual = actual if isinstance(actual, (list, tuple)) else [actual]
    return spec, model, reference, [np.asarray(a) for a in actual]


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
    assert "keras.ops" not in files["model.py"] and "class " not in files["model.py"]
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
