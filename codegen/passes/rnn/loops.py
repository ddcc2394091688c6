"""Loops, lowered or functional: the step's read and write of the sequence, its cells (one,
or a MultiRNNCell stack), and the loop's results as the lifted layers' outputs.

Lowered frames are read by passes/frames.py; functional While bodies are read here, from the
function library, their nodes named under the While node's name (the loops left are written as
keras.ops.while_loop by patterns/control.py, which inlines their bodies with inline.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...graph import Node, decode_node, split_ref
from ..frames import Loop, LoopVar, through_identity
from .cells import LSTM_OP, Source, StepIO, checks, gru_candidates, lstm_candidates
from .cells import weight_products
from .constants import is_zeros, outer_value, sliced_weight, small_value
from .evaluate import EVAL_ERRORS, NotRNN
from .rewrite import RESULT_OP, follow, input_sequence, lifted_nodes, node_name, stacked_use

WHILE_OPS = {"While", "StatelessWhile"}


def read_functional(nodes: list[Node], functions: dict, source: str) -> list[Loop]:
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


_READS = {"TensorListGetItem", "TensorArrayReadV3"}
_WRITES = {"TensorListSetItem", "TensorArrayWriteV3"}
STACKS = {"TensorListStack": 0, "TensorArrayGatherV3": 2}  # op -> input index of the list


def lift_loop(loop: Loop, by_name: dict[str, Node], nodes: list[Node]):
    try:
        return _lift_or_raise(loop, by_name, nodes)
    except (NotRNN, *EVAL_ERRORS):
        return None


def _lift_or_raise(loop: Loop, by_name: dict[str, Node], nodes: list[Node]):
    body = loop.body
    outer_of = {v.inside: v.init for v in loop.vars if through_identity(v.next, body) == v.inside}
    outer_of.update(loop.invariants)  # body tensor -> the outer tensor it always equals
    io = _sequence_io(loop, outer_of, by_name)
    weights = {}
    for inside, outer in outer_of.items():
        found = outer_value(outer, by_name)
        if found is not None:
            weights[inside] = Source(*found)
        elif (sliced := sliced_weight(outer, by_name)) is not None:
            part, value, template = sliced
            weights[inside] = Source(value, template, part)
    states = [
        v
        for v in loop.vars
        if v.inside not in outer_of and v is not io.out_var and _state_like(v.init, by_name)
    ]
    if io.mask_t is not None:
        aliases = tuple(v for v in states if through_identity(v.next, body) == io.y_t)
        states = [v for v in states if all(v is not a for a in aliases)]
        zeros = tuple(t for t, o in outer_of.items() if t not in weights and is_zeros(o, by_name))
        io = replace(io, aliases=aliases, zeros=zeros)
    layers = _stacked_cells(weights, io, states, body, by_name)
    x, batch_major, layers[0][0].go_backwards = input_sequence(io.time_major, by_name)
    mask = _batch_major_mask(io.mask, layers[0][0].go_backwards, by_name) if io.mask else None
    return _rewrite(loop, layers, x, batch_major, io, by_name, nodes, mask)


_FLOATS = ("float16", "bfloat16", "float32", "float64")
_NOT_STATES = {"TensorArrayV3", "TensorListReserve", "TensorListFromTensor", "EmptyTensorList"}


def _state_like(init: str, by_name) -> bool:
    """Whether a loop variable may be a cell's state: it starts from zeros (Keras's default),
    or from a float tensor of the graph (`initial_state=`: a placeholder, an encoder's final
    state), not a counter or a tensor array's flow."""
    if is_zeros(init, by_name):
        return True
    node = by_name.get(split_ref(through_identity(init, by_name))[0])
    if node is None or node.op in _NOT_STATES:
        return False
    return node.op == RESULT_OP or node.attrs.get("T", node.attrs.get("dtype")) in _FLOATS


def _batch_major_mask(time_major: str, backwards: bool, by_name) -> str:
    """The [batch, time] mask Keras's masked loop scattered as [time, batch, 1] (transposed
    from its ExpandDims; reversed with the sequence when the layer reads it backwards)."""
    tensor, batch_major, reversed_ = input_sequence(time_major, by_name)
    node = by_name.get(split_ref(through_identity(tensor, by_name))[0])
    axis = (
        small_value(node.inputs[1], by_name)
        if node is not None and node.op == "ExpandDims"
        else None
    )
    if (
        not batch_major
        or reversed_ != backwards
        or axis is None
        or int(axis.reshape(-1)[0]) not in (-1, 2)
    ):
        raise NotRNN("a mask Keras does not read")
    return node.inputs[0]


