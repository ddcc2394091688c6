"""Run the original graph (TensorFlow) and the generated model (Keras) side by side.

The only module that imports TensorFlow, and only when called.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import numpy as np


def run_graph(
    path: str | Path, feeds: dict[str, np.ndarray], outputs: list[str]
) -> list[np.ndarray]:
    """Evaluate tensors of a frozen GraphDef with TensorFlow."""
    import tensorflow as tf

    from .load import read_graphdef

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(read_graphdef(path).SerializeToString())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(outputs, feed_dict=feeds)


def import_generated(directory: str | Path):
    """(model module, load_weights module) from a directory graph2py wrote, under unique
    module names so several generated models can live in one process."""
    directory = Path(directory)
    modules = []
    for name in ("model", "load_weights"):
        unique = f"graph2py_generated_{name}_{uuid.uuid4().hex}"
        spec = importlib.util.spec_from_file_location(unique, directory / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return tuple(modules)


def seeded_inputs(
    shapes: list[tuple], dtypes: list[str], batch: int = 2, seed: int = 0
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for shape, dtype in zip(shapes, dtypes):
        dims = (batch, *[d if d is not None else 8 for d in shape])
        if np.issubdtype(np.dtype(dtype), np.integer):
            arrays.append(rng.integers(0, 10, dims).astype(dtype))
        else:
            arrays.append(rng.uniform(-1.0, 1.0, dims).astype(dtype))
    return arrays


def max_error(reference: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """(max |difference|, the parity bound 1e-4 * max(1, max |reference|))."""
    reference = np.asarray(reference, np.float64)
    actual = np.asarray(actual, np.float64)
    if reference.shape != actual.shape:
        raise AssertionError(f"shape {actual.shape} differs from reference {reference.shape}")
    return float(np.max(np.abs(reference - actual))), 1e-4 * max(
        1.0, float(np.max(np.abs(reference)))
    )
