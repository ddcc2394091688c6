"""Unrolled chains, lifted like a loop.

`tf.compat.v1.nn.static_rnn` writes the cell once per step instead of a loop: the steps of an
unstacked sequence, each concatenated with the previous h and multiplied by the same kernel.
The second step (whose state inputs are computed) proposes the candidate cells; the chain is
checked as a whole, all T steps evaluated from the zero state and compared with Keras's layer.
"""

from __future__ import annotations

import numpy as np

from ...graph import Node, split_ref
from ..frames import Loop, through_identity
from .cells import LSTM_OP, TOLERANCE, Cell, Source, gru_candidates, keras_step
from .cells import lstm_candidates, weight_products
from .constants import is_zeros, outer_value, small_value
from .evaluate import EVAL_ERRORS, NotRNN, Step
from .rewrite import lifted_nodes, node_name

# How far past a step's MatMul its new state may be found.
_STEP_REACH = 64


def chains(nodes: list[Node], readers, by_name: dict[str, Node]) -> list[list[tuple]]:
    """Candidate unrolled chains, each [(the step's [x_t, h] ConcatV2, its MatMul)] in step
    order: the concatenations multiplied by one stored weight, the first h zeros. The steps'
    inputs may be an unstacked sequence or anything computed per step (the dropped outputs of
    the cell below, in a stack)."""
    groups: dict[str, list[tuple[Node, Node]]] = {}
    for node in nodes:
        if node.op != "ConcatV2" or len(node.inputs) != 3:
            continue
        axis = small_value(node.inputs[2], by_name)
        if axis is None or axis.size != 1 or axis.dtype.kind not in "iu":
            continue
        if int(axis.reshape(())) not in (1, -1):
            continue
        mms = [n for n in readers.get(node.output(0), []) if n.op == "MatMul"]
        if len(mms) != 1 or mms[0].inputs[0] != node.output(0):
            continue
        weight = through_identity(mms[0].inputs[1], by_name)
        if outer_value(weight, by_name) is not None:
            groups.setdefault(weight, []).append((node, mms[0]))
    found = []
    for steps in groups.values():
        ordered = _in_step_order(steps, readers, by_name) if len(steps) >= 2 else None
        if ordered is not None:
            found.append(ordered)
    return found


def _in_step_order(steps: list[tuple[Node, Node]], readers, by_name) -> list[tuple] | None:
    """The steps from the one reading a zero state, each followed by the one whose h is
    computed nearest its MatMul; None if they do not form one chain."""
    first = [s for s in steps if is_zeros(s[0].inputs[1], by_name)]
    if len(first) != 1:
        return None
    ordered, remaining = first, [s for s in steps if s is not first[0]]
    while remaining:
        near = list(_reach(ordered[-1][1], readers))
        ranked = [
            (near.index(split_ref(through_identity(s[0].inputs[1], by_name))[0]), i)
            for i, s in enumerate(remaining)
            if split_ref(through_identity(s[0].inputs[1], by_name))[0] in near
        ]
        if not ranked:
            return None
        ordered.append(remaining.pop(min(ranked)[1]))
    return ordered


def tensor_readers(nodes: list[Node]) -> dict[str, list[Node]]:
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(t, []).append(node)
        for t in dict.fromkeys(split_ref(t)[0] for t in node.inputs):
            readers.setdefault(t, []).append(node)  # by producer name too, for _reach
    return readers


def lift_unrolled(chain: list[tuple], readers, by_name: dict[str, Node]):
    try:
        return _lift_unrolled_or_raise(chain, readers, by_name)
    except (NotRNN, *EVAL_ERRORS):
        return None


def _lift_unrolled_or_raise(chain: list[tuple], readers, by_name):
    xs = [concat.inputs[0] for concat, _ in chain]
    matmuls = [mm for _, mm in chain]
    h_in = [through_identity(concat.inputs[1], by_name) for concat, _ in chain]
    if not is_zeros(h_in[0], by_name):
        raise NotRNN("the first step's h is not zeros")
    step = _reach(matmuls[1], readers)  # the second step: its state inputs are computed
    weights = {}
    for node in step.values():
        for t in node.inputs:
            found = outer_value(t, by_name)
            if found is not None and found[0].ndim >= 1:
                weights[through_identity(t, by_name)] = Source(*found)
    products = weight_products(step, xs[1], by_name)
    candidates = lstm_candidates(products, weights, h_in[1], step, by_name)
    candidates += gru_candidates(products, weights, h_in[1])
    for cell in candidates:
        results = _chain_results(cell, xs, h_in, matmuls[-1], readers, by_name)
        if results is not None:
            return _rewrite_unrolled(xs, matmuls[0], cell, h_in, results, readers, by_name)
    return None


def _reach(start: Node, readers) -> dict[str, Node]:
    """The first _STEP_REACH nodes downstream of `start`, in breadth-first order."""
    found = {start.name: start}
    queue = [start]
    while queue and len(found) < _STEP_REACH:
        for node in readers.get(queue.pop(0).name, []):
            if node.name not in found:
                found[node.name] = node
                queue.append(node)
    return found


