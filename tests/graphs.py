"""Writing small GraphDefs for tests, without TensorFlow: plain Python, numpy and the protobuf
schemas tensorboard ships (the converter reads graphs with the same schemas).

Two ways to write a graph, for two kinds of test:

* Text: `placeholder`, `const`, `int_const` and `op` return text-format NodeDefs to concatenate,
  so a test states its graph literally (tests/test_hostile.py, tests/test_passes.py).
* Protos: a `Builder` appends NodeDefs to a GraphDef, with seeded random weights, name scopes
  as TF writes them and a function library (tests/fuzzing.py's seeds, tests/cases/make.py);
  `Builder.text()` is the graph as a .pbtxt file holds it.

`graph_of` decodes a graph the way the converter does, and `describe` prints one node per line
(`name = Op(inputs)`), so that a test can compare a pass's result with a literal.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from google.protobuf import text_format
from tensorboard.compat.proto import (
    attr_value_pb2,
    function_pb2,
    graph_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

# -- text ---------------------------------------------------------------------------------------

PLACEHOLDER = """
node {{ name: {name} op: "Placeholder" attr {{ key: "dtype" value {{ type: DT_FLOAT }} }}
       attr {{ key: "shape" value {{ shape {{ {dims} }} }} }} }}
"""
FLOAT_CONST = """
node {{ name: {name} op: "Const" attr {{ key: "dtype" value {{ type: DT_FLOAT }} }}
       attr {{ key: "value" value {{ tensor {{ dtype: DT_FLOAT tensor_shape {{ {dims} }}
       {values} }} }} }} }}
