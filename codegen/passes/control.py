"""Conditionals for inference: resolve what is static, turn the rest into selects.

Frozen graphs carry control flow in two forms. TF2 (and TF1 with control flow v2, the default
since TF 2.0) writes functional ops whose branches live in the graph's function library: `If`,
`StatelessIf`, `Case`. Older graphs, and graphs frozen with lowering, write TF1 frames: `Switch`
sends its input to one of two outputs, the other is dead, and `Merge` forwards whichever input
is alive.

1. A condition that folds to a constant (`is_training` once its PlaceholderWithDefault is
   replaced by its default, see prune.py) keeps the branch taken: an `If`/`Case` becomes a
   call of that branch, inlined like any PartitionedCall; a `Switch` forwards its input to the
   live side and a `Merge` becomes the one input that stays alive. The untaken branch is gone.
2. A condition computed from the data (`tf.cond(tf.reduce_sum(x) > 0, ...)`) computes both
   branches and picks with `SelectV2(pred, then, else)`, written `keras.ops.where`. The value is
   the taken branch's exactly; the untaken one is computed and discarded. keras.ops.cond is no
   alternative: its branches are closures, and a closure over the symbolic tensors of a
   functional model fails when the model runs (verified on Keras 3 with TensorFlow).

Loops are not rewritten here (passes/rnn/ lifts recurrent ones first): a functional `While`
only gets the function library attached (`_library`), which prune drops from the graph, so
that patterns/control.py can write it as keras.ops.while_loop. TF1 while frames (Enter, Merge,
Switch, LoopCond, NextIteration, Exit) are cycles, which the graph cannot hold: before the
cycle check, `functionalize_frames` turns each into such a `While` node whose condition and
body are node lists (`_frame`), reading the frames with passes/frames.py as passes/rnn/ does.
TensorArrays the RNN lifting left become tensors first (passes/arrays.py): their contents are
then loop variables like any other.
"""

from __future__ import annotations

import numpy as np

from .. import optable
from ..errors import UnsupportedError
from ..graph import Graph, Node, output_count, split_ref
from ..optable.numeric import run_kernel
from .fold import Constants
from .arrays import arrays_as_tensors
from .frames import Loop, read_frames, replace_loop
from .inline import drop_unread, inline_functions
from .prune import TensorSpec, bypass_defaults
from .shapes import broadcast, rule

IF_OPS = {"If", "StatelessIf"}
WHILE_OPS = {"While", "StatelessWhile"}
SWITCH_OPS = {"Switch", "RefSwitch", "_SwitchN"}
CASE_OPS = {"Case", "StatelessCase"}
MAX_ROUNDS = 16  # nested conditionals resolve one level per round
MAX_WORK = 50_000_000  # node visits the analysis of data-dependent frames may take
CONTROL = "_control_inputs"  # attribute: a node's control inputs, kept for TF1 conditionals

# Predicates folded here beyond what constant folding knows (it stops at Identity, which prune
# bypasses later): boolean logic and comparisons, with the op table's kernels. Cast forwards its
# input unconverted, as it always has here; the table's Cast converts to DstT, which would
# change the branch a fractional condition cast to an integer selects.
_LOGIC = {
    op: optable.get(op).kernel
    for op in "LogicalNot LogicalAnd LogicalOr Equal NotEqual Less LessEqual Greater GreaterEqual"
    " Identity".split()
}
_LOGIC["Cast"] = lambda node, x: x


@rule("Select", "SelectV2")
def _select_shape(node, ins, c):
    if node.op == "Select" and ins[0] is not None and len(ins[0]) == 1 and ins[1]:
        return broadcast(ins[1], ins[2])  # a vector condition picks whole rows
    return broadcast(broadcast(ins[0], ins[1]), ins[2])