def _chain_results(cell: Cell, xs, h_in, last_mm: Node, readers, by_name):
    """(the tensors holding the last h and c, or None for GRU's c) if every step computes
    Keras's cell with these weights from the zero state, else None."""
    rng = np.random.default_rng(0)
    n_in, units, batch = cell.values["kernel"].shape[0], cell.units, 3
    inputs = [rng.uniform(-2, 2, (batch, n_in)) for _ in xs]
    known = {x_t: value for x_t, value in zip(xs, inputs)}
    for node in by_name.values():
        if node.op == "Fill" and is_zeros(node.output(0), by_name):
            known[node.output(0)] = np.zeros((batch, units))
    states = [np.zeros((batch, units))] * (2 if cell.op == LSTM_OP else 1)
    step = Step(by_name, known, by_name)
    try:
        for t, x in enumerate(inputs):
            states = keras_step(cell, x, states)
            if t + 1 < len(xs) and not _close(step(h_in[t + 1]), states[0]):
                return None
        last = _reach(last_mm, readers)
        found = []
        for want in states:
            match = None
            for node in last.values():
                try:
                    if _close(step(node.output(0)), want):
                        match = node.output(0)
                        break
                except (NotRNN, *EVAL_ERRORS):
                    continue
            if match is None:
                return None
            found.append(match)
    except (NotRNN, *EVAL_ERRORS):
        return None
    return found[0], (found[1] if len(found) > 1 else None)


def _rewrite_unrolled(xs, first_step: Node, cell: Cell, h_in, results, readers, by_name):
    """The chain's nodes (from the steps to the last h and c, less what computes the initial
    state) replaced like a loop's: the last h and c and the Pack of every step's h (the
    sequence) as result views. Steps' outputs read one by one (each dropped out, say) are read
    from an Unpack of the sequence; steps' inputs not unstacked from one sequence are
    stacked into one."""
    h_last, c_last = results
    ends = [split_ref(t)[0] for t in results if t]
    inputs_of = lambda n: [split_ref(t)[0] for t in by_name[n].inputs]  # noqa: E731
    ancestors = _closure(ends, inputs_of)
    producers = list(dict.fromkeys(split_ref(x)[0] for x in xs))
    descendants = _closure(producers, lambda n: [r.name for r in readers.get(n, [])])
    members = (ancestors & descendants) - set(producers)
    # the zero states (h's, c's) and what computes them (a batch size the next cell's zero
    # states may share) stay
    zeros = [n for n in members if is_zeros(by_name[n].output(0), by_name)]
    members -= _closure([split_ref(h_in[0])[0], *zeros], inputs_of)
    steps = [*h_in[1:], h_last]
    uses: dict[str, list[str]] = {"seq": [], "last": [], "c": [], "time_major": []}
    each_step = False
    for name in sorted(members):
        for reader in readers.get(name, []):
            if reader.name in members:
                continue
            read = [t for t in reader.inputs if split_ref(t)[0] == name]
            if reader.op == "Pack" and reader.attrs.get("axis") == 1:
                if [through_identity(t, by_name) for t in reader.inputs] != steps:
                    raise NotRNN("steps packed otherwise")
                uses["seq"].append(reader.output(0))
            elif read == [h_last]:
                uses["last"].append(h_last)
            elif c_last and read == [c_last]:
                uses["c"].append(c_last)
            elif all(t in steps for t in read):
                each_step = True
            else:
                raise NotRNN(f"a step's tensor is read by {reader.op}")
    if not readers.get(split_ref(h_last)[0]):
        uses["last"].append(h_last)  # read by nothing: a graph output, named in --outputs
    uses = {kind: list(dict.fromkeys(found)) for kind, found in uses.items()}
    if each_step:
        uses["last"] = []  # read from the Unpack with the other steps
    kind = "lstm" if cell.op == LSTM_OP else "gru"
    scope = first_step.name.rsplit("/", 1)[0] if "/" in first_step.name else kind
    taken = set(by_name)
    name = node_name(scope, kind, taken)
    sequence, stacked = _sequence(xs, f"{name}/inputs", by_name)
    new, rename = lifted_nodes(name, cell, sequence, True, uses, by_name, each_step)
    new = stacked + new
    if each_step:
        if f"{name}/outputs" in by_name:
            raise NotRNN("the name of the unstacked outputs is taken")
        unstack = Node(
            f"{name}/outputs",
            "Unpack",
            [new[len(stacked)].output(0)],
            {"num": len(steps), "axis": 1},
        )
        new.append(unstack)
        rename.update({t: unstack.output(i) for i, t in enumerate(steps)})
    return new, rename, Loop(name, [], {}, {}, members)


def _sequence(xs: list[str], name: str, by_name) -> tuple[str, list[Node]]:
    """([batch, time, features] tensor of the steps' inputs, the nodes stacking them): the
    sequence they were unstacked from, or a Pack of them."""
    unpack = by_name.get(split_ref(xs[0])[0])
    if (
        unpack is not None
        and unpack.op == "Unpack"
        and unpack.attrs.get("axis") == 1
        and xs == [unpack.output(t) for t in range(unpack.attrs.get("num", 0))]
    ):
        return unpack.inputs[0], []
    if name in by_name:
        raise NotRNN("the name of the stacked inputs is taken")
    pack = Node(name, "Pack", list(xs), {"axis": 1, "N": len(xs)})
    return pack.output(0), [pack]


def _closure(start: list[str], step) -> set[str]:
    found = set(start)
    stack = list(start)
    while stack:
        for other in step(stack.pop()):
            if other not in found:
                found.add(other)
                stack.append(other)
    return found


def _close(got, want) -> bool:
    got = np.asarray(got)
    return got.shape == want.shape and bool(
        np.max(np.abs(got - want)) <= TOLERANCE * max(1.0, np.max(np.abs(want)))
    )
