"""Element-wise ops, one input or two, and reductions.

Each kernel gives the dtype TensorFlow gives: numpy's functions keep a float32 input float32
(where a Python scalar would promote, the result is cast back), predicates give bool.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from .numeric import dtype_of, same_operand
from .record import binary, op, reduction, unary
from .signature import Attr

# -- numpy for the activations and special functions numpy lacks --------------------------------


def sigmoid(x):
    """1 / (1 + e^-x) in x's dtype (overflow of e^-x gives 0, as TF's does)."""
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _relu(x):
    return np.maximum(x, np.zeros((), x.dtype))


def _relu6(x):
    return np.clip(x, 0, 6).astype(x.dtype)


def _elu(x):
    return np.where(x > 0, x, np.expm1(x)).astype(x.dtype)


_SELU_SCALE, _SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717


def _selu(x):
    return (_SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x))).astype(x.dtype)


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x).astype(x.dtype)


def _softsign(x):
    return (x / (1 + np.abs(x))).astype(x.dtype)


def _softmax(x):
    """Along the last axis, as TF's Softmax (which refuses a scalar)."""
    _last_axis(x)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return (e / np.sum(e, axis=-1, keepdims=True)).astype(x.dtype)


def _log_softmax(x):
    _last_axis(x)
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return (shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))).astype(x.dtype)


def _last_axis(x) -> None:
    if np.ndim(x) == 0:
        raise ValueError("a scalar has no last axis")


def _reciprocal(x):
    return (1.0 / x).astype(x.dtype)


def _rsqrt(x):
    return (1.0 / np.sqrt(x)).astype(x.dtype)


def _per_element(fn):
    """A float function from Python's math module, applied to each element of a float array."""

    def apply(x):
        if x.dtype.kind != "f":
            raise TypeError(f"{fn.__name__} of {x.dtype}")
        return np.vectorize(fn, otypes=[np.float64])(x).astype(x.dtype)

    apply.__name__ = fn.__name__
    return apply


_NORMAL = statistics.NormalDist()


def _erfinv_of(y: float) -> float:
    """The inverse error function through the normal quantile: erf(z / sqrt 2) = 2 Phi(z) - 1."""
    if math.isnan(y) or abs(y) > 1:
        return math.nan
    if abs(y) == 1:
        return math.copysign(math.inf, y)
    return _NORMAL.inv_cdf((y + 1) / 2) / math.sqrt(2)


def _div_no_nan(a, b):
    """a / b, and 0 where b is 0 (even for a 0 or NaN a)."""
    quotient = np.divide(a, b)
    return np.where(b == 0, np.zeros((), quotient.dtype), quotient).astype(np.result_type(a, b))


def _real_div(a, b):
    return np.divide(a, b).astype(np.result_type(a, b))


def _predicate(fn):
    def compare(a, b):
        return np.asarray(fn(a, b), dtype=bool)

    compare.__name__ = fn.__name__
    return compare


# What a Cast may produce: the dtypes TensorFlow casts to that Keras and numpy have too. A
# quantized, 4- or 8-bit float, string or handle dtype is none of them; such a Cast is refused
# at decoding rather than converted to something else.
CAST_DTYPES = (
    "bool",
    *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)


def _cast(node, x):
    return x.astype(dtype_of(node, "DstT"))  # bfloat16, which numpy lacks, is not folded


# -- one input ---------------------------------------------------------------------------------

unary("Abs", np.abs, "abs", channels_last=True)
unary("Acos", np.arccos, "arccos")
unary("Acosh", np.arccosh, "arccosh")
unary("Asin", np.arcsin, "arcsin")
unary("Asinh", np.arcsinh, "arcsinh")
unary("Atan", np.arctan, "arctan")
unary("Atanh", np.arctanh, "arctanh")
unary("Ceil", np.ceil, "ceil")
unary("Cos", np.cos, "cos")
unary("Cosh", np.cosh, "cosh")
unary("Elu", _elu, "elu", channels_last=True)
unary("Erf", _per_element(math.erf), "erf", channels_last=True)
unary("Erfc", _per_element(math.erfc), "erfc", channels_last=True)
unary("Erfinv", _per_element(_erfinv_of), "erfinv")
unary("Exp", np.exp, "exp", channels_last=True)
unary("Expm1", np.expm1, "expm1")
unary("Floor", np.floor, "floor")
unary("Inv", _reciprocal, "reciprocal")
unary("Invert", np.invert, "bitwise_invert")
unary("IsFinite", np.isfinite, "isfinite")
unary("IsInf", np.isinf, "isinf")
unary("IsNan", np.isnan, "isnan")
unary("Log", np.log, "log")
unary("Log1p", np.log1p, "log1p")
unary("LogSoftmax", _log_softmax, "log_softmax")
unary("LogicalNot", np.logical_not, "logical_not")
unary("Neg", np.negative, "negative", channels_last=True, recipe="negative")
unary("OnesLike", np.ones_like, "ones_like")
unary("Reciprocal", _reciprocal, "reciprocal")
unary("Relu", _relu, "relu", channels_last=True)
unary("Relu6", _relu6, "relu6", channels_last=True)
unary("Rint", np.rint, "round")
unary("Round", np.round, "round")
unary("Rsqrt", _rsqrt, "rsqrt", channels_last=True)
unary("Selu", _selu, "selu", channels_last=True)
unary("Sigmoid", sigmoid, "sigmoid", channels_last=True)
unary("Sign", np.sign, "sign")
unary("Sin", np.sin, "sin")
unary("Sinh", np.sinh, "sinh")
unary("Softmax", _softmax, "softmax")
unary("Softplus", _softplus, "softplus", channels_last=True)
unary("Softsign", _softsign, "softsign", channels_last=True)
unary("Sqrt", np.sqrt, "sqrt", channels_last=True, recipe="sqrt")
unary("Square", np.square, "square", channels_last=True, recipe="square")
unary("Tan", np.tan, "tan")
unary("Tanh", np.tanh, "tanh", channels_last=True)
unary("ZerosLike", np.zeros_like, "zeros_like")

