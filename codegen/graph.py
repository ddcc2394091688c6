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

    def __iter__(self):
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def producer(self, tensor: str) -> Node:
        return self.nodes[split_ref(tensor)[0]]

    def users(self, tensor: str) -> list[Node]:
        return self.consumers.get(tensor, [])

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
    signature = SIGNATURES.get(proto.op)
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


# -- what each op must look like ----------------------------------------------------------------


@dataclass(frozen=True)
class Attr:
    """The form of one attribute that patterns, shape rules or folding read."""

    kind: str  # AttrValue's field: s, i, f, b, type, shape, tensor, func; list(i) for int lists
    required: bool = False  # TF has no default for it
    lengths: tuple[int, ...] = ()  # allowed lengths of a list (any when empty)
    minimum: int | None = None  # for an int or every int in a list
    choices: tuple[str, ...] = ()  # for a string

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        sign = {0: "non-negative ", 1: "positive "}.get(self.minimum, "")
        if self.kind.startswith("list("):
            count = " or ".join(map(str, self.lengths)) + " " if self.lengths else ""
            return f"a list of {count}{sign}{_NOUN[self.kind[5:-1]]}s"
        return _article(f"{sign}{_NOUN[self.kind]}")

    def problem(self, key: str, proto, value) -> str | None:
        """Why the attribute does not have this form, or None if it does."""
        kind = attr_kind(proto)
        if not (kind == self.kind or (kind == "list" and self.kind.startswith("list("))):
            shown = "" if kind in ("tensor", "none", "list") else f" {_short(value)}"
            return f"attribute {key!r} is {_kind_text(kind)}{shown}, not {self.describe()}"
        items = value if isinstance(value, list) else [value]
        if (
            (self.lengths and len(items) not in self.lengths)
            or (self.minimum is not None and any(v < self.minimum for v in items))
            or (self.choices and value not in self.choices)
        ):
            return f"attribute {key!r} is {_short(value)}, not {self.describe()}"
        return None


_NOUN = {
    "s": "string",
    "i": "int",
    "f": "float",
    "b": "bool",
    "type": "dtype",
    "shape": "shape",
    "tensor": "tensor",
    "func": "function name",
    "placeholder": "function-attribute placeholder",
}


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _kind_text(kind: str) -> str:
    if kind == "none":
        return "empty"
    if kind == "list":
        return "an empty list"
    if kind.startswith("list("):
        return f"a list of {_NOUN[kind[5:-1]]}s"
    return _article(_NOUN.get(kind, kind))


def attr_kind(proto) -> str:
    """'i', 's', ... or 'list(i)' for a non-empty list of ints, 'list' for an empty list."""
    kind = proto.WhichOneof("value") or "none"
    if kind != "list":
        return kind
    for name in ("i", "f", "b", "s", "type", "shape", "tensor", "func"):
        if len(getattr(proto.list, name)):
            return f"list({name})"
    return "list"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Signature:
    """An op's data inputs (min, max; None: any number), outputs, and checked attributes."""

    inputs: tuple[int, int | None]
    attrs: dict[str, Attr] = field(default_factory=dict)
    outputs: int | str | None = 1  # a count, the int attribute holding it, or None: unknown

    def problems(self, node: Node, protos) -> list[str]:
        found = []
        low, high = self.inputs
        n = len(node.inputs)
        if n < low or (high is not None and n > high):
            want = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            found.append(f"{node.op} takes {want} input{'s' if want != '1' else ''}, not {n}")
        for key, rule in self.attrs.items():
            if key not in protos:
                if rule.required:
                    found.append(f"{node.op} needs attribute {key!r}, which is missing")
                continue
            if key in node.attrs:  # undecodable values are reported already
                problem = rule.problem(key, protos[key], node.attrs[key])
                if problem:
                    found.append(problem)
        return found


def output_count(node: Node) -> int | None:
    """How many outputs `node` has, for the ops graph2py knows; None for the others."""
    if node.op == "IdentityN":
        return len(node.inputs)
    if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
        tout = node.attrs.get("Tout")
        return len(tout) if isinstance(tout, list) else None
    signature = SIGNATURES.get(node.op)
    if signature is None:
        return None
    if isinstance(signature.outputs, str):
        count = node.attrs.get(signature.outputs)
        return count if isinstance(count, int) and not isinstance(count, bool) else None
    return signature.outputs


