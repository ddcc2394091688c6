"""Recurrent loops -> one node per Keras LSTM or GRU layer.

A frozen RNN is a while loop over time steps: the input sequence unstacked into a tensor list,
the state (h, or h and c) carried from step to step, each step's output written to another list,
and the weights entering the loop as constants. Patterns match single ops and cannot see a loop,
so this pass recognises the whole loop and replaces it with one synthetic node, `_Graph2pyLSTM`
or `_Graph2pyGRU`, that `patterns/rnn.py` turns into `keras.layers.LSTM`/`GRU`.

Two frozen forms of the loop are read:
  * lowered frames (Enter, Merge, Switch, LoopCond, NextIteration, Exit), as
    `convert_variables_to_constants_v2` leaves a Keras 2 LSTM/GRU;
  * functional `While`/`StatelessWhile` nodes whose body is in the graph's function library,
    as `tf.compat.v1.nn.dynamic_rnn` builds under TF2's control flow.

The cell is recognised by what it computes, not by op names: the weights are found from the
shapes and operands of the step's MatMuls, mapped to Keras's layout (gate order, forget bias
folded into the bias), and then the step is evaluated with numpy on random inputs and compared
with Keras's cell on the mapped weights. A loop that does not compute exactly a Keras LSTM or
GRU from zero initial states (a mask, a peephole, other activations) is left alone.

The synthetic node takes the batch-major input sequence and the source constants its weights
are made of; its `weights` attribute holds a recipe per Keras weight whose `("input", i)`
leaves stand for its i-th input (see passes/fold.py for the recipe steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from ..graph import Node, decode_node, split_ref
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
    outputs: dict[str, str] = field(default_factory=dict)  # outer tensor -> var.out it is


def lift_recurrent(nodes: list[Node], functions: dict, source: str = "graph") -> list[Node]:
    """The node list with every recognised LSTM/GRU loop replaced by one synthetic node."""
    if not any(n.op == "Enter" or n.op in WHILE_OPS for n in nodes):
        return nodes
    by_name = {n.name: n for n in nodes}
    loops = _frames(nodes, by_name) + _functional(nodes, functions, source)
    for loop in loops:
        lifted = _lift(loop, by_name, nodes)
        if lifted is None:
            continue
        new_nodes, rename = lifted
        for node in nodes:
            node.inputs = [rename.get(t, t) for t in node.inputs]
        nodes = _remove_loop(nodes, loop, new_nodes) + new_nodes
        by_name = {n.name: n for n in nodes}
    return nodes


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
    views = [n for n in new if n.op == RESULT_OP]
    provided = {f"{v.name}:{p}" for v in views for p in v.attrs["ports"]}
    removed = set(loop.members) | {v.name for v in views if v.name in by_name}
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


# -- reading loops ------------------------------------------------------------------------------


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
    for member in sorted(members):
        merge = by_name[member]
        if merge.op != "Merge" or len(merge.inputs) != 2:
            continue
        enter, nxt = (by_name[split_ref(t)[0]] for t in merge.inputs)
        if enter.op != "Enter" or nxt.op != "NextIteration":
            return None
        switches = [
            n
            for n in (by_name[m] for m in members)
            if n.op == "Switch" and n.inputs and n.inputs[0] == merge.output(0)
        ]
        if len(switches) != 1:
            return None
        switch = switches[0]
        out = next((e for s, e in exits.items() if s == switch.output(0)), None)
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


# -- outer constants ------------------------------------------------------------------------------


def _outer_value(tensor: str, by_name: dict[str, Node], depth: int = 0):
    """(value, recipe template, root tensor) of a loop input computed from one stored constant
    by Identity/Unpack, or None. The template reads the root as ("input", root)."""
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
        return value, ("input", tensor), tensor
    if node.op in ("Identity", "Snapshot", "Enter") and node.inputs:
        return _outer_value(node.inputs[0], by_name, depth + 1)
    if node.op == "Unpack" and node.inputs and node.attrs.get("axis", 0) == 0:
        inner = _outer_value(node.inputs[0], by_name, depth + 1)
        if inner is None or port >= inner[0].shape[0]:
            return None
        value, template, root = inner
        part = ("reshape", ("slice", template, port, port + 1, 0), tuple(value.shape[1:]))
        return value[port], part, root
    return None


def _small_value(tensor: str, by_name: dict[str, Node], depth: int = 0):
    """A small constant computed from Consts (a permutation built with Range/ConcatV2)."""
    if depth > 16:
        return None
    name, port = split_ref(tensor)
    node = by_name.get(name)
    if node is None or port != 0:
        return None
    if node.op == "Const":
        value = node.attrs.get("value")
        return value if isinstance(value, np.ndarray) else None
    ins = [_small_value(t, by_name, depth + 1) for t in node.inputs]
    if any(v is None for v in ins):
        return None
    try:
        if node.op in ("Identity", "Snapshot"):
            return ins[0]
        if node.op == "Range":
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


# -- the step, evaluated ------------------------------------------------------------------------


class _Step:
    """Evaluates body tensors with numpy from given values of the step's inputs."""

    def __init__(self, body: dict[str, Node], known: dict[str, np.ndarray], outer: dict[str, Node]):
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
            outs = _KERNELS.get(node.op)
            if outs is None:
                raise _NotRNN(f"step computes {node.op}")
            result = outs(node, *[self.values[t] for t in node.inputs])
            results = result if isinstance(result, list) else [result]
            if port >= len(results):
                raise _NotRNN("bad port")
            for i, r in enumerate(results):
                self.values[f"{name}:{i}"] = np.asarray(r)
        return self.values[tensor]


