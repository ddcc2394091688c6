"""TF1 TensorArrays as tensors: each array becomes the tensor of all its elements.

A TensorArrayV3 is a resource (its handle) plus a float scalar (its flow) that every write
returns and every read takes, only to order the accesses; in a while loop the handle enters as
a constant and the flow is carried like any loop variable. Keras has no resource, but a loop
can carry a tensor, so the flow becomes the array's contents: a `[size, *element]` tensor,
zeros to start with (`_Graph2pyTensorArray`, in place of the flow), that each write returns
with one row replaced (`_Graph2pyArrayWrite`, keras.ops.slice_update), each scatter with rows
replaced (`_Graph2pyArrayScatter`), a split of equal pieces as those pieces stacked
(`_Graph2pyArraySplit`). Reads and gathers take rows of it (`_Graph2pyArrayRead`,
`_Graph2pyArrayGather`), Size is the array's constant size, Concat the rows end to end
(`_Graph2pyArrayConcat`); an unstack (a scatter of every row in order) is the value itself.
The handles and what only forwards them (their Enters) go. passes/frames.py and
passes/control.py then see ordinary loop variables, so the While node they make carries the
contents, and patterns/control.py writes keras.ops.while_loop over them.

Why preallocated: every backend's while loop needs its variables' shapes fixed from one step
to the next (JAX's always, TensorFlow's unless given shape invariants), so an array that grows
by concatenation cannot be a loop variable portably; a `[size, ...]` tensor updated in place by
slice_update keeps its shape. That needs the size. A TensorArray of constant size has it. One
of dynamic size (`size=0, dynamic_size=True`) written at the counter of a loop that runs a
constant number of times (`i < N`, i from 0 by 1) holds exactly N elements afterwards, as TF's
does, so it is preallocated to N (`_trip_bound`). Any other dynamic size depends on the data
(an NMS keeping what it finds, a map_fn over a batch): it is reported rather than given a
concatenation form that would hold on the TensorFlow backend only. Elements of different
shapes (infer_shape=False, read back by Concat) cannot share one tensor: slice_update refuses
the write when the model runs, it never computes something else.

An element shape comes from the graph (the array's `element_shape`, a Gather's or Concat's);
where dimensions stay unknown (the batch of a loop over a batch), patterns/control.py allocates
the zeros like the first value written.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..graph import Node, split_ref
from .frames import read_frames, through_identity
from .inline import drop_unread
from .shapes import rule

ARRAY = "_Graph2pyTensorArray"  # inputs: [size]; output: the zeros (TF's flow, output 1)
WRITE = "_Graph2pyArrayWrite"  # inputs: [contents, index, value]; output: the contents updated
SCATTER = "_Graph2pyArrayScatter"  # inputs: [contents, indices, values]
SPLIT = "_Graph2pyArraySplit"  # inputs: [value]; attr count: the equal pieces, stacked
CONCAT = "_Graph2pyArrayConcat"  # inputs: [contents]; output: the elements end to end
READ = "_Graph2pyArrayRead"  # inputs: [contents, index]; output: one element
GATHER = "_Graph2pyArrayGather"  # inputs: [contents, indices]; output: the elements stacked

ARRAY_OPS = {"TensorArrayV3"}
READS = {"TensorArrayReadV3", "TensorArrayGatherV3"}
FLOW_OPS = {  # the ops the flow of an array passes through, as any loop variable's value
    "Enter",
    "RefEnter",
    "Merge",
    "RefMerge",
    "Switch",
    "RefSwitch",
    "Identity",
    "NextIteration",
    "RefNextIteration",
    "Exit",
    "RefExit",
}
# What forwards a handle: TF1's while_loop enters it as a constant, a lowered TF2 while carries
# it as a loop variable (through Merge, whose first input is the Enter, and NextIteration).
HANDLE_OPS = {"Enter", "RefEnter", "Identity", "Switch", "Exit", "Merge", "NextIteration"}
USES = {  # op -> input index of its flow
    "TensorArrayReadV3": 2,
    "TensorArrayGatherV3": 2,
    "TensorArrayWriteV3": 3,
    "TensorArrayScatterV3": 3,
    "TensorArraySplitV3": 3,
    "TensorArraySizeV3": 1,
    "TensorArrayConcatV3": 1,
    "TensorArrayCloseV3": None,
}
UNSUPPORTED = {  # what gradients of arrays leave in a training graph: no inference use
    "TensorArrayGradV3",
    "TensorArrayGradWithShape",
    "TensorArray",
    "TensorArrayV2",
}


@rule(ARRAY)
def _array_shape(node, ins, c):
    size = c.ints(node.inputs[0]) if node.inputs else None
    element = node.attrs.get("element_shape")
    if size is None or len(size) != 1 or element is None:
        return None
    return (int(size[0]), *element)


@rule(READ)
def _read_shape(node, ins, c):
    return None if ins[0] is None else ins[0][1:]


@rule(GATHER)
def _gather_shape(node, ins, c):
    return None if ins[0] is None or ins[1] is None else (*ins[1], *ins[0][1:])


@rule(WRITE, SCATTER)
def _contents_shape(node, ins, c):
    return ins[0]


@rule(CONCAT)
def _concat_shape(node, ins, c):
    element = node.attrs.get("element_shape")
    if ins[0] is None or len(ins[0]) < 2:  # a loop's result: the graph's element shape
        return (None, *element[1:]) if element else None
    size, rows = ins[0][:2]
    return (size * rows if isinstance(rows, int) else None, *ins[0][2:])


@rule(SPLIT)
def _split_shape(node, ins, c):
    count = int(node.attrs.get("count", 0))
    if ins[0] is None or not ins[0]:
        return None
    rows = ins[0][0]
    return (count, rows // count if isinstance(rows, int) else None, *ins[0][1:])


def arrays_as_tensors(nodes: list[Node], source: str = "graph") -> list[Node]:
    """The node list with every TensorArrayV3 and its accesses rewritten as above."""
    if not any(n.op in ARRAY_OPS or n.op in UNSUPPORTED for n in nodes):
        return nodes
    bad = sorted({n.op for n in nodes if n.op in UNSUPPORTED})
    if bad:
        raise UnsupportedError(*(f"{source}: {op} has no inference form" for op in bad))
    by_name = {n.name: n for n in nodes}
    arrays = {n.name: n for n in nodes if n.op in ARRAY_OPS}
    handles = _handle_forwarders(nodes, by_name)
    accesses: dict[str, list[Node]] = {name: [] for name in arrays}
    problems = []
    for node in nodes:
        if node.op not in USES:
            continue
        array = _array_of(node.inputs[0], by_name)
        if array is None or array.name not in arrays:
            problems.append(
                f"{source}: {node.op} {node.name!r} reads no TensorArrayV3 graph2py can trace"
            )
            continue
        accesses[array.name].append(node)
    sizes, bounds = {}, {}
    loops = None
    for name, array in arrays.items():
        size = _const_int(array.inputs[0], by_name)
        if array.attrs.get("dynamic_size") and size is not None:
            loops = loops if loops is not None else read_frames(nodes, by_name)
            bound = _trip_bound(accesses[name], loops, by_name)
            size = max(size, bound) if bound is not None else None
            bounds[name] = size
        if size is None:
            problems.append(
                f"{source}: TensorArray {name!r} has no constant size and no loop that bounds"
                " it; graph2py preallocates arrays (see passes/arrays.py)"
            )
        sizes[name] = size
    if problems:
        raise UnsupportedError(*problems)
    dtypes = {}
    new: dict[str, list[Node]] = {}
    for name, array in arrays.items():
        dtype = array.attrs.get("dtype", "float32")
        dtypes[name] = dtype
        element = _element_shape(array, accesses[name])
        size_input = array.inputs[0]
        new[name] = []
        if name in bounds:  # a dynamic array, as large as its loop makes it
            new[name].append(_const(f"{name}/bound", np.array(bounds[name], np.int32)))
            size_input = new[name][0].output()
        new[name].append(
            Node(name, ARRAY, [size_input], {"dtype": dtype, "element_shape": element})
        )
        for access in accesses[name]:
            new[access.name] = _rewritten(access, dtype, element, sizes[name], source, by_name)
    flows = {f"{name}:1" for name in arrays}
    flows |= {a.output(0) for acc in accesses.values() for a in acc if a.op in _FLOW_OUT}
    retyped = _flow_carriers(nodes, flows, by_name, arrays, accesses, dtypes)
    contents = {f"{name}:1": f"{name}:0" for name in arrays}  # the flow becomes output 0
    for node in new.values():
        lengths = [n for n in node if n.name.endswith("/lengths") and n.op == "Const"]
        if lengths and node[0].op == CONCAT:
            contents[node[0].output(1)] = lengths[0].output()
    out = []
    for node in nodes:
        if node.name in handles:
            continue
        if node.name in new:
            out += new[node.name]
        elif node.name in retyped:
            out.append(
                Node(node.name, node.op, node.inputs, {**node.attrs, "T": retyped[node.name]})
            )
        else:
            out.append(node)
    for node in out:
        if any(t in contents for t in node.inputs):
            node.inputs = [contents.get(t, t) for t in node.inputs]
    # what only fed the handles or a stack's indices would look like model outputs
    return drop_unread(out, {split_ref(t)[0] for n in nodes for t in n.inputs})


_FLOW_OUT = {"TensorArrayWriteV3", "TensorArrayScatterV3", "TensorArraySplitV3"}


def _handle_forwarders(nodes: list[Node], by_name) -> set[str]:
    """The Enter/Identity/... nodes that only pass an array's handle on."""
    return {
        n.name
        for n in nodes
        if n.op in HANDLE_OPS and n.inputs and _array_of(n.inputs[0], by_name) is not None
    }


