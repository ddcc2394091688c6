"""The step of a loop, evaluated with numpy: how a candidate cell is checked.

The kernels are the op table's (codegen/optable); STEP_OPS limits them to what a cell is made
of. A step that reads or computes anything else raises NotRNN, the pass's one way of saying
"not a recurrent layer"; EVAL_ERRORS is what evaluating an untrusted graph may raise besides.
"""

from __future__ import annotations

import numpy as np

from ... import optable
from ...graph import Node, split_ref


class Step:
    """Evaluates body tensors with numpy from given values of the step's inputs."""

    def __init__(self, body: dict[str, Node], known: dict, outer: dict[str, Node]):
        self.body = body
        self.outer = outer  # a lowered frame's constants hang off it by control edges only
        self.values = dict(known)

    def __call__(self, tensor: str) -> np.ndarray:
        stack = [tensor]
        while stack:
            current = stack[-1]
            if current in self.values:
                stack.pop()
                continue
            name, port = split_ref(current)
            node = self.body.get(name)
            if node is None and name in self.outer and self.outer[name].op == "Const":
                node = self.outer[name]
            if node is None:
                raise NotRNN(f"step reads {current!r}")
            missing = [t for t in node.inputs if t not in self.values]
            if missing:
                if len(stack) > 4096:
                    raise NotRNN("step too deep")
                stack.extend(missing)
                continue
            stack.pop()
            info = optable.get(node.op) if node.op in STEP_OPS else None
            kernel = _MASK_KERNELS.get(node.op) or (info and info.kernel)
            if node.op not in STEP_OPS or kernel is None:
                raise NotRNN(f"step computes {node.op}")
            with np.errstate(all="ignore"):  # overflow is a value like any other here
                result = kernel(node, *[self.values[t] for t in node.inputs])
            results = result if isinstance(result, list) else [result]
            if port >= len(results):
                raise NotRNN("bad port")
            for i, r in enumerate(results):
                self.values[f"{name}:{i}"] = np.asarray(r)
        return self.values[tensor]


class NotRNN(Exception):
    pass


# The ops a recognised cell's step is made of. Their numpy kernels come from the op table; a
# step computing any other op is no cell this pass lifts. (Any op with a kernel could be
# evaluated, and the numeric check would still hold; widening this changes which loops lift.)
STEP_OPS = frozenset(
    "Identity Snapshot Const MatMul BiasAdd Add AddV2 Sub Mul Sigmoid Tanh Split SplitV "
    "ConcatV2 StridedSlice Unpack Squeeze Reshape Tile SelectV2 Select Shape Pack Minimum "
    "Maximum ClipByValue".split()
)


def _select(node: Node, condition, a, b):
    """TF1's Select: a vector condition picks rows; SelectV2 broadcasts."""
    if node.op == "Select" and condition.ndim == 1 and a.ndim > 1:
        condition = condition.reshape((-1,) + (1,) * (a.ndim - 1))
    return np.where(condition, a, b)


# How a masked step (Keras's `where(mask, new, old)` over the mask tiled to the output's
# width) and Keras 2's hard sigmoid (clip_by_value) are evaluated: the op table has no numpy
# kernel for these ops (constant folding evaluates Shape from inferred shapes), so theirs live
# here.
_MASK_KERNELS = {
    "Tile": lambda node, x, multiples: np.tile(x, [int(m) for m in multiples]),
    "SelectV2": _select,
    "Select": _select,
    "Shape": lambda node, x: np.array(np.shape(x), np.int32),
    "ClipByValue": lambda node, x, lo, hi: np.clip(x, lo, hi),
}


EVAL_ERRORS = (KeyError, IndexError, ValueError, TypeError, ArithmeticError)
