"""One tiny graph per pattern: freeze, convert, run the generated code against TensorFlow.

Every weight is a seeded random value (BatchNorm variances kept positive) and shapes are chosen
so that a dropped or swapped parameter shows: non-square inputs and kernels, asymmetric pads and
crops, inputs in [-8, 8] so that relu6 and the hard-sigmoid clip on both sides. Each case also
names the exact layer classes it must produce, so a pass proves the pattern fired rather than
that some fallback happened to compute the same numbers, and the generated model may hold no
variable the loader does not fill (a dropped use_bias=False adds a zero bias parity cannot see).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.errors import UnsupportedError
from codegen.verify import import_generated, max_error, run_graph

# input shapes without the batch: non-square so that H and W cannot be swapped unnoticed
IMG, MAP, POOL, VEC, SEQ = (8, 7, 3), (5, 4, 3), (7, 6, 3), (6,), (5, 6)


# -- weights ----------------------------------------------------------------------------------


def var(rng, *shape):
    """A weight with fan-in scaling, so outputs stay O(input) whatever the layer."""
    fan_in = math.prod(shape[:-1]) if len(shape) > 1 else 1
    return tf.Variable(rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape).astype(np.float32))


def pos(rng, *shape):
    """A positive weight (variances, scales)."""
    return tf.Variable(rng.uniform(0.5, 1.5, shape).astype(np.float32))


# -- builders: rng -> function of the input tensor, frozen by the test ------------------------


def one(op):
    return lambda rng: op


def two(op):
    """`op` between two computed tensors, tanh(x) and relu(x)."""
    return lambda rng: lambda x: op(tf.tanh(x), tf.nn.relu(x))


def weights(make, *shapes):
    """make(x, *weights) with seeded random weights of the given shapes."""

    def build(rng):
        values = [var(rng, *s) for s in shapes]
        return lambda x: make(x, *values)

    return build


def scalars(make, n):
    """make(x, *constants) with n random scalars of either sign, |c| in [0.5, 2]."""

    def build(rng):
        values = [float(v) for v in rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n)]
        return lambda x: make(x, *values)

    return build


def keras_layer(shape, cls, **kwargs):
    """A one-layer Keras model, every variable set to seeded random values."""

    def build(rng):
        model = keras.Sequential([keras.Input(shape), cls(**kwargs)])
        for v in model.variables:
            low = 0.5 if "variance" in v.path or "gamma" in v.path else -0.5
            v.assign(rng.uniform(low, 1.5, v.shape).astype(np.float32))
        return lambda x: model(x, training=False)

    return build


def conv(x, w, b=None, strides=1, padding="SAME", dilations=1):
    y = tf.nn.conv2d(x, w, strides, padding, dilations=dilations)
    return y if b is None else tf.nn.bias_add(y, b)


def depthwise(x, w, b):
    return tf.nn.bias_add(tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME"), b)


def separable(x, dw, pw, b):
    return tf.nn.bias_add(tf.nn.separable_conv2d(x, dw, pw, [1, 1, 1, 1], "SAME"), b)


def conv_relu_in_scope(x, w, b):
    with tf.name_scope("conv"):
        return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))


def conv_transpose(size, padding, k=3):
    """tf.nn.conv2d_transpose, stride 2, to (size[0], size[1], 4) with a dynamic batch."""

    def make(x, w, b):
        shape = tf.stack([tf.shape(x)[0], size[0], size[1], 4])
        return tf.nn.bias_add(tf.nn.conv2d_transpose(x, w, shape, 2, padding), b)

    return weights(make, (k, k, 4, 3), (4,))


def fused_bn(rng):
    gamma, beta, mean, variance = pos(rng, 3), var(rng, 3), var(rng, 3), pos(rng, 3)
    fused = tf.compat.v1.nn.fused_batch_norm
    return lambda x: fused(x, gamma, beta, mean, variance, epsilon=0.01, is_training=False)[0]


def decomposed_bn(offset, scale):
    def build(rng):
        mean, variance = var(rng, 3), pos(rng, 3)
        beta = var(rng, 3) if offset else None
        gamma = pos(rng, 3) if scale else None
        return lambda x: tf.nn.batch_normalization(x, mean, variance, beta, gamma, 0.01)

    return build


def gelu_erf(x):
    return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def gelu_neg_first(x):
    """erfc(-x/sqrt(2)) * (0.5 * x): the frozen graph stores a node's inputs depth first in
    order, so the Neg comes before the 0.5 * x and the pattern is anchored on the Neg."""
    return tf.math.erfc(-x * (1.0 / math.sqrt(2.0))) * (0.5 * x)


def hard_sigmoid(x):
    return tf.nn.relu6(x + 3.0) / 6.0


def pad_v2(x):
    return tf.raw_ops.PadV2(input=x, paddings=[[0, 0], [2, 0], [1, 1], [0, 0]], constant_values=0.0)


def case(case_id, build, shape, *classes, marks=()):
    """A table row: the builder, the input shape, the exact layer classes the spec must hold."""
    return pytest.param(build, shape, classes, id=case_id, marks=marks)


# fmt: off
CASES = [
    # convolutions
    case("conv_stride2_same", weights(lambda x, w, b: conv(x, w, b, 2), (3, 2, 3, 4), (4,)), IMG, "Conv2D"),
    case("conv_valid", weights(lambda x, w, b: conv(x, w, padding="VALID") + b, (3, 2, 3, 4), (4,)), IMG, "Conv2D"),
    case("conv_dilation2", weights(lambda x, w, b: conv(x, w, b, dilations=2), (3, 3, 3, 4), (4,)), IMG, "Conv2D"),
    case("conv_no_bias", weights(lambda x, w: conv(x, w, strides=[1, 1, 2, 1]), (3, 3, 3, 4)), IMG, "Conv2D"),
    # no bias here: TF CPU's fused Conv2D+BiasAdd kernel rejects grouped convolutions
    case("conv_grouped", weights(conv, (3, 3, 2, 6)), (8, 7, 4), "Conv2D"),
    case("conv_bias_relu_fused", weights(conv_relu_in_scope, (3, 3, 3, 4), (4,)), IMG, "Conv2D"),
    case("depthwise_multiplier2", weights(depthwise, (3, 2, 3, 2), (6,)), IMG, "DepthwiseConv2D"),
    case("separable", weights(separable, (3, 3, 3, 2), (1, 1, 6, 5), (5,)), IMG, "SeparableConv2D"),
    case("conv_transpose_same_s2", conv_transpose((10, 12), "SAME"), (5, 6, 3), "Conv2DTranspose"),
    case("conv_transpose_valid_s2", conv_transpose((11, 13), "VALID"), (5, 6, 3), "Conv2DTranspose"),
    case("conv_transpose_output_padding", conv_transpose((12, 13), "VALID"), (5, 6, 3), "Conv2DTranspose"),
    case("conv_transpose_same_k4_odd", conv_transpose((9, 11), "SAME", k=4), (5, 6, 3), "Conv2DTranspose"),
    # Keras applies output_padding to both axes through (in - 1) * s + k - 2 * (k // 2) + p,
    # which for an even kernel cannot give in * s on one axis and in * s - 1 on the other: no
    # Conv2DTranspose expresses it, so the op takes the TensorFlow-only path (and its dynamic
    # output shape the keras.ops one)
    case("conv_transpose_same_k4_mixed", conv_transpose((9, 12), "SAME", k=4), (5, 6, 3),
         "tf.raw_ops.Shape (TensorFlow-only layer)", "indexing", "keras.ops.stack", "Constant",
         "tf.raw_ops.Conv2DBackpropInput (TensorFlow-only layer)", "keras.ops.add"),
    # dense
    case("matmul_bias_add", weights(lambda x, w, b: tf.nn.bias_add(x @ w, b), (6, 4), (4,)), VEC, "Dense"),
    case("matmul_transpose_b", weights(lambda x, w, b: tf.matmul(x, w, transpose_b=True) + b, (4, 6), (4,)), VEC, "Dense"),
    case("dense_3d_tensordot", weights(lambda x, w, b: tf.tensordot(x, w, [[2], [0]]) + b, (6, 4), (4,)), SEQ, "Dense"),
    case("dense_3d_batch_matmul", weights(lambda x, w, b: x @ w + b, (6, 4), (4,)), SEQ, "Dense"),
    case("dense_3d_batch_matmul_adj_y", weights(lambda x, w: tf.matmul(x, w, adjoint_b=True), (4, 6)), SEQ, "Dense"),
    case("dense_3d_keras_relu", keras_layer(SEQ, keras.layers.Dense, units=4, activation="relu"), SEQ, "Dense"),
    # normalization
    case("fused_batch_norm_v3", fused_bn, MAP, "BatchNormalization"),
    case("batch_norm_decomposed", decomposed_bn(True, True), MAP, "BatchNormalization"),
    case("batch_norm_decomposed_no_offset_scale", decomposed_bn(False, False), MAP, "BatchNormalization"),
    case("batch_norm_decomposed_scale_only", decomposed_bn(False, True), MAP, "BatchNormalization"),
    case("layer_norm_keras", keras_layer(SEQ, keras.layers.LayerNormalization, epsilon=0.1), SEQ, "LayerNormalization"),
    case("normalization_keras", keras_layer((5, 3), keras.layers.Normalization, mean=[0.3, -0.2, 0.1],
                                            variance=[0.5, 2.0, 1.3]), (5, 3), "Normalization"),
    # activations
    case("relu", one(tf.nn.relu), VEC, "ReLU"),
    case("relu6", one(tf.nn.relu6), VEC, "ReLU"),
    case("sigmoid", one(tf.sigmoid), VEC, "Activation"),
    case("tanh", one(tf.tanh), VEC, "Activation"),
    case("elu", one(tf.nn.elu), VEC, "Activation"),
    case("selu", one(tf.nn.selu), VEC, "Activation"),
    case("softplus", one(tf.nn.softplus), VEC, "Activation"),
    case("softsign", one(tf.nn.softsign), VEC, "Activation"),
    case("leaky_relu_0.1", one(lambda x: tf.nn.leaky_relu(x, 0.1)), VEC, "LeakyReLU"),
    case("softmax", one(tf.nn.softmax), VEC, "Softmax"),
    case("swish", one(lambda x: x * tf.sigmoid(x)), VEC, "Activation"),
    case("swish_tf_silu", one(tf.nn.silu), VEC, "Activation"),
    case("hard_sigmoid", one(hard_sigmoid), VEC, "Activation"),
    case("hard_swish", one(lambda x: x * hard_sigmoid(x)), VEC, "Activation"),
    case("hard_swish_times_sixth", one(lambda x: x * (tf.nn.relu6(x + 3.0) * (1.0 / 6.0))), VEC, "Activation"),
    case("gelu_erfc", one(lambda x: tf.nn.gelu(x, approximate=False)), VEC, "Activation"),
    case("gelu_erf", one(gelu_erf), VEC, "Activation"),
    case("gelu_erfc_neg_first", one(gelu_neg_first), VEC, "Activation"),
    # padding and pooling
    case("zero_padding_asymmetric", one(lambda x: tf.pad(x, [[0, 0], [1, 2], [0, 3], [0, 0]])), MAP, "ZeroPadding2D"),
    case("pad_v2_zero", one(pad_v2), MAP, "ZeroPadding2D"),
    case("max_pool_same_s2", one(lambda x: tf.nn.max_pool2d(x, (3, 2), 2, "SAME")), POOL, "MaxPooling2D"),
    case("avg_pool_same_s2", one(lambda x: tf.nn.avg_pool2d(x, (3, 2), 2, "SAME")), POOL, "AveragePooling2D"),
    case("mean_hw", one(lambda x: tf.reduce_mean(x, [1, 2])), MAP, "GlobalAveragePooling2D"),
    case("mean_hw_keepdims", one(lambda x: tf.reduce_mean(x, [1, 2], keepdims=True)), MAP, "GlobalAveragePooling2D"),
    case("max_hw", one(lambda x: tf.reduce_max(x, [1, 2])), MAP, "GlobalMaxPooling2D"),
    # merges between two computed tensors: Activation(tanh) and ReLU feed each
    case("concat_axis3", two(lambda a, b: tf.concat([a, b], 3)), MAP, "Activation", "ReLU", "Concatenate"),
    case("concat_axis1", two(lambda a, b: tf.concat([a, b], 1)), MAP, "Activation", "ReLU", "Concatenate"),
    case("add", two(tf.add), VEC, "Activation", "ReLU", "Add"),
    case("add_n", two(lambda a, b: tf.add_n([a, b, a])), VEC, "Activation", "ReLU", "Add"),
    case("multiply", two(tf.multiply), VEC, "Activation", "ReLU", "Multiply"),
    case("subtract", two(tf.subtract), VEC, "Activation", "ReLU", "Subtract"),
    case("maximum", two(tf.maximum), VEC, "Activation", "ReLU", "Maximum"),
    case("minimum", two(tf.minimum), VEC, "Activation", "ReLU", "Minimum"),
    # scale and shift by constants
    case("rescaling_mul_add", scalars(lambda x, a, b: x * a + b, 2), VEC, "Rescaling"),
    case("rescaling_sub", scalars(lambda x, b: x - b, 1), VEC, "Rescaling"),
    case("rescaling_div", scalars(lambda x, a: x / a, 1), VEC, "Rescaling"),
    case("rescaling_rsub", scalars(lambda x, c: c - x, 1), VEC, "Rescaling"),
    case("channel_scale", weights(lambda x, g: x * g, (3,)), MAP, "ChannelScale"),
    # layout
    case("reshape_flatten", one(lambda x: tf.reshape(x, (-1, 60))), MAP, "Flatten"),
    case("reshape_dynamic_batch", one(lambda x: tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))), MAP, "Flatten"),
    case("reshape_3d", one(lambda x: tf.reshape(x, (-1, 6, 10))), MAP, "Reshape"),
    case("squeeze", one(lambda x: tf.squeeze(x, [2])), (5, 1, 3), "Reshape"),
    case("expand_dims", one(lambda x: tf.expand_dims(x, 1)), (5, 3), "Reshape"),
    case("transpose_permute", one(lambda x: tf.transpose(x, (0, 2, 1, 3))), MAP, "Permute"),
    case("strided_slice_crop", one(lambda x: x[:, 1:, 2:-1, :]), (5, 6, 3), "Cropping2D"),
]
# fmt: on


def freeze(fn, shape, path) -> None:
    """Freeze `fn` the way users do: a concrete function whose input is named `input`."""
    spec = tf.TensorSpec((None, *shape), tf.float32, name="input")
    frozen = convert_variables_to_constants_v2(tf.function(fn).get_concrete_function(spec))
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString(deterministic=True))


@pytest.mark.parametrize("build, shape, expected", CASES)
def test_op_parity(tmp_path, request, build, shape, expected):
    case_id = request.node.callspec.id
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    path = tmp_path / "graph.pb"
    freeze(build(rng), shape, path)
    spec, files = convert(path)
    classes = [
        layer.cls if layer.path == "keras.layers" else layer.target() for layer in spec.layers
    ]
    assert Counter(classes) == Counter(expected), classes

    write_atomically(tmp_path / "out", files)
    model_mod, loader = import_generated(tmp_path / "out")
    model = loader.load_weights(model_mod.build_model(), str(path))
    loaded = sum(math.prod(w.shape) for layer in spec.layers for w in layer.weights)
    assert (
        sum(math.prod(w.shape) for w in model.weights) == loaded
    ), "a variable the loader leaves alone"

    x = rng.uniform(-8.0, 8.0, (2, *shape)).astype(np.float32)
    (reference,) = run_graph(path, {spec.inputs[0].tensor: x}, spec.outputs)
    actual = np.asarray(model(x, training=False))
    error, bound = max_error(reference, actual)
    assert error <= bound, f"{case_id}: max|Δ| = {error:.3g} exceeds {bound:.3g}"
    assert np.std(reference) > 1e-6


def test_unsupported_op_is_named_with_its_count(tmp_path):
    """An op TensorFlow itself does not know (a custom op from a library not loaded) has no
    path at all; every such node is reported, with its count."""
    path = tmp_path / "custom.pb"
    freeze(lambda x: tf.math.cumsum(tf.math.cumsum(x, 1), 2), MAP, path)
    graph = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    for node in graph.node:
        if node.op == "Cumsum":
            node.op = "MyCustomCumsum"
    path.write_bytes(graph.SerializeToString())
    with pytest.raises(UnsupportedError) as info:
        convert(path)
    assert "no pattern for 2 MyCustomCumsum nodes" in info.value.problems
