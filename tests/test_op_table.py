"""The single-op table: one tiny graph per TensorFlow op type, converted, run, compared.

Each row builds a graph around one op (usually through `tf.raw_ops`, so the op type is the one
named), freezes it, converts it, runs the generated model and TensorFlow on the same seeded
inputs and compares: floats within max|Δ| ≤ 1e-4·max(1, max|ref|), integers and booleans
exactly, dtypes equal. Each row also states the path every source op takes (keras.layers,
keras.ops or the TensorFlow-only layer) and the test checks the conversion report says exactly
that, so a pass proves the intended mapping fired rather than that some fallback happened to
compute the same numbers.

Inputs exercise the op's range: non-square shapes, both signs where the op allows them, positive
values where the domain demands (Log, Lgamma), NaN and infinity for IsNan/IsInf, int32, int64,
bool and string inputs where the op takes them.

Op types are counted from the rows' expected paths, which every row checks against
`spec.report()`: the count needs no shared state between xdist workers. About 300 rows run in
some 70 s of CPU (no model is shared: each graph is a few nodes).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from codegen import cli
from codegen.convert import convert
from codegen.patterns.tfonly import NOT_COMPUTATIONS
from codegen.verify import import_generated, max_error, run_graph

L, O, T = "keras.layers", "keras.ops", "tensorflow"
S = (4, 5)  # the default input shape, without the batch: non-square
IMG = (6, 5, 3)
BATCH = 2


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One graph input: its shape without the batch, dtype and value range (or fixed values)."""

    shape: tuple = S
    dtype: str = "float32"
    low: float = -3.0
    high: float = 3.0
    special: bool = False  # sprinkle NaN, +inf and -inf among the values
    value: tuple | None = None  # fixed values, batch included
    batched: bool = True  # False: one value for the call (a scalar switch), no batch
    declared: bool = True  # False: the placeholder is declared without a shape (unknown rank)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.value is not None:
            return np.asarray(self.value, self.dtype)
        dims = (BATCH, *self.shape) if self.batched else self.shape
        if self.dtype == "bool":
            return rng.random(dims) < 0.5
        if self.dtype == "string":
            words = ["", "a", "graph", "two words", "ü"]
            return np.asarray(rng.choice(words, dims), object)
        if np.issubdtype(np.dtype(self.dtype), np.integer):
            return rng.integers(int(self.low), int(self.high) + 1, dims).astype(self.dtype)
        x = rng.uniform(self.low, self.high, dims)
        if self.special:
            flat = x.reshape(-1)
            flat[rng.choice(flat.size, 3, replace=False)] = [np.nan, np.inf, -np.inf]
        return x.astype(self.dtype)


def f(*shape, low=-3.0, high=3.0, dtype="float32"):
    return Arg(shape or S, dtype, low, high)


def pos(*shape, low=0.1, high=3.0):
    """Strictly positive floats: Log, Sqrt, Lgamma, Igamma domains."""
    return Arg(shape or S, "float32", low, high)


def unit(*shape):
    """Floats in (-1, 1): Asin, Atanh, Erfinv."""
    return Arg(shape or S, "float32", -0.95, 0.95)


def i32(*shape, low=-6, high=6, dtype="int32"):
    return Arg(shape or S, dtype, low, high)


def boolean(*shape):
    return Arg(shape or S, "bool")


def special(*shape):
    return Arg(shape or S, "float32", special=True)


def fixed(values, dtype):
    return Arg(np.asarray(values).shape[1:], dtype, value=tuple(np.asarray(values).tolist()))


def case(case_id, fn, args, **paths):
    """A table row: the function of the graph inputs, the inputs, and {op type: path} for
    every source op the conversion report must name."""
    return pytest.param(fn, args, paths, id=case_id)


def raw(op, **attrs):
    """A function calling tf.raw_ops.<op> on the graph inputs, in the op's input order."""
    fn = getattr(tf.raw_ops, op)
    names = [n for n, _ in _opdef_inputs(op)]
    return lambda *xs: fn(**dict(zip(names, xs)), **attrs)


def _opdef_inputs(op):
    from codegen import opdefs

    return opdefs.get(op).inputs


def const(value, dtype="float32"):
    return tf.constant(np.asarray(value, dtype))


def weight(seed, *shape):
    """A seeded constant weight, fan-in scaled."""
    rng = np.random.default_rng(seed)
    return const(rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[:-1]) or 1), shape))


def spd(x):
    """A symmetric positive definite batch of matrices from any square batch."""
    n = x.shape[-1]
    return tf.matmul(x, x, transpose_b=True) + const(np.eye(n) * n)


def dequantized(dtype, mode):
    """A stored quantized constant (quantized weights) and its Dequantize, folded at conversion."""
    stored = (
        np.asarray([0, 3, 77, 128, 255])
        if dtype == tf.quint8
        else np.asarray([-128, -3, 0, 51, 127])
    )
    return tf.quantization.dequantize(tf.constant(stored, dtype), -0.7, 1.3, mode=mode)


@dataclass(frozen=True)
class Wav(Arg):
    """A batch of mono 16-bit PCM WAV files (tf.audio.decode_wav's input), of `samples`
    samples each: a chirp and noise, as tests/wild/speech_commands.py writes them."""

    samples: int = 1000

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        from tests.wild.speech_commands import wav_bytes

        t = np.arange(self.samples) / 16000
        clips = [
            np.sin(2 * np.pi * (200 + 700 * i + 900 * t) * t) + rng.normal(0, 0.1, t.size)
            for i in range(BATCH)
        ]
        return np.asarray([wav_bytes(c * 9000) for c in clips], object)


def wavs(samples=1000):
    return Wav((), "string", samples=samples)


def quantized(a):
    """A runtime tensor quantized to quint8 and dequantized again (MIN_FIRST, then SCALED)."""
    q = tf.quantization.quantize(a, -3.0, 3.0, tf.quint8, mode="MIN_FIRST")
    return tf.quantization.dequantize(q.output, q.output_min, q.output_max, mode="MIN_FIRST")
# quantized dtype -> (TensorFlow's, numpy's for its codes)
QUANTIZED = {
    "quint8": (tf.quint8, np.uint8),
    "qint8": (tf.qint8, np.int8),
    "quint16": (tf.quint16, np.uint16),
    "qint16": (tf.qint16, np.int16),
    "qint32": (tf.qint32, np.int32),
}


def codes(dtype, shape, seed):
    """Stored quantized codes spanning the dtype's whole range, as a constant of that dtype."""
    info = np.iinfo(QUANTIZED[dtype][1])
    rng = np.random.default_rng(seed)
    return tf.constant(rng.integers(info.min, info.max, shape, endpoint=True), QUANTIZED[dtype][0])


def ranges(seed, count=None):
    """A quantization range with min < 0 < max, one per channel when `count` is given."""
    rng = np.random.default_rng(seed)
    size = () if count is None else (count,)
    return const(-rng.uniform(0.05, 1.5, size)), const(rng.uniform(0.05, 1.5, size))


def dequantized_weight(dtype, mode, shape, axis=-1, narrow_range=False, seed=0):
    """A quantized weight as quantize_weights and TFLite converters stored it: codes, a range
    (per slice of `axis`) and the Dequantize that gives the float weight."""
    low, high = ranges(seed, shape[axis] if axis >= 0 else None)
    return tf.quantization.dequantize(
        codes(dtype, shape, seed),
        low,
        high,
        mode=mode,
        axis=None if axis < 0 else axis,
        narrow_range=narrow_range,
    )


def requantized_weight(dtype, mode, shape, axis=-1, seed=0):
    """A float weight through QuantizeV2 and back (Dequantize of its codes and output range)."""
    low, high = ranges(seed, shape[axis] if axis >= 0 else None)
    q = tf.raw_ops.QuantizeV2(
        input=weight(seed, *shape),
        min_range=low,
        max_range=high,
        T=QUANTIZED[dtype][0],
        mode=mode,
        axis=axis,
    )
    return tf.raw_ops.Dequantize(
        input=q.output, min_range=q.output_min, max_range=q.output_max, mode=mode, axis=axis
    )


def conv_on(kernel):
    return lambda a: tf.nn.conv2d(a, kernel(), 1, "SAME")


def dense_on(kernel):
    return lambda a: tf.matmul(a, kernel())


# An embedding table held in a variable: tf.gather on it is a ResourceGather until freezing.
TABLE = tf.Variable(np.random.default_rng(3).normal(size=(7, 4)).astype(np.float32))


def unary(op, arg=None, path=O, **attrs):
    return case(op, raw(op, **attrs), [arg or f()], **{op: path})


def binary(op, a=None, b=None, path=O, case_id=None, **attrs):
    return case(case_id or op, raw(op, **attrs), [a or f(), b or f()], **{op: path})


def folded(values, *fns, dtype="float32"):
    """a times the sum of fn(c), cast to float32, over constants c of these values: every fn
    folds at conversion time (graph2py's numpy kernels), so the report names only the Mul."""

    def fn(a):
        total = 0.0
        for g in fns:
            total = total + tf.cast(g(const(values, dtype)), tf.float32)
        return a * total

    return fn


def _tensor_array(size, element_shape):
    return tf.raw_ops.TensorArrayV3(
        size=size,
        dtype=tf.float32,
        element_shape=element_shape,
        identical_element_shapes=True,
        clear_after_read=False,
    )


def ta_outside(a):
    """Rows scattered out of order, two gathered back, one read, all concatenated, the size."""
    handle, flow = _tensor_array(4, [None, 5])
    x = tf.transpose(tf.reshape(a, [-1, 4, 5]), [1, 0, 2])
    flow = tf.raw_ops.TensorArrayScatterV3(
        handle=handle, indices=[3, 1, 0, 2], value=x, flow_in=flow
    )
    kw = dict(handle=handle, flow_in=flow, dtype=tf.float32)
    g = tf.raw_ops.TensorArrayGatherV3(indices=[2, 0], element_shape=[None, 5], **kw)
    r = tf.raw_ops.TensorArrayReadV3(index=1, **kw)
    c, _ = tf.raw_ops.TensorArrayConcatV3(element_shape_except0=[5], **kw)
    n = tf.cast(tf.raw_ops.TensorArraySizeV3(handle=handle, flow_in=flow), tf.float32)
    return g[0] * n + r, c


def ta_split(a):
    """A batch split into three equal arrays of rows, one read, two gathered."""
    handle, flow = _tensor_array(3, None)
    flow = tf.raw_ops.TensorArraySplitV3(handle=handle, value=a[0], lengths=[2, 2, 2], flow_in=flow)
    kw = dict(handle=handle, flow_in=flow, dtype=tf.float32)
    r = tf.raw_ops.TensorArrayReadV3(index=2, **kw)
    g = tf.raw_ops.TensorArrayGatherV3(indices=[1, 0], element_shape=[2, 5], **kw)
    return r + g