def resolve_control_flow(
    graph: Graph,
    inputs: list[TensorSpec] | None = None,
    outputs: list[TensorSpec] | None = None,
) -> Graph:
    original = graph
    graph = bypass_defaults(graph, inputs)
    for _ in range(MAX_ROUNDS):
        static = _resolve_static(graph)
        if static is None:
            break
        graph = inline_functions(static)
    graph = _select_branches(graph)
    if graph is not original:
        keep = {split_ref(s.tensor)[0] for s in outputs or ()}
        graph = _without_orphans(original, graph, keep)
    return _with_library(graph)


def _without_orphans(original: Graph, graph: Graph, keep: set[str]) -> Graph:
    """Less the nodes that only the untaken side of a condition read (the batch moments a
    TF1 batch norm computes for its training branch): they would look like outputs."""
    used_before = {split_ref(t)[0] for n in original for t in n.inputs} - keep
    nodes = drop_unread(list(graph), used_before)
    if len(nodes) == len(graph):
        return graph
    return Graph(nodes, graph.functions, graph.source)


def _with_library(graph: Graph) -> Graph:
    if not any(n.op in WHILE_OPS for n in graph):
        return graph
    nodes = [
        (
            Node(n.name, n.op, n.inputs, {**n.attrs, "_library": graph.functions})
            if n.op in WHILE_OPS
            else n
        )
        for n in graph
    ]
    return Graph(nodes, graph.functions, graph.source)


# -- values of conditions ---------------------------------------------------------------------


def _value(graph: Graph, consts: Constants, tensor: str, depth: int = 0):
    """A condition's or branch index's constant value (a numpy array), or None."""
    value = consts.value(tensor)
    if value is not None or depth > 32:
        return value
    name, port = split_ref(tensor)
    node = graph.nodes.get(name)
    if node is None or port != 0 or node.op not in _LOGIC:
        return None
    args = [_value(graph, consts, t, depth + 1) for t in node.inputs]
    if any(a is None for a in args) or len(args) != (
        1 if node.op in ("LogicalNot", "Cast", "Identity") else 2
    ):
        return None
    return run_kernel(_LOGIC[node.op], node, args)


def _scalar(value) -> int | None:
    if value is None or value.size != 1 or value.dtype.kind not in "biuf":
        return None
    return int(value.reshape(()).item() != 0) if value.dtype.kind == "b" else int(value.reshape(()))


def _truth(value) -> bool | None:
    """TF's truth of a condition tensor: a scalar's value (a non-scalar If condition is true
    when non-empty, which no frozen model relies on; it is left alone)."""
    if value is None or value.size != 1:
        return None
    return bool(value.reshape(()).item())


# -- static resolution ------------------------------------------------------------------------


def _resolve_static(graph: Graph) -> Graph | None:
    """One round: constant-condition If/Case become calls of the branch taken, Switch/Merge
    pairs on constant predicates are bypassed. None when nothing changed."""
    consts = Constants(graph)
    nodes: list[Node] = []
    changed = False
    for node in graph:
        if node.op in IF_OPS and len(node.inputs) >= 1:
            taken = _truth(_value(graph, consts, node.inputs[0]))
            branch = node.attrs.get("then_branch" if taken else "else_branch")
            if taken is not None and isinstance(branch, str):
                nodes.append(_call(node, branch, node.inputs[1:]))
                changed = True
                continue
        if node.op in CASE_OPS and len(node.inputs) >= 1:
            index = _scalar(_value(graph, consts, node.inputs[0]))
            branches = node.attrs.get("branches")
            if index is not None and isinstance(branches, list) and branches:
                # an index out of range runs the last branch, TF's default
                fname = branches[index] if 0 <= index < len(branches) else branches[-1]
                nodes.append(_call(node, fname, node.inputs[1:]))
                changed = True
                continue
        nodes.append(node)
    if changed:
        return Graph(nodes, graph.functions, graph.source)
    return _resolve_switches(graph, consts)


