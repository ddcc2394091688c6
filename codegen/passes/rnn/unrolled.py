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
from .constants import is_zeros, outer_value
from .evaluate import EVAL_ERRORS, NotRNN, Step
from .rewrite import lifted_nodes, node_name

# How far past a step's MatMul its new state may be found.
_STEP_REACH = 64


def unstacked(nodes: list[Node]) -> list[Node]:
    """Unpack nodes splitting a [batch, time, features] sequence into its steps."""
    found = []
    for node in nodes:
        steps = node.attrs.get("num") if node.op == "Unpack" else None
        if isinstance(steps, int) and steps >= 2 and node.attrs.get("axis") == 1:
            found.append(node)
    return found


def tensor_readers(nodes: list[Node]) -> dict[str, list[Node]]:
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(t, []).append(node)
        for t in dict.fromkeys(split_ref(t)[0] for t in node.inputs):
            readers.setdefault(t, []).append(node)  # by producer name too, for _reach
    return readers


def lift_unrolled(unpack: Node, readers, by_name: dict[str, Node]):
    try:
        return _lift_unrolled_or_raise(unpack, readers, by_name)
    except (NotRNN, *EVAL_ERRORS):
        return None


def _lift_unrolled_or_raise(unpack: Node, readers, by_name):
    steps = unpack.attrs["num"]
    xs = [unpack.output(t) for t in range(steps)]
    matmuls, h_in = [], []
    for x_t in xs:
        concats = [
            n
            for n in readers.get(x_t, [])
            if n.op == "ConcatV2" and len(n.inputs) == 3 and n.inputs[0] == x_t
        ]
        # [x, h]; TF's GRU also concatenates [x, r * h], r computed from the first
        concats = [
            c
            for c in concats
            if not any(
                split_ref(c.inputs[1])[0] in _reach(d, readers) for d in concats if d is not c
            )
        ]
        if len(concats) != 1:
            raise NotRNN("a step does not concatenate its input with h")
        mms = [n for n in readers.get(concats[0].output(0), []) if n.op == "MatMul"]
        if len(mms) != 1:
            raise NotRNN("a step's [x, h] is not multiplied once")
        matmuls.append(mms[0])
        h_in.append(through_identity(concats[0].inputs[1], by_name))
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
            return _rewrite_unrolled(unpack, matmuls[0], cell, h_in, results, readers, by_name)
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


def _rewrite_unrolled(unpack, first_step: Node, cell: Cell, h_in, results, readers, by_name):
    """The chain's nodes (from the steps to the last h and c) replaced like a loop's: the last
    h and c and the Pack of every step's h (the sequence) as result views."""
    h_last, c_last = results
    ends = [split_ref(t)[0] for t in results if t]
    ancestors = _closure(ends, lambda n: [split_ref(t)[0] for t in by_name[n].inputs])
    descendants = _closure([unpack.name], lambda n: [r.name for r in readers.get(n, [])])
    members = (ancestors & descendants) - {unpack.name}
    steps = [*h_in[1:], h_last]
    uses: dict[str, list[str]] = {"seq": [], "last": [], "c": [], "time_major": []}
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
            else:
                raise NotRNN(f"a step's tensor is read by {reader.op}")
    uses = {kind: list(dict.fromkeys(found)) for kind, found in uses.items()}
    kind = "lstm" if cell.op == LSTM_OP else "gru"
    scope = first_step.name.rsplit("/", 1)[0] if "/" in first_step.name else kind
    name = node_name(scope, kind, set(by_name))
    new, rename = lifted_nodes(name, cell, unpack.inputs[0], True, uses, by_name)
    return new, rename, Loop(name, [], {}, {}, members)


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