def ta_loop(a):
    """A state written at each step of a while loop, the array stacked after it (its element
    shape has the batch, unknown: the loop allocates the array like its first write)."""
    handle, flow = _tensor_array(3, [None, 5])

    def body(i, h, flow):
        h = tf.tanh(h * 1.5 + tf.cast(i, tf.float32))
        return (
            i + 1,
            h,
            tf.raw_ops.TensorArrayWriteV3(handle=handle, index=i, value=h, flow_in=flow),
        )

    _, _, flow = tf.while_loop(lambda i, h, f: i < 3, body, [0, a, flow])
    kw = dict(handle=handle, flow_in=flow, dtype=tf.float32, element_shape=[None, 5])
    return tf.raw_ops.TensorArrayGatherV3(indices=tf.range(3), **kw)


def ta_loop_read(a):
    """A loop reading one array (the sequence, unstacked) and writing another in reverse."""
    steps, flow = _tensor_array(3, [None, 5])
    x = tf.transpose(a, [1, 0, 2])
    flow = tf.raw_ops.TensorArrayScatterV3(handle=steps, indices=tf.range(3), value=x, flow_in=flow)
    out, out_flow = _tensor_array(3, [None, 5])

    def body(i, acc, f):
        step = tf.raw_ops.TensorArrayReadV3(handle=steps, index=i, flow_in=flow, dtype=tf.float32)
        acc = acc * 0.5 + step
        return (
            i + 1,
            acc,
            tf.raw_ops.TensorArrayWriteV3(handle=out, index=2 - i, value=acc, flow_in=f),
        )

    _, _, out_flow = tf.while_loop(lambda i, acc, f: i < 3, body, [0, x[0] * 0.0, out_flow])
    kw = dict(handle=out, flow_in=out_flow, dtype=tf.float32, element_shape=[None, 5])
    return tf.raw_ops.TensorArrayGatherV3(indices=[0, 1, 2], **kw)


U5 = np.linspace(-0.9, 0.9, 5)  # in the domain of asin, atanh, erfinv
V5 = [-7.0, -2.5, -0.5, 1.5, 7.0]  # no zero; halves for rint and round
SPECIALS = [np.nan, np.inf, -np.inf, 1.0, 0.0]


