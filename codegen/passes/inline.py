"""Inline function calls (PartitionedCall, StatefulPartitionedCall) into the main graph.

TF2 freezes some layers as calls into the graph's function library (Keras 3 compiles grouped
convolutions with XLA, for one). Patterns match on plain graph structure, so the bodies are
spliced in, named `<call node>/<body node>`; the call's outputs become aliases of the body's.
"""

from __future__ import annotations

from ..errors import BadInputError
from ..graph import Graph, Node, decode_attr, tensor_ref

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
    for node in graph:
        if node.op not in CALL_OPS:
            nodes.append(node)
            continue
        fname = node.attrs.get("f")
        fdef = graph.functions.get(fname)
        if fdef is None:
            raise BadInputError(
                f"node {node.name!r} calls function {fname!r}, which the graph does not define"
            )
        args = {
            a.name: node.inputs[i]
            for i, a in enumerate(fdef.signature.input_arg)
            if i < len(node.inputs)
        }
        body_ops = {n.name: n.op for n in fdef.node_def}
        prefix = node.name + "/"

        def ref(text: str) -> str:
            if text in args:
                return args[text]
            parts = text.split(":")
            if len(parts) == 3:
                name, arg, idx = parts
                names = _OUTPUT_ARGS.get(body_ops.get(name, ""), [])
                flat = names.index(arg) if arg in names else int(idx)
                return f"{prefix}{name}:{flat}"
            return prefix + tensor_ref(text)

        for body in fdef.node_def:
            attrs = {k: decode_attr(v) for k, v in body.attr.items()}
            inputs = [ref(i) for i in body.input if not i.startswith("^")]
            nodes.append(Node(prefix + body.name, body.op, inputs, attrs))
        for i, out in enumerate(fdef.signature.output_arg):
            alias[node.output(i)] = ref(fdef.ret[out.name])
    for node in nodes:
        node.inputs = [alias.get(t, t) for t in node.inputs]
    return Graph(nodes, graph.functions)