class _NotRNN(Exception):
    pass


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _matmul(node, a, b):
    if node.attrs.get("transpose_a"):
        a = a.T
    if node.attrs.get("transpose_b"):
        b = b.T
    return a @ b


def _split(node, axis, x):
    return list(np.split(x, int(node.attrs.get("num_split", 1)), axis=int(axis)))


def _split_v(node, x, sizes, axis):
    bounds = np.cumsum([int(s) for s in sizes])[:-1]
    return list(np.split(x, bounds, axis=int(axis)))


_KERNELS = {
    "Identity": lambda n, x: x,
    "Snapshot": lambda n, x: x,
    "Const": lambda n: n.attrs["value"],
    "MatMul": _matmul,
    "BiasAdd": lambda n, x, b: x + b,
    "Add": lambda n, a, b: a + b,
    "AddV2": lambda n, a, b: a + b,
    "Sub": lambda n, a, b: a - b,
    "Mul": lambda n, a, b: a * b,
    "Sigmoid": lambda n, x: _sigmoid(x),
    "Tanh": lambda n, x: np.tanh(x),
    "Split": _split,
    "SplitV": _split_v,
    "ConcatV2": lambda n, *xs: np.concatenate(xs[:-1], axis=int(xs[-1])),
}


# -- recognising the cell -------------------------------------------------------------------------


@dataclass
class _Cell:
    op: str  # LSTM_OP or GRU_OP
    units: int
    weights: dict[str, tuple]  # Keras weight -> recipe template with ("input", tensor) leaves
    values: dict[str, np.ndarray]  # Keras weight -> value, for the check
    reset_after: bool = False


def _lift(loop: Loop, by_name: dict[str, Node], nodes: list[Node]):
    try:
        return _lift_or_raise(loop, by_name, nodes)
    except (_NotRNN, *_EVAL_ERRORS):
        return None


