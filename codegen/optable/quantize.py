"""Quantization ops: stored quantized constants dequantized at conversion time (Dequantize,
QuantizeV2 of a float constant), and FakeQuant (quantize-dequantize), folded when its input is
constant (a QAT net's weights) and written as keras.ops otherwise (patterns/quantize.py). The
arithmetic is TensorFlow's, in codegen/quantization.py, which the weight loaders embed too.
"""

from __future__ import annotations

import numpy as np

from .. import quantization
from .numeric import dtype_of, same_shape
from .record import op

# TensorFlow's quantized dtypes and the numpy dtype that holds their codes.
CODES = {
    "quint8": "uint8",
    "qint8": "int8",
    "quint16": "uint16",
    "qint16": "int16",
    "qint32": "int32",
}


def code_dtype(name: str) -> np.dtype:
    """numpy's dtype for a quantized type attribute (`qint8` -> int8; the decoder already
    spells the ones numpy has as numpy does)."""
    return np.dtype(CODES.get(name, name))


def _ranges(node, low, high, shape, axis):
    """Check the range operands as TensorFlow does: one value, or one per slice of `axis`."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    slices = shape[axis] if 0 <= axis < len(shape) else 1
    if axis >= len(shape) or low.size != slices or high.size != slices:
        raise ValueError("range operands do not match the quantization axis")
    return low, high


def fake_quant_range(low, high, num_bits, narrow_range):
    """(nudged min, nudged max, scale, inverse scale, zero point) of TF's FakeQuant ops as
    float32 values (arrays, one per channel, for per-channel ranges); None for a range TF
    would reject (or a channel whose range is [0, 0], which TF sets to zeros)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    if not isinstance(num_bits, int) or not 2 <= num_bits <= 16 or low.shape != high.shape:
        return None
    if low.ndim > 1 or np.any(low >= high):
        return None
    parts = [
        quantization.nudged_range(a, b, num_bits, narrow_range)
        for a, b in zip(low.reshape(-1), high.reshape(-1))
    ]
    return tuple(np.asarray(column, np.float32).reshape(low.shape) for column in zip(*parts))


def _fake_quant(node, x, low=None, high=None):
    attrs = node.attrs
    bits, narrow = attrs.get("num_bits", 8), attrs.get("narrow_range", False)
    if np.asarray(x).dtype != np.float32 or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError("not a FakeQuant TF would compute")
    if node.op == "FakeQuantWithMinMaxArgs":
        low, high = attrs.get("min", -6.0), attrs.get("max", 6.0)
        if not low < high:
            raise ValueError("FakeQuantWithMinMaxArgs needs min < max")
        return quantization.fake_quant_with_min_max_args(x, low, high, bits, narrow)
    if node.op == "FakeQuantWithMinMaxVars":
        if np.size(low) != 1 or np.size(high) != 1:
            raise ValueError("FakeQuantWithMinMaxVars takes scalar min and max")
        low, high = np.reshape(low, ()), np.reshape(high, ())
        return quantization.fake_quant_with_min_max_vars(x, low, high, bits, narrow)
    low, high = np.asarray(low), np.asarray(high)
    if np.ndim(x) < 1 or low.shape != (np.shape(x)[-1],) or high.shape != low.shape:
        raise ValueError("per-channel ranges must match the last axis")
    return quantization.fake_quant_with_min_max_vars_per_channel(x, low, high, bits, narrow)


def _dequantize(node, x, low, high):
    """Dequantize of a stored quantized constant, every mode, per tensor or per `axis`."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.dtype.itemsize == 8:
        raise ValueError("not a quantized constant")
    axis = node.attrs.get("axis", -1)
    low, high = _ranges(node, low, high, x.shape, axis)
    mode = node.attrs.get("mode", "MIN_COMBINED")
    out = quantization.dequantize(x, low, high, mode, axis, node.attrs.get("narrow_range", False))
    return out.astype(dtype_of(node, "dtype"))


def _quantize_v2(node, ins, c):
    """The quantized tensor, and the range it used: one per slice along `axis`, or a scalar."""
    axis = node.attrs.get("axis", -1)
    if ins[0] is None:
        return None
    ranges = () if axis == -1 else (ins[0][axis],)
    return [ins[0], ranges, ranges]


def _quantize(node, x, low, high):
    """QuantizeV2 of a float constant: (codes, output_min, output_max)."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise ValueError("QuantizeV2 quantizes float32")
    a = node.attrs
    dtype = code_dtype(a.get("T", "quint8"))
    mode, round_mode = a.get("mode", "MIN_COMBINED"), a.get("round_mode", "HALF_AWAY_FROM_ZERO")
    axis, narrow = a.get("axis", -1), a.get("narrow_range", False)
    ensure = a.get("ensure_minimum_range", 0.01)
    low, high = _ranges(node, low, high, x.shape, axis)
    if round_mode == "HALF_TO_EVEN" and mode != "SCALED":
        raise ValueError("HALF_TO_EVEN rounding is for SCALED mode only")
    codes = quantization.quantize(x, low, high, dtype, mode, round_mode, narrow, axis, ensure)
    ranges = [
        quantization.quantize_range(a_, b_, mode, dtype, narrow, ensure)[:2]
        for a_, b_ in zip(low.reshape(-1), high.reshape(-1))
    ]
    shape = low.shape if 0 <= axis and x.shape[axis] != 1 else ()
    out_low = np.asarray([r[0] for r in ranges], np.float32).reshape(shape)
    out_high = np.asarray([r[1] for r in ranges], np.float32).reshape(shape)
    return codes, out_low, out_high


op("Dequantize", shape=same_shape, kernel=_dequantize)
op("QuantizeV2", shape=same_shape, shapes=_quantize_v2, kernel=_quantize)
op("FakeQuantWithMinMaxArgs", kernel=_fake_quant)
op("FakeQuantWithMinMaxVars", kernel=_fake_quant)
op("FakeQuantWithMinMaxVarsPerChannel", kernel=_fake_quant)