def _array_of(tensor: str, by_name) -> Node | None:
    """The TensorArrayV3 whose handle `tensor` is, through Enters and Identities."""
    for _ in range(64):
        name, port = split_ref(tensor)
        node = by_name.get(name)
        if node is None:
            return None
        if node.op in ARRAY_OPS:
            return node if port == 0 else None
        if node.op not in HANDLE_OPS or not node.inputs:
            return None
        tensor = node.inputs[0]
    return None


def _trip_bound(accesses: list[Node], loops: list, by_name) -> int | None:
    """The size a dynamic array reaches: it is only written, at the counter of a loop that
    runs a constant number of times (`i < N`, i from 0 by 1), so it holds N elements after
    it, as TF's would. None for any other use (a size the data decides is no shape a loop
    variable can have on every backend)."""
    if not accesses or any(
        a.op in ("TensorArrayScatterV3", "TensorArraySplitV3") for a in accesses
    ):
        return None
    writes = [a for a in accesses if a.op == "TensorArrayWriteV3"]
    if len(writes) != 1:
        return None
    write = writes[0]
    loop = next((l for l in loops if write.name in l.members), None)
    if loop is None:
        return None
    lookup = {**by_name, **loop.body}
    conds = [lookup[m] for m in loop.members if lookup[m].op == "LoopCond"]
    less = lookup.get(split_ref(conds[0].inputs[0])[0]) if len(conds) == 1 else None
    if less is None or less.op != "Less":
        return None
    counter, limit = (through_identity(t, lookup) for t in less.inputs)
    count = _const_int(limit, lookup)
    index = through_identity(write.inputs[1], lookup)
    for var in loop.vars:
        merge = lookup.get(split_ref(counter)[0])
        switch = lookup.get(split_ref(var.inside)[0])
        if merge is None or switch is None or switch.inputs[0] != counter or index != var.inside:
            continue
        step = lookup.get(split_ref(through_identity(var.next, lookup))[0])
        if step is None or step.op not in ("Add", "AddV2") or _const_int(var.init, lookup) != 0:
            return None
        operands = [through_identity(t, lookup) for t in step.inputs]
        if (
            var.inside not in operands
            or _const_int(operands[1 - operands.index(var.inside)], lookup) != 1
        ):
            return None
        return count
    return None


