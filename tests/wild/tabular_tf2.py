"""A tabular classifier as TF2 code wrote it: a custom Keras layer whose call is a tf.function
(standardising the numeric columns through a tf.function helper, squashing the rest), Dense
layers after; frozen with the calls into its function library left in place."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

NUMERIC = 17


@tf.function
def compress(x):
    return tf.math.log1p(tf.abs(x))


class FeaturePreprocess(keras.layers.Layer):
    def build(self, shape):
        self.mean = self.add_weight("mean", (NUMERIC,))
        self.std = self.add_weight("std", (NUMERIC,))

    @tf.function
    def call(self, x):
        numeric = (compress(x[:, :NUMERIC]) - self.mean) / (tf.abs(self.std) + 1e-3)
        return tf.concat([numeric, tf.tanh(x[:, NUMERIC:] * 0.5)], axis=-1)


def build():
    x = keras.Input((24,), name="features")
    h = FeaturePreprocess(name="feature_preprocess")(x)
    h = keras.layers.Dense(32, activation="relu", name="hidden")(h)
    out = keras.layers.Dense(3, activation="softmax", name="probabilities")(h)
    model = keras.Model(x, out, name="tabular_classifier")
    return [model.input.name], [model.output.name]


def feeds(rng):
    return [rng.normal(size=(5, 24)).astype(np.float32)]
