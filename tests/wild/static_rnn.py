"""A contrib-era stacked RNN classifier: `static_rnn` over a MultiRNNCell of an LSTMCell and a
GRUCell, each wrapped in a DropoutWrapper whose `output_keep_prob` is a `keep_prob`
placeholder, the last step's output into a softmax layer. The cells are written as
tf.contrib.rnn computed them (TF 2 no longer ships them): LSTMCell as one kernel over
[x, h] split into i, j, f, o with forget_bias added to f, GRUCell as gates r, u over [x, h]
and a candidate over [x, r * h]; static_rnn as the Python loop over the unstacked steps,
sharing the variables. Converted with keep_prob set to 1.0, the inference value."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

STEPS, FEATURES, LSTM_UNITS, GRU_UNITS, CLASSES = 7, 6, 16, 12, 3
SETS = {"keep_prob": "1.0"}


def build():
    x = v1.placeholder(tf.float32, (None, STEPS, FEATURES), name="x")
    keep_prob = v1.placeholder(tf.float32, (), name="keep_prob")
    cells = [_dropout(_lstm_cell(LSTM_UNITS), keep_prob), _dropout(_gru_cell(GRU_UNITS), keep_prob)]
    outputs, _ = _static_rnn(_multi_rnn_cell(cells), tf.unstack(x, STEPS, 1))
    with v1.variable_scope("softmax"):
        w = v1.get_variable("weights", (GRU_UNITS, CLASSES))
        b = v1.get_variable("biases", (CLASSES,))
        probabilities = tf.nn.softmax(tf.matmul(outputs[-1], w) + b, name="probabilities")
    return ["x:0", "keep_prob:0"], [probabilities.name]


def feeds(rng):
    return [rng.normal(size=(5, STEPS, FEATURES)).astype(np.float32), np.float32(1.0)]


def _lstm_cell(units, forget_bias=1.0):
    """contrib's LSTMCell (no peepholes, no projection): state (c, h)."""

    def call(inputs, state):
        c, h = state
        with v1.variable_scope("lstm_cell"):
            kernel = v1.get_variable("kernel", (inputs.shape[-1] + units, 4 * units))
            bias = v1.get_variable("bias", (4 * units,))
        z = tf.nn.bias_add(tf.matmul(tf.concat([inputs, h], 1), kernel), bias)
        i, j, f, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f + forget_bias) * c + tf.sigmoid(i) * tf.tanh(j)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, (c, h)

    return call, lambda batch: (tf.zeros(tf.stack([batch, units])),) * 2


def _gru_cell(units):
    """contrib's GRUCell: state h."""

    def call(inputs, h):
        with v1.variable_scope("gru_cell"):
            with v1.variable_scope("gates"):
                gate_kernel = v1.get_variable("kernel", (inputs.shape[-1] + units, 2 * units))
                gate_bias = v1.get_variable("bias", (2 * units,))
            with v1.variable_scope("candidate"):
                kernel = v1.get_variable("kernel", (inputs.shape[-1] + units, units))
                bias = v1.get_variable("bias", (units,))
        gates = tf.sigmoid(
            tf.nn.bias_add(tf.matmul(tf.concat([inputs, h], 1), gate_kernel), gate_bias)
        )
        r, u = tf.split(gates, 2, axis=1)
        candidate = tf.nn.bias_add(tf.matmul(tf.concat([inputs, r * h], 1), kernel), bias)
        h = u * h + (1 - u) * tf.tanh(candidate)
        return h, h

    return call, lambda batch: tf.zeros(tf.stack([batch, units]))


def _dropout(cell, keep_prob):
    """DropoutWrapper(cell, output_keep_prob=keep_prob): the output dropped, the state not."""
    call, zero_state = cell

    def dropped(inputs, state):
        output, state = call(inputs, state)
        return v1.nn.dropout(output, keep_prob=keep_prob), state

    return dropped, zero_state


def _multi_rnn_cell(cells):
    def call(inputs, states):
        new_states = []
        for k, (cell, _) in enumerate(cells):
            with v1.variable_scope(f"cell_{k}"):
                inputs, state = cell(inputs, states[k])
            new_states.append(state)
        return inputs, tuple(new_states)

    return call, lambda batch: tuple(zero_state(batch) for _, zero_state in cells)


def _static_rnn(cell, inputs):
    """static_rnn: the cell once per step in scope rnn/multi_rnn_cell, variables reused."""
    call, zero_state = cell
    outputs = []
    with v1.variable_scope("rnn") as scope:
        state = zero_state(tf.shape(inputs[0])[0])
        for t, x_t in enumerate(inputs):
            if t > 0:
                scope.reuse_variables()
            with v1.variable_scope("multi_rnn_cell"):
                output, state = call(x_t, state)
            outputs.append(output)
    return outputs, state
