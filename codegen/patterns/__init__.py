"""The pattern registry: the one place to teach graph2py a new op.

A pattern is a small function registered for the op type of the *first* node of the group it
matches (its anchor). It inspects graph structure around the anchor through a `Matcher` and
returns a `Layer` covering the nodes it consumed, or None to let the next pattern try. Patterns
for one op family live in one module; within an op type they are tried in the order of
`PRIORITY` (modules) and then of their definitions, most specific first (registry.py holds the
registries).

Every op has a path, tried in this order: a `keras.layers` layer (the family modules), a
backend-neutral `keras.ops` expression (`ops.py`, for ops no layer pattern claimed), and last a
generated layer calling the TensorFlow op (`tfonly.py`, registered for every op as "*"); those
two register with `@fallback` and only see what no layer pattern claimed.

    @pattern("Conv2D")
    def conv2d(node, m):
        ...
        return m.layer("Conv2D", [node, ...], inputs=[x], kwargs={...}, weights=[...])
"""

from __future__ import annotations

import importlib

from .registry import (  # noqa: F401  (the registry's names, for the converter)
    FALLBACKS,
    INLINE_CONSTANT,
    MAX_LITERAL,
    OBJECT_KEY,
    PATTERNS,
    SHAPE_PLUMBING,
    Matcher,
    PatternFn,
    fallback,
    literal_cells,
    pattern,
    tensor_literal,
    variable_path,
)

# The pattern modules in priority order: for one op, the patterns of an earlier module are tried
# first. Recurrent loops are lifted before anything claims their inputs; embedding and attention
# before scale and dense claim parts of them; the keras.ops and TensorFlow-only fallbacks last
# (arrays, control and quantize before the generic ones).
PRIORITY = (
    "rnn",
    "embedding",
    "attention",
    "norm",
    "activation",
    "conv",
    "dense",
    "pool",
    "merge",
    "reshape",
    "scale",
    "arrays",
    "control",
    "quantize",
    "ops",
    "tfonly",
)


def load_all() -> None:
    """Import the pattern modules (their import registers them) and order each op's patterns
    by PRIORITY. Import order alone would not do: a module imported early for a helper (conv
    imports activation's fused_activation; a test imports conv) registers its patterns first."""
    for name in PRIORITY:
        importlib.import_module(f"{__name__}.{name}")
    rank = {name: i for i, name in enumerate(PRIORITY)}
    for table in (PATTERNS, FALLBACKS):
        for fns in table.values():
            fns.sort(key=lambda fn: rank.get(fn.__module__.rsplit(".", 1)[-1], len(rank)))