# No keras.ops spelling in the table: LeakyRelu becomes a layer, LRN runs in the TensorFlow-only
# layer, and patterns/ops.py writes Cast with its dtype.
unary("LeakyRelu", attrs={"alpha": Attr("f")}, channels_last=True)
unary("LRN")
unary("Cast", kernel=_cast, attrs={"DstT": Attr("type", required=True, choices=CAST_DTYPES)})

# -- two inputs --------------------------------------------------------------------------------

binary("Add", np.add, "add", channels_last=True, recipe="add")
binary("AddV2", np.add, "add", channels_last=True, recipe="add")
binary("Atan2", np.arctan2, "arctan2")
binary("BitwiseAnd", np.bitwise_and, "bitwise_and")
binary("BitwiseOr", np.bitwise_or, "bitwise_or")
binary("BitwiseXor", np.bitwise_xor, "bitwise_xor")
binary("DivNoNan", _div_no_nan, "divide_no_nan")
binary("Equal", _predicate(np.equal), "equal")
binary("FloorDiv", np.floor_divide, "floor_divide")
binary("FloorMod", np.mod, "mod")
binary("Greater", _predicate(np.greater), "greater")
binary("GreaterEqual", _predicate(np.greater_equal), "greater_equal")
binary("LeftShift", np.left_shift, "left_shift")
binary("Less", _predicate(np.less), "less")
binary("LessEqual", _predicate(np.less_equal), "less_equal")
binary("LogicalAnd", np.logical_and, "logical_and")
binary("LogicalOr", np.logical_or, "logical_or")
binary("Maximum", np.maximum, "maximum", channels_last=True, recipe="maximum")
binary("Minimum", np.minimum, "minimum", channels_last=True, recipe="minimum")
binary("Mul", np.multiply, "multiply", channels_last=True, recipe="multiply")
binary("NotEqual", _predicate(np.not_equal), "not_equal")
binary("Pow", np.power, "power")
binary("RealDiv", _real_div, "divide", channels_last=True, recipe="divide")
binary("RightShift", np.right_shift, "right_shift")
binary("Sub", np.subtract, "subtract", channels_last=True, recipe="subtract")
# keras.ops spellings that hold only for some dtypes or need two calls: patterns/ops.py
binary("Div")
binary("SquaredDifference", channels_last=True)

# -- reductions --------------------------------------------------------------------------------

reduction("All", np.all, "all")
reduction("Any", np.any, "any")
reduction("Max", np.max, "max", channels_last=True)
reduction("Mean", np.mean, "mean", channels_last=True)
reduction("Min", np.min, "min", channels_last=True)
reduction("Prod", np.prod, "prod", channels_last=True)
reduction("Sum", np.sum, "sum", channels_last=True)
reduction("ArgMax", attrs={})  # keras.ops.argmax and a cast: patterns/ops.py
reduction("ArgMin", attrs={})

# -- more inputs, handled by their patterns ----------------------------------------------------


def _same_operands(node, ins, out, c):
    """Every operand has the output's shape (AddN's; Select's branches)."""
    return [out] * len(ins)


def _branch_operands(node, ins, out, c):
    return [None, out, out]


op("AddN", list_min=1, operands=_same_operands)
op("ClipByValue", operands=same_operand)
# shape rule: passes/control.py, which resolves conditions into Selects
op("Select", operands=_branch_operands)
op("SelectV2")
op("EuclideanNorm")
op("L2Loss")
