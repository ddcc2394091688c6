"""The analyzer's graph: plain Python nodes with decoded attributes and numpy constants.

Protobuf objects stop here. Later stages see `Node`s whose attrs are ints, floats, strings,
lists, shapes and numpy arrays, and tensors named `node:index`, always with the index.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tensorboard.compat.proto import graph_pb2

from .errors import BadInputError
from .load import dtype_name, tensor_to_numpy


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]  # data inputs as "node:index"; control inputs are dropped
    attrs: dict[str, Any] = field(default_factory=dict)

    def output(self, index: int = 0) -> str:
        return f"{self.name}:{index}"


def tensor_ref(text: str) -> str:
    """'conv' -> 'conv:0', 'split:1' stays. Only a purely numeric suffix is a port."""
    name, sep, port = text.rpartition(":")
    if sep and port.isdigit() and name:
        return f"{name}:{int(port)}"
    return f"{text}:0"


def split_ref(tensor: str) -> tuple[str, int]:
    name, _, port = tensor.rpartition(":")
    return name, int(port)


def decode_attr(value) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "s":
        return value.s.decode("utf-8", errors="replace")
    if kind in ("i", "f", "b"):
        return getattr(value, kind)
    if kind == "type":
        return dtype_name(value.type)
    if kind == "shape":
        return decode_shape(value.shape)
    if kind == "tensor":
        return tensor_to_numpy(value.tensor)
    if kind == "func":
        return value.func.name
    if kind == "list":
        lst = value.list
        for name in ("i", "f", "b", "s", "type", "shape", "tensor", "func"):
            items = list(getattr(lst, name))
            if items:
                if name == "s":
                    return [s.decode("utf-8", errors="replace") for s in items]
                if name == "type":
                    return [dtype_name(t) for t in items]
                if name == "shape":
                    return [decode_shape(s) for s in items]
                if name == "tensor":
                    return [tensor_to_numpy(t) for t in items]
                if name == "func":
                    return [f.name for f in items]
                return items
        return []
    return None


def decode_shape(shape) -> tuple[int | None, ...] | None:
    """TensorShapeProto -> tuple with None for unknown dims, or None for unknown rank."""
    if shape.unknown_rank:
        return None
    return tuple(d.size if d.size >= 0 else None for d in shape.dim)


class Graph:
    """Nodes keyed by name, in topological order, with a consumer index.

    Construction validates what later stages rely on: unique names, inputs that exist, no cycles.
    """

    def __init__(self, nodes: list[Node], functions: dict[str, Any] | None = None):
        self.functions = functions or {}
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            self.nodes[node.name] = node
        self.nodes = {n.name: n for n in _toposort(self.nodes)}
        self.consumers: dict[str, list[Node]] = {}
        for node in self.nodes.values():
            for tensor in node.inputs:
                self.consumers.setdefault(tensor, []).append(node)

    def __iter__(self):
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def producer(self, tensor: str) -> Node:
        return self.nodes[split_ref(tensor)[0]]

    def users(self, tensor: str) -> list[Node]:
        return self.consumers.get(tensor, [])


def from_graphdef(graph_def: graph_pb2.GraphDef, source: str = "graph") -> Graph:
    """Decode every node; report all malformed nodes at once rather than the first."""
    problems: list[str] = []
    nodes: list[Node] = []
    seen: set[str] = set()
    for proto in graph_def.node:
        if not proto.name:
            problems.append(f"{source}: a node of op {proto.op!r} has no name")
            continue
        if proto.name in seen:
            problems.append(f"{source}: duplicate node name {proto.name!r}")
            continue
        seen.add(proto.name)
        attrs = {}
        for key, value in proto.attr.items():
            try:
                attrs[key] = decode_attr(value)
            except (ValueError, KeyError) as err:
                problems.append(f"{source}: node {proto.name!r}: attribute {key!r}: {err}")
        inputs = [tensor_ref(i) for i in proto.input if not i.startswith("^")]
        nodes.append(Node(proto.name, proto.op, inputs, attrs))
    for node in nodes:
        for tensor in node.inputs:
            if split_ref(tensor)[0] not in seen:
                problems.append(
                    f"{source}: node {node.name!r} reads {tensor!r}, which no node produces"
                )
    if problems:
        raise BadInputError(
            *problems[:20], *([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        )
    functions = {f.signature.name: f for f in graph_def.library.function}
    try:
        return Graph(nodes, functions)
    except _CycleError as err:
        raise BadInputError(f"{source}: the graph has a cycle through node {err.node!r}") from None


class _CycleError(Exception):
    def __init__(self, node: str):
        self.node = node


def _toposort(nodes: dict[str, Node]) -> list[Node]:
    """Kahn's algorithm, taking the earliest node in file order first.

    Frozen graphs are usually stored in a sensible order already; keeping to it makes the
    generated code read in the same order as the model was written.
    """
    position = {name: i for i, name in enumerate(nodes)}
    indegree = dict.fromkeys(nodes, 0)
    users: dict[str, list[str]] = {name: [] for name in nodes}
    for node in nodes.values():
        for tensor in node.inputs:
            src = split_ref(tensor)[0]
            indegree[node.name] += 1
            users[src].append(node.name)
    ready = [position[name] for name, deg in indegree.items() if deg == 0]
    heapq.heapify(ready)
    names = list(nodes)
    order = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(nodes[name])
        for user in users[name]:
            indegree[user] -= 1
            if indegree[user] == 0:
                heapq.heappush(ready, position[user])
    if len(order) != len(nodes):
        stuck = next(name for name, deg in indegree.items() if deg > 0)
        raise _CycleError(stuck)
    return order


def const_value(node: Node) -> np.ndarray | None:
    if node.op == "Const":
        value = node.attrs.get("value")
        return value if isinstance(value, np.ndarray) else None
    return None
