"""Quantization ops: stored quantized constants dequantized at conversion time, and FakeQuant
(quantize-dequantize), folded when its input is constant and written as keras.ops otherwise
(patterns/ops.py, with the range computed here).
"""

from __future__ import annotations

import numpy as np

from .numeric import dtype_of, same_shape
from .record import op


def fake_quant_range(low, high, num_bits, narrow_range):
    """(nudged min, nudged max, scale) of TF's FakeQuant ops as float32 arrays, computed the
    way fake_quant_ops_functor.h does (the zero point rounded half away from zero, so that 0.0
    is exactly representable); None for a range TF would reject."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    if not isinstance(num_bits, int) or not 2 <= num_bits <= 16 or low.shape != high.shape:
        return None
    if low.ndim > 1 or np.any(low > high):
        return None
    qmin = np.float32(1 if narrow_range else 0)
    qmax = np.float32((1 << num_bits) - 1)
    with np.errstate(all="ignore"):
        scale = (high - low) / (qmax - qmin)
        zero_from_min = qmin - low / scale
    zero = np.clip(np.sign(zero_from_min) * np.floor(np.abs(zero_from_min) + 0.5), qmin, qmax)
    zero = np.where(np.isfinite(zero_from_min), zero, qmin).astype(np.float32)
    return (qmin - zero) * scale, (qmax - zero) * scale, scale.astype(np.float32)


def _fake_quant(node, x, low=None, high=None):
    if low is None:
        low, high = node.attrs.get("min", -6.0), node.attrs.get("max", 6.0)
    attrs = node.attrs
    nudged = fake_quant_range(low, high, attrs.get("num_bits", 8), attrs.get("narrow_range", False))
    if nudged is None or np.asarray(x).dtype != np.float32:
        raise ValueError("not a FakeQuant TF would compute")
    nmin, nmax, scale = nudged
    shifted = np.clip(x, nmin, nmax) - nmin
    return (np.floor(shifted * (np.float32(1) / scale) + np.float32(0.5)) * scale + nmin).astype(
        np.float32
    )


def _dequantize(node, x, low, high):
    """Dequantize of a stored quantized constant, modes MIN_COMBINED and SCALED (per tensor,
    or per `axis`), as dequantize_op.cc computes them in float32."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.dtype.itemsize > 2:
        raise ValueError("not a quantized constant")
    info = np.iinfo(x.dtype)
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    axis = node.attrs.get("axis", -1)
    if low.ndim == 1 and axis >= 0 and axis < x.ndim:
        shape = [1] * x.ndim
        shape[axis] = -1
        low, high = low.reshape(shape), high.reshape(shape)
    elif low.ndim != 0:
        raise ValueError("per-axis range without an axis")
    mode = node.attrs.get("mode", "MIN_COMBINED")
    values = x.astype(np.float32)
    if mode == "MIN_COMBINED":
        scale = (high - low) / np.float32(float(info.max) - float(info.min))
        if info.min < 0:
            values = values + np.float32((float(info.max) - float(info.min) + 1) / 2)
        out = values * scale + low
    elif mode == "SCALED":
        qmin = info.min + 1 if node.attrs.get("narrow_range") and info.min < 0 else info.min
        if info.min < 0:
            scale = np.maximum(low / np.float32(qmin), high / np.float32(info.max))
        else:
            scale = high / np.float32(info.max)
        out = values * scale
    else:
        raise ValueError(f"Dequantize mode {mode!r} is not folded")
    return out.astype(dtype_of(node, "dtype"))


def _quantize_v2(node, ins, c):
    """The quantized tensor, and the range it used: one per slice along `axis`, or a scalar."""
    axis = node.attrs.get("axis", -1)
    if ins[0] is None:
        return None
    ranges = () if axis == -1 else (ins[0][axis],)
    return [ins[0], ranges, ranges]


op("Dequantize", shape=same_shape, kernel=_dequantize)
op("QuantizeV2", shape=same_shape, shapes=_quantize_v2)
op("FakeQuantWithMinMaxArgs", kernel=_fake_quant)
op("FakeQuantWithMinMaxVars", kernel=_fake_quant)
op("FakeQuantWithMinMaxVarsPerChannel", kernel=_fake_quant)
