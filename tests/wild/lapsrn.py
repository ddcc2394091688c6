"""LapSRN (Lai et al., 2017) as TF1 ports wrote it: two pyramid levels, each a leaky-ReLU feature
branch upsampled by tf.nn.conv2d_transpose and an image branch upsampled the same way, the
transposed convolutions' output_shape built from tf.shape of their input. The images come from
a tf.data iterator (initializable, fed file crops) whose element shape is unknown."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
DEPTH = 3


def variable(name, shape):
    return v1.get_variable(name, shape)


def conv(x, depth, name, channels=None):
    with v1.variable_scope(name):
        w = variable("w", (3, 3, channels or x.shape[-1], depth))
        return tf.nn.leaky_relu(
            tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME") + variable("b", (depth,)), 0.2
        )


def upsample(x, channels, name, in_channels):
    """x2 with a 4x4 transposed convolution; the output shape from the input's dynamic shape."""
    with v1.variable_scope(name):
        w = variable("w", (4, 4, channels, in_channels))
        shape = tf.shape(x)
        output_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, channels])
        return tf.nn.conv2d_transpose(x, w, output_shape, [1, 2, 2, 1], "SAME")


def build():
    crops = v1.placeholder(tf.float32, name="crops")
    dataset = v1.data.Dataset.from_tensor_slices(crops).batch(4)
    iterator = v1.data.make_initializable_iterator(dataset)
    images = iterator.get_next(name="lr")
    features, image, outputs = images, images, []
    for level in (1, 2):
        with v1.variable_scope(f"level{level}"):
            for i in range(DEPTH):
                features = conv(
                    features, 32, f"conv{i + 1}", channels=1 if features is images else None
                )
            features = tf.nn.leaky_relu(upsample(features, 32, "up_features", 32), 0.2)
            residual = conv(features, 1, "residual")
            image = tf.add(upsample(image, 1, "up_image", 1), residual, name="sr")
            outputs.append(image.name)
    return [images.name], outputs


def feeds(rng):
    return [rng.uniform(size=(2, 11, 14, 1)).astype(np.float32)]
