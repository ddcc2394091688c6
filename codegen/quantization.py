"""TensorFlow's quantization arithmetic in numpy: Dequantize, QuantizeV2 and the FakeQuant ops,
computed as TensorFlow's CPU kernels compute them (dequantize_op.cc, quantize_op.cc,
quantization_utils.h, fake_quant_ops_functor.h), float32 step by float32 step, so that a
quantized or fake-quantized weight comes out bit for bit as TensorFlow computes it.

One source for three users: the fold kernels (optable/quantize.py), the weight recipes'
interpreter (recipes.evaluate), and the generated loaders, into which the code between the
LOADER markers is copied when a weight is dequantized or fake-quantized there (see
`loader_source`): a reader of `load_weights.py` sees each step in numpy. That block may use only
numpy, imported as np.
"""

from __future__ import annotations

import numpy as np

# BEGIN LOADER
# TensorFlow's quantization arithmetic, copied from graph2py (codegen/quantization.py): every
# step in float32, as TensorFlow's CPU kernels compute it.


def _round_half_away(x):
    """std::round (halves away from zero) in the value's own float type, exactly."""
    whole = np.trunc(x)
    return whole + np.where(np.abs(x - whole) >= 0.5, np.sign(x), 0).astype(whole.dtype)


def _per_axis(value, ndim, axis):
    """A per-slice range shaped to broadcast along `axis` of an ndim-array (scalar if none)."""
    value = np.asarray(value, np.float32)
    if axis < 0 or value.size == 1:
        return value.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return value.reshape(shape)


def dequantize(quantized, min_range, max_range, mode="MIN_COMBINED", axis=-1, narrow_range=False):
    """tf.quantization.dequantize of stored codes (uint8 for quint8, int8 for qint8, ...):
    float32 values in [min_range, max_range], per slice along `axis` when it is not -1."""
    quantized = np.asarray(quantized)
    info = np.iinfo(quantized.dtype)
    low = _per_axis(min_range, quantized.ndim, axis)
    high = _per_axis(max_range, quantized.ndim, axis)
    values = quantized.astype(np.float32)
    if mode == "MIN_COMBINED":
        scale = (high - low) / np.float32(float(info.max) - info.min)
        half = np.float32((float(info.max) - info.min + 1) / 2 if info.min < 0 else 0)
        return (values + half) * scale + low
    if mode == "MIN_FIRST":
        if low.ndim:
            raise ValueError("MIN_FIRST mode is not implemented for Dequantize with an axis")
        steps = float(1 << (8 * quantized.dtype.itemsize))
        scale = np.float32(float(high - low) / (steps - 1.0))
        low_rounded = low if high == low else _round_half_away(low / scale) * scale
        return (low_rounded - np.float32(info.min) * scale) + values * scale
    if mode == "SCALED":
        lowest = np.float32(info.min + (1 if narrow_range else 0))
        if info.min == 0:
            scale = high / np.float32(info.max)
        else:
            scale = np.maximum(low / lowest, high / np.float32(info.max))
        return values * scale
    raise ValueError(f"Dequantize has no mode {mode!r}")


def quantize_range(
    min_range,
    max_range,
    mode="MIN_COMBINED",
    dtype="uint8",
    narrow_range=False,
    ensure_minimum_range=0.01,
):
    """The range QuantizeV2 quantizes to (its outputs output_min and output_max), per slice:
    widened to hold 0 and at least ensure_minimum_range, and for SCALED made symmetric about
    the codes' zero; also the scale factor the values are multiplied by."""
    info = np.iinfo(dtype)
    in_low, in_high = np.float32(min_range), np.float32(max_range)
    if in_high < in_low:
        raise ValueError("input_max_range must be larger than input_min_range")
    low = min(np.float32(0), in_low)
    epsilon = max(np.float32(1), max(abs(in_low), abs(in_high))) * np.float32(ensure_minimum_range)
    high = max(np.float32(0), max(in_high, low + epsilon))
    if mode == "MIN_FIRST":
        steps = float(1 << (8 * np.dtype(dtype).itemsize))
        return low, high, np.float32(0 if high == low else (steps - 1.0) / float(high - low))
    if mode == "MIN_COMBINED":
        return low, high, np.float32((float(info.max) - float(info.min)) / float(high - low))
    lowest = np.float32(info.min + (1 if narrow_range else 0))
    highest = np.float32(info.max)
    huge = np.float32(np.finfo(np.float32).max)
    scale = min(
        lowest / low if lowest * low > 0 else huge, highest / high if highest * high > 0 else huge
    )
    return lowest / scale, highest / scale, scale


def quantize(
    values,
    min_range,
    max_range,
    dtype="uint8",
    mode="MIN_COMBINED",
    round_mode="HALF_AWAY_FROM_ZERO",
    narrow_range=False,
    axis=-1,
    ensure_minimum_range=0.01,
):
    """tf.quantization.quantize's codes (QuantizeV2 output 0) in numpy's dtype for T (uint8
    for quint8, ...), per slice along `axis` when it is not -1."""
    with np.errstate(invalid="ignore"):  # codes beyond the type: TF's cast is undefined too
        return _quantize(
            values,
            min_range,
            max_range,
            dtype,
            mode,
            round_mode,
            narrow_range,
            axis,
            ensure_minimum_range,
        )


