"""Constant evaluation with numpy, remembering how each value was made.

Frozen graphs keep the machinery that prepares weights (a bias reshaped then squeezed, BatchNorm
statistics reshaped to 1x1x1xC, shape arithmetic on known shapes). Patterns need the values; the
weight loader needs the *recipe* (which source constants, which numpy steps) so that
`load_weights.py` can read the original nodes and show every transform explicitly.

A recipe is a small tree of tuples:
    ("read", node_name)                      the raw constant stored in the graph
    ("reshape", recipe, shape)               np.reshape
    ("transpose", recipe, perm)              np.transpose
    ("astype", recipe, dtype)                ndarray.astype
    ("ufunc", name, recipe, recipe | value)  an elementwise numpy function (np.multiply, ...)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..graph import Graph, Node, split_ref

Recipe = tuple


def strided_slice_index(node: Node, begin, end, strides, rank: int) -> tuple:
    """The Python index tuple equivalent to a StridedSlice node's masks."""
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
    "GatherV2": lambda n, x, i, a: np.take(x, i, axis=int(a)),
    "Fill": lambda n, s, v: np.full([int(d) for d in s], v),
    "Range": lambda n, a, b, d: np.arange(a, b, d),
    "Prod": _reduce(np.prod),
    "Sum": _reduce(np.sum),
    "Mean": _reduce(np.mean),
    "Max": _reduce(np.max),
    "Min": _reduce(np.min),
    "Add": lambda n, a, b: np.add(a, b),
    "AddV2": lambda n, a, b: np.add(a, b),
    "Sub": lambda n, a, b: np.subtract(a, b),
    "Mul": lambda n, a, b: np.multiply(a, b),
    "RealDiv": lambda n, a, b: np.divide(a, b).astype(np.result_type(a, b)),
    "FloorDiv": lambda n, a, b: np.floor_divide(a, b),
    "Maximum": lambda n, a, b: np.maximum(a, b),
    "Minimum": lambda n, a, b: np.minimum(a, b),
    "Neg": lambda n, x: np.negative(x),
    "Sqrt": lambda n, x: np.sqrt(x),
    "Rsqrt": lambda n, x: (1.0 / np.sqrt(x)).astype(x.dtype),
    "Reciprocal": lambda n, x: (1.0 / x).astype(x.dtype),
    "Square": lambda n, x: np.square(x),
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


class Constants:
    """Lazily evaluates which tensors are constant, their values and their recipes."""

    def __init__(self, graph: Graph, shapes: dict[str, tuple | None] | None = None):
        self.graph = graph
        self.shapes = shapes if shapes is not None else {}
        self._values: dict[str, np.ndarray | None] = {}
        self._recipes: dict[str, Recipe | None] = {}

    def value(self, tensor: str) -> np.ndarray | None:
        if tensor in self._values:
            return self._values[tensor]
        result = self._evaluate(tensor)
        self._values[tensor] = result
        return result

    def is_const(self, tensor: str) -> bool:
        return self.value(tensor) is not None

    def scalar(self, tensor: str) -> float | None:
        """A constant that is one number (any shape of size 1)."""
        value = self.value(tensor)
        if value is None or value.size != 1:
            return None
        return value.reshape(()).item()

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
            return np.array(shape, dtype=_dtype_of(node, "out_type", np.int32))
        kernel = KERNELS.get(node.op)
        if kernel is None or port != 0:
            return None
        args = []
        for t in node.inputs:
            v = self.value(t)
            if v is None:
                return None
            args.append(v)
        try:
            out = kernel(node, *args)
        except (ValueError, TypeError, IndexError, np.AxisError):
            return None
        return np.asarray(out)

    def recipe(self, tensor: str) -> Recipe | None:
        """How to rebuild this constant from the graph's stored constants, or None."""
        if tensor in self._recipes:
            return self._recipes[tensor]
        result = self._make_recipe(tensor)
        self._recipes[tensor] = result
        return result

    def _make_recipe(self, tensor: str) -> Recipe | None:
        if self.value(tensor) is None:
            return None
        node = self.graph.producer(tensor)
        if node.op == "Const":
            return ("read", node.name)
        if node.op in ("Reshape", "Squeeze", "ExpandDims"):
            inner = self.recipe(node.inputs[0])
            if inner is None:
                return None
            return ("reshape", inner, tuple(int(d) for d in self.value(tensor).shape))
        if node.op == "Transpose":
            inner = self.recipe(node.inputs[0])
            perm = tuple(int(i) for i in self.value(node.inputs[1]))
            return None if inner is None else ("transpose", inner, perm)
        if node.op == "Cast":
            inner = self.recipe(node.inputs[0])
            return None if inner is None else ("astype", inner, self.value(tensor).dtype.name)
        if node.op in _UFUNC_OF:
            parts = []
            for t in node.inputs:
                value = self.value(t)
                # Small operands (epsilons, 0.5) are clearer as literals than as graph reads.
                parts.append(
                    value.reshape(()).item()
                    if value.size == 1 and value.ndim == 0
                    else self.recipe(t)
                )
                if parts[-1] is None:
                    return None
            return ("ufunc", _UFUNC_OF[node.op], *parts)
        return None

    def partial_vector(self, tensor: str) -> list[int | None] | None:
        """A 1-D integer tensor whose entries may be unknown (None), e.g. a Reshape target
        built from Shape(x)[0] and constants: enough to recover `Reshape((-1, 1000))`."""
        value = self.value(tensor)
        if value is not None:
            return [int(v) for v in np.atleast_1d(value)] if value.ndim <= 1 else None
        node = self.graph.producer(tensor)
        ins = node.inputs
        if node.op == "Shape":
            shape = self.shapes.get(ins[0])
            return list(shape) if shape is not None else None
        if node.op == "Cast":
            return self.partial_vector(ins[0])
        if node.op == "Pack":
            parts = [self.partial_vector(t) for t in ins]
            if any(p is None or len(p) != 1 for p in parts):
                return None
            return [p[0] for p in parts]
        if node.op == "ConcatV2":
            parts = [self.partial_vector(t) for t in ins[:-1]]
            if any(p is None for p in parts):
                return None
            return [d for p in parts for d in p]
        if node.op == "StridedSlice":
            vec = self.partial_vector(ins[0])
            begin, end, strides = (self.value(t) for t in ins[1:4])
            if vec is None or begin is None or end is None or strides is None:
                return None
            index = strided_slice_index(node, begin, end, strides, 1)
            if len(index) != 1:
                return None
            if isinstance(index[0], int):
                return [vec[index[0]]] if -len(vec) <= index[0] < len(vec) else None
            if isinstance(index[0], slice):
                return list(vec[index[0]])
            return None
        if node.op == "GatherV2":
            vec, idx = self.partial_vector(ins[0]), self.value(ins[1])
            if vec is None or idx is None:
                return None
            return [vec[int(i)] for i in np.atleast_1d(idx)]
        if node.op == "Prod":
            vec = self.partial_vector(ins[0])
            if vec is None or any(d is None for d in vec):
                return None if vec is None else [None]
            return [int(np.prod(vec))]
        return None
