"""FSRCNN (Dong et al., 2016) as TF1 ports wrote it: PReLU spelled out as Relu, Abs, Sub and Mul
(TF1 had no PReLU op), a shrink/map/expand body, and tf.compat.v1.layers.conv2d_transpose for the
upscaling, whose output shape the layer computes from tf.shape of its input. The input is a
Placeholder with no shape at all (`tf.placeholder(tf.float32)`), as many of them declared it."""

import numpy as np
import tensorflow as tf

from tests.zoo import _legacy_layers_alias, _V1Layers

v1 = tf.compat.v1
SCALE = 2


def prelu(x, name):
    """The TF1 idiom: max(0, x) + alpha * min(0, x), the negative part as (x - |x|) / 2."""
    with v1.variable_scope(name):
        alphas = v1.get_variable("alpha", x.shape[-1:], initializer=v1.constant_initializer(0.25))
        return tf.nn.relu(x) + alphas * (x - tf.abs(x)) * 0.5


def conv(x, depth, size, name, channels=None):
    with v1.variable_scope(name):
        w = v1.get_variable("w", (size, size, channels or x.shape[-1], depth))
        b = v1.get_variable("b", (depth,))
        return tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME"), b)


def build():
    _legacy_layers_alias()
    from tf_keras.src import legacy_tf_layers as legacy

    layers = _V1Layers(legacy)
    images = v1.placeholder(tf.float32, name="lr_images")
    h = prelu(conv(images, 56, 5, "feature", channels=1), "feature_prelu")
    h = prelu(conv(h, 12, 1, "shrink"), "shrink_prelu")
    for i in range(4):
        h = prelu(conv(h, 12, 3, f"map{i + 1}"), f"map{i + 1}_prelu")
    h = prelu(conv(h, 56, 1, "expand"), "expand_prelu")
    sr = layers.conv2d_transpose(h, 1, 9, strides=SCALE, padding="same", name="deconv")
    return [images.name], [tf.identity(sr, name="output").name]


def feeds(rng):
    return [rng.uniform(size=(3, 13, 21, 1)).astype(np.float32)]
