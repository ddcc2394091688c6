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
  * unrolled chains: `static_rnn`, the cell repeated once per unstacked step.

The cell is recognised by what it computes, not by op names: candidate weights are found from
the shapes and operands of the step's MatMuls and mapped to Keras's layout (gate order, forget
bias folded into the bias); the step is then evaluated with numpy on random inputs and compared
with Keras's cell on the mapped weights. A loop that does not compute exactly a Keras LSTM or
GRU from zero initial states (a mask, a peephole, other activations) is left alone.

The synthetic node takes the input sequence and the source constants its weights are made of;
its `weights` attribute holds a recipe per Keras weight whose `Operand(i)` leaves stand for
its i-th input (see recipes.py for the recipe steps), `shapes` their shapes. The loop's
results keep their graph names through `_Graph2pyRNNResult` views (see `_lifted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import optable
from ..graph import Node, decode_node, split_ref
from ..optable.elementwise import sigmoid
from ..recipes import Concat, Operand, Recipe, Reshape, Slice, Ufunc, bind
from .shapes import rule

LSTM_OP = "_Graph2pyLSTM"
GRU_OP = "_Graph2pyGRU"
RESULT_OP = "_Graph2pyRNNResult"
WHILE_OPS = {"While", "StatelessWhile"}
# A step computed by Keras's cell on the mapped weights must match the graph's this closely.
TOLERANCE = 1e-4


@dataclass
class LoopVar:
    init: str  # the tensor entering the loop
    inside: str  # the body tensor holding the value during a step
    next: str  # the body tensor a step produces
    out: str | None  # the tensor leaving the loop, if anything reads it


@dataclass
class Loop:
    name: str
    vars: list[LoopVar]
    invariants: dict[str, str]  # body tensor -> outer tensor (constant loop inputs)
    body: dict[str, Node]
    members: set[str]  # outer node names the loop consists of (removed when lifted)


def lift_recurrent(nodes: list[Node], functions: dict, source: str = "graph") -> list[Node]:
    """The node list with every recognised LSTM/GRU loop replaced by one synthetic node."""
    if not any(n.op in ("Enter", "Unpack", *_BLOCK_ORDER) or n.op in WHILE_OPS for n in nodes):
        return nodes
    by_name = {n.name: n for n in nodes}
    try:
        loops = _frames(nodes, by_name) + _functional(nodes, functions, source)
    except (IndexError, KeyError, TypeError, ValueError):
        return nodes  # a malformed loop is not ours to report: later stages name its ops
    for loop in loops:
        lifted = _lift(loop, by_name, nodes)
        if lifted is not None:
            nodes = _replace(nodes, loop, *lifted)
            by_name = {n.name: n for n in nodes}
    for block in [n for n in nodes if n.op in _BLOCK_ORDER]:
        lifted = _lift_block(block, _tensor_readers(nodes), by_name)
        if lifted is not None:
            new_nodes, rename, chain = lifted
            nodes = _replace(nodes, chain, new_nodes, rename)
            by_name = {n.name: n for n in nodes}
    for unpack in _unstacked(nodes):
        lifted = _lift_unrolled(unpack, _tensor_readers(nodes), by_name)
        if lifted is not None:
            new_nodes, rename, chain = lifted
            nodes = _replace(nodes, chain, new_nodes, rename)
            by_name = {n.name: n for n in nodes}
    return nodes


def _replace(nodes: list[Node], loop: "Loop", new: list[Node], rename: dict) -> list[Node]:
    for node in nodes:
        node.inputs = [rename.get(t, t) for t in node.inputs]
    return _remove_loop(nodes, loop, new) + new


def _remove_loop(nodes: list[Node], loop: Loop, new: list[Node]) -> list[Node]:
    """The nodes less the loop, whatever still reads it (the stacking and slicing of its
    results) and whatever only fed those (its lists, counters, zero states, permutations),
    which would otherwise look like model outputs. Nodes a result view replaces go too; the
    views' tensors stay readable."""
    by_name = {n.name: n for n in nodes}
    readers: dict[str, list[tuple[str, str]]] = {}
    for node in nodes + new:
        for t in node.inputs:
            readers.setdefault(split_ref(t)[0], []).append((node.name, t))
    replacing = [n for n in new if n.name in by_name]
    provided = {
        f"{n.name}:{p}" for n in replacing for p in n.attrs.get("ports", [0]) if n.op != "Const"
    }
    removed = set(loop.members) | {n.name for n in replacing}
    stack = list(removed)
    while stack:
        for reader, tensor in readers.get(stack.pop(), []):
            if reader not in removed and tensor not in provided and reader in by_name:
                removed.add(reader)
                stack.append(reader)
    fed = [v.init for v in loop.vars] + list(loop.invariants.values())
    fed += [t for name in removed if name in by_name for t in by_name[name].inputs]
    stack = [split_ref(t)[0] for t in fed]
    while stack:
        name = stack.pop()
        node = by_name.get(name)
        if node is None or name in removed or node.op == "Placeholder":
            continue
        if all(r in removed for r, _ in readers.get(name, [])):
            removed.add(name)
            stack += [split_ref(t)[0] for t in node.inputs]
    return [n for n in nodes if n.name not in removed]


# -- reading loops ---------------------------------------------------------------------------------


def _frames(nodes: list[Node], by_name: dict[str, Node]) -> list[Loop]:
    """Lowered while frames: every node reachable from the frame's Enters up to its Exits."""
    users: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            users.setdefault(split_ref(t)[0], []).append(node)
    frames: dict[str, list[Node]] = {}
    for node in nodes:
        if node.op == "Enter":
            frames.setdefault(str(node.attrs.get("frame_name", "")), []).append(node)
    loops = []
    for name, enters in sorted(frames.items()):
        members: set[str] = set()
        stack = [e.name for e in enters]
        nested = False
        while stack:
            current = stack.pop()
            if current in members:
                continue
            members.add(current)
            node = by_name[current]
            if node.op == "Exit":
                continue
            for user in users.get(current, []):
                if user.op == "Enter" and user.attrs.get("frame_name") != name:
                    nested = True
                stack.append(user.name)
        loop = None if nested else _frame_loop(name, enters, members, by_name)
        if loop is not None:
            loops.append(loop)
    return loops


def _frame_loop(name: str, enters: list[Node], members: set[str], by_name) -> Loop | None:
    invariants = {}
    loop_vars = []
    exits = {}
    for member in members:
        node = by_name[member]
        if node.op == "Exit":
            exits[_through_identity(node.inputs[0], by_name)] = node.output(0)
    for enter in enters:
        if enter.attrs.get("is_constant"):
            invariants[enter.output(0)] = enter.inputs[0]
    switches: dict[str, list[Node]] = {}
    for member in members:
        node = by_name[member]
        if node.op == "Switch" and node.inputs:
            switches.setdefault(node.inputs[0], []).append(node)
    for member in sorted(members):
        merge = by_name[member]
        if merge.op != "Merge" or len(merge.inputs) != 2:
            continue
        enter, nxt = (by_name[split_ref(t)[0]] for t in merge.inputs)
        if enter.op != "Enter" or nxt.op != "NextIteration" or not nxt.inputs:
            return None
        if len(switches.get(merge.output(0), [])) != 1:
            return None
        switch = switches[merge.output(0)][0]
        out = exits.get(switch.output(0))
        loop_vars.append(LoopVar(enter.inputs[0], switch.output(1), nxt.inputs[0], out))
    body = {m: by_name[m] for m in members}
    return Loop(name, loop_vars, invariants, body, members)


def _functional(nodes: list[Node], functions: dict, source: str) -> list[Loop]:
    """While nodes: the body function read under the node's name, its arguments standing for
    the loop variables."""
    loops = []
    for node in nodes:
        fdef = functions.get(node.attrs.get("body")) if node.op in WHILE_OPS else None
        if fdef is None or len(fdef.signature.input_arg) != len(node.inputs):
            continue
        body = _function_body(node.name, fdef, source)
        if body is None:
            continue
        nodes_by_name, args, results = body
        loop_vars = [
            LoopVar(node.inputs[i], args[i], results[i], node.output(i))
            for i in range(len(node.inputs))
        ]
        loops.append(Loop(node.name, loop_vars, {}, nodes_by_name, {node.name}))
    return loops


def _function_body(prefix: str, fdef, source: str):
    """({name: node}, argument tensors, result tensors) of a loop body, nodes named
    `<prefix>/body/<node>` and arguments `<prefix>/body/_arg<i>:0`; None if any reference in
    it is not one TF could have written (the function is as untrusted as the graph)."""
    prefix += "/body/"
    args = {a.name: f"{prefix}_arg{i}:0" for i, a in enumerate(fdef.signature.input_arg)}
    names = {n.name for n in fdef.node_def}

    def ref(text: str) -> str | None:
        if text in args:
            return args[text]
        parts = text.split(":")
        if len(parts) == 3 and parts[0] in names and parts[2].isdigit():
            return f"{prefix}{parts[0]}:{int(parts[2])}"  # one output list per op in a cell
        if len(parts) == 1 and text in names:
            return f"{prefix}{text}:0"
        return None

    body = {}
    for proto in fdef.node_def:
        inputs = [ref(i) for i in proto.input if not i.startswith("^")]
        if None in inputs:
            return None
        node, problems = decode_node(proto, source, inputs)
        if problems:
            return None
        node.name = prefix + node.name
        body[node.name] = node
    results = [ref(fdef.ret.get(a.name, "")) for a in fdef.signature.output_arg]
    if None in results or len(results) != len(args):
        return None
    return body, list(args.values()), results


def _through_identity(tensor: str, by_name: dict[str, Node]) -> str:
    seen = 0
    while seen < 64:
        node = by_name.get(split_ref(tensor)[0])
        if node is None or node.op not in ("Identity", "Snapshot") or not node.inputs:
            return tensor
        tensor = node.inputs[0]
        seen += 1
    return tensor


# -- outer constants -------------------------------------------------------------------------------


def _outer_value(tensor: str, by_name: dict[str, Node], depth: int = 0):
    """(value, recipe template) of a loop input computed from one stored constant by
    Identity/Unpack, or None. The template reads the constant as Operand(tensor)."""
    if depth > 64:
        return None
    name, port = split_ref(tensor)
    node = by_name.get(name)
    if node is None:
        return None
    if node.op == "Const" and port == 0:
        value = node.attrs.get("value")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            return None
        return value, Operand(tensor)
    if node.op in ("Identity", "Snapshot", "Enter") and node.inputs:
        return _outer_value(node.inputs[0], by_name, depth + 1)
    if node.op == "Unpack" and node.inputs and node.attrs.get("axis", 0) == 0:
        inner = _outer_value(node.inputs[0], by_name, depth + 1)
        if inner is None or port >= inner[0].shape[0]:
            return None
        value, template = inner
        part = Reshape(Slice(template, port, port + 1, 0), tuple(value.shape[1:]))
        return value[port], part
    return None


def _small_value(tensor: str, by_name: dict[str, Node], depth: int = 0, memo=None):
    """A small constant computed from Consts (a permutation built with Range/ConcatV2)."""
    memo = {} if memo is None else memo
    if tensor not in memo:
        memo[tensor] = None if depth > 16 else _small_value_of(tensor, by_name, depth, memo)
    return memo[tensor]


def _small_value_of(tensor: str, by_name: dict[str, Node], depth: int, memo: dict):
    name, port = split_ref(tensor)
    node = by_name.get(name)
    if node is None or port != 0:
        return None
    if node.op == "Const":
        value = node.attrs.get("value")
        return value if isinstance(value, np.ndarray) else None
    if node.op not in ("Identity", "Snapshot", "Range", "ConcatV2"):
        return None
    ins = [_small_value(t, by_name, depth + 1, memo) for t in node.inputs]
    if any(v is None for v in ins):
        return None
    try:
        if node.op in ("Identity", "Snapshot"):
            return ins[0]
        if node.op == "Range":
            start, limit, delta = (float(v) for v in ins)
            if not delta or not 0 <= (limit - start) / delta <= 64:
                return None  # a permutation's range is short
            return np.arange(ins[0], ins[1], ins[2])
        if node.op == "ConcatV2":
            return np.concatenate([np.atleast_1d(v) for v in ins[:-1]], axis=int(ins[-1]))
    except (ValueError, TypeError, IndexError):
        return None
    return None


def _is_zeros(tensor: str, by_name: dict[str, Node]) -> bool:
    """Whether a loop's initial state is zeros (Keras's default initial state)."""
    node = by_name.get(split_ref(_through_identity(tensor, by_name))[0])
    if node is None:
        return False
    if node.op == "Fill" and len(node.inputs) == 2:
        value = _small_value(node.inputs[1], by_name)
        return value is not None and value.size == 1 and float(value.reshape(())) == 0.0
    if node.op == "Const":
        value = node.attrs.get("value")
        return isinstance(value, np.ndarray) and value.ndim == 2 and not value.any()
    return False


# -- the step, evaluated ---------------------------------------------------------------------------


class _Step:
    """Evaluates body tensors with numpy from given values of the step's inputs."""

    def __init__(self, body: dict[str, Node], known: dict, outer: dict[str, Node]):
        self.body = body
        self.outer = outer  # a lowered frame's constants hang off it by control edges only
        self.values = dict(known)

    def __call__(self, tensor: str) -> np.ndarray:
        stack = [tensor]
        while stack:
            current = stack[-1]
            if current in self.values:
                stack.pop()
                continue
            name, port = split_ref(current)
            node = self.body.get(name)
            if node is None and name in self.outer and self.outer[name].op == "Const":
                node = self.outer[name]
            if node is None:
                raise _NotRNN(f"step reads {current!r}")
            missing = [t for t in node.inputs if t not in self.values]
            if missing:
                if len(stack) > 4096:
                    raise _NotRNN("step too deep")
                stack.extend(missing)
                continue
            stack.pop()
            info = optable.get(node.op) if node.op in STEP_OPS else None
            if info is None or info.kernel is None:
                raise _NotRNN(f"step computes {node.op}")
            with np.errstate(all="ignore"):  # overflow is a value like any other here
                result = info.kernel(node, *[self.values[t] for t in node.inputs])
            results = result if isinstance(result, list) else [result]
            if port >= len(results):
                raise _NotRNN("bad port")
            for i, r in enumerate(results):
                self.values[f"{name}:{i}"] = np.asarray(r)
        return self.values[tensor]


class _NotRNN(Exception):
    pass


# The ops a recognised cell's step is made of. Their numpy kernels come from the op table; a
# step computing any other op is no cell this pass lifts. (Any op with a kernel could be
# evaluated, and the numeric check would still hold; widening this changes which loops lift.)
STEP_OPS = frozenset(
    "Identity Snapshot Const MatMul BiasAdd Add AddV2 Sub Mul Sigmoid Tanh Split SplitV "
    "ConcatV2 StridedSlice Unpack Squeeze Reshape".split()
)


# -- recognising the cell --------------------------------------------------------------------------


@dataclass
class _Source:
    """A weight-like loop input: its value, and how to read it (a recipe template)."""

    value: np.ndarray
    template: Recipe


@dataclass
class _Cell:
    op: str  # LSTM_OP or GRU_OP
    units: int
    weights: dict[str, Recipe]  # Keras weight -> recipe template with Operand(tensor) leaves
    values: dict[str, np.ndarray]  # Keras weight -> value, for the check
    reset_after: bool = False
    go_backwards: bool = False


@dataclass
class _StepIO:
    x_t: str  # the step's input (a row of the sequence)
    y_t: str | None  # the step's output (written to the output list), if it is kept
    time_major: str  # the outer sequence the loop reads, [T, B, F]
    out_var: LoopVar | None  # the loop variable carrying the output list
    every_step: bool  # whether the list holds every step's output, or only the last one


_READS = {"TensorListGetItem", "TensorArrayReadV3"}
_WRITES = {"TensorListSetItem", "TensorArrayWriteV3"}
STACKS = {"TensorListStack": 0, "TensorArrayGatherV3": 2}  # op -> input index of the list


def _lift(loop: Loop, by_name: dict[str, Node], nodes: list[Node]):
    try:
        return _lift_or_raise(loop, by_name, nodes)
    except (_NotRNN, *_EVAL_ERRORS):
        return None


def _lift_or_raise(loop: Loop, by_name: dict[str, Node], nodes: list[Node]):
    body = loop.body
    outer_of = {v.inside: v.init for v in loop.vars if _through_identity(v.next, body) == v.inside}
    outer_of.update(loop.invariants)  # body tensor -> the outer tensor it always equals
    io = _sequence_io(loop, outer_of, by_name)
    weights = {}
    for inside, outer in outer_of.items():
        found = _outer_value(outer, by_name)
        if found is not None:
            weights[inside] = _Source(*found)
    states = [
        v
        for v in loop.vars
        if v.inside not in outer_of and v is not io.out_var and _is_zeros(v.init, by_name)
    ]
    layers = _stacked_cells(weights, io, states, body, by_name)
    x, batch_major, layers[0][0].go_backwards = _batch_major(io.time_major, by_name)
    return _rewrite(loop, layers, x, batch_major, io, by_name, nodes)


def _stacked_cells(weights, io: _StepIO, states: list[LoopVar], body, outer) -> list:
    """[(cell, its states: [h] or [h, c], its input)] of the step, bottom first: the first cell
    reads the step's input, each other the new h of the one below (TF's MultiRNNCell), and the
    top one's new h is the step's output. Every state belongs to a cell."""
    layers, remaining, x_in = [], list(states), io.x_t
    while remaining:
        found = _cell_reading(x_in, weights, io, remaining, body, outer)
        if found is None:
            raise _NotRNN("no cell")
        layers.append(found)
        remaining = [v for v in remaining if all(v is not u for u in found[1])]
        x_in = _through_identity(found[1][0].next, body)
    if not layers:
        raise _NotRNN("no state")
    top, top_states, top_input = layers[-1]
    top_io = _StepIO(top_input, io.y_t, io.time_major, io.out_var, io.every_step)
    if io.y_t is not None and not _checks(top, weights, body, top_io, top_states, outer):
        raise _NotRNN("the step's output is not the top cell's h")
    return layers


def _cell_reading(x_in: str, weights, io: _StepIO, remaining, body, outer):
    """(cell, [h] or [h, c], x_in) of the cell whose input is `x_in`, among the states."""
    products = _products(body, x_in)
    step = _StepIO(x_in, None, io.time_major, None, io.every_step)
    for h in remaining:
        for c in [v for v in remaining if v is not h]:
            for cell in _lstm_candidates(products, weights, h.inside, body, outer):
                if _checks(cell, weights, body, step, [h, c], outer):
                    return cell, [h, c], x_in
        for cell in _gru_candidates(products, weights, h.inside):
            if _checks(cell, weights, body, step, [h], outer):
                return cell, [h], x_in
    return None


def _sequence_io(loop: Loop, outer_of: dict[str, str], by_name) -> _StepIO:
    """The one read of the input sequence and the one write of the output per step, in either
    vocabulary (TF2's tensor lists, TF1's tensor arrays). Freezing drops the write when only
    the final state is used."""
    body = loop.body
    reads = [n for n in body.values() if n.op in _READS]
    writes = [n for n in body.values() if n.op in _WRITES]
    if len(reads) != 1 or len(writes) > 1:
        raise _NotRNN("not one read and at most one write per step")
    read = reads[0]
    if not _counts_steps(read.inputs[1], loop, by_name):
        raise _NotRNN("the sequence is not read at the step index")
    # Keras 2 keeps only the last output, overwriting element 0 of a one-element list
    every_step = bool(writes) and _counts_steps(writes[0].inputs[1], loop, by_name)
    lookup = {**by_name, **body}
    index = writes and lookup.get(split_ref(_through_identity(writes[0].inputs[1], lookup))[0])
    if writes and not every_step and (index is None or _const_scalar(index) != 0):
        raise _NotRNN("the outputs are not written at the step index")
    source = outer_of.get(_through_identity(read.inputs[0], body))
    source_node = by_name.get(split_ref(_through_identity(source or "", by_name))[0])
    if read.op == "TensorListGetItem" and source_node is not None:
        if source_node.op != "TensorListFromTensor":
            raise _NotRNN("input list not from a tensor")
        time_major = source_node.inputs[0]
    elif source_node is not None and source_node.op == "TensorArrayV3":
        # the read's flow input is the scatter that filled the array
        flow = outer_of.get(_through_identity(read.inputs[2], body), "")
        scatter = by_name.get(split_ref(_through_identity(flow, by_name))[0])
        if scatter is None or scatter.op != "TensorArrayScatterV3":
            raise _NotRNN("input array not scattered")
        if scatter.inputs[0] != source_node.output(0):
            raise _NotRNN("input array scattered into another array")
        time_major = scatter.inputs[2]
    else:
        raise _NotRNN("input sequence")
    if not writes:
        return _StepIO(read.output(0), None, time_major, None, False)
    written = writes[0].output(0)
    out_vars = [v for v in loop.vars if _through_identity(v.next, body) == written]
    if len(out_vars) != 1:
        raise _NotRNN("output list")
    return _StepIO(read.output(0), writes[0].inputs[2], time_major, out_vars[0], every_step)


def _counts_steps(index: str, loop: Loop, by_name) -> bool:
    """Whether `index` is the loop's time: a variable starting at 0, incremented by 1."""
    lookup = {**by_name, **loop.body}
    index = _through_identity(index, lookup)
    for v in loop.vars:
        if v.inside != index:
            continue
        start = lookup.get(split_ref(_through_identity(v.init, lookup))[0])
        step = lookup.get(split_ref(_through_identity(v.next, lookup))[0])
        if start is None or step is None or step.op not in ("Add", "AddV2"):
            return False
        operands = [_through_identity(t, lookup) for t in step.inputs]
        if index not in operands:
            return False
        one = lookup.get(split_ref(operands[1 - operands.index(index)])[0])
        return _const_scalar(start) == 0 and one is not None and _const_scalar(one) == 1
    return False


def _const_scalar(node: Node):
    value = node.attrs.get("value") if node.op == "Const" else None
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return value.reshape(()).item()
    return None


def _batch_major(time_major: str, by_name: dict[str, Node]) -> tuple[str, bool, bool]:
    """(the sequence the loop reads, whether it is batch-major, whether the loop reads it
    backwards). Batch-major: what the loop's input was transposed from; Keras's go_backwards
    reverses the time-major sequence."""
    tensor = time_major
    node = by_name.get(split_ref(tensor)[0])
    backwards = node is not None and node.op in ("ReverseV2", "Reverse") and len(node.inputs) == 2
    if backwards:
        axis = _small_value(node.inputs[1], by_name)
        if axis is None or [int(a) for a in np.atleast_1d(axis)] not in ([0], [True, False, False]):
            raise _NotRNN("input reversed along another axis")
        tensor = node.inputs[0]
        node = by_name.get(split_ref(tensor)[0])
    if node is not None and node.op == "Transpose":
        perm = _small_value(node.inputs[1], by_name)
        if perm is not None and [int(p) for p in perm] == [1, 0, 2]:
            return node.inputs[0], True, backwards
    return tensor, False, backwards


@dataclass
class _Product:
    """A MatMul of the step by a weight: what it multiplies ("x", a state, [x, state] or
    [x, something else]) and by which weight tensor."""

    left: tuple  # ("x",) | ("state", tensor) | ("concat", tensor | None)
    right: str  # body tensor


def _products(body: dict[str, Node], x_t: str, lookup=None) -> list[_Product]:
    """The step's MatMuls by weights; `lookup` resolves Identity nodes (default: the body)."""
    lookup = body if lookup is None else lookup
    found = []
    for mm in body.values():
        if mm.op != "MatMul" or mm.attrs.get("transpose_a") or mm.attrs.get("transpose_b"):
            continue
        left = _through_identity(mm.inputs[0], lookup)
        node = lookup.get(split_ref(left)[0])
        if left == x_t:
            kind = ("x",)
        elif node is not None and node.op == "ConcatV2" and len(node.inputs) == 3:
            if _through_identity(node.inputs[0], lookup) != x_t:
                continue
            kind = ("concat", _through_identity(node.inputs[1], lookup))
        else:
            kind = ("state", left)
        right = _through_identity(mm.inputs[1], lookup)
        sliced = lookup.get(split_ref(right)[0])
        if sliced is not None and sliced.op == "StridedSlice":
            right = _through_identity(sliced.inputs[0], lookup)  # gate columns of a weight
        found.append(_Product(kind, right))
    return found


def _by(products, weights, left) -> list[_Source]:
    """The weights multiplying `left`, each once."""
    found = {p.right: weights[p.right] for p in products if p.left == left and p.right in weights}
    return list(found.values())


def _vectors(weights: dict[str, _Source], size: int) -> list[_Source]:
    return [w for w in weights.values() if w.value.shape == (size,)]


def _blocks(source: _Source, order, units, axis, rows=None) -> tuple[Concat, np.ndarray]:
    """Gate blocks of `units` along `axis`, concatenated in `order`: (template, value), of the
    given rows of a kernel only."""
    template, value = source.template, source.value
    if rows is not None:
        template, value = Slice(template, rows[0], rows[1], 0), value[rows[0] : rows[1]]
    parts = [Slice(template, b * units, (b + 1) * units, axis) for b in order]
    values = [np.take(value, range(b * units, (b + 1) * units), axis=axis) for b in order]
    return Concat(axis, tuple(parts)), np.concatenate(values, axis=axis)


def _lstm_candidates(products, weights, h: str, body, outer) -> list[_Cell]:
    """Keras's LSTM (x @ kernel + h @ recurrent_kernel + bias, gates i, f, c, o) or TF's
    LSTMCell ([x, h] @ kernel + bias, gates i, j, f, o, forget_bias added to f)."""
    candidates = []
    for kernel in _by(products, weights, ("x",)):
        for recurrent in _by(products, weights, ("state", h)):
            units = recurrent.value.shape[0]
            for bias in _vectors(weights, 4 * units):
                candidates.append(_keras_cell(LSTM_OP, units, kernel, recurrent, bias))
    for fused in _by(products, weights, ("concat", h)):
        units = fused.value.shape[1] // 4
        n_in = fused.value.shape[0] - units
        order = (0, 2, 1, 3)  # TF's i, j, f, o as Keras's i, f, c(=j), o
        kernel = _blocks(fused, order, units, 1, (0, n_in))
        recurrent = _blocks(fused, order, units, 1, (n_in, n_in + units))
        for bias in _vectors(weights, 4 * units):
            for forget_bias in _scalars(body, outer):
                b_template, b_value = _blocks(bias, order, units, 0)
                if forget_bias:
                    b_template, b_value = _with_forget_bias(b_template, b_value, units, forget_bias)
                candidates.append(
                    _Cell(
                        LSTM_OP,
                        units,
                        {
                            "kernel": kernel[0],
                            "recurrent_kernel": recurrent[0],
                            "bias": b_template,
                        },
                        {
                            "kernel": kernel[1],
                            "recurrent_kernel": recurrent[1],
                            "bias": b_value,
                        },
                    )
                )
    return candidates


def _with_forget_bias(template: Concat, value: np.ndarray, units: int, forget_bias: float):
    """A Keras-ordered LSTM bias (a concat of four gate blocks i, f, c, o) with TF's
    forget_bias, which TF adds to f's pre-activation at every step, folded into f's block."""
    i, f, c, o = template.parts
    value = value.copy()
    value[units : 2 * units] += forget_bias
    return Concat(template.axis, (i, Ufunc("add", (f, forget_bias)), c, o)), value


def _keras_cell(op, units, kernel: _Source, recurrent: _Source, bias: _Source, **kw) -> _Cell:
    return _Cell(
        op,
        units,
        {"kernel": kernel.template, "recurrent_kernel": recurrent.template, "bias": bias.template},
        {"kernel": kernel.value, "recurrent_kernel": recurrent.value, "bias": bias.value},
        **kw,
    )


def _scalars(body: dict[str, Node], outer: dict[str, Node]) -> list[float]:
    """Candidate forget biases: 0 and every float scalar constant the step reads (a lowered
    frame's constants hang off it by control edges, outside the frame)."""
    found = [0.0]
    for node in body.values():
        for t in node.inputs:
            const = body.get(split_ref(t)[0]) or outer.get(split_ref(t)[0])
            value = const.attrs.get("value") if const is not None and const.op == "Const" else None
            if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind == "f":
                v = float(value.reshape(()))
                if v not in found:
                    found.append(v)
    return found


def _gru_candidates(products, weights, h: str) -> list[_Cell]:
    """Keras's GRU (x and h products; with reset_after=True, the default, each has a bias and
    the reset gate applies to h's product, else to h before its candidate product), or TF's
    GRUCell ([x, h] @ gates: r, u; [x, r * h] @ candidate), which is Keras's reset_after=False
    with the gates swapped."""
    candidates = []
    for kernel in _by(products, weights, ("x",)):
        for recurrent in _by(products, weights, ("state", h)):
            units = recurrent.value.shape[0]
            biases = [w for w in weights.values() if w.value.shape == (2, 3 * units)]
            vectors = _vectors(weights, 3 * units)
            biases += [_stack_rows(a, b, 3 * units) for a in vectors for b in vectors if a is not b]
            candidates += [
                _keras_cell(GRU_OP, units, kernel, recurrent, bias, reset_after=True)
                for bias in biases
            ]
            candidates += [
                _keras_cell(GRU_OP, units, kernel, recurrent, bias, reset_after=False)
                for bias in vectors
            ]
    gates = _by(products, weights, ("concat", h))
    others = [p for p in products if p.left[0] == "concat" and p.left[1] != h]
    for g in gates:
        for c in [weights[p.right] for p in others if p.right in weights]:
            units = c.value.shape[1]
            n_in = c.value.shape[0] - units
            if g.value.shape != (n_in + units, 2 * units):
                continue
            swap = (1, 0)  # TF's r, u as Keras's z(=u), r
            rows = {"kernel": (0, n_in), "recurrent_kernel": (n_in, n_in + units)}
            templates, values = {}, {}
            for name, (lo, hi) in rows.items():
                gt, gv = _blocks(g, swap, units, 1, (lo, hi))
                templates[name] = Concat(1, (*gt.parts, Slice(c.template, lo, hi, 0)))
                values[name] = np.concatenate([gv, c.value[lo:hi]], 1)
            for bg in _vectors(weights, 2 * units):
                for bc in _vectors(weights, units):
                    bt, bv = _blocks(bg, swap, units, 0)
                    templates["bias"] = Concat(0, (*bt.parts, bc.template))
                    values["bias"] = np.concatenate([bv, bc.value])
                    candidates.append(_Cell(GRU_OP, units, dict(templates), dict(values)))
    return candidates


def _stack_rows(a: _Source, b: _Source, size: int) -> _Source:
    """Two bias vectors as Keras's 2-row GRU bias; the rows of one stored matrix read whole."""
    ta, tb = a.template, b.template
    value = np.stack([a.value, b.value])
    match ta, tb:
        case (Reshape(Slice(matrix, 0, 1, 0)), Reshape(Slice(other, 1, 2, 0))) if matrix == other:
            return _Source(value, matrix)
    return _Source(value, Concat(0, (Reshape(ta, (1, size)), Reshape(tb, (1, size)))))


def _checks(cell: _Cell, weights: dict, body, io: _StepIO, states: list[LoopVar], outer) -> bool:
    """Whether the step computes Keras's cell with these weights, on random values: every
    state's next value, and the step's output (h)."""
    rng = np.random.default_rng(0)
    n_in, units, batch = cell.values["kernel"].shape[0], cell.units, 3
    x = rng.uniform(-2, 2, (batch, n_in))
    state_values = [rng.uniform(-1, 1, (batch, units)) for _ in states]
    known = {t: w.value.astype(np.float64) for t, w in weights.items()}
    known[io.x_t] = x
    known.update({v.inside: value for v, value in zip(states, state_values)})
    step = _Step(body, known, outer)
    want = _keras_step(cell, x, state_values)
    try:
        got = [step(_through_identity(v.next, body)) for v in states]
        if io.y_t is not None:
            got.append(step(io.y_t))
            want.append(want[0])
    except (_NotRNN, *_EVAL_ERRORS):
        return False
    return all(
        g.shape == w.shape and np.max(np.abs(g - w)) <= TOLERANCE * max(1.0, np.max(np.abs(w)))
        for g, w in zip(got, want)
    )


_EVAL_ERRORS = (KeyError, IndexError, ValueError, TypeError, ArithmeticError)


def _keras_step(cell: _Cell, x, states):
    """One step of Keras's cell in numpy (float64)."""
    k, r, b = (cell.values[n].astype(np.float64) for n in ("kernel", "recurrent_kernel", "bias"))
    u = cell.units
    if cell.op == LSTM_OP:
        h, c = states
        z = x @ k + h @ r + b
        i, f, g, o = (z[:, j * u : (j + 1) * u] for j in range(4))
        c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return [sigmoid(o) * np.tanh(c2), c2]
    (h,) = states
    if cell.reset_after:
        xs, hs = x @ k + b[0], h @ r + b[1]
        z = sigmoid(xs[:, :u] + hs[:, :u])
        rr = sigmoid(xs[:, u : 2 * u] + hs[:, u : 2 * u])
        hh = np.tanh(xs[:, 2 * u :] + rr * hs[:, 2 * u :])
    else:
        xs = x @ k + b
        z = sigmoid(xs[:, :u] + h @ r[:, :u])
        rr = sigmoid(xs[:, u : 2 * u] + h @ r[:, u : 2 * u])
        hh = np.tanh(xs[:, 2 * u :] + (rr * h) @ r[:, 2 * u :])
    return [z * h + (1 - z) * hh]


# -- unrolled loops --------------------------------------------------------------------------------
#
# `tf.compat.v1.nn.static_rnn` writes the cell once per step instead of a loop: the steps of an
# unstacked sequence, each concatenated with the previous h and multiplied by the same kernel.
# The chain is checked as a whole, all T steps evaluated from the zero state and compared with
# Keras's layer.

# How far past a step's MatMul its new state may be found.
_STEP_REACH = 64


def _unstacked(nodes: list[Node]) -> list[Node]:
    """Unpack nodes splitting a [batch, time, features] sequence into its steps."""
    found = []
    for node in nodes:
        steps = node.attrs.get("num") if node.op == "Unpack" else None
        if isinstance(steps, int) and steps >= 2 and node.attrs.get("axis") == 1:
            found.append(node)
    return found


def _tensor_readers(nodes: list[Node]) -> dict[str, list[Node]]:
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(t, []).append(node)
        for t in dict.fromkeys(split_ref(t)[0] for t in node.inputs):
            readers.setdefault(t, []).append(node)  # by producer name too, for _reach
    return readers


def _lift_unrolled(unpack: Node, readers, by_name: dict[str, Node]):
    try:
        return _lift_unrolled_or_raise(unpack, readers, by_name)
    except (_NotRNN, *_EVAL_ERRORS):
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
            raise _NotRNN("a step does not concatenate its input with h")
        mms = [n for n in readers.get(concats[0].output(0), []) if n.op == "MatMul"]
        if len(mms) != 1:
            raise _NotRNN("a step's [x, h] is not multiplied once")
        matmuls.append(mms[0])
        h_in.append(_through_identity(concats[0].inputs[1], by_name))
    if not _is_zeros(h_in[0], by_name):
        raise _NotRNN("the first step's h is not zeros")
    step = _reach(matmuls[1], readers)  # the second step: its state inputs are computed
    weights = {}
    for node in step.values():
        for t in node.inputs:
            found = _outer_value(t, by_name)
            if found is not None and found[0].ndim >= 1:
                weights[_through_identity(t, by_name)] = _Source(*found)
    products = _products(step, xs[1], by_name)
    candidates = _lstm_candidates(products, weights, h_in[1], step, by_name)
    candidates += _gru_candidates(products, weights, h_in[1])
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


def _chain_results(cell: _Cell, xs, h_in, last_mm: Node, readers, by_name):
    """(the tensors holding the last h and c, or None for GRU's c) if every step computes
    Keras's cell with these weights from the zero state, else None."""
    rng = np.random.default_rng(0)
    n_in, units, batch = cell.values["kernel"].shape[0], cell.units, 3
    inputs = [rng.uniform(-2, 2, (batch, n_in)) for _ in xs]
    known = {x_t: value for x_t, value in zip(xs, inputs)}
    for node in by_name.values():
        if node.op == "Fill" and _is_zeros(node.output(0), by_name):
            known[node.output(0)] = np.zeros((batch, units))
    states = [np.zeros((batch, units))] * (2 if cell.op == LSTM_OP else 1)
    step = _Step(by_name, known, by_name)
    try:
        for t, x in enumerate(inputs):
            states = _keras_step(cell, x, states)
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
                except (_NotRNN, *_EVAL_ERRORS):
                    continue
            if match is None:
                return None
            found.append(match)
    except (_NotRNN, *_EVAL_ERRORS):
        return None
    return found[0], (found[1] if len(found) > 1 else None)


def _rewrite_unrolled(unpack, first_step: Node, cell: _Cell, h_in, results, readers, by_name):
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
                if [_through_identity(t, by_name) for t in reader.inputs] != steps:
                    raise _NotRNN("steps packed otherwise")
                uses["seq"].append(reader.output(0))
            elif read == [h_last]:
                uses["last"].append(h_last)
            elif c_last and read == [c_last]:
                uses["c"].append(c_last)
            else:
                raise _NotRNN(f"a step's tensor is read by {reader.op}")
    uses = {kind: list(dict.fromkeys(found)) for kind, found in uses.items()}
    kind = "lstm" if cell.op == LSTM_OP else "gru"
    scope = first_step.name.rsplit("/", 1)[0] if "/" in first_step.name else kind
    name = _node_name(scope, kind, set(by_name))
    new, rename = _lifted(name, cell, unpack.inputs[0], True, uses, by_name)
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


# -- fused LSTM ops --------------------------------------------------------------------------------
#
# BlockLSTM (TF 1.x's LSTMBlockFusedCell) runs a whole LSTM as one op on a time-major sequence:
# kernel [x, h] x 4 units with gate columns i, c, f, o and a forget_bias attribute; BlockLSTMV2
# has Keras's column order and no forget bias. Without peepholes or clipping, and from zero
# states over the whole sequence, it is Keras's LSTM.

_BLOCK_ORDER = {"BlockLSTM": (0, 2, 1, 3), "BlockLSTMV2": (0, 1, 2, 3)}
_BLOCK_H, _BLOCK_CS = 6, 1  # the outputs a model reads: every h, every cell state


def _lift_block(node: Node, readers, by_name: dict[str, Node]):
    try:
        return _lift_block_or_raise(node, readers, by_name)
    except (_NotRNN, *_EVAL_ERRORS):
        return None


def _lift_block_or_raise(node: Node, readers, by_name):
    a = node.attrs
    if a.get("use_peephole") or float(a.get("cell_clip", 3.0 if node.op == "BlockLSTM" else 0)) > 0:
        raise _NotRNN("peepholes or a clipped cell")
    seq_len_max, x, cs_prev, h_prev, w, _, _, _, b = node.inputs
    if not (_is_zeros(cs_prev, by_name) and _is_zeros(h_prev, by_name)):
        raise _NotRNN("initial states")
    if not _whole_sequence(seq_len_max, x, by_name):
        raise _NotRNN("seq_len_max may stop short of the sequence")
    kernel, bias = _outer_value(w, by_name), _outer_value(b, by_name)
    if kernel is None or bias is None or kernel[0].ndim != 2 or bias[0].ndim != 1:
        raise _NotRNN("weights")
    kernel, bias = _Source(*kernel), _Source(*bias)
    units = kernel.value.shape[1] // 4
    n_in = kernel.value.shape[0] - units
    order = _BLOCK_ORDER[node.op]
    k = _blocks(kernel, order, units, 1, (0, n_in))
    r = _blocks(kernel, order, units, 1, (n_in, n_in + units))
    b_template, b_value = _blocks(bias, order, units, 0)
    forget_bias = float(a.get("forget_bias", 1.0)) if node.op == "BlockLSTM" else 0.0
    if forget_bias:
        b_template, b_value = _with_forget_bias(b_template, b_value, units, forget_bias)
    weights = {"kernel": k[0], "recurrent_kernel": r[0], "bias": b_template}
    values = {"kernel": k[1], "recurrent_kernel": r[1], "bias": b_value}
    cell = _Cell(LSTM_OP, units, weights, values)
    uses: dict[str, list[str]] = {"seq": [], "last": [], "c": [], "time_major": []}
    read = {
        split_ref(t)[1]
        for r in readers.get(node.name, [])
        for t in r.inputs
        if split_ref(t)[0] == node.name
    }
    if read - {_BLOCK_H, _BLOCK_CS}:
        raise _NotRNN("a gate is read")
    for reader in _follow(node.output(_BLOCK_H), readers, by_name):
        kind = _stacked_use(reader, by_name)
        if kind == "time_major":
            raise _NotRNN("the time-major outputs are read")
        uses[kind].append(reader.output(0))
    for reader in _follow(node.output(_BLOCK_CS), readers, by_name):
        if _stacked_use(reader, by_name) != "last":
            raise _NotRNN("the cell states are read")
        uses["c"].append(reader.output(0))
    uses = {kind: list(dict.fromkeys(found)) for kind, found in uses.items()}
    source, batch_major, backwards = _batch_major(x, by_name)
    if backwards:
        raise _NotRNN("reversed input")
    name = _node_name(node.name, "lstm", set(by_name))
    new, rename = _lifted(name, cell, source, batch_major, uses, by_name)
    return new, rename, Loop(name, [], {}, {}, {node.name})


def _whole_sequence(seq_len_max: str, x: str, by_name) -> bool:
    """Whether seq_len_max is the time-major sequence's length: Shape(x)[0], maybe cast."""
    node = by_name.get(split_ref(_through_identity(seq_len_max, by_name))[0])
    if node is not None and node.op == "Cast":
        node = by_name.get(split_ref(_through_identity(node.inputs[0], by_name))[0])
    if node is None or node.op != "StridedSlice" or node.attrs.get("shrink_axis_mask") != 1:
        return False
    begin, end = (_small_value(t, by_name) for t in node.inputs[1:3])
    shape = by_name.get(split_ref(node.inputs[0])[0])
    return (
        begin is not None
        and end is not None
        and [int(v) for v in begin] == [0]
        and [int(v) for v in end] == [1]
        and shape is not None
        and shape.op == "Shape"
        and _through_identity(shape.inputs[0], by_name) == _through_identity(x, by_name)
    )


# -- replacing the loop ----------------------------------------------------------------------------


def _rewrite(loop: Loop, layers: list, x: str, batch_major: bool, io: _StepIO, by_name, nodes):
    """The lifted nodes (one per cell, each reading the sequence of the one below) and their
    result views, and the renaming of duplicate results.

    The loop's results keep the names they have in the graph (`rnn/transpose_1:0`,
    `rnn/while:4`): a user names them in --outputs and `graph2py check` asks TensorFlow for
    them. Each becomes a port of a `_Graph2pyRNNResult` node of that name, which forwards one
    output of a lifted node (ordered as Keras returns them: sequence or last h, then h, c).
    A time-major loop (dynamic_rnn's time_major=True) gets its input and its stacked outputs
    transposed, the latter under the stacking node's name.
    """
    readers = _readers(nodes, loop.members)
    uses = [{"seq": [], "last": [], "c": [], "time_major": []} for _ in layers]
    roles = {
        id(v): (k, role)
        for k, (_, vs, _) in enumerate(layers)
        for v, role in zip(vs, ("last", "c"))
    }
    for v in loop.vars:
        outs = _follow(v.out, readers, by_name) if v.out else []
        if v is io.out_var:
            top = uses[-1]
            for node in outs:
                stacked = node.op in STACKS and node.inputs[STACKS[node.op]]
                if not stacked or _through_identity(stacked, by_name) != v.out:
                    raise _NotRNN("output list read otherwise than stacked")
                kinds = [
                    _stacked_use(u, by_name) for u in _follow(node.output(0), readers, by_name)
                ]
                if "time_major" in kinds:
                    top["time_major"].append(node.output(0))
                for user, kind in zip(_follow(node.output(0), readers, by_name), kinds):
                    if kind != "time_major":
                        top[kind].append(user.output(0))
        elif id(v) in roles:
            k, role = roles[id(v)]
            uses[k][role] += [v.out] if readers.get(v.out) else []
        elif outs:
            raise _NotRNN("a loop counter is read after the loop")
    if not io.every_step and (uses[-1]["seq"] or uses[-1]["time_major"]):
        raise _NotRNN("the sequence of a loop that keeps only its last output")
    new, rename = [], {}
    taken = set(by_name)
    for k, (cell, _, _) in enumerate(layers):
        name = _node_name(loop.name, "lstm" if cell.op == LSTM_OP else "gru", taken)
        made, renamed = _lifted(name, cell, x, batch_major, uses[k], by_name, k + 1 < len(layers))
        taken.update(n.name for n in made)
        new += made
        rename.update(renamed)
        x, batch_major = made[0].output(0), True  # the next cell reads this one's sequence
    return new, rename


def _lifted(
    name: str, cell: _Cell, x: str, batch_major: bool, uses: dict, by_name, sequences=False
):
    """([the lifted node, its transposes, its result views], renaming) for the uses of its
    results: {"seq" | "last" | "c" | "time_major": tensors of the graph}; with `sequences`,
    the node returns every step's h whether the graph reads them or not."""
    return_sequences = sequences or bool(uses["seq"] or uses["time_major"])
    return_state = bool(uses["c"]) or (return_sequences and bool(uses["last"]))
    roots: list[str] = []
    templates = {key: _bind(t, roots) for key, t in cell.weights.items()}
    attrs = {
        "units": cell.units,
        "return_sequences": return_sequences,
        "return_state": return_state,
        "go_backwards": cell.go_backwards,
        "weights": templates,
        "shapes": {key: tuple(int(d) for d in v.shape) for key, v in cell.values.items()},
    }
    if cell.op == GRU_OP:
        attrs["reset_after"] = cell.reset_after
    ports = {"seq": 0, "last": 1 if return_sequences else 0, "c": 2}
    views: dict[str, Node] = {}
    rename: dict[str, str] = {}
    taken = set(by_name) | {name}
    new = [] if batch_major else _transposed(f"{name}/batch_major", x, taken)
    node = Node(name, cell.op, [new[-1].output(0) if new else x, *roots], attrs)
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
    return [node, *new, *views.values()], rename


def _transposed(name: str, tensor: str, taken: set[str]) -> list[Node]:
    """Nodes swapping the batch and time axes of `tensor`, the Transpose named `name`."""
    perm_name, i = f"{name}/perm", 1
    while perm_name in taken:
        perm_name, i = f"{name}/perm_{i}", i + 1
    taken.update((name, perm_name))
    value = np.array([1, 0, 2], np.int32)
    perm = Node(perm_name, "Const", [], {"value": value, "dtype": "int32"})
    return [perm, Node(name, "Transpose", [tensor, perm.output(0)], {})]


def _readers(nodes: list[Node], members: set[str]) -> dict[str, list[Node]]:
    found: dict[str, list[Node]] = {}
    for node in nodes:
        if node.name in members:
            continue
        for t in node.inputs:
            found.setdefault(t, []).append(node)
    return found


def _follow(tensor: str, readers, by_name) -> list[Node]:
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


def _stacked_use(user: Node, by_name) -> str:
    """What a reader of the stacked (time-major) outputs takes: all of them batch-major, the
    last step, or the time-major stack itself."""
    if user.op == "Transpose":
        perm = _small_value(user.inputs[1], by_name)
        if perm is not None and [int(p) for p in perm] == [1, 0, 2]:
            return "seq"
    if user.op == "StridedSlice" and len(user.inputs) == 4:
        begin, end, strides = (_small_value(t, by_name) for t in user.inputs[1:])
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


def _bind(template: Recipe, roots: list[str]) -> Recipe:
    """A recipe template with its Operand(tensor) leaves numbered by the node's inputs."""

    def number(tensor: str) -> Operand:
        if tensor not in roots:
            roots.append(tensor)
        return Operand(1 + roots.index(tensor))

    return bind(template, number)


_PLUMBING_SCOPES = {"while", "while_context", "PartitionedCall", "StatefulPartitionedCall"}


def _node_name(loop_name: str, kind: str, taken: set[str]) -> str:
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
