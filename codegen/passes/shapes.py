"""Static shape inference: enough to write `keras.Input` shapes and to tell a Flatten from a
Reshape, a Dense on 2-D input from one on 4-D input, a global pool from a reduction.

Shapes are tuples with None for unknown dimensions (the batch, usually), or None when even the
rank is unknown. Each op's rule is declared with the op in codegen/optable; the ops passes
create (the RNN layers) or own (Select, for control flow) register theirs here with `rule`. An
op without a rule but with a fold kernel gets its shape from running the kernel on zeros; any
other op gets unknown shapes, and patterns that need one then decline.

A model input declared without a shape (`tf.placeholder(tf.float32)`, a dataset iterator's
output) gets the shape its consumers fix (`input_shapes`): each op's operand rule (codegen/
optable) says what it fixes of its operands given its output and its other operands, and one
sweep against the topological order carries that back from the outputs to the inputs. What no
consumer fixes stays None: the spatial sizes of a fully convolutional net, a sequence's length.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import optable
from ..graph import Graph, Node
from ..optable.numeric import broadcast  # noqa: F401  (passes/control.py reads it here)
from ..optable.numeric import run_kernel
from .fold import KERNELS, Constants
from .settings import inference_value

Shape = tuple  # of int | None

# Rules of ops that have none in the op table, registered by the passes that handle them.
RULES: dict[str, Callable] = {}


def rule(*ops):
    def register(fn):
        for op in ops:
            if optable.shape_rule(op) is not None:
                raise ValueError(f"{op} has a shape rule in codegen/optable already")
            RULES[op] = fn
        return fn

    return register


def shape_rule(op: str) -> Callable | None:
    return optable.shape_rule(op) or RULES.get(op)


def operand_rule(op: str) -> Callable | None:
    info = optable.get(op)
    return None if info is None else info.operands


def input_shapes(
    graph: Graph, inputs: list[str], given: dict[str, Shape] | None = None
) -> dict[str, Shape | None]:
    """`given` (the command line's shapes), and for each other input whose declared shape lacks
    its rank or a dimension past the batch, what its consumers fix of it. Each round of
    forward and backward inference can fix more (a conv's output, once its input has a rank,
    tells the next op its operand), so this repeats until nothing changes."""
    found: dict[str, Shape | None] = dict(given or {})
    open_inputs = [
        t for t in inputs if t not in found and not _settled(graph.producer(t).attrs.get("shape"))
    ]
    if not open_inputs:
        return found
    consts = Constants(graph)
    for _ in range(_ROUNDS):
        consts.forget_unknown()  # a value left unknown last round may be known now
        shapes = infer_shapes(graph, consts, found)
        needed = _needed(graph, consts, shapes)
        changed = False
        for tensor in open_inputs:
            shape = merge(shapes.get(tensor), needed.get(tensor))
            if shape != shapes.get(tensor):
                found[tensor], changed = shape, True
        if not changed:
            break
    return found


_ROUNDS = 4


def _settled(shape) -> bool:
    return isinstance(shape, tuple) and all(d is not None for d in shape[1:])


def _needed(graph: Graph, consts: Constants, shapes: dict) -> dict[str, Shape]:
    """What the consumers fix of each tensor, in one sweep from the outputs back: a node's
    consumers all come after it, so its output is complete when the sweep reaches it."""
    needed: dict[str, Shape] = {}
    for node in reversed(list(graph)):
        rule = operand_rule(node.op)
        if rule is None or not node.inputs:
            continue
        out = merge(shapes.get(node.output(0)), needed.get(node.output(0)))
        ins = [merge(shapes.get(t), needed.get(t)) for t in node.inputs]
        try:
            fixed = rule(node, ins, out, consts)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
            continue  # operands the rule cannot make sense of: they fix nothing
        for tensor, shape in zip(node.inputs, fixed):
            if shape is not None:
                needed[tensor] = merge(needed.get(tensor), _checked(shape))
    return needed


def merge(a: Shape | None, b: Shape | None) -> Shape | None:
    """What two facts about one shape say together: `a` wins where they disagree (a graph
    that contradicts itself fails later, where TensorFlow would)."""
    if a is None or b is None:
        return a if b is None else b
    if len(a) != len(b):
        return a
    return tuple(x if x is not None else y for x, y in zip(a, b))


def _via_numpy(node: Node, ins: list, c: Constants) -> Shape | None:
    """Run the numpy kernel on zeros, twice with different batch sizes: the dims that change
    with the batch are the free ones."""
    kernel = KERNELS.get(node.op)
    if kernel is None or any(s is None for s in ins):
        return None
    results = []
    for batch in (2, 3):
        args = []
        for tensor, shape in zip(node.inputs, ins):
            value = c.value(tensor)
            if value is None:
                dims = [batch if d is None else d for d in shape]
                if math.prod(max(d, 1) for d in dims) > 1 << 22:
                    return None  # too large to try (numpy refuses even an empty array this wide)
                value = np.zeros(dims, np.float32)
            args.append(value)
        result = run_kernel(kernel, node, args)
        if result is None:
            return None
        results.append(result.shape)
    a, b = results
    if len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def infer_shapes(
    graph: Graph, consts: Constants, input_shapes: dict[str, Shape] | None = None
) -> dict[str, Shape | None]:
    """Shapes of every node's first output, in one topological sweep."""
    shapes = consts.shapes
    overrides = input_shapes or {}
    for node in graph:
        out = node.output(0)
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            shape = overrides.get(out, node.attrs.get("shape"))
            shapes[out] = tuple(shape) if shape is not None else None
            continue
        value = consts.value(out)
        if value is not None:
            shapes[out] = tuple(value.shape)
            continue
        ins = [shapes.get(t) for t in node.inputs]
        found = shape_rule(node.op)
        if found is not None:
            try:
                shapes[out] = _checked(found(node, ins, consts))
            except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
                shapes[out] = None  # operands the rule cannot make sense of: shape unknown
        else:
            shapes[out] = _checked(_via_numpy(node, ins, consts))
    return shapes


def _checked(shape) -> Shape | None:
    """A rule's result as a shape: a dimension that is not a size (negative, as from a window
    larger than its input, or not an integer at all) is unknown rather than passed on."""
    if shape is None:
        return None
    return tuple(_size(d) for d in shape)


def _size(dim) -> int | None:
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim >= 0:
        return int(dim)
    return None


def undecided_rank(graph: Graph, tensor: str) -> str:
    """Why an input's shape must be given: none of its consumers fixes its rank. Names the
    first of them (the one a reader looks at), with an example of the flag: for a training
    switch, a scalar or its inference value."""
    node = graph.producer(tensor)
    users = graph.users(tensor)
    by = f"; its consumer {users[0].name!r} ({users[0].op}) does not fix it" if users else ""
    value = inference_value(node)
    if value is not None:
        how = f"--inputs '{node.name}:0[]' (a scalar), or fix it with --set {node.name}={value}"
    else:
        how = f"--inputs '{node.name}:0[-1,224,224,3]'"
    return f"input {node.name!r} has no static rank{by}: give its shape, e.g. {how}"