def _quantize(
    values, min_range, max_range, dtype, mode, round_mode, narrow_range, axis, ensure_minimum_range
):
    values = np.asarray(values, np.float32)
    info = np.iinfo(dtype)
    lows = np.asarray(min_range, np.float32).reshape(-1)
    highs = np.asarray(max_range, np.float32).reshape(-1)
    if axis >= 0 and values.shape[axis] > 1:
        if mode == "MIN_FIRST":
            raise ValueError("MIN_FIRST mode is not implemented for Quantize with an axis")
        parts = [
            quantize(
                np.take(values, [i], axis),
                lows[i],
                highs[i],
                dtype,
                mode,
                round_mode,
                narrow_range,
                -1,
                ensure_minimum_range,
            )
            for i in range(values.shape[axis])
        ]
        return np.concatenate(parts, axis)
    low, high, scale = quantize_range(
        lows[0], highs[0], mode, dtype, narrow_range, ensure_minimum_range
    )
    if mode == "MIN_FIRST":
        lower = max(np.float32(info.min), np.float32(-2.147483648e09))
        upper = min(np.float32(info.max), np.float32(2.147483520e09))
        offset = _round_half_away(low * scale) - np.float32(info.min)
        codes = np.clip(_round_half_away(values * scale) - offset, lower, upper)
        return codes.astype(np.int32).astype(dtype)
    clipped = np.maximum(np.minimum(values, high), low)
    if mode == "MIN_COMBINED":
        if info.min < 0:
            half = np.float32((float(info.max) - float(info.min) + 1) / 2)
            return _round_half_away((clipped - low) * scale - half).astype(dtype)
        return ((clipped - low) * scale + np.float32(0.5)).astype(dtype)
    scaled = clipped * scale
    rounded = np.rint(scaled) if round_mode == "HALF_TO_EVEN" else _round_half_away(scaled)
    return rounded.astype(dtype)


def _nudge(min_value, max_value, num_bits, narrow_range):
    """(nudged min, nudged max, scale, inverse scale, zero point) of a FakeQuant range: the
    range shifted so that 0.0 is exactly one of the 2**num_bits levels."""
    quant_min = np.float32(1 if narrow_range else 0)
    quant_max = np.float32((1 << num_bits) - 1)
    low, high = np.float32(min_value), np.float32(max_value)
    scale = (high - low) / (quant_max - quant_min)
    inverse = (quant_max - quant_min) / (high - low)
    zero_from_min = quant_min - low / scale
    if zero_from_min < quant_min:
        zero = quant_min
    elif zero_from_min > quant_max:
        zero = quant_max
    else:
        zero = _round_half_away(zero_from_min)
    nudged_min, nudged_max = (quant_min - zero) * scale, (quant_max - zero) * scale
    quant_zero = np.floor(-nudged_min * inverse + np.float32(0.5))
    return nudged_min, nudged_max, scale, inverse, quant_zero


def _fake_quant(values, min_value, max_value, num_bits, narrow_range, divide):
    with np.errstate(all="ignore"):
        low, high, scale, inverse, zero = _nudge(min_value, max_value, num_bits, narrow_range)
        shifted = np.maximum(np.minimum(values, high), low) - low
        steps = shifted / scale if divide else shifted * inverse
        return np.floor(steps - zero + np.float32(0.5)) * scale


def fake_quant_with_min_max_args(inputs, min=-6.0, max=6.0, num_bits=8, narrow_range=False):
    """tf.quantization.fake_quant_with_min_max_args: quantize to num_bits and back."""
    inputs = np.asarray(inputs, np.float32)
    return _fake_quant(inputs, min, max, num_bits, narrow_range, divide=False)


def fake_quant_with_min_max_vars(inputs, min, max, num_bits=8, narrow_range=False):
    """tf.quantization.fake_quant_with_min_max_vars; all zeros for the range [0, 0]."""
    inputs = np.asarray(inputs, np.float32)
    if np.float32(min) == 0 and np.float32(max) == 0:
        return np.zeros_like(inputs)
    return _fake_quant(inputs, min, max, num_bits, narrow_range, divide=True)


def fake_quant_with_min_max_vars_per_channel(inputs, min, max, num_bits=8, narrow_range=False):
    """tf.quantization.fake_quant_with_min_max_vars_per_channel: one range per channel (the
    last axis); a channel whose range is [0, 0] is all zeros."""
    inputs = np.asarray(inputs, np.float32)
    lows, highs = np.asarray(min, np.float32), np.asarray(max, np.float32)
    out = np.empty_like(inputs)
    for i in range(inputs.shape[-1]):
        if lows[i] == 0 and highs[i] == 0:
            out[..., i] = 0
        else:
            out[..., i] = _fake_quant(
                inputs[..., i], lows[i], highs[i], num_bits, narrow_range, divide=False
            )
    return out


# END LOADER


def nudged_range(min_value, max_value, num_bits, narrow_range):
    """(nudged min, nudged max, scale, inverse scale, zero point) as float32 scalars, for
    writing FakeQuant of activations as keras.ops."""
    return _nudge(min_value, max_value, num_bits, narrow_range)


def float32_literal(value) -> float:
    """A float32 as the shortest Python float that converts back to it: 0.011764706, not
    0.011764705882352941 (the float32 value itself is what the op computes with)."""
    value = np.float32(value)
    short = float(str(value))
    return short if np.float32(short) == value else float(value)


def loader_source() -> str:
    """The code between the LOADER markers, for embedding in generated loaders."""
    with open(__file__, encoding="utf-8") as f:
        text = f.read()
    return text.split("# BEGIN LOADER\n", 1)[1].split("# END LOADER\n", 1)[0].strip() + "\n"
