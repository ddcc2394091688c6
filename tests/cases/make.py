"""The graphs of the golden cases, written the way TF1 code builds and freezes them (variables
as Const nodes read through `<name>/read`, scopes as tf.layers, tf.nn and tf.cond name them),
with weights drawn from a generator seeded per case.

    python tests/cases/make.py [NAME ...]    rewrite the cases' .pbtxt files (all, or NAME...)

Each function below is one case: its docstring becomes the comment that opens the .pbtxt file
(what the case covers), `@case(options)` the `# graph2py:` line of converter options. The
.pbtxt files are what tests/test_cases.py converts; a test there checks that they are what
this module writes, so edit a case here and rerun, then update the expected outputs
(`python tests/test_cases.py --update`).
"""

from __future__ import annotations

import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from graphs import BOOL, FLOAT, INT32, INT64, VARIANT, Builder, Dtype, Func, Shape  # noqa: E402
from tensorboard.compat.proto import types_pb2  # noqa: E402

CASES: dict = {}  # name -> (function, options)


def case(options: str = ""):
    def register(fn):
        CASES[fn.__name__] = (fn, options)
        return fn

    return register


def build(name: str) -> str:
    """The case's .pbtxt text."""
    fn, options = CASES[name]
    b = Builder(zlib.crc32(name.encode()), short_scalars=True)
    fn(b)
    lines = textwrap.wrap(" ".join(fn.__doc__.split()), 96)
    if options:
        lines.append(f"graph2py: {options}")
    return b.text("\n".join(lines))


# -- TF1 idioms -----------------------------------------------------------------------------------

NHWC = {"data_format": "NHWC"}
ONES = [1, 1, 1, 1]


def variable(b: Builder, name: str, *shape: int, positive: bool = False) -> str:
    """A frozen variable: the Const `name` and the Identity `name/read` layers read it by."""
    return b.op(f"{name}/read", "Identity", b.weight(name, *shape, positive=positive))


def conv(b, scope, x, cin, cout, k=3, stride=1, padding="SAME", act="Relu", dilation=1):
    """tf.layers.conv2d: `scope/kernel`, `scope/bias`, Conv2D, BiasAdd, the activation."""
    with b.scope(scope):
        kernel = variable(b, "kernel", k, k, cin, cout)
        bias = variable(b, "bias", cout)
        h = b.op(
            "Conv2D",
            "Conv2D",
            x,
            kernel,
            strides=[1, stride, stride, 1],
            padding=padding,
            dilations=[1, dilation, dilation, 1],
            use_cudnn_on_gpu=True,
            **NHWC,
        )
        h = b.op("BiasAdd", "BiasAdd", h, bias, **NHWC)
        return b.op(act, act, h) if act else h


def dense(b, scope, x, n_in, n_out, act=None, **act_attrs):
    """tf.layers.dense: `scope/kernel`, `scope/bias`, MatMul, BiasAdd, the activation."""
    with b.scope(scope):
        h = b.op("MatMul", "MatMul", x, variable(b, "kernel", n_in, n_out), transpose_a=False)
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", n_out), **NHWC)
        return b.op(act, act, h, **act_attrs) if act else h


def max_pool(b, name, x, k=2, stride=2, padding="VALID", op="MaxPool"):
    return b.op(name, op, x, ksize=[1, k, k, 1], strides=[1, stride, stride, 1], padding=padding)


def flatten(b, scope, x, size):
    """tf.layers.flatten: the batch size from Shape(x), packed with the flat size."""
    with b.scope(scope):
        shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
        batch = b.op(
            "strided_slice",
            "StridedSlice",
            shape,
            b.const("strided_slice/stack", np.array([0], np.int32)),
            b.const("strided_slice/stack_1", np.array([1], np.int32)),
            b.const("strided_slice/stack_2", np.array([1], np.int32)),
            T=INT32,
            Index=INT32,
            shrink_axis_mask=1,
        )
        target = b.op(
            "Reshape/shape",
            "Pack",
            batch,
            b.const("Reshape/shape/1", np.int32(size)),
            T=INT32,
            N=2,
            axis=0,
        )
        return b.op("Reshape", "Reshape", x, target, Tshape=INT32)


def fused_batch_norm(b, scope, x, channels, op="FusedBatchNormV3", fmt="NHWC", **attrs):
    """tf.layers.batch_normalization(fused=True) at inference."""
    with b.scope(scope):
        stats = [
            variable(b, "gamma", channels, positive=True),
            variable(b, "beta", channels),
            variable(b, "moving_mean", channels),
            variable(b, "moving_variance", channels, positive=True),
        ]
        extra = {"U": FLOAT} if op == "FusedBatchNormV3" else {}
        return b.op(
            op, op, x, *stats, epsilon=0.001, is_training=False, data_format=fmt, **extra, **attrs
        )


# -- cases ----------------------------------------------------------------------------------------


@case()
def sequential_lenet(b):
    """A TF1 LeNet written with tf.layers: conv2d + max_pooling2d twice, flatten (its batch size
    computed from Shape), dense + ReLU, dense, softmax. One chain: a keras.Sequential model of
    Conv2D(activation="relu"), MaxPooling2D, Flatten, Dense layers."""
    x = b.placeholder("input", [None, 12, 12, 1])
    h = conv(b, "conv2d", x, 1, 4, k=5)
    h = max_pool(b, "max_pooling2d/MaxPool", h)
    h = conv(b, "conv2d_1", h, 4, 6, k=3, padding="VALID")
    h = max_pool(b, "max_pooling2d_1/MaxPool", h)
    h = flatten(b, "flatten", h, 24)
    h = dense(b, "dense", h, 24, 10, act="Relu")
    h = dense(b, "dense_1", h, 10, 3)
    b.op("Softmax", "Softmax", h)


@case()
def functional_residual(b):
    """A residual block: conv + fused batch norm + ReLU on one side, a 1x1 projection conv on
    the other, AddV2 and ReLU, global average pooling as Mean over H and W, dense logits. Two
    branches: a functional model with an Add layer."""
    x = b.placeholder("images", [None, 8, 8, 3])
    h = conv(b, "res/conv_a", x, 3, 6, act=None)
    h = fused_batch_norm(b, "res/bn_a", h, 6)
    h = b.op("res/relu_a", "Relu", h)
    h = conv(b, "res/conv_b", h, 6, 6, act=None)
    s = conv(b, "res/shortcut", x, 3, 6, k=1, act=None)
    h = b.op("res/add", "AddV2", h, s)
    h = b.op("res/out", "Relu", h)
    axes = b.const("pool/Mean/reduction_indices", np.array([1, 2], np.int32))
    h = b.op("pool/Mean", "Mean", h, axes, Tidx=INT32, keep_dims=False)
    dense(b, "logits", h, 6, 4)


@case()
def conv_depthwise_separable(b):
    """MobileNet-style convolutions: a depthwise conv (depth multiplier 2) + BiasAdd + Relu6, a
    1x1 pointwise conv, a separable conv as tf.layers.separable_conv2d freezes it (depthwise
    then pointwise, one scope), a strided VALID conv and a dilated conv."""
    x = b.placeholder("input", [None, 9, 9, 3])
    with b.scope("dw"):
        k = variable(b, "depthwise_kernel", 3, 3, 3, 2)
        h = b.op("depthwise", "DepthwiseConv2dNative", x, k, strides=ONES, padding="SAME", **NHWC)
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 6), **NHWC)
        h = b.op("Relu6", "Relu6", h)
    h = conv(b, "pw", h, 6, 8, k=1, act="Relu6")
    with b.scope("separable_conv2d"):
        dk = variable(b, "depthwise_kernel", 3, 3, 8, 1)
        pk = variable(b, "pointwise_kernel", 1, 1, 8, 5)
        h = b.op(
            "separable_conv2d/depthwise",
            "DepthwiseConv2dNative",
            h,
            dk,
            strides=ONES,
            padding="SAME",
            **NHWC,
        )
        h = b.op("separable_conv2d", "Conv2D", h, pk, strides=ONES, padding="VALID", **NHWC)
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 5), **NHWC)
        h = b.op("Relu", "Relu", h)
    h = conv(b, "strided", h, 5, 4, k=3, stride=2, padding="VALID")
    conv(b, "dilated", h, 4, 3, k=2, dilation=2, act="Elu")


def conv_transpose_layer(b, scope, x, size, cin, cout, k, stride, padding, bias=True):
    """tf.layers.conv2d_transpose: the output shape packed from the input's batch size (Shape,
    StridedSlice) and constants, Conv2DBackpropInput (kernel H, W, out, in), BiasAdd."""
    with b.scope(scope):
        kernel = variable(b, "kernel", k, k, cout, cin)
        shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
        batch = b.op(
            "strided_slice",
            "StridedSlice",
            shape,
            b.const("strided_slice/stack", np.array([0], np.int32)),
            b.const("strided_slice/stack_1", np.array([1], np.int32)),
            b.const("strided_slice/stack_2", np.array([1], np.int32)),
            T=INT32,
            Index=INT32,
            shrink_axis_mask=1,
        )
        sizes = b.op(
            "stack",
            "Pack",
            batch,
            b.const("stack/1", np.int32(size)),
            b.const("stack/2", np.int32(size)),
            b.const("stack/3", np.int32(cout)),
            T=INT32,
            N=4,
            axis=0,
        )
        h = b.op(
            "conv2d_transpose",
            "Conv2DBackpropInput",
            sizes,
            kernel,
            x,
            strides=[1, stride, stride, 1],
            padding=padding,
            **NHWC,
        )
        return b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", cout), **NHWC) if bias else h


@case()
def conv_transpose(b):
    """tf.layers.conv2d_transpose twice: Conv2DBackpropInput whose output shape is packed from
    the input's batch size (Shape, StridedSlice) and constants, with BiasAdd + ReLU, stride 2
    SAME; then without bias, stride 1 VALID."""
    x = b.placeholder("input", [None, 4, 4, 3])
    h = conv_transpose_layer(b, "up", x, 8, 3, 5, k=3, stride=2, padding="SAME")
    h = b.op("up/Relu", "Relu", h)
    conv_transpose_layer(b, "up_1", h, 9, 5, 2, k=2, stride=1, padding="VALID", bias=False)


