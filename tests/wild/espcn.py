"""ESPCN (Shi et al., 2016) as its TF1 ports wrote it: raw tf.nn.conv2d layers with tanh, the
sub-pixel shuffle as tf.nn.depth_to_space, the luminance channel read from a tf.data one-shot
iterator whose element shape is unknown. The frozen graph's input is the iterator's output,
with no static shape: the converted model is fully convolutional and serves any image size."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
SCALE = 3


def _images():
    """Training crops of any size, as a generator feeding the dataset: unknown rank."""
    rng = np.random.default_rng(0)
    while True:
        yield rng.uniform(size=(4, 17, 17, 1)).astype(np.float32)


def build():
    dataset = tf.data.Dataset.from_generator(
        _images, output_signature=tf.TensorSpec(shape=None, dtype=tf.float32)
    )
    images = v1.data.make_one_shot_iterator(dataset).get_next(name="images")
    h = images
    for i, (size, depth) in enumerate(((5, 64), (3, 32), (3, SCALE * SCALE))):
        with v1.variable_scope(f"conv{i + 1}"):
            w = v1.get_variable("w", (size, size, h.shape[-1] if i else 1, depth))
            b = v1.get_variable("b", (depth,))
            h = tf.nn.conv2d(h, w, strides=[1, 1, 1, 1], padding="SAME") + b
            if i < 2:
                h = tf.nn.tanh(h)
    sr = tf.nn.depth_to_space(h, SCALE, name="subpixel")
    out = tf.clip_by_value(sr, 0.0, 1.0, name="output")
    return [images.name], [out.name]


def feeds(rng):
    return [rng.uniform(size=(2, 23, 31, 1)).astype(np.float32)]
