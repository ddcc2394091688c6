"""A transformer encoder block as TF1 BERT ports wrote it: every projection a `tf.tensordot`
of the (batch, seq, d) activations with a kernel variable, attention heads split by reshapes to
`tf.shape`-computed sizes, layer norm spelled out with `tf.nn.moments`, GELU through erf; the
sequence length is free, the feature size known."""

import math

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

D, HEADS, FF = 32, 4, 64


def _dense(h, units, name, activation=None):
    with v1.variable_scope(name):
        kernel = v1.get_variable("kernel", (h.shape[-1], units))
        bias = v1.get_variable("bias", (units,))
        out = tf.tensordot(h, kernel, axes=[[2], [0]]) + bias
    return activation(out) if activation else out


def _gelu(x):
    return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def _layer_norm(h, name):
    with v1.variable_scope(name):
        gamma = v1.get_variable("gamma", (D,))
        beta = v1.get_variable("beta", (D,))
        mean, variance = tf.nn.moments(h, axes=[-1], keepdims=True)
        return (h - mean) * tf.math.rsqrt(variance + 1e-12) * gamma + beta


def build():
    x = v1.placeholder(tf.float32, (None, None, D), name="features")
    batch, seq = tf.shape(x)[0], tf.shape(x)[1]
    size = D // HEADS

    def heads(t):
        return tf.transpose(tf.reshape(t, [batch, seq, HEADS, size]), [0, 2, 1, 3])

    with v1.variable_scope("encoder/attention"):
        q = heads(_dense(x, D, "query"))
        k = heads(_dense(x, D, "key"))
        v = heads(_dense(x, D, "value"))
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(size))
        probs = tf.nn.softmax(scores)
        context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [batch, seq, D])
        attended = _dense(context, D, "output")
    h = _layer_norm(x + attended, "encoder/attention_norm")
    with v1.variable_scope("encoder/ffn"):
        inner = _dense(h, FF, "intermediate", _gelu)
        out = _dense(inner, D, "output")
    y = _layer_norm(h + out, "encoder/output_norm")
    y = tf.identity(y, name="sequence")
    return ["features:0"], [y.name]


def feeds(rng):
    return [rng.normal(size=(3, 7, D)).astype(np.float32)]