def _lift_or_raise(loop: Loop, by_name: dict[str, Node], nodes: list[Node]):
    body = loop.body
    local = {**by_name, **body}

    def op_of(tensor):
        node = local.get(split_ref(tensor)[0])
        return node.op if node is not None else None

    # the input sequence: a list unstacked from a time-major tensor, read at the time index
    seq_var = next(
        (v for v in loop.vars if op_of(_through_identity(v.init, by_name)) == "TensorListFromTensor"),
        None,
    )
    out_var = next(
        (v for v in loop.vars if op_of(_through_identity(v.init, by_name)) == "TensorListReserve"),
        None,
    )
    if seq_var is None or out_var is None:
        raise _NotRNN("no input or output list")
    reads = [n for n in body.values() if n.op == "TensorListGetItem" and _through_identity(n.inputs[0], body) == seq_var.inside]
    write = local.get(split_ref(_through_identity(out_var.next, body))[0])
    if len(reads) != 1 or write is None or write.op != "TensorListSetItem":
        raise _NotRNN("not one read and one write per step")
    x_t = reads[0].output(0)
    y_t = write.inputs[2]
    time_major = local[split_ref(_through_identity(seq_var.init, by_name))[0]].inputs[0]
    x = _batch_major(time_major, by_name)

    weights: dict[str, tuple] = {}  # body tensor -> (value, template, root)
    states = []
    for v in loop.vars:
        if v is seq_var or v is out_var:
            continue
        if _through_identity(v.next, body) == v.inside:
            found = _outer_value(v.init, by_name)
            if found is not None:
                weights[v.inside] = found
            continue
        if _is_zeros(v.init, by_name):
            states.append(v)
    for inside, outer in loop.invariants.items():
        found = _outer_value(outer, by_name)
        if found is not None:
            weights[inside] = found
    if len(states) not in (1, 2):
        raise _NotRNN("not one or two states")

    def resolve(tensor):
        """A body tensor as x_t, a state, a weight or itself."""
        return _through_identity(tensor, body)

    matmuls = [n for n in body.values() if n.op == "MatMul"]
    make = _lstm if len(states) == 2 else _gru
    cell = make(matmuls, weights, resolve, x_t, y_t, states, body, by_name)
    if cell is None:
        raise _NotRNN("no cell")
    return _rewrite(loop, cell, x, states, out_var, by_name, nodes)


def _batch_major(time_major: str, by_name: dict[str, Node]) -> str:
    node = by_name.get(split_ref(time_major)[0])
    if node is None or node.op != "Transpose":
        raise _NotRNN("input not transposed from batch-major")
    perm = _small_value(node.inputs[1], by_name)
    if perm is None or [int(p) for p in perm] != [1, 0, 2]:
        raise _NotRNN("input permutation")
    return node.inputs[0]


def _operand_kind(tensor: str, resolve, x_t: str, states: dict[str, str], body) -> str | None:
    t = resolve(tensor)
    if t == x_t:
        return "x"
    if t in states:
        return states[t]
    node = body.get(split_ref(t)[0])
    if node is not None and node.op == "ConcatV2" and len(node.inputs) == 3:
        first = resolve(node.inputs[0])
        if first == x_t:
            second = resolve(node.inputs[1])
            return "xh" if states.get(second) == "h" else "x?"
    return None


def _weight_of(mm: Node, weights, resolve):
    w = resolve(mm.inputs[1])
    if w not in weights or mm.attrs.get("transpose_a") or mm.attrs.get("transpose_b"):
        return None
    return weights[w]


def _vectors(weights, size):
    return [w for w in weights.values() if w[0].shape == (size,)]


def _slice(template, start, stop, axis):
    return ("slice", template, start, stop, axis)


def _columns(template, blocks, units, axis=-1):
    """Gate blocks of `units` columns, in the given order, concatenated."""
    parts = [_slice(template, b * units, (b + 1) * units, axis) for b in blocks]
    return ("concat", axis, *parts)