# fmt: off
CASES = [
    # elementwise unary, keras.ops
    unary("Abs"), case("Abs_int", raw("Abs"), [i32()], Abs=O),
    unary("Acos", unit()), unary("Acosh", pos(low=1.0, high=4.0)), unary("Asin", unit()),
    unary("Asinh"), unary("Atan"), unary("Atanh", unit()), unary("Ceil"), unary("Cos"),
    unary("Cosh"), unary("Erf"), unary("Erfc"), unary("Erfinv", unit()), unary("Exp"),
    unary("Expm1"), unary("Floor"), unary("Inv", pos()), unary("Reciprocal", f(low=0.5)),
    unary("IsFinite", special()), unary("IsInf", special()), unary("IsNan", special()),
    unary("Log", pos()), unary("Log1p", pos()), unary("Neg"), case("Neg_int", raw("Neg"), [i32()], Neg=O),
    unary("Rint", f(low=-4, high=4)), unary("Round", f(low=-4, high=4)),
    case("Rint_halves", raw("Rint"), [fixed([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]] * 2, "float32")], Rint=O),
    case("Round_halves", raw("Round"), [fixed([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]] * 2, "float32")], Round=O),
    unary("Rsqrt", pos()), unary("Sign"), case("Sign_int", raw("Sign"), [i32()], Sign=O),
    unary("Sin"), unary("Sinh"), unary("Sqrt", pos()), unary("Square"), unary("Tan", unit()),
    unary("ZerosLike"), unary("OnesLike"), case("ZerosLike_int", raw("ZerosLike"), [i32()], ZerosLike=O),
    case("Invert", raw("Invert"), [i32(low=-100, high=100)], Invert=O),
    case("LogicalNot", raw("LogicalNot"), [boolean()], LogicalNot=O),
    unary("Sigmoid", path=L), unary("Tanh", path=L), unary("Relu", path=L), unary("Relu6", path=L),
    unary("Elu", path=L), unary("Selu", path=L), unary("Softplus", path=L), unary("Softsign", path=L),
    unary("Softmax", f(3, 7), path=L), unary("LogSoftmax", f(3, 7)),
    case("LeakyRelu", raw("LeakyRelu", alpha=0.15), [f()], LeakyRelu=L),
    # shapes through the element-wise ops are known (codegen/optable's rules): the reshape is a Flatten
    case("unary_shapes", lambda a, b: tf.reshape(tf.math.tan(a) * tf.math.sinh(a) * tf.math.cosh(a) * tf.math.asin(a) * tf.math.acos(a)
                                                 * tf.math.atan(a) * tf.math.asinh(a) * tf.math.atanh(a) * tf.math.erfinv(a)
                                                 * tf.raw_ops.Inv(x=b) * tf.math.rint(b) * tf.ones_like(a) * tf.math.atan2(a, b) + tf.zeros_like(b), (-1, 20)),
         [unit(), f(low=0.5)], Tan=O, Sinh=O, Cosh=O, Asin=O, Acos=O, Atan=O, Asinh=O, Atanh=O, Erfinv=O, Inv=O, Rint=O, OnesLike=O, ZerosLike=O,
         Atan2=O, Mul=L, AddV2=L, Reshape=L),
    case("predicate_shapes", lambda a: tf.reshape(tf.where(tf.logical_and(tf.math.is_finite(a), tf.logical_not(tf.math.is_nan(a))), a,
                                                           tf.cast(tf.math.is_inf(a), tf.float32)), (-1, 20)), [special()],
         IsFinite=O, IsNan=O, IsInf=O, LogicalNot=O, LogicalAnd=O, Cast=O, SelectV2=O, Reshape=L),
    case("bitwise_shapes", lambda a, b: tf.reshape(tf.bitwise.bitwise_and(a, b) * tf.bitwise.bitwise_or(a, b) * tf.bitwise.bitwise_xor(a, b)
                                                   * tf.bitwise.left_shift(a, b) * tf.bitwise.right_shift(a, b) * tf.bitwise.invert(a), (-1, 20)),
         [i32(low=-100, high=100), i32(low=0, high=8)], BitwiseAnd=O, BitwiseOr=O, BitwiseXor=O, LeftShift=O, RightShift=O, Invert=O, Mul=L,
         Reshape=L),
    # elementwise unary, special functions: TensorFlow-only
    unary("Lgamma", pos(low=0.05, high=6.0), path=T), unary("Digamma", pos(low=0.2, high=6.0), path=T),
    unary("Ndtri", Arg(S, "float32", 0.02, 0.98), path=T), unary("BesselI0e", path=T),
    unary("BesselI1e", path=T), unary("BesselJ0", path=T), unary("BesselJ1", path=T),
    unary("BesselK0e", pos(), path=T), unary("BesselY0", pos(), path=T), unary("Dawsn", path=T),
    unary("Expint", pos(), path=T), unary("FresnelCos", path=T), unary("FresnelSin", path=T),
    unary("Spence", pos(), path=T), unary("Bitcast", path=T, type=tf.int32),
    case("PopulationCount", raw("PopulationCount"), [i32(low=-1000, high=1000)], PopulationCount=T),
    # elementwise binary
    binary("AddV2", path=L), binary("Add", path=L), binary("Sub", path=L), binary("Mul", path=L),
    binary("Maximum", path=L), binary("Minimum", path=L),
    binary("RealDiv", b=f(low=0.5)), binary("Div", b=pos()),
    binary("Div", i32(low=-20, high=20), i32(low=1, high=6), path=T, case_id="Div_int"),
    binary("DivNoNan", b=fixed(np.round(np.linspace(-1, 1, 40)).reshape(2, 4, 5), "float32")),
    binary("FloorDiv", b=pos()), binary("FloorDiv", i32(low=-20, high=20), i32(low=1, high=6), case_id="FloorDiv_int"),
    binary("FloorMod", b=pos()), binary("FloorMod", i32(low=-20, high=20), i32(low=1, high=6), case_id="FloorMod_int"),
    binary("TruncateDiv", i32(low=-20, high=20), i32(low=1, high=6), path=T),
    binary("TruncateMod", i32(low=-20, high=20), i32(low=1, high=6), path=T),
    binary("Mod", f(), pos(), path=T),
    binary("Pow", pos(), f()), binary("SquaredDifference"), binary("Atan2"),
    binary("Xlogy", b=pos(), path=T), binary("Xdivy", b=pos(), path=T), binary("Xlog1py", b=pos(), path=T),
    binary("MulNoNan", path=T), binary("Igamma", pos(), pos(), path=T), binary("Igammac", pos(), pos(), path=T),
    binary("Zeta", pos(low=1.1, high=4.0), pos(), path=T),
    binary("Polygamma", fixed([[[0, 1, 2, 3]] * 3] * 2, "float32"), pos(3, 4), path=T),
    case("Betainc", raw("Betainc"), [pos(), pos(), Arg(S, "float32", 0.0, 1.0)], Betainc=T),
    binary("NextAfter", path=T), binary("ApproximateEqual", f(), f(), path=T, tolerance=0.5),
    binary("BitwiseAnd", i32(low=-100, high=100), i32(low=-100, high=100)),
    binary("BitwiseOr", i32(low=-100, high=100), i32(low=-100, high=100)),
    binary("BitwiseXor", i32(low=-100, high=100), i32(low=-100, high=100)),
    binary("LeftShift", i32(low=-100, high=100), i32(low=0, high=8)),
    binary("RightShift", i32(low=-100, high=100), i32(low=0, high=8)),
    binary("Equal", i32(low=0, high=2), i32(low=0, high=2)), binary("NotEqual", i32(low=0, high=2), i32(low=0, high=2)),
    binary("Less"), binary("LessEqual", i32(low=0, high=2), i32(low=0, high=2)), binary("Greater"),
    binary("GreaterEqual", i32(low=0, high=2), i32(low=0, high=2)),
    binary("LogicalAnd", boolean(), boolean()), binary("LogicalOr", boolean(), boolean()),
    case("Maximum_const", lambda a: tf.maximum(a, 0.5), [f()], Maximum=O),
    case("AddN", lambda a, b: tf.raw_ops.AddN(inputs=[a, b, a]), [f(), f()], AddN=L),
    case("AddN_const", lambda a: tf.raw_ops.AddN(inputs=[a, const(np.linspace(0, 1, 40).reshape(2, 4, 5)), a]), [f()], AddN=O),
    case("AddN_int", lambda a, b: tf.raw_ops.AddN(inputs=[a, b, a]), [i32(), i32()], AddN=L),
    case("BiasAdd", lambda a: tf.nn.bias_add(a, const([0.5, -1, 2, 0.25, 3])), [f()], BiasAdd=O),
    # reductions
    case("Sum", lambda a: tf.raw_ops.Sum(input=a, axis=1), [f(3, 4, 5)], Sum=O),
    case("Sum_keep", lambda a: tf.raw_ops.Sum(input=a, axis=[1, 2], keep_dims=True), [f(3, 4, 5)], Sum=O),
    case("Mean", lambda a: tf.raw_ops.Mean(input=a, axis=[2]), [f(3, 4, 5)], Mean=O),
    case("Max", lambda a: tf.raw_ops.Max(input=a, axis=-1), [f(3, 4, 5)], Max=O),
    case("Min_int", lambda a: tf.raw_ops.Min(input=a, axis=1, keep_dims=True), [i32(3, 4)], Min=O),
    case("Prod", lambda a: tf.raw_ops.Prod(input=a, axis=[1]), [f(3, 4, low=0.5, high=1.5)], Prod=O),
    case("All", lambda a: tf.raw_ops.All(input=a, axis=[1]), [boolean(2, 3)], All=O),
    case("Any", lambda a: tf.raw_ops.Any(input=a, axis=[2]), [boolean(2, 3)], Any=O),
    case("EuclideanNorm", lambda a: tf.raw_ops.EuclideanNorm(input=a, axis=[1]), [f()], EuclideanNorm=O),
    case("ArgMax", lambda a: tf.raw_ops.ArgMax(input=a, dimension=1), [f(3, 7)], ArgMax=O),
    case("ArgMax_int32", lambda a: tf.raw_ops.ArgMax(input=a, dimension=2, output_type=tf.int32), [f(3, 7)], ArgMax=O),
    case("ArgMin", lambda a: tf.raw_ops.ArgMin(input=a, dimension=-1), [f(3, 7)], ArgMin=O),
    case("Mean_int", lambda a: tf.raw_ops.Mean(input=a, axis=[2]), [i32(3, 4, low=-9, high=9)], Mean=T),
    case("Mean_hw", lambda a: tf.reduce_mean(a, [1, 2]), [f(*IMG)], Mean=L),
    # casts
    case("Cast_float_int", lambda a: tf.cast(a, tf.int32), [f(low=-5, high=5)], Cast=O),
    case("Cast_int_float", lambda a: tf.cast(a, tf.float32), [i32()], Cast=O),
    case("Cast_float_bool", lambda a: tf.cast(a, tf.bool), [i32(low=0, high=1, dtype="float32")], Cast=O),
    case("Cast_bool_float", lambda a: tf.cast(a, tf.float32), [boolean()], Cast=O),
    case("Cast_int64", lambda a: tf.cast(a, tf.int64), [i32()], Cast=O),
    # shapes and layout
    case("Reshape", lambda a: tf.reshape(a, (-1, 5, 4)), [f()], Reshape=L),
    case("Reshape_int", lambda a: tf.reshape(a, (-1, 20)), [i32()], Reshape=L),
    case("Transpose", lambda a: tf.transpose(a, (0, 2, 1)), [f()], Transpose=L),
    case("Transpose_batch", lambda a: tf.transpose(a, (1, 0, 2)), [f()], Transpose=O),
    case("ExpandDims", lambda a: tf.expand_dims(a, -1), [f()], ExpandDims=L),
    case("Squeeze", lambda a: tf.squeeze(a, [2]), [f(4, 1, 5)], Squeeze=L),
    case("Tile", lambda a: tf.tile(a, [1, 2, 3]), [f()], Tile=O),
    case("Pad", lambda a: tf.pad(a, [[0, 0], [1, 2], [3, 0]]), [f()], Pad=O),
    case("PadV2", lambda a: tf.pad(a, [[0, 0], [1, 2], [3, 0]], constant_values=1.5), [f()], PadV2=O),
    case("MirrorPad_reflect", lambda a: tf.pad(a, [[0, 0], [1, 2], [3, 0]], "REFLECT"), [f()], MirrorPad=O),
    case("MirrorPad_symmetric", lambda a: tf.pad(a, [[0, 0], [1, 2], [3, 0]], "SYMMETRIC"), [f()], MirrorPad=O),
    case("Slice", lambda a: tf.slice(a, [0, 1, 2], [-1, 2, 3]), [f()], Slice=O),
    case("StridedSlice", lambda a: a[:, 1::2, ::-1], [f()], StridedSlice=O),
    case("StridedSlice_shrink_newaxis", lambda a: a[:, 2, tf.newaxis, 1:], [f()], StridedSlice=O),
    case("StridedSlice_ellipsis", lambda a: a[..., 3], [f(3, 4, 5)], StridedSlice=O),
    case("ConcatV2", lambda a, b: tf.concat([a, b, a], axis=1), [f(), f(2, 5)], ConcatV2=L),
    case("ConcatV2_const", lambda a: tf.concat([a, const(np.ones((1, 4, 5)))], axis=0), [f()], ConcatV2=O),
    case("Pack", lambda a, b: tf.stack([a, b], axis=2), [f(), f()], Pack=O),
    case("Unpack", lambda a: tf.unstack(a, axis=1), [f()], Unpack=O),
    case("Unpack_one", lambda a: tf.unstack(a, axis=1)[0], [f(1, 5)], Unpack=O),
    case("Split_one", lambda a: tf.split(a, 1, axis=1)[0] * 2.0, [f()], Split=O, Mul=L),
    case("StridedSlice_shape_vector", lambda a: tf.shape(a)[1:], [f()], Shape=T, StridedSlice=O),
    case("Split", lambda a: tf.split(a, 2, axis=1), [f()], Split=O),
    case("SplitV", lambda a: tf.split(a, [1, -1, 2], axis=2), [f()], SplitV=O),
    case("ReverseV2", lambda a: tf.reverse(a, [1, 2]), [f()], ReverseV2=O),
    case("ReverseV2_one_axis", lambda a: tf.reverse(a, [-1]), [i32()], ReverseV2=O),
    case("Reverse", lambda a: tf.raw_ops.Reverse(tensor=a, dims=[False, True, False]), [f()], Reverse=T),
    case("Roll", lambda a: tf.roll(a, [2, -1], [1, 2]), [f()], Roll=O),
    case("BroadcastTo", lambda a: tf.broadcast_to(a, (2, 3, 4, 5)), [f(1, 4, 5)], BroadcastTo=O),
    case("Fill", lambda a: tf.fill([2, 3], tf.reduce_sum(a)), [f()], Sum=O, Fill=O),
    case("Shape", lambda a: tf.shape(a), [f()], Shape=T),
    case("Shape_int64", lambda a: tf.shape(a, out_type=tf.int64), [f()], Shape=T),
    case("DynamicStitch", lambda a, b: tf.dynamic_stitch([const([0, 2], "int32"), const([1, 3, 4], "int32")], [a[0], b[0]]),
         [f(2, 3), f(3, 3)], DynamicStitch=T, StridedSlice=O),
    case("Size", lambda a: tf.size(a), [f()], Size=T),
    case("Rank", lambda a: tf.raw_ops.Rank(input=a), [f()], Rank=T),
    case("Range", lambda a: tf.range(tf.reduce_max(a[:, 0])), [i32(3, low=1, high=9)], Range=T, Max=O, StridedSlice=O),
    case("LinSpace", lambda a: tf.raw_ops.LinSpace(start=tf.reduce_min(a), stop=tf.reduce_max(a), num=7), [f()], LinSpace=T, Min=O, Max=O),
    case("Where", lambda a: tf.where(a > 0), [f()], Where=T, Greater=O),
    case("Select", lambda c, a, b: tf.raw_ops.Select(condition=c, x=a, y=b), [boolean(), f(), f()], Select=O),
    case("Select_vector", lambda c, a, b: tf.raw_ops.Select(condition=c[:, 0, 0], x=a, y=b),
         [boolean(), f(), f()], Select=T, StridedSlice=O),
    case("SelectV2", lambda c, a, b: tf.where(c, a, b), [boolean(4, 1), f(), f(1, 5)], SelectV2=O),
    case("InvertPermutation", raw("InvertPermutation"), [fixed([3, 0, 4, 1, 2], "int32")], InvertPermutation=T),
    # gathers and scatters
    case("GatherV2", lambda a, i: tf.gather(a, i, axis=1), [f(6, 3), i32(2, low=0, high=5)], GatherV2=O),
    case("GatherV2_const_indices", lambda a: tf.gather(a, [3, 0, 3], axis=2), [f()], GatherV2=O),
    case("GatherV2_batch_dims", lambda a, i: tf.gather(a, i, axis=1, batch_dims=1), [f(6, 3), i32(2, low=0, high=5)], GatherV2=T),
    case("ResourceGather_frozen", lambda i: tf.gather(TABLE, i), [i32(3, low=0, high=6)], GatherV2=L),
    case("GatherNd", lambda a, i: tf.gather_nd(a, i), [f(), i32(3, 2, low=0, high=1)], GatherNd=T),
    case("ScatterNd", lambda u: tf.scatter_nd(const([[1], [3]], "int32"), u[0], [5, 5]), [f(2, 5)], ScatterNd=T, StridedSlice=O),
    case("TensorScatterUpdate", lambda a, u: tf.tensor_scatter_nd_update(a, const([[0, 1], [1, 3]], "int32"), u[:, 0]),
         [f(), f()], TensorScatterUpdate=T, StridedSlice=O),
    case("TensorScatterAdd", lambda a: tf.raw_ops.TensorScatterAdd(tensor=a, indices=const([[1], [0], [1]], "int32"), updates=const(np.ones((3, 4, 5)))),
         [f()], TensorScatterAdd=T),
    case("TensorScatterMax", lambda a: tf.raw_ops.TensorScatterMax(tensor=a, indices=const([[1], [0]], "int32"), updates=const(np.zeros((2, 4, 5)))),
         [f()], TensorScatterMax=T),
    case("OneHot", lambda i: tf.one_hot(i, 4), [i32(3, low=-1, high=4)], OneHot=O),
    case("OneHot_values_axis", lambda i: tf.one_hot(i, 5, on_value=2.0, off_value=-1.0, axis=1), [i32(3, low=0, high=4)], OneHot=O),
    case("OneHot_int", lambda i: tf.one_hot(i, 3, dtype=tf.int32), [i32(3, low=0, high=3)], OneHot=O),
    case("TopKV2", lambda a: tf.math.top_k(a, 3), [f(3, 7)], TopKV2=O),
    case("Bucketize", lambda a: tf.raw_ops.Bucketize(input=a, boundaries=[-1.0, 0.0, 0.5, 2.0]), [f()], Bucketize=O),
    case("ClipByValue", lambda a: tf.raw_ops.ClipByValue(t=a, clip_value_min=-1.0, clip_value_max=0.5), [f()], ClipByValue=O),
    case("SegmentSum", lambda a: tf.math.segment_sum(a, const([0, 0, 1, 3], "int32")), [fixed(np.linspace(-3, 3, 80).reshape(4, 4, 5), "float32")], SegmentSum=T),
    case("UnsortedSegmentSum", lambda a: tf.math.unsorted_segment_sum(a, const([[0, 2, 0, 1]] * 2, "int32"), 3), [f()], UnsortedSegmentSum=T),
    case("UnsortedSegmentMax", lambda a: tf.math.unsorted_segment_max(a, const([[0, 2, 0, 1]] * 2, "int32"), 3), [f()], UnsortedSegmentMax=T),
    # cumulative
    case("Cumsum", lambda a: tf.math.cumsum(a, 1), [f()], Cumsum=O),
    case("Cumsum_exclusive", lambda a: tf.math.cumsum(a, 1, exclusive=True), [f()], Cumsum=T),
    case("Cumsum_reverse", lambda a: tf.math.cumsum(a, 2, reverse=True), [f()], Cumsum=T),
    case("Cumprod", lambda a: tf.math.cumprod(a, 2), [f(low=0.5, high=1.5)], Cumprod=O),
    case("Cumprod_exclusive_reverse", lambda a: tf.math.cumprod(a, 1, exclusive=True, reverse=True), [f()], Cumprod=T),
    case("CumulativeLogsumexp", lambda a: tf.math.cumulative_logsumexp(a, 1), [f()], CumulativeLogsumexp=T),
    # matrices
    case("MatMul", lambda a, b: tf.matmul(a[:, 0], b[:, 0], transpose_b=True), [f(2, 5), f(3, 5)], MatMul=O, StridedSlice=O),
    case("BatchMatMulV2", lambda a, b: tf.matmul(a, b), [f(4, 3), f(3, 5)], BatchMatMulV2=O),
    case("BatchMatMulV2_adj", lambda a, b: tf.matmul(a, b, adjoint_a=True, adjoint_b=True), [f(3, 4), f(5, 3)], BatchMatMulV2=O),
    case("Einsum", lambda a, b: tf.einsum("bij,bkj->bik", a, b), [f(4, 3), f(5, 3)], Einsum=O),
    case("MatrixBandPart", lambda a: tf.linalg.band_part(a, 1, 0), [f(4, 5)], MatrixBandPart=O),
    case("MatrixBandPart_upper", lambda a: tf.linalg.band_part(a, -1, 2), [f(5, 4)], MatrixBandPart=O),
    case("MatrixBandPart_int", lambda a: tf.linalg.band_part(a, 0, -1), [i32(4, 4)], MatrixBandPart=O),
    case("MatrixBandPart_tensor_bounds", lambda a, k: tf.linalg.band_part(a, k[0, 0], k[1, 0]), [f(4, 5), fixed([[1], [2]], "int64")],
         MatrixBandPart=T, StridedSlice=O),
    case("MatrixDiagV3", lambda a: tf.linalg.diag(a), [f(3)], MatrixDiagV3=O),
    case("MatrixDiagPartV3", lambda a: tf.linalg.diag_part(a), [f(4, 5)], MatrixDiagPartV3=O),
    case("MatrixDiagPartV3_band", lambda a: tf.linalg.diag_part(a, k=(-1, 1)), [f(4, 5)], MatrixDiagPartV3=T),
    case("MatrixSetDiagV3", lambda a, d: tf.linalg.set_diag(a, d), [f(4, 5), f(4)], MatrixSetDiagV3=T),
    case("MatrixInverse", lambda a: tf.linalg.inv(spd(a)), [f(3, 3)], MatrixInverse=T, BatchMatMulV2=O, AddV2=O),
    case("MatrixDeterminant", lambda a: tf.linalg.det(a), [f(3, 3)], MatrixDeterminant=T),
    case("LogMatrixDeterminant", lambda a: tf.linalg.slogdet(a), [f(3, 3)], LogMatrixDeterminant=T),
    case("Cholesky", lambda a: tf.linalg.cholesky(spd(a)), [f(3, 3)], Cholesky=T, BatchMatMulV2=O, AddV2=O),
    case("MatrixTriangularSolve", lambda a, b: tf.linalg.triangular_solve(spd(a), b), [f(3, 3), f(3, 2)],
         MatrixTriangularSolve=T, BatchMatMulV2=O, AddV2=O),
    case("MatrixSolve", lambda a, b: tf.linalg.solve(spd(a), b), [f(3, 3), f(3, 2)], MatrixSolve=T, BatchMatMulV2=O, AddV2=O),
    # image
    case("ResizeBilinear_half_pixel", lambda a: tf.raw_ops.ResizeBilinear(images=a, size=[9, 4], half_pixel_centers=True), [f(*IMG)], ResizeBilinear=O),
    case("ResizeBilinear_int", lambda a: tf.raw_ops.ResizeBilinear(images=a, size=[9, 4], half_pixel_centers=True), [i32(*IMG, low=-50, high=50)], ResizeBilinear=O),
    case("Round_int", raw("Round"), [i32()], Round=T),
    case("ResizeBilinear_align_corners", lambda a: tf.raw_ops.ResizeBilinear(images=a, size=[9, 4], align_corners=True), [f(*IMG)], ResizeBilinear=T),
    case("ResizeBilinear_legacy", lambda a: tf.raw_ops.ResizeBilinear(images=a, size=[9, 4]), [f(*IMG)], ResizeBilinear=T),
    case("ResizeNearestNeighbor_half_pixel", lambda a: tf.raw_ops.ResizeNearestNeighbor(images=a, size=[9, 4], half_pixel_centers=True), [f(*IMG)], ResizeNearestNeighbor=O),
    case("ResizeNearestNeighbor_legacy_x2", lambda a: tf.raw_ops.ResizeNearestNeighbor(images=a, size=[12, 10]), [f(*IMG)], ResizeNearestNeighbor=O),
    case("ResizeNearestNeighbor_legacy", lambda a: tf.raw_ops.ResizeNearestNeighbor(images=a, size=[9, 4]), [f(*IMG)], ResizeNearestNeighbor=T),
    case("ResizeNearestNeighbor_align_corners", lambda a: tf.raw_ops.ResizeNearestNeighbor(images=a, size=[9, 4], align_corners=True), [f(*IMG)], ResizeNearestNeighbor=T),
    case("ResizeBicubic_half_pixel", lambda a: tf.raw_ops.ResizeBicubic(images=a, size=[9, 4], half_pixel_centers=True), [f(*IMG)], ResizeBicubic=T),
    case("ResizeBicubic_align_corners", lambda a: tf.raw_ops.ResizeBicubic(images=a, size=[9, 4], align_corners=True), [f(*IMG)], ResizeBicubic=T),
    case("ResizeArea", lambda a: tf.raw_ops.ResizeArea(images=a, size=[4, 3]), [f(*IMG)], ResizeArea=T),
    case("DepthToSpace", lambda a: tf.nn.depth_to_space(a, 2), [f(3, 2, 8)], DepthToSpace=O),
    case("SpaceToDepth", lambda a: tf.nn.space_to_depth(a, 2), [f(4, 6, 3)], SpaceToDepth=O),
    case("SpaceToBatchND", lambda a: tf.space_to_batch(a, [2, 2], [[0, 0], [1, 1]]), [f(4, 4, 3)], SpaceToBatchND=T),
    case("BatchToSpaceND", lambda a: tf.batch_to_space(a, [2, 1], [[0, 0], [0, 0]]), [f(4, 4, 3)], BatchToSpaceND=T),
    case("CropAndResize", lambda a: tf.image.crop_and_resize(a, const([[0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]]), const([0, 1], "int32"), [3, 4]),
         [f(*IMG)], CropAndResize=T),
    case("ExtractImagePatches", lambda a: tf.image.extract_patches(a, [1, 3, 2, 1], [1, 2, 2, 1], [1, 1, 1, 1], "VALID"), [f(*IMG)], ExtractImagePatches=T),
    case("AdjustContrastv2", lambda a: tf.image.adjust_contrast(a, 1.7), [f(*IMG)], AdjustContrastv2=T),
    case("AdjustSaturation", lambda a: tf.image.adjust_saturation(a, 0.6), [f(*IMG, low=0, high=1)], AdjustSaturation=T),
    case("AdjustHue", lambda a: tf.image.adjust_hue(a, 0.2), [f(*IMG, low=0, high=1)], AdjustHue=T),
    case("RGBToHSV", lambda a: tf.image.rgb_to_hsv(a), [f(*IMG, low=0, high=1)], RGBToHSV=T),
    case("HSVToRGB", lambda a: tf.image.hsv_to_rgb(a), [f(*IMG, low=0, high=1)], HSVToRGB=T),
    # nn
    case("LRN", lambda a: tf.nn.local_response_normalization(a, 2, 1.5, 0.3, 0.6), [f(*IMG)], LRN=T),
    case("L2Loss", lambda a: tf.nn.l2_loss(a), [f()], L2Loss=O),
    case("MaxPoolWithArgmax", lambda a: tf.nn.max_pool_with_argmax(a, 2, 2, "SAME"), [f(*IMG)], MaxPoolWithArgmax=T),
    case("MaxPool", lambda a: tf.nn.max_pool2d(a, (3, 2), 2, "SAME"), [f(*IMG)], MaxPool=L),
    case("AvgPool", lambda a: tf.nn.avg_pool2d(a, (2, 3), 1, "VALID"), [f(*IMG)], AvgPool=L),
    case("Conv2D", lambda a: tf.nn.conv2d(a, weight(1, 3, 2, 3, 4), 1, "SAME"), [f(*IMG)], Conv2D=L),
    case("DepthwiseConv2dNative", lambda a: tf.nn.depthwise_conv2d(a, weight(2, 3, 3, 3, 2), [1, 1, 1, 1], "VALID"), [f(*IMG)], DepthwiseConv2dNative=L),
    case("FusedBatchNormV3", lambda a: tf.compat.v1.nn.fused_batch_norm(a, const([1, 2, .5]), const([0, 1, -1]), const([.1, .2, .3]), const([1, 2, 3]), is_training=False)[0],
         [f(*IMG)], FusedBatchNormV3=L),
    case("MatMul_dense", lambda a: tf.matmul(a, weight(10, 5, 3)), [f(5)], MatMul=L),
    case("BatchMatMulV2_dense", lambda a: tf.matmul(a, weight(11, 5, 3)), [f()], BatchMatMulV2=L),
    case("Einsum_dense", lambda a: tf.einsum("bij,jk->bik", a, weight(12, 5, 3)), [f()], Einsum=L),
    case("Pad_zero_padding", lambda a: tf.pad(a, [[0, 0], [1, 2], [0, 1], [0, 0]]), [f(*IMG)], Pad=L),
    case("StridedSlice_cropping", lambda a: a[:, 1:-1, 2:, :], [f(*IMG)], StridedSlice=L),
    case("RealDiv_rescaling", lambda a: a / 3.0, [f()], RealDiv=L),
    case("Max_global_pool", lambda a: tf.reduce_max(a, [1, 2]), [f(*IMG)], Max=L),
    case("MaxPool3D", lambda a: tf.nn.max_pool3d(a, 2, 2, "VALID"), [f(4, 6, 4, 2)], MaxPool3D=T),
    case("AvgPool3D", lambda a: tf.nn.avg_pool3d(a, 2, 1, "SAME"), [f(4, 6, 4, 2)], AvgPool3D=T),
    case("Conv3D", lambda a: tf.nn.conv3d(a, weight(3, 2, 2, 2, 2, 3), [1] * 5, "SAME"), [f(4, 6, 4, 2)], Conv3D=L),
    case("Dilation2D", lambda a: tf.nn.dilation2d(a, weight(4, 2, 3, 3), [1, 1, 1, 1], "SAME", "NHWC", [1, 1, 1, 1]), [f(*IMG)], Dilation2D=T),
    case("Conv2DBackpropInput", lambda a: tf.nn.conv2d_transpose(a, weight(5, 3, 3, 4, 3), [2, 12, 10, 4], 2, "SAME"), [f(*IMG)], Conv2DBackpropInput=L),
    case("InTopKV2", lambda a, t: tf.math.in_top_k(t[:, 0], a, 2), [f(7), i32(1, low=0, high=6)], InTopKV2=T, StridedSlice=O),
    # quantization
    case("FakeQuantWithMinMaxArgs", lambda a: tf.quantization.fake_quant_with_min_max_args(a, -2.0, 1.5, 8), [f()], FakeQuantWithMinMaxArgs=O),
    case("FakeQuantWithMinMaxArgs_narrow4", lambda a: tf.quantization.fake_quant_with_min_max_args(a, -1.0, 2.0, 4, narrow_range=True), [f()], FakeQuantWithMinMaxArgs=O),
    case("FakeQuantWithMinMaxArgs_many", lambda a: tf.quantization.fake_quant_with_min_max_args(a, -0.37, 5.1, 7), [f(50, 40, low=-1, high=6)], FakeQuantWithMinMaxArgs=O),
    case("FakeQuantWithMinMaxVars", lambda a: tf.quantization.fake_quant_with_min_max_vars(a, const(-1.7), const(2.3)), [f()], FakeQuantWithMinMaxVars=O),
    case("FakeQuantWithMinMaxVarsPerChannel", lambda a: tf.quantization.fake_quant_with_min_max_vars_per_channel(a, const([-1, -2, -.5, -3, 0]), const([1, .5, 2, 3, 1])),
         [f()], FakeQuantWithMinMaxVarsPerChannel=O),
    case("QuantizeAndDequantizeV2", lambda a: tf.quantization.quantize_and_dequantize(a, -2.0, 2.0, range_given=True), [f()], QuantizeAndDequantizeV2=T),
    case("Dequantize_quint8", lambda a: a + dequantized(tf.quint8, "MIN_COMBINED"), [f()], AddV2=O),
    case("Dequantize_qint8", lambda a: a + dequantized(tf.qint8, "MIN_COMBINED"), [f()], AddV2=O),
    case("Dequantize_qint8_scaled", lambda a: a + dequantized(tf.qint8, "SCALED"), [f()], AddV2=O),
    case("Dequantize_quint8_scaled", lambda a: a + dequantized(tf.quint8, "SCALED"), [f()], AddV2=O),
    case("unary_math_const", lambda a: a * tf.sign(tf.floor(tf.exp(tf.abs(weight(7, 5))) - 1.5)) + tf.math.ceil(tf.tanh(tf.math.log(tf.sigmoid(weight(8, 5))))), [f()],
         Mul=O, AddV2=O),
    case("LinSpace_const", lambda a: a * tf.raw_ops.LinSpace(start=const(-1.0), stop=const(2.0), num=const(5, "int32")), [f()], Mul=O),
    case("OnesLike_ZerosLike_const", lambda a: tf.maximum(a, tf.ones_like(weight(9, 5)) - tf.zeros_like(weight(9, 5))), [f()], Maximum=O),
    # constant folding of the element-wise ops (codegen/optable's numpy kernels): only the Mul is left
    case("folded_trig", folded(U5, tf.math.tan, tf.math.sin, tf.math.cos, tf.math.sinh, tf.math.cosh, tf.math.asin, tf.math.acos, tf.math.atan,
                               tf.math.asinh, tf.math.atanh, tf.math.erfinv, lambda c: tf.math.acosh(c * c + 1.0)), [f()], Mul=O),
    case("folded_activations", folded(V5, tf.nn.relu, tf.nn.relu6, tf.nn.elu, tf.nn.selu, tf.nn.softplus, tf.nn.softsign, tf.nn.softmax,
                                      tf.nn.log_softmax, tf.math.erf, tf.math.erfc, tf.math.expm1, lambda c: tf.math.log1p(tf.abs(c)),
                                      tf.math.rint, tf.round, lambda c: tf.raw_ops.Inv(x=c)), [f()], Mul=O),
    case("folded_predicates", folded(SPECIALS, tf.math.is_nan, tf.math.is_inf, tf.math.is_finite, lambda c: tf.logical_not(c > 0),
                                     lambda c: tf.equal(c, 1.0), lambda c: tf.not_equal(c, 0.0), lambda c: tf.logical_and(c >= 0, c < 2),
                                     lambda c: tf.logical_or(c <= -1, c > 1), lambda c: tf.reduce_all(tf.reshape(c > -1, [1, 5]), 0),
                                     lambda c: tf.reduce_any(tf.reshape(c < 0, [5, 1]), 1)), [f()], Mul=O),
    case("folded_binary", folded(U5, lambda c: tf.math.atan2(c, const(V5)), lambda c: tf.pow(tf.abs(c) + 0.5, const(V5)),
                                 lambda c: tf.math.floormod(const(V5), c + 1.5), lambda c: tf.math.divide_no_nan(c, const([0, 2, 0, -4, 1]))),
         [f()], Mul=O),
    case("folded_bitwise", folded([-9, -2, 0, 3, 100], lambda c: tf.bitwise.bitwise_and(c, 6), lambda c: tf.bitwise.bitwise_or(c, 6),
                                  lambda c: tf.bitwise.bitwise_xor(c, 6), lambda c: tf.bitwise.left_shift(c, const([0, 1, 2, 3, 4], "int32")),
                                  lambda c: tf.bitwise.right_shift(c, const([0, 1, 2, 3, 4], "int32")), tf.bitwise.invert,
                                  lambda c: tf.math.floormod(c, 4), lambda c: tf.pow(c, 2), dtype="int32"), [f()], Mul=O),
    case("FakeQuant_const", lambda a: a * tf.quantization.fake_quant_with_min_max_vars(weight(6, 5), const(-0.4), const(0.9), 5), [f()], Mul=L),
    case("FakeQuantWithMinMaxVarsPerChannel_wide", lambda a: tf.quantization.fake_quant_with_min_max_vars_per_channel(a, const(-np.linspace(1, 2, 20)), const(np.linspace(0.5, 3, 20))),
         [f(3, 20)], FakeQuantWithMinMaxVarsPerChannel=O),
    # more TensorFlow-only ops: shape-changing, data-dependent, several outputs
    case("MatrixDiag", raw("MatrixDiag"), [f(3)], MatrixDiag=O),
    case("MatrixDiagPart", raw("MatrixDiagPart"), [f(4, 3)], MatrixDiagPart=O),
    case("MatrixSetDiag", raw("MatrixSetDiag"), [f(4, 3), f(3)], MatrixSetDiag=T),
    case("Cross", raw("Cross"), [f(4, 3), f(4, 3)], Cross=T),
    case("ReverseSequence", lambda a: tf.reverse_sequence(a, const([2, 4], "int32"), seq_axis=1, batch_axis=0), [f()], ReverseSequence=T),
    case("Unique", lambda a: tf.unique(tf.reshape(a, [-1])), [i32(3, low=0, high=4)], Unique=T, Reshape=O),
    case("SegmentMax", lambda a: tf.math.segment_max(a, const([0, 1, 1, 2], "int32")), [fixed(np.linspace(-3, 3, 80).reshape(4, 4, 5), "float32")], SegmentMax=T),
    case("UnsortedSegmentProd", lambda a: tf.math.unsorted_segment_prod(a, const([[0, 2, 0, 1]] * 2, "int32"), 3), [f()], UnsortedSegmentProd=T),
    case("Complex_ComplexAbs", lambda a, b: tf.abs(tf.complex(a, b)), [f(), f()], Complex=T, ComplexAbs=T),
    case("RFFT", lambda a: tf.math.real(tf.signal.rfft(a)), [f(3, 8)], RFFT=T, Real=T),
    case("SparseSoftmaxCrossEntropyWithLogits", lambda a, i: tf.nn.sparse_softmax_cross_entropy_with_logits(i[:, 0], a), [f(5), i32(1, low=0, high=4)],
         SparseSoftmaxCrossEntropyWithLogits=T, StridedSlice=O),
    case("CheckNumerics", lambda a: tf.debugging.check_numerics(a, "bad"), [f()], CheckNumerics=T),
    case("HistogramFixedWidth", lambda a: tf.histogram_fixed_width(a, [-2.0, 2.0], 6), [f()], HistogramFixedWidth=T),
    case("NthElement", lambda a: tf.raw_ops.NthElement(input=a, n=2), [f(3, 6)], NthElement=T),
    case("TensorScatterSub", lambda a: tf.raw_ops.TensorScatterSub(tensor=a, indices=const([[1, 2]], "int32"), updates=const(np.ones((1, 5)))), [f()], TensorScatterSub=T),
    # strings and other dtypes through the TensorFlow-only layer
    case("StringLength", lambda s: tf.strings.length(s), [Arg(S, "string")], StringLength=T),
    case("StringToHashBucketFast", lambda s: tf.strings.to_hash_bucket_fast(s, 7), [Arg(S, "string")], StringToHashBucketFast=T),
    # wild-rnn: fused LSTM ops over a whole sequence, lifted to keras.layers.LSTM (the report
    # names every lifted recurrence "LSTM loop" / "GRU loop", whatever form it had)
    case("BlockLSTM", lambda a: block_lstm(a, "BlockLSTM", forget_bias=1.0), [f(6, 3)], **{"LSTM loop": L}),
    case("BlockLSTMV2", lambda a: block_lstm(a, "BlockLSTMV2"), [f(6, 3)], **{"LSTM loop": L}),
    # wild-inputs: an input declared without a shape (the conv fixes its rank and channels, the
    # image size stays free); scalar switches fed beside the data (is_train, keep_prob)
    case("unknown_rank_into_Conv2D", lambda a: tf.nn.relu(tf.nn.conv2d(a, weight(11, 3, 3, 3, 4), 1, "SAME")),
         [Arg(IMG, declared=False)], Conv2D=L, Relu=L),
    case("scalar_knob_inputs", lambda a, t, k: tf.raw_ops.SelectV2(condition=t, t=a * k, e=tf.nn.relu(a)),
         [f(), Arg((), "bool", batched=False), Arg((), "float32", 0.5, 1.0, batched=False)], SelectV2=O, Mul=O, Relu=L),
    # branch wild-tfonly (issue 9, class 3): ops whose shape Keras cannot infer symbolically. Those with
    # a keras.ops form take it; the others are TensorFlow-only layers built from the shapes and
    # dtypes graph2py inferred (strings, quantized tensors, run-time shape operands and axes)
    case("Reshape_computed_target", lambda a, b: tf.reshape(a, tf.stack([tf.shape(b)[1], -1])), [f(7, 2), f(7, 3)],
         Reshape=O, Shape=O, Pack=O, StridedSlice=O),
    case("Reshape_computed_batch", lambda a: tf.reshape(a, tf.stack([tf.shape(a)[0] * tf.shape(a)[1], -1])), [f()],
         Reshape=O, Shape=O, Mul=O, Pack=O, StridedSlice=O),
    case("Reshape_computed_prod", lambda a: tf.reshape(a, tf.stack([tf.reduce_prod(tf.shape(a)[:2]), -1])), [f()],
         Reshape=O, Shape=O, Prod=O, Pack=O, StridedSlice=O),
    case("Reshape_other_tensors_batch", lambda a, b: tf.reshape(a, tf.stack([tf.shape(b)[0] * 4, -1])), [f(), f(2)],
         Reshape=T, Shape=T, Mul=O, Pack=O, StridedSlice=O),
    case("Fill_like", lambda a: tf.fill(tf.shape(a), tf.reduce_max(a)), [f()], Fill=O, Shape=O, Max=O),
    case("Fill_static_part", lambda a: tf.fill(tf.shape(a)[1:], a[0, 0, 0]), [f()], Fill=O, Shape=O, StridedSlice=O),
    case("Fill_int", lambda a: tf.fill(tf.shape(a), a[0, 0, 0] + 1), [i32()], Fill=O, Shape=O, StridedSlice=O, AddV2=O),
    case("Fill_batch_zero_state", lambda a: tf.zeros(tf.stack([tf.shape(a)[0], 2, 3])) + a[:, :2, :3], [f()],
         Fill=O, Shape=O, Pack=O, StridedSlice=O, AddV2=L),
    case("Fill_batch_vector", lambda a: tf.fill(tf.stack([tf.shape(a)[0], 7]), a[0, 0]), [i32(3)], Fill=O, Shape=O, Pack=O, StridedSlice=O),
    case("BroadcastTo_like", lambda a, b: tf.broadcast_to(a, tf.shape(b)), [f(1, 5), f(4, 5)], BroadcastTo=O, Shape=O),
    case("BroadcastTo_like_bool", lambda a, b: tf.broadcast_to(a > 0, tf.shape(b)), [f(1, 5), f(4, 5)],
         BroadcastTo=O, Shape=O, Greater=O),
    case("Range_computed", lambda a: tf.cast(tf.range(tf.shape(a)[1]), tf.float32) * a[:, :, 0], [f()],
         Range=T, Shape=T, Cast=O, Mul=O, StridedSlice=O),
    case("ExpandDims_tensor_axis", lambda a, k: tf.expand_dims(a, k[0, 0]), [f(), fixed([[1], [1]], "int32")],
         ExpandDims=T, StridedSlice=O),
    case("Sum_tensor_axis", lambda a, k: tf.reduce_sum(a, k[0, 0]), [f(), fixed([[1], [1]], "int32")], Sum=T, StridedSlice=O),
    case("Mean_tensor_axes_keep_dims", lambda a, k: tf.reduce_mean(a, k[0], keepdims=True), [f(), fixed([[1, 2], [1, 2]], "int32")],
         Mean=T, StridedSlice=O),
    case("StridedSlice_dynamic_bounds", lambda a, k: a[:, tf.reduce_max(k):, 1:], [f(), fixed([[1], [2]], "int32")],
         StridedSlice=T, Pack=O, Max=O),
    case("MatrixDiagPartV3_k1", lambda a: tf.linalg.diag_part(a, k=1), [f(4, 5)], MatrixDiagPartV3=O),
    case("MatrixDiagPartV3_k_neg2", lambda a: tf.linalg.diag_part(a, k=-2), [f(4, 5)], MatrixDiagPartV3=O),
    case("MatrixDiagPartV2", lambda a: tf.raw_ops.MatrixDiagPartV2(input=a, k=const(-1, "int32"), padding_value=const(0.0)), [f(4, 5)],
         MatrixDiagPartV2=O),
    case("MatrixDiagPartV2_band", lambda a: tf.raw_ops.MatrixDiagPartV2(input=a, k=const([0, 2], "int32"), padding_value=const(9.0)), [f(4, 5)],
         MatrixDiagPartV2=T),
    case("MatrixDiagV2", lambda a: tf.raw_ops.MatrixDiagV2(diagonal=a, k=const(0, "int32"), num_rows=const(-1, "int32"),
                                                           num_cols=const(-1, "int32"), padding_value=const(0.0)), [f(3)], MatrixDiagV2=O),
    case("MatrixDiagV3_k1", lambda a: tf.linalg.diag(a, k=1), [f(3)], MatrixDiagV3=T),
    case("MatrixDiagV3_rectangular", lambda a: tf.linalg.diag(a, k=-1, num_rows=4, num_cols=5, padding_value=0.5), [f(3)], MatrixDiagV3=T),
    case("OneHot_axis0", lambda i: tf.one_hot(i, 4, axis=0), [i32(3, low=0, high=3)], OneHot=O),
    case("ScatterNd_computed_shape", lambda a: tf.scatter_nd(const([[0], [2]], "int32"), a, tf.concat([[4], tf.shape(a)[1:]], 0)), [f()],
         ScatterNd=T, Shape=T, ConcatV2=O, StridedSlice=O),
    case("SparseToDense", lambda a: tf.raw_ops.SparseToDense(sparse_indices=const([[0], [2]], "int32"), output_shape=const([4], "int32"),
                                                            sparse_values=a[0, :2, 0], default_value=const(0.5)), [f()],
         SparseToDense=T, StridedSlice=O),
    case("BatchToSpaceND_computed_crops", lambda a: tf.batch_to_space(a, [2, 1], tf.stack([[0, 0], [0, tf.shape(a)[2] - 4]])), [f(4, 5, 3)],
         BatchToSpaceND=T, Shape=T, Pack=O, StridedSlice=O, Sub=O),
    case("DecodeWav", lambda s: tf.audio.decode_wav(s[0], desired_channels=1).audio, [wavs()], DecodeWav=T, StridedSlice=O),
    case("DecodeWav_AudioSpectrogram_Mfcc", lambda s: tf.raw_ops.Mfcc(
        spectrogram=tf.raw_ops.AudioSpectrogram(input=tf.audio.decode_wav(s[1], 1, 1600).audio, window_size=256, stride=128),
        sample_rate=tf.audio.decode_wav(s[1], 1, 1600).sample_rate, dct_coefficient_count=12), [wavs(1200)],
         DecodeWav=T, AudioSpectrogram=T, Mfcc=T, StridedSlice=O),
    case("QuantizeV2_Dequantize", quantized, [f()], QuantizeV2=T, Dequantize=T),
    case("AdjustContrastv2_runtime_factor", lambda a, k: tf.image.adjust_contrast(a, k[0, 0]), [f(*IMG), f(1)],
         AdjustContrastv2=T, StridedSlice=O),
    # branch wild-tfonly (issue 9, class 6): keras.ops forms Keras refuses as written
    case("StridedSlice_new_axis", lambda a: a[None], [f()], StridedSlice=O),
    case("StridedSlice_new_axes_ellipsis", lambda a: a[None, ..., None], [f()], StridedSlice=O),
    case("StridedSlice_ellipsis_only", lambda a: a[...], [f()], StridedSlice=O),
    case("Select_scalar", lambda c, a, b: tf.raw_ops.Select(condition=c[0, 0] > 0, x=a, y=b), [f(1), f(), f()],
         Select=O, Greater=O, StridedSlice=O),
    case("SelectV2_scalar", lambda c, a, b: tf.where(c[0, 0] > 0, a, b), [f(1), f(), f()], SelectV2=O, Greater=O, StridedSlice=O),
    case("ClipByValue_tensor_bounds", lambda a, lo, hi: tf.raw_ops.ClipByValue(t=a, clip_value_min=lo, clip_value_max=hi),
         [f(), f(), f(low=0, high=2)], ClipByValue=O),
    case("ClipByValue_scalar_tensor_bound", lambda a, lo: tf.raw_ops.ClipByValue(t=a, clip_value_min=lo[0, 0], clip_value_max=const(2.0)),
         [f(), f(1)], ClipByValue=O, StridedSlice=O),
    case("clip_by_value_broadcast_bounds", lambda a: tf.clip_by_value(a, const(np.linspace(-2, 0, 5)), 1.0), [f()], Minimum=O, Maximum=O),
    case("StringJoin_constant", lambda s: tf.strings.join([s, tf.fill(tf.shape(s), "-x")]), [Arg((3,), "string")],
         StringJoin=T, Fill=T, Shape=T),
    case("Equal_string_constant", lambda s: tf.equal(s, "graph"), [Arg((3,), "string")], Equal=O),
    case("SelectV2_string_constant", lambda s: tf.where(tf.strings.length(s) > 1, s, "short"), [Arg((3,), "string")],
         SelectV2=O, Greater=O, StringLength=T),
    case("StringJoin_scalar_constant", lambda s: tf.strings.join([s, "ü\"'"], separator="+"), [Arg((3,), "string")], StringJoin=T),
    # wild-edge: issue 9, class 6 (layer patterns)
    case("Tensordot_3d", lambda a: tf.tensordot(a, weight(31, 5, 6), [[2], [0]]) + const(np.linspace(-1, 1, 6)), [f(3, 5)],
         Shape=L, GatherV2=L, Prod=L, Pack=L, Transpose=L, Reshape=L, MatMul=L, ConcatV2=L, AddV2=L),
    case("Tensordot_4d", lambda a: tf.nn.relu(tf.tensordot(a, weight(32, 5, 3), 1)), [f(2, 4, 5)],
         Shape=L, GatherV2=L, Prod=L, Pack=L, Transpose=L, Reshape=L, MatMul=L, ConcatV2=L, Relu=L),
    case("Tensordot_after_unknown_shape", lambda a: tf.tensordot(tf.reverse(a, [1]), weight(42, 5, 4), [[2], [0]]), [f(3, 5)],
         ReverseV2=O, Shape=L, GatherV2=L, Prod=L, Pack=L, Transpose=L, Reshape=L, MatMul=L, ConcatV2=L),
    case("Reshape_runtime_heads", lambda a: tf.transpose(tf.reshape(a, [tf.shape(a)[0], tf.shape(a)[1], 2, 3]), [0, 2, 1, 3])
         + tf.transpose(tf.reshape(a * 2.0, [tf.shape(a)[0], tf.shape(a)[1], 2, 3]), [0, 2, 1, 3]), [f(4, 6)],
         Shape=L, StridedSlice=L, Pack=L, Reshape=L, Transpose=L, Mul=L, AddV2=L),
    case("LeakyRelu_int32", lambda a: tf.nn.leaky_relu(a, 0.3), [i32(low=-50, high=50)], Cast=O, LeakyRelu=L),
    case("LeakyRelu_int64_negative", lambda a: tf.nn.leaky_relu(a, -0.1), [i32(low=-50, high=50, dtype="int64")], Cast=O, LeakyRelu=O),
    case("LeakyRelu_negative", lambda a: tf.nn.leaky_relu(a, -1.0), [f()], LeakyRelu=O),
    case("LeakyRelu_steep", lambda a: tf.nn.leaky_relu(a, 10.0), [f()], LeakyRelu=L),
    case("Conv2D_strided_dilated_same", lambda a: tf.raw_ops.Conv2D(input=a, filter=weight(33, 3, 3, 3, 4), strides=[1, 2, 2, 1], padding="SAME", dilations=[1, 2, 2, 1]),
         [f(11, 10, 3)], Conv2D=L),
    case("Conv2D_strided_dilated_valid", lambda a: tf.nn.relu(tf.nn.bias_add(tf.raw_ops.Conv2D(input=a, filter=weight(34, 3, 2, 3, 4), strides=[1, 3, 2, 1], padding="VALID",
         dilations=[1, 2, 3, 1]), const(np.linspace(-1, 1, 4)))), [f(12, 13, 3)], Conv2D=L, BiasAdd=L, Relu=L),
    case("FusedBatchNormV3_5d", lambda a: tf.raw_ops.FusedBatchNormV3(x=a, scale=const([0.5, 1.5, 1.2]), offset=const([0.1, -0.2, 0.3]), mean=const([0.2, -0.1, 0.4]),
         variance=const([0.7, 1.3, 0.9]), epsilon=1e-3, data_format="NDHWC", is_training=False)[0], [f(2, 4, 3, 3)], FusedBatchNormV3=L),
    case("Conv3D_bias_relu", lambda a: tf.nn.relu(tf.nn.conv3d(a, weight(35, 2, 3, 2, 3, 4), [1, 1, 2, 1, 1], "SAME") + const(np.linspace(-1, 1, 4))), [f(3, 6, 5, 3)],
         Conv3D=L, AddV2=L, Relu=L),
    case("Conv2DBackpropInput_const_shape", lambda a: tf.raw_ops.Conv2DBackpropInput(input_sizes=const([BATCH, 11, 9, 4], "int32"), filter=weight(36, 3, 3, 4, 3),
         out_backprop=a, strides=[1, 2, 2, 1], padding="SAME"), [f(6, 5, 3)], Conv2DBackpropInput=L),
    case("Conv2DBackpropInput_valid_output_padding", lambda a: tf.nn.conv2d_transpose(a, weight(37, 3, 2, 4, 3), tf.stack([tf.shape(a)[0], 14, 12, 4]), [1, 2, 3, 1], "VALID"),
         [f(6, 4, 3)], Shape=L, StridedSlice=L, Pack=L, Conv2DBackpropInput=L),
    case("Conv2DBackpropInput_from_input_shape", lambda a: tf.nn.conv2d_transpose(a, weight(38, 4, 4, 2, 3), tf.stack([tf.shape(a)[0], tf.shape(a)[1] * 2, tf.shape(a)[2] * 2, 2]),
         [1, 2, 2, 1], "SAME"), [f(6, 5, 3)], Shape=L, StridedSlice=L, Mul=L, Pack=L, Conv2DBackpropInput=L),
    case("Conv2DBackpropInput_shared_shape", lambda a: (lambda s: tf.nn.conv2d_transpose(a, weight(39, 3, 3, 2, 3), s, 2, "SAME")
         + tf.nn.conv2d_transpose(a * 2.0, weight(40, 3, 3, 2, 3), s, 2, "SAME"))(tf.stack([tf.shape(a)[0], 12, 10, 2])),
         [f(6, 5, 3)], Shape=L, StridedSlice=L, Pack=L, Conv2DBackpropInput=L, Mul=L, AddV2=L),
    # wild-quant: quantized and QAT weights become plain float weights of Conv2D/Dense (the
    # dequantization or fake quantization is a recipe step of load_weights.py); fake
    # quantization of activations is keras.ops
    case("Dequantize_MIN_FIRST_quint8_weight", conv_on(lambda: dequantized_weight("quint8", "MIN_FIRST", (3, 2, 3, 4))), [f(*IMG)], Conv2D=L),
    case("Dequantize_MIN_FIRST_qint8_weight", dense_on(lambda: dequantized_weight("qint8", "MIN_FIRST", (5, 3), seed=1)), [f(5)], MatMul=L),
    case("Dequantize_MIN_FIRST_quint16_weight", dense_on(lambda: dequantized_weight("quint16", "MIN_FIRST", (5, 3), seed=2)), [f(5)], MatMul=L),
    case("Dequantize_MIN_COMBINED_qint32_weight", dense_on(lambda: dequantized_weight("qint32", "MIN_COMBINED", (5, 3), seed=3)), [f(5)], MatMul=L),
    case("Dequantize_MIN_COMBINED_quint8_weight", conv_on(lambda: dequantized_weight("quint8", "MIN_COMBINED", (3, 2, 3, 4), seed=4)), [f(*IMG)], Conv2D=L),
    case("Dequantize_MIN_COMBINED_qint16_axis", conv_on(lambda: dequantized_weight("qint16", "MIN_COMBINED", (3, 2, 3, 4), axis=3, seed=5)), [f(*IMG)], Conv2D=L),
    case("Dequantize_SCALED_qint8_axis_narrow", conv_on(lambda: dequantized_weight("qint8", "SCALED", (3, 2, 3, 4), axis=3, narrow_range=True, seed=6)), [f(*IMG)], Conv2D=L),
    case("Dequantize_SCALED_quint8_weight", dense_on(lambda: dequantized_weight("quint8", "SCALED", (5, 3), seed=7)), [f(5)], MatMul=L),
    case("Dequantize_SCALED_qint32_weight", dense_on(lambda: dequantized_weight("qint32", "SCALED", (5, 3), seed=8)), [f(5)], MatMul=L),
    *[case(f"Dequantize_{mode}_{dtype}_weight", dense_on(lambda mode=mode, dtype=dtype: dequantized_weight(dtype, mode, (5, 3), seed=17)), [f(5)], MatMul=L)
      for mode, dtype in (("MIN_FIRST", "qint16"), ("MIN_FIRST", "qint32"), ("MIN_COMBINED", "qint8"), ("MIN_COMBINED", "quint16"),
                          ("SCALED", "quint16"), ("SCALED", "qint16"))],
    case("QuantizeV2_MIN_COMBINED_quint8_weight", conv_on(lambda: requantized_weight("quint8", "MIN_COMBINED", (3, 2, 3, 4), seed=9)), [f(*IMG)], Conv2D=L),
    case("QuantizeV2_SCALED_qint8_axis_weight", conv_on(lambda: requantized_weight("qint8", "SCALED", (3, 2, 3, 4), axis=3, seed=10)), [f(*IMG)], Conv2D=L),
    case("QuantizeV2_MIN_FIRST_qint16_weight", dense_on(lambda: requantized_weight("qint16", "MIN_FIRST", (5, 3), seed=11)), [f(5)], MatMul=L),
    case("FakeQuantWithMinMaxArgs_weight", dense_on(lambda: tf.quantization.fake_quant_with_min_max_args(weight(12, 5, 3), -0.6, 0.4, 6)), [f(5)], MatMul=L),
    case("FakeQuantWithMinMaxVars_weight", conv_on(lambda: tf.quantization.fake_quant_with_min_max_vars(weight(13, 3, 2, 3, 4), *ranges(13), narrow_range=True)), [f(*IMG)], Conv2D=L),
    case("FakeQuantWithMinMaxVarsPerChannel_weight", conv_on(lambda: tf.quantization.fake_quant_with_min_max_vars_per_channel(weight(14, 3, 2, 3, 4), *ranges(14, 4), 5)),
         [f(*IMG)], Conv2D=L),
    case("FakeQuantWithMinMaxVars_batch_norm_folded_weight",
         conv_on(lambda: tf.quantization.fake_quant_with_min_max_vars(weight(18, 3, 2, 3, 4) * (const([0.9, 1.1, 1.3, 0.7]) * tf.math.rsqrt(const([0.5, 1.5, 2.0, 0.3]) + 0.001)),
                                                                      *ranges(18), narrow_range=True)), [f(*IMG)], Conv2D=L),
    case("FakeQuantWithMinMaxVars_activation", lambda a: tf.quantization.fake_quant_with_min_max_vars(a, *ranges(15), 4, narrow_range=True), [f()], FakeQuantWithMinMaxVars=O),
    case("FakeQuantWithMinMaxArgs_activation16", lambda a: tf.quantization.fake_quant_with_min_max_args(a, -2.5, 0.7, 16), [f()], FakeQuantWithMinMaxArgs=O),
    case("FakeQuantWithMinMaxVarsPerChannel_activation", lambda a: tf.quantization.fake_quant_with_min_max_vars_per_channel(a, *ranges(16, 5), 3, True), [f()],
         FakeQuantWithMinMaxVarsPerChannel=O),
    # TF1's atrous conv (SpaceToBatchND, Conv2D, BatchToSpaceND) as one dilated Conv2D
    case("SpaceToBatchND_atrous_same", lambda a: tf.nn.atrous_conv2d(a, weight(31, 3, 3, 3, 4), 2, "SAME"), [f(*IMG)],
         SpaceToBatchND=L, Conv2D=L, BatchToSpaceND=L),
    case("SpaceToBatchND_atrous_valid", lambda a: tf.nn.relu(tf.nn.atrous_conv2d(a, weight(32, 2, 3, 3, 4), 3, "VALID")), [f(9, 8, 3)],
         SpaceToBatchND=L, Conv2D=L, BatchToSpaceND=L, Relu=L),
    # a computed constant too large to write out is computed by the loader from stored ones
    case("computed_constant_concat", lambda a: a + tf.concat([weight(20, 40, 64), weight(21, 40, 64)], 0), [f(80, 64)], AddV2=O),
    case("computed_constant_sliced_kernel", lambda a: tf.matmul(a, weight(22, 64, 130)[:, ::2]), [f(64)], MatMul=L),
    case("computed_constant_in_the_model", lambda a: a * tf.exp(weight(25, 80, 64)) + tf.reshape(tf.range(5120.0), [80, 64]), [f(80, 64)],
         Mul=O, AddV2=O, Exp=O, Reshape=O, Range=T),
    case("computed_constant_gathered_table", lambda a: a * tf.gather(weight(23, 90, 70), [5, 1, 88] * 30), [f(90, 70)], Mul=O),
    # wild-loops: TF1 TensorArrays (raw ops) outside a loop and carried through one
    case("TensorArray_scatter_gather_read_concat_size", ta_outside, [f(4, 5)], TensorArrayV3=O, TensorArrayScatterV3=O,
         TensorArrayGatherV3=O, TensorArrayReadV3=O, TensorArrayConcatV3=O, Reshape=L, Transpose=O, StridedSlice=O, Mul=L, AddV2=L),
    case("TensorArray_split_read", ta_split, [f(6, 5)], TensorArraySplitV3=O, TensorArrayReadV3=O, TensorArrayGatherV3=O, StridedSlice=O, AddV2=O),
    case("TensorArray_while_write_stack", ta_loop, [f(5)], TensorArrayV3=O, While=O, TensorArrayGatherV3=O),
    case("TensorArray_while_read_write", ta_loop_read, [f(3, 5)], TensorArrayV3=O, While=O, TensorArrayGatherV3=O, Transpose=O,
         StridedSlice=O, Mul=L),
]
# fmt: on


