"""Recognising the cell: Keras LSTM/GRU candidates from a step's products, checked in numpy.

A candidate maps the weights the step multiplies by to Keras's layout (gate order, TF's
forget_bias folded into the bias, TF's fused [x, h] kernels split), as recipe templates and
values. `checks` runs the step and Keras's cell (`keras_step`) on the same random inputs: a
candidate is the cell only if every state and the output agree within TOLERANCE. Loops and
unrolled chains share the candidates and the check; a fused op only the gate reordering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...graph import Node, split_ref
from ...optable.elementwise import sigmoid as _sigmoid
from ...recipes import Concat, Recipe, Reshape, Slice, Ufunc
from ..frames import LoopVar, through_identity
from .evaluate import EVAL_ERRORS, NotRNN, Step

# The synthetic ops a recognised cell becomes (patterns/rnn.py writes them as Keras layers).
LSTM_OP = "_Graph2pyLSTM"
GRU_OP = "_Graph2pyGRU"
# A step computed by Keras's cell on the mapped weights must match the graph's this closely.
TOLERANCE = 1e-4


@dataclass
class Source:
    """A weight-like loop input: its value, and how to read it (a recipe template)."""

    value: np.ndarray
    template: Recipe
    step_value: np.ndarray | None = None  # what the step reads, when a slice of the value


@dataclass
class Cell:
    op: str  # LSTM_OP or GRU_OP
    units: int
    weights: dict[str, Recipe]  # Keras weight -> recipe template with Operand(tensor) leaves
    values: dict[str, np.ndarray]  # Keras weight -> value, for the check
    reset_after: bool = False
    go_backwards: bool = False
    recurrent_activation: str = "sigmoid"  # or "hard_sigmoid" (see with_hard_sigmoid)
    zero_output_for_mask: bool = False


@dataclass
class StepIO:
    x_t: str  # the step's input (a row of the sequence)
    y_t: str | None  # the step's output (written to the output list), if it is kept
    time_major: str  # the outer sequence the loop reads, [T, B, F]
    out_var: LoopVar | None  # the loop variable carrying the output list
    every_step: bool  # whether the list holds every step's output, or only the last one
    mask_t: str | None = None  # the step's mask ([batch, 1] bool), if the loop is masked
    mask: str | None = None  # the outer mask sequence the loop reads, [T, B, 1]
    # Keras's masked loop carries the previous output besides the states (a copy of h)
    aliases: tuple[LoopVar, ...] = ()
    zero_output: bool = False  # a masked step outputs zeros, not the old output (Bidirectional)
    zeros: tuple[str, ...] = ()  # body tensors always zeros of a state's shape (the zero output)


@dataclass
class _Product:
    """A MatMul of the step by a weight: what it multiplies ("x", a state, [x, state] or
    [x, something else]) and by which weight tensor."""

    left: tuple  # ("x",) | ("state", tensor) | ("concat", tensor | None)
    right: str  # body tensor


def weight_products(body: dict[str, Node], x_t: str, lookup=None) -> list[_Product]:
    """The step's MatMuls by weights; `lookup` resolves Identity nodes (default: the body)."""
    lookup = body if lookup is None else lookup
    found = []
    for mm in body.values():
        if mm.op != "MatMul" or mm.attrs.get("transpose_a") or mm.attrs.get("transpose_b"):
            continue
        left = through_identity(mm.inputs[0], lookup)
        node = lookup.get(split_ref(left)[0])
        if left == x_t:
            kind = ("x",)
        elif node is not None and node.op == "ConcatV2" and len(node.inputs) == 3:
            if through_identity(node.inputs[0], lookup) != x_t:
                continue
            kind = ("concat", through_identity(node.inputs[1], lookup))
        else:
            kind = ("state", left)
        right = through_identity(mm.inputs[1], lookup)
        sliced = lookup.get(split_ref(right)[0])
        if sliced is not None and sliced.op == "StridedSlice":
            right = through_identity(sliced.inputs[0], lookup)  # gate columns of a weight
        found.append(_Product(kind, right))
    return found


