"""Inline function calls (PartitionedCall, StatefulPartitionedCall) into the main graph.

TF2 freezes some layers as calls into the graph's function library (Keras 3 compiles grouped
convolutions with XLA, for one). Patterns match on plain graph structure, so the bodies are
spliced in, named `<call node>/<body node>` (with a `_1` suffix where the graph already has
that name: TF names a cond's output Identity `cond/Identity`, as a branch may name its own);
the call's outputs become aliases of the body's. passes/control.py turns the branches of
If/Case it resolves into such calls.
"""

from __future__ import annotations

from ..errors import BadInputError
from ..graph import Graph, Node, decode_node, split_ref, tensor_ref
from .fold import STORED_ATTR

CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall"}
# Output argument names of multi-output ops, to turn `node:arg:i` into a flat output index.
_OUTPUT_ARGS = {
    "FusedBatchNorm": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"],
    "FusedBatchNormV2": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"],
    "FusedBatchNormV3": [
        "y",
        "batch_mean",
        "batch_variance",
        "reserve_space_1",
        "reserve_space_2",
        "reserve_space_3",
    ],
    "TopKV2": ["values", "indices"],
    "Unique": ["y", "idx"],
}
MAX_DEPTH = 16
# Nodes one inlining may splice in, in all. Depth alone does not bound them: a function that
# calls the next one four times, sixteen levels deep, is 4**16 bodies from a file of 2 KB. The
# largest graphs graph2py converts have a few hundred thousand nodes.
MAX_INLINED = 1_000_000


def inline_functions(graph: Graph) -> Graph:
    """`graph` with every function call replaced by the function's body, level by level, at
    most MAX_DEPTH levels deep; refused before anything is inlined when the bodies would come
    to more than MAX_INLINED nodes."""
    produced = inlined_size(graph)
    if produced > MAX_INLINED:
        raise BadInputError(
            f"{graph.source}: inlining its function calls would make {produced:,} nodes, "
            f"more than the {MAX_INLINED:,} graph2py inlines (functions that call others "
            "several times each, nested)"
        )
    for _ in range(MAX_DEPTH):
        if not any(n.op in CALL_OPS for n in graph):
            return graph
        graph = _inline_once(graph)
    raise BadInputError(f"function calls nest deeper than {MAX_DEPTH} levels")


def inlined_size(graph: Graph) -> int:
    """How many nodes inlining every call in `graph` splices in: each called function's body
    and, in turn, the bodies its own calls splice in, MAX_DEPTH levels deep (deeper is an
    error of its own). Counted on the function library, each function once per level, so a
    library of exponential size is measured without being expanded."""
    sizes: dict[tuple[str, int], int] = {}

    def size(name, levels: int) -> int:
        fdef = graph.functions.get(name) if isinstance(name, str) else None
        if fdef is None or levels == 0:
            return 0
        if (name, levels) not in sizes:
            calls = [_callee(n) for n in fdef.node_def if n.op in CALL_OPS]
            sizes[name, levels] = len(fdef.node_def) + sum(size(c, levels - 1) for c in calls)
        return sizes[name, levels]

    return sum(size(n.attrs.get("f"), MAX_DEPTH) for n in graph if n.op in CALL_OPS)


def _callee(proto) -> str | None:
    """The function a call's NodeDef names (reading `attr["f"]` of a proto would add it)."""
    return proto.attr["f"].func.name if "f" in proto.attr else None


def _inline_once(graph: Graph) -> Graph:
    nodes: list[Node] = []
    alias: dict[str, str] = {}
    problems: list[str] = []
    taken = set(graph.nodes)
    spliced: set[str] = set()  # body nodes only unread call outputs may need
    for node in graph:
        if node.op not in CALL_OPS:
            nodes.append(node)
            continue
        body, outputs, found = _expand(graph, node, taken)
        nodes += body
        alias.update(outputs)
        problems += found
        read = [t for t in outputs if graph.users(t)]
        if read:  # a call nobody reads is an output itself: keep all it returns
            spliced.update(n.name for n in body)
            spliced.difference_update(split_ref(outputs[t])[0] for t in read)
    if problems:
        raise BadInputError(*problems[:20])
    nodes = [Node(n.name, n.op, [_resolve(alias, t) for t in n.inputs], n.attrs) for n in nodes]
    return Graph(_drop_unread(nodes, spliced), graph.functions, graph.source)


