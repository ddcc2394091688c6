"""Control flow left after passes/control.py, and what training-time control flow leaves in a
frozen graph, as keras.ops expressions.

A `While`/`StatelessWhile` (not a recurrent layer: passes/rnn/ lifts those first) becomes
`keras.ops.while_loop(lambda ...: cond, lambda ...: body, loop_vars)`, its condition and body
written out as keras.ops expressions of the loop variables (the keras.ops fallbacks translate
each op of the function bodies; a loop with an op they do not know is left to be reported). The
lambdas take every value they read as a loop variable, loop invariants included: Keras runs a
functional model's while_loop on real tensors, where a closure over the symbolic ones fails.

TensorArrays reach here as tensors (passes/arrays.py): an array is `keras.ops.zeros` of its
shape, a write `keras.ops.slice_update` of one row, a scatter `keras.ops.scatter_update` of
rows. An array whose element shape the graph leaves partly unknown (the batch of a loop over a
batch) is allocated by the loop writing it, like the first value it writes: that value is
computed once more from the loop's initial values (one step peeled), which costs one step's
arithmetic and keeps every dimension exactly what the loop will write.

A FusedBatchNorm with is_training=True normalises with the statistics of the batch it is
given, not the moving ones: TF1 graphs frozen with the training branch taken, or a BatchNorm
frozen from a model called with training=True, compute exactly that at inference. A Keras
BatchNormalization does so only in training mode (and then updates its moving statistics), so
the layer pattern (norm.py) declines such nodes and they become the same arithmetic in
keras.ops: the mean and (biased) variance over every axis but the channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Graph2PyError
from ..graph import Graph, Node, split_ref
from ..names import RESERVED, Allocator, identifier
from ..optable.arrays import strided_slice_index
from ..passes.arrays import ARRAY, CONCAT, GATHER, READ, SCATTER, SPLIT, WRITE
from ..passes.control import resolve_control_flow
from ..passes.fold import Constants
from ..passes.frames import through_identity
from ..passes.inline import inline_functions
from ..passes.prune import IDENTITY_OPS
from ..passes.shapes import RULES, infer_shapes, shape_rule
from ..spec import Call, Item, Kind, Lambda, Ref
from .registry import FALLBACKS, MAX_LITERAL, Matcher, fallback
from .norm import f32
from .ops import operands

MAX_TERMS = 400  # calls and operands in a loop's written-out condition and body


@fallback("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def batch_statistics_norm(node: Node, m: Matcher):
    if not node.attrs.get("is_training") or any(m.graph.users(node.output(i)) for i in range(1, 6)):
        return None
    fmt = node.attrs.get("data_format", "NHWC")
    shape = m.shape(node.inputs[0])
    rank = len(shape) if shape is not None else len(fmt)
    if fmt not in ("NHWC", "NCHW", "NDHWC", "NCDHW") or rank != len(fmt):
        return None
    channels = fmt.index("C")
    axes = tuple(i for i in range(rank) if i != channels)
    (x, scale, offset), inputs = operands(m, node.inputs[:3])
    eps = float(node.attrs.get("epsilon", 1e-4))
    kw = (("axis", axes),)
    expr = Call(
        "batch_normalization",
        (x, Call("mean", (x,), kw), Call("var", (x,), kw), channels - rank),
        (("offset", offset), ("scale", scale), ("epsilon", f32(eps))),
    )
    return m.ops([node], expr, inputs)


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


# What a loop body computes with keras.ops where the model would have a layer (whose weights a
# loop cannot own: they enter the loop as its variables) or where the ops path needs a constant
# (an image pyramid resizes to a size computed each step: the body runs on real tensors).
LOOP_FORMS: dict[str, list] = {}


def _loop_form(*ops: str):
    def register(fn):
        for op in ops:
            LOOP_FORMS.setdefault(op, []).append(fn)
        return fn

    return register


@_loop_form("Conv2D")
def _conv(node: Node, m: Matcher):
    strides, dilations = node.attrs.get("strides"), node.attrs.get("dilations") or [1, 1, 1, 1]
    padding = node.attrs.get("padding")
    if node.attrs.get("data_format", "NHWC") != "NHWC" or padding not in ("SAME", "VALID"):
        return None
    if not isinstance(strides, list) or len(strides) != 4 or len(dilations) != 4:
        return None
    if strides[1:3] != [1, 1] and dilations[1:3] != [1, 1]:
        return None  # Keras refuses both at once
    (x, kernel), inputs = operands(m, node.inputs[:2])
    kwargs = [("strides", tuple(strides[1:3])), ("padding", padding.lower())]
    if dilations[1:3] != [1, 1]:
        kwargs.append(("dilation_rate", tuple(dilations[1:3])))
    return m.ops([node], Call("conv", (x, kernel), tuple(kwargs)), inputs)


@_loop_form("MaxPool", "AvgPool")
def _pool(node: Node, m: Matcher):
    ksize, strides, padding = (node.attrs.get(k) for k in ("ksize", "strides", "padding"))
    if node.attrs.get("data_format", "NHWC") != "NHWC" or padding not in ("SAME", "VALID"):
        return None
    if not isinstance(ksize, list) or not isinstance(strides, list) or len(ksize) != 4:
        return None
    if ksize[0] != 1 or ksize[3] != 1 or len(strides) != 4:
        return None
    fn = "max_pool" if node.op == "MaxPool" else "average_pool"
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = (("strides", tuple(strides[1:3])), ("padding", padding.lower()))
    return m.ops([node], Call(fn, (x, tuple(ksize[1:3])), kwargs), inputs)


@_loop_form("StridedSlice")
def _strided_slice(node: Node, m: Matcher):
    """A slice of a tensor whose rank the step leaves unknown (a resized image's maps): the
    index does not depend on it, and the body runs on real tensors."""
    bounds = [m.ints(t) for t in node.inputs[1:4]]
    if bounds[0] is None:
        return _element_at(node, m)
    if any(b is None for b in bounds):
        return None
    try:
        index = strided_slice_index(node, *bounds, 0)
    except ValueError:
        return None
    if len(index) == 1 and isinstance(index[0], slice):
        index = (*index, Ellipsis)  # as patterns/ops.py writes a lone slice
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Item(x, index), inputs)


def _element_at(node: Node, m: Matcher):
    """`x[i]` or `x[i, j]` at indices the step computes (a StridedSlice of begin Pack(i),
    every axis shrunk): one take per axis."""
    begin = m.node(node.inputs[1])
    rank = len(begin.inputs)
    every = (1 << rank) - 1
    masks = [node.attrs.get(f"{k}_mask", 0) for k in ("begin", "end", "ellipsis", "new_axis")]
    if begin.op != "Pack" or node.attrs.get("shrink_axis_mask", 0) != every or any(masks):
        return None
    if m.ints(node.inputs[3]) != [1] * rank:
        return None
    refs, inputs = operands(m, [node.inputs[0], *begin.inputs])
    expr = refs[0]
    for index in refs[1:]:
        expr = Call("take", (expr, index), (("axis", 0),))
    return m.ops([node], expr, inputs)


@_loop_form("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(node: Node, m: Matcher):
    """To a size computed in the step: keras.ops.image.resize samples at half-pixel centres,
    so only TF's half_pixel_centers resize agrees (as patterns/ops.py requires too)."""
    if not node.attrs.get("half_pixel_centers") or node.attrs.get("align_corners"):
        return None
    pack = m.node(node.inputs[1])
    if pack.op == "Pack" and len(pack.inputs) == 2:  # tf.stack([height, width])
        (x, height, width), inputs = operands(m, [node.inputs[0], *pack.inputs])
        hw = (height, width)
    else:
        (x, size), inputs = operands(m, node.inputs[:2])
        hw = (Item(size, (0,)), Item(size, (1,)))
    kwargs = (("interpolation", "nearest"),) if node.op == "ResizeNearestNeighbor" else ()
    return m.ops([node], Call("image.resize", (x, hw), kwargs), inputs)


@fallback("While", "StatelessWhile")
def while_loop(node: Node, m: Matcher):
    dtypes = node.attrs.get("T")
    count = len(node.inputs)
    if not isinstance(dtypes, list) or len(dtypes) != count:
        return None
    shapes = node.attrs.get("output_shapes")
    if not isinstance(shapes, list) or len(shapes) != count:
        shapes = [m.shape(t) for t in node.inputs]
    frame = node.attrs.get("_frame")
    params = _param_names(node)
    started: dict[int, Node] = {}  # loop variable -> the array it allocates (see above)
    peeled: dict[int, Node] = {}  # those of them allocated like the first value written
    if isinstance(frame, dict):  # TF1 frames, read by passes/control.py
        cond = _written_out(_frame_graph(frame, dtypes, shapes, [frame["cond"]]), m, params)
        started = _started_arrays(node, m)
        peeled = {k: a for k, a in started.items() if not _static(m.shape(a.output(0)))}
        graph = _frame_graph(frame, dtypes, shapes, frame["results"], peeled)
        body = _written_out(graph, m, params)
    else:
        library = node.attrs.get("_library")
        graphs = [
            _function_graph(library, node.attrs.get(key), dtypes, shapes)
            for key in ("cond", "body")
        ]
        cond, body = (_written_out(g, m, params) for g in graphs)
    if cond is None or body is None or len(cond.results) != 1:
        return None
    if len(body.results) != count + len(peeled):
        return None
    inputs: list[str] = []
    loop_vars = []
    for k, (tensor, dtype) in enumerate(zip(node.inputs, dtypes)):
        if k in started and k not in peeled:
            shape, dtype = m.shape(tensor), str(started[k].attrs.get("dtype", "float32"))
            loop_vars.append(Call("zeros", (tuple(shape),), (("dtype", dtype),)))
            continue
        if k in peeled:
            loop_vars.append(None)
            continue
        ref = m.operand(tensor, inputs)
        if not isinstance(ref, (Ref, Call)):  # a literal is no loop variable to Keras
            ref = Call("convert_to_tensor", (ref,), (("dtype", dtype),))
        loop_vars.append(ref)
    firsts = zip(peeled.items(), body.results[count:], body.shapes[count:])
    for (k, array), first, shape in firsts:
        size = int(m.ints(array.inputs[0])[0])
        if _static(shape):
            dtype = str(array.attrs.get("dtype", "float32"))
            loop_vars[k] = Call("zeros", ((size, *shape),), (("dtype", dtype),))
            continue
        first = _expanded(first, body.bindings, count)
        if _reads(first, set(peeled)) or _size(first) > MAX_TERMS:
            return None  # the first value written reads an array not yet allocated
        like = Call("expand_dims", (_substitute(first, loop_vars), 0))
        loop_vars[k] = Call("zeros_like", (Call("repeat", (like, size), (("axis", 0),)),))
    if not inputs:
        return None
    results = body.results[:count]
    if count == 1:  # one loop variable: no tuples in or out
        results, loop_vars = results[0], loop_vars[0]
    else:
        results, loop_vars = tuple(results), tuple(loop_vars)
    expr = Call(
        "while_loop",
        (
            Lambda(params, cond.results[0], cond.bindings),
            Lambda(params, results, body.bindings),
            loop_vars,
        ),
    )
    covered = [*started.values(), node]
    return m.ops(covered, expr, inputs, [node.output(i) for i in range(count)])


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _started_arrays(node: Node, m: Matcher) -> dict[int, Node]:
    """Loop variable -> the TensorArray it starts as, for the arrays only this loop reads: the
    loop allocates them (zeros of their shape, or like the first value written)."""
    found = {}
    for k, tensor in enumerate(node.inputs):
        producer = m.node(tensor)
        if producer.op != ARRAY:
            continue
        size = m.ints(producer.inputs[0])
        if size is not None and len(size) == 1 and m.graph.users(tensor) == [node]:
            found[k] = producer
    return found


def _reads(expr, refs: set[int]) -> bool:
    if isinstance(expr, Ref):
        return expr.index in refs
    if isinstance(expr, Call):
        return any(_reads(a, refs) for a in expr.args) or any(
            _reads(v, refs) for _, v in expr.kwargs
        )
    if isinstance(expr, Item):
        return _reads(expr.value, refs)
    if isinstance(expr, (list, tuple)):
        return any(_reads(v, refs) for v in expr)
    return False


def _param_names(node: Node) -> tuple[str, ...]:
    """The loop variables named after what enters the loop (`loop_counter`, `input_`)."""
    names = Allocator(RESERVED)
    return tuple(
        names.claim(identifier(split_ref(t)[0].rsplit("/", 1)[-1]) or "v") for t in node.inputs
    )


# A loop's condition or body as a graph: Placeholders ARG<i> for the loop variables, Identity
# nodes RET<i> reading the results. The names cannot clash with graph nodes (no `{` in TF's).
ARG, RET = "{arg}", "{ret}"


def _arguments(dtypes: list, shapes: list) -> list[Node]:
    return [
        Node(f"{ARG}{i}", "Placeholder", [], {"dtype": d, "shape": s})
        for i, (d, s) in enumerate(zip(dtypes, shapes))
    ]


def _function_graph(library, fname, dtypes: list, shapes: list) -> Graph | None:
    """Function `fname` of the library called on the loop variables, inlined."""
    fdef = library.get(fname) if isinstance(library, dict) and isinstance(fname, str) else None
    if fdef is None or len(fdef.signature.input_arg) != len(dtypes):
        return None
    count = len(fdef.signature.output_arg)
    args = _arguments(dtypes, shapes)
    call = Node(
        "{call}",
        "PartitionedCall",
        [a.output() for a in args],
        {"f": fname, "Tout": [None] * count},
    )
    rets = [Node(f"{RET}{i}", "Identity", [call.output(i)]) for i in range(count)]
    try:
        return inline_functions(Graph([*args, call, *rets], library, "loop"))
    except Graph2PyError:
        return None


def _frame_graph(
    frame: dict, dtypes: list, shapes: list, results: list[str], peeled: dict | None = None
) -> Graph | None:
    """The nodes of a TF1 frame computing `results`, reading the loop variables' tensors
    inside the frame (a Merge's output in the condition, a Switch's in the body) as ARG<i>;
    then, for each loop variable in `peeled`, the first value written into it."""
    args = _arguments(dtypes, shapes)
    arg_of = frame["args"]

    def ref(tensor: str) -> str:
        return args[arg_of[tensor]].output() if tensor in arg_of else tensor

    nodes = [Node(n.name, n.op, [ref(t) for t in n.inputs], n.attrs) for n in frame["nodes"]]
    results = list(results)
    by_name = {n.name: n for n in nodes}
    for k in peeled or ():
        writes = [
            n
            for n in nodes
            if n.op == WRITE and through_identity(n.inputs[0], by_name) == args[k].output()
        ]
        if len(writes) != 1:
            return None
        results.append(writes[0].inputs[2])
    rets = [Node(f"{RET}{i}", "Identity", [ref(t)]) for i, t in enumerate(results)]
    try:
        return Graph([*args, *nodes, *rets], source="loop")
    except Graph2PyError:
        return None


@dataclass
class Written:
    """A condition's or body's results as keras.ops expressions of the lambda's parameters
    and of `bindings`, the values read more than once (see spec.Lambda); `shapes` are the
    results' static shapes, as far as the step's shape inference knows them."""

    results: list
    bindings: tuple
    shapes: list


def _written_out(graph: Graph | None, m: Matcher, params: tuple[str, ...]) -> Written | None:
    """The RET<i> results of `graph` as keras.ops expressions whose Refs name the loop
    variables (`params`) and the bindings; None if an op has no keras.ops form or the code
    would be huge. Written twice: the first pass counts how often each node's value is read,
    the second names those read more than once, so that no step computes anything twice."""
    if graph is None:
        return None
    try:
        graph = resolve_control_flow(graph)  # a condition inside the loop: selects
    except Graph2PyError:
        return None
    consts = Constants(graph)
    inner = Matcher(graph, consts, _step_shapes(graph, consts), m.namer, set())
    rets = sorted(
        (n for n in graph if n.name.startswith(RET)), key=lambda n: int(n.name[len(RET) :])
    )
    uses: dict[str, int] = {}
    try:
        _translate(graph, consts, inner, rets, uses, None, params)
        shared = {name for name, count in uses.items() if count > 1}
        results, bindings = _translate(graph, consts, inner, rets, {}, shared, params)
    except (_NoForm, RecursionError):
        return None
    if _size(results) + _size([v for _, v in bindings]) > MAX_TERMS:
        return None
    shapes = [inner.shape(r.inputs[0]) for r in rets]
    return Written(results, tuple(bindings), shapes)


# Ops whose other outputs have output 0's shape. Shape inference knows output 0 only; a step
# reads the others (TopKV2's indices) as often, and the arrays it writes need static shapes.
_SAME_SHAPED = {"TopKV2": 2, "Unpack": None, "Split": None}


def _top_k_shape(node, ins, c):
    k = c.scalar(node.inputs[1])
    return None if ins[0] is None or k is None else (*ins[0][:-1], int(k))


def _resize_shape(node, ins, c):
    size = c.ints(node.inputs[1])
    if ins[0] is None or len(ins[0]) != 4:
        return None
    return (ins[0][0], *(size if size is not None and len(size) == 2 else (None, None)), ins[0][3])


# Shapes a step needs and the op table does not give yet (without them an image pyramid's boxes
# have no static shape): set here unless a record has one.
for _ops, _fn in (
    (("TopKV2",), _top_k_shape),
    (("ResizeBilinear", "ResizeNearestNeighbor"), _resize_shape),
):
    for _op in _ops:
        if shape_rule(_op) is None:
            RULES[_op] = _fn


def _step_shapes(graph: Graph, consts: Constants) -> dict:
    """Shapes in a loop step, every output of the ops above included: inferred, those outputs
    set, inferred again."""
    shapes = infer_shapes(graph, consts)
    extra = {}
    for node in graph:
        if node.op in _SAME_SHAPED and shapes.get(node.output(0)) is not None:
            count = _SAME_SHAPED[node.op] or int(
                node.attrs.get("num", node.attrs.get("num_split", 1))
            )
            extra.update({node.output(k): shapes[node.output(0)] for k in range(1, count)})
    if not extra:
        return shapes
    consts.shapes.update(extra)
    return infer_shapes(graph, consts)


def _translate(graph: Graph, consts, inner: Matcher, rets, uses: dict, shared, params):
    """(results, bindings): one pass of `_written_out`, counting reads into `uses` and naming
    the nodes in `shared` (None: the counting pass)."""
    exprs: dict[str, Any] = {}
    for node in graph:
        if node.name.startswith(ARG):
            exprs[node.output()] = Ref(int(node.name[len(ARG) :]))
    names = Allocator(RESERVED)
    for p in params:
        names.claim(p)
    bindings: list[tuple[str, Any]] = []

    def origin(tensor: str) -> str:
        for _ in range(64):
            name, port = split_ref(tensor)
            node = graph.nodes[name]
            if node.op not in IDENTITY_OPS or port >= len(node.inputs):
                return name
            tensor = node.inputs[port]
        return split_ref(tensor)[0]

    def of(tensor: str):
        """The expression of a tensor, translating its producer first (depth first)."""
        source = origin(tensor)
        uses[source] = uses.get(source, 0) + 1
        if tensor in exprs:
            return exprs[tensor]
        name, port = split_ref(tensor)
        node = graph.nodes[name]
        if node.op in IDENTITY_OPS and port < len(node.inputs):
            uses[source] -= 1  # counted once, by the reader of the forwarded tensor
            exprs[tensor] = of(node.inputs[port])
            return exprs[tensor]
        value = consts.value(tensor)
        if value is not None:
            exprs[tensor] = _literal(value)
            return exprs[tensor]
        layer = next(
            (
                found
                for fn in [*LOOP_FORMS.get(node.op, ()), *FALLBACKS.get(node.op, ())]
                if (found := fn(node, inner)) is not None and found.kind is Kind.OPS
            ),
            None,
        )
        if layer is None:
            raise _NoForm(node.op)
        expr = _substitute(layer.expr, [of(t) for t in layer.inputs])
        if shared is not None and name in shared and not _trivial(expr):
            label = identifier(name.rsplit("/", 1)[-1]) or "value"
            bindings.append((names.claim(label), expr))
            expr = Ref(len(params) + len(bindings) - 1)
        for k, out in enumerate(layer.outputs):
            exprs[out] = expr if len(layer.outputs) == 1 else Item(expr, (k,))
        if tensor not in exprs:
            raise _NoForm(node.op)
        return exprs[tensor]

    results = [of(r.inputs[0]) for r in rets]
    return results, bindings


def _trivial(expr) -> bool:
    """A value as cheap to write again as to name: a parameter, a number, one item of one."""
    if isinstance(expr, Item):
        return _trivial(expr.value)
    return isinstance(expr, (Ref, int, float, bool))


def _expanded(expr, bindings: tuple, first: int):
    """`expr` with each binding Ref (index `first` and up) replaced by its expression."""
    if isinstance(expr, Ref) and expr.index >= first:
        return _expanded(bindings[expr.index - first][1], bindings, first)
    if isinstance(expr, Call):
        kwargs = tuple((k, _expanded(v, bindings, first)) for k, v in expr.kwargs)
        return Call(expr.fn, tuple(_expanded(a, bindings, first) for a in expr.args), kwargs)
    if isinstance(expr, Item):
        return Item(_expanded(expr.value, bindings, first), expr.index)
    if isinstance(expr, (list, tuple)):
        return type(expr)(_expanded(v, bindings, first) for v in expr)
    return expr


class _NoForm(Exception):
    pass


def _literal(value):
    if value.dtype.kind not in "biuf" or value.size > MAX_LITERAL:
        raise _NoForm("Const")
    if value.ndim == 0 and value.dtype.kind in "iuf":
        return value.item()  # a weakly typed Python number, as in the other keras.ops calls
    kwargs = () if value.dtype.name == "float32" else (("dtype", value.dtype.name),)
    return Call("convert_to_tensor", (value.tolist(),), kwargs)


def _substitute(expr, args: list):
    """`expr` with each Ref(i) replaced by args[i] (a nested Lambda's Refs are its own)."""
    if isinstance(expr, Ref):
        return args[expr.index]
    if isinstance(expr, Call):
        kwargs = tuple((k, _substitute(v, args)) for k, v in expr.kwargs)
        return Call(expr.fn, tuple(_substitute(a, args) for a in expr.args), kwargs)
    if isinstance(expr, Item):
        return Item(_substitute(expr.value, args), expr.index)
    if isinstance(expr, (list, tuple)):
        return type(expr)(_substitute(v, args) for v in expr)
    return expr


def _size(expr) -> int:
    if isinstance(expr, Call):
        return 1 + sum(_size(a) for a in expr.args) + sum(_size(v) for _, v in expr.kwargs)
    if isinstance(expr, Item):
        return 1 + _size(expr.value)
    if isinstance(expr, Lambda):
        return 1 + _size(expr.body)
    if isinstance(expr, (list, tuple)):
        return sum(_size(v) for v in expr)
    return 1
