"""A tabular classifier as TF1 tutorials wrote it: raw tf.matmul layers, a softmax head."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1


def build():
    x = v1.placeholder(tf.float32, (None, 12), name="features")
    h = x
    for i, width in enumerate((32, 16)):
        with v1.variable_scope(f"hidden{i + 1}"):
            w = v1.get_variable("weights", (h.shape[-1], width))
            b = v1.get_variable("biases", (width,))
            h = tf.nn.relu(tf.matmul(h, w) + b)
    with v1.variable_scope("logits"):
        w = v1.get_variable("weights", (16, 3))
        b = v1.get_variable("biases", (3,))
        logits = tf.matmul(h, w) + b
    probabilities = tf.nn.softmax(logits, name="probabilities")
    return ["features:0"], [probabilities.name]


def feeds(rng):
    return [rng.normal(size=(5, 12)).astype(np.float32)]
