"""Ops that return one of their operands unchanged once the graph's settings are constants.

A training switch set for inference (`--set keep_prob=1.0`, an `is_train` default) leaves
arithmetic that changes nothing: `x / keep_prob` is `x / 1`, and dropout's mask keeps every
element (`random_uniform(shape(x)) >= 0`, or TF1's `floor(keep_prob + random_uniform(...))`,
which is 1). Converting those nodes would put a Rescaling(1.0), a random number generator and
a `where` into a model that computes none of them; prune.py bypasses them as it bypasses
Identity.

What is proven here, per tensor: the interval its values lie in (a constant's exactly; a
RandomUniform's [0, 1); only scalars, so nothing is folded) and which tensor's shape it has when that is not a constant's (a
RandomUniform of `Shape(x)` has x's). A node passes operand i through when the other operands
cannot change it: multiplying by a value known to be 1, adding 0, selecting with a condition
known to hold everywhere, each only when the result has operand i's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..graph import Graph, Node

# op -> (the value that leaves the other operand unchanged, the positions it may take)
_NEUTRAL = {
    "Mul": (1, (0, 1)),
    "RealDiv": (1, (1,)),
    "Div": (1, (1,)),
    "Add": (0, (0, 1)),
    "AddV2": (0, (0, 1)),
    "Sub": (0, (1,)),
}
# the ops whose operands' facts give theirs (a Cast only to a float type: to an integer or a
# bool it would round); a longer chain than _DEPTH is no dropout mask
_DERIVED = {"Add", "AddV2", "Sub", "Cast", "Floor", "GreaterEqual", "Greater", "Less", "LessEqual"}
_FLOATS = {"float16", "float32", "float64"}
_DEPTH = 16
_COMPARE = {
    "GreaterEqual": lambda a, b: (a.lo >= b.hi, a.below(b.lo)),
    "Greater": lambda a, b: (a.lo > b.hi or (a.lo >= b.hi and b.open), a.hi <= b.lo),
    "Less": lambda a, b: (a.below(b.lo), a.lo >= b.hi and not b.open),
    "LessEqual": lambda a, b: (a.hi <= b.lo, a.lo > b.hi or (a.lo >= b.hi and b.open)),
}


@dataclass(frozen=True)
class Known:
    """Every element lies in [lo, hi] ([lo, hi) when open); `like` is the tensor whose shape
    this one has, None for a scalar (which broadcasts without changing anything)."""

    lo: float
    hi: float
    open: bool = False
    like: str | None = None

    def below(self, bound: float) -> bool:
        """Every element is less than `bound`."""
        return self.hi < bound or (self.open and self.hi <= bound)

    @property
    def value(self) -> float | None:
        """The one value every element has, if it has one."""
        return self.lo if self.lo == self.hi and not self.open else None


class PassThrough:
    """Which operand a node forwards unchanged, for the nodes of `graph` in topological order;
    `resolve` maps a tensor to the one it stands for after the bypasses found so far."""

    def __init__(self, graph: Graph, resolve: Callable[[str], str]):
        self.graph, self.resolve = graph, resolve
        self.known: dict[str, Known | None] = {}

    def operand(self, node: Node) -> int | None:
        """The index of the input `node` returns unchanged, or None."""
        if node.op in ("Select", "SelectV2"):
            return self._select(node)
        if node.op not in _NEUTRAL or len(node.inputs) != 2:
            return None
        neutral, positions = _NEUTRAL[node.op]
        for i in positions:
            kept = 1 - i
            known = self.facts(node.inputs[i])
            if known is not None and known.value == neutral and self._fits(known, node, kept):
                return kept
        return None

    def _select(self, node: Node) -> int | None:
        if len(node.inputs) != 3:
            return None
        known = self.facts(node.inputs[0])
        if known is None or known.value is None:
            return None
        kept = 1 if known.value else 2
        other = self.facts(node.inputs[3 - kept])
        if node.op == "SelectV2" and (other is None or not self._fits(other, node, kept)):
            return None  # the other branch might broadcast the result to a larger shape
        return kept if self._fits(known, node, kept) else None

    def _fits(self, known: Known, node: Node, kept: int) -> bool:
        """Broadcasting with `known` leaves operand `kept`'s shape as it is."""
        return known.like is None or self.resolve(known.like) == self.resolve(node.inputs[kept])

    def facts(self, tensor: str, depth: int = 0) -> Known | None:
        """The interval of `tensor`'s values, and whose shape it has, when both are proven."""
        if tensor not in self.known:
            if depth > _DEPTH:
                return None
            self.known[tensor] = self._facts(tensor, depth)
        return self.known[tensor]

    def _facts(self, tensor: str, depth: int) -> Known | None:
        node = self.graph.producer(self.resolve(tensor))
        if node.op == "Const":
            value = node.attrs.get("value")
            if not isinstance(value, np.ndarray) or value.ndim or value.dtype.kind not in "biuf":
                return None  # a constant array may broadcast to a larger shape
            return Known(float(value), float(value))
        if node.op == "RandomUniform":
            shape = self.graph.producer(self.resolve(node.inputs[0]))
            if shape.op == "Shape":
                return Known(0.0, 1.0, open=True, like=shape.inputs[0])
            return None
        if node.op not in _DERIVED:
            return None
        args = [self.facts(t, depth + 1) for t in node.inputs]
        if not args or any(a is None for a in args):
            return None
        likes = {a.like for a in args if a.like is not None}
        if len(likes) > 1:
            return None
        like = next(iter(likes), None)
        if node.op in ("Add", "AddV2") and len(args) == 2:
            a, b = args
            return Known(a.lo + b.lo, a.hi + b.hi, a.open or b.open, like)
        if node.op == "Sub" and len(args) == 2 and args[1].value is not None:
            a, b = args
            return Known(a.lo - b.value, a.hi - b.value, a.open, like)
        if node.op == "Cast" and node.attrs.get("DstT") in _FLOATS:
            return args[0]
        if node.op == "Floor":
            (a,) = args
            top = math.ceil(a.hi) - 1 if a.open and a.hi == math.ceil(a.hi) else math.floor(a.hi)
            return Known(math.floor(a.lo), top, False, like)
        if node.op in _COMPARE and len(args) == 2:
            always, never = _COMPARE[node.op](*args)
            if always or never:
                return Known(float(always), float(always), False, like)
        return None
