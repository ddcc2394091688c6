"""Parity on JAX and PyTorch: the generated models run on every Keras backend.

Here (the TensorFlow backend) each suite's models are converted and TensorFlow computes the
references once; then one process per backend (tests/backend_parity.py, with KERAS_BACKEND
set and `import tensorflow` made to fail) builds every model, loads its weights with the
generated loader and compares, with the bound TensorFlow's own parity tests use. What runs:

- zoo: every model of tests/zoo.py and every recurrent model of tests/test_rnn.py;
- op_table: every row of tests/test_op_table.py whose ops take no TensorFlow-only layer;
- formats: every input format of tests/test_formats.py (SavedModels, checkpoints).

A suite's two backends share a worker (xdist_group), so its references are computed once; a
lock keeps two workers from building references at the same time (each peaks at gigabytes).
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.options import Options
from codegen.verify import import_generated, run_graph, seeded_inputs

ROOT = Path(__file__).resolve().parent.parent
NO_TENSORFLOW = ROOT / "tests" / "no_tensorflow"
BACKENDS = ("jax", "torch")


class ParitySet:
    """A directory of cases for tests/backend_parity.py: converted models, their inputs and
    TensorFlow's outputs."""

    def __init__(self, root: Path):
        self.root = root
        self.cases: list[dict] = []
        self.tensorflow_only: list[str] = []  # cases left out: they need the TF backend

    def add(self, case_id: str, spec, model_dir, weights, inputs, references) -> None:
        if spec.backends() == ["tensorflow"]:  # a TensorFlow-only layer, or strings
            self.tensorflow_only.append(case_id)
            return
        stem = f"{len(self.cases):04d}"
        np.savez(self.root / f"{stem}.inputs.npz", *inputs)
        np.savez(self.root / f"{stem}.reference.npz", *map(np.asarray, references))
        self.cases.append(
            {
                "id": case_id,
                "model": str(model_dir),
                "weights": str(weights),
                "inputs": f"{stem}.inputs.npz",
                "reference": f"{stem}.reference.npz",
            }
        )

    def write(self) -> "ParitySet":
        (self.root / "cases.json").write_text(json.dumps(self.cases, indent=1))
        return self


def zoo_cases(parity: ParitySet, model_zoo) -> None:
    import test_rnn
    import test_zoo
    import zoo

    for name in zoo.ALL:
        spec, out, _ = model_zoo.converted(name)
        arrays = seeded_inputs([i.shape for i in spec.inputs], [i.dtype for i in spec.inputs])
        if name in zoo.NCHW:
            references = test_zoo.run_nhwc_twin(model_zoo, name, spec, arrays, "keep")
        else:
            feeds = {i.tensor: a for i, a in zip(spec.inputs, arrays)}
            references = run_graph(model_zoo.graph(name), feeds, spec.outputs)
        parity.add(name, spec, out, model_zoo.graph(name), arrays, references)
        gc.collect()  # each model's TensorFlow graphs, before the next is built
    for name, build in sorted(test_rnn.BUILDERS.items()):
        directory = parity.root / name
        directory.mkdir()
        case = build(directory / "graph.pb")
        spec, files = convert(case["path"])
        write_atomically(directory / "out", files)
        xs = case["x"] if isinstance(case["x"], list) else [case["x"]]  # a seq2seq takes two
        references = run_graph(
            case["path"], {i.tensor: x for i, x in zip(spec.inputs, xs)}, spec.outputs
        )
        parity.add(name, spec, directory / "out", case["path"], xs, references)


def op_table_cases(parity: ParitySet) -> None:
    import test_op_table as table

    for row, param in enumerate(table.CASES):
        fn, args, paths = param.values
        if table.T in paths.values():
            parity.tensorflow_only.append(param.id)
            continue
        directory = parity.root / f"row{row:04d}"  # a row add() sets aside keeps its number
        directory.mkdir()
        table.freeze(fn, args, directory / "graph.pb")
        spec, files = convert(directory / "graph.pb")
        write_atomically(directory / "out", files)
        rng = np.random.default_rng(zlib.crc32(param.id.encode()))  # as test_op_table samples
        values = {f"{name}:0": a.sample(rng) for name, a in zip("abcd", args)}
        feeds = [values[i.tensor if ":" in i.tensor else i.tensor + ":0"] for i in spec.inputs]
        tensors = [i.tensor for i in spec.inputs]
        references = run_graph(directory / "graph.pb", dict(zip(tensors, feeds)), spec.outputs)
        parity.add(param.id, spec, directory / "out", directory / "graph.pb", feeds, references)


def formats_cases(parity: ParitySet) -> None:
    import test_formats as formats

    for name, (path, options, weights, _) in formats.CASES.items():
        spec, files = convert(path, Options(**options))
        write_atomically(parity.root / name, files)
        x = seeded_inputs([spec.inputs[0].shape], ["float32"], batch=3, seed=7)[0]
        parity.add(name, spec, parity.root / name, weights, [x], [formats.reference(name, x)])


SUITES = {"zoo": zoo_cases, "op_table": op_table_cases, "formats": formats_cases}
# at least this many cases per suite run on each backend, so a suite cannot shrink to nothing
MINIMUM = {"zoo": 30, "op_table": 150, "formats": 8}