@case()
def norm_fused_batch_norm(b):
    """FusedBatchNorm forms: tf.layers.batch_normalization(fused=True) after a bias-free conv
    (FusedBatchNormV3: gamma, beta, moving mean and variance), and tf-slim's batch_norm with
    scale=False (FusedBatchNorm whose scale is a `Const` of ones: no gamma in Keras)."""
    x = b.placeholder("input", [None, 6, 6, 3])
    with b.scope("conv"):
        k = variable(b, "kernel", 3, 3, 3, 4)
        h = b.op("Conv2D", "Conv2D", x, k, strides=ONES, padding="SAME", **NHWC)
    h = fused_batch_norm(b, "batch_normalization", h, 4)
    h = b.op("Relu", "Relu", h)
    with b.scope("BatchNorm"):
        ones = b.const("Const", np.ones(4, np.float32))
        beta = variable(b, "beta", 4)
        mean = variable(b, "moving_mean", 4)
        var = variable(b, "moving_variance", 4, positive=True)
        b.op(
            "FusedBatchNorm",
            "FusedBatchNorm",
            h,
            ones,
            beta,
            mean,
            var,
            epsilon=1e-5,
            is_training=False,
            **NHWC,
        )


@case()
def norm_tf1_mul_add(b):
    """tf.layers.batch_normalization(fused=False) frozen: batchnorm/add (variance + epsilon),
    Rsqrt, mul (by gamma), mul_1 (x), mul_2 (moving mean), sub (from beta), add_1, after a
    dense layer (2-D) and after a conv (4-D); the second without gamma (scale=False)."""
    x = b.placeholder("input", [None, 5, 5, 2])
    h = conv(b, "conv", x, 2, 3, act=None)

    def batchnorm(scope, h, channels, scale=True):
        with b.scope(scope):
            gamma = variable(b, "gamma", channels, positive=True) if scale else None
            beta = variable(b, "beta", channels)
            mean = variable(b, "moving_mean", channels)
            var = variable(b, "moving_variance", channels, positive=True)
            with b.scope("batchnorm"):
                eps = b.const("add/y", np.float32(0.001))
                s = b.op("Rsqrt", "Rsqrt", b.op("add", "AddV2", var, eps))
                if gamma:
                    s = b.op("mul", "Mul", s, gamma)
                xs = b.op("mul_1", "Mul", h, s)
                ms = b.op("mul_2", "Mul", mean, s)
                shift = b.op("sub", "Sub", beta, ms)
                return b.op("add_1", "AddV2", xs, shift)

    h = batchnorm("batch_normalization", h, 3, scale=False)
    h = b.op("Relu", "Relu", h)
    h = flatten(b, "flatten", h, 75)
    h = dense(b, "dense", h, 75, 4)
    h = batchnorm("batch_normalization_1", h, 4)
    b.op("Sigmoid", "Sigmoid", h)


@case()
def norm_layer_norm(b):
    """Keras 3's LayerNormalization as TensorFlow freezes it, over the last axis of a sequence
    (moments: mean, squared difference, variance; then epsilon, Rsqrt, gamma, Neg of the mean,
    beta) between two BatchMatMulV2 projections (Dense layers on 3-D input)."""
    x = b.placeholder("tokens", [None, 5, 6])
    with b.scope("proj"):
        h = b.op("MatMul", "BatchMatMulV2", x, variable(b, "kernel", 6, 8))
        h = b.op("BiasAdd", "AddV2", h, variable(b, "bias", 8))
    with b.scope("layer_normalization"):
        gamma = b.weight("gamma", 8, positive=True)
        beta = b.weight("beta", 8)
        axis = b.const("moments/mean/reduction_indices", np.array([-1], np.int32))
        mean = b.op("moments/mean", "Mean", h, axis, Tidx=INT32, keep_dims=True)
        sq = b.op("moments/SquaredDifference", "SquaredDifference", h, mean)
        axis2 = b.const("moments/variance/reduction_indices", np.array([-1], np.int32))
        var = b.op("moments/variance", "Mean", sq, axis2, Tidx=INT32, keep_dims=True)
        add = b.op("batchnorm/add", "AddV2", var, b.const("batchnorm/add/y", np.float32(1e-6)))
        rs = b.op("batchnorm/Rsqrt", "Rsqrt", add)
        s = b.op("batchnorm/mul", "Mul", rs, gamma)
        xs = b.op("batchnorm/mul_1", "Mul", h, s)
        neg = b.op("batchnorm/Neg", "Neg", mean)
        ms = b.op("batchnorm/mul_2", "Mul", neg, s)
        shift = b.op("batchnorm/add_1", "AddV2", ms, beta)
        h = b.op("batchnorm/add_2", "AddV2", xs, shift)
    with b.scope("out"):
        b.op("MatMul", "BatchMatMulV2", h, variable(b, "kernel", 8, 3))


