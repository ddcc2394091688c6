"""The wild corpus (tests/wild/): TF1-era graphs converted with tensor names only.

Each graph is built, randomised and frozen once per session, converted through the command
line with `--inputs`/`--outputs` naming tensors and no shapes, and the generated model is built,
its weights loaded from the frozen graph, run on a batch the graph was not traced with, and
compared with TensorFlow running the frozen graph.
"""

from __future__ import annotations


import numpy as np
import pytest

from codegen import cli
from tests.wild import harness

NAMES = harness.names()


@pytest.fixture(scope="session")
def wild(tmp_path_factory):
    """{name: (Built, output directory, report)}, each converted once per session (worker)."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            root = tmp_path_factory.mktemp(f"wild-{name}")
            built = harness.build(name, root)
            out = root / "out"
            code = cli.main([*harness.arguments(built, out), "--report", "json"])
            cache[name] = (built, out, code)
        return cache[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_converts_with_names_only_and_matches(wild, name, capsys):
    built, out, code = wild(name)
    assert code == 0, capsys.readouterr().err
    references = harness.reference(built)
    outputs = harness.run_generated(built, out)
    assert len(outputs) == len(references)
    problems = [harness.compare(r, a) for r, a in zip(references, outputs)]
    assert not any(problems), problems


@pytest.mark.parametrize("name", NAMES)
def test_only_the_expected_ops_are_tensorflow_only(wild, name):
    """A wild graph converts to layers and keras.ops; the TensorFlow-only path is taken only
    by the op types the module names (audio decoding has no keras.ops form)."""
    built, out, code = wild(name)
    assert code == 0
    header = (out / "model.py").read_text()
    line = next((l for l in header.splitlines() if l.startswith("# TensorFlow-only:")), "")
    found = {
        part.split(" ×")[0].strip()
        for part in line.removeprefix("# TensorFlow-only:").split(",")
        if part.strip()
    }
    assert found <= built.tensorflow_only, found - built.tensorflow_only
