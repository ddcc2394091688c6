"""Keras 3's Embedding as TensorFlow freezes it: ids below zero wrapped by the table size
(`where(ids < 0, ids + rows, ids)`, NumPy-style `take`), then a GatherV2 of the table. The
plain GatherV2 form (Keras 2, tf.nn.embedding_lookup) is patterns/rnn.py's pattern."""

from __future__ import annotations

from ..graph import Node
from .registry import Matcher, pattern


def _wrapped_lookup(m: Matcher, ids: str) -> list[Node] | None:
    """[Less, AddV2, SelectV2, GatherV2] reading `ids`, wrapping negatives by the table's row
    count, each node used only inside the chain."""
    users = m.graph.users(ids)
    less = next((u for u in users if u.op == "Less" and u.inputs[0] == ids), None)
    add = next((u for u in users if u.op in ("AddV2", "Add") and ids in u.inputs), None)
    if less is None or add is None or m.scalar(less.inputs[1]) != 0:
        return None
    select = m.user(less.output(0), "SelectV2", "Select")
    if select is None or select.inputs != [less.output(0), add.output(0), ids]:
        return None
    if m.user(add.output(0)) is not select:
        return None
    gather = m.user(select.output(0), "GatherV2")
    if gather is None or gather.inputs[1] != select.output(0):
        return None
    table = m.const(gather.inputs[0])
    split = m.split_const(add)
    if (
        table is None
        or table.ndim != 2
        or table.dtype.kind != "f"
        or m.ints(gather.inputs[2]) != [0]
        or gather.attrs.get("batch_dims", 0)
        or not split
        or m.scalar(split[1]) != table.shape[0]
    ):
        return None
    return [less, add, select, gather]


@pattern("Less", "AddV2", "Add")
def wrapped_embedding(node: Node, m: Matcher):
    ids = node.inputs[0] if node.op == "Less" else (m.split_const(node) or [None])[0]
    if ids is None:
        return None
    nodes = _wrapped_lookup(m, ids)
    if nodes is None or node not in nodes or any(n.name in m.covered for n in nodes):
        return None
    gather = nodes[-1]
    rows, dim = m.const(gather.inputs[0]).shape
    return m.layer(
        "Embedding",
        nodes,
        [ids],
        args=[int(rows), int(dim)],
        weights=[m.weight("embeddings", gather.inputs[0])],
        output=gather.output(0),
    )