def _by(products, weights, left) -> list[Source]:
    """The weights multiplying `left`, each once (the gates' slices of one weight, once)."""
    found = {
        weights[p.right].template: weights[p.right]
        for p in products
        if p.left == left and p.right in weights
    }
    return list(found.values())


def _vectors(weights: dict[str, Source], size: int) -> list[Source]:
    found = {w.template: w for w in weights.values() if w.value.shape == (size,)}
    return list(found.values())


def gate_blocks(source: Source, order, units, axis, rows=None) -> tuple[Concat, np.ndarray]:
    """Gate blocks of `units` along `axis`, concatenated in `order`: (template, value), of the
    given rows of a kernel only."""
    template, value = source.template, source.value
    if rows is not None:
        template, value = Slice(template, rows[0], rows[1], 0), value[rows[0] : rows[1]]
    parts = [Slice(template, b * units, (b + 1) * units, axis) for b in order]
    values = [np.take(value, range(b * units, (b + 1) * units), axis=axis) for b in order]
    return Concat(axis, tuple(parts)), np.concatenate(values, axis=axis)


def lstm_candidates(products, weights, h: str, body, outer) -> list[Cell]:
    """Keras's LSTM (x @ kernel + h @ recurrent_kernel + bias, gates i, f, c, o) or TF's
    LSTMCell ([x, h] @ kernel + bias, gates i, j, f, o, forget_bias added to f)."""
    candidates = []
    for kernel in _by(products, weights, ("x",)):
        for recurrent in _by(products, weights, ("state", h)):
            units = recurrent.value.shape[0]
            for bias in _vectors(weights, 4 * units):
                candidates.append(_keras_cell(LSTM_OP, units, kernel, recurrent, bias))
    for fused in _by(products, weights, ("concat", h)):
        units = fused.value.shape[1] // 4
        n_in = fused.value.shape[0] - units
        order = (0, 2, 1, 3)  # TF's i, j, f, o as Keras's i, f, c(=j), o
        kernel = gate_blocks(fused, order, units, 1, (0, n_in))
        recurrent = gate_blocks(fused, order, units, 1, (n_in, n_in + units))
        for bias in _vectors(weights, 4 * units):
            for forget_bias in _scalars(body, outer):
                b_template, b_value = gate_blocks(bias, order, units, 0)
                if forget_bias:
                    b_template, b_value = with_forget_bias(b_template, b_value, units, forget_bias)
                candidates.append(
                    Cell(
                        LSTM_OP,
                        units,
                        {
                            "kernel": kernel[0],
                            "recurrent_kernel": recurrent[0],
                            "bias": b_template,
                        },
                        {
                            "kernel": kernel[1],
                            "recurrent_kernel": recurrent[1],
                            "bias": b_value,
                        },
                    )
                )
    return with_hard_sigmoid(candidates)


def with_forget_bias(template: Concat, value: np.ndarray, units: int, forget_bias: float):
    """A Keras-ordered LSTM bias (a concat of four gate blocks i, f, c, o) with TF's
    forget_bias, which TF adds to f's pre-activation at every step, folded into f's block."""
    i, f, c, o = template.parts
    value = value.copy()
    value[units : 2 * units] += forget_bias
    return Concat(template.axis, (i, Ufunc("add", (f, forget_bias)), c, o)), value


def _keras_cell(op, units, kernel: Source, recurrent: Source, bias: Source, **kw) -> Cell:
    return Cell(
        op,
        units,
        {"kernel": kernel.template, "recurrent_kernel": recurrent.template, "bias": bias.template},
        {"kernel": kernel.value, "recurrent_kernel": recurrent.value, "bias": bias.value},
        **kw,
    )


def _scalars(body: dict[str, Node], outer: dict[str, Node]) -> list[float]:
    """Candidate forget biases: 0 and every float scalar constant the step reads (a lowered
    frame's constants hang off it by control edges, outside the frame)."""
    found = [0.0]
    for node in body.values():
        for t in node.inputs:
            const = body.get(split_ref(t)[0]) or outer.get(split_ref(t)[0])
            value = const.attrs.get("value") if const is not None and const.op == "Const" else None
            if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind == "f":
                v = float(value.reshape(()))
                if v not in found:
                    found.append(v)
    return found


