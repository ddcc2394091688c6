"""Constant evaluation with numpy, remembering how each value was made.

Frozen graphs keep the machinery that prepares weights (a bias reshaped then squeezed, BatchNorm
statistics reshaped to 1x1x1xC, shape arithmetic on known shapes). Patterns need the values; the
weight loader needs the *recipe* (which source constants, which numpy steps) so that
`load_weights.py` can read the original nodes and show every transform explicitly.

A recipe is a small tree of steps (see recipes.py): reads of stored constants or checkpoint
variables, values written out, and the numpy steps between them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..graph import Graph, Node, split_ref
from ..recipes import AsType, Read, Recipe, Reshape, Transpose, Ufunc, Value, Variable

# Const nodes made from a checkpoint (see formats.py) carry their key in this attribute; the
# other Const nodes of such a graph carry EMBED_ATTR: the loader cannot read them by node name.
CHECKPOINT_KEY_ATTR = "_checkpoint_key"
EMBED_ATTR = "_embed"
MAX_EMBEDDED = 256  # elements of a graph constant written out as a literal


def strided_slice_index(node: Node, begin, end, strides, rank: int) -> tuple:
    """The Python index tuple equivalent to a StridedSlice node's masks. ValueError when the
    operands cannot be one (a zero stride, lengths that differ)."""
    if not len(begin) == len(end) == len(strides) or not all(int(s) for s in strides):
        raise ValueError("StridedSlice operands disagree or have a zero stride")
    a = node.attrs
    begin_mask, end_mask = a.get("begin_mask", 0), a.get("end_mask", 0)
    ellipsis_mask, new_axis_mask = a.get("ellipsis_mask", 0), a.get("new_axis_mask", 0)
    shrink_mask = a.get("shrink_axis_mask", 0)
    index: list[Any] = []
    for i in range(len(begin)):
        bit = 1 << i
        if ellipsis_mask & bit:
            index.append(Ellipsis)
        elif new_axis_mask & bit:
            index.append(None)
        elif shrink_mask & bit:
            index.append(int(begin[i]))
        else:
            b = None if begin_mask & bit else int(begin[i])
            e = None if end_mask & bit else int(end[i])
            s = int(strides[i])
            index.append(slice(b, e, None if s == 1 else s))
    return tuple(index)


def _strided_slice(node, x, begin, end, strides):
    return np.asarray(x[strided_slice_index(node, begin, end, strides, x.ndim)])


def _reduce(fn):
    def kernel(node, x, axes):
        keep = bool(node.attrs.get("keep_dims", node.attrs.get("keepdims", False)))
        return fn(x, axis=tuple(int(a) for a in np.atleast_1d(axes)), keepdims=keep).astype(x.dtype)

    return kernel


def _dtype_of(node: Node, key: str, default=np.float32):
    name = node.attrs.get(key)
    try:
        return np.dtype(name) if isinstance(name, str) else np.dtype(default)
    except TypeError:
        return np.dtype(default)


# Folding evaluates shape arithmetic and weight preparation, neither of which makes a tensor
# much larger than its inputs. A kernel asked to (a Fill of a huge shape, a broadcast of two long
# vectors into a matrix) refuses, so that a hostile constant cannot exhaust memory.
MAX_GROWN = 1 << 24  # elements


def _limit(size: int, *inputs) -> None:
    if size > max([MAX_GROWN, *(np.size(x) for x in inputs)]):  # max() of one int fails
        raise ValueError(f"refusing to fold a result of {size} elements")


def _fill(node, dims, value):
    dims = [int(d) for d in np.atleast_1d(dims)]
    _limit(math.prod(dims) if all(d >= 0 for d in dims) else 0)
    return np.full(dims, value)


def _range(node, start, limit, delta):
    count = math.ceil((limit - start) / delta) if delta else 0
    _limit(max(count, 0))
    return np.arange(start, limit, delta)


def _linspace(start, stop, num):
    num = int(num)
    _limit(max(num, 0))
    return np.linspace(start, stop, num).astype(np.result_type(start))


def _gather(node, x, indices, axis):
    x, indices = np.asarray(x), np.asarray(indices)
    axis = int(axis)
    _limit(x.size // max(x.shape[axis], 1) * indices.size, x, indices)
    return np.take(x, indices, axis=axis)


def _elementwise(fn):
    """A binary ufunc whose broadcast result may be no larger than MAX_GROWN (or an input)."""

    def kernel(node, a, b):
        _limit(math.prod(np.broadcast_shapes(np.shape(a), np.shape(b))), a, b)
        return fn(a, b)

    return kernel


def fake_quant_range(low, high, num_bits, narrow_range):
    """(nudged min, nudged max, scale) of TF's FakeQuant ops as float32 arrays, computed the
    way fake_quant_ops_functor.h does (the zero point rounded half away from zero, so that 0.0
    is exactly representable); None for a range TF would reject."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    if not isinstance(num_bits, int) or not 2 <= num_bits <= 16 or low.shape != high.shape:
        return None
    if low.ndim > 1 or np.any(low > high):
        return None
    qmin = np.float32(1 if narrow_range else 0)
    qmax = np.float32((1 << num_bits) - 1)
    with np.errstate(all="ignore"):
        scale = (high - low) / (qmax - qmin)
        zero_from_min = qmin - low / scale
    zero = np.clip(np.sign(zero_from_min) * np.floor(np.abs(zero_from_min) + 0.5), qmin, qmax)
    zero = np.where(np.isfinite(zero_from_min), zero, qmin).astype(np.float32)
    return (qmin - zero) * scale, (qmax - zero) * scale, scale.astype(np.float32)


