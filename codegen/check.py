"""`graph2py check`: run the original graph and the generated model on the same inputs.

The converter's promise is numerical parity; this is how a user verifies it on their own graph
and data. With per-layer checking it walks the layers in order and names the first whose output
leaves the tolerance: where a conversion went wrong, not just that it did.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError, printable
from .options import Options
from .spec import INTERNAL, Kind, ModelSpec


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
) -> CheckResult:
    """`spec` is the model's, converted from `source` with `options`. For a SavedModel the
    reference is its signature, run by TensorFlow; for a TF1 meta graph or GraphDef +
    checkpoint, the graph in a session with the checkpoint's variables."""
    import keras

    from .verify import import_generated, run_source

    model_mod, loader = import_generated(directory)
    kind = spec.source_kind
    model = loader.load_weights(
        model_mod.build_model(), str(options.checkpoint if kind == "checkpoint" else source)
    )
    formats = {"signature": options.signature, "tag": options.tag, "checkpoint": options.checkpoint}

    def run_graph(_source, feeds, tensors):
        return run_source(_source, list(feeds.values()), list(feeds), tensors, **formats)

    feeds = {i.tensor: a for i, a in zip(spec.inputs, arrays)}
    if kind != "savedmodel":  # a signature takes its arguments only
        feeds.update(options.set_feeds())
    reference = run_graph(source, feeds, spec.graph_outputs or spec.outputs)
    notes = []
    if per_layer and kind == "savedmodel":
        per_layer = False  # the signature's function bodies are not addressable by tensor name
        notes.append("--per-layer compares against a graph run: not available for SavedModels")
    actual = model(arrays if len(arrays) > 1 else arrays[0], training=False)
    actual = actual if isinstance(actual, (list, tuple)) else [actual]
    result = CheckResult(
        [
            OutputError(t, *errs, ok=errs[1] <= tolerance)
            for t, errs in ((t, errors(r, a)) for t, r, a in zip(spec.outputs, reference, actual))
        ],
        notes=notes,
    )
    if per_layer:
        # keras.ops expressions are no layers to probe; a multi-output layer's first result
        # is not the one tensor a graph node gives
        layers = [
            l
            for l in spec.layers
            if l.kind is not Kind.OPS and len(l.outputs) == 1 and INTERNAL not in l.outputs[0]
        ]
        tensors = [layer.outputs[0] for layer in layers]
        reference = run_graph(source, feeds, tensors)
        probe = keras.Model(model.inputs, [model.get_layer(l.name).output for l in layers])
        actual = probe(arrays if len(arrays) > 1 else arrays[0], training=False)
        actual = actual if isinstance(actual, (list, tuple)) else [actual]
        for layer, tensor, ref, got in zip(layers, tensors, reference, actual):
            result.layers_checked += 1
            _, rel = errors(ref, np.asarray(got))
            if rel > tolerance:
                result.first_divergence = (layer.name, tensor, rel)
                break
    return result


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