def _drop_unread(nodes: list[Node], candidates: set[str]) -> list[Node]:
    """Without the body nodes that feed only call outputs nobody reads (a TF2 cond branch
    returns its intermediates for the gradient), which would otherwise look like outputs."""
    return drop_unread(nodes, candidates)


def drop_unread(nodes: list[Node], candidates: set[str]) -> list[Node]:
    """`nodes` less the candidates nothing reads, and then the candidates only those read,
    and so on: one sweep, counting each node's readers."""
    readers: dict[str, int] = {}
    for node in nodes:
        for t in node.inputs:
            name = split_ref(t)[0]
            readers[name] = readers.get(name, 0) + 1
    by_name = {n.name: n for n in nodes}
    stack = [n.name for n in nodes if n.name in candidates and not readers.get(n.name)]
    dropped: set[str] = set()
    while stack:
        name = stack.pop()
        if name in dropped:
            continue
        dropped.add(name)
        for t in by_name[name].inputs:
            source = split_ref(t)[0]
            readers[source] -= 1
            if not readers[source] and source in candidates and source in by_name:
                stack.append(source)
    return [n for n in nodes if n.name not in dropped] if dropped else nodes


def _resolve(alias: dict[str, str], tensor: str) -> str:
    """Follow aliases: a function that returns its argument passes on whatever the argument
    was, possibly another call's output. A loop of such calls is reported, not followed."""
    seen = set()
    while tensor in alias:
        if tensor in seen:
            raise BadInputError(
                f"function calls return each other's outputs in a loop at {tensor!r}"
            )
        seen.add(tensor)
        tensor = alias[tensor]
    return tensor


def _expand(
    graph: Graph, node: Node, taken: set[str]
) -> tuple[list[Node], dict[str, str], list[str]]:
    """The body of the function `node` calls, renamed under the call: (nodes, {call output:
    body tensor}, problems). The function is as untrusted as the graph: its signature must
    match the call, and every reference in it must name an argument or a body output."""
    fname = node.attrs.get("f")
    fdef = graph.functions.get(fname)
    if fdef is None:
        raise BadInputError(
            f"node {node.name!r} calls function {fname!r}, which the graph does not define"
        )
    where = f"{graph.source}: function {fname!r} (called by node {node.name!r})"
    signature = fdef.signature
    if len(node.inputs) != len(signature.input_arg):
        wanted, given = len(signature.input_arg), len(node.inputs)
        return [], {}, [f"{where}: takes {wanted} inputs, the call passes {given}"]
    args = {a.name: node.inputs[i] for i, a in enumerate(signature.input_arg)}
    body_ops = {n.name: n.op for n in fdef.node_def}
    renamed = {name: _unique(node.name + "/" + name, taken) for name in body_ops}
    problems: list[str] = []

    def ref(text: str) -> str:
        """`arg`, `node`, `node:index` or `node:output_arg:index` -> a tensor of the graph."""
        if text in args:
            return args[text]
        parts = text.split(":")
        if len(parts) == 3 and parts[0] in body_ops and parts[2].isdigit():
            name, arg, idx = parts
            names = _OUTPUT_ARGS.get(body_ops[name], [])
            flat = names.index(arg) if arg in names else int(idx)
            return f"{renamed[name]}:{flat}"
        name, _, port = text.rpartition(":")
        if text in body_ops:
            return renamed[text] + ":0"
        if name in body_ops and port.isdigit():
            return f"{renamed[name]}:{int(port)}"
        problems.append(f"{where}: {text!r} names no argument or node of the function")
        return node.name + "/" + tensor_ref(text)

    body = []
    for proto in fdef.node_def:
        inputs = [ref(i) for i in proto.input if not i.startswith("^")]
        decoded, found = decode_node(proto, where, inputs)
        decoded.name = renamed[decoded.name]
        if decoded.op == "Const":  # the loader reads it from the library: see STORED_ATTR
            decoded.attrs = {**decoded.attrs, STORED_ATTR: f"{fname}:{proto.name}"}
        body.append(decoded)
        problems += found
    outputs = {}
    for i, out in enumerate(signature.output_arg):
        if out.name not in fdef.ret:
            problems.append(f"{where}: output {out.name!r} is never returned")
            continue
        outputs[node.output(i)] = ref(fdef.ret[out.name])
    return body, outputs, problems


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate
