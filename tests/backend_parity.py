"""Run already-converted models on the Keras backend this process was started with, against
TensorFlow references computed elsewhere: the parity of JAX and PyTorch, one process each.

    KERAS_BACKEND=jax python -m tests.backend_parity DIR

DIR holds `cases.json` (written by tests/test_backends.py): per case, the directory with
model.py and load_weights.py, what `load_weights` reads, and an .npz of the inputs and one of
the references TensorFlow gave. Every case is built, loaded with the generated loader, run and
compared with the bound TensorFlow's own parity tests use; one failing case does not stop the
others. The result goes to `DIR/results-<backend>.json` and, one line per case, to stdout.

Nothing here imports TensorFlow: the tests run this with tests/no_tensorflow first on the
path, so a generated model or loader that needs TensorFlow fails here.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from codegen.verify import import_generated, max_error

# JAX computes in 32 bits unless x64 is enabled (jax_enable_x64): a 64-bit dtype asked for is
# its 32-bit sibling, on every JAX program, so that is the dtype to expect there
NARROW = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}


def compare(reference: np.ndarray, actual: np.ndarray, narrow: bool = False) -> str | None:
    """Why `actual` is not TensorFlow's `reference`, or None: same dtype (with `narrow`, 64-bit
    dtypes as JAX without x64 gives them) and shape, integers, booleans and non-finite values
    exact, floats within 1e-4·max(1, max|ref|)."""
    expected = NARROW.get(reference.dtype.name, reference.dtype.name) if narrow else reference.dtype
    if actual.dtype != expected:
        return f"dtype {actual.dtype} != {expected}"
    if actual.shape != reference.shape:
        return f"shape {actual.shape} != {reference.shape}"
    if reference.dtype.kind not in "fc":
        return None if np.array_equal(reference, actual) else "values differ"
    finite = np.isfinite(reference)
    if not np.array_equal(reference[~finite], actual[~finite], equal_nan=True):
        return "non-finite values differ"
    if finite.any():
        error, bound = max_error(reference[finite], actual[finite])
        if not error <= bound:  # NaN where the reference is finite fails too
            return f"max|Δ| = {error:.3g} exceeds {bound:.3g}"
    return None


def run_case(case: dict, root: Path) -> str | None:
    import keras

    model_module, loader = import_generated(root / case["model"])
    model = loader.load_weights(model_module.build_model(), str(case["weights"]))
    inputs = np.load(root / case["inputs"])
    arrays = [inputs[f"arr_{i}"] for i in range(len(inputs.files))]
    outputs = model(arrays if len(arrays) > 1 else arrays[0], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    references = np.load(root / case["reference"])
    narrow = keras.backend.backend() == "jax" and not _jax_x64()
    if len(outputs) != len(references.files):
        return f"{len(outputs)} outputs, the reference has {len(references.files)}"
    for i, output in enumerate(outputs):
        problem = compare(references[f"arr_{i}"], keras.ops.convert_to_numpy(output), narrow)
        if problem:
            return f"output {i}: {problem}"
    return None


def _jax_x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def main(directory: str) -> int:
    import keras

    root = Path(directory)
    cases = json.loads((root / "cases.json").read_text())
    backend = keras.backend.backend()
    results = {}
    for case in cases:
        start = time.perf_counter()
        try:
            problem = run_case(case, root)
        except Exception as err:  # one broken case must not hide the others' results
            lines = traceback.format_exception_only(type(err), err)
            problem = f"{type(err).__name__}: {' '.join(''.join(lines).split())[:600]}"
        keras.backend.clear_session()
        results[case["id"]] = problem
        took = time.perf_counter() - start
        verdict = f"FAIL {case['id']}: {problem}" if problem else f"ok   {case['id']}"
        print(f"{verdict} ({took:.1f} s)", flush=True)
    (root / f"results-{backend}.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    failed = sum(p is not None for p in results.values())
    print(f"{backend}: {len(results) - failed} of {len(results)} cases within the bound")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