@case()
def activation_simple(b):
    """Activations fused into the dense layer before them (Relu6, Elu, Selu, Sigmoid, Tanh,
    Softplus, Softsign) and standalone after a merge (LeakyRelu with alpha 0.2, Relu,
    Softmax)."""
    x = b.placeholder("x", [None, 4])
    acts = ["Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "Softsign"]
    h = x
    for i, act in enumerate(acts):
        h = dense(b, f"dense_{i}" if i else "dense", h, 4, 4, act=act)
    h = b.op("add", "AddV2", h, x)
    h = b.op("LeakyRelu", "LeakyRelu", h, alpha=0.2)
    h = b.op("Relu", "Relu", dense(b, "dense_7", h, 4, 3))
    b.op("Softmax", "Softmax", h)


@case()
def activation_composite(b):
    """Activations written as several ops: swish (x * sigmoid(x)), GELU through Erf
    (0.5 * x * (1 + erf(x / sqrt 2))), hard swish (x * relu6(x + 3) / 6), each after a dense
    layer."""
    x = b.placeholder("x", [None, 6])
    h = dense(b, "dense", x, 6, 6)
    with b.scope("swish"):
        h = b.op("mul", "Mul", h, b.op("Sigmoid", "Sigmoid", h))
    h = dense(b, "dense_1", h, 6, 5)
    with b.scope("gelu"):
        half = b.op("mul", "Mul", h, b.const("mul/y", np.float32(0.5)))
        inner = b.op("truediv", "RealDiv", h, b.const("Cast/x", np.float32(np.sqrt(2.0))))
        erf = b.op("Erf", "Erf", inner)
        one = b.op("add", "AddV2", erf, b.const("add/x", np.float32(1.0)))
        h = b.op("mul_1", "Mul", half, one)
    h = dense(b, "dense_2", h, 5, 4)
    with b.scope("hard_swish"):
        a = b.op("add", "AddV2", h, b.const("add/y", np.float32(3.0)))
        r = b.op("Relu6", "Relu6", a)
        d = b.op("truediv", "RealDiv", r, b.const("truediv/y", np.float32(6.0)))
        b.op("mul", "Mul", h, d)


@case()
def attention_einsum(b):
    """Self-attention as Keras 3 MultiHeadAttention freezes with Einsum ops: query, key and
    value EinsumDense ("abc,cde->abde" with a bias over the heads and their size), scores
    as an Einsum of two computed tensors (keras.ops.einsum), a scale, Softmax, the weighted sum
    (another keras.ops.einsum) and the output EinsumDense ("abcd,cde->abe")."""
    x = b.placeholder("query", [None, 4, 6])
    heads, size = 2, 3

    def project(name, h):
        with b.scope(f"mha/{name}"):
            k = b.weight("kernel", 6, heads, size)
            h = b.op("einsum/Einsum", "Einsum", h, k, equation="abc,cde->abde", N=2)
            return b.op("add", "AddV2", h, b.weight("bias", heads, size))

    q, k, v = (project(n, x) for n in ("query", "key", "value"))
    with b.scope("mha"):
        q = b.op("Mul", "Mul", q, b.const("Mul/y", np.float32(1 / np.sqrt(size))))
        scores = b.op("einsum/Einsum", "Einsum", k, q, equation="aecd,abcd->acbe", N=2)
        probs = b.op("softmax/Softmax", "Softmax", scores)
        h = b.op("einsum_1/Einsum", "Einsum", probs, v, equation="acbe,aecd->abcd", N=2)
    with b.scope("mha/attention_output"):
        k = b.weight("kernel", heads, size, 6)
        h = b.op("einsum/Einsum", "Einsum", h, k, equation="abcd,cde->abe", N=2)
        b.op("add", "AddV2", h, b.weight("bias", 6))


@case()
def attention_batch_matmul(b):
    """The EinsumDense forms TensorFlow lowers Einsum to: x @ W (BatchMatMulV2) then a Reshape
    splitting the last axis into heads ("abc,cde->abde"), and a Reshape merging heads then
    x @ W ("abcd,cde->abe"), with a Transpose (Permute) between them."""
    x = b.placeholder("x", [None, 3, 4])
    with b.scope("query"):
        h = b.op("MatMul", "BatchMatMulV2", x, b.weight("kernel", 4, 6))
        h = b.op(
            "Reshape", "Reshape", h, b.const("Reshape/shape", np.array([-1, 3, 2, 3], np.int32))
        )
    h = b.op(
        "transpose", "Transpose", h, b.const("transpose/perm", np.array([0, 2, 1, 3], np.int32))
    )
    h = b.op(
        "transpose_1", "Transpose", h, b.const("transpose_1/perm", np.array([0, 2, 1, 3], np.int32))
    )
    with b.scope("output"):
        h = b.op("Reshape", "Reshape", h, b.const("Reshape/shape", np.array([-1, 3, 6], np.int32)))
        b.op("MatMul", "BatchMatMulV2", h, b.weight("kernel", 6, 5))


@case()
def embedding_keras3(b):
    """Keras 3's Embedding as TensorFlow freezes it (ids below zero wrapped by the table size:
    Less, AddV2, SelectV2, then GatherV2) on int32 token ids, global average pooling over the
    steps (Mean over axis 1) and a dense layer."""
    ids = b.placeholder("tokens", [None, 5], dtype=INT32)
    with b.scope("embedding"):
        table = b.weight("embeddings", 10, 4)
        less = b.op("Less", "Less", ids, b.const("Less/y", np.int32(0)), T=INT32)
        add = b.op("add", "AddV2", ids, b.const("add/y", np.int32(10)), T=INT32)
        sel = b.op("SelectV2", "SelectV2", less, add, ids, T=INT32)
        h = b.op(
            "GatherV2",
            "GatherV2",
            table,
            sel,
            b.const("GatherV2/axis", np.int32(0)),
            Tparams=FLOAT,
            Tindices=INT32,
            Taxis=INT32,
            batch_dims=0,
        )
    axis = b.const("pool/Mean/reduction_indices", np.array([1], np.int32))
    h = b.op("pool/Mean", "Mean", h, axis, Tidx=INT32, keep_dims=False)
    dense(b, "dense", h, 4, 2)


@case()
def embedding_gather(b):
    """tf.nn.embedding_lookup as Keras 2 freezes it: int64 ids cast to int32, GatherV2 of the
    frozen table (through its /read Identity), flattened, then a dense layer with sigmoid."""
    ids = b.placeholder("ids", [None, 3], dtype=INT64)
    with b.scope("embedding"):
        table = variable(b, "embeddings", 12, 5)
        cast = b.op("Cast", "Cast", ids, SrcT=INT64, DstT=INT32, Truncate=False, T=None)
        h = b.op(
            "embedding_lookup",
            "GatherV2",
            table,
            cast,
            b.const("embedding_lookup/axis", np.int32(0)),
            Tparams=FLOAT,
            Tindices=INT32,
            Taxis=INT32,
            batch_dims=0,
        )
    h = b.op(
        "flatten/Reshape", "Reshape", h, b.const("flatten/Const", np.array([-1, 15], np.int32))
    )
    dense(b, "dense", h, 15, 1, act="Sigmoid")


@case()
def merge_two_inputs(b):
    """Two model inputs merged by Keras merge layers: Add, Subtract, Multiply, Maximum,
    Minimum, Concatenate (ConcatV2 on the last axis) and Add of three (AddN)."""
    a = b.placeholder("a", [None, 3])
    c = b.placeholder("b", [None, 3])
    s = b.op("add", "AddV2", a, c)
    d = b.op("sub", "Sub", a, c)
    m = b.op("mul", "Mul", s, d)
    hi = b.op("Maximum", "Maximum", m, a)
    lo = b.op("Minimum", "Minimum", m, c)
    n = b.op("AddN", "AddN", hi, lo, s, N=3)
    axis = b.const("concat/axis", np.int32(-1))
    b.op("concat", "ConcatV2", n, d, axis, N=2, Tidx=INT32)


@case()
def pool_layers(b):
    """Pooling: MaxPool 2x2 stride 2 SAME, AvgPool 3x3 stride 1 VALID, and global max pooling
    as Max over H and W with keep_dims (GlobalMaxPooling2D(keepdims=True))."""
    x = b.placeholder("input", [None, 9, 9, 2])
    h = max_pool(b, "max_pool/MaxPool", x, padding="SAME")
    h = max_pool(b, "avg_pool/AvgPool", h, k=3, stride=1, op="AvgPool")
    axes = b.const("global/Max/reduction_indices", np.array([1, 2], np.int32))
    b.op("global/Max", "Max", h, axes, Tidx=INT32, keep_dims=True)


@case()
def reshape_layers(b):
    """Layout layers: Pad (ZeroPadding2D), a StridedSlice crop of H and W (Cropping2D),
    Transpose with the batch first (Permute), Reshape with -1 (Reshape), ExpandDims and
    Squeeze (Reshape)."""
    x = b.placeholder("input", [None, 4, 4, 2])
    pads = b.const("Pad/paddings", np.array([[0, 0], [1, 1], [2, 2], [0, 0]], np.int32))
    h = b.op("Pad", "Pad", x, pads, Tpaddings=INT32)
    h = b.op(
        "crop",
        "StridedSlice",
        h,
        b.const("crop/stack", np.array([0, 1, 0, 0], np.int32)),
        b.const("crop/stack_1", np.array([0, 5, 7, 0], np.int32)),
        b.const("crop/stack_2", np.array([1, 1, 1, 1], np.int32)),
        T=FLOAT,
        Index=INT32,
        begin_mask=9,
        end_mask=9,
    )
    h = b.op(
        "transpose", "Transpose", h, b.const("transpose/perm", np.array([0, 3, 1, 2], np.int32))
    )
    h = b.op("Reshape", "Reshape", h, b.const("Reshape/shape", np.array([-1, 4, 14], np.int32)))
    h = b.op("ExpandDims", "ExpandDims", h, b.const("ExpandDims/dim", np.int32(1)), Tdim=INT32)
    b.op("Squeeze", "Squeeze", h, squeeze_dims=[1])


@case()
def scale_rescaling(b):
    """Scale and shift by constants: (x - 127.5) / 127.5 as two Rescaling layers, x * a + b in
    one scope as one Rescaling(scale, offset), and a per-channel Mul by a vector (LayerScale:
    the ChannelScale helper layer)."""
    x = b.placeholder("pixels", [None, 4, 4, 3])
    with b.scope("preprocess"):
        h = b.op("sub", "Sub", x, b.const("sub/y", np.float32(127.5)))
        h = b.op("truediv", "RealDiv", h, b.const("truediv/y", np.float32(127.5)))
    h = conv(b, "conv", h, 3, 4)
    with b.scope("rescale"):
        h = b.op("mul", "Mul", h, b.const("mul/y", np.float32(0.25)))
        h = b.op("add", "AddV2", h, b.const("add/y", np.float32(-1.0)))
    with b.scope("layer_scale"):
        b.op("mul", "Mul", h, b.weight("gamma", 4))


@case()
def ops_unary(b):
    """Elementwise ops with no Keras layer, written as keras.ops calls: Exp, Log, Sqrt, Abs,
    Neg, Floor, Ceil, Round, Square, Rsqrt, Reciprocal, Sin, Cos, Sign, Log1p."""
    x = b.placeholder("x", [None, 5])
    h = b.op("Abs", "Abs", x)
    h = b.op("Log1p", "Log1p", h)
    h = b.op("Sqrt", "Sqrt", h)
    h = b.op("Exp", "Exp", h)
    h = b.op("Log", "Log", h)
    h = b.op("Neg", "Neg", h)
    h = b.op("Floor", "Floor", h)
    f = b.op("Ceil", "Ceil", x)
    r = b.op("Round", "Round", x)
    s = b.op("Square", "Square", b.op("Sin", "Sin", x))
    c = b.op("Cos", "Cos", x)
    q = b.op("Rsqrt", "Rsqrt", b.op("Reciprocal", "Reciprocal", s))
    g = b.op("Sign", "Sign", c)
    b.op("AddN", "AddN", h, f, r, q, g, N=5)


@case()
def ops_binary(b):
    """Binary ops with no Keras layer, between computed tensors or with small constants
    written inline: Pow, SquaredDifference, FloorMod, FloorDiv, RealDiv, Greater and Cast
    of its result, Maximum with a constant vector, DivNoNan."""
    x = b.placeholder("x", [None, 4])
    y = b.placeholder("y", [None, 4])
    p = b.op("Pow", "Pow", x, b.const("Pow/y", np.array([1.0, 2.0, 3.0, 2.0], np.float32)))
    d = b.op("SquaredDifference", "SquaredDifference", x, y)
    m = b.op("FloorMod", "FloorMod", p, b.const("FloorMod/y", np.float32(3.0)))
    fd = b.op("FloorDiv", "FloorDiv", d, y)
    q = b.op("truediv", "RealDiv", m, y)
    g = b.op("Greater", "Greater", x, y)
    gf = b.op("Cast", "Cast", g, SrcT=BOOL, DstT=FLOAT, Truncate=False, T=None)
    lo = b.op(
        "Maximum", "Maximum", q, b.const("Maximum/y", np.array([0.0, -1.0, 0.5, 2.0], np.float32))
    )
    n = b.op("DivNoNan", "DivNoNan", fd, x)
    b.op("output", "AddN", lo, gf, n, N=3)


@case()
def ops_reductions(b):
    """Reductions that are no pooling layer, as keras.ops calls: Sum over the last axis, Prod
    with keep_dims, Max and Min over axis 1 of a 3-D tensor, Mean over two trailing axes,
    ArgMax (int64), the results concatenated."""
    x = b.placeholder("x", [None, 3, 4])
    last = b.const("axis_last", np.array([-1], np.int32))
    s = b.op("Sum", "Sum", x, last, Tidx=INT32, keep_dims=False)
    p = b.op("Prod", "Prod", x, last, Tidx=INT32, keep_dims=True)
    p = b.op("Squeeze", "Squeeze", p, squeeze_dims=[-1])
    one = b.const("axis_one", np.int32(1))
    mx = b.op("Max", "Max", x, one, Tidx=INT32, keep_dims=False)
    mn = b.op("Min", "Min", x, one, Tidx=INT32, keep_dims=False)
    dim = b.const("ArgMax/dimension", np.int32(-1))
    arg = b.op("ArgMax", "ArgMax", x, dim, Tidx=INT32, output_type=INT64)
    argf = b.op("Cast", "Cast", arg, SrcT=INT64, DstT=FLOAT, Truncate=False, T=None)
    both = b.const("axes_both", np.array([1, 2], np.int32))
    mean = b.op("Mean", "Mean", x, both, Tidx=INT32, keep_dims=True)
    mean = b.op("Reshape", "Reshape", mean, b.const("Reshape/shape", np.array([-1, 1], np.int32)))
    axis = b.const("concat/axis", np.int32(1))
    b.op("concat", "ConcatV2", s, p, mx, mn, argf, mean, axis, N=6, Tidx=INT32)


@case()
def ops_split_many(b):
    """A Split into 64 parts of which two are read, and an Unpack into 40 columns of which
    one is: more outputs than emit.UNPACK_AT_MOST, so each result is one name indexed where a part
    is read (`split[3]`), not an unpacking of every part."""
    x = b.placeholder("x", [None, 64])
    parts = b.op("split", "Split", b.const("split/split_dim", np.int32(1)), x, num_split=64)
    y = b.placeholder("y", [None, 40])
    rows = b.op("unstack", "Unpack", y, num=40, axis=1, T=FLOAT)
    b.op("add", "AddV2", f"{parts}:3", f"{parts}:17", T=FLOAT)
    b.op("mul", "Mul", f"{rows}:39", b.const("mul/y", np.float32(2.0)), T=FLOAT)


@case()
def ops_slicing(b):
    """Indexing ops as keras.ops: StridedSlice with shrink, new-axis and ellipsis masks and a
    negative stride (x[...] indexing), Slice, GatherV2 of a computed tensor with constant
    indices, Split and SplitV, Unpack and Pack, Tile, ReverseV2, and a Cast to int32 and back.
    Shape inference has no rule for Slice, Split, Tile or ReverseV2: the reshapes after them
    stay keras.ops.reshape instead of Flatten layers."""
    x = b.placeholder("x", [None, 6, 4])
    s1 = b.op(
        "strided_slice",
        "StridedSlice",
        x,
        b.const("strided_slice/stack", np.array([0, 5, 0], np.int32)),
        b.const("strided_slice/stack_1", np.array([0, 0, 3], np.int32)),
        b.const("strided_slice/stack_2", np.array([1, -2, 1], np.int32)),
        T=FLOAT,
        Index=INT32,
        begin_mask=1,
        end_mask=3,
    )  # x[:, 5::-2, 0:3]
    s2 = b.op(
        "strided_slice_1",
        "StridedSlice",
        x,
        b.const("strided_slice_1/stack", np.array([0, 0, 1], np.int32)),
        b.const("strided_slice_1/stack_1", np.array([0, 0, 2], np.int32)),
        b.const("strided_slice_1/stack_2", np.array([1, 1, 1], np.int32)),
        T=FLOAT,
        Index=INT32,
        ellipsis_mask=1,
        new_axis_mask=2,
    )  # x[..., None, 1:2]
    sl = b.op(
        "Slice",
        "Slice",
        x,
        b.const("Slice/begin", np.array([0, 1, 1], np.int32)),
        b.const("Slice/size", np.array([-1, 3, 3], np.int32)),
        Index=INT32,
    )
    g = b.op(
        "GatherV2",
        "GatherV2",
        sl,
        b.const("GatherV2/indices", np.array([2, 0], np.int32)),
        b.const("GatherV2/axis", np.int32(2)),
        Tparams=FLOAT,
        Tindices=INT32,
        Taxis=INT32,
        batch_dims=0,
    )
    parts = b.op("split", "Split", b.const("split/split_dim", np.int32(1)), x, num_split=2)
    v = b.op(
        "SplitV",
        "SplitV",
        x,
        b.const("SplitV/size_splits", np.array([1, 3], np.int32)),
        b.const("SplitV/split_dim", np.int32(2)),
        num_split=2,
        Tlen=INT32,
    )
    u = b.op("unstack", "Unpack", f"{v}:1", num=6, axis=1)
    p = b.op("stack", "Pack", f"{u}:5", f"{u}:0", T=FLOAT, N=2, axis=1)
    t = b.op(
        "Tile",
        "Tile",
        p,
        b.const("Tile/multiples", np.array([1, 1, 2], np.int32)),
        Tmultiples=INT32,
    )
    r = b.op(
        "ReverseV2", "ReverseV2", t, b.const("ReverseV2/axis", np.array([2], np.int32)), Tidx=INT32
    )
    i = b.op("Cast", "Cast", r, SrcT=FLOAT, DstT=INT32, Truncate=False, T=None)
    r = b.op("Cast_1", "Cast", i, SrcT=INT32, DstT=FLOAT, Truncate=False, T=None)
    flat = [
        b.op(
            f"flatten_{k}", "Reshape", t, b.const(f"flatten_{k}/shape", np.array([-1, n], np.int32))
        )
        for k, (t, n) in enumerate([(s1, 9), (s2, 6), (g, 6), (f"{parts}:0", 12), (r, 12)])
    ]
    b.op("concat", "ConcatV2", *flat, b.const("concat/axis", np.int32(1)), N=5, Tidx=INT32)


@case()
def tfonly_ops(b):
    """Ops with neither a Keras layer nor a keras.ops form, as generated TensorFlow-only layers
    calling tf.raw_ops: Zeta (two inputs, one a constant written inline), Lgamma, and
    ExtractImagePatches (attributes ksizes, strides, rates, padding as constructor arguments)."""
    x = b.placeholder("x", [None, 4, 4, 1])
    h = b.op("Softplus", "Softplus", x)
    z = b.op(
        "Zeta",
        "Zeta",
        b.op("add", "AddV2", h, b.const("add/y", np.float32(1.5))),
        b.const("Zeta/q", np.float32(2.0)),
    )
    lg = b.op("Lgamma", "Lgamma", z)
    b.op(
        "ExtractImagePatches",
        "ExtractImagePatches",
        lg,
        ksizes=[1, 2, 2, 1],
        strides=[1, 2, 2, 1],
        rates=[1, 1, 1, 1],
        padding="VALID",
    )


@case("--inputs wav,x --outputs Mfcc,Dequantize,fill")
def tfonly_specs(b):
    """TensorFlow-only layers state the shapes and dtypes graph2py inferred, so Keras builds
    them without tracing the op: DecodeWav of a string (audio (800, 1) float32 and a scalar
    int32 sample rate), AudioSpectrogram and Mfcc after it, QuantizeV2 whose quint8 output
    leaves as uint8 and Dequantize bitcasting it back; a Fill to another tensor's shape is
    keras.ops.full_like (branch wild-tfonly, issue 9)."""
    wav = b.placeholder("wav", [None], dtype=Dtype(types_pb2.DT_STRING))
    first = b.op(
        "first",
        "StridedSlice",
        wav,
        b.const("first/begin", np.int32([0])),
        b.const("first/end", np.int32([1])),
        b.const("first/strides", np.int32([1])),
        T=Dtype(types_pb2.DT_STRING),
        Index=INT32,
        shrink_axis_mask=1,
    )
    audio = b.node("DecodeWav", "DecodeWav", [first], desired_channels=1, desired_samples=800)
    spectrogram = b.node(
        "AudioSpectrogram", "AudioSpectrogram", [audio], window_size=256, stride=128
    )
    b.node("Mfcc", "Mfcc", [spectrogram, "DecodeWav:1"], dct_coefficient_count=12)
    x = b.placeholder("x", [None, 5])
    low, high = b.const("low", np.float32(-2.0)), b.const("high", np.float32(2.0))
    quantized = b.node("QuantizeV2", "QuantizeV2", [x, low, high], T=Dtype(types_pb2.DT_QUINT8))
    b.node(
        "Dequantize",
        "Dequantize",
        [quantized, "QuantizeV2:1", "QuantizeV2:2"],
        T=Dtype(types_pb2.DT_QUINT8),
    )
    shape = b.op("shape", "Shape", x, T=FLOAT, out_type=INT32)
    b.op(
        "fill",
        "Fill",
        shape,
        b.op("peak", "Max", x, b.const("axes", np.int32([0, 1])), Tidx=INT32),
        index_type=INT32,
    )


def _nchw_net(b):
    x = b.placeholder("input", [None, 3, 6, 6])
    nchw = {"data_format": "NCHW"}
    with b.scope("conv1"):
        h = b.op(
            "Conv2D",
            "Conv2D",
            x,
            variable(b, "kernel", 3, 3, 3, 4),
            strides=ONES,
            padding="SAME",
            **nchw,
        )
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 4), **nchw)
    h = fused_batch_norm(b, "bn1", h, 4, fmt="NCHW")
    h = b.op("relu1", "Relu", h)
    h = b.op(
        "pool1/MaxPool",
        "MaxPool",
        h,
        ksize=[1, 1, 2, 2],
        strides=[1, 1, 2, 2],
        padding="VALID",
        **nchw,
    )
    with b.scope("conv2"):
        h = b.op(
            "Conv2D",
            "Conv2D",
            h,
            variable(b, "kernel", 1, 1, 4, 2),
            strides=ONES,
            padding="VALID",
            **nchw,
        )
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 2), **nchw)
    return b.op("conv2/Relu", "Relu", h)