def block_lstm(x, op, **attrs):
    """The fused op as LSTMBlockFusedCell ran it: the time-major sequence in, zero states,
    every h transposed back out."""
    units = 4
    xt = tf.transpose(x, [1, 0, 2])
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], units]))
    peephole = tf.zeros([units])
    outputs = getattr(tf.raw_ops, op)(
        seq_len_max=tf.cast(tf.shape(xt)[0], tf.int64),
        x=xt,
        cs_prev=zeros,
        h_prev=zeros,
        w=weight(11, 3 + units, 4 * units),
        wci=peephole,
        wcf=peephole,
        wco=peephole,
        b=weight(12, 4 * units),
        cell_clip=-1.0,
        use_peephole=False,
        **attrs,
    )
    return tf.transpose(outputs[-1], [1, 0, 2])


def freeze(fn, args, path) -> None:
    specs = [
        tf.TensorSpec(
            None if not a.declared else (None, *a.shape) if a.batched else a.shape,
            a.dtype,
            name=name,
        )
        for name, a in zip("abcd", args)
    ]
    concrete = tf.function(fn).get_concrete_function(*specs)
    frozen = convert_variables_to_constants_v2(concrete)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString(deterministic=True))


def compare(case_id: str, reference: np.ndarray, actual) -> None:
    actual = np.asarray(actual)
    assert actual.dtype == reference.dtype, f"{case_id}: dtype {actual.dtype} != {reference.dtype}"
    assert actual.shape == reference.shape, f"{case_id}: shape {actual.shape} != {reference.shape}"
    if reference.dtype.kind not in "fc":
        assert np.array_equal(reference, actual), f"{case_id}: values differ"
        return
    finite = np.isfinite(reference)
    assert np.array_equal(
        reference[~finite], actual[~finite], equal_nan=True
    ), f"{case_id}: non-finite values differ"
    if finite.any():
        error, bound = max_error(reference[finite], actual[finite])
        assert error <= bound, f"{case_id}: max|Δ| = {error:.3g} exceeds {bound:.3g}"


