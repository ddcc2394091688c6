"""The lifted layer in the graph: where its input comes from, what reads its results, and the
synthetic nodes that replace the recurrent computation, with their shape rules.

A lifted node reads the batch-major sequence (transposed back if the loop read a time-major
one); its results are forwarded under their graph names by `_Graph2pyRNNResult` views, so that
--outputs and `graph2py check` find them. The forms call `lifted_nodes` once they know which of
the sequence, the last h and the last c the graph reads.
"""

from __future__ import annotations

import numpy as np

from ...graph import Node, split_ref
from ...recipes import Operand, Recipe, bind
from ..shapes import rule
from .cells import GRU_OP, LSTM_OP, Cell
from .constants import small_value
from .evaluate import NotRNN

RESULT_OP = "_Graph2pyRNNResult"
# A masked layer's sequence as the graph's later ops read it: without the Keras mask, which
# Keras would otherwise hand on to the layers after it (a Softmax would apply it); the graph
# applied the mask in the loop only.
UNMASKED_OP = "_Graph2pyUnmasked"


def input_sequence(time_major: str, by_name: dict[str, Node]) -> tuple[str, bool, bool]:
    """(the sequence the loop reads, whether it is batch-major, whether the loop reads it
    backwards). Batch-major: what the loop's input was transposed from; Keras's go_backwards
    reverses the time-major sequence."""
    tensor = time_major
    node = by_name.get(split_ref(tensor)[0])
    backwards = node is not None and node.op in ("ReverseV2", "Reverse") and len(node.inputs) == 2
    if backwards:
        axis = small_value(node.inputs[1], by_name)
        if axis is None or [int(a) for a in np.atleast_1d(axis)] not in ([0], [True, False, False]):
            raise NotRNN("input reversed along another axis")
        tensor = node.inputs[0]
        node = by_name.get(split_ref(tensor)[0])
    if node is not None and node.op == "Transpose":
        perm = small_value(node.inputs[1], by_name)
        if perm is not None and [int(p) for p in perm] == [1, 0, 2]:
            return node.inputs[0], True, backwards
    return tensor, False, backwards


def lifted_nodes(
    name: str,
    cell: Cell,
    x: str,
    batch_major: bool,
    uses: dict,
    by_name,
    sequences=False,
    mask: str | None = None,
    initial: list[str] | None = None,
):
    """([the lifted node, its transposes, its result views], renaming) for the uses of its
    results: {"seq" | "last" | "c" | "time_major": tensors of the graph}; with `sequences`,
    the node returns every step's h whether the graph reads them or not. A `mask` ([batch,
    time] bool) and the `initial` states ([h] or [h, c]; none: zeros) follow the sequence
    among the node's inputs, then the constants its weights are made of."""
    return_sequences = sequences or bool(uses["seq"] or uses["time_major"])
    return_state = bool(uses["c"]) or (return_sequences and bool(uses["last"]))
    roots: list[str] = []
    initial = list(initial or [])
    first = 1 + bool(mask) + len(initial)
    templates = {key: _bind(t, roots, first) for key, t in cell.weights.items()}
    attrs = {
        "units": cell.units,
        "return_sequences": return_sequences,
        "return_state": return_state,
        "go_backwards": cell.go_backwards,
        "weights": templates,
        "shapes": {key: tuple(int(d) for d in v.shape) for key, v in cell.values.items()},
        "mask": mask is not None,
        "initial_state": len(initial),
    }
    if cell.op == GRU_OP:
        attrs["reset_after"] = cell.reset_after
    if cell.recurrent_activation != "sigmoid":
        attrs["recurrent_activation"] = cell.recurrent_activation
    if cell.zero_output_for_mask:
        attrs["zero_output_for_mask"] = True
    ports = {"seq": 0, "last": 1 if return_sequences else 0, "c": 2}
    views: dict[str, Node] = {}
    rename: dict[str, str] = {}
    taken = set(by_name) | {name}
    new = [] if batch_major else _transposed(f"{name}/batch_major", x, taken)
    masks = [mask] if mask else []
    sequence = new[-1].output(0) if new else x
    node = Node(name, cell.op, [sequence, *masks, *initial, *roots], attrs)
    time_major = uses.pop("time_major")
    for kind, found in uses.items():
        if not found:
            continue
        rename.update({t: found[0] for t in found[1:]})  # one tensor per result
        view_name, port = split_ref(found[0])
        view = views.setdefault(
            view_name, Node(view_name, RESULT_OP, [], {"ports": [], "kinds": []})
        )
        view.inputs.append(node.output(ports[kind]))
        view.attrs["ports"].append(port)
        view.attrs["kinds"].append(kind)
        view.attrs["units"] = cell.units
    seq = uses["seq"][0] if uses["seq"] else node.output(0)
    for stacked in time_major:
        new += _transposed(split_ref(stacked)[0], seq, taken)
    if mask and uses["seq"]:
        scope = name.rsplit("/", 1)[0] if "/" in name else name
        unmasked = Node(_free(f"{scope}/unmasked", taken), UNMASKED_OP, [seq], {})
        new.append(unmasked)
        rename.update({t: unmasked.output(0) for t in uses["seq"]})
    return [node, *new, *views.values()], rename