def _const_int(tensor: str, by_name) -> int | None:
    node = by_name.get(split_ref(tensor)[0])
    value = node.attrs.get("value") if node is not None and node.op == "Const" else None
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iu":
        return int(value.reshape(()))
    return None


def _element_shape(array: Node, accesses: list[Node]) -> tuple | None:
    """The elements' shape as far as the graph states it: the array's own, a Gather's, a
    Concat's (all but the first dimension), merged dimension by dimension."""
    shape = array.attrs.get("element_shape")
    for node in accesses:
        found = node.attrs.get("element_shape") if node.op == "TensorArrayGatherV3" else None
        if node.op == "TensorArrayConcatV3" and node.attrs.get("element_shape_except0"):
            found = (None, *node.attrs["element_shape_except0"])
        shape = _merge(shape, found)
    return tuple(shape) if shape is not None else None


def _merge(a, b):
    if a is None:
        return b
    if b is None or len(a) != len(b):
        return a
    return tuple(x if x is not None else y for x, y in zip(a, b))


def _is_range(indices: str, size: int, by_name) -> bool:
    """Whether `indices` is 0, 1, ..., size - 1, a constant or a Range of constants: every
    element in order (a scatter's value then has exactly `size` rows, TF checks it)."""
    node = by_name.get(split_ref(indices)[0])
    if node is not None and node.op == "Range" and len(node.inputs) == 3:
        bounds = [_const_int(t, by_name) for t in node.inputs]
        return bounds[::2] == [0, 1] and size in (
            bounds[1],
            _first_of_const(node.inputs[1], by_name),
        )
    value = node.attrs.get("value") if node is not None and node.op == "Const" else None
    return isinstance(value, np.ndarray) and np.array_equal(value, np.arange(size))