@case("--io-layout nhwc")
def layout_nchw_io_nhwc(b):
    """An NCHW graph (Conv2D, BiasAdd, FusedBatchNormV3, MaxPool with data_format NCHW, the
    usual GPU layout) converted with --io-layout nhwc: the model computes and takes its input
    and gives its outputs in NHWC, with no Permute. A flatten + dense head reads the NCHW
    order, so the dense kernel's rows are permuted in the loader."""
    h = _nchw_net(b)
    h = b.op("flatten", "Reshape", h, b.const("flatten/shape", np.array([-1, 18], np.int32)))
    dense(b, "fc", h, 18, 3)
    b.op("features", "Identity", "conv2/Relu")


@case()
def layout_nchw_keep(b):
    """The NCHW network of layout_nchw_io_nhwc without options: it computes in NHWC, its NCHW
    input is permuted on the way in (Permute) and its NCHW output on the way out."""
    _nchw_net(b)


@case()
def fold_constants(b):
    """Constant folding: a dense kernel stored transposed ([out, in], Transpose in the graph), a
    bias computed as the sum of two constants, a conv kernel reshaped from a flat vector, a
    scale from Sqrt of a constant, a Reshape target packed from Shape(x)[0] and a computed
    size (Prod of a StridedSlice of the shape); weights in short form (float_val) and as
    tensor_content. The loader spells out each transform."""
    x = b.placeholder("input", [None, 4, 4, 2])
    with b.scope("conv"):
        flat = b.const("kernel_flat", b.rng.normal(0, 0.5, 2 * 2 * 2 * 3).astype(np.float32))
        k = b.op(
            "kernel", "Reshape", flat, b.const("kernel/shape", np.array([2, 2, 2, 3], np.int32))
        )
        h = b.op("Conv2D", "Conv2D", x, k, strides=ONES, padding="VALID", **NHWC)
        b1 = b.const("bias_a", b.rng.normal(0, 0.5, 3).astype(np.float32), short=True)
        b2 = b.const("bias_b", np.float32(0.25))
        h = b.op("BiasAdd", "BiasAdd", h, b.op("bias", "AddV2", b1, b2), **NHWC)
    with b.scope("scale"):
        s = b.op("Sqrt", "Sqrt", b.const("four", np.float32(4.0)))
        h = b.op("mul", "Mul", h, s)
    with b.scope("flatten"):
        shape = b.op("Shape", "Shape", h, T=FLOAT, out_type=INT32)
        batch = b.op(
            "strided_slice",
            "StridedSlice",
            shape,
            b.const("strided_slice/stack", np.array([0], np.int32)),
            b.const("strided_slice/stack_1", np.array([1], np.int32)),
            b.const("strided_slice/stack_2", np.array([1], np.int32)),
            T=INT32,
            Index=INT32,
            shrink_axis_mask=1,
        )
        dims = b.op(
            "strided_slice_1",
            "StridedSlice",
            shape,
            b.const("strided_slice_1/stack", np.array([1], np.int32)),
            b.const("strided_slice_1/stack_1", np.array([0], np.int32)),
            b.const("strided_slice_1/stack_2", np.array([1], np.int32)),
            T=INT32,
            Index=INT32,
            end_mask=1,
        )
        size = b.op(
            "Prod",
            "Prod",
            dims,
            b.const("Const", np.array([0], np.int32)),
            T=INT32,
            Tidx=INT32,
            keep_dims=False,
        )
        target = b.op("Reshape/shape", "Pack", batch, size, T=INT32, N=2, axis=0)
        h = b.op("Reshape", "Reshape", h, target, Tshape=INT32)
    with b.scope("dense"):
        stored = b.weight("kernel_t", 5, 27)
        kernel = b.op(
            "transpose", "Transpose", stored, b.const("transpose/perm", np.array([1, 0], np.int32))
        )
        b.op("MatMul", "MatMul", h, kernel)


