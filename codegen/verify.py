"""Run the original graph (TensorFlow) and the generated model (Keras) side by side.

The only module that imports TensorFlow, and only when called.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from pathlib import Path

import numpy as np

from .errors import BadInputError
from .load import one_line

# The node names TensorFlow's importer accepts (IsValidNodeName in graph_constructor.cc): ASCII
# letters, digits and `-./_`, not starting with `-`, `/` or `_`; `>` joins such names. graph2py
# converts any name, but `check` has to hand the graph to TensorFlow.
_TF_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_./-]*(>[A-Za-z0-9.][A-Za-z0-9_./-]*)*")


def import_into_tensorflow(graph_def, source) -> None:
    """Import `graph_def` (TensorFlow's proto) into the default graph. A graph TensorFlow
    refuses is the user's to fix, said in one line: a node name it does not accept is named
    before TensorFlow is asked, and its own refusal (an attribute it does not accept) is cut
    to one line."""
    refused = [node.name for node in graph_def.node if not _TF_NODE_NAME.fullmatch(node.name)]
    if refused:
        more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
        raise BadInputError(
            f"{source}: TensorFlow refuses node name {refused[0]!r}{more} (a name is ASCII "
            "letters, digits and '-./_', not starting with '-', '/' or '_'), so check cannot "
            "run the graph"
        )
    import tensorflow as tf

    try:
        tf.compat.v1.import_graph_def(graph_def, name="")
    except ValueError as err:
        raise BadInputError(f"{source}: TensorFlow refuses the graph: {one_line(err)}") from None


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
        import_into_tensorflow(graph_def, path)
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(outputs, feed_dict=feeds)


def run_source(
    path: str | Path,
    arrays: list[np.ndarray],
    inputs: list[str],
    outputs: list[str],
    signature: str | None = None,
    tag: str | None = None,
    checkpoint: str | None = None,
) -> list[np.ndarray]:
    """Evaluate the original model with TensorFlow, in any input format: a frozen graph as
    run_graph; a SavedModel through its signature (`arrays` in the order of the signature's
    sorted argument names, results in the order of its sorted output keys); a TF1 meta graph or
    GraphDef + checkpoint in a session whose variables TF restores from the checkpoint."""
    from .formats import open_source

    source = open_source(path, signature, tag, checkpoint)
    if source.kind == "graphdef":
        return run_graph(path, dict(zip(inputs, arrays)), outputs)
    if source.kind == "savedmodel":
        return run_signature(path, source.signature, tag, arrays)
    return run_session(source, dict(zip(inputs, arrays)), outputs)


def run_signature(path, signature: str, tag: str | None, arrays: list[np.ndarray]):
    import tensorflow as tf

    from .formats import open_source

    source = open_source(path, signature, tag)
    tf.get_logger().setLevel("ERROR")  # TF1 SavedModels warn once per reference variable
    loaded = tf.saved_model.load(str(path), tags=tag.split(",") if tag else None)
    fn = loaded.signatures[signature]
    result = fn(**{arg: tf.constant(a) for (arg, _), a in zip(source.inputs, arrays)})
    return [np.asarray(result[key]) for key, _ in source.outputs]


def run_session(source, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    """TF1: import the graph, assign every variable its checkpoint value (read by TF's own
    checkpoint reader), run. Tensor names are the graph's own (no signature renames here)."""
    import tensorflow as tf

    values = tf.train.load_checkpoint(source.checkpoint)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(source.graph_def.SerializeToString())
    graph = tf.Graph()
    with graph.as_default():
        import_into_tensorflow(graph_def, source.path)
        assigns = []
        for op in graph.get_operations():
            if op.type in ("VariableV2", "VarHandleOp"):
                shared = op.get_attr("shared_name").decode() if op.type == "VarHandleOp" else ""
                key = next((k for k in (op.name, shared) if k and values.has_tensor(k)), None)
                if key is None:
                    continue
                value = tf.constant(values.get_tensor(key))
                if op.type == "VariableV2":
                    assigns.append(tf.raw_ops.Assign(ref=op.outputs[0], value=value))
                else:
                    assigns.append(tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=value))
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(assigns)
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
