"""The pattern registry: the one place to teach graph2py a new op.

A pattern is a small function registered for the op type of the *first* node of the group it
matches (its anchor). It inspects graph structure around the anchor through a `Matcher` and
returns a `Layer` covering the nodes it consumed, or None to let the next pattern try. Patterns
for one op family live in one module; the registration order inside an op type is the order of
the imports in `load_all`, most specific first (registry.py holds the registries).

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

from .registry import (  # noqa: F401  (the registry's names, for the converter)
    FALLBACKS,
    INLINE_CONSTANT,
    MAX_LITERAL,
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


def load_all() -> None:
    """Import the pattern modules (their import registers them), in priority order."""
    from . import rnn  # noqa: F401  (lifted loops, before anything claims their inputs)
    from . import embedding, attention  # noqa: F401  (before scale and dense claim parts)
    from . import norm, activation, conv, dense, pool, merge, reshape, scale  # noqa: F401
    from . import arrays, control, quantize  # noqa: F401  (fallbacks before the generic ones)
    from . import ops, tfonly  # noqa: F401  (the fallbacks, last)