def convert_and_run(tmp_path, case_id, fn, args):
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    path = tmp_path / "graph.pb"
    freeze(fn, args, path)
    spec, files = convert(path)
    cli.write_atomically(tmp_path / "out", files)
    model_mod, loader = import_generated(tmp_path / "out")
    try:  # issue 9: a graph that converts gives a model that builds
        built = model_mod.build_model()
    except Exception as err:
        pytest.fail(f"{case_id}: build_model() raised {type(err).__name__}: {err}")
    model = loader.load_weights(built, str(path))
    values = {f"{name}:0": a.sample(rng) for name, a in zip("abcd", args)}
    feeds = [values[i.tensor if ":" in i.tensor else i.tensor + ":0"] for i in spec.inputs]
    references = run_graph(path, dict(zip([i.tensor for i in spec.inputs], feeds)), spec.outputs)
    outputs = model(feeds if len(feeds) > 1 else feeds[0])
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return spec, model, feeds, references, outputs


def source_paths(spec) -> dict[str, str]:
    """{op type: path} from the conversion report; an op taking two paths fails the test."""
    paths: dict[str, str] = {}
    for path, ops in spec.report().items():
        for op in ops:
            if op in NOT_COMPUTATIONS:
                continue
            assert op not in paths, f"{op} took two paths: {paths[op]} and {path}"
            paths[op] = path
    return paths


