"""Recipes: how a Keras weight is rebuilt from what the source stores, one numpy step at a time.

Frozen graphs keep the machinery that prepares weights (a bias reshaped then squeezed, BatchNorm
statistics reshaped to 1x1x1xC, an RNN kernel's gate blocks reordered). The weight loader does
not hide that: `load_weights.py` reads the original constants (or checkpoint variables) and
spells out every step, so a reader can see where each number comes from. A recipe is a small
tree of the frozen dataclasses below, built by passes/fold.py (folded constants), passes/rnn/
(lifted recurrent cells) and the patterns; `source` writes it into the loader and `evaluate`
computes the same value with numpy.

Leaves: `Read` (a graph constant), `Variable` (a checkpoint variable), `Value` (a value written
out), and, only inside passes/rnn/'s templates, `Operand` (an input of the lifted node,
replaced by that input's recipe when the pattern builds the layer).

Quantized and quantization-aware weights keep their quantization as steps too (`Dequantize`,
`Quantize`, `FakeQuant`): the loader calls numpy functions named after TensorFlow's
(`dequantize(...)`, `fake_quant_with_min_max_vars(...)`), whose source codegen/quantization.py
holds and the loader embeds, so the Keras weight is a plain float weight whose origin is in view.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterator, Mapping, Union

import numpy as np

from . import quantization


class Step:
    """What every recipe step shares: the walks over its sub-recipes."""

    def children(self) -> tuple[Recipe, ...]:
        """The sub-recipes, in the order the loader's source reads them."""
        return ()

    def leaves(self) -> Iterator[Recipe]:
        """The leaf steps (reads, values, operands), depth first, left to right."""
        stack: list[Step] = [self]
        while stack:
            step = stack.pop()
            children = step.children()
            if children:
                stack.extend(reversed(children))
            else:
                yield step

    def first_source(self) -> str | None:
        """The graph constant or checkpoint key the recipe reads first: what names the weight
        (TF1 variables carry their layer's name)."""
        for leaf in self.leaves():
            match leaf:
                case Read(name) | Variable(name):
                    return name
        return None

    def graph_reads(self) -> list[str]:
        """The graph constants the recipe reads (not checkpoint variables), in order."""
        return [leaf.node for leaf in self.leaves() if isinstance(leaf, Read)]

    def reads_graph(self) -> bool:
        """Whether the loader needs the graph file: a checkpoint-based loader has none."""
        return any(isinstance(leaf, Read) for leaf in self.leaves())


@dataclass(frozen=True)
class Read(Step):
    """The raw constant stored in the graph, by node name. `stored`: where the graph file holds
    it when that is not a node of the graph (a constant of a function body, inlined under its
    call's name: `FUNCTION:NODE`, which the loader looks up in the function library).
    `shape` and `dtype`: the stored value's, when known (they let `simplify` drop steps that
    change nothing); they are no part of the recipe's identity."""

    node: str
    stored: str | None = None
    shape: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    dtype: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Variable(Step):
    """A variable's value read from the checkpoint, by key (a checkpoint-based loader reads
    no graph). `shape`, `dtype`: as Read's."""

    key: str
    shape: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    dtype: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Value(Step):
    """A value written out in the loader: folded at conversion time (shape arithmetic), or a
    small graph constant a checkpoint-based loader needs. `values` is a nested list."""

    values: Any
    dtype: str


@dataclass(frozen=True)
class Operand(Step):
    """In passes/rnn/'s templates only: an input of the lifted node, first by tensor name,
    then by input index; patterns/rnn.py puts that input's recipe in its place."""

    ref: str | int


@dataclass(frozen=True)
class Reshape(Step):
    inner: Recipe
    shape: tuple[int, ...]

    def children(self):
        return (self.inner,)


@dataclass(frozen=True)
class Transpose(Step):
    inner: Recipe
    perm: tuple[int, ...]

    def children(self):
        return (self.inner,)


@dataclass(frozen=True)
class AsType(Step):
    inner: Recipe
    dtype: str

    def children(self):
        return (self.inner,)


