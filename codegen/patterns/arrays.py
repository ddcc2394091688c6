"""TensorArrays, as passes/arrays.py leaves them, in keras.ops: an array is `keras.ops.zeros` of
its shape, a write `keras.ops.slice_update` of one row, a scatter `keras.ops.scatter_update` of
rows, a read or gather `keras.ops.take` of rows. An array a loop starts from is allocated by
that loop (patterns/control.py), one a scatter starts from by the scatter: a keras.ops call of
no model tensor would be a constant computed once, not a node of the model."""

from __future__ import annotations

from ..graph import Node
from ..passes.arrays import ARRAY, CONCAT, GATHER, READ, SCATTER, SPLIT, WRITE
from ..spec import Call
from .ops import operands
from .registry import Matcher, fallback


@fallback(ARRAY)
def tensor_array(node: Node, m: Matcher):
    """An array read before anything writes it: zeros of its static shape. A loop or a scatter
    that starts from it allocates it instead (a layer of no inputs would be no model node)."""
    users = m.graph.users(node.output(0))
    if len(users) == 1 and users[0].op in ("While", SCATTER):
        return None
    shape = m.shape(node.output(0))
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    dtype = str(node.attrs.get("dtype", "float32"))
    return m.ops([node], Call("zeros", (tuple(shape),), (("dtype", dtype),)), [])


@fallback(WRITE)
def tensor_array_write(node: Node, m: Matcher):
    shape, value_shape = m.shape(node.inputs[0]), m.shape(node.inputs[2])
    rank = len(shape) if shape is not None else None
    if rank is None and value_shape is not None:
        rank = len(value_shape) + 1
    if rank is None:
        return None
    (contents, index, value), inputs = operands(m, node.inputs)
    start = (index, *[0] * (rank - 1))
    expr = Call("slice_update", (contents, start, Call("expand_dims", (value, 0))))
    return m.ops([node], expr, inputs)


@fallback(READ, GATHER)
def tensor_array_read(node: Node, m: Matcher):
    refs, inputs = operands(m, node.inputs)
    return m.ops([node], Call("take", tuple(refs), (("axis", 0),)), inputs)


@fallback(SCATTER)
def tensor_array_scatter(node: Node, m: Matcher):
    """Rows replaced; an array of unknown shape scattered into (TensorArray.unstack) is
    allocated here, like the rows scattered."""
    array, nodes = m.node(node.inputs[0]), [node]
    fresh = array.op == ARRAY and m.graph.users(node.inputs[0]) == [node]
    shape = m.shape(node.inputs[0])
    size = m.ints(array.inputs[0]) if fresh else None
    if size is not None and shape is not None and all(isinstance(d, int) for d in shape):
        (indices, values), inputs = operands(m, node.inputs[1:])
        dtype = str(array.attrs.get("dtype", "float32"))
        contents, nodes = Call("zeros", (tuple(shape),), (("dtype", dtype),)), [array, node]
    elif size is not None:
        (indices, values), inputs = operands(m, node.inputs[1:])
        first = Call("zeros", ((int(size[0]),),), (("dtype", "int32"),))
        rows = Call("take", (values, first), (("axis", 0),))  # the first row, size times
        contents, nodes = Call("zeros_like", (rows,)), [array, node]
    else:
        (contents, indices, values), inputs = operands(m, node.inputs)
    expr = Call("scatter_update", (contents, Call("expand_dims", (indices, -1)), values))
    return m.ops(nodes, expr, inputs)


@fallback(SPLIT)
def tensor_array_split(node: Node, m: Matcher):
    """Equal pieces stacked: a reshape when the pieces' other dimensions are known."""
    count, shape = int(node.attrs.get("count", 0)), m.shape(node.inputs[0])
    (value,), inputs = operands(m, node.inputs[:1])
    if shape is not None and shape and all(isinstance(d, int) for d in shape[1:]):
        return m.ops([node], Call("reshape", (value, (count, -1, *shape[1:]))), inputs)
    expr = Call("stack", (Call("split", (value, count)),))
    return m.ops([node], expr, inputs)


@fallback(CONCAT)
def tensor_array_concat(node: Node, m: Matcher):
    """The elements end to end along their first axis (their other dimensions from the
    contents' shape, or the graph's element shape: a loop's results have no inferred one)."""
    shape, element = m.shape(node.inputs[0]), node.attrs.get("element_shape")
    rest = shape[2:] if shape is not None and len(shape) >= 2 else None
    if rest is None or not all(isinstance(d, int) for d in rest):
        rest = element[1:] if element else None
    if rest is None or not all(isinstance(d, int) for d in rest):
        return None
    (contents,), inputs = operands(m, node.inputs)
    return m.ops([node], Call("reshape", (contents, (-1, *rest))), inputs)
