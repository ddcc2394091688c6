"""load_weights.py: as a script, as a function, and failing loudly on a shape mismatch; and
the pair of files written to `-o DIR` all at once or not at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codegen import cli
from codegen.cli import write_atomically
from codegen.errors import UsageError
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


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_script_prints_its_one_line_and_no_tensorflow_noise(
    example_graph, example_dir, tmp_path, backend
):
    """Run as the quick start runs it (TF_CPP_MIN_LOG_LEVEL unset): TensorFlow's C++ start-up
    lines (oneDNN notices, a CUDA error on a CPU machine) stay off stderr, also where Keras
    imports TensorFlow only to save (the torch backend); a user's setting is left alone."""
    _, out = example_dir
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = backend
    script, save = [sys.executable, str(out / "load_weights.py")], [
        "--save",
        str(tmp_path / "m.keras"),
    ]
    command = [*script, str(example_graph), *save]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith("saved ") and result.stdout.count("\n") == 1
    missing = [*script, str(tmp_path / "missing.pb"), *save]
    result = subprocess.run(missing, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("load_weights.py: error: ")


def test_shape_mismatch_names_layer_weight_and_node(example_graph, example_dir):
    _, out = example_dir
    path = out / "load_weights.py"
    source = path.read_text()
    original = '"fc1/kernel": "fc1/weights",'
    assert original in source
    path.write_text(source.replace(original, '"fc1/kernel": ("fc1/weights", np.transpose),'))
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


# -- writing -o DIR: both files or neither ----------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
NEW = {"model.py": "# new model\n", "load_weights.py": "# new loader\n"}


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under `root` (hidden ones too) with its bytes, or its kind."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_fifo():
            found[key] = "fifo"
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = path.read_bytes()
    return found


def test_a_directory_in_the_way_changes_nothing(example_graph, tmp_path):
    out = tmp_path / "out"
    (out / "load_weights.py").mkdir(parents=True)
    (out / "model.py").write_bytes(b"# hand-edited model\n")
    before = snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "codegen", str(example_graph), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"graph2py: error: {out / 'load_weights.py'}: exists and is a directory: not replacing it"
    ]
    assert snapshot(tmp_path) == before  # model.py byte for byte, and no staging directory


def test_every_target_in_the_way_is_named_at_once(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "model.py")
    (out / "load_weights.py").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(UsageError) as err:
        write_atomically(out, NEW)
    assert err.value.problems == [
        f"{out / 'model.py'}: exists and is not a regular file: not replacing it",
        f"{out / 'load_weights.py'}: exists and is a directory: not replacing it",
    ]
    assert snapshot(tmp_path) == before


def test_a_failed_second_move_puts_the_first_file_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").write_bytes(b"# old model\n")
    (out / "load_weights.py").write_bytes(b"# old loader\n")
    (out / "notes.txt").write_bytes(b"mine\n")
    before = snapshot(tmp_path)
    replace = os.replace

    def failing_replace(src, dst):  # moving the new loader in fails; putting back works
        if Path(src).name == "load_weights.py":
            raise OSError(28, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(cli.os, "replace", failing_replace)
    with pytest.raises(UsageError) as err:
        write_atomically(out, NEW)
    assert err.value.problems == [f"{out}: cannot write: No space left on device"]
    assert snapshot(tmp_path) == before


def test_a_failed_write_removes_the_directories_it_created(tmp_path, monkeypatch):
    out = tmp_path / "a" / "b" / "out"
    replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).name == "load_weights.py":
            raise OSError(28, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(cli.os, "replace", failing_replace)
    with pytest.raises(UsageError):
        write_atomically(out, NEW)
    assert snapshot(tmp_path) == {}


def test_existing_files_are_replaced_and_nothing_else_is_touched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").write_bytes(b"# old model\n")
    (out / "notes.txt").write_bytes(b"mine\n")
    os.symlink("elsewhere.py", out / "load_weights.py")  # replaced, not followed
    write_atomically(out, NEW)
    assert snapshot(tmp_path) == {
        "out": "dir",
        "out/load_weights.py": b"# new loader\n",
        "out/model.py": b"# new model\n",
        "out/notes.txt": b"mine\n",
    }
