"""A TF1 tf.layers CNN of the kind segmentation and super-resolution code wrote: fully
convolutional (height and width free), batch norm and leaky ReLU after each conv, a strided
atrous conv written with `tf.nn.conv2d` (tf.layers refuses strides and dilations together; the
raw op takes them), `tf.layers.conv2d_transpose` upsampling whose output size TF computes
from `tf.shape(x)`; and a volumetric branch (tf.layers.conv3d + batch norm on NDHWC input)."""

import numpy as np
import tensorflow as tf

from tests.zoo import _V1Layers

v1 = tf.compat.v1


def build():
    from tf_keras.src.legacy_tf_layers import convolutional, normalization

    layers = _V1Layers(None)
    image = v1.placeholder(tf.float32, (None, None, None, 3), name="image")
    h = layers.conv2d(image, 8, 3, padding="same", use_bias=False, name="conv1")
    h = layers.batch_normalization(h, training=False, name="bn1")
    h = tf.nn.leaky_relu(h, alpha=0.2)
    with v1.variable_scope("atrous"):
        kernel = v1.get_variable("kernel", (3, 3, 8, 12))
        bias = v1.get_variable("bias", (12,))
        h = tf.nn.conv2d(h, kernel, strides=2, padding="VALID", dilations=2) + bias
    h = tf.nn.leaky_relu(h, alpha=0.1)
    h = layers.conv2d_transpose(h, 6, 3, strides=2, padding="same", name="up")
    h = layers.batch_normalization(h, training=False, name="bn_up")
    upsampled = tf.identity(tf.nn.leaky_relu(h, alpha=0.2), name="upsampled")

    volume = v1.placeholder(tf.float32, (None, 6, 8, 8, 2), name="volume")
    v = convolutional.conv3d(volume, 4, 3, padding="same", name="conv3d")
    v = normalization.batch_normalization(v, training=False, name="bn3d")
    v = tf.nn.relu(v)
    v = convolutional.conv3d(v, 6, (1, 3, 3), strides=(1, 2, 2), padding="valid", name="conv3d_1")
    pooled = tf.reduce_mean(v, axis=[1, 2, 3], name="pooled")
    return ["image:0", "volume:0"], [upsampled.name, pooled.name]


def feeds(rng):
    return [
        rng.normal(size=(3, 17, 15, 3)).astype(np.float32),
        rng.normal(size=(3, 6, 8, 8, 2)).astype(np.float32),
    ]
