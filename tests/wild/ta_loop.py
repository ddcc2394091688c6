"""A running transform over a sequence, as TF1 code wrote it before tf.scan: the input unstacked
into one TensorArray, a `tf.while_loop` reading a step from it and writing the updated state into
another, both stacked and transposed back to batch-major afterwards. Not a recurrent cell
(a leaky integrator of a tanh layer), so it stays a loop."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
CONTROL_FLOW_V1 = True
STEPS, FEATURES, UNITS = 7, 3, 5


def build():
    x = v1.placeholder(tf.float32, (None, STEPS, FEATURES), name="sequence")
    with v1.variable_scope("transform"):
        w = v1.get_variable("kernel", (FEATURES, UNITS))
        u = v1.get_variable("recurrent", (UNITS, UNITS))
        b = v1.get_variable("bias", (UNITS,))
    steps = tf.TensorArray(tf.float32, size=STEPS, name="steps").unstack(tf.transpose(x, [1, 0, 2]))
    states = tf.TensorArray(tf.float32, size=STEPS, name="states")
    h0 = tf.zeros_like(x[:, 0, :1]) + tf.zeros((UNITS,))

    def body(t, h, out):
        h = 0.8 * h + tf.tanh(tf.matmul(steps.read(t), w) + tf.matmul(h, u) * 0.5 + b)
        return t + 1, h, out.write(t, h)

    _, last, states = tf.while_loop(
        lambda t, h, out: t < steps.size(), body, [tf.constant(0), h0, states], name="scan"
    )
    stacked = tf.transpose(states.stack(), [1, 0, 2], name="states_batch_major")
    return ["sequence:0"], [stacked.name, tf.identity(last, name="last").name]


def feeds(rng):
    return [rng.normal(size=(4, STEPS, FEATURES)).astype(np.float32)]