@case()
def placeholder_with_default(b):
    """PlaceholderWithDefault: `keep_prob` (default 1.0, shape []) is a setting, folded to its
    default (the dropout scale becomes a constant); `input` (a default example of unknown
    batch size) stays a model input."""
    example = b.const("example", b.rng.normal(0, 1, (2, 4)).astype(np.float32))
    x = b.node("input", "PlaceholderWithDefault", [example], dtype=FLOAT, shape=Shape((None, 4)))
    keep = b.node(
        "keep_prob",
        "PlaceholderWithDefault",
        [b.const("keep_prob/input", np.float32(1.0))],
        dtype=FLOAT,
        shape=Shape(()),
    )
    h = dense(b, "dense", x, 4, 3, act="Relu")
    with b.scope("dropout"):
        h = b.op("truediv", "RealDiv", h, keep)
    dense(b, "out", h, 3, 2)


@case()
def cond_switch_merge_static(b):
    """TF1 tf.cond on `is_training` (a PlaceholderWithDefault, default False) as tf.layers.dropout
    writes it: Switch on the predicate, dropout in the true branch, Identity in the false one,
    Merge. The predicate folds, the false branch is kept and the Switch/Merge disappear."""
    x = b.placeholder("input", [None, 5])
    pred = b.node(
        "is_training",
        "PlaceholderWithDefault",
        [b.const("is_training/input", np.bool_(False))],
        dtype=BOOL,
        shape=Shape(()),
    )
    h = dense(b, "dense", x, 5, 4, act="Relu")
    with b.scope("dropout/cond"):
        sw = b.op("Switch", "Switch", pred, pred, T=BOOL)
        t = b.op("switch_t", "Identity", f"{sw}:1", T=BOOL)
        b.op("switch_f", "Identity", sw, T=BOOL)
        pred_id = b.op("pred_id", "Identity", pred, T=BOOL)
        xs = b.op("dropout/Shape/Switch", "Switch", h, pred_id)
        rate = b.const("dropout/rate", np.float32(0.5), after=t)
        scaled = b.op(
            "dropout/truediv",
            "RealDiv",
            f"{xs}:1",
            b.const("dropout/sub", np.float32(0.5), after=t),
        )
        rand = b.op(
            "dropout/random_uniform/RandomUniform",
            "RandomUniform",
            b.op("dropout/Shape", "Shape", f"{xs}:1", T=FLOAT, out_type=INT32),
            dtype=FLOAT,
            seed=0,
            seed2=0,
            T=INT32,
        )
        keep = b.op("dropout/GreaterEqual", "GreaterEqual", rand, rate)
        keepf = b.op("dropout/Cast", "Cast", keep, SrcT=BOOL, DstT=FLOAT, Truncate=False, T=None)
        drop = b.op("dropout/mul", "Mul", scaled, keepf)
        ident = b.op("Identity/Switch", "Switch", h, pred_id)
        ident = b.op("Identity", "Identity", ident)
        b.op("Merge", "Merge", drop, ident, N=2)
    dense(b, "logits", "dropout/cond/Merge", 4, 2)


@case()
def cond_if_static(b):
    """A functional If (TF2 control flow) on a constant condition (a use_bias-like flag):
    the then branch is called (its function inlined under the If's name: AddV2 and Relu), the
    else branch and the If are gone."""
    x = b.placeholder("x", [None, 3])
    h = dense(b, "dense", x, 3, 3)
    then = b.function("cond_true_10", {"h": FLOAT, "bias": FLOAT}, {"identity": FLOAT})
    add = then.op("add", "AddV2", "h", "bias")
    then.op("Relu", "Relu", f"{add}:z:0")
    then.op("Identity", "Identity", "Relu:activations:0")
    then.ret["identity"] = "Identity:output:0"
    other = b.function("cond_false_11", {"h": FLOAT, "bias": FLOAT}, {"identity": FLOAT})
    other.op("Identity", "Identity", "h")
    other.ret["identity"] = "Identity:output:0"
    flag = b.const("use_shift", np.bool_(True))
    shift = b.weight("shift", 3)
    b.node(
        "cond",
        "StatelessIf",
        [flag, h, shift],
        Tcond=BOOL,
        Tin=[FLOAT, FLOAT],
        Tout=[FLOAT],
        then_branch=Func("cond_true_10"),
        else_branch=Func("cond_false_11"),
        output_shapes=[],
    )
    b.op("Identity", "Identity", "cond")


@case()
def cond_data_dependent(b):
    """A TF1 tf.cond whose predicate is computed from the data (sum of x > 0): Switch/Merge
    frames that cannot fold become SelectV2(pred, then, else), written keras.ops.where; both
    branches are computed."""
    x = b.placeholder("x", [None, 4])
    axes = b.const("Sum/reduction_indices", np.array([0, 1], np.int32))
    total = b.op("Sum", "Sum", x, axes, Tidx=INT32, keep_dims=False)
    pred = b.op("Greater", "Greater", total, b.const("Greater/y", np.float32(0.0)))
    with b.scope("cond"):
        sw = b.op("Switch", "Switch", pred, pred, T=BOOL)
        pivot = b.op("switch_t", "Identity", f"{sw}:1", T=BOOL)
        b.op("switch_f", "Identity", sw, T=BOOL)
        pred_id = b.op("pred_id", "Identity", pred, T=BOOL)
        xs = b.op("mul/Switch", "Switch", x, pred_id)
        t = b.op("mul", "Mul", f"{xs}:1", b.const("mul/y", np.float32(2.0), after=pivot))
        ns = b.op("Neg/Switch", "Switch", x, pred_id)
        f = b.op("Neg", "Neg", ns)
        b.op("Merge", "Merge", f, t, N=2)
    dense(b, "dense", "cond/Merge", 4, 2)


@case()
def function_call_inlined(b):
    """A TF2 graph calling a function of its library (StatefulPartitionedCall, as a Keras
    layer frozen without inlining writes it): the body (Conv2D, BiasAdd, Relu, with TF2's
    `node:output_arg:index` references) is spliced in under the call's name and converts as
    one Conv2D layer; Identity names the output."""
    x = b.placeholder("input_1", [None, 5, 5, 2])
    fn = b.function(
        "__inference_conv_block_42",
        {"inputs": FLOAT, "conv2d_kernel": FLOAT, "conv2d_bias": FLOAT},
        {"identity": FLOAT},
    )
    c = fn.op(
        "conv2d/Conv2D", "Conv2D", "inputs", "conv2d_kernel", strides=ONES, padding="SAME", **NHWC
    )
    a = fn.op("conv2d/BiasAdd", "BiasAdd", f"{c}:output:0", "conv2d_bias", **NHWC)
    r = fn.op("conv2d/Relu", "Relu", f"{a}:output:0")
    fn.op("Identity", "Identity", f"{r}:activations:0")
    fn.ret["identity"] = "Identity:output:0"
    kernel = b.weight("model/conv2d/kernel", 3, 3, 2, 4)
    bias = b.weight("model/conv2d/bias", 4)
    call = b.node(
        "model/conv_block/StatefulPartitionedCall",
        "StatefulPartitionedCall",
        [x, kernel, bias],
        Tin=[FLOAT, FLOAT, FLOAT],
        Tout=[FLOAT],
        f=Func("__inference_conv_block_42"),
        config="",
        config_proto="",
        executor_type="",
    )
    axes = b.const("model/pool/Mean/reduction_indices", np.array([1, 2], np.int32))
    h = b.op("model/pool/Mean", "Mean", call, axes, Tidx=INT32, keep_dims=False)
    b.op("Identity", "Identity", h)


@case("--outputs model/probabilities/Softmax:0,model/norm/Square:0,model/norm/Sum:0")
def ops_nested_custom_layer(b):
    """A TF2 Keras model with a custom layer doing keras.ops math in call(), frozen with the
    layer's call (a StatefulPartitionedCall of the library) not inlined, the body calling a
    tf.function in turn (a PartitionedCall): the bodies are spliced in, their call scopes name
    no variable, and keras.ops results read once are written inside their reader:
    `log1p(x[:, :18]) - mean` as one expression, the Constant holding `mean` placed by the
    model input. A slice read by two ops, a result the model returns (Square, read by Sum) and
    one that would nest too deep (the subtraction, read by RealDiv) stay variables."""
    x = b.placeholder("features", [None, 24])

    def strided_slice(fn, name, x, begin, end, begin_mask, end_mask):
        stacks = [
            fn.const(f"{name}/stack{suffix}", np.array(v, np.int32))
            for suffix, v in (("", begin), ("_1", end), ("_2", [1, 1]))
        ]
        refs = [f"{s}:output:0" for s in stacks]
        return fn.op(
            name,
            "StridedSlice",
            x,
            *refs,
            T=FLOAT,
            Index=INT32,
            begin_mask=begin_mask,
            end_mask=end_mask,
        )

    compress = b.function("__inference_compress_31", {"x": FLOAT}, {"identity": FLOAT})
    h = compress.op("Log1p", "Log1p", "x")
    compress.op("Identity", "Identity", f"{h}:y:0")
    compress.ret["identity"] = "Identity:output:0"
    layer = b.function(
        "__inference_call_44", {"x": FLOAT, "mean": FLOAT, "std": FLOAT}, {"identity": FLOAT}
    )
    num = strided_slice(layer, "strided_slice", "x", [0, 0], [0, 18], 3, 1)
    log = layer.node(
        "PartitionedCall",
        "PartitionedCall",
        [f"{num}:output:0"],
        Tin=[FLOAT],
        Tout=[FLOAT],
        f=Func("__inference_compress_31"),
        config="",
        config_proto="",
        executor_type="",
    )
    centred = layer.op("sub", "Sub", f"{log}:output:0", "mean")
    spread = layer.op("add", "AddV2", "std", f"{layer.const('add/y', np.float32(1e-3))}:output:0")
    scaled = layer.op("truediv", "RealDiv", f"{centred}:z:0", f"{spread}:z:0")
    cat = strided_slice(layer, "strided_slice_1", "x", [0, 18], [0, 0], 1, 3)
    squared = layer.op("Square", "Square", f"{cat}:output:0")
    damped = layer.op("sub_1", "Sub", f"{cat}:output:0", f"{squared}:y:0")
    axis = layer.const("concat/axis", np.int32(-1))
    layer.op(
        "concat", "ConcatV2", f"{scaled}:z:0", f"{damped}:z:0", f"{axis}:output:0", N=2, Tidx=INT32
    )
    layer.op("Identity", "Identity", "concat:output:0")
    layer.ret["identity"] = "Identity:output:0"
    mean = b.weight("model/feature_preprocess/mean", 18)
    std = b.weight("model/feature_preprocess/std", 18, positive=True)
    features = b.node(
        "model/feature_preprocess/StatefulPartitionedCall",
        "StatefulPartitionedCall",
        [x, mean, std],
        Tin=[FLOAT, FLOAT, FLOAT],
        Tout=[FLOAT],
        f=Func("__inference_call_44"),
        config="",
        config_proto="",
        executor_type="",
    )
    with b.scope("model"):
        logits = dense(b, "probabilities", features, 24, 3)
        b.op("probabilities/Softmax", "Softmax", logits)
        square = b.op("norm/Square", "Square", features)
        axes = b.const("norm/Sum/reduction_indices", np.int32(1))
        b.op("norm/Sum", "Sum", square, axes, Tidx=INT32, keep_dims=False)