def _fake_quant(node, x, low=None, high=None):
    if low is None:
        low, high = node.attrs.get("min", -6.0), node.attrs.get("max", 6.0)
    attrs = node.attrs
    nudged = fake_quant_range(low, high, attrs.get("num_bits", 8), attrs.get("narrow_range", False))
    if nudged is None or np.asarray(x).dtype != np.float32:
        raise ValueError("not a FakeQuant TF would compute")
    nmin, nmax, scale = nudged
    shifted = np.clip(x, nmin, nmax) - nmin
    return (np.floor(shifted * (np.float32(1) / scale) + np.float32(0.5)) * scale + nmin).astype(
        np.float32
    )


def _dequantize(node, x, low, high):
    """Dequantize of a stored quantized constant, modes MIN_COMBINED and SCALED (per tensor,
    or per `axis`), as dequantize_op.cc computes them in float32."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.dtype.itemsize > 2:
        raise ValueError("not a quantized constant")
    info = np.iinfo(x.dtype)
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    axis = node.attrs.get("axis", -1)
    if low.ndim == 1 and axis >= 0 and axis < x.ndim:
        shape = [1] * x.ndim
        shape[axis] = -1
        low, high = low.reshape(shape), high.reshape(shape)
    elif low.ndim != 0:
        raise ValueError("per-axis range without an axis")
    mode = node.attrs.get("mode", "MIN_COMBINED")
    values = x.astype(np.float32)
    if mode == "MIN_COMBINED":
        scale = (high - low) / np.float32(float(info.max) - float(info.min))
        if info.min < 0:
            values = values + np.float32((float(info.max) - float(info.min) + 1) / 2)
        out = values * scale + low
    elif mode == "SCALED":
        qmin = info.min + 1 if node.attrs.get("narrow_range") and info.min < 0 else info.min
        if info.min < 0:
            scale = np.maximum(low / np.float32(qmin), high / np.float32(info.max))
        else:
            scale = high / np.float32(info.max)
        out = values * scale
    else:
        raise ValueError(f"Dequantize mode {mode!r} is not folded")
    return out.astype(_dtype_of(node, "dtype"))


# What a kernel raises on operands it cannot evaluate: the tensor is then not a constant.
KERNEL_ERRORS = (ValueError, TypeError, IndexError, ArithmeticError, np.exceptions.AxisError)

# op -> kernel(node, *input values) -> value (or list of values for multi-output ops)
KERNELS: dict[str, Callable] = {
    "Reshape": lambda n, x, s: np.reshape(x, [int(d) for d in s]),
    "Squeeze": lambda n, x: np.squeeze(x, axis=tuple(n.attrs.get("squeeze_dims") or []) or None),
    "ExpandDims": lambda n, x, a: np.expand_dims(x, int(a)),
    "Transpose": lambda n, x, p: np.transpose(x, [int(i) for i in p]),
    "Cast": lambda n, x: x.astype(_dtype_of(n, "DstT")),
    "Pack": lambda n, *xs: np.stack(xs, axis=n.attrs.get("axis", 0)),
    "ConcatV2": lambda n, *xs: np.concatenate(xs[:-1], axis=int(xs[-1])),
    "StridedSlice": _strided_slice,
    "GatherV2": _gather,
    "Fill": _fill,
    "Range": _range,
    "Prod": _reduce(np.prod),
    "Sum": _reduce(np.sum),
    "Mean": _reduce(np.mean),
    "Max": _reduce(np.max),
    "Min": _reduce(np.min),
    "Add": _elementwise(np.add),
    "AddV2": _elementwise(np.add),
    "Sub": _elementwise(np.subtract),
    "Mul": _elementwise(np.multiply),
    "RealDiv": _elementwise(lambda a, b: np.divide(a, b).astype(np.result_type(a, b))),
    "FloorDiv": _elementwise(np.floor_divide),
    "Maximum": _elementwise(np.maximum),
    "Minimum": _elementwise(np.minimum),
    "Neg": lambda n, x: np.negative(x),
    "Sqrt": lambda n, x: np.sqrt(x),
    "Rsqrt": lambda n, x: (1.0 / np.sqrt(x)).astype(x.dtype),
    "Reciprocal": lambda n, x: (1.0 / x).astype(x.dtype),
    "Square": lambda n, x: np.square(x),
    "Dequantize": _dequantize,
    "FakeQuantWithMinMaxArgs": _fake_quant,
    "FakeQuantWithMinMaxVars": _fake_quant,
    "FakeQuantWithMinMaxVarsPerChannel": _fake_quant,
    "Abs": lambda n, x: np.abs(x),
    "Exp": lambda n, x: np.exp(x),
    "Log": lambda n, x: np.log(x),
    "Tanh": lambda n, x: np.tanh(x),
    "Floor": lambda n, x: np.floor(x),
    "Ceil": lambda n, x: np.ceil(x),
    "Sign": lambda n, x: np.sign(x),
    "Sigmoid": lambda n, x: (1 / (1 + np.exp(-x))).astype(x.dtype),
    "LinSpace": lambda n, start, stop, num: _linspace(start, stop, num),
    "ZerosLike": lambda n, x: np.zeros_like(x),
    "OnesLike": lambda n, x: np.ones_like(x),
}

# Shape-preserving ops whose recipe is a plain reshape/transpose/cast of the input's recipe.
_UFUNC_OF = {
    "Add": "add",
    "AddV2": "add",
    "Sub": "subtract",
    "Mul": "multiply",
    "RealDiv": "divide",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "Neg": "negative",
    "Sqrt": "sqrt",
    "Square": "square",
}


def run_kernel(kernel: Callable, node: Node, args: list) -> np.ndarray | None:
    """The kernel's result, or None when the operands are not something it can evaluate.
    NaN and infinity are results like any other (TF computes them too), so numpy's warnings
    about them are silenced rather than printed into the user's terminal."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(kernel(node, *args))
    except KERNEL_ERRORS:
        return None