def _lstm(matmuls, weights, resolve, x_t, y_t, states, body, outer) -> _Cell | None:
    # which state is h: the one the step writes as its output is h's next value
    candidates = []
    for h_var, c_var in (states, states[::-1]):
        kinds = {resolve(h_var.inside): "h", resolve(c_var.inside): "c"}
        by_kind = {}
        for mm in matmuls:
            kind = _operand_kind(mm.inputs[0], resolve, x_t, kinds, body)
            w = _weight_of(mm, weights, resolve)
            if kind and w is not None:
                by_kind[kind] = w
        vectors = [w for w in weights.values() if w[0].ndim == 1]
        if "x" in by_kind and "h" in by_kind:
            kernel, recurrent = by_kind["x"], by_kind["h"]
            units = recurrent[0].shape[0]
            for bias in vectors:
                if bias[0].shape == (4 * units,):
                    candidates.append(
                        (h_var, c_var, _Cell(
                            LSTM_OP,
                            units,
                            {"kernel": kernel[1], "recurrent_kernel": recurrent[1], "bias": bias[1]},
                            {"kernel": kernel[0], "recurrent_kernel": recurrent[0], "bias": bias[0]},
                        ))
                    )
        if "xh" in by_kind:
            w, template, _ = by_kind["xh"]
            units = w.shape[1] // 4
            n_in = w.shape[0] - units
            order = (0, 2, 1, 3)  # TF's i, j, f, o to Keras's i, f, c(=j), o
            kernel = _columns(_slice(template, 0, n_in, 0), order, units)
            recurrent = _columns(_slice(template, n_in, n_in + units, 0), order, units)
            kv = np.concatenate([w[:n_in, b * units : (b + 1) * units] for b in order], 1)
            rv = np.concatenate([w[n_in:, b * units : (b + 1) * units] for b in order], 1)
            for bias in vectors:
                if bias[0].shape != (4 * units,):
                    continue
                for fb in _scalars(body):
                    parts = [_slice(bias[1], b * units, (b + 1) * units, 0) for b in order]
                    if fb:
                        parts[1] = ("ufunc", "add", parts[1], fb)
                    bv = np.concatenate([bias[0][b * units : (b + 1) * units] for b in order])
                    bv[units : 2 * units] += fb
                    candidates.append(
                        (h_var, c_var, _Cell(
                            LSTM_OP,
                            units,
                            {"kernel": kernel, "recurrent_kernel": recurrent, "bias": ("concat", 0, *parts)},
                            {"kernel": kv, "recurrent_kernel": rv, "bias": bv},
                        ))
                    )
    for h_var, c_var, cell in candidates:
        if _checks(cell, weights, body, x_t, y_t, [h_var, c_var], outer):
            states[:] = [h_var, c_var]
            return cell
    return None


def _scalars(body) -> list[float]:
    """Candidate forget biases: 0 and every float scalar constant of the step."""
    found = [0.0]
    for node in body.values():
        value = node.attrs.get("value") if node.op == "Const" else None
        if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind == "f":
            v = float(value.reshape(()))
            if v not in found:
                found.append(v)
    return found


def _gru(matmuls, weights, resolve, x_t, y_t, states, body, outer) -> _Cell | None:
    h_var = states[0]
    kinds = {resolve(h_var.inside): "h"}
    by_kind: dict[str, list] = {}
    for mm in matmuls:
        kind = _operand_kind(mm.inputs[0], resolve, x_t, kinds, body)
        w = _weight_of(mm, weights, resolve)
        if kind and w is not None:
            by_kind.setdefault(kind, []).append(w)
    candidates = []
    if len(by_kind.get("x", [])) == 1 and len(by_kind.get("h", [])) == 1:
        # Keras's reset_after=True: biases for the input and the recurrent part
        kernel, recurrent = by_kind["x"][0], by_kind["h"][0]
        units = recurrent[0].shape[0]
        vectors = _vectors(weights, 3 * units)
        matrices = [w for w in weights.values() if w[0].shape == (2, 3 * units)]
        pairs = [(m[0], m[1]) for m in matrices]
        for a in vectors:
            for b in vectors:
                if a is not b:
                    pairs.append((np.stack([a[0], b[0]]), _stack_rows(a[1], b[1], 3 * units)))
        for value, template in pairs:
            candidates.append(
                _Cell(
                    GRU_OP,
                    units,
                    {"kernel": kernel[1], "recurrent_kernel": recurrent[1], "bias": template},
                    {"kernel": kernel[0], "recurrent_kernel": recurrent[0], "bias": value},
                    reset_after=True,
                )
            )
    if len(by_kind.get("xh", [])) == 1 and len(by_kind.get("x?", [])) == 1:
        # TF's GRUCell: gates [r, u] from [x, h]; the candidate from [x, r * h]
        (g, gt, _), (c, ct, _) = by_kind["xh"][0], by_kind["x?"][0]
        units = c.shape[1]
        n_in = c.shape[0] - units
        if g.shape == (n_in + units, 2 * units):
            kernel = ("concat", 1, *_gate_parts(gt, (1, 0), units, 0, n_in), _slice(ct, 0, n_in, 0))
            recurrent = (
                "concat",
                1,
                *_gate_parts(gt, (1, 0), units, n_in, n_in + units),
                _slice(ct, n_in, n_in + units, 0),
            )
            kv = np.concatenate([g[:n_in, units:], g[:n_in, :units], c[:n_in]], 1)
            rv = np.concatenate([g[n_in:, units:], g[n_in:, :units], c[n_in:]], 1)
            for bg in _vectors(weights, 2 * units):
                for bc in _vectors(weights, units):
                    bias = ("concat", 0, _slice(bg[1], units, 2 * units, 0), _slice(bg[1], 0, units, 0), bc[1])
                    bv = np.concatenate([bg[0][units:], bg[0][:units], bc[0]])
                    candidates.append(
                        _Cell(
                            GRU_OP,
                            units,
                            {"kernel": kernel, "recurrent_kernel": recurrent, "bias": bias},
                            {"kernel": kv, "recurrent_kernel": rv, "bias": bv},
                        )
                    )
    for cell in candidates:
        if _checks(cell, weights, body, x_t, y_t, states, outer):
            return cell
    return None