@case()
def rnn_lstm_while(b):
    """A Keras-style LSTM (x @ kernel + h @ recurrent_kernel + bias; gates i, f, c, o) over 4
    steps as a functional While, written by hand: the time-major input in a tensor list,
    a step counter, the weights entering as loop variables, each step's h written to an
    output list that is stacked and transposed back. Lifted to keras.layers.LSTM(2,
    return_sequences=True), each weight read as stored (Keras's layout already)."""
    steps, features, units = 4, 3, 2
    x = b.placeholder("input", [None, steps, features])
    with b.scope("lstm"):
        perm = b.const("transpose/perm", np.array([1, 0, 2], np.int32))
        xt = b.op("transpose", "Transpose", x, perm, Tperm=INT32)
        elem = b.const("TensorListFromTensor/element_shape", np.array([-1, features], np.int32))
        inputs = b.op(
            "TensorListFromTensor",
            "TensorListFromTensor",
            xt,
            elem,
            element_dtype=FLOAT,
            shape_type=INT32,
            T=None,
        )
        reserve = b.op(
            "TensorListReserve",
            "TensorListReserve",
            b.const("TensorListReserve/element_shape", np.array([-1, units], np.int32)),
            b.const("TensorListReserve/num_elements", np.int32(steps)),
            element_dtype=FLOAT,
            shape_type=INT32,
            T=None,
        )
        shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
        batch = b.op(
            "strided_slice",
            "StridedSlice",
            shape,
            b.const("strided_slice/stack", np.array([0], np.int32)),
            b.const("strided_slice/stack_1", np.array([1], np.int32)),
            b.const("strided_slice/stack_2", np.array([1], np.int32)),
            T=INT32,
            Index=INT32,
            shrink_axis_mask=1,
        )
        dims = b.op(
            "zeros/packed",
            "Pack",
            batch,
            b.const("zeros/packed/1", np.int32(units)),
            T=INT32,
            N=2,
            axis=0,
        )
        h0 = b.op("zeros", "Fill", dims, b.const("zeros/Const", np.float32(0.0)), index_type=INT32)
        c0 = b.op(
            "zeros_1", "Fill", dims, b.const("zeros_1/Const", np.float32(0.0)), index_type=INT32
        )
        kernel = b.weight("kernel", features, 4 * units)
        recurrent = b.weight("recurrent_kernel", units, 4 * units)
        bias = b.weight("bias", 4 * units)
        time = b.const("time", np.int32(0))
        args = {
            "time": INT32,
            "outputs": VARIANT,
            "h": FLOAT,
            "c": FLOAT,
            "inputs": VARIANT,
            "kernel": FLOAT,
            "recurrent_kernel": FLOAT,
            "bias": FLOAT,
        }
        cond = b.function("lstm_while_cond_7", args, {"identity": BOOL})
        less = cond.op("Less", "Less", "time", cond.const("Less/y", np.int32(steps)), T=INT32)
        cond.op("Identity", "Identity", f"{less}:z:0", T=BOOL)
        cond.ret["identity"] = "Identity:output:0"
        body = b.function(
            "lstm_while_body_8", args, {f"identity_{i}": t for i, t in enumerate(args.values())}
        )
        x_t = body.op(
            "TensorListGetItem",
            "TensorListGetItem",
            "inputs",
            "time",
            body.const("element_shape", np.array([-1, features], np.int32)),
            element_dtype=FLOAT,
            T=None,
        )
        xk = body.op("MatMul", "MatMul", f"{x_t}:item:0", "kernel")
        hr = body.op("MatMul_1", "MatMul", "h", "recurrent_kernel")
        z = body.op("add", "AddV2", f"{xk}:product:0", f"{hr}:product:0")
        z = body.op("BiasAdd", "BiasAdd", f"{z}:z:0", "bias", **NHWC)
        gates = body.op(
            "split",
            "Split",
            body.const("split/split_dim", np.int32(1)),
            f"{z}:output:0",
            num_split=4,
        )
        i = body.op("Sigmoid", "Sigmoid", f"{gates}:output:0")
        f = body.op("Sigmoid_1", "Sigmoid", f"{gates}:output:1")
        g = body.op("Tanh", "Tanh", f"{gates}:output:2")
        o = body.op("Sigmoid_2", "Sigmoid", f"{gates}:output:3")
        fc = body.op("mul", "Mul", f"{f}:y:0", "c")
        ig = body.op("mul_1", "Mul", f"{i}:y:0", f"{g}:y:0")
        c = body.op("add_1", "AddV2", f"{fc}:z:0", f"{ig}:z:0")
        tc = body.op("Tanh_1", "Tanh", f"{c}:z:0")
        h = body.op("mul_2", "Mul", f"{o}:y:0", f"{tc}:y:0")
        written = body.op(
            "TensorListSetItem",
            "TensorListSetItem",
            "outputs",
            "time",
            f"{h}:z:0",
            element_dtype=FLOAT,
            T=None,
        )
        step = body.op("add_2", "AddV2", "time", body.const("add_2/y", np.int32(1)), T=INT32)
        results = [
            f"{step}:z:0",
            f"{written}:output_handle:0",
            f"{h}:z:0",
            f"{c}:z:0",
            *list(args)[4:],
        ]
        for k, value in enumerate(results):
            body.ret[f"identity_{k}"] = value
        loop = b.node(
            "while",
            "While",
            [time, reserve, h0, c0, inputs, kernel, recurrent, bias],
            T=list(args.values()),
            cond=Func("lstm_while_cond_7"),
            body=Func("lstm_while_body_8"),
            parallel_iterations=32,
            output_shapes=[],
        )
        stacked = b.op(
            "TensorListStack",
            "TensorListStack",
            f"{loop}:1",
            b.const("TensorListStack/element_shape", np.array([-1, units], np.int32)),
            element_dtype=FLOAT,
            num_elements=steps,
            T=None,
        )
        perm1 = b.const("transpose_1/perm", np.array([1, 0, 2], np.int32))
        b.op("transpose_1", "Transpose", stacked, perm1, Tperm=INT32)


@case()
def control_while_loop(b):
    """A functional While that is no recurrent layer (halve and add one, three times, as
    tf.while_loop writes it with a counter): written keras.ops.while_loop with the condition
    and body as lambdas over the loop variables."""
    x = b.placeholder("x", [None, 3])
    args = {"i": INT32, "v": FLOAT}
    cond = b.function("while_cond_3", args, {"identity": BOOL})
    less = cond.op("Less", "Less", "i", cond.const("Less/y", np.int32(3)), T=INT32)
    cond.op("Identity", "Identity", f"{less}:z:0", T=BOOL)
    cond.ret["identity"] = "Identity:output:0"
    body = b.function("while_body_4", args, {"identity": INT32, "identity_1": FLOAT})
    step = body.op("add", "AddV2", "i", body.const("add/y", np.int32(1)), T=INT32)
    half = body.op("mul", "Mul", "v", body.const("mul/y", np.float32(0.5)))
    out = body.op("add_1", "AddV2", f"{half}:z:0", body.const("add_1/y", np.float32(1.0)))
    body.ret["identity"] = f"{step}:z:0"
    body.ret["identity_1"] = f"{out}:z:0"
    loop = b.node(
        "while",
        "While",
        [b.const("while/loop_counter", np.int32(0)), x],
        T=[INT32, FLOAT],
        cond=Func("while_cond_3"),
        body=Func("while_body_4"),
        parallel_iterations=10,
        output_shapes=[],
    )
    b.op("Identity", "Identity", f"{loop}:1")


@case("--inputs max_pooling2d/MaxPool:0[-1,3,3,4] --outputs conv2d_1/Relu:0,dense/BiasAdd:0")
def inputs_outputs_cut(b):
    """--inputs and --outputs: the model starts at an interior tensor (the first pooling's
    output, with a shape given on the command line), so the first conv is cut away, and
    returns two tensors, an interior conv output and the logits."""
    x = b.placeholder("input", [None, 6, 6, 1])
    h = conv(b, "conv2d", x, 1, 4)
    h = max_pool(b, "max_pooling2d/MaxPool", h)
    h = conv(b, "conv2d_1", h, 4, 2)
    h = flatten(b, "flatten", h, 18)
    h = dense(b, "dense", h, 18, 3)
    b.op("Softmax", "Softmax", h)


@case()
def control_batch_statistics(b):
    """A FusedBatchNormV3 frozen with is_training=True normalises by the batch's own moments:
    no BatchNormalization layer, but keras.ops arithmetic (mean and variance over every axis but
    the channels); its gamma and beta (18 values each, too many to write inline) become
    Constant layers that the loader fills from their graph nodes."""
    x = b.placeholder("input", [None, 4, 4, 3])
    h = conv(b, "conv", x, 3, 18, act=None)
    with b.scope("bn"):
        gamma = variable(b, "gamma", 18, positive=True)
        beta = variable(b, "beta", 18)
        empty = b.const("Const", np.zeros(0, np.float32))
        h = b.op(
            "FusedBatchNormV3",
            "FusedBatchNormV3",
            h,
            gamma,
            beta,
            empty,
            b.const("Const_1", np.zeros(0, np.float32)),
            U=FLOAT,
            epsilon=0.001,
            is_training=True,
            exponential_avg_factor=1.0,
            **NHWC,
        )
    b.op("Relu", "Relu", h)


