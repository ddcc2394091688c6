"""What the op families share: the contract of a numpy kernel and of a shape rule, the check
that keeps a hostile constant from exhausting memory (`limit`), and broadcasting.

A kernel is `kernel(node, *input values) -> value` (a list of values for an op with several
outputs) computing what TensorFlow computes, in TensorFlow's dtype: a float32 op stays float32,
a predicate gives bool. It raises one of KERNEL_ERRORS on operands it cannot evaluate.

A shape rule is `rule(node, input shapes, constants) -> shape of output 0 | None`. Shapes are
tuples with None for unknown dimensions, or None when even the rank is unknown; `constants`
answers `value(tensor)` and `partial_vector(tensor)` (passes/fold.py's Constants).

An operand rule runs the other way: `rule(node, input shapes, output shape, constants) -> one
shape or None per input`, what the op fixes of each operand given what is known of its output
(from the ops that read it) and of its other operands. A Conv2D's filter fixes its input's
rank and channels; an element-wise op gives an operand the output's shape. passes/shapes.py
infers a model input declared without a shape (or fed by a dataset iterator) from these.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..budget import current

Kernel = Callable[..., object]
ShapeRule = Callable[..., "tuple | None"]
OperandRule = Callable[..., "list[tuple | None]"]

# What a kernel raises on operands it cannot evaluate: the tensor is then not a constant.
KERNEL_ERRORS = (ValueError, TypeError, IndexError, ArithmeticError, np.exceptions.AxisError)

# What numpy spends on an array besides its elements: a result that is many arrays (a Split
# into a billion parts of an empty tensor) costs this much per part.
ARRAY_OVERHEAD = 112  # bytes: sys.getsizeof(np.empty(0))


def limit(node, size: int, *operands, arrays: int = 1) -> None:
    """Before a kernel allocates `arrays` arrays of `size` elements in all for `node`: a
    ConstantBudgetError (exit 3, naming the node and the size) when the conversion's constant
    budget (budget.py) cannot pay for them. A kernel whose result can be larger than its
    operands (a Fill of a huge shape, a broadcast, a ConcatV2 reading one tensor many times)
    computes that size from shapes and attributes and calls this first; elements count at the
    widest operand's itemsize (8 bytes without operands)."""
    itemsize = max((np.asarray(x).dtype.itemsize for x in operands), default=8)
    current().check(node, size * itemsize + arrays * ARRAY_OVERHEAD)


def run_kernel(kernel: Kernel, node, args: list) -> np.ndarray | tuple | None:
    """The kernel's result (a tuple of values for a kernel returning one value per output),
    or None when the operands are not something it can evaluate.
    NaN and infinity are results like any other (TF computes them too), so numpy's warnings
    about them are silenced rather than printed into the user's terminal."""
    try:
        with np.errstate(all="ignore"):
            result = kernel(node, *args)
    except KERNEL_ERRORS:
        return None
    if isinstance(result, tuple):  # an op with several outputs: one value each
        return tuple(np.asarray(r) for r in result)
    return np.asarray(result)


def dtype_of(node, key: str, default=np.float32) -> np.dtype:
    """The numpy dtype a node's type attribute names; `default` (TensorFlow's) when the node
    has none. ValueError when it names one numpy lacks (bfloat16, qint8 as TensorFlow means it):
    the value is then not folded, rather than computed in another dtype."""
    name = node.attrs.get(key)
    if not isinstance(name, str):
        return np.dtype(default)
    try:
        return np.dtype(name)
    except TypeError:
        raise ValueError(f"numpy has no dtype {name!r}") from None


def shape_operand(c, tensor: str, shape: tuple | None) -> list[int | None] | None:
    """The entries of a 1-D shape operand (a Fill's dims, a ScatterNd's shape), None for each
    one computed at run time: all of them when only the operand's length is known."""
    found = c.partial_vector(tensor)
    if found is not None:
        return [d if d is not None and d >= 0 else None for d in found]
    if shape is not None and len(shape) == 1 and shape[0] is not None:
        return [None] * shape[0]
    return None


def broadcast(a: tuple | None, b: tuple | None) -> tuple | None:
    """numpy's broadcast of two shapes, an unknown dimension taking the other's size."""
    if a is None or b is None:
        return None
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or y == x:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            return None
    return tuple(reversed(out))


def same_shape(node, ins, c):
    """The shape rule of an op whose output has its (first) input's shape."""
    return ins[0] if ins else None


def broadcast_shape(node, ins, c):
    """The shape rule of a binary op that broadcasts its two operands."""
    return broadcast(ins[0], ins[1]) if len(ins) == 2 else None


def same_operand(node, ins, out, c):
    """The operand rule of an op whose output has its (first) input's shape."""
    return [out] + [None] * (len(ins) - 1)


def broadcast_operands(node, ins, out, c):
    """An operand of a broadcasting op, given the output and the other operand: the output's
    rank when the other has fewer dimensions (so this one made the rank), each dimension the
    output's where the other operand's is 1 (so this one made it)."""
    if len(ins) != 2:
        return [None] * len(ins)
    return [_broadcast_operand(out, ins[1]), _broadcast_operand(out, ins[0])]


def _broadcast_operand(out, other):
    """Only when the other operand has fewer dimensions is this one's rank the output's (with
    as many it could have fewer itself)."""
    if out is None or other is None or len(other) >= len(out):
        return None
    other = (1,) * (len(out) - len(other)) + tuple(other)
    return tuple(o if d == 1 else None for o, d in zip(out, other))


def reduced_operands(node, ins, out, c):
    """A reduction's input has the output's rank (keep_dims) or as many more dimensions as
    it reduces axes, and the output's size on every axis it does not reduce."""
    axes = c.value(node.inputs[1]) if len(node.inputs) > 1 else None
    if out is None or axes is None:
        return [None] * len(ins)
    keep = node.attrs.get("keep_dims", False) and node.op not in ("ArgMax", "ArgMin")
    listed = [int(a) for a in np.atleast_1d(axes)]
    rank = len(out) if keep else len(out) + len(set(listed))
    if not rank:
        return [None] * len(ins)
    axes = {a % rank for a in listed}
    if not keep and len(axes) != len(set(listed)):
        return [None] * len(ins)  # -1 and rank - 1 both named: the rank is not what it seems
    if keep:
        return [tuple(None if i in axes else d for i, d in enumerate(out)), None]
    rest = iter(out)
    return [tuple(None if i in axes else next(rest) for i in range(rank)), None]


def reduced_shape(node, ins, c):
    """The input's shape less the reduced axes (kept as 1 with keep_dims). Axes computed at run
    time leave the rank known when their count is: every dimension is then unknown."""
    shape, axes = ins[0], c.value(node.inputs[1])
    if shape is None:
        return None
    if axes is None:
        keep = node.attrs.get("keep_dims", False) and node.op not in ("ArgMax", "ArgMin")
        count = 1 if ins[1] == () or node.op in ("ArgMax", "ArgMin") else None
        if ins[1] is not None and len(ins[1]) == 1:
            count = ins[1][0]
        if keep or count is not None:
            return (None,) * (len(shape) if keep else len(shape) - count)
        return None
    axes = {int(a) % len(shape) for a in np.atleast_1d(axes)}
    if node.op in ("ArgMax", "ArgMin"):
        return tuple(d for i, d in enumerate(shape) if i not in axes)
    keep = node.attrs.get("keep_dims", False)
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)