def _gate_parts(template, blocks, units, row_start, row_stop):
    rows = _slice(template, row_start, row_stop, 0)
    return [_slice(rows, b * units, (b + 1) * units, 1) for b in blocks]


def _stack_rows(a, b, size):
    """Two bias vectors as Keras's 2-row GRU bias; the rows of one stored matrix read whole."""
    if (
        a[0] == "reshape"
        and b[0] == "reshape"
        and a[1][0] == b[1][0] == "slice"
        and a[1][1] == b[1][1]
        and (a[1][2:], b[1][2:]) == ((0, 1, 0), (1, 2, 0))
    ):
        return a[1][1]
    return ("concat", 0, ("reshape", a, (1, size)), ("reshape", b, (1, size)))


def _checks(cell: _Cell, weights: dict, body, x_t: str, y_t: str, states: list[LoopVar], outer) -> bool:
    """Whether the step computes Keras's cell with these weights, on random values: every
    state's next value, and the step's output (h)."""
    rng = np.random.default_rng(0)
    n_in, units, batch = cell.values["kernel"].shape[0], cell.units, 3
    x = rng.uniform(-2, 2, (batch, n_in))
    state_values = [rng.uniform(-1, 1, (batch, units)) for _ in states]
    known = {t: w[0].astype(np.float64) for t, w in weights.items()}
    known[x_t] = x
    known.update({v.inside: value for v, value in zip(states, state_values)})
    step = _Step(body, known, outer)
    want = _keras_step(cell, x, state_values)
    try:
        got = [step(_through_identity(v.next, body)) for v in states] + [step(y_t)]
    except (_NotRNN, *_EVAL_ERRORS):
        return False
    return all(
        g.shape == w.shape and np.max(np.abs(g - w)) <= TOLERANCE * max(1.0, np.max(np.abs(w)))
        for g, w in zip(got, [*want, want[0]])
    )


_EVAL_ERRORS = (KeyError, IndexError, ValueError, TypeError, ArithmeticError)


def _keras_step(cell: _Cell, x, states):
    k, r, b = (cell.values[n].astype(np.float64) for n in ("kernel", "recurrent_kernel", "bias"))
    u = cell.units
    if cell.op == LSTM_OP:
        h, c = states
        z = x @ k + h @ r + b
        i, f, g, o = (z[:, j * u : (j + 1) * u] for j in range(4))
        c2 = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return [_sigmoid(o) * np.tanh(c2), c2]
    (h,) = states
    if cell.reset_after:
        xs, hs = x @ k + b[0], h @ r + b[1]
        z = _sigmoid(xs[:, :u] + hs[:, :u])
        rr = _sigmoid(xs[:, u : 2 * u] + hs[:, u : 2 * u])
        hh = np.tanh(xs[:, 2 * u :] + rr * hs[:, 2 * u :])
    else:
        xs = x @ k + b
        z = _sigmoid(xs[:, :u] + h @ r[:, :u])
        rr = _sigmoid(xs[:, u : 2 * u] + h @ r[:, u : 2 * u])
        hh = np.tanh(xs[:, 2 * u :] + (rr * h) @ r[:, 2 * u :])
    return [z * h + (1 - z) * hh]


# -- replacing the loop -----------------------------------------------------------------------------