@case("--inputs x:0 --outputs rnn/multi_rnn_cell_2/cell_1/gru_cell/add_2:0")
def rnn_static_stacked(b):
    """contrib's static_rnn over MultiRNNCell([LSTMCell(3), GRUCell(2)]), 3 steps, written as
    TF 1.x built it: per step the LSTM's [x, h] @ kernel split into i, j, f, o (forget_bias 1
    added to f), then the GRU's gates over [h_lstm, h] and candidate over [h_lstm, r * h]; the
    GRU reads the LSTM's step outputs one by one. Lifted to keras.layers.LSTM(3,
    return_sequences=True) and keras.layers.GRU(2, reset_after=False): gate blocks reordered
    and the forget bias folded into the bias in load_weights.py."""
    steps, features, n_lstm, n_gru = 3, 4, 3, 2
    x = b.placeholder("x", [None, steps, features])
    xs = b.op("unstack", "Unpack", x, num=steps, axis=1)
    one = b.const("Const", np.int32(1))
    with b.scope("rnn"):
        shape = b.op("Shape", "Shape", xs, T=FLOAT, out_type=INT32)
        batch = b.op(
            "strided_slice",
            "StridedSlice",
            shape,
            *(
                b.const(f"strided_slice/stack{k}", np.array([v], np.int32))
                for k, v in enumerate((0, 1, 1))
            ),
            T=INT32,
            Index=INT32,
            shrink_axis_mask=1,
        )

        def zeros(name, units):
            dims = b.op(
                f"{name}/packed",
                "Pack",
                batch,
                b.const(f"{name}/units", np.int32(units)),
                T=INT32,
                N=2,
                axis=0,
            )
            return b.op(
                name, "Fill", dims, b.const(f"{name}/Const", np.float32(0.0)), index_type=INT32
            )

        c, h, g = zeros("zeros", n_lstm), zeros("zeros_1", n_lstm), zeros("zeros_2", n_gru)
        with b.scope("multi_rnn_cell/cell_0/lstm_cell"):
            kernel = variable(b, "kernel", features + n_lstm, 4 * n_lstm)
            bias = variable(b, "bias", 4 * n_lstm)
        with b.scope("multi_rnn_cell/cell_1/gru_cell"):
            gate_kernel = variable(b, "gates/kernel", n_lstm + n_gru, 2 * n_gru)
            gate_bias = variable(b, "gates/bias", 2 * n_gru)
            kernel_c = variable(b, "candidate/kernel", n_lstm + n_gru, n_gru)
            bias_c = variable(b, "candidate/bias", n_gru)
        for t in range(steps):
            scope = "multi_rnn_cell" + (f"_{t}" if t else "")
            with b.scope(f"{scope}/cell_0/lstm_cell"):
                xh = b.op("concat", "ConcatV2", f"{xs}:{t}" if t else xs, h, one, N=2, Tidx=INT32)
                z = b.op("MatMul", "MatMul", xh, kernel, transpose_a=False)
                z = b.op("BiasAdd", "BiasAdd", z, bias, **NHWC)
                gates = b.op("split", "Split", one, z, num_split=4)
                f = b.op("add", "AddV2", f"{gates}:2", b.const("add/y", np.float32(1.0)))
                c = b.op(
                    "add_1",
                    "AddV2",
                    b.op("mul", "Mul", b.op("Sigmoid", "Sigmoid", f), c),
                    b.op(
                        "mul_1",
                        "Mul",
                        b.op("Sigmoid_1", "Sigmoid", gates),
                        b.op("Tanh", "Tanh", f"{gates}:1"),
                    ),
                )
                h = b.op(
                    "mul_2",
                    "Mul",
                    b.op("Sigmoid_2", "Sigmoid", f"{gates}:3"),
                    b.op("Tanh_1", "Tanh", c),
                )
            with b.scope(f"{scope}/cell_1/gru_cell"):
                xg = b.op("concat", "ConcatV2", h, g, one, N=2, Tidx=INT32)
                rz = b.op(
                    "BiasAdd",
                    "BiasAdd",
                    b.op("MatMul", "MatMul", xg, gate_kernel, transpose_a=False),
                    gate_bias,
                    **NHWC,
                )
                r_u = b.op("split", "Split", one, b.op("Sigmoid", "Sigmoid", rz), num_split=2)
                xr = b.op(
                    "concat_1", "ConcatV2", h, b.op("mul", "Mul", r_u, g), one, N=2, Tidx=INT32
                )
                cand = b.op(
                    "BiasAdd_1",
                    "BiasAdd",
                    b.op("MatMul_1", "MatMul", xr, kernel_c, transpose_a=False),
                    bias_c,
                    **NHWC,
                )
                keep = b.op("mul_1", "Mul", f"{r_u}:1", g)
                fresh = b.op("sub", "Sub", b.const("sub/x", np.float32(1.0)), f"{r_u}:1")
                g = b.op(
                    "add_2", "AddV2", keep, b.op("mul_2", "Mul", fresh, b.op("Tanh", "Tanh", cand))
                )


# -- issue 9, class 6: the edges of the layer patterns (wild-edge) --------------------------------


def _shape_entry(b, name, shape, index):
    """tf.shape(x)[index]: a StridedSlice of the shape vector with the axis shrunk."""
    return b.op(
        name,
        "StridedSlice",
        shape,
        b.const(f"{name}/stack", np.array([index], np.int32)),
        b.const(f"{name}/stack_1", np.array([index + 1], np.int32)),
        b.const(f"{name}/stack_2", np.array([1], np.int32)),
        T=INT32,
        Index=INT32,
        shrink_axis_mask=1,
    )


def _tensordot(b, scope, x, rank, n_in, n_out):
    """tf.tensordot(x, kernel, [[rank - 1], [0]]) on x of unknown width, as TF builds it: the
    free and contracted sizes gathered from Shape(x) and multiplied, x reshaped to 2-D, MatMul,
    reshaped back to the free sizes and the units."""
    with b.scope(scope):
        kernel = variable(b, "kernel", n_in, n_out)
        with b.scope("Tensordot"):
            free = b.const("free", np.arange(rank - 1, dtype=np.int32))
            axes = b.const("axes", np.array([rank - 1], np.int32))
            shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
            zero = b.const("GatherV2/axis", np.int32(0))
            ints = {"Tparams": INT32, "Taxis": INT32, "Tindices": INT32}
            kept = b.op("GatherV2", "GatherV2", shape, free, zero, **ints)
            summed = b.op("GatherV2_1", "GatherV2", shape, axes, zero, **ints)
            prod = {"T": INT32, "Tidx": INT32, "keep_dims": False}
            rows = b.op("Prod", "Prod", kept, b.const("Const", np.array([0], np.int32)), **prod)
            width = b.op(
                "Prod_1", "Prod", summed, b.const("Const_1", np.array([0], np.int32)), **prod
            )
            target = b.op("stack", "Pack", rows, width, T=INT32, N=2, axis=0)
            perm = b.const("concat", np.arange(rank, dtype=np.int32))
            h = b.op("transpose", "Transpose", x, perm, Tperm=INT32)
            h = b.op("Reshape", "Reshape", h, target, Tshape=INT32)
            h = b.op("MatMul", "MatMul", h, kernel, transpose_a=False, transpose_b=False)
            units = b.const("Const_2", np.array([n_out], np.int32))
            back = b.op(
                "concat_1",
                "ConcatV2",
                kept,
                units,
                b.const("concat_1/axis", np.int32(0)),
                N=2,
                T=INT32,
                Tidx=INT32,
            )
            h = b.op("Tensordot", "Reshape", h, back, Tshape=INT32)
        return b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", n_out), **NHWC)


@case()
def dense_tensordot_unknown_width(b):
    """A TF1 feed-forward block of tf.tensordot layers on a sequence whose width the graph does
    not state: the kernel does (6), so a Reshape stating it goes before the first Dense, which
    Keras builds its kernel from; the second Dense's input width is the first's units."""
    x = b.placeholder("features", [None, 5, None])
    h = _tensordot(b, "ffn_in", x, 3, 6, 8)
    h = b.op("ffn_in/Relu", "Relu", h)
    _tensordot(b, "ffn_out", h, 3, 8, 4)


@case()
def conv_strided_dilated(b):
    """Conv2D with strides 2 and dilations 2 (SAME, then VALID with strides 3 and dilations 2),
    which Keras refuses together: a dilated Conv2D (bias and ReLU fused), then the strided
    slice x[:, offset::2, offset::2, :] of its output, exactly TF's windows."""
    x = b.placeholder("image", [None, 10, 9, 3])
    h = conv(b, "atrous", x, 3, 4, k=3, stride=2, dilation=2)
    conv(b, "atrous_1", h, 4, 2, k=2, stride=3, padding="VALID", act=None, dilation=2)


@case()
def reshape_runtime_heads(b):
    """TF1 attention splitting heads: query and key reshaped to [tf.shape(x)[0],
    tf.shape(x)[1], 2, 3] from one Shape(x) (the batch and the free sequence length), then
    transposed: Keras Reshape((-1, 2, 3)) layers, the shared shape arithmetic absorbed by the
    first."""
    x = b.placeholder("features", [None, None, 6])
    shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
    batch = _shape_entry(b, "strided_slice", shape, 0)
    length = _shape_entry(b, "strided_slice_1", shape, 1)
    outs = []
    for i, scope in enumerate(("query", "key")):
        with b.scope(scope):
            h = b.op("mul", "Mul", x, b.const("mul/y", np.float32(i + 1.5)))
            target = b.op(
                "Reshape/shape",
                "Pack",
                batch,
                length,
                b.const("Reshape/shape/2", np.int32(2)),
                b.const("Reshape/shape/3", np.int32(3)),
                T=INT32,
                N=4,
                axis=0,
            )
            h = b.op("Reshape", "Reshape", h, target, Tshape=INT32)
            perm = b.const("transpose/perm", np.array([0, 2, 1, 3], np.int32))
            outs.append(b.op("transpose", "Transpose", h, perm, Tperm=INT32))
    b.op("add", "AddV2", *outs)


