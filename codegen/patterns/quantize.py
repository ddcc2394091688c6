"""Fake quantization of activations as keras.ops (FakeQuant of a constant, a QAT net's
weights, is folded and its recipe spelled out in load_weights.py: see codegen/recipes.py).

TensorFlow's FakeQuant kernels (fake_quant_ops_functor.h) nudge the range so that 0.0 is one of
the levels, then compute floor((clip(x, min, max) - min) * (1 / scale) - zero + 0.5) * scale;
the Vars form divides by the scale instead of multiplying by its inverse. The range is
computed here in float32 as TensorFlow does (codegen/quantization.py) and written as literals,
and the expression keeps TensorFlow's order of float32 operations, so values land on the same
level.
"""

from __future__ import annotations

from ..graph import Node
from ..optable.quantize import fake_quant_range
from ..quantization import float32_literal
from ..spec import Call
from .ops import operands
from .registry import MAX_LITERAL, Matcher, fallback


@fallback("FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel")
def fake_quant(node: Node, m: Matcher):
    if node.op == "FakeQuantWithMinMaxArgs":
        low, high = node.attrs.get("min", -6.0), node.attrs.get("max", 6.0)
    else:
        low, high = m.const(node.inputs[1]), m.const(node.inputs[2])
        if low is None or high is None or low.size > MAX_LITERAL:
            return None
        if node.op == "FakeQuantWithMinMaxVars":
            if low.size != 1 or high.size != 1:
                return None
            low, high = low.reshape(()), high.reshape(())
    bits, narrow = node.attrs.get("num_bits", 8), node.attrs.get("narrow_range", False)
    nudged = fake_quant_range(low, high, bits, narrow)
    if nudged is None:
        return None
    per_channel = node.op == "FakeQuantWithMinMaxVarsPerChannel"
    low, high, scale, inverse, zero = (
        (
            Call("convert_to_tensor", ([float32_literal(v) for v in x],))
            if per_channel
            else float32_literal(x)
        )
        for x in nudged
    )
    (x,), inputs = operands(m, node.inputs[:1])
    shifted = Call("subtract", (Call("clip", (x, low, high)), low))
    if node.op == "FakeQuantWithMinMaxVars":
        steps = Call("divide", (shifted, scale))
    else:
        steps = Call("multiply", (shifted, inverse))
    levels = Call("floor", (Call("add", (Call("subtract", (steps, zero)), 0.5)),))
    return m.ops([node], Call("multiply", (levels, scale)), inputs)