def _stacked_cells(weights, io: StepIO, states: list[LoopVar], body, outer) -> list:
    """[(cell, its states: [h] or [h, c], its input)] of the step, bottom first: the first cell
    reads the step's input, each other the new h of the one below (TF's MultiRNNCell), and the
    top one's new h is the step's output. Every state belongs to a cell."""
    layers, remaining, x_in = [], list(states), io.x_t
    while remaining:
        found = _cell_reading(x_in, weights, io, remaining, body, outer)
        if found is None:
            raise NotRNN("no cell")
        layers.append(found)
        remaining = [v for v in remaining if all(v is not u for u in found[1])]
        x_in = through_identity(found[1][0].next, body)
    if not layers:
        raise NotRNN("no state")
    top, top_states, top_input = layers[-1]
    if io.y_t is None:
        return layers
    # a masked step outputs the old output where the mask is off, or zeros (Keras's
    # zero_output_for_mask, which Bidirectional sets when it returns sequences)
    for zero_output in (False, True) if io.mask_t else (False,):
        top_io = replace(io, x_t=top_input, zero_output=zero_output)
        if checks(top, weights, body, top_io, top_states, outer):
            top.zero_output_for_mask = zero_output
            return layers
    raise NotRNN("the step's output is not the top cell's h")


def _cell_reading(x_in: str, weights, io: StepIO, remaining, body, outer):
    """(cell, [h] or [h, c], x_in) of the cell whose input is `x_in`, among the states."""
    products = weight_products(body, x_in)
    step = replace(io, x_t=x_in, y_t=None, out_var=None)
    for h in remaining:
        for c in [v for v in remaining if v is not h]:
            for cell in lstm_candidates(products, weights, h.inside, body, outer):
                if checks(cell, weights, body, step, [h, c], outer):
                    return cell, [h, c], x_in
        for cell in gru_candidates(products, weights, h.inside):
            if checks(cell, weights, body, step, [h], outer):
                return cell, [h], x_in
    return None


def _sequence_io(loop: Loop, outer_of: dict[str, str], by_name) -> StepIO:
    """The one read of the input sequence and the one write of the output per step, in either
    vocabulary (TF2's tensor lists, TF1's tensor arrays). Freezing drops the write when only
    the final state is used."""
    body = loop.body
    reads = [n for n in body.values() if n.op in _READS]
    masks = [n for n in reads if _element_dtype(n) == "bool"]  # Keras's mask, read per step
    reads = [n for n in reads if all(n is not m for m in masks)]
    writes = [n for n in body.values() if n.op in _WRITES]
    if len(reads) != 1 or len(masks) > 1 or len(writes) > 1:
        raise NotRNN("not one read and at most one write per step")
    read = reads[0]
    if not all(_counts_steps(r.inputs[1], loop, by_name) for r in [read, *masks]):
        raise NotRNN("the sequence is not read at the step index")
    # Keras 2 keeps only the last output, overwriting element 0 of a one-element list
    every_step = bool(writes) and _counts_steps(writes[0].inputs[1], loop, by_name)
    lookup = {**by_name, **body}
    index = writes and lookup.get(split_ref(through_identity(writes[0].inputs[1], lookup))[0])
    if writes and not every_step and (index is None or _const_scalar(index) != 0):
        raise NotRNN("the outputs are not written at the step index")
    time_major = _read_sequence(read, body, outer_of, by_name)
    masked = {}
    if masks:
        masked = {"mask_t": masks[0].output(0)}
        masked["mask"] = _read_sequence(masks[0], body, outer_of, by_name)
    if not writes:
        return StepIO(read.output(0), None, time_major, None, False, **masked)
    written = writes[0].output(0)
    out_vars = [v for v in loop.vars if through_identity(v.next, body) == written]
    if len(out_vars) != 1:
        raise NotRNN("output list")
    y_t = writes[0].inputs[2]
    return StepIO(read.output(0), y_t, time_major, out_vars[0], every_step, **masked)


def _element_dtype(read: Node):
    return read.attrs.get("dtype", read.attrs.get("element_dtype"))