@case()
def norm_centred_layer_norm(b):
    """LayerNormalization written out as tensor2tensor and BERT ports did, after a projection:
    (x - mean) * rsqrt(mean((x - mean)^2) + eps) * gamma + beta over the last axis."""
    x = b.placeholder("tokens", [None, 4, 6])
    with b.scope("proj"):
        x = b.op("MatMul", "BatchMatMulV2", x, variable(b, "kernel", 6, 6))
    with b.scope("layer_norm"):
        gamma = variable(b, "scale", 6, positive=True)
        beta = variable(b, "bias", 6)
        axis = b.const("Mean/reduction_indices", np.array([-1], np.int32))
        mean = b.op("Mean", "Mean", x, axis, Tidx=INT32, keep_dims=True)
        centred = b.op("sub", "Sub", x, mean)
        square = b.op("Square", "Square", centred)
        axis2 = b.const("Mean_1/reduction_indices", np.array([-1], np.int32))
        var = b.op("Mean_1", "Mean", square, axis2, Tidx=INT32, keep_dims=True)
        add = b.op("add", "AddV2", var, b.const("add/y", np.float32(1e-6)))
        rs = b.op("Rsqrt", "Rsqrt", add)
        h = b.op("mul", "Mul", centred, rs)
        h = b.op("mul_1", "Mul", h, gamma)
        b.op("add_1", "AddV2", h, beta)


@case()
def conv3d_batch_norm(b):
    """Volumetric TF1 layers: Conv3D + BiasAdd (tf.layers.conv3d), FusedBatchNormV3 on NDHWC
    input (BatchNormalization), LeakyRelu with a negative slope (keras.ops.leaky_relu: the
    Keras layer refuses one)."""
    x = b.placeholder("volume", [None, 4, 5, 6, 2])
    with b.scope("conv3d"):
        h = b.op(
            "Conv3D",
            "Conv3D",
            x,
            variable(b, "kernel", 2, 3, 3, 2, 4),
            strides=[1, 1, 2, 2, 1],
            padding="SAME",
            dilations=[1, 1, 1, 1, 1],
            data_format="NDHWC",
        )
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 4), **NHWC)
    h = fused_batch_norm(b, "bn", h, 4, fmt="NDHWC")
    b.op("LeakyRelu", "LeakyRelu", h, alpha=-0.25)


@case()
def conv_transpose_input_shape(b):
    """Super-resolution upsampling in a fully convolutional net (height and width free):
    Conv2DBackpropInput whose output size is computed from the input's, [tf.shape(x)[0],
    tf.shape(x)[1] * 2 + c, tf.shape(x)[2] * 2 + c, C]. Two SAME ones (3x3 and 4x4 kernels)
    share one such vector (c = 0, Keras's own size); a third has c = -1, which is Keras's
    output_padding 0 (the second output)."""
    x = b.placeholder("image", [None, None, None, 3])
    shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
    batch = _shape_entry(b, "strided_slice", shape, 0)
    two = b.const("mul/y", np.int32(2))
    height = b.op("mul", "Mul", _shape_entry(b, "strided_slice_1", shape, 1), two, T=INT32)
    width = b.op("mul_1", "Mul", _shape_entry(b, "strided_slice_2", shape, 2), two, T=INT32)
    channels = b.const("stack/3", np.int32(3))
    sizes = b.op("stack", "Pack", batch, height, width, channels, T=INT32, N=4, axis=0)
    one = b.const("sub/y", np.int32(1))
    odd = b.op(
        "stack_1",
        "Pack",
        batch,
        b.op("sub", "Sub", height, one, T=INT32),
        b.op("sub_1", "Sub", width, one, T=INT32),
        channels,
        T=INT32,
        N=4,
        axis=0,
    )
    outs = []
    for scope, k, vector in (("up", 3, sizes), ("up_1", 4, sizes), ("up_odd", 3, odd)):
        with b.scope(scope):
            h = b.op(
                "conv2d_transpose",
                "Conv2DBackpropInput",
                vector,
                variable(b, "kernel", k, k, 3, 3),
                x,
                strides=[1, 2, 2, 1],
                padding="SAME",
                **NHWC,
            )
            outs.append(b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 3), **NHWC))
    b.op("add", "AddV2", *outs[:2])


def quantized_const(b: Builder, name: str, codes: np.ndarray, dtype: int) -> str:
    """A Const of a quantized dtype (quint8, qint8, ...) holding `codes` as tensor_content."""
    name = b.node(name, "Const", dtype=Dtype(dtype))
    tensor = b.graph.node[-1].attr["value"].tensor
    tensor.dtype = dtype
    for size in codes.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = codes.tobytes()
    return name


@case()
def quantized_weights(b):
    """Quantized and quantization-aware weights become float weights of plain layers: a conv
    kernel stored as quint8 codes with its range and read through Dequantize (MIN_FIRST, as
    TF's quantize_weights transform left it), a TF1 atrous conv (SpaceToBatchND, Conv2D,
    BatchToSpaceND) whose kernel passes through FakeQuantWithMinMaxVars (contrib.quantize),
    and a dense kernel of qint8 codes with one SCALED range per output unit. The loader
    spells out each dequantization in numpy; fake quantization of activations is keras.ops."""
    x = b.placeholder("input", [None, 8, 8, 2])
    with b.scope("conv1"):
        codes = b.rng.integers(0, 256, (3, 3, 2, 4)).astype(np.uint8)
        stored = quantized_const(b, "kernel_quantized_const", codes, types_pb2.DT_QUINT8)
        kernel = b.op(
            "kernel",
            "Dequantize",
            stored,
            b.const("kernel_quantized_min", np.float32(-0.61)),
            b.const("kernel_quantized_max", np.float32(0.47)),
            T=Dtype(types_pb2.DT_QUINT8),
            dtype=FLOAT,
            mode="MIN_FIRST",
        )
        h = b.op("Conv2D", "Conv2D", x, kernel, strides=ONES, padding="SAME", **NHWC)
        h = b.op("BiasAdd", "BiasAdd", h, variable(b, "bias", 4), **NHWC)
        h = b.op("Relu", "Relu", h)
        h = b.op(
            "act_quant/FakeQuantWithMinMaxVars",
            "FakeQuantWithMinMaxVars",
            h,
            b.const("act_quant/min", np.float32(-0.2)),
            b.const("act_quant/max", np.float32(3.1)),
            num_bits=8,
            narrow_range=False,
            T=None,
        )
    with b.scope("atrous"):
        kernel = b.op(
            "weights_quant/FakeQuantWithMinMaxVars",
            "FakeQuantWithMinMaxVars",
            variable(b, "weights", 3, 3, 4, 4),
            b.const("weights_quant/min", np.float32(-0.9)),
            b.const("weights_quant/max", np.float32(0.8)),
            num_bits=8,
            narrow_range=True,
            T=None,
        )
        block = b.const("SpaceToBatchND/block_shape", np.array([2, 2], np.int32))
        h = b.op(
            "SpaceToBatchND",
            "SpaceToBatchND",
            h,
            block,
            b.const("SpaceToBatchND/paddings", np.array([[2, 2], [2, 2]], np.int32)),
            Tblock_shape=INT32,
            Tpaddings=INT32,
        )
        h = b.op("Conv2D", "Conv2D", h, kernel, strides=ONES, padding="VALID", **NHWC)
        h = b.op(
            "BatchToSpaceND",
            "BatchToSpaceND",
            h,
            b.const("BatchToSpaceND/block_shape", np.array([2, 2], np.int32)),
            b.const("BatchToSpaceND/crops", np.array([[0, 0], [0, 0]], np.int32)),
            Tblock_shape=INT32,
            Tcrops=INT32,
        )
        h = b.op("Relu", "Relu", h)
    with b.scope("flatten"):
        h = b.op("Reshape", "Reshape", h, b.const("shape", np.array([-1, 256], np.int32)))
    with b.scope("dense"):
        codes = b.rng.integers(-128, 128, (256, 3)).astype(np.int8)
        stored = quantized_const(b, "kernel_quantized", codes, types_pb2.DT_QINT8)
        kernel = b.op(
            "kernel",
            "Dequantize",
            stored,
            b.const("kernel_min", np.float32([-0.05, -0.08, -0.03])),
            b.const("kernel_max", np.float32([0.06, 0.07, 0.04])),
            T=Dtype(types_pb2.DT_QINT8),
            dtype=FLOAT,
            mode="SCALED",
            axis=1,
        )
        b.op("MatMul", "MatMul", h, kernel)


@case()
def blocks_repeated(b):
    """A TF1 ResNet-style stage: a stem conv, then `block1` with a projection shortcut and
    `block2`..`block4` alike (conv + fused batch norm + ReLU twice, AddV2, ReLU), each scope a
    hand-written function's call; then three `head_N` units of conv + ReLU with their own
    filters. The repeated blocks become block functions, block2..block4 a loop
    (codegen/blocks.py)."""
    x = b.placeholder("images", [None, 8, 8, 3])
    h = conv(b, "stem", x, 3, 4, act="Relu")
    for i in range(1, 5):
        with b.scope(f"block{i}"):
            y = conv(b, "conv_a", h, 4, 4, act=None)
            y = fused_batch_norm(b, "bn_a", y, 4)
            y = b.op("relu_a", "Relu", y)
            y = conv(b, "conv_b", y, 4, 4, act=None)
            y = fused_batch_norm(b, "bn_b", y, 4)
            s = conv(b, "shortcut", h, 4, 4, k=1, act=None) if i == 1 else h
            y = b.op("add", "AddV2", y, s)
            h = b.op("out", "Relu", y)
    for i, filters in enumerate((6, 5, 3)):
        h = conv(b, f"head_{i}", h, (4, 6, 5)[i], filters, k=1, act="Relu")


@case()
def custom_layer_scope(b):
    """A Keras model with a custom layer whose call() is tensor math (`model/rms_norm/...`:
    Square, Mean, AddV2, Rsqrt, Mul), between two dense layers: the scope's keras.ops
    expressions become one function named after it, called once (codegen/blocks.py)."""
    x = b.placeholder("features", [None, 6])
    with b.scope("model"):
        h = dense(b, "dense", x, 6, 8, act="Relu")
        with b.scope("rms_norm"):
            sq = b.op("Square", "Square", h)
            axis = b.const("Mean/reduction_indices", np.array([-1], np.int32))
            ms = b.op("Mean", "Mean", sq, axis, Tidx=INT32, keep_dims=True)
            eps = b.const("add/y", np.float32(1e-6))
            ms = b.op("add", "AddV2", ms, eps)
            r = b.op("Rsqrt", "Rsqrt", ms)
            h = b.op("mul", "Mul", h, r)
        dense(b, "logits", h, 8, 3)


def main(names: list[str]) -> None:
    for name in names or sorted(CASES):
        (HERE / f"{name}.pbtxt").write_text(build(name), encoding="utf-8")
        print(f"wrote {name}.pbtxt")


if __name__ == "__main__":
    main(sys.argv[1:])