# A recipe nests one step per op and the loader spells out every step; a longer chain of
# constant arithmetic is no weight anyone could read (nor render without deep recursion).
MAX_RECIPE_DEPTH = 64


class Constants:
    """Lazily evaluates which tensors are constant, their values and their recipes."""

    def __init__(self, graph: Graph, shapes: dict[str, tuple | None] | None = None):
        self.graph = graph
        self.shapes = shapes if shapes is not None else {}
        self._values: dict[str, np.ndarray | None] = {}
        self._recipes: dict[str, Recipe | None] = {}
        self._depth: dict[str, int] = {}  # nesting of each recipe

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
        if node is None or port != 0 or node.op not in KERNELS:
            return []
        return node.inputs

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
        if kernel is None or port != 0:
            return None
        args = []
        for t in node.inputs:
            v = self.value(t)
            if v is None:
                return None
            args.append(v)
        return run_kernel(kernel, node, args)

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
        if node.op in ("Reshape", "Squeeze", "ExpandDims", "Transpose", "Cast"):
            return node.inputs[:1]
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
            if CHECKPOINT_KEY_ATTR in node.attrs:
                return Variable(node.attrs[CHECKPOINT_KEY_ATTR])
            value = self.value(tensor)
            if (
                node.attrs.get(EMBED_ATTR)
                and value.size <= MAX_EMBEDDED
                and value.dtype.kind in "biuf"
            ):
                return Value(value.tolist(), value.dtype.name)
            return Read(node.name)
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
        return None

    def partial_vector(self, tensor: str, depth: int = 0) -> list[int | None] | None:
        """A 1-D integer tensor whose entries may be unknown (None), e.g. a Reshape target
        built from Shape(x)[0] and constants: enough to recover `Reshape((-1, 1000))`. Shape
        arithmetic is shallow; past MAX_RECIPE_DEPTH steps the answer is "unknown"."""
        if self.is_const(tensor):
            return self.ints(tensor)
        if depth > MAX_RECIPE_DEPTH:
            return None
        node = self.graph.producer(tensor)
        ins = node.inputs
        if node.op == "Shape":
            shape = self.shapes.get(ins[0])
            return list(shape) if shape is not None else None
        if node.op == "Cast":
            return self.partial_vector(ins[0], depth + 1)
        if node.op == "Pack":
            parts = [self.partial_vector(t, depth + 1) for t in ins]
            if any(p is None or len(p) != 1 for p in parts):
                return None
            return [p[0] for p in parts]
        if node.op == "ConcatV2":
            parts = [self.partial_vector(t, depth + 1) for t in ins[:-1]]
            if any(p is None for p in parts):
                return None
            return [d for p in parts for d in p]
        if node.op == "StridedSlice":
            vec = self.partial_vector(ins[0], depth + 1)
            begin, end, strides = (self.ints(t) for t in ins[1:4])
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
        if node.op == "GatherV2":
            vec, idx = self.partial_vector(ins[0], depth + 1), self.ints(ins[1])
            if vec is None or idx is None or not all(-len(vec) <= i < len(vec) for i in idx):
                return None
            return [vec[i] for i in idx]
        if node.op == "Prod":
            vec = self.partial_vector(ins[0], depth + 1)
            if vec is None or any(d is None for d in vec):
                return None if vec is None else [None]
            return [math.prod(vec)]
        return None
