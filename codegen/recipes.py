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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Union

import numpy as np


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
    call's name: `FUNCTION:NODE`, which the loader looks up in the function library)."""

    node: str
    stored: str | None = None


@dataclass(frozen=True)
class Variable(Step):
    """A variable's value read from the checkpoint, by key (a checkpoint-based loader reads
    no graph)."""

    key: str


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


Recipe = Union[Read, Variable, Value, Operand, Reshape, Transpose, AsType, Slice, Concat, Ufunc]


def evaluate(recipe: Recipe, reader: Mapping[str | int, np.ndarray]) -> np.ndarray:
    """The recipe's value, computed as the loader's source (emit.recipe_source) computes it;
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
    raise ValueError(f"not a recipe step: {recipe!r}")


def bind(template: Recipe, recipe_of) -> Recipe | None:
    """The template with each Operand replaced by `recipe_of(operand.ref)`, depth first, left
    to right; None when that gives None for one of them."""
    match template:
        case Operand(ref):
            return recipe_of(ref)
        case Reshape() | Transpose() | AsType() | Slice():
            inner = bind(template.inner, recipe_of)
            return None if inner is None else replace(template, inner=inner)
        case Concat(axis, parts):
            bound = [bind(p, recipe_of) for p in parts]
            return None if any(b is None for b in bound) else Concat(axis, tuple(bound))
        case Ufunc(name, args):
            bound = [bind(a, recipe_of) if isinstance(a, Step) else a for a in args]
            return None if any(b is None for b in bound) else Ufunc(name, tuple(bound))
    return template
