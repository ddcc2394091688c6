"""Inline function calls (PartitionedCall, StatefulPartitionedCall) into the main graph.

TF2 freezes some layers as calls into the graph's function library (Keras 3 compiles grouped
convolutions with XLA, for one). Patterns match on plain graph structure, so the bodies are
spliced in, named `<call node>/<body node>`; the call's outputs become aliases of the body's.
"""

from __future__ import annotations

from ..errors import BadInputError
from ..graph import Graph, Node, decode_node, tensor_ref

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


def inline_functions(graph: Graph) -> Graph:
    for _ in range(MAX_DEPTH):
        if not any(n.op in CALL_OPS for n in graph):
            return graph
        graph = _inline_once(graph)
    raise BadInputError(f"function calls nest deeper than {MAX_DEPTH} levels")


def _inline_once(graph: Graph) -> Graph:
    nodes: list[Node] = []
    alias: dict[str, str] = {}
    problems: list[str] = []
    for node in graph:
        if node.op not in CALL_OPS:
            nodes.append(node)
            continue
        body, outputs, found = _expand(graph, node)
        nodes += body
        alias.update(outputs)
        problems += found
    if problems:
        raise BadInputError(*problems[:20])
    for node in nodes:
        node.inputs = [_resolve(alias, t) for t in node.inputs]
    return Graph(nodes, graph.functions, graph.source)


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


def _expand(graph: Graph, node: Node) -> tuple[list[Node], dict[str, str], list[str]]:
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
    prefix = node.name + "/"
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
            return f"{prefix}{name}:{flat}"
        name, _, port = text.rpartition(":")
        if text in body_ops or (name in body_ops and port.isdigit()):
            return prefix + tensor_ref(text)
        problems.append(f"{where}: {text!r} names no argument or node of the function")
        return prefix + tensor_ref(text)

    body = []
    for proto in fdef.node_def:
        inputs = [ref(i) for i in proto.input if not i.startswith("^")]
        decoded, found = decode_node(proto, where, inputs)
        decoded.name = prefix + decoded.name
        body.append(decoded)
        problems += found
    outputs = {}
    for i, out in enumerate(signature.output_arg):
        if out.name not in fdef.ret:
            problems.append(f"{where}: output {out.name!r} is never returned")
            continue
        outputs[node.output(i)] = ref(fdef.ret[out.name])
    return body, outputs, problems
