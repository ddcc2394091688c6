"""Constant evaluation with numpy, remembering how each value was made.

Frozen graphs keep the machinery that prepares weights (a bias reshaped then squeezed, BatchNorm
statistics reshaped to 1x1x1xC, shape arithmetic on known shapes). Patterns need the values; the
weight loader needs the *recipe* (which source constants, which numpy steps) so that
`load_weights.py` can read the original nodes and show every transform explicitly.

A recipe is a small tree of steps (see recipes.py): reads of stored constants or checkpoint
variables, values written out, and the numpy steps between them.

Every value folding keeps is paid for from the conversion's constant budget (budget.py); a
kernel whose result can outgrow its operands checks the budget before allocating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import optable
from ..budget import allocated, current
from ..graph import Graph, split_ref
from ..optable.arrays import strided_slice_index
from ..optable.numeric import dtype_of as _dtype_of
from ..optable.numeric import run_kernel
from ..optable.quantize import code_dtype
from ..quantization import float32_literal
from ..recipes import (
    AsType,
    Concat,
    Dequantize,
    FakeQuant,
    Index,
    Quantize,
    Read,
    Recipe,
    Reshape,
    Stack,
    Take,
    Transpose,
    Ufunc,
    Value,
    Variable,
)

# Const nodes made from a checkpoint (see formats.py) carry their key in this attribute; the
# other Const nodes of such a graph carry EMBED_ATTR: the loader cannot read them by node name.
CHECKPOINT_KEY_ATTR = "_checkpoint_key"
EMBED_ATTR = "_embed"
# A Const of a function body, inlined (passes/inline.py), carries where the graph file holds
# it, `FUNCTION:NODE`: no node of the file has its inlined name.
STORED_ATTR = "_stored"
MAX_EMBEDDED = 256  # elements of a graph constant written out as a literal
MAX_RANGE = 4096  # channels of a computed quantization range written out as a literal


# op -> kernel(node, *input values) -> value, for the ops constant folding evaluates, and
# op -> the numpy function a recipe step applies for an element-wise op of constant operands:
# both declared with the op in codegen/optable.
KERNELS = optable.fold_kernels()
_UFUNC_OF = optable.recipe_ufuncs()
# Ops whose recipe step is TensorFlow's quantization arithmetic (recipes.Dequantize, ...).
_QUANTIZATION = {
    "Dequantize",
    "QuantizeV2",
    "FakeQuantWithMinMaxArgs",
    "FakeQuantWithMinMaxVars",
    "FakeQuantWithMinMaxVarsPerChannel",
}


# A recipe nests one step per op and the loader spells out every step; a longer chain of
# constant arithmetic is no weight anyone could read (nor render without deep recursion).
MAX_RECIPE_DEPTH = 64


def _stored(step: Recipe) -> bool:
    return isinstance(step, (Read, Variable))


# Past this many steps a shape computation is not the shallow arithmetic TF1 code writes.
MAX_SHAPE_DEPTH = 12


@dataclass(frozen=True)
class Dim:
    """An entry of a shape vector computed at run time: scale * shape(tensor)[axis] + offset."""

    tensor: str
    axis: int
    scale: int = 1
    offset: int = 0

    def plain(self) -> bool:
        return self.scale == 1 and self.offset == 0


Entry = int | Dim | None  # None: computed some other way


def _affine(d: Entry, scale: int, offset: int) -> Entry:
    if d is None:
        return None
    if isinstance(d, int):
        return d * scale + offset
    return Dim(d.tensor, d.axis, d.scale * scale, d.offset * scale + offset)


class Constants:
    """Lazily evaluates which tensors are constant, their values and their recipes."""

    def __init__(self, graph: Graph, shapes: dict[str, tuple | None] | None = None):
        self.graph = graph
        self.shapes = shapes if shapes is not None else {}
        self._values: dict[str, np.ndarray | None] = {}
        self._recipes: dict[str, Recipe | None] = {}
        self._depth: dict[str, int] = {}  # nesting of each recipe
        self._several: dict[str, tuple | None] = {}  # the outputs of a node that has several

    def value(self, tensor: str) -> np.ndarray | None:
        """The tensor's value if it is a constant, else None. Operands are evaluated before
        the ops that read them from an explicit stack, not by recursion: a chain of constant
        ops can be longer than Python's recursion limit."""
        if tensor in self._values:
            return self._values[tensor]
        self._in_order(tensor, self._values, self._operands, self._evaluate)
        return self._values[tensor]

    @staticmethod
    def _in_order(tensor: str, done: dict, operands: Callable, compute: Callable) -> None:
        """Fill done[t] = compute(t) for `tensor` and, first, every operand it needs (the
        graph is acyclic, so this ends)."""
        stack = [tensor]
        while stack:
            current = stack[-1]
            if current in done:
                stack.pop()
                continue
            waiting = [t for t in operands(current) if t not in done]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            done[current] = compute(current)

    def _operands(self, tensor: str) -> list[str]:
        """The tensors whose values evaluating `tensor` reads."""
        name, port = split_ref(tensor)
        node = self.graph.nodes.get(name)
        if node is None or node.op not in KERNELS:
            return []
        return node.inputs

    def forget_unknown(self) -> None:
        """Forget which tensors were found not constant, keeping the values found: with more
        shapes known (an input's, inferred from its consumers) a Shape may fold now. Values
        already found stay right, and are not paid for twice."""
        self._values = {t: v for t, v in self._values.items() if v is not None}

    def is_const(self, tensor: str) -> bool:
        return self.value(tensor) is not None

    def scalar(self, tensor: str) -> float | None:
        """A constant that is one real number (any shape of size 1); a string or complex
        constant is no scale, epsilon or padding value."""
        value = self.value(tensor)
        if value is None or value.size != 1 or value.dtype.kind not in "biuf":
            return None
        return value.reshape(()).item()

    def ints(self, tensor: str) -> list[int] | None:
        """A constant integer vector (or scalar, as a list of one), e.g. axes, a permutation or
        paddings: TF requires an integer dtype for those, so anything else is not one."""
        value = self.value(tensor)
        if value is None or value.dtype.kind not in "iu" or value.ndim > 1:
            return None
        return [int(v) for v in value.reshape(-1)]

    def _evaluate(self, tensor: str) -> np.ndarray | None:
        name, port = split_ref(tensor)
        node = self.graph.nodes.get(name)
        if node is None:
            return None
        if node.op == "Const":
            return node.attrs.get("value")
        if node.op == "Shape":
            shape = self.shapes.get(node.inputs[0])
            if shape is None or any(d is None for d in shape):
                return None
            try:
                return np.array(shape, dtype=_dtype_of(node, "out_type", np.int32))
            except (OverflowError, TypeError):  # a dim too large for the requested int type
                return None
        kernel = KERNELS.get(node.op)
        if kernel is None:
            return None
        if name in self._several:  # another output of a node already evaluated
            outputs = self._several[name]
            return outputs[port] if outputs is not None and port < len(outputs) else None
        args = []
        for t in node.inputs:
            v = self.value(t)
            if v is None:
                return None
            args.append(v)
        result = run_kernel(kernel, node, args)  # a kernel that can grow checks first
        if isinstance(result, tuple):  # kept: the budget pays for every output once
            self._several[name] = result
            for value in result:
                current().charge(node, allocated(value, args))
            return result[port] if port < len(result) else None
        if result is not None and port == 0:
            current().charge(node, allocated(result, args))  # kept: the budget pays for it
            return result
        return None

    def recipe(self, tensor: str) -> Recipe | None:
        """How to rebuild this constant from the graph's stored constants, or None (also when
        the recipe would nest deeper than MAX_RECIPE_DEPTH steps: nobody reads such a loader)."""
        if tensor not in self._recipes:
            self._in_order(tensor, self._recipes, self._recipe_operands, self._make_recipe)
        return self._recipes[tensor]

    def _recipe_operands(self, tensor: str) -> list[str]:
        node = self.graph.nodes.get(split_ref(tensor)[0])
        if node is None or node.op == "Const" or self.value(tensor) is None:
            return []
        if node.op in ("Reshape", "Squeeze", "ExpandDims", "Transpose", "Cast", "Rsqrt"):
            return node.inputs[:1]
        if node.op in _QUANTIZATION:
            return node.inputs if split_ref(tensor)[1] == 0 else []
        if node.op in ("StridedSlice", "GatherV2"):
            return node.inputs[:2] if node.op == "GatherV2" else node.inputs[:1]
        if node.op in ("ConcatV2", "Pack"):
            return node.inputs[:-1] if node.op == "ConcatV2" else node.inputs
        return node.inputs if node.op in _UFUNC_OF else []

    def _make_recipe(self, tensor: str) -> Recipe | None:
        recipe = self._build_recipe(tensor)
        if recipe is None:
            return None
        parts = [self._depth.get(t, 0) for t in self._recipe_operands(tensor)]
        self._depth[tensor] = 1 + max(parts, default=0)
        return recipe if self._depth[tensor] <= MAX_RECIPE_DEPTH else None

    def _build_recipe(self, tensor: str) -> Recipe | None:
        if self.value(tensor) is None:
            return None
        node = self.graph.producer(tensor)
        if node.op == "Const":
            value = self.value(tensor)
            known = {"shape": tuple(int(d) for d in value.shape), "dtype": value.dtype.name}
            if CHECKPOINT_KEY_ATTR in node.attrs:
                return Variable(node.attrs[CHECKPOINT_KEY_ATTR], **known)
            if (
                node.attrs.get(EMBED_ATTR)
                and value.size <= MAX_EMBEDDED
                and value.dtype.kind in "biuf"
            ):
                return Value(value.tolist(), value.dtype.name)
            return Read(node.name, node.attrs.get(STORED_ATTR), **known)
        if node.op in ("Reshape", "Squeeze", "ExpandDims"):
            inner = self.recipe(node.inputs[0])
            if inner is None:
                return None
            return Reshape(inner, tuple(int(d) for d in self.value(tensor).shape))
        if node.op == "Transpose":
            inner = self.recipe(node.inputs[0])
            perm = tuple(int(i) for i in self.value(node.inputs[1]))
            return None if inner is None else Transpose(inner, perm)
        if node.op == "Cast":
            inner = self.recipe(node.inputs[0])
            return None if inner is None else AsType(inner, self.value(tensor).dtype.name)
        if node.op in _UFUNC_OF:
            parts = []
            for t in node.inputs:
                value = self.value(t)
                # Small operands (epsilons, 0.5) are clearer as literals than as graph reads.
                parts.append(
                    value.reshape(()).item()
                    if value.size == 1 and value.ndim == 0 and value.dtype.kind in "biuf"
                    else self.recipe(t)
                )
                if parts[-1] is None:
                    return None
            return Ufunc(_UFUNC_OF[node.op], tuple(parts))
        if node.op == "Rsqrt":  # BatchNorm folded into a kernel: gamma * rsqrt(variance + eps)
            inner = self.recipe(node.inputs[0])
            return None if inner is None else Ufunc("divide", (1.0, Ufunc("sqrt", (inner,))))
        if node.op in _QUANTIZATION and split_ref(tensor)[1] == 0:
            return self._quantization_recipe(node)
        recipe = self._array_recipe(node)
        # made of values written out alone (shape arithmetic): the folded value is the recipe
        return recipe if recipe is not None and any(_stored(s) for s in recipe.leaves()) else None

    def _part(self, tensor: str) -> Recipe | None:
        """An operand's recipe, or its value written out when it is small and either computed
        or integers (indices and sizes read better as literals than as graph reads)."""
        value = self.value(tensor)
        small = value is not None and value.dtype.kind in "biuf" and value.size <= MAX_EMBEDDED
        if small and value.dtype.kind in "biu":
            return Value(value.tolist(), value.dtype.name)
        recipe = self.recipe(tensor)
        return Value(value.tolist(), value.dtype.name) if recipe is None and small else recipe

    def _array_recipe(self, node) -> Recipe | None:
        """Slicing, joining and gathering of stored constants (a constant too large to write
        out is computed by the loader from what it is made of)."""
        ins = node.inputs
        if node.op == "StridedSlice":
            inner, begin, end, strides = self.recipe(ins[0]), *(self.ints(t) for t in ins[1:4])
            if inner is None or begin is None or end is None or strides is None:
                return None
            try:
                index = strided_slice_index(node, begin, end, strides, self.value(ins[0]).ndim)
            except ValueError:
                return None
            return Index(inner, index)
        if node.op in ("ConcatV2", "Pack"):
            parts = [self._part(t) for t in (ins[:-1] if node.op == "ConcatV2" else ins)]
            axis = self.ints(ins[-1]) if node.op == "ConcatV2" else [node.attrs.get("axis", 0)]
            if any(p is None for p in parts) or not axis or len(axis) != 1:
                return None
            return (Concat if node.op == "ConcatV2" else Stack)(axis[0], tuple(parts))
        if node.op == "GatherV2":
            inner, indices, axis = self.recipe(ins[0]), self._part(ins[1]), self.ints(ins[2])
            if inner is None or indices is None or not axis or node.attrs.get("batch_dims", 0):
                return None
            return Take(inner, indices, axis[0])
        return None

    def _range_operand(self, tensor: str):
        """A quantization range as the loader reads it: a checkpoint variable by its key (the
        loader reads what the checkpoint holds now), a scalar as its float32 value written out,
        a per-channel range by its recipe, or written out when it is computed (QuantizeV2's
        output range: one number per channel)."""
        value = self.value(tensor)
        recipe = self.recipe(tensor)
        if isinstance(recipe, Variable):
            return recipe
        if value is not None and value.size == 1 and value.dtype == np.float32:
            return float32_literal(value.reshape(()))
        if recipe is None and value is not None and value.ndim == 1 and value.size <= MAX_RANGE:
            return Value([float32_literal(v) for v in value], value.dtype.name)
        return recipe

    def _quantization_recipe(self, node) -> Recipe | None:
        """Dequantize, QuantizeV2 (its codes) or FakeQuant of a stored weight, as a recipe step
        whose arithmetic the loader spells out in numpy (codegen/quantization.py)."""
        inner = self.recipe(node.inputs[0])
        a = node.attrs
        if node.op == "FakeQuantWithMinMaxArgs":
            low, high = float32_literal(a.get("min", -6.0)), float32_literal(a.get("max", 6.0))
        else:
            low, high = (self._range_operand(t) for t in node.inputs[1:3])
        if inner is None or low is None or high is None:
            return None
        if node.op == "Dequantize":
            mode, axis = a.get("mode", "MIN_COMBINED"), a.get("axis", -1)
            return Dequantize(inner, low, high, mode, axis, a.get("narrow_range", False))
        if node.op == "QuantizeV2":
            return Quantize(
                inner,
                low,
                high,
                code_dtype(a.get("T", "quint8")).name,
                a.get("mode", "MIN_COMBINED"),
                a.get("round_mode", "HALF_AWAY_FROM_ZERO"),
                a.get("narrow_range", False),
                a.get("axis", -1),
                float32_literal(a.get("ensure_minimum_range", 0.01)),
            )
        bits, narrow = a.get("num_bits", 8), a.get("narrow_range", False)
        return FakeQuant(inner, node.op, low, high, bits, narrow)

    def shape_terms(self, tensor: str, depth: int = 0) -> list[Entry] | None:
        """A 1-D integer tensor entry by entry, as TF1 code builds shape vectors (`tf.shape(x)
        [0]`, a Pack of sizes and constants, `tf.shape(x)[1] * 2`): constants as ints, a size
        the static shapes leave unknown as a `Dim` of the tensor it is read from, anything
        else None; None when not even its length is known. Shape arithmetic is shallow: past
        MAX_SHAPE_DEPTH steps the answer is "unknown"."""
        if self.is_const(tensor):
            return self.ints(tensor)
        if depth > MAX_SHAPE_DEPTH:
            return None
        node = self.graph.producer(tensor)
        ins = node.inputs
        if node.op == "Shape":
            shape = self.shapes.get(ins[0])
            if shape is None:
                return None
            return [d if d is not None else Dim(ins[0], i) for i, d in enumerate(shape)]
        if node.op in ("Cast", "Squeeze"):
            return self.shape_terms(ins[0], depth + 1)
        if node.op == "Reshape":
            vec = self.shape_terms(ins[0], depth + 1)
            return vec if vec is not None and len(vec) == 1 else None
        if node.op == "Pack":
            parts = [self.shape_terms(t, depth + 1) for t in ins]
            if any(p is None or len(p) != 1 for p in parts):
                return None
            return [p[0] for p in parts]
        if node.op == "ConcatV2":
            parts = [self.shape_terms(t, depth + 1) for t in ins[:-1]]
            return None if any(p is None for p in parts) else [d for p in parts for d in p]
        if node.op == "StridedSlice":
            return self._sliced_terms(node, depth)
        if node.op == "GatherV2":
            vec, idx = self.shape_terms(ins[0], depth + 1), self.ints(ins[1])
            if vec is None or idx is None or not all(-len(vec) <= i < len(vec) for i in idx):
                return None
            return [vec[i] for i in idx]
        if node.op == "Prod":
            vec = self.shape_terms(ins[0], depth + 1)
            if vec is None:
                return None
            product = math.prod(d for d in vec if isinstance(d, int))
            rest = [d for d in vec if not isinstance(d, int)]
            if not rest:
                return [product]
            if len(rest) == 1 and isinstance(rest[0], Dim):
                return [_affine(rest[0], product, 0)]
            return [None]
        if node.op in ("Mul", "AddV2", "Add", "Sub"):
            return self._arithmetic_terms(node, depth)
        return None

    def _sliced_terms(self, node, depth: int) -> list[Entry] | None:
        vec = self.shape_terms(node.inputs[0], depth + 1)
        begin, end, strides = (self.ints(t) for t in node.inputs[1:4])
        if vec is None or begin is None or end is None or strides is None:
            return None
        try:
            index = strided_slice_index(node, begin, end, strides, 1)
        except ValueError:
            return None
        if len(index) != 1:
            return None
        if isinstance(index[0], int):
            return [vec[index[0]]] if -len(vec) <= index[0] < len(vec) else None
        if isinstance(index[0], slice):
            return list(vec[index[0]])
        return None

    def _arithmetic_terms(self, node, depth: int) -> list[Entry] | None:
        """An element-wise op of a shape vector and one integer constant scalar."""
        if len(node.inputs) != 2:
            return None
        a, b = node.inputs
        if self.is_const(a) == self.is_const(b):
            return None
        data, const = (b, a) if self.is_const(a) else (a, b)
        c = self.value(const)
        if c is None or c.size != 1 or c.dtype.kind not in "iu":
            return None
        c = int(c.reshape(()))
        vec = self.shape_terms(data, depth + 1)
        if vec is None:
            return None
        if node.op == "Mul":
            return [_affine(d, c, 0) for d in vec]
        if node.op == "Sub" and node.inputs[0] != data:
            return [_affine(d, -1, c) for d in vec]  # c - vector
        return [_affine(d, 1, c if node.op != "Sub" else -c) for d in vec]

    def partial_vector(self, tensor: str) -> list[int | None] | None:
        """`shape_terms` with every entry that is not a constant unknown (None): enough to
        recover `Reshape((-1, 1000))` from a target built of Shape(x)[0] and constants."""
        terms = self.shape_terms(tensor)
        return None if terms is None else [d if isinstance(d, int) else None for d in terms]