@pytest.fixture(scope="session")
def parity_sets(tmp_path_factory):
    made: dict[str, ParitySet] = {}

    def get(suite: str, request) -> ParitySet:
        if suite not in made:
            # one worker at a time builds references: each build peaks at gigabytes of
            # TensorFlow memory (12 GB for the zoo), and two at once ran a 24 GiB machine out
            # of memory; the lock file sits in the run's directory, shared by its workers
            lock = tmp_path_factory.getbasetemp().parent / "backend-references.lock"
            with open(lock, "w") as held:
                fcntl.flock(held, fcntl.LOCK_EX)
                parity = ParitySet(tmp_path_factory.mktemp(f"backends_{suite}"))
                if suite == "zoo":  # the zoo's models, built once per worker (conftest.py)
                    zoo_cases(parity, request.getfixturevalue("model_zoo"))
                else:
                    SUITES[suite](parity)
                made[suite] = parity.write()
        return made[suite]

    return get


def backend_env(backend: str) -> dict[str, str]:
    """A process on `backend` where `import tensorflow` fails."""
    pythonpath = [str(NO_TENSORFLOW), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        pythonpath.append(os.environ["PYTHONPATH"])
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(pythonpath)}


def run_parity(directory: Path, backend: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.backend_parity", str(directory)],
        env=backend_env(backend),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    path = directory / f"results-{backend}.json"
    if not path.exists():
        raise AssertionError(
            f"{backend}: no results (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return json.loads(path.read_text()), result.stdout


# a suite's backends share a worker, so its references are built once (parity_sets: one
# worker builds references at a time)
@pytest.mark.parametrize(
    "suite, backend",
    [
        pytest.param(s, b, marks=pytest.mark.xdist_group(f"backends_{s}"))
        for s in SUITES
        for b in BACKENDS
    ],
)
def test_parity_on_backend(parity_sets, suite, backend, request):
    parity = parity_sets(suite, request)
    results, _ = run_parity(parity.root, backend)
    failed = {case: problem for case, problem in results.items() if problem}
    assert sorted(results) == sorted(case["id"] for case in parity.cases)
    assert not failed, f"{backend}: {len(failed)} of {len(results)} fail:\n" + "\n".join(
        f"  {case}: {problem}" for case, problem in sorted(failed.items())
    )
    assert len(results) >= MINIMUM[suite]


def cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


@pytest.mark.parametrize("backend", ["tensorflow", *BACKENDS])
def test_check_on_backend(example_graph, backend):
    """`check --backend` runs the generated model in a process on that backend, every layer
    probed there, against TensorFlow running the graph."""
    result = cli("check", example_graph, "--backend", backend, "--per-layer")
    assert result.returncode == 0, result.stderr[-2000:]
    name = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}[backend]
    assert f"the generated model ran on {name}" in result.stdout
    assert "probs:0" in result.stdout and "all 9 layers within tolerance" in result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_on_backend_names_the_diverging_layer(example_graph, tmp_path, backend):
    """A weight corrupted in the loader: the layer probes that run on the backend find it."""
    assert cli(example_graph, "-o", tmp_path).returncode == 0
    loader = tmp_path / "load_weights.py"
    line = '"conv2/bias": "conv2/biases",'
    assert line in loader.read_text()
    corrupted = '"conv2/bias": ("conv2/biases", lambda x: x + 0.5),'
    loader.write_text(loader.read_text().replace(line, corrupted))
    result = cli("check", example_graph, "-o", tmp_path, "--backend", backend, "--per-layer")
    assert result.returncode == 5, result.stderr[-2000:]
    assert "first diverging layer: 'conv2'" in result.stdout


def test_check_refuses_a_backend_a_tensorflow_only_layer_rules_out():
    """A model with TensorFlow-only layers runs on TensorFlow alone: check says so, exit 2,
    before running anything."""
    result = cli("check", ROOT / "tests" / "cases" / "tfonly_ops.pbtxt", "--backend", "jax")
    assert result.returncode == 2
    assert "cannot run on JAX: TensorFlow only: TFExtractImagePatches ×1" in result.stderr


def test_inspect_and_report_say_where_the_model_runs(example_graph, tmp_path):
    tfonly = ROOT / "tests" / "cases" / "tfonly_ops.pbtxt"
    assert "\nruns on TensorFlow, JAX, PyTorch\n" in cli("inspect", example_graph).stdout
    only = "TensorFlow only: TFExtractImagePatches ×1, TFLgamma ×1, TFZeta ×1"
    assert f"\n{only}\n" in cli("inspect", tfonly).stdout
    data = json.loads(cli("inspect", tfonly, "--json").stdout)
    assert data["backends"] == ["tensorflow"] and data["runs_on"] == only
    assert "# Runs on TensorFlow, JAX, PyTorch.\n" in cli(example_graph).stdout
    result = cli(tfonly, "-o", tmp_path, "--report", "json")
    assert json.loads(result.stderr)["backends"] == ["tensorflow"]
    assert f"# {only}.\n" in (tmp_path / "model.py").read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_loader_runs_without_tensorflow(example_graph, tmp_path, backend):
    """load_weights.py as a script, where `import tensorflow` fails, on JAX and PyTorch: it
    reads the graph with its embedded decoder and saves the weights. (The backend parity runs
    above load every zoo model, op-table row and checkpoint format this way too.)"""
    env = backend_env(backend)
    blocked = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True
    )
    assert "TensorFlow is blocked" in blocked.stderr
    assert cli(example_graph, "-o", tmp_path).returncode == 0
    saved = tmp_path / "model.weights.h5"
    result = subprocess.run(
        [sys.executable, tmp_path / "load_weights.py", example_graph, "--save", saved],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = (
        "import keras, model; m = model.build_model(); m.load_weights('model.weights.h5'); "
        "print(keras.backend.backend(), round(float(sum(abs(w).sum() for w in m.get_weights())), 3))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    model_module, loader = import_generated(tmp_path)
    model = loader.load_weights(model_module.build_model(), str(example_graph))
    expected = round(float(sum(abs(w).sum() for w in model.get_weights())), 3)
    assert result.stdout.split() == [backend, str(expected)]
