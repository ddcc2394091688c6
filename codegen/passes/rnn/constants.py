"""What a loop reads from outside its step: weights, small constants, zero states.

Weights enter a loop as stored constants (maybe through Identity, Enter, or an Unpack of a
stacked kernel); each is read with a recipe template, so that the lifted node's weights load
from the graph's own constants. Permutations and fill values are small constants computed
from Consts; a Keras layer starts from zero states.
"""

from __future__ import annotations

import numpy as np

from ... import optable
from ...graph import Node, split_ref
from ...recipes import Operand, Reshape, Slice
from ..frames import through_identity


def outer_value(tensor: str, by_name: dict[str, Node], depth: int = 0):
    """(value, recipe template) of a loop input computed from one stored constant by
    Identity/Unpack, or None. The template reads the constant as Operand(tensor)."""
    if depth > 64:
        return None
    name, port = split_ref(tensor)
    node = by_name.get(name)
    if node is None:
        return None
    if node.op == "Const" and port == 0:
        value = node.attrs.get("value")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            return None
        return value, Operand(tensor)
    if node.op in ("Identity", "Snapshot", "Enter") and node.inputs:
        return outer_value(node.inputs[0], by_name, depth + 1)
    if node.op == "Unpack" and node.inputs and node.attrs.get("axis", 0) == 0:
        inner = outer_value(node.inputs[0], by_name, depth + 1)
        if inner is None or port >= inner[0].shape[0]:
            return None
        value, template = inner
        part = Reshape(Slice(template, port, port + 1, 0), tuple(value.shape[1:]))
        return value[port], part
    return None


def sliced_weight(tensor: str, by_name: dict[str, Node]):
    """(the slice's value, the whole weight's value and template) of a loop input that is a
    constant slice of a stored weight (Keras 2's LSTMCell slices its kernel per gate outside
    the loop), or None. A cell is proposed from the whole weight; the step reads the slice."""
    node = by_name.get(split_ref(through_identity(tensor, by_name))[0])
    if node is None or node.op != "StridedSlice" or len(node.inputs) != 4:
        return None
    whole = outer_value(node.inputs[0], by_name)
    bounds = [small_value(t, by_name) for t in node.inputs[1:]]
    info = optable.get("StridedSlice")
    if whole is None or any(b is None for b in bounds) or info.kernel is None:
        return None
    part = np.asarray(info.kernel(node, whole[0], *bounds))
    return part, whole[0], whole[1]


def small_value(tensor: str, by_name: dict[str, Node], depth: int = 0, memo=None):
    """A small constant computed from Consts (a permutation built with Range/ConcatV2)."""
    memo = {} if memo is None else memo
    if tensor not in memo:
        memo[tensor] = None if depth > 16 else _small_value_of(tensor, by_name, depth, memo)
    return memo[tensor]


def _small_value_of(tensor: str, by_name: dict[str, Node], depth: int, memo: dict):
    name, port = split_ref(tensor)
    node = by_name.get(name)
    if node is None or port != 0:
        return None
    if node.op == "Const":
        value = node.attrs.get("value")
        return value if isinstance(value, np.ndarray) else None
    if node.op not in ("Identity", "Snapshot", "Range", "ConcatV2"):
        return None
    ins = [small_value(t, by_name, depth + 1, memo) for t in node.inputs]
    if any(v is None for v in ins):
        return None
    try:
        if node.op in ("Identity", "Snapshot"):
            return ins[0]
        if node.op == "Range":
            start, limit, delta = (float(v) for v in ins)
            if not delta or not 0 <= (limit - start) / delta <= 64:
                return None  # a permutation's range is short
            return np.arange(ins[0], ins[1], ins[2])
        if node.op == "ConcatV2":
            return np.concatenate([np.atleast_1d(v) for v in ins[:-1]], axis=int(ins[-1]))
    except (ValueError, TypeError, IndexError):
        return None
    return None


# Ops whose result is zeros when their first input is (Keras 2 tiles its zero states from a
# sum of zeros_like(inputs)).
_KEEP_ZEROS = {"Tile", "ExpandDims", "Sum", "Reshape", "Identity", "Snapshot"}


def is_zeros(tensor: str, by_name: dict[str, Node], depth: int = 0) -> bool:
    """Whether a loop's initial state is zeros (Keras's default initial state)."""
    node = by_name.get(split_ref(through_identity(tensor, by_name))[0])
    if node is None or depth > 16:
        return False
    if node.op == "ZerosLike":  # Keras's first "previous output" of a masked loop
        return True
    if node.op in _KEEP_ZEROS and node.inputs:
        return is_zeros(node.inputs[0], by_name, depth + 1)
    if node.op == "Fill" and len(node.inputs) == 2:
        value = small_value(node.inputs[1], by_name)
        return value is not None and value.size == 1 and float(value.reshape(())) == 0.0
    if node.op == "Const":
        value = node.attrs.get("value")
        return isinstance(value, np.ndarray) and value.ndim == 2 and not value.any()
    return False