def gru_candidates(products, weights, h: str) -> list[Cell]:
    """Keras's GRU (x and h products; with reset_after=True, the default, each has a bias and
    the reset gate applies to h's product, else to h before its candidate product), or TF's
    GRUCell ([x, h] @ gates: r, u; [x, r * h] @ candidate), which is Keras's reset_after=False
    with the gates swapped."""
    candidates = []
    for kernel in _by(products, weights, ("x",)):
        for recurrent in _by(products, weights, ("state", h)):
            units = recurrent.value.shape[0]
            biases = [w for w in weights.values() if w.value.shape == (2, 3 * units)]
            vectors = _vectors(weights, 3 * units)
            biases += [_stack_rows(a, b, 3 * units) for a in vectors for b in vectors if a is not b]
            candidates += [
                _keras_cell(GRU_OP, units, kernel, recurrent, bias, reset_after=True)
                for bias in biases
            ]
            candidates += [
                _keras_cell(GRU_OP, units, kernel, recurrent, bias, reset_after=False)
                for bias in vectors
            ]
    gates = _by(products, weights, ("concat", h))
    others = [p for p in products if p.left[0] == "concat" and p.left[1] != h]
    for g in gates:
        for c in [weights[p.right] for p in others if p.right in weights]:
            units = c.value.shape[1]
            n_in = c.value.shape[0] - units
            if g.value.shape != (n_in + units, 2 * units):
                continue
            swap = (1, 0)  # TF's r, u as Keras's z(=u), r
            rows = {"kernel": (0, n_in), "recurrent_kernel": (n_in, n_in + units)}
            templates, values = {}, {}
            for name, (lo, hi) in rows.items():
                gt, gv = gate_blocks(g, swap, units, 1, (lo, hi))
                templates[name] = Concat(1, (*gt.parts, Slice(c.template, lo, hi, 0)))
                values[name] = np.concatenate([gv, c.value[lo:hi]], 1)
            for bg in _vectors(weights, 2 * units):
                for bc in _vectors(weights, units):
                    bt, bv = gate_blocks(bg, swap, units, 0)
                    templates["bias"] = Concat(0, (*bt.parts, bc.template))
                    values["bias"] = np.concatenate([bv, bc.value])
                    candidates.append(Cell(GRU_OP, units, dict(templates), dict(values)))
    return with_hard_sigmoid(candidates)


# Keras 2's hard sigmoid, clip(0.2 x + 0.5, 0, 1), is Keras 3's, clip(x / 6 + 0.5, 0, 1), of
# 1.2 x: a cell with Keras 2's recurrent activation is Keras 3's with its gates' weight columns
# scaled by 1.2 (the gates the recurrent activation applies to: i, f, o and z, r).
_HARD_SIGMOID_SCALE = 1.2
_GATES = {LSTM_OP: (4, (0, 1, 3)), GRU_OP: (3, (0, 1))}


def with_hard_sigmoid(cells: list[Cell]) -> list[Cell]:
    """Each candidate, then each again with Keras 2's hard sigmoid as recurrent activation."""
    return cells + [_hard_sigmoid(cell) for cell in cells]


def _hard_sigmoid(cell: Cell) -> Cell:
    count, scaled = _GATES[cell.op]
    templates, values = {}, {}
    for name, template in cell.weights.items():
        value = cell.values[name]
        axis = value.ndim - 1  # gate columns: the last axis (a GRU's 2-row bias too)
        width = value.shape[axis] // count
        parts = (
            template.parts
            if isinstance(template, Concat)
            and template.axis == axis
            and len(template.parts) == count
            else tuple(Slice(template, g * width, (g + 1) * width, axis) for g in range(count))
        )
        templates[name] = Concat(
            axis,
            tuple(
                Ufunc("multiply", (part, _HARD_SIGMOID_SCALE)) if g in scaled else part
                for g, part in enumerate(parts)
            ),
        )
        factors = np.repeat(
            [_HARD_SIGMOID_SCALE if g in scaled else 1.0 for g in range(count)], width
        )
        values[name] = value * factors
    return Cell(
        cell.op,
        cell.units,
        templates,
        values,
        cell.reset_after,
        cell.go_backwards,
        "hard_sigmoid",
    )