def _first_of_const(tensor: str, by_name) -> int | None:
    """`shape[0]` of a constant shape (TF folds a static Shape): a StridedSlice taking
    element 0 of a constant vector."""
    node = by_name.get(split_ref(tensor)[0])
    if node is None or node.op != "StridedSlice" or node.attrs.get("shrink_axis_mask") != 1:
        return None
    if [_const_int(t, by_name) for t in node.inputs[1:4]] != [0, 1, 1]:
        return None
    vector = by_name.get(split_ref(node.inputs[0])[0])
    value = vector.attrs.get("value") if vector is not None and vector.op == "Const" else None
    if (
        isinstance(value, np.ndarray)
        and value.ndim == 1
        and value.size
        and value.dtype.kind in "iu"
    ):
        return int(value[0])
    return None


def _every_row(indices: str, value: str, by_name) -> bool:
    """Whether `indices` is range(rows of `value`), as TensorArray.unstack computes it: the
    array then holds `value` itself (a run with more rows than the array's size is a TF error,
    one with fewer fails when the unwritten elements are read)."""
    node = by_name.get(split_ref(indices)[0])
    if node is None or node.op != "Range" or len(node.inputs) != 3:
        return False
    start, limit, delta = node.inputs
    if _const_int(start, by_name) != 0 or _const_int(delta, by_name) != 1:
        return False
    rows = by_name.get(split_ref(limit)[0])
    if rows is None or rows.op != "StridedSlice" or not rows.attrs.get("shrink_axis_mask"):
        return False
    if [_const_int(t, by_name) for t in rows.inputs[1:4]] != [0, 1, 1]:
        return False
    shape = by_name.get(split_ref(rows.inputs[0])[0])
    return shape is not None and shape.op == "Shape" and shape.inputs[:1] == [value]


def _rewritten(node: Node, dtype: str, element, size: int, source: str, by_name) -> list[Node]:
    flow = node.inputs[USES[node.op]] if USES[node.op] is not None else None
    if node.op == "TensorArrayWriteV3":
        return [Node(node.name, WRITE, [flow, node.inputs[1], node.inputs[2]], {"T": dtype})]
    if node.op == "TensorArrayScatterV3":
        every = _every_row(node.inputs[1], node.inputs[2], by_name) or _is_range(
            node.inputs[1], size, by_name
        )
        if every:  # TensorArray.unstack
            return [Node(node.name, "Identity", [node.inputs[2]], {"T": dtype})]
        return [Node(node.name, SCATTER, [flow, node.inputs[1], node.inputs[2]], {"T": dtype})]
    if node.op in READS:
        op = READ if node.op == "TensorArrayReadV3" else GATHER
        return [Node(node.name, op, [flow, node.inputs[1]], {"dtype": dtype})]
    if node.op == "TensorArraySizeV3":
        return [_const(node.name, np.array(size, np.int32))]
    if node.op == "TensorArraySplitV3":
        lengths = by_name.get(split_ref(node.inputs[2])[0])
        value = (
            lengths.attrs.get("value") if lengths is not None and lengths.op == "Const" else None
        )
        if not isinstance(value, np.ndarray) or value.size != size or len(set(value.ravel())) != 1:
            raise UnsupportedError(
                f"{source}: TensorArraySplitV3 {node.name!r} splits into pieces of lengths that"
                " are not constant and equal"
            )
        return [Node(node.name, SPLIT, [node.inputs[1]], {"T": dtype, "count": size})]
    if node.op == "TensorArrayConcatV3":
        made = [Node(node.name, CONCAT, [flow], {"T": dtype, "element_shape": element})]
        if element is not None and element and element[0] is not None:
            made.append(_const(f"{node.name}/lengths", np.full(size, element[0], np.int64)))
        return made
    return []  # TensorArrayCloseV3: nothing reads it


def _const(name: str, value: np.ndarray) -> Node:
    return Node(name, "Const", [], {"dtype": value.dtype.name, "value": value})


def _flow_carriers(nodes, flows, by_name, arrays, accesses, dtypes) -> dict[str, str]:
    """The loop plumbing carrying each array's contents, with the array's dtype (a flow is
    float32)."""
    of_flow: dict[str, str] = {}
    for name in arrays:
        of_flow[f"{name}:1"] = dtypes[name]
        for access in accesses[name]:
            if access.op in _FLOW_OUT:
                of_flow[access.output(0)] = dtypes[name]
    users: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            users.setdefault(t, []).append(node)
    retyped: dict[str, str] = {}
    stack = list(of_flow.items())
    while stack:
        tensor, dtype = stack.pop()
        for user in users.get(tensor, []):
            if user.op in FLOW_OPS and user.name not in retyped:
                retyped[user.name] = dtype
                stack += [(user.output(p), dtype) for p in range(2)]
    return retyped
