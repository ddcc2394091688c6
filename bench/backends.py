"""Inference latency of generated models on each Keras backend, next to the original Keras
model on the same backend and the frozen graph in TensorFlow.

A script, not a test (timings on a shared machine are noisy): it prints the median of
`--repeat` calls after warm-up, and the ratio generated / original Keras model within one
backend, which is the figure to compare across runs. Each call is compiled where the backend
compiles: `tf.function` on TensorFlow, `jax.jit` of `stateless_call` on JAX; PyTorch runs as
Keras runs it (eager, under `torch.no_grad()`). The frozen graph runs in a TF1 session. The
generated and the original model are called in turn, so a machine slowing down slows both.

    python bench/backends.py [--models mobilenetv2,resnet50,efficientnetb0,text]
                             [--backends tensorflow,jax,torch] [--batches 1,8] [--repeat 10]
                             [--cache DIR]

The image models are zoo models (tests/zoo.py: keras.applications with random weights,
frozen); `text` is an Embedding + LSTM + GRU + Dense model written with Keras 2 (tf_keras) and
frozen, as tests/test_rnn.py's text model, at a size where the recurrent loops dominate. Each
backend runs in a process of its own (KERAS_BACKEND is read once per process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

IMAGE = ("mobilenetv2", "resnet50", "efficientnetb0")
BACKENDS = ("tensorflow", "jax", "torch")
# the text model: vocabulary, embedding width, LSTM and GRU units, sequence length, classes
TEXT = {"vocab": 5000, "embed": 64, "lstm": 128, "gru": 64, "steps": 64, "classes": 4}


# -- models --------------------------------------------------------------------------------------


def build_text_keras2(path: Path) -> None:
    """The text model in Keras 2, random weights, frozen as a user freezes it."""
    import tensorflow as tf
    import tf_keras
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    model = tf_keras.Sequential(
        [
            tf_keras.layers.Embedding(TEXT["vocab"], TEXT["embed"]),
            tf_keras.layers.LSTM(TEXT["lstm"], return_sequences=True),
            tf_keras.layers.GRU(TEXT["gru"]),
            tf_keras.layers.Dense(TEXT["classes"]),
        ]
    )
    model.build((None, TEXT["steps"]))
    rng = np.random.default_rng(11)
    for v in model.variables:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype(np.float32))
    spec = tf.TensorSpec((None, TEXT["steps"]), tf.int32, name="tokens")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString(deterministic=True))


def original(name: str):
    """The original Keras 3 model on this process's backend (random weights: latency does not
    depend on the values)."""
    import keras

    if name != "text":
        import zoo

        return zoo.build_application(name)
    return keras.Sequential(
        [
            keras.Input((TEXT["steps"],), dtype="int32"),
            keras.layers.Embedding(TEXT["vocab"], TEXT["embed"]),
            keras.layers.LSTM(TEXT["lstm"], return_sequences=True),
            keras.layers.GRU(TEXT["gru"]),
            keras.layers.Dense(TEXT["classes"]),
        ]
    )


def inputs(name: str, batch: int) -> np.ndarray:
    rng = np.random.default_rng(batch)
    if name == "text":
        return rng.integers(0, TEXT["vocab"], (batch, TEXT["steps"])).astype(np.int32)
    import zoo

    shape = zoo.APPLICATIONS[name][1]
    return rng.uniform(-1, 1, (batch, *shape)).astype(np.float32)


# -- timing, in the backend's process ------------------------------------------------------------


def compiled(model):
    """A function of one numpy batch that runs `model` for inference, compiled where this
    backend compiles, and waits for the result."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda x: model(x, training=False))
        return lambda x: fn(tf.constant(x)).numpy()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def fn(trainable, frozen, x):
            return model.stateless_call(trainable, frozen, x, training=False)[0]

        return lambda x: fn(trainable, frozen, x).block_until_ready()
    import torch

    def run(x):
        with torch.no_grad():
            return model(torch.from_numpy(x), training=False)

    return run


def median_ms(fn, x, repeat: int, warmup: int = 3) -> float:
    return paired_ms({"one": fn}, x, repeat, warmup)["one"]