@dataclass(frozen=True)
class Slice(Step):
    """inner[start:stop] along one axis (a gate's block of a fused RNN kernel)."""

    inner: Recipe
    start: int
    stop: int
    axis: int

    def children(self):
        return (self.inner,)


@dataclass(frozen=True)
class Concat(Step):
    """np.concatenate of the parts (gate blocks in Keras's order)."""

    axis: int
    parts: tuple[Recipe, ...]

    def children(self):
        return self.parts


@dataclass(frozen=True)
class Ufunc(Step):
    """An elementwise numpy function (np.multiply, ...) of recipes and plain numbers (small
    operands such as an epsilon read better as literals)."""

    name: str
    args: tuple[Any, ...]  # Recipe | int | float | bool

    def children(self):
        return tuple(a for a in self.args if isinstance(a, Step))


@dataclass(frozen=True)
class Index(Step):
    """inner[index]: a slice of a stored constant (a folded StridedSlice), `index` a tuple of
    ints, slices, None (a new axis) and Ellipsis."""

    inner: Recipe
    index: tuple

    def children(self):
        return (self.inner,)


@dataclass(frozen=True)
class Stack(Step):
    """np.stack of the parts along a new axis (a folded Pack)."""

    axis: int
    parts: tuple[Recipe, ...]

    def children(self):
        return self.parts


@dataclass(frozen=True)
class Take(Step):
    """np.take(inner, indices, axis=axis): rows of a table gathered (a folded GatherV2)."""

    inner: Recipe
    indices: Recipe
    axis: int

    def children(self):
        return (self.inner, self.indices)


def _steps(*args) -> tuple:
    return tuple(a for a in args if isinstance(a, Step))


@dataclass(frozen=True)
class Dequantize(Step):
    """tf.quantization.dequantize of stored codes (`inner`, uint8 for quint8, ...) in the range
    [low, high] (recipes, or plain numbers when they are scalars), per slice of `axis`."""

    inner: Recipe
    low: Any  # Recipe | float
    high: Any
    mode: str = "MIN_COMBINED"
    axis: int = -1
    narrow_range: bool = False

    def children(self):
        return _steps(self.inner, self.low, self.high)


@dataclass(frozen=True)
class Quantize(Step):
    """tf.quantization.quantize's codes (QuantizeV2's first output) of a float weight."""

    inner: Recipe
    low: Any  # Recipe | float
    high: Any
    dtype: str  # numpy's dtype of the codes: uint8 for quint8, ...
    mode: str = "MIN_COMBINED"
    round_mode: str = "HALF_AWAY_FROM_ZERO"
    narrow_range: bool = False
    axis: int = -1
    ensure_minimum_range: float = 0.01

    def children(self):
        return _steps(self.inner, self.low, self.high)


# FakeQuant op -> the numpy function (codegen/quantization.py, embedded in loaders) computing it
FAKE_QUANT = {
    "FakeQuantWithMinMaxArgs": "fake_quant_with_min_max_args",
    "FakeQuantWithMinMaxVars": "fake_quant_with_min_max_vars",
    "FakeQuantWithMinMaxVarsPerChannel": "fake_quant_with_min_max_vars_per_channel",
}


@dataclass(frozen=True)
class FakeQuant(Step):
    """A weight quantized to num_bits and back, as the FakeQuant op `op` (a key of FAKE_QUANT)
    computes it, in the range [low, high] (recipes, or plain numbers)."""

    inner: Recipe
    op: str
    low: Any  # Recipe | float
    high: Any
    num_bits: int = 8
    narrow_range: bool = False

    def children(self):
        return _steps(self.inner, self.low, self.high)


QUANTIZATION = (Dequantize, Quantize, FakeQuant)

Recipe = Union[
    Read,
    Variable,
    Value,
    Operand,
    Reshape,
    Transpose,
    AsType,
    Slice,
    Concat,
    Ufunc,
    Index,
    Stack,
    Take,
    Dequantize,
    Quantize,
    FakeQuant,
]


def quantizes(recipe: Recipe) -> bool:
    """Whether the recipe has a quantization step: its loader needs codegen/quantization.py."""
    stack = [recipe]
    while stack:
        step = stack.pop()
        if isinstance(step, QUANTIZATION):
            return True
        stack.extend(step.children())
    return False