def _call(node: Node, fname: str, inputs: list[str]) -> Node:
    """The branch as a PartitionedCall under the conditional's name (inline.py splices it)."""
    return Node(
        node.name, "PartitionedCall", list(inputs), {"f": fname, "Tout": node.attrs.get("Tout")}
    )


def _dead(graph: Graph, assume: dict[str, int]) -> tuple[set[str], set[str]]:
    """(dead nodes, dead outputs of live switches) when the predicates in `assume` have the
    given values: a Switch kills the output its predicate does not take (a `_SwitchN`, the
    lowered Case, every output but its index's), a Merge dies when every input is dead, any
    other node when one of its inputs (or control inputs) is. One sweep over the edges."""
    dead_nodes: set[str] = set()
    dead_outputs: set[str] = set()
    readers = _readers(graph)

    def is_dead(tensor: str) -> bool:
        return tensor in dead_outputs or split_ref(tensor)[0] in dead_nodes

    queue: list[Node] = []
    for node in graph:
        if _is_switch(node) and node.inputs[1] in assume:
            value, count = assume[node.inputs[1]], _outputs(node)
            taken = (1 if value else 0) if count == 2 and node.op != "_SwitchN" else value
            if not 0 <= taken < count:
                taken = count - 1  # an index out of range takes the last branch
            dead = [node.output(i) for i in range(count) if i != taken]
            dead_outputs.update(dead)
            queue += [r for r in readers.get(node.name, ()) if set(r.inputs) & set(dead)]
    while queue:
        node = queue.pop()
        if node.name in dead_nodes:
            continue
        if node.op == "Merge" and not all(is_dead(t) for t in node.inputs):
            continue
        dead_nodes.add(node.name)  # it was queued because something it reads died
        queue += readers.get(node.name, ())
    return dead_nodes, dead_outputs


def _readers(graph: Graph) -> dict[str, list[Node]]:
    """Node name -> the nodes reading any of its outputs or depending on it by control."""
    found: dict[str, list[Node]] = {}
    for node in graph:
        for name in {split_ref(t)[0] for t in node.inputs} | set(node.attrs.get(CONTROL) or ()):
            found.setdefault(name, []).append(node)
    return found


def _is_switch(node: Node) -> bool:
    return node.op in SWITCH_OPS and len(node.inputs) == 2 and _outputs(node) > 0


MAX_BRANCHES = 1024  # a lowered Case with more outputs than this is no model's


def _outputs(node: Node) -> int:
    if node.op == "_SwitchN":
        count = node.attrs.get("num_outs")
        ok = isinstance(count, int) and not isinstance(count, bool) and 0 < count <= MAX_BRANCHES
        return count if ok else 0
    return 2


def _values(node: Node) -> list[int]:
    """The predicate values that select each of a switch's outputs, in output order."""
    return list(range(_outputs(node))) if node.op == "_SwitchN" else [0, 1]


def _resolve_switches(graph: Graph, consts: Constants) -> Graph | None:
    assume = {}
    for node in graph:
        if _is_switch(node):
            value = _value(graph, consts, node.inputs[1])
            found = _truth(value) if node.op != "_SwitchN" else _scalar(value)
            if found is not None:
                assume[node.inputs[1]] = int(found)
    if not assume:
        return None
    dead_nodes, dead_outputs = _dead(graph, assume)

    def live(tensor: str) -> bool:
        return tensor not in dead_outputs and split_ref(tensor)[0] not in dead_nodes

    alias: dict[str, str] = {}
    nodes: list[Node] = []
    pivots = _pivots(graph)
    for node in graph:
        if node.name in dead_nodes or node.name in pivots:
            continue
        if _is_switch(node) and node.inputs[1] in assume:
            for port in range(_outputs(node)):
                alias[node.output(port)] = node.inputs[0]
            continue
        if node.op == "Merge":
            kept = [(i, t) for i, t in enumerate(node.inputs) if live(t)]
            if len(kept) == 1:
                index, alias[node.output(0)] = kept[0]
                alias[node.output(1)] = _int_const(nodes, node.name + "/value_index", index)
                continue
            node = Node(node.name, node.op, [t for _, t in kept], node.attrs)
        nodes.append(node)
    return _rebuild(graph, nodes, alias)