def _free(name: str, taken: set[str]) -> str:
    found, i = name, 1
    while found in taken:
        found, i = f"{name}_{i}", i + 1
    taken.add(found)
    return found


def _transposed(name: str, tensor: str, taken: set[str]) -> list[Node]:
    """Nodes swapping the batch and time axes of `tensor`, the Transpose named `name`."""
    perm_name, i = f"{name}/perm", 1
    while perm_name in taken:
        perm_name, i = f"{name}/perm_{i}", i + 1
    taken.update((name, perm_name))
    value = np.array([1, 0, 2], np.int32)
    perm = Node(perm_name, "Const", [], {"value": value, "dtype": "int32"})
    return [perm, Node(name, "Transpose", [tensor, perm.output(0)], {})]


def follow(tensor: str, readers, by_name) -> list[Node]:
    """The nodes reading `tensor`, looking through Identity nodes (one that nothing reads, a
    graph output's name, is a reader)."""
    result, stack = [], [tensor]
    while stack:
        for node in readers.get(stack.pop(), []):
            if node.op in ("Identity", "Snapshot") and readers.get(node.output(0)):
                stack.append(node.output(0))
            else:
                result.append(node)
    return result


def stacked_use(user: Node, by_name) -> str:
    """What a reader of the stacked (time-major) outputs takes: all of them batch-major, the
    last step, or the time-major stack itself."""
    if user.op == "Transpose":
        perm = small_value(user.inputs[1], by_name)
        if perm is not None and [int(p) for p in perm] == [1, 0, 2]:
            return "seq"
    if user.op == "StridedSlice" and len(user.inputs) == 4:
        begin, end, strides = (small_value(t, by_name) for t in user.inputs[1:])
        a = user.attrs
        if (
            begin is not None
            and strides is not None
            and [int(v) for v in begin] == [-1]
            and [int(v) for v in strides] == [1]
            and a.get("shrink_axis_mask", 0) == 1
            and not any(a.get(k, 0) for k in ("ellipsis_mask", "new_axis_mask", "begin_mask"))
        ):
            return "last"
    return "time_major"


def _bind(template: Recipe, roots: list[str], first: int) -> Recipe:
    """A recipe template with its Operand(tensor) leaves numbered by the node's inputs, the
    first constant being input `first`."""

    def number(tensor: str) -> Operand:
        if tensor not in roots:
            roots.append(tensor)
        return Operand(first + roots.index(tensor))

    return bind(template, number)


_PLUMBING_SCOPES = {"while", "while_context", "PartitionedCall", "StatefulPartitionedCall"}


def node_name(loop_name: str, kind: str, taken: set[str]) -> str:
    """A name in the loop's layer scope (`sequential/lstm/lstm` for the loop
    `sequential/lstm/PartitionedCall/while`), so that the layer is named by that scope, which
    no node of the graph has."""
    parts = loop_name.split("/")
    while len(parts) > 1 and parts[-1] in _PLUMBING_SCOPES:
        parts.pop()
    base = "/".join([*parts, kind])
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


@rule(UNMASKED_OP)
def _unmasked_shape(node: Node, ins, consts):
    return ins[0]


@rule(RESULT_OP)
def _result_shape(node: Node, ins, consts):
    if node.attrs["kinds"][node.attrs["ports"].index(0)] == "seq":
        return ins[0]
    return (None, node.attrs["units"])


@rule(LSTM_OP, GRU_OP)
def _shape(node: Node, ins, consts):
    x = ins[0]
    if x is None or len(x) != 3:
        return None
    units = node.attrs["units"]
    return (x[0], x[1], units) if node.attrs.get("return_sequences") else (x[0], units)
