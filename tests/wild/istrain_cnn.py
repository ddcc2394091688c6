"""A TF1 tutorial CNN with its training switches left in the graph: an `is_train` bool
placeholder driving tf.compat.v1.layers.batch_normalization and dropout, and a `keep_prob`
placeholder (declared without a shape, as the tutorials did) for tf.nn.dropout before the
logits. Converted with both set (`--set is_train=false --set keep_prob=1.0`): the training
branches resolve statically and the model is plain layers."""

import numpy as np
import tensorflow as tf

from tests.zoo import _legacy_layers_alias, _V1Layers

v1 = tf.compat.v1
SETS = {"is_train": "false", "keep_prob": "1.0"}


def network(images, is_train, keep_prob):
    _legacy_layers_alias()
    from tf_keras.src import legacy_tf_layers as legacy
    from tf_keras.src.legacy_tf_layers import core

    layers = _V1Layers(legacy)
    h = images
    for i, depth in enumerate((16, 32)):
        h = layers.conv2d(h, depth, 3, padding="same", use_bias=False, name=f"conv{i + 1}")
        h = layers.batch_normalization(h, training=is_train, name=f"bn{i + 1}")
        h = tf.nn.relu(h)
        h = layers.max_pooling2d(h, 2, 2, name=f"pool{i + 1}")
        h = core.dropout(h, rate=0.25, training=is_train, name=f"drop{i + 1}")
    h = tf.reshape(h, [-1, 7 * 7 * 32])
    h = layers.dense(h, 64, activation=tf.nn.relu, name="fc1")
    h = v1.nn.dropout(h, keep_prob=keep_prob)
    logits = layers.dense(h, 10, name="logits")
    return tf.nn.softmax(logits, name="probabilities")


def build():
    images = v1.placeholder(tf.float32, (None, 28, 28, 1), name="images")
    is_train = v1.placeholder(tf.bool, (), name="is_train")
    keep_prob = v1.placeholder(tf.float32, name="keep_prob")
    out = network(images, is_train, keep_prob)
    return [images.name, is_train.name, keep_prob.name], [out.name]


def feeds(rng):
    return [rng.normal(size=(3, 28, 28, 1)).astype(np.float32), np.array(False), np.array(1.0)]
