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

from . import optable
from .errors import BadInputError
from .load import decode_attr
from .optable import output_count


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


class Graph:
    """Nodes keyed by name, in topological order, with a consumer index.

    Construction validates what later stages rely on: unique names, inputs that exist (with an
    output index the producer has), no cycles. Every graph is checked, including the ones the
    passes build (an inlined function body can be as broken as the graph that carries it).
    """

    def __init__(
        self, nodes: list[Node], functions: dict[str, Any] | None = None, source: str = "graph"
    ):
        problems = structure_problems(nodes, source)
        if problems:
            raise BadInputError(*_at_most(problems))
        self.functions = functions or {}
        self.source = source
        self.nodes: dict[str, Node] = {node.name: node for node in nodes}
        try:
            self.nodes = {n.name: n for n in _toposort(self.nodes)}
        except _CycleError as err:
            raise BadInputError(
                f"{source}: the graph has a cycle through node {err.node!r}"
            ) from None
        self.consumers: dict[str, list[Node]] = {}
        for node in self.nodes.values():
            for tensor in node.inputs:
                self.consumers.setdefault(tensor, []).append(node)
        self._positions: dict[str, int] | None = None

    def __iter__(self):
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def producer(self, tensor: str) -> Node:
        return self.nodes[split_ref(tensor)[0]]

    def users(self, tensor: str) -> list[Node]:
        return self.consumers.get(tensor, [])

    def in_order(self, names) -> list[Node]:
        """The named nodes in the graph's topological order, without walking the graph (a
        pattern asks this for a handful of nodes, once per layer)."""
        if self._positions is None:
            self._positions = {name: i for i, name in enumerate(self.nodes)}
        return [self.nodes[name] for name in sorted(names, key=self._positions.__getitem__)]

    def tensor_problem(self, tensor: str) -> str | None:
        """Why `tensor` (node:index) names nothing in this graph, or None if it exists."""
        name, port = split_ref(tensor)
        node = self.nodes.get(name)
        if node is None:
            return f"no node named {name!r} in the graph"
        return _port_problem(node, port)


def from_graphdef(
    graph_def: graph_pb2.GraphDef, source: str = "graph"
) -> tuple[list[Node], dict[str, Any]]:
    """Every node decoded, and the function library by name; all malformed nodes are reported
    at once rather than the first. Not yet a `Graph`: a lowered TF1 loop is a cycle, which
    the passes turn into one node first (see pipeline.decode)."""
    problems: list[str] = []
    nodes: list[Node] = []
    for proto in graph_def.node:
        if not proto.name:
            problems.append(f"{source}: a node of op {proto.op!r} has no name")
            continue
        node, found = decode_node(proto, source)
        problems += found
        problems += [
            f"{source}: node {proto.name!r}: input {text!r} is not a tensor name (node:index)"
            for text in proto.input
            if not _well_formed_ref(text)
        ]
        nodes.append(node)
    problems += structure_problems(nodes, source)
    if problems:
        raise BadInputError(*_at_most(problems))
    return nodes, {f.signature.name: f for f in graph_def.library.function}


def decode_node(proto, source: str, inputs: list[str] | None = None) -> tuple[Node, list[str]]:
    """A NodeDef as a Node, and every problem with it: a node name TF could not write, an
    attribute that does not decode or has the wrong form for its op, the wrong number of
    inputs. `inputs` overrides the data inputs (function bodies spell them differently)."""
    where = f"{source}: node {proto.name!r}"
    problems = []
    if ":" in proto.name or proto.name.startswith("^"):
        problems.append(f"{where}: ':' and a leading '^' are not allowed in node names")
    attrs = {}
    for key in sorted(proto.attr):
        try:
            attrs[key] = decode_attr(proto.attr[key])
        except ValueError as err:
            problems.append(f"{where}: attribute {key!r}: {err}")
    if inputs is None:
        inputs = [tensor_ref(i) for i in proto.input if not i.startswith("^")]
    node = Node(proto.name, proto.op, inputs, attrs)
    signature = optable.signature(proto.op)  # the form the stages after this one rely on
    if signature is not None:
        problems += [f"{where}: {p}" for p in signature.problems(node, proto.attr)]
    return node, problems


def structure_problems(nodes: list[Node], source: str) -> list[str]:
    """Duplicate names and inputs that name no tensor. Cycles are found by the sort."""
    problems = []
    by_name: dict[str, Node] = {}
    for node in nodes:
        if node.name in by_name:
            problems.append(f"{source}: duplicate node name {node.name!r}")
        else:
            by_name[node.name] = node
    for node in nodes:
        for tensor in node.inputs:
            name, port = split_ref(tensor)
            producer = by_name.get(name)
            problem = "no node produces it" if producer is None else _port_problem(producer, port)
            if problem:
                problems.append(f"{source}: node {node.name!r} reads {tensor!r}: {problem}")
    return problems


def _port_problem(node: Node, port: int) -> str | None:
    count = output_count(node)
    if count is None or port < count:
        return None
    outputs = "no outputs" if count == 0 else f"{count} output{'s' if count > 1 else ''}"
    return f"{node.op} node {node.name!r} has {outputs}"


def _well_formed_ref(text: str) -> bool:
    """'node', 'node:3' or '^node'. A ':' anywhere else cannot be in a TF node name."""
    name, sep, port = text.removeprefix("^").rpartition(":")
    return not sep or (bool(name) and port.isdigit() and ":" not in name)


def _at_most(problems: list[str], limit: int = 20) -> list[str]:
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit} more"]


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