@pytest.mark.parametrize("fn, args, paths", CASES)
def test_single_op(tmp_path, request, fn, args, paths):
    """Every row converts, its generated model builds (build_model() never raises for a graph
    that converted), runs and matches, through the paths the row names."""
    case_id = request.node.callspec.id
    spec, _, _, references, outputs = convert_and_run(tmp_path, case_id, fn, args)
    assert source_paths(spec) == paths
    assert len(outputs) == len(references)
    for reference, actual in zip(references, outputs):
        compare(case_id, np.asarray(reference), actual)


def table_paths() -> dict[str, set[str]]:
    """{path: op types} across the table (each row's paths are checked against the report)."""
    found: dict[str, set[str]] = {L: set(), O: set(), T: set()}
    for param in CASES:
        for op, path in param.values[2].items():
            found[path].add(op)
    return found


def test_row_ids_are_unique():
    """Rows are told apart by id (the backend suites key their results by it)."""
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_table_covers_150_op_types():
    """Distinct op types with a parity row (each row checks its ops against spec.report())."""
    found = table_paths()
    every = set().union(*found.values())
    assert len(every) >= 150, f"{len(every)} op types: {', '.join(sorted(every))}"
    assert all(found.values())


def test_table_counts_per_path():
    """The note in docs/supported_ops.md quotes these; each path is exercised by many ops."""
    found = table_paths()
    assert len(found[L]) >= 20 and len(found[O]) >= 100 and len(found[T]) >= 80, {
        path: len(ops) for path, ops in found.items()
    }


