"""`graph2py check`: run the original graph and the generated model on the same inputs.

The converter's promise is numerical parity; this is how a user verifies it on their own graph
and data. With per-layer checking it walks the layers in order and names the first whose output
leaves the tolerance: where a conversion went wrong, not just that it did.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EXIT_MISMATCH, Graph2PyError, UsageError, printable
from .options import Options
from .spec import BACKENDS, INTERNAL, Kind, ModelSpec


class BackendError(Graph2PyError):
    """The generated model did not run on the backend asked for: no parity to show."""

    exit_code = EXIT_MISMATCH


@dataclass
class OutputError:
    tensor: str
    max_abs: float
    max_rel: float  # max_abs / max(1, max |reference|): what the tolerance is compared with
    ok: bool


@dataclass
class CheckResult:
    outputs: list[OutputError]
    first_divergence: tuple[str, str, float] | None = None  # (layer, graph tensor, rel error)
    layers_checked: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs) and self.first_divergence is None


def errors(reference: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    reference = np.asarray(reference, np.float64)
    actual = np.asarray(actual, np.float64)
    if reference.shape != actual.shape:
        return float("inf"), float("inf")
    if reference.size == 0:
        return 0.0, 0.0
    diff = np.abs(reference - actual)
    diff = np.where(np.isnan(reference) & np.isnan(actual), 0.0, diff)
    max_abs = float(np.max(diff))
    return max_abs, max_abs / max(1.0, float(np.nanmax(np.abs(reference))))


def load_inputs(spec: ModelSpec, data: str | None, seed: int, batch: int) -> list[np.ndarray]:
    """Arrays for the model's inputs: from an .npz keyed by input name (or tensor name), or
    seeded random values."""
    from .verify import seeded_inputs

    if data is None:
        arrays = seeded_inputs(
            [i.shape for i in spec.inputs], [i.dtype for i in spec.inputs], batch, seed
        )
        return [a if i.batched else _inference_value(i) for i, a in zip(spec.inputs, arrays)]
    try:
        archive = np.load(data, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"{data}: cannot read as .npz: {err}") from None
    arrays = []
    for inp in spec.inputs:
        for key in (inp.name, inp.tensor, inp.tensor.rsplit(":", 1)[0]):
            if key in archive.files:
                arrays.append(archive[key].astype(inp.dtype))
                break
        else:
            raise UsageError(f"{data}: no array named {inp.name!r} (has {sorted(archive.files)})")
    return arrays


def _inference_value(inp) -> np.ndarray:
    """A switch fed beside the data (is_train, keep_prob) at its inference setting: False, 1."""
    fill = False if inp.dtype == "bool" else 1
    return np.full(inp.shape, fill, inp.dtype)


def check(
    source: str | Path,
    spec: ModelSpec,
    directory: Path,
    arrays: list[np.ndarray],
    tolerance: float = 1e-4,
    per_layer: bool = False,
    options: Options = Options(),
    backend: str | None = None,
) -> CheckResult:
    """`spec` is the model's, converted from `source` with `options`. For a SavedModel the
    reference is its signature, run by TensorFlow; for a TF1 meta graph or GraphDef +
    checkpoint, the graph in a session with the checkpoint's variables. The generated model
    runs here, or with `backend` in a process of its own on that Keras backend (the reference
    is TensorFlow's either way)."""
    from .verify import run_source

    kind = spec.source_kind
    weights = str(options.checkpoint if kind == "checkpoint" else source)
    formats = {"signature": options.signature, "tag": options.tag, "checkpoint": options.checkpoint}

    def run_graph(_source, feeds, tensors):
        return run_source(_source, list(feeds.values()), list(feeds), tensors, **formats)

    notes = []
    if per_layer and kind == "savedmodel":
        per_layer = False  # the signature's function bodies are not addressable by tensor name
        notes.append("--per-layer compares against a graph run: not available for SavedModels")
    # keras.ops expressions are no layers to probe; a multi-output layer's first result
    # is not the one tensor a graph node gives
    layers = [
        l
        for l in spec.layers
        if per_layer
        and l.kind is not Kind.OPS
        and len(l.outputs) == 1
        and INTERNAL not in l.outputs[0]
    ]
    if backend is None:
        actual, probed = run_generated(directory, weights, arrays, [l.name for l in layers])
    else:
        if backend not in spec.backends():
            where = spec.where_it_runs()
            raise UsageError(f"the model cannot run on {BACKENDS[backend]}: {where}")
        actual, probed = run_on_backend(
            backend, directory, weights, arrays, [l.name for l in layers]
        )
        notes.append(f"the generated model ran on {BACKENDS[backend]}")
    feeds = {i.tensor: a for i, a in zip(spec.inputs, arrays)}
    if kind != "savedmodel":  # a signature takes its arguments only
        feeds.update(options.set_feeds())
    reference = run_graph(source, feeds, spec.graph_outputs or spec.outputs)
    result = CheckResult(
        [
            OutputError(t, *errs, ok=errs[1] <= tolerance)
            for t, errs in ((t, errors(r, a)) for t, r, a in zip(spec.outputs, reference, actual))
        ],
        notes=notes,
    )
    if layers:
        tensors = [layer.outputs[0] for layer in layers]
        reference = run_graph(source, feeds, tensors)
        for layer, tensor, ref, got in zip(layers, tensors, reference, probed):
            result.layers_checked += 1
            _, rel = errors(ref, got)
            if rel > tolerance:
                result.first_divergence = (layer.name, tensor, rel)
                break
    return result


def run_generated(
    directory: Path, weights: str, arrays: list[np.ndarray], probes: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The generated model's outputs on `arrays`, with its weights loaded from `weights` by
    its own loader, on the Keras backend of this process; and the outputs of the layers named
    in `probes`."""
    import keras

    from .verify import import_generated

    model_mod, loader = import_generated(directory)
    model = loader.load_weights(model_mod.build_model(), weights)
    feed = arrays if len(arrays) > 1 else arrays[0]

    def run(m) -> list[np.ndarray]:
        out = m(feed, training=False)
        return [
            keras.ops.convert_to_numpy(o)
            for o in (out if isinstance(out, (list, tuple)) else [out])
        ]

    probed = []
    if probes:
        probed = run(keras.Model(model.inputs, [model.get_layer(n).output for n in probes]))
    return run(model), probed


def run_on_backend(
    backend: str, directory: Path, weights: str, arrays: list[np.ndarray], probes: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`run_generated` in a fresh process whose Keras backend is `backend`: Keras picks its
    backend once per process, when it is first imported."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        raise UsageError(f"--backend {backend}: {backend} is not installed")
    staging = Path(tempfile.mkdtemp(prefix="graph2py-backend-"))
    try:
        np.savez(staging / "inputs.npz", *arrays)
        request = {"directory": str(directory), "weights": weights, "probes": probes}
        (staging / "request.json").write_text(json.dumps(request))
        env = {**os.environ, "KERAS_BACKEND": backend}
        package = str(Path(__file__).resolve().parent.parent)  # this codegen, wherever it is
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-m", "codegen.check", str(staging)],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise BackendError(
                f"the generated model failed on {BACKENDS[backend]}: "
                + (lines[-1] if lines else f"exit {done.returncode}")
            )
        outputs = np.load(staging / "outputs.npz")
        count = len(outputs.files) - len(probes)
        values = [outputs[f"arr_{i}"] for i in range(len(outputs.files))]
        return values[:count], values[count:]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def render(result: CheckResult, tolerance: float) -> str:
    lines = [f"{'output':<48}{'max abs':>12}{'max rel':>12}  within {tolerance:g}"]
    for o in result.outputs:
        lines.append(
            f"{o.tensor:<48}{o.max_abs:>12.3g}{o.max_rel:>12.3g}  {'yes' if o.ok else 'NO'}"
        )
    if result.first_divergence:
        name, tensor, rel = result.first_divergence
        lines.append(
            f"first diverging layer: {name!r} (graph tensor {tensor!r}, rel error {rel:.3g})"
        )
    elif result.layers_checked:
        lines.append(f"all {result.layers_checked} layers within tolerance")
    lines += [f"note: {note}" for note in result.notes]
    return "".join(printable(line) + "\n" for line in lines)


def staging_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="graph2py-check-"))


def _serve(staging: Path) -> None:
    """The process `run_on_backend` starts: run the model, write its outputs and probes."""
    request = json.loads((staging / "request.json").read_text())
    inputs = np.load(staging / "inputs.npz")
    arrays = [inputs[f"arr_{i}"] for i in range(len(inputs.files))]
    outputs, probed = run_generated(
        Path(request["directory"]), request["weights"], arrays, request["probes"]
    )
    np.savez(staging / "outputs.npz", *outputs, *probed)


if __name__ == "__main__":
    import sys

    _serve(Path(sys.argv[1]))
