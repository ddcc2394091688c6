"""Static shape inference: enough to write `keras.Input` shapes and to tell a Flatten from a
Reshape, a Dense on 2-D input from one on 4-D input, a global pool from a reduction.

Shapes are tuples with None for unknown dimensions (the batch, usually), or None when even the
rank is unknown. Each op's rule is declared with the op in codegen/optable; the ops passes
create (the RNN layers) or own (Select, for control flow) register theirs here with `rule`. An
op without a rule but with a fold kernel gets its shape from running the kernel on zeros; any
other op gets unknown shapes, and patterns that need one then decline.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import optable
from ..graph import Graph, Node
from ..optable.numeric import broadcast  # noqa: F401  (passes/control.py reads it here)
from ..optable.numeric import run_kernel
from .fold import KERNELS, Constants

Shape = tuple  # of int | None

# Rules of ops that have none in the op table, registered by the passes that handle them.
RULES: dict[str, Callable] = {}


def rule(*ops):
    def register(fn):
        for op in ops:
            if optable.shape_rule(op) is not None:
                raise ValueError(f"{op} has a shape rule in codegen/optable already")
            RULES[op] = fn
        return fn

    return register


def shape_rule(op: str) -> Callable | None:
    return optable.shape_rule(op) or RULES.get(op)


def _via_numpy(node: Node, ins: list, c: Constants) -> Shape | None:
    """Run the numpy kernel on zeros, twice with different batch sizes: the dims that change
    with the batch are the free ones."""
    kernel = KERNELS.get(node.op)
    if kernel is None or any(s is None for s in ins):
        return None
    results = []
    for batch in (2, 3):
        args = []
        for tensor, shape in zip(node.inputs, ins):
            value = c.value(tensor)
            if value is None:
                dims = [batch if d is None else d for d in shape]
                if math.prod(max(d, 1) for d in dims) > 1 << 22:
                    return None  # too large to try (numpy refuses even an empty array this wide)
                value = np.zeros(dims, np.float32)
            args.append(value)
        result = run_kernel(kernel, node, args)
        if result is None:
            return None
        results.append(result.shape)
    a, b = results
    if len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def infer_shapes(
    graph: Graph, consts: Constants, input_shapes: dict[str, Shape] | None = None
) -> dict[str, Shape | None]:
    """Shapes of every node's first output, in one topological sweep."""
    shapes = consts.shapes
    overrides = input_shapes or {}
    for node in graph:
        out = node.output(0)
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            shape = overrides.get(out, node.attrs.get("shape"))
            shapes[out] = tuple(shape) if shape is not None else None
            continue
        value = consts.value(out)
        if value is not None:
            shapes[out] = tuple(value.shape)
            continue
        ins = [shapes.get(t) for t in node.inputs]
        found = shape_rule(node.op)
        if found is not None:
            try:
                shapes[out] = _checked(found(node, ins, consts))
            except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
                shapes[out] = None  # operands the rule cannot make sense of: shape unknown
        else:
            shapes[out] = _checked(_via_numpy(node, ins, consts))
    return shapes


def _checked(shape) -> Shape | None:
    """A rule's result as a shape: a dimension that is not a size (negative, as from a window
    larger than its input, or not an integer at all) is unknown rather than passed on."""
    if shape is None:
        return None
    return tuple(_size(d) for d in shape)


def _size(dim) -> int | None:
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim >= 0:
        return int(dim)
    return None
