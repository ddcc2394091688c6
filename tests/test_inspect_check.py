"""`graph2py inspect` and `graph2py check`, on the example and on zoo models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )


def test_inspect_table(example_graph, capsys):
    assert main(["inspect", str(example_graph)]) == 0
    out = capsys.readouterr().out
    assert "input:0" in out and "(?, 28, 28, 1)" in out and "probs:0" in out
    assert "parameters 61,706" in out and "converts: yes" in out


def test_inspect_json(example_graph, capsys):
    assert main(["inspect", str(example_graph), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"] == [
        {"name": "input:0", "op": "Placeholder", "dtype": "float32", "shape": [None, 28, 28, 1]}
    ]
    assert [o["name"] for o in data["outputs"]] == ["probs:0"]
    assert data["paths"]["Conv2D"] == {"keras.layers.Conv2D": 2}
    assert data["paths"]["Relu"] == {"keras.layers.Conv2D": 2, "keras.layers.Dense": 1}
    assert data["op_counts"]["Const"] == 11 and data["convertible"] is True


def test_inspect_names_what_will_not_convert(tmp_path, capsys):
    path = tmp_path / "g.pbtxt"
    path.write_text("""
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "shape" value { shape { dim { size: -1 } dim { size: 4 } } } } }
node { name: "r" op: "Relu" input: "x" }
node { name: "d" op: "Digamma" input: "r" }
node { name: "e" op: "VendorGamma" input: "d" }
""")
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["convertible"] is False
    assert data["paths"]["VendorGamma"] == {"unsupported": 1}
    assert data["paths"]["Digamma"] == {"tf.raw_ops.Digamma (TensorFlow-only layer)": 1}
    assert data["paths"]["Relu"] == {"keras.layers.ReLU": 1}


def test_check_passes_on_the_example(example_graph):
    result = run("check", example_graph, "--per-layer")
    assert result.returncode == 0, result.stderr
    assert "probs:0" in result.stdout and "all 9 layers within tolerance" in result.stdout


def test_check_names_the_first_diverging_layer(example_graph, tmp_path):
    """Corrupt one weight in the generated loader: check must point at that layer."""
    assert main([str(example_graph), "-o", str(tmp_path)]) == 0
    loader = tmp_path / "load_weights.py"
    source = loader.read_text()
    line = '"conv2/bias": "conv2/biases",'
    assert line in source
    loader.write_text(source.replace(line, '"conv2/bias": ("conv2/biases", lambda x: x + 0.5),'))
    result = run("check", example_graph, "-o", tmp_path, "--per-layer")
    assert result.returncode == 5
    assert "first diverging layer: 'conv2'" in result.stdout


def test_check_reads_inputs_from_npz(example_graph, tmp_path):
    import numpy as np

    np.savez(tmp_path / "x.npz", input=np.ones((3, 28, 28, 1), np.float32))
    result = run("check", example_graph, "--data", tmp_path / "x.npz")
    assert result.returncode == 0, result.stderr
    bad = run("check", example_graph, "--data", tmp_path / "missing.npz")
    assert bad.returncode == 2 and "cannot read as .npz" in bad.stderr


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xdist_group(n)) for n in ("mobilenetv2", "resnet50")]
)
def test_inspect_and_check_on_zoo(model_zoo, name, capsys):
    graph = model_zoo.graph(name)
    assert main(["inspect", str(graph), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["convertible"] and data["inputs"][0]["shape"] == [None, 224, 224, 3]
    assert set().union(*data["paths"].values()) <= {"constant", "keras.Input"} | {
        p for p in set().union(*data["paths"].values()) if p.startswith("keras.layers.")
    }
    assert main(["check", str(graph), "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "layers within tolerance" in out