def test_raw_ops_names_match_tensorflow():
    """The TensorFlow-only layer calls tf.raw_ops by keyword with the registry's argument names,
    as the op table renames them: every op without handles must line up with the installed TF."""
    import inspect

    from codegen import opdefs

    wrong = {}
    for op in sorted(opdefs._table()):
        definition = opdefs.get(op)
        if definition.handles or not hasattr(tf.raw_ops, op):
            continue
        ours = {definition.keyword(n) for n, *_ in (*definition.inputs, *definition.attrs)}
        theirs = set(inspect.signature(getattr(tf.raw_ops, op)).parameters) - {"name"}
        if ours != theirs:
            wrong[op] = sorted(ours ^ theirs)
    assert not wrong


def test_unseen_op_runs_through_the_tensorflow_only_layer(tmp_path):
    """Polygamma, Igammac and Zeta have no pattern of their own and never appear in a model
    graph2py was written against: the generic layer still converts them, the model matches
    TensorFlow, the JSON report names them, and the model survives a .keras round trip."""

    def fn(a, b):
        n = tf.floor(tf.abs(a[..., :1]) * 2.0)  # polygamma orders 0..5
        return tf.raw_ops.Polygamma(a=n, x=b) + tf.raw_ops.Igammac(
            a=b, x=tf.abs(a) + 0.1
        ) * tf.raw_ops.Zeta(x=b + 1.0, q=b)

    args = [f(3, 4), pos(3, 4, low=0.3)]
    spec, model, feeds, references, outputs = convert_and_run(tmp_path, "unseen", fn, args)
    compare("unseen", references[0], outputs[0])
    report = cli.report_json(spec)
    assert {"Polygamma", "Igammac", "Zeta"} <= set(report["ops"][T])
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    compare("unseen reloaded", references[0], reloaded(feeds))