def _read_sequence(read: Node, body, outer_of: dict[str, str], by_name) -> str:
    """The outer time-major tensor a step's read takes its rows from: the tensor a list was
    made from (TF2), or the one scattered into the array before the loop (TF1)."""
    source = outer_of.get(through_identity(read.inputs[0], body))
    source_node = by_name.get(split_ref(through_identity(source or "", by_name))[0])
    if read.op == "TensorListGetItem" and source_node is not None:
        if source_node.op != "TensorListFromTensor":
            raise NotRNN("input list not from a tensor")
        return source_node.inputs[0]
    if source_node is not None and source_node.op == "TensorArrayV3":
        # the read's flow input is the scatter that filled the array
        flow = outer_of.get(through_identity(read.inputs[2], body), "")
        scatter = by_name.get(split_ref(through_identity(flow, by_name))[0])
        if scatter is None or scatter.op != "TensorArrayScatterV3":
            raise NotRNN("input array not scattered")
        if scatter.inputs[0] != source_node.output(0):
            raise NotRNN("input array scattered into another array")
        return scatter.inputs[2]
    raise NotRNN("input sequence")


def _counts_steps(index: str, loop: Loop, by_name) -> bool:
    """Whether `index` is the loop's time: a variable starting at 0, incremented by 1."""
    lookup = {**by_name, **loop.body}
    index = through_identity(index, lookup)
    for v in loop.vars:
        if v.inside != index:
            continue
        start = lookup.get(split_ref(through_identity(v.init, lookup))[0])
        step = lookup.get(split_ref(through_identity(v.next, lookup))[0])
        if start is None or step is None or step.op not in ("Add", "AddV2"):
            return False
        operands = [through_identity(t, lookup) for t in step.inputs]
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


def _rewrite(
    loop: Loop, layers: list, x: str, batch_major: bool, io: StepIO, by_name, nodes, mask=None
):
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
    roles.update({id(v): (len(layers) - 1, "last") for v in io.aliases})
    last_times = _last_times(loop, readers, by_name)
    for v in loop.vars:
        outs = follow(v.out, readers, by_name) if v.out else []
        if v is io.out_var:
            top = uses[-1]
            for node in outs:
                if node.op == "TensorArrayReadV3" and node.inputs[1] in last_times:
                    top["last"].append(node.output(0))  # Keras 2: output_ta.read(last_time - 1)
                    continue
                stacked = node.op in STACKS and node.inputs[STACKS[node.op]]
                if not stacked or through_identity(stacked, by_name) != v.out:
                    raise NotRNN("output list read otherwise than stacked")
                kinds = [stacked_use(u, by_name) for u in follow(node.output(0), readers, by_name)]
                if "time_major" in kinds:
                    top["time_major"].append(node.output(0))
                for user, kind in zip(follow(node.output(0), readers, by_name), kinds):
                    if kind != "time_major":
                        top[kind].append(user.output(0))
        elif id(v) in roles:
            k, role = roles[id(v)]
            uses[k][role] += [v.out] if readers.get(v.out) else []
        elif outs and not all(n.output(0) in last_times for n in outs):
            raise NotRNN("a loop counter is read after the loop")
    if not io.every_step and (uses[-1]["seq"] or uses[-1]["time_major"]):
        raise NotRNN("the sequence of a loop that keeps only its last output")
    new, rename = [], {}
    taken = set(by_name)
    for k, (cell, _, _) in enumerate(layers):
        name = node_name(loop.name, "lstm" if cell.op == LSTM_OP else "gru", taken)
        states = layers[k][1]
        initial = [] if all(is_zeros(v.init, by_name) for v in states) else [v.init for v in states]
        made, renamed = lifted_nodes(
            name, cell, x, batch_major, uses[k], by_name, k + 1 < len(layers), mask, initial
        )
        taken.update(n.name for n in made)
        new += made
        rename.update(renamed)
        x, batch_major = made[0].output(0), True  # the next cell reads this one's sequence
    return new, rename


def _last_times(loop: Loop, readers, by_name) -> set[str]:
    """The tensors `last_time - 1` after the loop, its step counter's final value less one:
    where Keras 2 reads the last output back from the array."""
    found = set()
    for v in loop.vars:
        if v.out is None or not _counts_steps(v.inside, loop, by_name):
            continue
        for node in follow(v.out, readers, by_name):
            if node.op in ("Sub", "AddV2", "Add") and len(node.inputs) == 2:
                other = by_name.get(split_ref(node.inputs[1])[0])
                step = -1 if node.op == "Sub" else 1
                if other is not None and _const_scalar(other) == -step:
                    found.add(node.output(0))
    return found


def _readers(nodes: list[Node], members: set[str]) -> dict[str, list[Node]]:
    found: dict[str, list[Node]] = {}
    for node in nodes:
        if node.name in members:
            continue
        for t in node.inputs:
            found.setdefault(t, []).append(node)
    return found
