"""The constant budget: how many bytes of constants one conversion may make.

A graph asks for memory in two ways that its own size does not bound: a constant stored in
short form (one value, repeated to its shape) is expanded when decoded (load.tensor_to_numpy),
and constant folding evaluates ops whose results can be far larger than their operands (a Fill
of a huge shape, a ConcatV2 reading one tensor a thousand times: optable's kernels, kept by
passes/fold.py). Both draw on one budget per conversion, proportional to the input: by default
DEFAULT_FACTOR times the bytes of the input files (the graph file, and a checkpoint's data
files, whose values folding may transform), and at least DEFAULT_MINIMUM; `--max-constant-mb`
sets it (options.py). Each allocation is checked before it is made (a kernel computes its
result's size from its operands' shapes and attributes first: optable.numeric.limit), and the
first that does not fit is one error line naming its node and its size, exit 3.

A folded value is charged once per tensor name: prune, layout and the shape pass each fold the
graph they see, and the same tensor's value computed again is no new memory (only one pass's
values are alive at a time). Decoded constants are charged each time they are decoded (each
inlined copy of a function body holds its own).

The budget is a value the pipeline carries (pipeline.Loaded.budget) and makes current while
its stages run (`with budget.active():` in pipeline.load, prepare and selected_facts, and in
analyze.analyze while the patterns run), rather
than a parameter: constants are decoded and folded from about fifteen places (graph decoding,
inlining, the RNN step check, control flow, pruning, layout, shapes, the patterns writing a
loop body out), through kernels that
share one signature, `kernel(node, *values)`, and threading a budget through them would change
every kernel and every `Constants(...)`. The current budget is a ContextVar, so each thread of
the language server has its own. Outside a stage (a test decoding a graph directly) each
check is against a fresh budget of the minimum size: one
value at a time is bounded, not the total.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import numpy as np

from .errors import BadInputError

DEFAULT_FACTOR = 16  # bytes of constants per byte of input
DEFAULT_MINIMUM = 64 << 20
FLAG = "--max-constant-mb"


class ConstantBudgetError(BadInputError):
    """A constant larger than what is left of the budget."""


def size_text(nbytes: int) -> str:
    """2**42 -> '4 TiB', 1.5 * 2**20 -> '1.5 MiB': rounded down to a tenth of the unit."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift:
            return f"{math.floor(nbytes * 10 / (1 << shift)) / 10:g} {unit}"
    return f"{nbytes} bytes"


class Budget:
    """Bytes of constants this conversion may still make."""

    def __init__(self, limit: int, source: str = "graph", given: bool = False):
        self.limit = limit
        self.source = source
        self.given = given  # set by --max-constant-mb rather than derived from the input
        self.used = 0
        self._charged: dict[str, int] = {}  # tensor -> bytes charged for its value
        self.refused: str | None = None  # the first refusal while decoding (see `decoded`)

    def _over(self, nbytes: int) -> str:
        basis = "as given" if self.given else "for this input"
        left = max(self.limit - self.used, 0)
        return (
            f"{size_text(nbytes)}, more than the constant budget allows "
            f"({size_text(self.limit)} {basis}, {size_text(left)} left; "
            f"raise it with {FLAG} N)"
        )

    def check(self, node, nbytes: int) -> None:
        """Before a kernel allocates `nbytes` for `node`'s value: ConstantBudgetError unless
        they fit (a value already charged for the node is no new memory)."""
        extra = nbytes - self._charged.get(node.name, 0)
        if extra > 0 and self.used + extra > self.limit:
            raise ConstantBudgetError(
                f"{self.source}: node {node.name!r}: folding {node.op} makes " + self._over(nbytes)
            )

    def charge(self, node, nbytes: int) -> None:
        """A folded value of `nbytes` new bytes, kept for `node` (its first output)."""
        self.check(node, nbytes)
        before = self._charged.get(node.name, 0)
        if nbytes > before:
            self.used += nbytes - before
            self._charged[node.name] = nbytes

    def decoded(self, nbytes: int, what: str) -> bool:
        """Before decoding a constant (`what`: "a float32 constant of shape [...]") into
        `nbytes` new bytes. True: charged, go ahead. A ValueError (graph.decode_node names the
        node) when they do not fit and nothing was refused before. False when something was:
        the conversion has failed already, and the constant is left without a value (as a
        checkpoint variable that is missing is), so that the user reads one line, for the first
        constant that did not fit, rather than one for every constant after it. A stage that
        drops the first refusal (the RNN pass declines a loop whose body does not decode) does
        not make the conversion pass: pipeline raises `refused` after each stage."""
        if self.used + nbytes <= self.limit:
            self.used += nbytes
            return True
        if self.refused is not None:
            return False
        self.refused = f"{what} expands to " + self._over(nbytes)
        raise ValueError(self.refused)

    def raise_refused(self) -> None:
        if self.refused is not None:
            raise ConstantBudgetError(f"{self.source}: {self.refused}")

    @contextmanager
    def active(self) -> Iterator[Budget]:
        """This budget is `current()` inside the block (in this thread)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


_CURRENT: ContextVar[Budget | None] = ContextVar("constant_budget", default=None)


def for_input(input_bytes: int, source: str, max_mb: int | None = None) -> Budget:
    """The budget of a conversion of `source` (`input_bytes` read), or of `max_mb` MiB."""
    if max_mb is not None:
        return Budget(max_mb << 20, source, given=True)
    return Budget(max(DEFAULT_MINIMUM, DEFAULT_FACTOR * input_bytes), source)


def current() -> Budget:
    """The active budget; outside one, a fresh budget of the minimum size."""
    return _CURRENT.get() or Budget(DEFAULT_MINIMUM)


def allocated(value, operands) -> int:
    """The bytes a kernel's result holds that none of its operands did: 0 for a view of an
    operand (Reshape, Transpose, a basic slice) or of a file's bytes."""
    owner = _owner(value)
    if owner is None or any(owner is _owner(x) for x in operands if isinstance(x, np.ndarray)):
        return 0
    return owner.nbytes


def _owner(array: np.ndarray) -> np.ndarray | None:
    """The array whose memory `array` uses; None for memory no array owns (a proto's bytes,
    a memory-mapped data file)."""
    while array.base is not None:
        if not isinstance(array.base, np.ndarray):
            return None
        array = array.base
    return array
