"""A TF1-era Keras sentence classifier: Embedding(mask_zero=True) → LSTM → Dense softmax over
padded sentences of any length, built in graph mode (Keras 2 on a TF1 session graph), so the
LSTM with `unroll=False` is TF1's while frame over tensor arrays: the transposed sequence
scattered into one and the padding mask into another, each step's h (the previous one where
the mask is off) written to a third and gathered after the loop, the last step sliced off."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

CONTROL_FLOW_V1 = True
VOCABULARY = 200


def build():
    import tf_keras as keras
    from tensorflow.python import tf2

    was = tf2.enabled()
    tf2.disable()  # Keras 2 as TF 1.x ran it: every step's output written, then the last sliced
    try:
        return _build(keras)
    finally:
        if was:
            tf2.enable()


def _build(keras):
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32", name="tokens"),
            keras.layers.Embedding(VOCABULARY, 16, mask_zero=True),
            keras.layers.LSTM(24),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    return [model.input.name], [model.output.name]


def feeds(rng):
    """Five sentences of 2 to 9 tokens, zero-padded at the front (pad_sequences' default)."""
    tokens = np.zeros((5, 9), np.int32)
    for row, length in enumerate((9, 2, 5, 7, 4)):
        tokens[row, 9 - length :] = rng.integers(1, VOCABULARY, length)
    return [tokens]