_FORMAT = Attr("s", choices=("NHWC", "NCHW", "NCHW_VECT_C"))
_PADDING = Attr("s", required=True, choices=("SAME", "VALID", "EXPLICIT"))
_WINDOW = Attr("list(i)", required=True, lengths=(4,), minimum=1)
_CONV = {
    "strides": _WINDOW,
    "padding": _PADDING,
    "data_format": _FORMAT,
    "dilations": Attr("list(i)", lengths=(4,), minimum=1),
    "explicit_paddings": Attr("list(i)", lengths=(0, 8), minimum=0),
}
_POOL = {**_CONV, "ksize": _WINDOW}
del _POOL["dilations"]
_KEEP = {"keep_dims": Attr("b")}
_MASKS = {f"{k}_mask": Attr("i") for k in ("begin", "end", "ellipsis", "new_axis", "shrink_axis")}

# What the stages after this module rely on, per op; ops not listed are not checked (a
# pattern-less op is reported as unsupported later, whatever its form).
SIGNATURES: dict[str, Signature] = {
    "Const": Signature((0, 0), {"value": Attr("tensor", required=True), "dtype": Attr("type")}),
    "Placeholder": Signature((0, 0), {"dtype": Attr("type"), "shape": Attr("shape")}),
    "PlaceholderWithDefault": Signature((1, 1), {"dtype": Attr("type"), "shape": Attr("shape")}),
    "PartitionedCall": Signature((0, None), {"f": Attr("func", required=True)}, None),
    "StatefulPartitionedCall": Signature((0, None), {"f": Attr("func", required=True)}, None),
    "NoOp": Signature((0, 0), outputs=0),
    "IdentityN": Signature((1, None), outputs=None),
    "Conv2D": Signature((2, 2), _CONV),
    "DepthwiseConv2dNative": Signature((2, 2), _CONV),
    "Conv2DBackpropInput": Signature((3, 3), _CONV),
    "MatMul": Signature((2, 2), {"transpose_a": Attr("b"), "transpose_b": Attr("b")}),
    "BiasAdd": Signature((2, 2), {"data_format": _FORMAT}),
    "MaxPool": Signature((1, 1), _POOL),
    "AvgPool": Signature((1, 1), _POOL),
    "Reshape": Signature((2, 2)),
    "Squeeze": Signature((1, 1), {"squeeze_dims": Attr("list(i)")}),
    "ExpandDims": Signature((2, 2)),
    "Transpose": Signature((2, 2)),
    "StridedSlice": Signature((4, 4), _MASKS),
    "Pad": Signature((2, 2)),
    "MirrorPad": Signature((2, 2)),
    "PadV2": Signature((3, 3)),
    "ConcatV2": Signature((2, None)),
    "Pack": Signature((1, None), {"axis": Attr("i")}),
    "Shape": Signature((1, 1), {"out_type": Attr("type")}),
    "Cast": Signature((1, 1), {"DstT": Attr("type")}),
    "Fill": Signature((2, 2)),
    "Range": Signature((3, 3)),
    "GatherV2": Signature((3, 3)),
    "AddN": Signature((1, None)),
    "LeakyRelu": Signature((1, 1), {"alpha": Attr("f")}),
    "Split": Signature((2, 2), {"num_split": Attr("i", required=True, minimum=1)}, "num_split"),
    "SplitV": Signature((3, 3), {"num_split": Attr("i", required=True, minimum=1)}, "num_split"),
    "Unpack": Signature((1, 1), {"num": Attr("i", required=True, minimum=0)}, "num"),
    "TopKV2": Signature((2, 2), outputs=2),
    "Unique": Signature((1, 1), outputs=2),
}
for _op, _outputs in (("FusedBatchNorm", 5), ("FusedBatchNormV2", 5), ("FusedBatchNormV3", 6)):
    SIGNATURES[_op] = Signature(
        (5, 5),
        {"epsilon": Attr("f"), "is_training": Attr("b"), "data_format": _FORMAT},
        _outputs,
    )
for _op in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
    SIGNATURES[_op] = Signature((2, 2), {"adj_x": Attr("b"), "adj_y": Attr("b")})
for _op in ("Mean", "Max", "Min", "Sum", "Prod", "All", "Any"):
    SIGNATURES[_op] = Signature((2, 2), _KEEP)
for _op in ("ArgMax", "ArgMin"):
    SIGNATURES[_op] = Signature((2, 2))
for _op in (
    "Identity Snapshot StopGradient PreventGradient EnsureShape Relu Relu6 Elu Selu Sigmoid "
    "Tanh Softplus Softsign Softmax LogSoftmax Erf Erfc Exp Log Log1p Expm1 Neg Abs Sqrt Rsqrt "
    "Square Reciprocal Floor Ceil Round Sign Sin Cos"
).split():
    SIGNATURES[_op] = Signature((1, 1))
for _op in (
    "Add AddV2 Sub Mul RealDiv Div DivNoNan FloorDiv FloorMod Maximum Minimum Pow "
    "SquaredDifference Greater Less Equal GreaterEqual LessEqual NotEqual LogicalAnd LogicalOr"
).split():
    SIGNATURES[_op] = Signature((2, 2))


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