def test_cli_report_json_names_the_tensorflow_only_op(tmp_path, capsys):
    path = tmp_path / "graph.pb"
    freeze(raw("Zeta"), [pos(low=1.1), pos()], path)
    assert cli.main([str(path), "-o", str(tmp_path / "out"), "--report", "json"]) == 0
    report = json.loads(capsys.readouterr().err)  # the report goes to stderr
    assert report["ops"][T] == {"Zeta": 1}


def test_generated_code_survives_keras_save(tmp_path):
    """keras.ops expressions, Constant layers and TF-only layers with literal tensor operands
    all serialize: a model mixing them reloads from .keras and computes the same."""

    def fn(a, i):
        x = tf.math.cumsum(a, 1, exclusive=True) + const(np.linspace(-1, 1, 20).reshape(4, 5))
        return tf.gather(tf.nn.relu(x), i[:, 0], axis=1), tf.raw_ops.Lgamma(x=tf.abs(a) + 0.5)

    args = [f(), i32(2, low=0, high=3)]
    spec, model, feeds, references, outputs = convert_and_run(tmp_path, "mixed", fn, args)
    report = spec.report()
    assert "Cumsum" in report[T] and "GatherV2" in report[O] and "Relu" in report[L]
    assert any(layer.cls == "Constant" for layer in spec.layers)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    for reference, actual in zip(references, reloaded(feeds)):
        compare("mixed reloaded", np.asarray(reference), actual)


def test_supported_ops_doc_is_current():
    from codegen import supported

    assert (
        supported.DOC.read_text(encoding="utf-8") == supported.generate()
    ), "docs/supported_ops.md is stale: run `python -m codegen.supported`"