def _rewrite(loop: Loop, cell: _Cell, x: str, states: list[LoopVar], out_var: LoopVar, by_name, nodes):
    """The lifted node and its result views, and the renaming of duplicate results.

    The loop's results keep the names they have in the graph (`rnn/transpose_1:0`,
    `rnn/while:4`): a user names them in --outputs and `graph2py check` asks TensorFlow for
    them. Each becomes a port of a `_Graph2pyRNNResult` node of that name, which forwards one
    output of the lifted node (ordered as Keras returns them: sequence or last h, then h, c).
    """
    readers = _readers(nodes, loop.members)
    uses: dict[str, list[str]] = {"seq": [], "last": [], "c": []}
    for v in loop.vars:
        outs = _follow(v.out, readers, by_name) if v.out else []
        if v is out_var:
            for node in outs:
                if node.op != "TensorListStack":
                    raise _NotRNN("output list read otherwise than stacked")
                for user in _follow(node.output(0), readers, by_name):
                    uses[_stacked_use(user, by_name)].append(user.output(0))
        elif v is states[0]:
            uses["last"] += [v.out] if readers.get(v.out) else []
        elif len(states) == 2 and v is states[1]:
            uses["c"] += [v.out] if readers.get(v.out) else []
        elif outs:
            raise _NotRNN("a loop counter is read after the loop")
    return_sequences = bool(uses["seq"])
    return_state = bool(uses["c"]) or (return_sequences and bool(uses["last"]))
    roots: list[str] = []
    templates = {key: _bind(t, roots) for key, t in cell.weights.items()}
    attrs = {
        "units": cell.units,
        "return_sequences": return_sequences,
        "return_state": return_state,
        "weights": templates,
    }
    if cell.op == GRU_OP:
        attrs["reset_after"] = cell.reset_after
    ports = {"seq": 0, "last": 1 if return_sequences else 0, "c": 2}
    views: dict[str, Node] = {}
    rename: dict[str, str] = {}
    taken = set(by_name) - {split_ref(t)[0] for found in uses.values() for t in found}
    node = Node(_layer_scope(loop.name, taken), cell.op, [x, *roots], attrs)
    for kind, found in uses.items():
        if not found:
            continue
        rename.update({t: found[0] for t in found[1:]})  # one tensor per result
        name, port = split_ref(found[0])
        view = views.setdefault(name, Node(name, RESULT_OP, [], {"ports": [], "kinds": []}))
        view.inputs.append(node.output(ports[kind]))
        view.attrs["ports"].append(port)
        view.attrs["kinds"].append(kind)
        view.attrs["units"] = cell.units
    return [node, *views.values()], rename


def _readers(nodes: list[Node], members: set[str]) -> dict[str, list[Node]]:
    found: dict[str, list[Node]] = {}
    for node in nodes:
        if node.name in members:
            continue
        for t in node.inputs:
            found.setdefault(t, []).append(node)
    return found


def _follow(tensor: str, readers, by_name) -> list[Node]:
    """The nodes reading `tensor`, looking through Identity nodes."""
    result = []
    for node in readers.get(tensor, []):
        if node.op in ("Identity", "Snapshot"):
            inner = _follow(node.output(0), readers, by_name)
            result += inner if inner else []
        else:
            result.append(node)
    return result


def _plain_uses(tensor: str, readers, by_name) -> list[str]:
    """The tensors equal to a loop result that something reads: the result itself and its
    Identity copies."""
    found = [tensor] if readers.get(tensor) else []
    for node in readers.get(tensor, []):
        if node.op in ("Identity", "Snapshot"):
            found += _plain_uses(node.output(0), readers, by_name)
    return found


def _stacked_use(user: Node, by_name) -> str:
    """What a reader of the stacked (time-major) outputs takes: all of them batch-major, or the
    last step."""
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
    raise _NotRNN(f"stacked outputs read by {user.op}")


def _bind(template, roots: list[str]):
    """A recipe template with its ("input", tensor) leaves numbered by the node's inputs."""
    if not isinstance(template, tuple):
        return template
    if template[0] == "input":
        if template[1] not in roots:
            roots.append(template[1])
        return ("input", 1 + roots.index(template[1]))
    return tuple(_bind(part, roots) for part in template)


def _layer_scope(loop_name: str, taken: set[str]) -> str:
    """The loop's layer scope (`sequential/lstm` for `sequential/lstm/PartitionedCall/while`),
    as a node name no other node has."""
    parts = loop_name.split("/")
    while len(parts) > 1 and parts[-1] in ("while", "PartitionedCall", "StatefulPartitionedCall"):
        parts.pop()
    base = "/".join(parts)
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