def evaluate(recipe: Recipe, reader: Mapping[str | int, np.ndarray]) -> np.ndarray:
    """The recipe's value, computed as the loader's source (loader.recipe_source) computes it;
    `reader` gives stored values by node name or checkpoint key, and a template's operands by
    their ref."""
    match recipe:
        case Read(name) | Variable(name) | Operand(name):
            return reader[name]
        case Value(values, dtype):
            return np.array(values, dtype)
        case Reshape(inner, shape):
            return np.reshape(evaluate(inner, reader), shape)
        case Transpose(inner, perm):
            return np.transpose(evaluate(inner, reader), perm)
        case AsType(inner, dtype):
            return evaluate(inner, reader).astype(dtype)
        case Slice(inner, start, stop, axis):
            lead = (Ellipsis,) if axis < 0 else (slice(None),) * axis
            return evaluate(inner, reader)[(*lead, slice(start, stop))]
        case Concat(axis, parts):
            return np.concatenate([evaluate(p, reader) for p in parts], axis=axis)
        case Ufunc(name, args):
            values = [evaluate(a, reader) if isinstance(a, Step) else a for a in args]
            return getattr(np, name)(*values)
        case Index(inner, index):
            return evaluate(inner, reader)[index]
        case Stack(axis, parts):
            return np.stack([evaluate(p, reader) for p in parts], axis=axis)
        case Take(inner, indices, axis):
            return np.take(evaluate(inner, reader), evaluate(indices, reader), axis=axis)
        case Dequantize(inner, low, high, mode, axis, narrow_range):
            low, high = _operand(low, reader), _operand(high, reader)
            codes = evaluate(inner, reader)
            return quantization.dequantize(codes, low, high, mode, axis, narrow_range)
        case Quantize(inner, low, high, dtype, mode, round_mode, narrow_range, axis, ensure):
            low, high = _operand(low, reader), _operand(high, reader)
            values = evaluate(inner, reader)
            return quantization.quantize(
                values, low, high, dtype, mode, round_mode, narrow_range, axis, ensure
            )
        case FakeQuant(inner, op, low, high, num_bits, narrow_range):
            fn = getattr(quantization, FAKE_QUANT[op])
            low, high = _operand(low, reader), _operand(high, reader)
            return fn(evaluate(inner, reader), low, high, num_bits, narrow_range)
    raise ValueError(f"not a recipe step: {recipe!r}")


def _operand(value, reader):
    return evaluate(value, reader) if isinstance(value, Step) else value


def bind(template: Recipe, recipe_of) -> Recipe | None:
    """The template with each Operand replaced by `recipe_of(operand.ref)`, depth first, left
    to right; None when that gives None for one of them."""
    match template:
        case Operand(ref):
            return recipe_of(ref)
        case Reshape() | Transpose() | AsType() | Slice() | Index():
            inner = bind(template.inner, recipe_of)
            return None if inner is None else replace(template, inner=inner)
        case Concat(axis, parts) | Stack(axis, parts):
            bound = [bind(p, recipe_of) for p in parts]
            return None if any(b is None for b in bound) else replace(template, parts=tuple(bound))
        case Take(inner, indices, axis):
            inner, indices = bind(inner, recipe_of), bind(indices, recipe_of)
            return None if inner is None or indices is None else Take(inner, indices, axis)
        case Ufunc(name, args):
            bound = [bind(a, recipe_of) if isinstance(a, Step) else a for a in args]
            return None if any(b is None for b in bound) else Ufunc(name, tuple(bound))
        case Dequantize() | Quantize() | FakeQuant():
            parts = {
                key: bind(value, recipe_of)
                for key in ("inner", "low", "high")
                if isinstance(value := getattr(template, key), Step)
            }
            return None if any(p is None for p in parts.values()) else replace(template, **parts)
    return template