def _pivots(graph: Graph) -> set[str]:
    """The Identity nodes a TF1 cond hangs its branches' constants on by control edges (its
    `switch_t`/`switch_f`): with control edges gone, nothing reads them."""
    return {
        n.name
        for n in graph
        if n.op == "Identity"
        and not graph.users(n.output())
        and n.inputs
        and graph.producer(n.inputs[0]).op in SWITCH_OPS
    }


def _int_const(nodes: list[Node], name: str, value: int) -> str:
    const = Node(name, "Const", [], {"dtype": "int32", "value": np.array(value, np.int32)})
    nodes.append(const)
    return const.output()


def _rebuild(graph: Graph, nodes: list[Node], alias: dict[str, str]) -> Graph:
    """The new graph with aliases followed, less the nodes that fed only what was removed (the
    arithmetic on constants inside an untaken branch would otherwise look like an output)."""

    def resolve(tensor: str) -> str:
        seen = set()
        while tensor in alias and tensor not in seen:
            seen.add(tensor)
            tensor = alias[tensor]
        return tensor

    nodes = [Node(n.name, n.op, [resolve(t) for t in n.inputs], n.attrs) for n in nodes]
    used_before = {split_ref(t)[0] for n in graph for t in n.inputs}
    return Graph(drop_unread(nodes, used_before), graph.functions, graph.source)


# -- data-dependent conditions ----------------------------------------------------------------


def _select_branches(graph: Graph) -> Graph:
    graph = _select_functional(graph)
    return _select_frames(graph)


def _select_functional(graph: Graph) -> Graph:
    """If/Case on a computed condition: every branch inlined, the results picked by SelectV2
    (Case: a chain of them over `index == k`; an index out of range takes the last branch)."""
    targets = {n.name for n in graph if n.op in IF_OPS | CASE_OPS and _branches(n)}
    if not targets:
        return graph
    nodes: list[Node] = []
    alias: dict[str, str] = {}
    for node in graph:
        if node.name not in targets:
            nodes.append(node)
            continue
        used = _read_ports(graph, node)
        calls = []
        for k, fname in enumerate(_branches(node)):
            suffix = ("then", "else")[k] if node.op in IF_OPS else f"branch{k}"
            call = _call(node, fname, node.inputs[1:])
            call.name = f"{node.name}/{suffix}"
            calls.append(call)
        nodes += calls
        conditions = [node.inputs[0]] if node.op in IF_OPS else []
        if node.op in CASE_OPS:
            for k in range(len(calls) - 1):
                const = Node(
                    f"{node.name}/index_{k}",
                    "Const",
                    [],
                    {"dtype": "int32", "value": np.array(k, np.int32)},
                )
                equal = Node(
                    f"{node.name}/is_{k}", "Equal", [node.inputs[0], const.output()], {"T": "int32"}
                )
                nodes += [const, equal]
                conditions.append(equal.output())
        for port in used:
            picked = calls[-1].output(port)
            for k in reversed(range(len(conditions))):
                name = node.name if port == 0 and k == 0 else f"{node.name}/select_{port}_{k}"
                select = Node(name, "SelectV2", [conditions[k], calls[k].output(port), picked], {})
                nodes.append(select)
                picked = select.output()
            alias[node.output(port)] = picked
    return inline_functions(_rebuild(graph, nodes, alias))


def _branches(node: Node) -> list[str] | None:
    if node.op in IF_OPS:
        found = [node.attrs.get("then_branch"), node.attrs.get("else_branch")]
    else:
        found = node.attrs.get("branches")
    if not isinstance(found, list) or not found or not all(isinstance(f, str) for f in found):
        return None
    return found


