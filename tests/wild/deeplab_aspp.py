"""A DeepLab-style segmentation head as TF1 research code wrote it: any image size (the
placeholder's height and width are unknown, so `tf.nn.atrous_conv2d` computes its
SpaceToBatchND paddings and BatchToSpaceND crops from `tf.shape` at run time), a strided conv
stem with BatchNorm, and atrous spatial pyramid pooling: a 1x1 branch and atrous 3x3 branches
at rates 2 and 3, concatenated, projected and classified per pixel.
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

CLASSES = 5


def _weights(name, shape):
    with v1.variable_scope(name):
        return v1.get_variable("weights", shape)


def _batch_norm_relu(x, name):
    with v1.variable_scope(name + "/BatchNorm"):
        channels = [x.shape[-1]]
        y, _, _ = v1.nn.fused_batch_norm(
            x,
            v1.get_variable("gamma", channels),
            v1.get_variable("beta", channels),
            v1.get_variable("moving_mean", channels),
            v1.get_variable("moving_variance", channels),
            epsilon=1e-5,
            is_training=False,
        )
    return tf.nn.relu(y)


def build():
    images = v1.placeholder(tf.float32, (None, None, None, 3), name="ImageTensor")
    x = tf.nn.conv2d(images, _weights("stem", (3, 3, 3, 16)), [1, 2, 2, 1], "SAME")
    x = _batch_norm_relu(x, "stem")
    branches = [
        _batch_norm_relu(tf.nn.conv2d(x, _weights("aspp0", (1, 1, 16, 8)), 1, "SAME"), "aspp0")
    ]
    for i, rate in enumerate((2, 3), start=1):
        y = tf.nn.atrous_conv2d(x, _weights(f"aspp{i}", (3, 3, 16, 8)), rate, "SAME")
        branches.append(_batch_norm_relu(y, f"aspp{i}"))
    x = tf.concat(branches, 3, name="concat")
    x = _batch_norm_relu(
        tf.nn.conv2d(x, _weights("concat_projection", (1, 1, 24, 16)), 1, "SAME"),
        "concat_projection",
    )
    with v1.variable_scope("logits"):
        logits = tf.nn.conv2d(x, v1.get_variable("weights", (1, 1, 16, CLASSES)), 1, "VALID")
        logits = tf.nn.bias_add(logits, v1.get_variable("biases", (CLASSES,)), name="semantic")
    return ["ImageTensor:0"], [logits.name]


def feeds(rng):
    return [rng.uniform(-1, 1, (2, 22, 30, 3)).astype(np.float32)]
