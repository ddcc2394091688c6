"""What a generated `load_weights.py` imports from graph2py: the readers of its source.

A loader is a table (one row per Keras weight: where its value is stored, and the numpy steps
that compute it where there are any) and a short loop that checks every shape and assigns.
Reading the source (a GraphDef's protobuf, TensorFlow's short forms of constants, a checkpoint's
tensor bundle) and refusing a broken or hostile file is the converter's own code, imported
from here, so that a loader reads exactly what the converter read and stays a page a reviewer
can read. It needs graph2py installed, not TensorFlow.

Loaders written by earlier versions import these names: keep them and their signatures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checkpoint import CheckpointReader, checkpoint_prefix
from .errors import Graph2PyError
from .load import read_graph_file, tensor_to_numpy


class LoadError(ValueError):
    """A source that cannot be read, or a stored value that cannot be decoded; its message is
    one line per problem, naming the file and the node or key."""


def graph_constants(path) -> Callable[[str], np.ndarray]:
    """The Const nodes of the frozen GraphDef at `path` (text or binary, told by content), as a
    function of a node's name that decodes its value. A function body's constants are named
    `FUNCTION:NODE` (no node name holds a colon), as the converter names them."""
    try:
        graph, _ = read_graph_file(path)
    except Graph2PyError as err:
        raise LoadError(str(err)) from None
    nodes = {node.name: node for node in graph.node if node.op == "Const"}
    for function in graph.library.function:
        for node in function.node_def:
            if node.op == "Const":
                nodes.setdefault(f"{function.signature.name}:{node.name}", node)

    def read(name: str) -> np.ndarray:
        node = nodes.get(name)
        if node is None:
            raise LoadError(f"{path}: the graph has no constant node {name!r}")
        attr = node.attr.get("value")
        if attr is None or attr.WhichOneof("value") != "tensor":
            raise LoadError(f"{path}: constant node {name!r} holds no tensor")
        try:
            return tensor_to_numpy(attr.tensor)
        except ValueError as err:
            raise LoadError(f"{path}: constant node {name!r}: {err}") from None

    return read


def checkpoint_tensors(source) -> Callable[[str], np.ndarray]:
    """The variables of a TensorFlow checkpoint, as a function of a key that reads its value:
    `source` is the prefix (PREFIX.index, PREFIX.data-*), a `.index` or `.meta` file beside
    it, or a SavedModel directory (its variables/variables)."""
    try:
        return CheckpointReader(checkpoint_prefix(source)).tensor
    except ValueError as err:  # CheckpointError: index missing, truncated or corrupt
        raise LoadError(str(err)) from None