def paired_ms(fns: dict, x, repeat: int, warmup: int = 3) -> dict[str, float]:
    """Median milliseconds per call of each function, called in turn (A B A B ...), so that a
    machine whose speed drifts slows each alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn(x)
    times: dict[str, list[float]] = {which: [] for which in fns}
    for _ in range(repeat):
        for which, fn in fns.items():
            start = time.perf_counter()
            fn(x)
            times[which].append(time.perf_counter() - start)
    return {which: statistics.median(t) * 1e3 for which, t in times.items()}


def serve(request: dict) -> None:
    """In the backend's process: time the generated and the original model of each entry, in
    turn, and (TensorFlow only) the frozen graph; one JSON line per figure on stdout."""
    import keras

    from codegen.verify import import_generated

    backend = keras.backend.backend()
    for entry in request["models"]:
        name = entry["name"]
        model_module, loader = import_generated(entry["code"])
        models = {
            "generated": loader.load_weights(model_module.build_model(), entry["graph"]),
            "original": original(name),
        }
        fns = {which: compiled(model) for which, model in models.items()}
        for batch in request["batches"]:
            for which, ms in paired_ms(fns, inputs(name, batch), request["repeat"]).items():
                print(json.dumps([name, batch, backend, which, ms]), flush=True)
        if backend == "tensorflow":
            for batch in request["batches"]:
                ms = frozen_graph_ms(entry, inputs(name, batch), request["repeat"])
                print(json.dumps([name, batch, "tensorflow", "frozen", ms]), flush=True)
        keras.backend.clear_session()


def frozen_graph_ms(entry: dict, x: np.ndarray, repeat: int) -> float:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(entry["graph"]).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        fetch, feed = (t if ":" in t else f"{t}:0" for t in (entry["output"], entry["input"]))
        return median_ms(lambda a: sess.run(fetch, {feed: a}), x, repeat)


# -- the parent ----------------------------------------------------------------------------------


def prepare(names: list[str], cache: Path) -> list[dict]:
    """Each model frozen (once: kept in `cache`) and converted; what a backend process needs."""
    import zoo

    from codegen.cli import write_atomically
    from codegen.convert import convert

    entries = []
    for name in names:
        graph = cache / f"{name}.pb"
        if not graph.exists():
            print(f"building {name} ...", file=sys.stderr, flush=True)
            script = (
                "import sys; sys.path[:0] = sys.argv[1:3]; import zoo, backends; "
                "p = __import__('pathlib').Path(sys.argv[4]); "
                "backends.build_text_keras2(p) if sys.argv[3] == 'text' "
                "else zoo.build(sys.argv[3], str(p))"
            )
            argv = [sys.executable, "-c", script, str(ROOT / "tests"), str(ROOT / "bench")]
            subprocess.run([*argv, name, str(graph)], check=True, cwd=ROOT)
        spec, files = convert(graph)
        write_atomically(cache / name, files)
        entries.append(
            {
                "name": name,
                "graph": str(graph),
                "code": str(cache / name),
                "input": spec.inputs[0].tensor,
                "output": spec.outputs[0],
            }
        )
    return entries


def run_backend(backend: str, request: dict) -> list[list]:
    env = {**os.environ, "KERAS_BACKEND": backend}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    print(f"timing on {backend} ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, __file__, "--serve", json.dumps(request)],
        env=env,
        capture_output=True,
        text=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        print(f"{backend} failed: {last}", file=sys.stderr)
    return rows


def table(rows: list[list], names: list[str], backends: list[str], batches: list[int]) -> str:
    ms = {(n, b, backend, which): t for n, b, backend, which, t in rows}
    header = f"{'model':<14}{'batch':>6}{'frozen TF':>11}"
    for backend in backends:
        header += f" |{backend + ' gen':>16}{'orig':>9}{'gen/orig':>9}"
    lines = [header, "-" * len(header)]

    def cell(value, width, digits=1):
        return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    for name in names:
        for batch in batches:
            line = f"{name:<14}{batch:>6}{cell(ms.get((name, batch, 'tensorflow', 'frozen')), 11)}"
            for backend in backends:
                gen = ms.get((name, batch, backend, "generated"))
                orig = ms.get((name, batch, backend, "original"))
                ratio = gen / orig if gen and orig else None
                line += f" |{cell(gen, 16)}{cell(orig, 9)}{cell(ratio, 9, 2)}"
            lines.append(line)
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join([*IMAGE, "text"]))
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeat", type=int, default=10, help="timed calls per figure (median)")
    ap.add_argument("--cache", metavar="DIR", help="where frozen graphs are kept")
    args = ap.parse_args()
    names = [n for n in args.models.split(",") if n]
    unknown = set(names) - {*IMAGE, "text"}
    if unknown:
        ap.error(f"unknown models {sorted(unknown)}: choose from {', '.join([*IMAGE, 'text'])}")
    backends = [b for b in args.backends.split(",") if b]
    batches = [int(b) for b in args.batches.split(",")]
    cache = Path(args.cache or tempfile.mkdtemp(prefix="graph2py-bench-"))
    cache.mkdir(parents=True, exist_ok=True)
    request = {"models": prepare(names, cache), "batches": batches, "repeat": args.repeat}
    rows = [row for backend in backends for row in run_backend(backend, request)]
    print(f"median ms of {args.repeat} calls after 3 warm-up calls; cache {cache}\n")
    print(table(rows, names, backends, batches))


if __name__ == "__main__":
    main()