def _stack_rows(a: Source, b: Source, size: int) -> Source:
    """Two bias vectors as Keras's 2-row GRU bias; the rows of one stored matrix read whole."""
    ta, tb = a.template, b.template
    value = np.stack([a.value, b.value])
    match ta, tb:
        case (Reshape(Slice(matrix, 0, 1, 0)), Reshape(Slice(other, 1, 2, 0))) if matrix == other:
            return Source(value, matrix)
    return Source(value, Concat(0, (Reshape(ta, (1, size)), Reshape(tb, (1, size)))))


def checks(cell: Cell, weights: dict, body, io: StepIO, states: list[LoopVar], outer) -> bool:
    """Whether the step computes Keras's cell with these weights, on random values: every
    state's next value, and the step's output (h). A masked step keeps the old states (and
    output) in the rows whose mask is off, as Keras's masked RNN does."""
    rng = np.random.default_rng(0)
    n_in, units, batch = cell.values["kernel"].shape[0], cell.units, 3
    x = rng.uniform(-2, 2, (batch, n_in))
    state_values = [rng.uniform(-1, 1, (batch, units)) for _ in states]
    known = {
        t: (w.value if w.step_value is None else w.step_value).astype(np.float64)
        for t, w in weights.items()
    }
    known[io.x_t] = x
    known.update({v.inside: value for v, value in zip(states, state_values)})
    known.update({v.inside: state_values[0] for v in io.aliases})
    known.update({t: np.zeros((batch, units)) for t in io.zeros})
    want = keras_step(cell, x, state_values)
    output = want[0]
    if io.mask_t is not None:
        mask = np.array([[True], [False], [True]])
        known[io.mask_t] = mask
        output = np.where(mask, want[0], 0.0 if io.zero_output else state_values[0])
        want = [np.where(mask, new, old) for new, old in zip(want, state_values)]
    step = Step(body, known, outer)
    try:
        got = [step(through_identity(v.next, body)) for v in states]
        if io.y_t is not None:
            got.append(step(io.y_t))
            want.append(output)
            got += [step(through_identity(v.next, body)) for v in io.aliases]
            want += [output for _ in io.aliases]
    except (NotRNN, *EVAL_ERRORS):
        return False
    return all(
        g.shape == w.shape and np.max(np.abs(g - w)) <= TOLERANCE * max(1.0, np.max(np.abs(w)))
        for g, w in zip(got, want)
    )


def keras_step(cell: Cell, x, states):
    """One step of Keras's cell in numpy (float64)."""
    k, r, b = (cell.values[n].astype(np.float64) for n in ("kernel", "recurrent_kernel", "bias"))
    u = cell.units
    sigmoid = _sigmoid if cell.recurrent_activation == "sigmoid" else _keras3_hard_sigmoid
    if cell.op == LSTM_OP:
        h, c = states
        z = x @ k + h @ r + b
        i, f, g, o = (z[:, j * u : (j + 1) * u] for j in range(4))
        c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return [sigmoid(o) * np.tanh(c2), c2]
    (h,) = states
    if cell.reset_after:
        xs, hs = x @ k + b[0], h @ r + b[1]
        z = sigmoid(xs[:, :u] + hs[:, :u])
        rr = sigmoid(xs[:, u : 2 * u] + hs[:, u : 2 * u])
        hh = np.tanh(xs[:, 2 * u :] + rr * hs[:, 2 * u :])
    else:
        xs = x @ k + b
        z = sigmoid(xs[:, :u] + h @ r[:, :u])
        rr = sigmoid(xs[:, u : 2 * u] + h @ r[:, u : 2 * u])
        hh = np.tanh(xs[:, 2 * u :] + (rr * h) @ r[:, 2 * u :])
    return [z * h + (1 - z) * hh]


def _keras3_hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)