def _read_ports(graph: Graph, node: Node) -> list[int]:
    count = output_count(node)
    if count is None:
        count = len(node.attrs["Tout"]) if isinstance(node.attrs.get("Tout"), list) else 0
    return [port for port in range(count) if graph.users(node.output(port))]


def _select_frames(graph: Graph) -> Graph:
    """Switch/Merge on computed predicates (TF1 tf.cond, a lowered Case): each Merge whose
    inputs one predicate explains (each input alive for exactly one of its values) becomes
    SelectV2(pred, then, else), or for a Case a chain of SelectV2(index == k, ...), and the
    switches forward their input. All or nothing: a Merge no predicate explains (a loop's, or
    one whose value_index is read) leaves the frames as they are, to be reported."""
    switches = {n.name: n for n in graph if _is_switch(n)}
    merges = [n for n in graph if n.op == "Merge"]
    if not switches or not merges:
        return graph
    if any(graph.users(m.output(1)) for m in merges):
        return graph
    if sum(len(_values(n)) for n in switches.values()) * len(graph) > MAX_WORK:
        return graph  # too many predicates to analyse: left to be reported
    preds = {n.inputs[1]: _values(n) for n in switches.values()}
    chosen: dict[str, tuple[str, list[str]]] = {}  # merge -> (predicate, input per value)
    for pred, values in preds.items():
        dead = [_dead(graph, {pred: v}) for v in values]
        for merge in merges:
            if merge.name in chosen or len(merge.inputs) != len(values):
                continue
            order = _explained(merge.inputs, dead)
            if order is not None:
                chosen[merge.name] = (pred, order)
    if len(chosen) != len(merges):
        return graph
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    pivots = _pivots(graph)
    for node in graph:
        if node.name in pivots:
            continue
        if node.name in switches:
            for port in range(_outputs(node)):
                alias[node.output(port)] = node.inputs[0]
        elif node.name in chosen:
            pred, order = chosen[node.name]
            if len(order) == 2 and switches_kind(preds[pred]):
                nodes.append(Node(node.name, "SelectV2", [pred, order[1], order[0]], {}))
                continue
            picked = order[-1]
            for k in reversed(range(len(order) - 1)):
                index = _int_const(nodes, f"{node.name}/index_{k}", k)
                equal = Node(f"{node.name}/is_{k}", "Equal", [pred, index], {})
                name = node.name if k == 0 else f"{node.name}/select_{k}"
                select = Node(name, "SelectV2", [equal.output(), order[k], picked], {})
                nodes += [equal, select]
                picked = select.output()
        else:
            nodes.append(node)
    return _rebuild(graph, nodes, alias)


def switches_kind(values: list[int]) -> bool:
    """Whether a predicate is a Switch's boolean (values [0, 1]) rather than a Case index."""
    return values == [0, 1]


def _explained(inputs: list[str], dead: list[tuple[set[str], set[str]]]) -> list[str] | None:
    """The inputs ordered by the predicate value that keeps each alone alive, or None."""

    def is_dead(t: str, found) -> bool:
        nodes, outputs = found
        return t in outputs or split_ref(t)[0] in nodes

    order = []
    for found in dead:
        alive = [t for t in inputs if not is_dead(t, found)]
        if len(alive) != 1 or alive[0] in order:
            return None
        order.append(alive[0])
    return order


# -- TF1 while frames -------------------------------------------------------------------------

FRAME_OPS = {
    "Enter",
    "RefEnter",
    "Exit",
    "RefExit",
    "NextIteration",
    "RefNextIteration",
    "LoopCond",
}


