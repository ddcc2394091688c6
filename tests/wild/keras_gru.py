"""A TF1-era Keras sequence tagger: Embedding → two stacked GRU(return_sequences=True) → a
per-step Dense softmax, built in graph mode (Keras 2 on a TF1 session graph), so each GRU is
TF1's while frame over tensor arrays, every step's h gathered and transposed back."""

import numpy as np
import tensorflow as tf

CONTROL_FLOW_V1 = True
VOCABULARY = 300


def build():
    import tf_keras as keras
    from tensorflow.python import tf2

    was = tf2.enabled()
    tf2.disable()  # Keras 2 as TF 1.x ran it
    try:
        return _build(keras)
    finally:
        if was:
            tf2.enable()


def _build(keras):
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32", name="tokens"),
            keras.layers.Embedding(VOCABULARY, 16),
            keras.layers.GRU(20, return_sequences=True),
            keras.layers.GRU(12, return_sequences=True),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    return [model.input.name], [model.output.name]


def feeds(rng):
    return [rng.integers(0, VOCABULARY, (3, 9)).astype(np.int32)]
