"""Control flow left after passes/control.py, and what training-time control flow leaves in a
frozen graph, as keras.ops expressions.

A `While`/`StatelessWhile` (not a recurrent layer: passes/rnn/ lifts those first) becomes
`keras.ops.while_loop(lambda ...: cond, lambda ...: body, loop_vars)`, its condition and body
written out as keras.ops expressions of the loop variables (the keras.ops fallbacks translate
each op of the function bodies; a loop with an op they do not know is left to be reported). The
lambdas take every value they read as a loop variable, loop invariants included: Keras runs a
functional model's while_loop on real tensors, where a closure over the symbolic ones fails.

A value the step reads more than once (a P-Net's trunk under both its heads, a state both
carried and written) is computed once and named (spec.Lambda bindings): written as a tree it
would be computed once per reader. Ops that are layers outside a loop get their keras.ops
forms in a step from steps.py.

TensorArrays reach here as tensors (passes/arrays.py, patterns/arrays.py). The arrays a loop
starts from are allocated by it: zeros of their shape, or, where the graph leaves dimensions
unknown (the batch of a loop over a batch), zeros like the first value the loop writes, which
is computed once more from the loop's initial values (one step peeled): that costs one step's
arithmetic and gives every dimension exactly what the loop will write.

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
from ..passes.arrays import ARRAY, WRITE
from ..passes.control import resolve_control_flow
from ..passes.fold import Constants
from ..passes.frames import through_identity
from ..passes.inline import inline_functions
from ..passes.prune import IDENTITY_OPS
from ..spec import Call, Item, Kind, Lambda, Ref
from .registry import FALLBACKS, MAX_LITERAL, Matcher, fallback
from .norm import f32
from .ops import operands
from .steps import LOOP_FORMS, step_shapes

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
    inner = Matcher(graph, consts, step_shapes(graph, consts), m.namer, set())
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
