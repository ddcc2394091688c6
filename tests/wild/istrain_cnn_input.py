"""The is_train CNN of istrain_cnn.py with `is_train` kept as a model input (named in --inputs,
fed False): the model takes a scalar bool beside the images. keep_prob is set to 1."""

import numpy as np
import tensorflow as tf

from tests.wild.istrain_cnn import network

v1 = tf.compat.v1
SETS = {"keep_prob": "1.0"}
# With is_train an input, the training branch stays in the model: its dropout draws random
# numbers (TensorFlow-only) of the shape of its input (Shape: keras.ops.shape is class 3's).
TENSORFLOW_ONLY = {"RandomUniform", "Shape"}


def build():
    images = v1.placeholder(tf.float32, (None, 28, 28, 1), name="images")
    is_train = v1.placeholder(tf.bool, (), name="is_train")
    keep_prob = v1.placeholder(tf.float32, name="keep_prob")
    out = network(images, is_train, keep_prob)
    return [images.name, is_train.name], [out.name]


def feeds(rng):
    return [rng.normal(size=(5, 28, 28, 1)).astype(np.float32), np.array(False)]