def functionalize_frames(nodes: list[Node], source: str = "graph", graph_def=None) -> list[Node]:
    """The node list with each while frame replaced by one `While` node (outputs: the loop
    variables' final values). A frame that is not a plain loop is reported. Where the graph
    has TF1 conditionals, their control edges are kept too (see `_keep_control_edges`)."""
    if graph_def is not None and any(n.op in SWITCH_OPS for n in nodes):
        _keep_control_edges(nodes, graph_def)
    nodes = arrays_as_tensors(nodes, source)  # their flows become loop variables
    if not any(n.op in ("Enter", "RefEnter") for n in nodes):
        return nodes
    by_name = {n.name: n for n in nodes}
    progress = True
    while progress and any(n.op in ("Enter", "RefEnter") for n in nodes):
        progress = False  # inner loops first: an outer frame then holds a While node
        renamed: dict[str, str] = {}
        for loop in read_frames(nodes, by_name):
            found = _while_of_frame(loop, by_name)
            if found is None:
                continue
            new, rename = found
            new.inputs = [renamed.get(t, t) for t in new.inputs]  # reading an earlier loop
            renamed.update(rename)
            nodes = replace_loop(nodes, loop, [new], rename)
            by_name = {n.name: n for n in nodes}
            progress = True
    left = sorted(
        {str(n.attrs.get("frame_name", "")) for n in nodes if n.op in ("Enter", "RefEnter")}
    )
    if left:
        raise UnsupportedError(
            *(f"{source}: while loop {name!r} is not one graph2py can read" for name in left)
        )
    return nodes


def _keep_control_edges(nodes: list[Node], graph_def) -> None:
    """A TF1 cond ties a branch that computes from constants alone (`tf.cond(is_training,
    lambda: 0.5, lambda: 1.0)`) to its side only by a control edge from the Switch's pivot.
    Decoding drops control edges; the deadness analysis below needs these."""
    by_name = {n.name: n for n in nodes}
    for proto in graph_def.node:
        control = [i[1:] for i in proto.input if i.startswith("^")]
        node = by_name.get(proto.name)
        if control and node is not None:
            node.attrs[CONTROL] = control


def _while_of_frame(loop: Loop, by_name: dict[str, Node]) -> tuple[Node, dict[str, str]] | None:
    conds = [by_name[m] for m in loop.members if by_name[m].op == "LoopCond"]
    if len(conds) != 1 or not conds[0].inputs or not loop.vars:
        return None
    arg_of: dict[str, int] = {}
    dtypes = []
    for i, var in enumerate(loop.vars):
        switch = by_name[split_ref(var.inside)[0]]
        merge = by_name[split_ref(switch.inputs[0])[0]]
        arg_of[var.inside] = arg_of[switch.inputs[0]] = i
        dtypes.append(by_name[split_ref(merge.inputs[0])[0]].attrs.get("T"))
    for inside in loop.invariants:
        arg_of[inside] = len(dtypes)
        dtypes.append(by_name[split_ref(inside)[0]].attrs.get("T"))
    cond = conds[0].inputs[0]
    results = [v.next for v in loop.vars] + list(loop.invariants)
    body: dict[str, Node] = {}
    stack = [cond, *results]
    while stack:
        tensor = stack.pop()
        name = split_ref(tensor)[0]
        if tensor in arg_of or name in body:
            continue
        node = by_name.get(name)
        if node is None or node.op in FRAME_OPS | {"Merge", "Switch", "Placeholder"}:
            return None  # a value from outside the frame that no Enter brought in
        body[name] = node
        stack.extend(node.inputs)
    taken = set(by_name)
    name = _unique_name(loop.name.removesuffix("/while_context") or "while", taken)
    frame = {"nodes": list(body.values()), "args": arg_of, "cond": cond, "results": results}
    inputs = [v.init for v in loop.vars] + list(loop.invariants.values())
    new = Node(name, "While", inputs, {"T": dtypes, "_frame": frame})
    rename = {v.out: f"{name}:{i}" for i, v in enumerate(loop.vars) if v.out}
    return new, rename


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
