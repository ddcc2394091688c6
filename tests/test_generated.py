"""The committed examples in generated/ are what graph2py produces today, byte for byte, and
that output is deterministic, black-clean and compilable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import black
import pytest

from codegen.convert import convert

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


def _graph2py(*args, seed="0", cwd=None):
    env = dict(os.environ, PYTHONHASHSEED=seed)
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        check=True,
    ).stdout


def test_example_is_current(example_graph):
    _, files = convert(example_graph, directory=GENERATED / "example")
    for name in ("model.py", "load_weights.py"):
        committed = (GENERATED / "example" / name).read_text()
        assert (
            files[name] == committed
        ), f"generated/example/{name} is stale: run `python tests/regenerate.py`"


@pytest.mark.parametrize(
    "model",
    [pytest.param(m, marks=pytest.mark.xdist_group(m)) for m in ("mobilenetv2", "resnet50")],
)
def test_zoo_model_is_current(model_zoo, model):
    _, _, files = model_zoo.converted(model)
    for name in ("model.py", "load_weights.py"):
        committed = (GENERATED / model / name).read_text()
        assert (
            files[name] == committed
        ), f"generated/{model}/{name} is stale: run `python tests/regenerate.py`"
    assert "\ndef build_model" in files["model.py"] and files["model.py"].count("\ndef ") > 1


def test_output_is_deterministic_black_clean_and_compiles(example_graph):
    first = _graph2py(example_graph.relative_to(ROOT), seed="1")
    second = _graph2py(example_graph.relative_to(ROOT), seed="2")
    assert first == second
    assert black.format_str(first, mode=black.Mode()) == first
    compile(first, "model.py", "exec")


@pytest.mark.xdist_group("mobilenetv2")
def test_large_model_deterministic(model_zoo, tmp_path):
    graph = model_zoo.graph("mobilenetv2")
    runs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        _graph2py(graph, "-o", out, seed=seed)
        runs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert runs[0] == runs[1]
    for text in runs[0].values():
        source = text.decode()
        assert black.format_str(source, mode=black.Mode()) == source
        compile(source, "generated.py", "exec")
