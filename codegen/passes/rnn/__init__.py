"""Recurrent loops -> one node per Keras LSTM or GRU layer.

A frozen RNN is a while loop over time steps: the input sequence unstacked into a tensor list
(or TF1 tensor array), the state (h, or h and c) carried from step to step, each step's output
written to another list, and the weights entering the loop as constants. Patterns match single
ops and cannot see a loop, so this pass, run as the graph is decoded (a lowered loop is a
cycle, which the graph refuses), recognises the whole loop and replaces it with one synthetic
node, `_Graph2pyLSTM` or `_Graph2pyGRU`, that `patterns/rnn.py` turns into
`keras.layers.LSTM`/`GRU`.

The forms read:
  * lowered frames (Enter, Merge, Switch, LoopCond, NextIteration, Exit): TF 1.x graphs, and
    Keras 2/3 layers frozen with `convert_variables_to_constants_v2`;
  * functional `While`/`StatelessWhile` nodes whose body is in the graph's function library:
    `tf.compat.v1.nn.dynamic_rnn` under TF2's control flow;
  * unrolled chains: `static_rnn`, the cell repeated once per unstacked step;
  * fused ops: `BlockLSTM`/`BlockLSTMV2`, a whole LSTM in one node.

The cell is recognised by what it computes, not by op names: candidate weights are found from
the shapes and operands of the step's MatMuls and mapped to Keras's layout (gate order, forget
bias folded into the bias); the step is then evaluated with numpy on random inputs and compared
with Keras's cell on the mapped weights. A loop that does not compute exactly a Keras LSTM or
GRU from zero initial states (a mask, a peephole, other activations) is left alone.

The synthetic node takes the input sequence and the source constants its weights are made of;
its `weights` attribute holds a recipe per Keras weight whose `Operand(i)` leaves stand for
its i-th input (see recipes.py for the recipe steps), `shapes` their shapes. The loop's
results keep their graph names through `_Graph2pyRNNResult` views (see
`rewrite.lifted_nodes`).

The modules, bottom up: passes/frames.py reads lowered frames into `Loop`s (control flow reads
them too); evaluate.py runs a step with the op table's kernels; constants.py reads what a loop
takes from outside its step (weights, small constants, zero initial states); cells.py proposes
candidate cells from the step's MatMuls and checks them against Keras's; rewrite.py builds the
synthetic nodes; loops.py, unrolled.py and fused.py lift the forms; this module runs them.
"""

from __future__ import annotations

from ...graph import Node
from ..frames import read_frames, replace_loop
from .cells import GRU_OP, LSTM_OP
from .evaluate import STEP_OPS
from .fused import BLOCK_ORDER, lift_block
from .loops import WHILE_OPS, lift_loop, read_functional
from .rewrite import RESULT_OP, UNMASKED_OP
from .unrolled import chains, lift_unrolled, tensor_readers

__all__ = ["GRU_OP", "LSTM_OP", "RESULT_OP", "STEP_OPS", "UNMASKED_OP", "lift_recurrent"]


def lift_recurrent(nodes: list[Node], functions: dict, source: str = "graph") -> list[Node]:
    """The node list with every recognised LSTM/GRU loop replaced by one synthetic node."""
    if not any(n.op in ("Enter", "ConcatV2", *BLOCK_ORDER) or n.op in WHILE_OPS for n in nodes):
        return nodes
    by_name = {n.name: n for n in nodes}
    try:
        loops = read_frames(nodes, by_name) + read_functional(nodes, functions, source)
    except (IndexError, KeyError, TypeError, ValueError):
        return nodes  # a malformed loop is not ours to report: later stages name its ops
    for loop in loops:
        lifted = lift_loop(loop, by_name, nodes)
        if lifted is not None:
            nodes = replace_loop(nodes, loop, *lifted)
            by_name = {n.name: n for n in nodes}
    for block in [n for n in nodes if n.op in BLOCK_ORDER]:
        lifted = lift_block(block, tensor_readers(nodes), by_name)
        if lifted is not None:
            new_nodes, rename, chain = lifted
            nodes = replace_loop(nodes, chain, new_nodes, rename)
            by_name = {n.name: n for n in nodes}
    return _unmask_where_read(_lift_chains(nodes, by_name))


def _unmask_where_read(nodes: list[Node]) -> list[Node]:
    """The nodes less the Unmasked steps whose every reader is a masked lifted layer (a masked
    stack: each layer is given the mask itself)."""
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(t, []).append(node)

    def masked_layers_only(tensor: str, depth: int = 0) -> bool:
        found = readers.get(tensor, [])
        return (
            bool(found)
            and depth < 16
            and all(
                (r.op in (LSTM_OP, GRU_OP) and r.attrs.get("mask"))
                or (r.op in ("Identity", "Snapshot") and masked_layers_only(r.output(0), depth + 1))
                for r in found
            )
        )

    bypass = {
        n.output(0): n.inputs[0]
        for n in nodes
        if n.op == UNMASKED_OP and masked_layers_only(n.output(0))
    }
    if not bypass:
        return nodes
    for node in nodes:
        node.inputs = [bypass.get(t, t) for t in node.inputs]
    return [n for n in nodes if n.op != UNMASKED_OP or n.output(0) not in bypass]


def _lift_chains(nodes: list[Node], by_name: dict[str, Node]) -> list[Node]:
    """Unrolled chains, found again after each one lifted: a stack's upper cell reads the
    lower one's steps, which lifting rewrites."""
    tried: set[str] = set()
    while True:
        readers = tensor_readers(nodes)
        try:
            found = chains(nodes, readers, by_name)
        except (IndexError, KeyError, TypeError, ValueError):
            return nodes  # a malformed graph is not ours to report: later stages name its ops
        candidates = [c for c in found if c[0][0].name not in tried]
        for chain in candidates:
            tried.add(chain[0][0].name)
            lifted = lift_unrolled(chain, readers, by_name)
            if lifted is not None:
                new_nodes, rename, removed = lifted
                nodes = replace_loop(nodes, removed, new_nodes, rename)
                by_name = {n.name: n for n in nodes}
                break
        else:
            return nodes
