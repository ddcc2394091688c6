"""What patterns are written with: the registries `@pattern` and `@fallback` fill, the `Matcher`
a pattern inspects the graph through and builds layers with, and the limits on constants written
into code. The package's `load_all` imports the pattern modules, which import this one (a
pattern module never imports the package itself, so no import cycle).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..graph import Graph, Node
from ..names import ScopeNamer, backend_name, keras_name
from ..passes.fold import Constants
from ..recipes import Reshape
from ..spec import Call, Kind, Layer, Ref, TFOp, Weight

# Constants up to this many elements are written into a keras.ops call as literals; larger ones
# become a `Constant` layer whose value load_weights.py reads from the graph.
INLINE_CONSTANT = 16
MAX_LITERAL = 4096


def literal_cells(value: np.ndarray) -> int:
    """How big a value is as a nested Python list: its elements, but an empty dimension still
    costs the lists around it (a (2**31, 0) array is no elements and two billion lists)."""
    return math.prod(max(int(d), 1) for d in value.shape)


def tensor_literal(value: np.ndarray) -> Call:
    """A small constant written into the code as `keras.ops.convert_to_tensor(...)`, with its
    dtype stated unless Keras infers the same one from the Python values (an empty list infers
    nothing)."""
    dtype = value.dtype.name
    inferred = value.size and dtype in ("float32", "int32", "bool")
    return Call("convert_to_tensor", (value.tolist(),), () if inferred else (("dtype", dtype),))


def string_literal(value: np.ndarray | None) -> Call | None:
    """A constant string tensor as `convert_to_tensor([b"..."], dtype="string")`: Keras weights
    cannot hold strings, so the code does (up to MAX_LITERAL of them); None for anything else."""
    if value is None or value.dtype.kind not in "OSU" or literal_cells(value) > MAX_LITERAL:
        return None
    items = np.vectorize(_as_bytes, otypes=[object])(value) if value.size else value
    return Call("convert_to_tensor", (items.tolist(),), (("dtype", "string"),))


def _as_bytes(item) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode("utf-8")


# a Layer, or a short chain of them (the first ones' outputs internal tensors, spec.INTERNAL)
PatternFn = Callable[[Node, "Matcher"], "Layer | list[Layer] | None"]
PATTERNS: dict[str, list[PatternFn]] = {}
# Ops that only compute shapes (of a dynamic batch, usually) for a reshape or transposed conv.
SHAPE_PLUMBING = {
    "Shape",
    "StridedSlice",
    "Pack",
    "ConcatV2",
    "GatherV2",
    "Prod",
    "Cast",
    "Mul",
    "Reshape",
    "Squeeze",
}


# Patterns of the keras.ops and TensorFlow-only paths. They run after every layer pattern has
# had its turn over the whole graph: a layer may absorb nodes that come before its anchor (the
# shape arithmetic of a transposed conv), which a fallback must not take first.
FALLBACKS: dict[str, list[PatternFn]] = {}


def pattern(*ops: str):
    """Register a pattern for nodes of the given op types."""
    return _registrar(PATTERNS, ops)


def fallback(*ops: str):
    """Register a keras.ops or TensorFlow-only pattern; "*" matches every op."""
    return _registrar(FALLBACKS, ops)


def _registrar(table: dict[str, list[PatternFn]], ops: tuple[str, ...]):
    def register(fn: PatternFn) -> PatternFn:
        for op in ops:
            table.setdefault(op, []).append(fn)
        return fn

    return register


class Matcher:
    """What a pattern may ask about the graph. Keeps patterns free of bookkeeping."""

    def __init__(
        self, graph: Graph, consts: Constants, shapes: dict, namer: ScopeNamer, outputs: set[str]
    ):
        self.graph = graph
        self.consts = consts
        self.shapes = shapes
        self.namer = namer
        self.outputs = outputs
        self.covered: set[str] = set()

    # values -------------------------------------------------------------------------------
    def const(self, tensor: str) -> np.ndarray | None:
        """A constant of real numbers: a string or complex constant is never a weight, an axis
        or a scale that Keras could take, so to a pattern it is no constant at all."""
        value = self.consts.value(tensor)
        return value if value is not None and value.dtype.kind in "biuf" else None

    def scalar(self, tensor: str) -> float | None:
        return self.consts.scalar(tensor)

    def ints(self, tensor: str) -> list[int] | None:
        """A constant integer vector: axes, paddings, a permutation, slice bounds."""
        return self.consts.ints(tensor)

    def shape(self, tensor: str):
        return self.shapes.get(tensor)

    def node(self, tensor: str) -> Node:
        return self.graph.producer(tensor)

    # structure ----------------------------------------------------------------------------
    def user(self, tensor: str, *ops: str) -> Node | None:
        """The only consumer of `tensor`, if it has exactly one, is of one of `ops` and the
        tensor is not a model output: the condition for fusing it into the same layer."""
        users = self.graph.users(tensor)
        if len(users) != 1 or tensor in self.outputs:
            return None
        user = users[0]
        if user.name in self.covered or (ops and user.op not in ops):
            return None
        return user

    def split_const(self, node: Node) -> tuple[str, str] | None:
        """(data tensor, constant tensor) of a binary op with exactly one constant operand."""
        if len(node.inputs) != 2:
            return None
        a, b = node.inputs
        ca, cb = self.consts.is_const(a), self.consts.is_const(b)
        if ca == cb:
            return None
        return (b, a) if ca else (a, b)

    def producer_op(self, tensor: str) -> str:
        return self.graph.producer(tensor).op

    def shape_plumbing(self, tensor: str, data: str) -> list[Node] | None:
        """The non-constant nodes computing a shape vector from `Shape(data)` (a dynamic batch
        size, typically), or None if the computation involves anything but shape arithmetic.
        A pattern that consumes such a vector absorbs these nodes with it."""
        found: dict[str, Node] = {}
        stack = [tensor]
        while stack:
            t = stack.pop()
            node = self.graph.producer(t)
            if node.name in found or self.consts.is_const(t):
                continue
            if node.op not in SHAPE_PLUMBING or node.name in self.covered:
                return None
            found[node.name] = node
            if node.op == "Shape":
                continue
            stack.extend(node.inputs)
        for node in found.values():
            for user in self.graph.users(node.output(0)):
                if (
                    user.name not in found
                    and user.output(0) != tensor
                    and tensor not in user.inputs
                ):
                    return None
        return self.graph.in_order(found)

    # building -----------------------------------------------------------------------------
    def weight(self, name: str, tensor: str, shape: tuple[int, ...] | None = None) -> Weight | None:
        """A Keras weight read from a constant, reshaped to `shape` when the graph stores it
        in another (e.g. a 1x1x1xC BatchNorm statistic for a C-vector)."""
        value = self.const(tensor)
        recipe = self.consts.recipe(tensor)
        if value is None or recipe is None:
            return None
        if shape is not None and not all(isinstance(d, int) for d in shape):
            return None  # a Keras weight has a static shape
        if shape is not None and tuple(value.shape) != tuple(shape):
            if value.size != int(np.prod(shape)):
                return None
            recipe = Reshape(recipe, tuple(shape))
        return Weight(name, recipe, tuple(shape if shape is not None else value.shape))

    def layer(
        self,
        cls: str,
        nodes: list[Node],
        inputs: list[str],
        kwargs: dict | None = None,
        args: list | None = None,
        weights: list[Weight | None] | None = None,
        output: str | None = None,
        list_input: bool = False,
    ) -> Layer | None:
        """A Layer covering `nodes` (anchor first, output last). Returns None if a weight could
        not be traced to the graph's constants, so the caller's `return m.layer(...)` declines."""
        weights = weights or []
        if any(w is None for w in weights):
            return None
        names = [n.name for n in nodes]
        return Layer(
            kind=Kind.LAYER,
            cls=cls,
            name=self.layer_name(nodes, weights),
            inputs=inputs,
            outputs=[output or nodes[-1].output(0)],
            nodes=names,
            ops=[n.op for n in nodes],
            args=list(args or []),
            kwargs=dict(kwargs or {}),
            weights=list(weights),
            list_input=list_input,
        )

    def ops(
        self,
        nodes: list[Node],
        expr,
        inputs: list[str],
        outputs: list[str] | None = None,
    ) -> Layer:
        """A keras.ops expression (`expr`, built of spec.Call/Item/Ref) covering `nodes`."""
        return Layer(
            kind=Kind.OPS,
            name=self.layer_name(nodes, []),
            inputs=inputs,
            outputs=outputs or [nodes[-1].output(0)],
            nodes=[n.name for n in nodes],
            ops=[n.op for n in nodes],
            expr=expr,
        )

    def tensorflow(
        self,
        node: Node,
        tfop: TFOp,
        args: list,
        inputs: list[str],
        outputs: list[str],
        kwargs: dict,
    ) -> Layer:
        """A TensorFlow-only layer calling `tfop` on `args` (expressions over `inputs`), with
        the op's attributes `kwargs`."""
        return Layer(
            kind=Kind.TENSORFLOW,
            name=self.layer_name([node], []),
            inputs=inputs,
            outputs=outputs,
            nodes=[node.name],
            ops=[node.op],
            args=list(args),
            kwargs=dict(kwargs),
            tfop=tfop,
        )

    def inline_constant(self, tensor: str):
        """A constant operand written into the code as a Python literal (a number or nested
        list), or None: large values are better read by load_weights.py, except those that have
        no recipe to read them by (shape arithmetic folded at conversion time)."""
        value = self.consts.value(tensor)
        if value is None or value.dtype.kind not in "biuf":
            return None
        cells = literal_cells(value)
        if cells > INLINE_CONSTANT and (
            self.consts.recipe(tensor) is not None or cells > MAX_LITERAL
        ):
            return None
        return value

    def operand(self, tensor: str, inputs: list[str]):
        """How a keras.ops expression refers to `tensor`: an inline constant as a literal, cast
        when its dtype is not what Keras would infer, anything else as a Ref to the layer input
        it is appended to (a large constant input becomes a `Constant` layer)."""
        text = string_literal(self.consts.value(tensor))
        if text is not None:
            return text
        value = self.inline_constant(tensor)
        if value is not None:
            if value.ndim == 0 and value.dtype.kind in "iuf":
                return value.item()  # Keras takes a Python number as a weakly typed scalar
            return tensor_literal(value)  # a list is no tensor to a symbolic keras.ops call
        if tensor not in inputs:
            inputs.append(tensor)
        return Ref(inputs.index(tensor))

    def layer_name(self, nodes: list[Node], weights: list[Weight]) -> str:
        name = None
        if not self.namer.uniquified:
            # TF1 variables carry the layer's name: `fc1/weights` belongs to layer fc1, while
            # its ops may sit in an inner scope (`bn2/batchnorm/...`) or none at all; a TF2
            # checkpoint's keys (`layer_with_weights-1/kernel/...`) name attributes, not layers
            for w in weights:
                key = w.recipe.first_source() or ""
                if key.endswith(OBJECT_KEY):
                    continue  # a TF2 key is the path of Python attributes to the variable
                source = variable_path(key)
                if len(source) > 1:
                    name = self.namer.layer_name(["/".join(source)])
                    if name:
                        break
        if name is None:
            name = self.namer.layer_name([n.name for n in nodes])
        if name is None:
            scope = self.namer.scope(nodes[0].name)
            name = "_".join(scope + [nodes[0].name.split("/")[-1]])
        # a frozen Keras model's scopes are its own layer names, kept; others are made up
        return keras_name(name) if self.namer.uniquified else backend_name(name)

    def same_layer(self, a: Node, b: Node) -> bool:
        """Whether b belongs to a's layer by scope: one scope contains the other, as
        `sep/separable_conv2d/depthwise` sits inside layer `sep`, and an unscoped TF1 op joins
        any layer."""
        sa, sb = self.namer.scope(a.name), self.namer.scope(b.name)
        n = min(len(sa), len(sb))
        return sa[:n] == sb[:n]


# Trailing name parts TF adds when it freezes a resource variable; they name no layer.
# A TF2 checkpoint key ends in `.ATTRIBUTES/VARIABLE_VALUE`, which names no layer either.
OBJECT_KEY = "/.ATTRIBUTES/VARIABLE_VALUE"
_READ_SUFFIXES = {"resource", "ReadVariableOp", "read", "Read", "VARIABLE_VALUE", ".ATTRIBUTES"}


def variable_path(const_name: str) -> list[str]:
    """The scope parts of a stored constant's name, less what freezing appends to it."""
    parts = const_name.split("/")
    while parts and parts[-1] in _READ_SUFFIXES:
        parts.pop()
    return parts
