"""The op record and the helpers that declare one: `op` for any op, and one helper per family
(`unary`, `binary`, `reduction`) that fills in what the family shares, so an element-wise op
is one line:

    unary("Tan", np.tan, "tan")

declares Tan's signature (one input, one output, from TensorFlow's registry), its shape rules
(the output has the input's shape, and so the input has the output's), its fold kernel (np.tan
of the value, which keeps its dtype) and its keras.ops spelling (`keras.ops.tan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .numeric import (
    Kernel,
    OperandRule,
    ShapeRule,
    broadcast_operands,
    broadcast_shape,
    limit,
    reduced_operands,
    reduced_shape,
    same_operand,
    same_shape,
)
from .signature import Attr, Signature, derive

# Families: what passes/shapes.py, passes/layout.py and patterns/ops.py know about an op
# from its kind alone.
UNARY = "unary"  # one tensor in, one of its shape out (element-wise, or along the last axis)
BINARY = "binary"  # two tensors in, broadcast to one out, element by element
REDUCTION = "reduction"  # a tensor and the axes to reduce over
NCHW = "nchw"  # an image op whose data_format attribute names its layout


@dataclass(frozen=True)
class OpInfo:
    """Everything graph2py knows about one TensorFlow op type, apart from its patterns."""

    op: str
    signature: Signature
    family: str | None = None
    shape: ShapeRule | None = None  # shape of output 0; see numeric.py
    # what output 0's shape and the other operands fix of each operand's shape (how
    # passes/shapes.py infers a model input's shape from its consumers); see numeric.py
    operands: OperandRule | None = None
    # shapes of every output, for an op with several (a TensorFlow-only layer states them all)
    shapes: Callable[..., "list | None"] | None = None
    kernel: Kernel | None = None  # numpy evaluation; see numeric.py
    folds: bool = True  # constant folding evaluates it (else only the RNN step check does)
    keras: str | None = None  # the keras.ops function computing it, arguments one to one
    channels_last: bool = False  # passes/layout.py carries an NHWC-held tensor through it
    recipe: str | None = None  # the numpy function a weight recipe step spells it with
    why: str = ""  # why it has no shape rule or no fold kernel, where one would be expected

    @property
    def fold_kernel(self) -> Kernel | None:
        return self.kernel if self.folds else None


RECORDS: dict[str, OpInfo] = {}


def op(
    name: str,
    *,
    attrs: dict[str, Attr] | None = None,
    list_min: int = 0,
    family: str | None = None,
    shape: ShapeRule | None = None,
    operands: OperandRule | None = None,
    shapes: Callable | None = None,
    kernel: Kernel | None = None,
    folds: bool = True,
    keras: str | None = None,
    channels_last: bool = False,
    recipe: str | None = None,
    why: str = "",
) -> OpInfo:
    """Declare `name`'s record. `attrs` are the attribute forms decoding checks; `list_min` the
    fewest tensors its list input takes (TensorFlow's minimum, which its table lacks)."""
    if name in RECORDS:
        raise ValueError(f"{name} is declared twice")
    info = OpInfo(
        name,
        derive(name, attrs, list_min),
        family,
        shape,
        operands,
        shapes,
        kernel,
        folds,
        keras,
        channels_last,
        recipe,
        why,
    )
    RECORDS[name] = info
    return info


def unary(name: str, fn: Callable | None = None, keras: str | None = None, **more) -> OpInfo:
    """A one-input op whose output has the input's shape; `fn(x)` computes it with numpy."""
    kernel = more.pop("kernel", None) or (_of_value(fn) if fn is not None else None)
    operands = more.pop("operands", same_operand)
    return op(
        name,
        family=UNARY,
        shape=same_shape,
        operands=operands,
        kernel=kernel,
        keras=keras,
        **more,
    )


def binary(name: str, fn: Callable | None = None, keras: str | None = None, **more) -> OpInfo:
    """A broadcasting two-input op; `fn(a, b)` computes it with numpy."""
    kernel = more.pop("kernel", None) or (_of_values(fn) if fn is not None else None)
    return op(
        name,
        family=BINARY,
        shape=broadcast_shape,
        operands=broadcast_operands,
        kernel=kernel,
        keras=keras,
        **more,
    )


def reduction(name: str, fn: Callable | None = None, keras: str | None = None, **more) -> OpInfo:
    """A reduction over constant axes, keep_dims or not; `fn(x, axis, keepdims)` is numpy's."""
    kernel = _reduce(fn) if fn is not None else None
    attrs = more.pop("attrs", {"keep_dims": Attr("b")})
    shape = reduced_shape
    return op(
        name,
        family=REDUCTION,
        attrs=attrs,
        shape=shape,
        operands=reduced_operands,
        kernel=kernel,
        keras=keras,
        **more,
    )


def _of_value(fn: Callable) -> Kernel:
    def kernel(node, x):
        return fn(x)

    kernel.__doc__ = f"{getattr(fn, '__name__', fn)} of the value"
    return kernel


def _of_values(fn: Callable) -> Kernel:
    """fn(a, b), the broadcast result's size checked first (numeric.limit)."""

    def kernel(node, a, b):
        limit(node, math.prod(np.broadcast_shapes(np.shape(a), np.shape(b))), a, b)
        return fn(a, b)

    return kernel


def _reduce(fn: Callable) -> Kernel:
    def kernel(node, x, axes):
        keep = bool(node.attrs.get("keep_dims", node.attrs.get("keepdims", False)))
        return fn(x, axis=tuple(int(a) for a in np.atleast_1d(axes)), keepdims=keep).astype(x.dtype)

    return kernel
