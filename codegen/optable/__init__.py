"""The op table: one record per TensorFlow op type graph2py knows, the one place to teach it
an op's form, shape, value and keras.ops spelling.

A record (record.OpInfo) holds
  * the op's signature: input and output counts derived from TensorFlow's registry
    (codegen/data/tf_ops.json), plus the attribute forms later stages rely on; decoding checks
    every node of the op against it (graph.decode_node) and counts its outputs (output_count);
  * its family (unary, binary, reduction, NCHW image op) and whether passes/layout.py carries
    an NHWC tensor through it;
  * its shape rule (passes/shapes.py) and numpy kernel (passes/fold.py folds it, the RNN step
    check of passes/rnn/ evaluates it);
  * its keras.ops spelling, when the arguments line up one to one (patterns/ops.py).

Records of one family are declared together, one module per family (elementwise, arrays, nn,
quantize, plumbing, audio, tfonly), with the helpers of record.py; an element-wise op is one line there.
Patterns stay in codegen/patterns: the table says what an op is, patterns what to write for it.
Control flow (If, Case, While, frames) belongs to passes/control.py and passes/rnn/.
"""

from __future__ import annotations

import functools
from typing import Callable

from . import arrays, audio, elementwise, nn, plumbing, quantize, tfonly  # noqa: F401  (declare)
from .numeric import Kernel, ShapeRule
from .record import BINARY, NCHW, RECORDS, REDUCTION, UNARY, OpInfo
from .signature import Signature, derive

__all__ = [
    "BINARY",
    "NCHW",
    "RECORDS",
    "REDUCTION",
    "UNARY",
    "OpInfo",
    "fold_kernels",
    "get",
    "keras_spellings",
    "layout_class",
    "output_count",
    "output_shapes",
    "recipe_ufuncs",
    "shape_rule",
    "signature",
]


def get(op: str) -> OpInfo | None:
    return RECORDS.get(op)


@functools.cache
def signature(op: str) -> Signature | None:
    """What a node of `op` must look like: its record's signature, or, for an op TensorFlow
    registers that graph2py has no record of, the one TensorFlow's registry gives (input and
    output counts, allowed attribute values). None for an op TensorFlow does not know."""
    info = RECORDS.get(op)
    if info is not None:
        return info.signature
    try:
        return derive(op)
    except KeyError:  # not TensorFlow's, or its output count follows an inferred length
        return None


def output_count(node) -> int | None:
    """How many outputs `node` has, for the ops TensorFlow registers; None for the others (and
    when an attribute the count depends on is missing or malformed)."""
    found = signature(node.op)
    return None if found is None else found.output_count(node)


def fold_kernels() -> dict[str, Kernel]:
    """op -> kernel, for the ops constant folding evaluates."""
    return {op: info.kernel for op, info in RECORDS.items() if info.fold_kernel is not None}


def recipe_ufuncs() -> dict[str, str]:
    """op -> the numpy function a weight recipe applies for it, for the element-wise ops whose
    recipe is that function of its operands' recipes."""
    return {op: info.recipe for op, info in RECORDS.items() if info.recipe}


def keras_spellings(family: str) -> dict[str, str]:
    """op -> keras.ops function, for the ops of `family` that keras.ops computes one to one."""
    return {
        op: info.keras
        for op, info in sorted(RECORDS.items())
        if info.family == family and info.keras
    }


def layout_class(op: str) -> str | None:
    """The family of an op passes/layout.py carries NHWC tensors through (or rewrites, for
    NCHW); None for any other op."""
    info = RECORDS.get(op)
    return info.family if info is not None and info.channels_last else None


def output_shapes(op: str) -> Callable | None:
    """The rule giving the shapes of every output of `op` (for an op with several), if any."""
    info = RECORDS.get(op)
    return None if info is None else info.shapes


def shape_rule(op: str) -> ShapeRule | None:
    info = RECORDS.get(op)
    return None if info is None else info.shape
