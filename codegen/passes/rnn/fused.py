"""Fused LSTM ops, a whole LSTM in one node.

BlockLSTM (TF 1.x's LSTMBlockFusedCell) runs a whole LSTM as one op on a time-major sequence:
kernel [x, h] x 4 units with gate columns i, c, f, o and a forget_bias attribute; BlockLSTMV2
has Keras's column order and no forget bias. Without peepholes or clipping, and from zero
states over the whole sequence, it is Keras's LSTM: the op's semantics are known, so no step
is evaluated.
"""

from __future__ import annotations

from ...graph import Node, split_ref
from ..frames import Loop, through_identity
from .cells import LSTM_OP, Cell, Source, gate_blocks, with_forget_bias
from .constants import is_zeros, outer_value, small_value
from .evaluate import EVAL_ERRORS, NotRNN
from .rewrite import follow, input_sequence, lifted_nodes, node_name, stacked_use

BLOCK_ORDER = {"BlockLSTM": (0, 2, 1, 3), "BlockLSTMV2": (0, 1, 2, 3)}
_BLOCK_H, _BLOCK_CS = 6, 1  # the outputs a model reads: every h, every cell state


def lift_block(node: Node, readers, by_name: dict[str, Node]):
    try:
        return _lift_block_or_raise(node, readers, by_name)
    except (NotRNN, *EVAL_ERRORS):
        return None


def _lift_block_or_raise(node: Node, readers, by_name):
    a = node.attrs
    if a.get("use_peephole") or float(a.get("cell_clip", 3.0 if node.op == "BlockLSTM" else 0)) > 0:
        raise NotRNN("peepholes or a clipped cell")
    seq_len_max, x, cs_prev, h_prev, w, _, _, _, b = node.inputs
    if not (is_zeros(cs_prev, by_name) and is_zeros(h_prev, by_name)):
        raise NotRNN("initial states")
    if not _whole_sequence(seq_len_max, x, by_name):
        raise NotRNN("seq_len_max may stop short of the sequence")
    kernel, bias = outer_value(w, by_name), outer_value(b, by_name)
    if kernel is None or bias is None or kernel[0].ndim != 2 or bias[0].ndim != 1:
        raise NotRNN("weights")
    kernel, bias = Source(*kernel), Source(*bias)
    units = kernel.value.shape[1] // 4
    n_in = kernel.value.shape[0] - units
    order = BLOCK_ORDER[node.op]
    k = gate_blocks(kernel, order, units, 1, (0, n_in))
    r = gate_blocks(kernel, order, units, 1, (n_in, n_in + units))
    b_template, b_value = gate_blocks(bias, order, units, 0)
    forget_bias = float(a.get("forget_bias", 1.0)) if node.op == "BlockLSTM" else 0.0
    if forget_bias:
        b_template, b_value = with_forget_bias(b_template, b_value, units, forget_bias)
    weights = {"kernel": k[0], "recurrent_kernel": r[0], "bias": b_template}
    values = {"kernel": k[1], "recurrent_kernel": r[1], "bias": b_value}
    cell = Cell(LSTM_OP, units, weights, values)
    uses: dict[str, list[str]] = {"seq": [], "last": [], "c": [], "time_major": []}
    read = {
        split_ref(t)[1]
        for r in readers.get(node.name, [])
        for t in r.inputs
        if split_ref(t)[0] == node.name
    }
    if read - {_BLOCK_H, _BLOCK_CS}:
        raise NotRNN("a gate is read")
    for reader in follow(node.output(_BLOCK_H), readers, by_name):
        kind = stacked_use(reader, by_name)
        if kind == "time_major":
            raise NotRNN("the time-major outputs are read")
        uses[kind].append(reader.output(0))
    for reader in follow(node.output(_BLOCK_CS), readers, by_name):
        if stacked_use(reader, by_name) != "last":
            raise NotRNN("the cell states are read")
        uses["c"].append(reader.output(0))
    uses = {kind: list(dict.fromkeys(found)) for kind, found in uses.items()}
    source, batch_major, backwards = input_sequence(x, by_name)
    if backwards:
        raise NotRNN("reversed input")
    name = node_name(node.name, "lstm", set(by_name))
    new, rename = lifted_nodes(name, cell, source, batch_major, uses, by_name)
    return new, rename, Loop(name, [], {}, {}, {node.name})


def _whole_sequence(seq_len_max: str, x: str, by_name) -> bool:
    """Whether seq_len_max is the time-major sequence's length: Shape(x)[0], maybe cast."""
    node = by_name.get(split_ref(through_identity(seq_len_max, by_name))[0])
    if node is not None and node.op == "Cast":
        node = by_name.get(split_ref(through_identity(node.inputs[0], by_name))[0])
    if node is None or node.op != "StridedSlice" or node.attrs.get("shrink_axis_mask") != 1:
        return False
    begin, end = (small_value(t, by_name) for t in node.inputs[1:3])
    shape = by_name.get(split_ref(node.inputs[0])[0])
    return (
        begin is not None
        and end is not None
        and [int(v) for v in begin] == [0]
        and [int(v) for v in end] == [1]
        and shape is not None
        and shape.op == "Shape"
        and through_identity(shape.inputs[0], by_name) == through_identity(x, by_name)
    )