"""


def placeholder(name: str = "x", shape=(-1, 4)) -> str:
    """A float32 Placeholder; -1 is an unknown dimension."""
    dims = " ".join(f"dim {{ size: {d} }}" for d in shape)
    return PLACEHOLDER.format(name=quote(name), dims=dims)


def const(name: str, values, shape=None) -> str:
    """A float Const in short form: float_val entries (nan and inf spelled as TF writes them)."""
    shape = np.shape(values) if shape is None else shape
    dims = " ".join(f"dim {{ size: {d} }}" for d in shape)
    vals = " ".join(f"float_val: {_float(v)}" for v in np.ravel(values))
    return FLOAT_CONST.format(name=quote(name), dims=dims, values=vals)


def int_const(name: str, values: list[int]) -> str:
    """An int32 vector Const in short form."""
    vals = " ".join(f"int_val: {v}" for v in values)
    return (
        f'node {{ name: {quote(name)} op: "Const" '
        f'attr {{ key: "dtype" value {{ type: DT_INT32 }} }} '
        f'attr {{ key: "value" value {{ tensor {{ dtype: DT_INT32 '
        f"tensor_shape {{ dim {{ size: {len(values)} }} }} {vals} }} }} }} }}\n"
    )


def op(name: str, kind: str, *inputs: str, attrs: str = "", **values) -> str:
    """A node of op `kind`; attributes as text (`attrs`) or as Python values (see `attr`),
    e.g. `op("c", "Conv2D", "x", "k", strides=[1, 1, 1, 1], padding="SAME")`."""
    ins = " ".join(f"input: {quote(i)}" for i in inputs)
    if values:
        attrs = " ".join([attrs, *(attr_text(key, value) for key, value in values.items())])
    return f"node {{ name: {quote(name)} op: {quote(kind)} {ins} {attrs} }}\n"


def attr_text(key: str, value) -> str:
    """`attr { key: ... value { ... } }` for a Python value, as `attr` converts it."""
    body = text_format.MessageToString(attr(value), as_one_line=True)
    return f"attr {{ key: {quote(key)} value {{ {body} }} }}"


def quote(text: str) -> str:
    """A text-format string literal (escapes newlines, quotes and non-ASCII as octal bytes)."""
    out = '"'
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out += ch if 32 <= byte < 127 and ch not in '"\\' else f"\\{byte:03o}"
    return out + '"'


def _float(v) -> str:
    v = float(v)
    return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf") if np.isinf(v) else repr(v)


# -- protos -------------------------------------------------------------------------------------

_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
}


def tensor_proto(array, short: bool = False) -> tensor_pb2.TensorProto:
    """A numpy value as a TensorProto: its bytes in tensor_content (as TF stores an array), or
    with `short` one value per element in the typed field (as TF stores a scalar)."""
    array = np.asarray(array)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    proto = tensor_pb2.TensorProto(dtype=_DTYPES[array.dtype])
    proto.tensor_shape.CopyFrom(shape_proto(array.shape))
    if not short:
        proto.tensor_content = array.tobytes()
    elif array.dtype == np.float32:
        proto.float_val.extend(array.reshape(-1).tolist())
    elif array.dtype == np.int64:
        proto.int64_val.extend(array.reshape(-1).tolist())
    elif array.dtype == np.bool_:
        proto.bool_val.extend(array.reshape(-1).tolist())
    else:
        proto.int_val.extend(array.reshape(-1).tolist())
    return proto


def shape_proto(dims) -> tensor_shape_pb2.TensorShapeProto:
    """None: unknown rank; a None dimension: unknown size."""
    if dims is None:
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=-1 if d is None else d) for d in dims]
    )


@dataclass(frozen=True)
class Dtype:
    enum: int


@dataclass(frozen=True)
class Func:
    name: str


@dataclass(frozen=True)
class Shape:
    """A shape attribute (a Placeholder's, an element shape); dims as for `shape_proto`."""

    dims: tuple | None


FLOAT = Dtype(types_pb2.DT_FLOAT)
INT32 = Dtype(types_pb2.DT_INT32)
INT64 = Dtype(types_pb2.DT_INT64)
BOOL = Dtype(types_pb2.DT_BOOL)
VARIANT = Dtype(types_pb2.DT_VARIANT)


def attr(value) -> attr_value_pb2.AttrValue:
    """A Python value as the AttrValue TF would store: str, bool, int, float, an array (a
    tensor), a list of ints, of dtypes or of function names, a Dtype, Func or Shape."""
    a = attr_value_pb2.AttrValue()
    if isinstance(value, bool):
        a.b = value
    elif isinstance(value, int):
        a.i = value
    elif isinstance(value, float):
        a.f = value
    elif isinstance(value, str):
        a.s = value.encode()
    elif isinstance(value, np.ndarray):
        a.tensor.CopyFrom(tensor_proto(value))
    elif isinstance(value, list) and value and isinstance(value[0], Dtype):
        a.list.type.extend(v.enum for v in value)
    elif isinstance(value, list) and value and isinstance(value[0], Func):
        a.list.func.extend(attr_value_pb2.NameAttrList(name=v.name) for v in value)
    elif isinstance(value, list):
        a.list.i.extend(value)
    elif isinstance(value, Dtype):
        a.type = value.enum
    elif isinstance(value, Func):
        a.func.name = value.name
    elif isinstance(value, Shape):
        a.shape.CopyFrom(shape_proto(value.dims))
    else:
        raise TypeError(value)
    return a


class Builder:
    """Appends NodeDefs to a GraphDef; `op` returns the node name for chaining. Weights are
    drawn from a generator seeded per graph, so a graph is the same every time it is built."""

    def __init__(self, seed: int = 0, short_scalars: bool = False):
        self.graph = graph_pb2.GraphDef()
        self.rng = np.random.default_rng(seed)
        self.short_scalars = short_scalars  # write one-element constants in short form, as TF
        self._nodes = self.graph.node  # where node() appends: the graph or a function body
        self._scopes: list[str] = []

    def node(self, name: str, op: str, inputs=(), **attrs) -> str:
        name = "/".join([*self._scopes, name])
        node = self._nodes.add(name=name, op=op)
        node.input.extend(inputs)
        for key, value in attrs.items():
            if value is not None:  # None: leave the attribute out
                node.attr[key].CopyFrom(attr(value))
        return name

    def op(self, name: str, op: str, *inputs: str, **attrs) -> str:
        """A node with T=float32 unless given (Shape, Pack and StridedSlice: no default)."""
        if "T" not in attrs and op not in ("Shape", "Pack", "StridedSlice"):
            attrs["T"] = FLOAT
        return self.node(name, op, inputs, **attrs)

    def placeholder(self, name: str, shape, dtype: Dtype = FLOAT) -> str:
        return self.node(name, "Placeholder", dtype=dtype, shape=Shape(shape))

    def const(self, name: str, value, short: bool | None = None, after: str | None = None) -> str:
        """A Const, its value's bytes in tensor_content, or with `short` one typed value per
        element (TF writes a one-element constant so: see `short_scalars`). `after`: a node it
        follows by a control edge (a TF1 cond ties its branches' constants to a pivot so)."""
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        if short is None:
            short = self.short_scalars and value.size == 1
        dtype = Dtype(_DTYPES[value.dtype])
        control = [f"^{after}"] if after else []
        name = self.node(name, "Const", control, dtype=dtype)
        self._nodes[-1].attr["value"].tensor.CopyFrom(tensor_proto(value, short))
        return name

    def weight(self, name: str, *shape: int, positive: bool = False) -> str:
        if positive:
            return self.const(name, self.rng.uniform(0.5, 1.5, shape))
        return self.const(name, self.rng.normal(0, 0.5, shape))

    @contextlib.contextmanager
    def scope(self, name: str):
        """Nodes made inside are named `name/...`, as under tf.name_scope."""
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    def function(self, name: str, inputs: dict, outputs: dict) -> "FunctionBuilder":
        """A function in the graph's library, {argument: Dtype} in and out; its body is built
        with the returned builder (same weights generator), its results set in `.ret`."""
        fdef = self.graph.library.function.add()
        fdef.signature.name = name
        for arg, dtype in inputs.items():
            fdef.signature.input_arg.add(name=arg, type=dtype.enum)
        for arg, dtype in outputs.items():
            fdef.signature.output_arg.add(name=arg, type=dtype.enum)
        return FunctionBuilder(fdef, self.rng, self.short_scalars)

    def text(self, header: str = "") -> str:
        """The graph as a .pbtxt file: `header` as leading `#` comment lines, then the text."""
        comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
        return comments + text_format.MessageToString(self.graph)


class FunctionBuilder(Builder):
    """Builds a function body: references inside are `arg`, `node:output_arg:index`."""

    def __init__(self, fdef: function_pb2.FunctionDef, rng, short_scalars: bool = False):
        self.fdef = fdef
        self.rng = rng
        self.short_scalars = short_scalars
        self._nodes = fdef.node_def
        self._scopes = []
        self.ret = fdef.ret


# -- decoding, and a graph as text ------------------------------------------------------------


def parse(text: str) -> graph_pb2.GraphDef:
    graph = graph_pb2.GraphDef()
    text_format.Parse(text, graph)
    return graph


def graph_of(text: str | graph_pb2.GraphDef, source: str = "graph"):
    """The converter's Graph of a text GraphDef (or a GraphDef), decoded as the converter
    decodes a file."""
    from codegen.pipeline import decode

    return decode(parse(text) if isinstance(text, str) else text, source)


def nodes_of(text: str, source: str = "graph") -> tuple[list, dict]:
    """(decoded nodes, function library) of a text GraphDef, before any pass: the input of
    the passes that run while a graph is decoded (recurrent loops, while frames)."""
    from codegen.graph import decode_node

    graph_def = parse(text)
    nodes = [decode_node(proto, source)[0] for proto in graph_def.node]
    return nodes, {f.signature.name: f for f in graph_def.library.function}


def describe(nodes: Iterable, attrs: Iterable[str] = ()) -> str:
    """One line per node, `name = Op(input, ...)`, the named attributes after it as
    `key=value` (those the node has), for comparing a graph with a literal. Port 0 is written
    `name`, other ports `name:1`."""
    lines = []
    for node in nodes:
        ins = ", ".join(t[:-2] if t.endswith(":0") else t for t in node.inputs)
        extra = [f"{key}={_shown(node.attrs[key])}" for key in attrs if key in node.attrs]
        lines.append(" ".join([f"{node.name} = {node.op}({ins})", *extra]))
    return "\n".join(lines) + "\n"


def _shown(value) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    return repr(value)
