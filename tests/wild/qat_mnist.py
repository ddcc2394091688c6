"""A quantization-aware MNIST net as TF1's contrib.quantize rewrite left it.

Conv and dense layers whose weights pass through `fake_quant_with_min_max_vars` (8 bits,
narrow range, the range in `weights_quant/min` and `/max` variables) and whose activations pass
through it too (`act_quant/min`, `/max`, full range), the input included; the second conv's
BatchNorm is folded into its kernel and bias before the weights are quantized, as
contrib.quantize's fold_batch_norms rewrote it. After freezing the
ranges are constants; contrib.quantize had set each weight's range to that weight's own minimum
and maximum and each activation's to a moving average of the batches' ranges, so `rewrite`
writes those (min < 0 < max) into the frozen graph in place of the randomised values.
"""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

v1 = tf.compat.v1


def _quant_vars(scope):
    with v1.variable_scope(scope):
        return v1.get_variable("min", ()), v1.get_variable("max", ())


def _fake_quant(x, scope, narrow_range=False):
    low, high = _quant_vars(scope)
    return tf.quantization.fake_quant_with_min_max_vars(
        x, low, high, num_bits=8, narrow_range=narrow_range
    )


def _layer(x, name, shape, conv):
    with v1.variable_scope(name):
        w = v1.get_variable("weights", shape)
        b = v1.get_variable("biases", shape[-1:])
        w = _fake_quant(w, "weights_quant", narrow_range=True)
        y = tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME") if conv else tf.matmul(x, w)
        y = tf.nn.relu(tf.nn.bias_add(y, b))
        return _fake_quant(y, "act_quant")


def _folded_layer(x, name, shape):
    """A conv whose BatchNorm contrib.quantize folded into it before quantizing the weights:
    the kernel times gamma * rsqrt(variance + eps), the bias beta - mean * that scale."""
    with v1.variable_scope(name):
        w = v1.get_variable("weights", shape)
        with v1.variable_scope("BatchNorm"):
            channels = shape[-1:]
            gamma, beta = v1.get_variable("gamma", channels), v1.get_variable("beta", channels)
            mean = v1.get_variable("moving_mean", channels)
            variance = v1.get_variable("moving_variance", channels)
        with tf.name_scope("BatchNorm_Fold"):
            scale = gamma * tf.math.rsqrt(variance + 0.001)
            w = tf.multiply(w, scale, name="mul_fold")
            bias = tf.subtract(beta, mean * scale, name="bias")
        w = _fake_quant(w, "weights_quant", narrow_range=True)
        y = tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME")
        y = tf.nn.relu(tf.add(y, bias, name="add_fold"))
        return _fake_quant(y, "act_quant")


def build():
    images = v1.placeholder(tf.float32, (None, 28, 28, 1), name="input")
    x = _fake_quant(images, "input_quant")
    x = _layer(x, "conv1", (5, 5, 1, 8), conv=True)
    x = tf.nn.max_pool2d(x, 2, 2, "VALID")
    x = _folded_layer(x, "conv2", (5, 5, 8, 16))
    x = tf.nn.max_pool2d(x, 2, 2, "VALID")
    x = tf.reshape(x, [-1, 7 * 7 * 16])
    x = _layer(x, "fc1", (7 * 7 * 16, 32), conv=False)
    with v1.variable_scope("logits"):
        w = _fake_quant(v1.get_variable("weights", (32, 10)), "weights_quant", narrow_range=True)
        b = v1.get_variable("biases", (10,))
        logits = _fake_quant(tf.nn.bias_add(tf.matmul(x, w), b), "act_quant")
    probabilities = tf.nn.softmax(logits, name="probabilities")
    return ["input:0"], [probabilities.name]


def feeds(rng):
    return [rng.uniform(0, 1, (5, 28, 28, 1)).astype(np.float32)]


# Activation ranges, as the moving averages of training would have left them.
_ACTIVATION_RANGES = {
    "input_quant": (-0.05, 1.02),
    "conv1/act_quant": (-0.31, 2.7),
    "conv2/act_quant": (-0.17, 3.9),
    "fc1/act_quant": (-0.43, 5.3),
    "logits/act_quant": (-7.9, 8.6),
}


def _folded_weights(consts, layer):
    """A layer's weights as they were quantized: with its BatchNorm folded in, if it has one."""

    def value(name):
        return tf.make_ndarray(consts[f"{layer}/{name}"].attr["value"].tensor)

    if f"{layer}/BatchNorm/gamma" not in consts:
        return value("weights")
    scale = value("BatchNorm/gamma") / np.sqrt(value("BatchNorm/moving_variance") + 0.001)
    return value("weights") * scale


def rewrite(graph_def):
    """Each quant range constant set as contrib.quantize trained it (see the module doc)."""
    consts = {n.name: n for n in graph_def.node if n.op == "Const"}
    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        scope, _, bound = node.name.rpartition("/")
        if node.op != "Const" or bound not in ("min", "max") or not scope.endswith("_quant"):
            continue
        if scope.endswith("weights_quant"):
            weights = _folded_weights(consts, scope.rsplit("/", 1)[0])
            value = weights.min() if bound == "min" else weights.max()
        else:
            value = _ACTIVATION_RANGES[scope][bound == "max"]
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(value)))
    return out