def simplify(recipe: Recipe) -> Recipe:
    """The recipe without the steps that change nothing, so that the loader spells only what
    happens to the numbers: a reshape of a reshape is one reshape, a reshape to the shape the
    value has is none (a BatchNorm statistic reshaped to 1x1x1xC by the graph and back to C for
    Keras), a transpose of a transpose is one transpose, a transpose that moves only axes of
    size 1 is a reshape, an identity transpose, a cast to the dtype the value has, a slice of
    a whole axis and a concatenation of one part are nothing. `evaluate` gives the same array
    for the recipe and its simplification."""
    recipe = _map_children(recipe, simplify)
    match recipe:
        case Reshape(Reshape(inner), shape):
            return simplify(Reshape(inner, shape))
        case Reshape(inner, shape) if shape_of(inner) == tuple(shape):
            return inner
        case Transpose(Transpose(inner, first), perm) if len(first) == len(perm):
            return simplify(Transpose(inner, tuple(first[p] for p in perm)))
        case Transpose(inner, perm) if tuple(perm) == tuple(range(len(perm))):
            return inner
        case Transpose(inner, perm) if _moves_only_ones(shape_of(inner), perm):
            return simplify(Reshape(inner, tuple(shape_of(inner)[p] for p in perm)))
        case AsType(inner, dtype) if _has_dtype(inner, dtype):
            return inner
        case Slice(inner, start, stop, axis) if _whole(shape_of(inner), start, stop, axis):
            return inner
        case Concat(_, (part,)):
            return part
    return recipe


def shape_of(recipe: Recipe) -> tuple[int, ...] | None:
    """The shape of the recipe's value, where the steps tell it without computing; else None."""
    match recipe:
        case Read() | Variable():
            return recipe.shape
        case Value(values):
            return np.shape(values)
        case Reshape(_, shape):
            return tuple(shape) if all(d >= 0 for d in shape) else None
        case Transpose(inner, perm):
            shape = shape_of(inner)
            return tuple(shape[p] for p in perm) if _permutes(perm, shape) else None
        case AsType(inner):
            return shape_of(inner)
        case Slice(inner, start, stop, axis):
            shape = shape_of(inner)
            if shape is None or not -len(shape) <= axis < len(shape):
                return None
            shape = list(shape)
            shape[axis] = len(range(shape[axis])[start:stop])
            return tuple(shape)
    return None


def dtype_of(recipe: Recipe) -> str | None:
    """numpy's name of the dtype of the recipe's value, where the steps tell it; else None."""
    match recipe:
        case Read() | Variable():
            return recipe.dtype
        case Value(_, dtype) | AsType(_, dtype):
            return _dtype_name(dtype)
        case Reshape(inner) | Transpose(inner) | Slice(inner) | Index(inner):
            return dtype_of(inner)
    return None


def _has_dtype(recipe: Recipe, dtype: str) -> bool:
    known = dtype_of(recipe)
    return known is not None and known == _dtype_name(dtype)


def _dtype_name(dtype: str) -> str | None:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return None


def _moves_only_ones(shape, perm) -> bool:
    """Whether transposing `shape` by `perm` keeps the axes longer than 1 in their order (a
    reshape does the same)."""
    if not _permutes(perm, shape):
        return False
    kept = [p % len(shape) for p in perm if shape[p] != 1]
    return kept == sorted(kept)


def _permutes(perm, shape) -> bool:
    """Whether `perm` is a permutation of the axes of `shape` (numpy's: each axis once)."""
    n = -1 if shape is None else len(shape)
    return len(perm) == n and sorted(p % n if -n <= p < n else n for p in perm) == list(range(n))


def _whole(shape, start, stop, axis) -> bool:
    if shape is None or not -len(shape) <= axis < len(shape):
        return False
    return range(shape[axis])[start:stop] == range(shape[axis])


def _map_children(step: Recipe, fn) -> Recipe:
    """The step with `fn` applied to each sub-recipe (plain numbers and indices left alone)."""
    changes = {}
    for f in fields(step):
        value = getattr(step, f.name)
        if isinstance(value, Step):
            new = fn(value)
        elif f.name in ("parts", "args"):
            new = tuple(fn(v) if isinstance(v, Step) else v for v in value)
        else:
            continue
        if new is not value:
            changes[f.name] = new
    return replace(step, **changes) if changes else step
