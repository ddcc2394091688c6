"""Recurrent layers and embeddings: the LSTM/GRU nodes `passes/rnn.py` lifts out of frozen
loops become `keras.layers.LSTM`/`GRU`, and a gather of rows from a constant table becomes
`keras.layers.Embedding`."""

from __future__ import annotations

import os
import re

from ..graph import Node, split_ref
from ..names import keras_name
from ..passes.rnn import GRU_OP, LSTM_OP, RESULT_OP, UNMASKED_OP
from ..recipes import bind
from ..spec import Weight
from .registry import Matcher, pattern, variable_path

_RNN_WEIGHTS = ("kernel", "recurrent_kernel", "bias")


@pattern(LSTM_OP, GRU_OP)
def recurrent(node: Node, m: Matcher):
    """The pass has already matched the cell and mapped its weights to Keras's layout; the
    weights' recipes read the node's constant inputs."""
    a = node.attrs
    lstm = node.op == LSTM_OP
    weights = []
    for name in _RNN_WEIGHTS:
        recipe = bind(a["weights"][name], lambda i: m.consts.recipe(node.inputs[i]))
        weights.append(Weight(name, recipe, tuple(a["shapes"][name])) if recipe else None)
    kwargs = {
        "return_sequences": a["return_sequences"],
        "return_state": a["return_state"],
        "go_backwards": a["go_backwards"],
    }
    if not lstm:
        kwargs["reset_after"] = a["reset_after"]
    if "recurrent_activation" in a:  # Keras 2's hard sigmoid, the gates' weights scaled
        kwargs["recurrent_activation"] = a["recurrent_activation"]
    if a.get("zero_output_for_mask"):
        kwargs["zero_output_for_mask"] = True
    count = (3 if lstm else 2) if a["return_state"] else 1
    outputs = [node.output(i) for i in range(count)]
    views = []
    for view in {v.name: v for i in range(count) for v in m.graph.users(outputs[i])}.values():
        if view.op != RESULT_OP:
            continue  # a layer reading the result
        views.append(view)
        for source, port in zip(view.inputs, view.attrs["ports"]):
            outputs[split_ref(source)[1]] = view.output(port)  # the graph's name for it
    keywords = (("mask", 0),) if a.get("mask") else ()
    if a.get("initial_state"):
        keywords += (("initial_state", a["initial_state"]),)
    layer = m.layer(
        "LSTM" if lstm else "GRU",
        [node, *views],
        node.inputs[: 1 + sum(count or 1 for _, count in keywords)],
        args=[a["units"]],
        kwargs=kwargs,
        weights=weights,
    )
    if layer is not None:
        layer.keywords = keywords
        layer.outputs = outputs
        layer.name = _cell_scope(layer, m) or layer.name
    return layer


@pattern(UNMASKED_OP)
def unmasked(node: Node, m: Matcher):
    """A masked layer's sequence, handed on without its Keras mask (see passes/rnn)."""
    layer = m.layer("Unmasked", [node], node.inputs[:1])
    layer.name = keras_name("_".join([*m.namer.scope(node.name)[-1:], "unmasked"]))
    return layer


def _cell_scope(layer, m: Matcher) -> str | None:
    """The scope all the weights share (`rnn/gru_cell` for TF's `gru_cell/gates/kernel` and
    `gru_cell/candidate/kernel`): the cell's name rather than its first weight's."""
    if m.namer.uniquified:
        return None
    paths = [variable_path(name) for w in layer.weights for name in w.recipe.graph_reads()]
    common = os.path.commonprefix(paths)
    if len(common) > 1 and _KERAS_CELL.fullmatch(common[-1]) and not _TF_SCOPES.match(common[-2]):
        common = common[:-1]  # Keras's `gru_1/gru_cell/kernel`: the layer is gru_1
    return m.namer.layer_name(["/".join(common) + "/"]) if common else None


# The cell scope Keras puts under every recurrent layer's, and the scopes TF's own RNN
# functions put above a cell (dynamic_rnn's `rnn`, MultiRNNCell's `multi_rnn_cell/cell_0`).
_KERAS_CELL = re.compile(r"(lstm|gru|simple_rnn)_cell(_\d+)?")
_TF_SCOPES = re.compile(r"(rnn|multi_rnn_cell|cell_\d+|bidirectional_rnn|fw|bw)$")


@pattern("GatherV2")
def embedding(node: Node, m: Matcher):
    """Rows of a constant float table picked by computed ids: what Embedding computes."""
    table, ids, axis = node.inputs
    value = m.const(table)
    if (
        value is None
        or value.ndim != 2
        or value.dtype.kind != "f"
        or m.consts.is_const(ids)
        or m.ints(axis) != [0]
        or node.attrs.get("batch_dims", 0)
    ):
        return None
    nodes, x = [node], _integer_ids(ids, node, m)
    while x != ids:  # the casts go into the layer: Embedding casts its ids itself
        nodes.insert(0, m.node(ids))
        ids = m.node(ids).inputs[0]
    rows, dim = value.shape
    layer = m.layer(
        "Embedding", nodes, [x], args=[int(rows), int(dim)], weights=[m.weight("embeddings", table)]
    )
    if layer is not None:  # named by its scope: a frozen ResourceGather's table is `.../<id>`
        layer.name = m.layer_name(nodes, [])
    return layer


_INTEGERS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _integer_ids(ids: str, reader: Node, m: Matcher) -> str:
    """The integer tensor the ids were cast from (Keras 2 casts token ids to float and back),
    or the ids themselves."""
    found, current = ids, ids
    for _ in range(2):
        cast = m.node(current)
        if cast.op != "Cast" or m.user(current) is None:
            break
        current = cast.inputs[0]
        if cast.attrs.get("SrcT") in _INTEGERS:
            found = current
    return found
