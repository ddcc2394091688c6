"""The last path: a generated layer that calls the TensorFlow op itself.

For an op with neither a Keras layer nor a keras.ops equivalent, the generated module defines a
small layer class per op type whose `call` runs `tf.raw_ops.<Op>` with the node's attributes. The
model then runs, and matches, on the TensorFlow backend only; the class says so in its docstring
and the report at the top of model.py lists it. Argument names come from TensorFlow's op
registry as tf.raw_ops spells them (`codegen/opdefs.py`), never from the graph.

Declined (reported as unsupported): ops TensorFlow does not know, ops passing resource or variant
handles (variables, tables, tensor lists: no Keras tensor can carry them), function-valued
attributes (control flow, handled by its own passes), and attribute values that are not plain
data.
"""

from __future__ import annotations

import keyword

import numpy as np

from .. import opdefs
from ..graph import Node
from ..spec import Ref, TFOp
from .registry import Matcher, fallback, tensor_literal

# Ops whose meaning is the graph's structure, not a computation (handled by the passes).
NOT_COMPUTATIONS = {
    "Const",
    "Placeholder",
    "PlaceholderWithDefault",
    "NoOp",
    "Identity",
    "IdentityN",
    "PartitionedCall",
    "StatefulPartitionedCall",
}


def _plain(value):
    """An attribute value as plain Python data, or raise TypeError."""
    if isinstance(value, np.ndarray):
        raise TypeError("tensor-valued attribute")
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(type(value).__name__)


def _count(length_attr: str, attrs: dict) -> int | None:
    value = attrs.get(length_attr)
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


@fallback("*")
def tensorflow_op(node: Node, m: Matcher):
    op = opdefs.get(node.op)
    if op is None or op.handles or node.op in NOT_COMPUTATIONS:
        return None
    names = [name for name, *_ in (*op.inputs, *op.attrs)]
    if not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        return None
    grouped: list[tuple[str, int]] = []
    for name, length in op.inputs:
        count = _count(length, node.attrs) if length else 0
        if count is None:
            return None
        grouped.append((name, count))
    if sum(c or 1 for _, c in grouped) != len(node.inputs):
        return None
    kwargs = {}
    try:
        for name, kind, default in op.attrs:
            if "func" in kind:
                return None
            value = _plain(node.attrs.get(name, default))
            if value != default:
                kwargs[op.keyword(name)] = value
    except TypeError:
        return None
    outputs = op.output_count(node.attrs)
    if outputs is None:
        return None
    inputs: list[str] = []
    args = []
    for t in node.inputs:
        value = m.inline_constant(t)
        if value is not None and (inputs or t != node.inputs[-1]):
            # Keras passes only tensors positionally to a layer, and the op infers its type
            # attributes from the operand: a tensor of the graph's own dtype
            args.append(tensor_literal(value))
        else:  # the last operand is a tensor when all others are literals: Keras needs one
            if t not in inputs:
                inputs.append(t)
            args.append(Ref(inputs.index(t)))
    if not inputs:
        return None  # an op without inputs (a random source, a variable): no data path
    grouped = [(op.keyword(name), count) for name, count in grouped]
    attrs = tuple(op.keyword(name) for name, *_ in op.attrs)
    tfop = TFOp(node.op, tuple(grouped), attrs)
    return m.tensorflow(node, tfop, args, inputs, [node.output(i) for i in range(outputs)], kwargs)
