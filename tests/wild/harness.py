"""Build, freeze and convert one wild graph; shared by tests/test_wild.py and the note's
measurements (`python -m tests.wild.harness NAME...` prints each graph's result)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from tests.zoo import randomize

SEED = 20261129


def names() -> list[str]:
    """Every wild graph module (tests/wild/*.py but this one)."""
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in ("harness",))


def module(name: str) -> ModuleType:
    return importlib.import_module(f"tests.wild.{name}")


@dataclass
class Built:
    """A frozen wild graph and what the test feeds it."""

    name: str
    path: Path
    inputs: list[str]
    outputs: list[str]
    feeds: list[np.ndarray]
    sets: dict[str, str]
    tensorflow_only: frozenset[str]


def build(name: str, directory: Path) -> Built:
    """Run the module's TF1 code, randomise every global variable, freeze, rewrite, write."""
    import tensorflow as tf

    v1 = tf.compat.v1
    mod = module(name)
    if getattr(mod, "CONTROL_FLOW_V1", False):
        v1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(SEED)
            inputs, outputs = mod.build()
            variables = v1.global_variables()
            values = randomize(
                [np.zeros(v.shape.as_list(), v.dtype.as_numpy_dtype) for v in variables],
                [v.name for v in variables],
                np.random.default_rng(SEED),
            )
            with v1.Session(graph=graph) as sess:
                sess.run(
                    [v.initializer for v in variables],
                    {v.initial_value: value for v, value in zip(variables, values)},
                )
                sess.run(v1.local_variables_initializer())
                frozen = v1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(), sorted({o.split(":")[0] for o in outputs})
                )
    finally:
        if getattr(mod, "CONTROL_FLOW_V1", False):
            v1.enable_control_flow_v2()
    if hasattr(mod, "rewrite"):
        frozen = mod.rewrite(frozen)
    path = Path(directory) / f"{name}.pb"
    path.write_bytes(frozen.SerializeToString(deterministic=True))
    return Built(
        name,
        path,
        list(inputs),
        list(outputs),
        list(mod.feeds(np.random.default_rng(SEED + 1))),
        dict(getattr(mod, "SETS", {})),
        frozenset(getattr(mod, "TENSORFLOW_ONLY", ())),
    )


def arguments(built: Built, out: Path) -> list[str]:
    """The command line: tensor names only, no shapes."""
    args = [str(built.path), "-o", str(out), "--inputs", ",".join(built.inputs)]
    args += ["--outputs", ",".join(built.outputs)]
    for key, value in built.sets.items():
        args += ["--set", f"{key}={value}"]
    return args


def reference(built: Built) -> list[np.ndarray]:
    from codegen.verify import run_graph

    feeds = {name: value for name, value in zip(built.inputs, built.feeds)}
    for key, value in built.sets.items():  # TensorFlow runs the graph with the values set
        feeds[key if ":" in key else f"{key}:0"] = _set_value(value)
    return run_graph(built.path, feeds, built.outputs)


def _set_value(text: str):
    """A --set VALUE as TensorFlow is fed it (the session casts it to the placeholder's dtype);
    a PlaceholderWithDefault that is set is fed the same value."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return float(text) if any(c in text for c in ".eEn") else int(text)


def run_generated(built: Built, out: Path) -> list[np.ndarray]:
    """Import the generated pair, build, load the weights from the graph, run on the feeds."""
    from codegen.verify import import_generated

    model_module, loader = import_generated(out)
    model = model_module.build_model()
    loader.load_weights(model, str(built.path))
    feeds = [f for name, f in zip(built.inputs, built.feeds) if not _is_set(name, built.sets)]
    result = model(feeds if len(feeds) != 1 else feeds[0])
    if not isinstance(result, (list, tuple)):
        result = [result]
    return [np.asarray(r) for r in result]


def _is_set(name: str, sets: dict[str, str]) -> bool:
    return name in sets or name.split(":")[0] in sets


def compare(reference: np.ndarray, actual: np.ndarray) -> str | None:
    """None when they match: floats within 1e-4·max(1, max|ref|), everything else exactly."""
    reference, actual = np.asarray(reference), np.asarray(actual)
    if reference.shape != actual.shape:
        return f"shape {actual.shape} != {reference.shape}"
    if reference.dtype.kind in "fc":
        bound = 1e-4 * max(1.0, float(np.max(np.abs(reference), initial=0.0)))
        error = float(np.max(np.abs(reference.astype(np.float64) - actual), initial=0.0))
        return None if error <= bound else f"max|Δ| {error:.3g} > {bound:.3g}"
    if reference.dtype.kind in "SUO":
        same = [bytes(r) if not isinstance(r, str) else r.encode() for r in reference.ravel()] == [
            a if isinstance(a, bytes) else str(a).encode() for a in actual.ravel()
        ]
        return None if same else "strings differ"
    if reference.dtype != actual.dtype:
        return f"dtype {actual.dtype} != {reference.dtype}"
    return None if np.array_equal(reference, actual) else "values differ"


def main(argv: list[str]) -> int:
    """Print one line per wild graph: converted / built / matched, or where it failed."""
    import tempfile

    from codegen import cli

    failures = 0
    for name in argv or names():
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            try:
                built = build(name, tmp)
                code = cli.main(arguments(built, tmp / "out"))
                if code != 0:
                    raise RuntimeError(f"graph2py exit {code}")
                problems = [
                    compare(r, a)
                    for r, a in zip(reference(built), run_generated(built, tmp / "out"))
                ]
                bad = [p for p in problems if p]
                print(f"{name}: {'matches' if not bad else '; '.join(bad)}")
                failures += bool(bad)
            except Exception as err:  # a measurement: report and go on
                print(
                    f"{name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                )
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
