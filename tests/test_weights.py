"""load_weights.py: as a script, as a function, and failing loudly on a shape mismatch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.verify import import_generated, run_graph, seeded_inputs


@pytest.fixture()
def example_dir(example_graph, tmp_path):
    spec, files = convert(example_graph)
    write_atomically(tmp_path / "out", files)
    return spec, tmp_path / "out"


@pytest.mark.parametrize("target", ["model.keras", "model.weights.h5"])
def test_script_saves_a_loadable_model(example_graph, example_dir, tmp_path, target):
    import keras

    spec, out = example_dir
    result = subprocess.run(
        [
            sys.executable,
            str(out / "load_weights.py"),
            str(example_graph),
            "--save",
            str(tmp_path / target),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    x = seeded_inputs([spec.inputs[0].shape], ["float32"])[0]
    if target.endswith(".keras"):
        model = keras.saving.load_model(tmp_path / target)
    else:
        model_mod, _ = import_generated(out)
        model = model_mod.build_model()
        model.load_weights(tmp_path / target)
    reference = run_graph(example_graph, {spec.inputs[0].tensor: x}, spec.outputs)[0]
    np.testing.assert_allclose(np.asarray(model(x)), reference, atol=1e-5)


def test_shape_mismatch_names_layer_weight_and_node(example_graph, example_dir):
    _, out = example_dir
    path = out / "load_weights.py"
    source = path.read_text()
    original = 'values["fc1", "kernel"] = graph["fc1/weights"]'
    assert original in source
    path.write_text(
        source.replace(original, 'values["fc1", "kernel"] = np.transpose(graph["fc1/weights"])')
    )
    model_mod, loader = import_generated(out)
    model = model_mod.build_model()
    before = [np.array(w) for w in model.weights]
    with pytest.raises(ValueError) as err:
        loader.load_weights(model, str(example_graph))
    message = str(err.value)
    assert "'fc1'" in message and "'kernel'" in message and "'fc1/weights'" in message
    assert "(400, 120)" in message and "(120, 400)" in message
    # nothing was assigned
    assert all(np.array_equal(b, np.array(w)) for b, w in zip(before, model.weights))
