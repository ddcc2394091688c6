"""The last path: a generated layer that calls the TensorFlow op itself.

For an op with neither a Keras layer nor a keras.ops equivalent, the generated module defines a
small layer class per op type whose `call` runs `tf.raw_ops.<Op>` with the node's attributes. The
model then runs, and matches, on the TensorFlow backend only; the class says so in its docstring
and the report at the top of model.py lists it. Argument names come from TensorFlow's op
registry as tf.raw_ops spells them (`codegen/opdefs.py`), never from the graph.

Keras builds a functional model by asking each layer what it returns. A TensorFlow-only layer
answers with the shapes and dtypes graph2py inferred for the node (its constructor's
`output_shapes` and `output_dtypes`, None for an unknown dimension) rather than by tracing the
op: TensorFlow's own shape functions fail on symbolic inputs for many ops (a scalar string
DecodeWav reads, a shape operand that is computed, an axis that is a tensor). Keras tensors
have no quantized dtypes, so a quantized tensor travels between layers as its integer storage
(quint8 as uint8) and the layer bitcasts it back for the op.

Declined (reported as unsupported): ops TensorFlow does not know, ops passing resource or variant
handles (variables, tables, tensor lists: no Keras tensor can carry them), function-valued
attributes (control flow, handled by its own passes), and attribute values that are not plain
data.
"""

from __future__ import annotations

import keyword

import numpy as np

from .. import opdefs, optable
from ..graph import Node
from ..spec import QUANTIZED_STORAGE, Ref, TFOp
from .registry import Matcher, fallback, string_literal, tensor_literal

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

# dtypes a Keras tensor carries (keras.backend's ALLOWED_DTYPES less the float8 ones)
KERAS_DTYPES = {
    "bfloat16",
    "bool",
    "complex64",
    "complex128",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "string",
}
# The generated class's own constructor arguments, which no op argument may shadow.
LAYER_ARGUMENTS = {"output_shapes", "output_dtypes", "quantized", "name", "self", "kwargs"}
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, ArithmeticError)


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


def output_specs(node: Node, m: Matcher, count: int) -> tuple[list, list] | None:
    """(shapes, Keras dtypes) of the node's outputs, or None when graph2py does not know the
    rank or the dtype of one of them (the layer then leaves it to Keras to trace the op)."""
    op = opdefs.get(node.op)
    dtypes = op.output_dtypes(_restored(op, node.attrs))
    rule = optable.output_shapes(node.op)
    shapes = [m.shape(node.output(0))] if count == 1 else None
    if rule is not None:
        try:
            shapes = rule(node, [m.shape(t) for t in node.inputs], m.consts)
        except SHAPE_ERRORS:
            shapes = None
    if dtypes is None or shapes is None or len(shapes) != count or len(dtypes) != count:
        return None
    dtypes = [QUANTIZED_STORAGE.get(d, d) for d in dtypes if d is not None]
    if (
        len(dtypes) != count
        or any(s is None for s in shapes)
        or not all(d in KERAS_DTYPES for d in dtypes)
    ):
        return None
    shapes = [tuple(d if isinstance(d, int) and d >= 0 else None for d in s) for s in shapes]
    return shapes, dtypes


def _restored(op: opdefs.OpDef, attrs: dict) -> dict:
    """The node's attributes, defaults filled in, with quantized dtypes named as such: the
    loader decodes quint8 as uint8 (its storage), which is right for a constant's values but
    not for an op whose type attribute allows quint8 and not uint8 (QuantizeV2, Dequantize)."""
    storage_of = {storage: dtype for dtype, storage in QUANTIZED_STORAGE.items()}
    restored = {name: default for name, _, default in op.attrs if default is not None}
    restored.update(attrs)
    for name, (kind, allowed) in op.allowed_values.items():
        value = attrs.get(name)
        if kind == "type" and value not in allowed and storage_of.get(value) in allowed:
            restored[name] = storage_of[value]
    return restored


def _quantized_inputs(node: Node, op: opdefs.OpDef) -> dict[str, str]:
    """{input keyword: quantized dtype} of the op's single-tensor inputs that are quantized."""
    dtypes = op.input_dtypes(_restored(op, node.attrs)) or []
    found = {}
    for (name, length), dtype in zip(op.inputs, dtypes):
        if not length and dtype in QUANTIZED_STORAGE:
            found[op.keyword(name)] = dtype
    return found


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
    names = [op.keyword(name) for name, *_ in (*op.inputs, *op.attrs)]
    if not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        return None
    if set(names) & LAYER_ARGUMENTS:
        return None
    restored = _restored(op, node.attrs)
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
            value = _plain(restored.get(name, default))
            if value != default:
                kwargs[op.keyword(name)] = value
    except TypeError:
        return None
    outputs = op.output_count(node.attrs)
    if outputs is None:
        return None
    if any(
        op.keyword(name) not in _quantized_inputs(node, op) and dtype in QUANTIZED_STORAGE
        for (name, _), dtype in zip(op.inputs, op.input_dtypes(restored) or [])
    ):
        return None  # a list of quantized tensors: nothing stores them
    inputs: list[str] = []
    args = []
    for t in node.inputs:
        value = m.inline_constant(t)
        text = string_literal(m.consts.value(t))
        if text is not None:  # a string tensor: the code holds it (Keras weights cannot)
            args.append(text)
            continue
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
    layer = m.tensorflow(node, tfop, args, inputs, [node.output(i) for i in range(outputs)], kwargs)
    layer.output_specs = output_specs(node, m, outputs)
    layer.quantized = _quantized_inputs(node, op)
    layer.stores_quantized = any(d in QUANTIZED_STORAGE for d in op.output_dtypes(restored) or [])
    return layer
