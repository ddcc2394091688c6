"""Builders for the test zoo: real architectures, random weights, frozen to GraphDefs.

Every variable is overwritten with seeded random values before freezing (BatchNorm statistics
included, variances kept positive), so a converter that drops or swaps a parameter cannot pass a
parity test by luck: the stock initialisers would leave gamma=1, beta=0, mean=0, var=1.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

SEED = 1234

# name -> (keras.applications constructor, input shape)
APPLICATIONS = {
    "mobilenet": ("MobileNet", (224, 224, 3)),
    "mobilenetv2": ("MobileNetV2", (224, 224, 3)),
    "mobilenetv3small": ("MobileNetV3Small", (224, 224, 3)),
    "resnet50": ("ResNet50", (224, 224, 3)),
    "resnet50v2": ("ResNet50V2", (224, 224, 3)),
    "densenet121": ("DenseNet121", (224, 224, 3)),
    "inceptionv3": ("InceptionV3", (299, 299, 3)),
    "xception": ("Xception", (299, 299, 3)),
    "efficientnetb0": ("EfficientNetB0", (224, 224, 3)),
    "efficientnetv2b0": ("EfficientNetV2B0", (224, 224, 3)),
    "nasnetmobile": ("NASNetMobile", (224, 224, 3)),
    "vgg16": ("VGG16", (224, 224, 3)),
    "convnexttiny": ("ConvNeXtTiny", (224, 224, 3)),
}
TF1_GRAPHS = ("lenet", "tf1_layers_cnn")
ALL = tuple(APPLICATIONS) + TF1_GRAPHS


def randomize(values: list[np.ndarray], names: list[str], rng: np.random.Generator) -> list:
    """Seeded random replacements for a model's variables.

    Variances must stay positive and every value moderate, so deep nets neither explode nor
    collapse to zero (which would make a parity check vacuous).
    """
    out = []
    for value, name in zip(values, names):
        shape = value.shape
        lname = name.lower()
        if "variance" in lname:
            new = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in lname or lname.endswith("scale"):
            new = rng.uniform(0.5, 1.5, shape)
        elif "mean" in lname or "beta" in lname or "bias" in lname or "offset" in lname:
            new = rng.uniform(-0.2, 0.2, shape)
        elif len(shape) >= 2:
            fan_in = (
                int(np.prod(shape[:-1]))
                if len(shape) != 4 or shape[-1] != 1
                else int(np.prod(shape[:2]))
            )
            new = rng.normal(0.0, np.sqrt(1.0 / max(fan_in, 1)), shape)
        else:
            new = rng.uniform(0.5, 1.5, shape)
        out.append(new.astype(value.dtype))
    return out


def build_application(name: str):
    """A keras.applications model with seeded random weights."""
    import keras

    ctor, shape = APPLICATIONS[name]
    keras.backend.clear_session()  # auto-generated layer names restart, so builds are identical
    keras.utils.set_random_seed(SEED)
    kwargs = dict(weights=None, input_shape=shape, classifier_activation=None)
    if name == "mobilenetv3small":
        kwargs["include_preprocessing"] = True
    model = getattr(keras.applications, ctor)(**kwargs)
    rng = np.random.default_rng(SEED)
    variables = model.variables
    values = randomize([np.asarray(v) for v in variables], [v.path for v in variables], rng)
    for var, value in zip(variables, values):
        var.assign(value)
    return model


def freeze_keras(model, path: str) -> None:
    """Freeze a Keras model the way users do: concrete function, input named `input`."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="input")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    with open(path, "wb") as f:
        f.write(frozen.graph.as_graph_def().SerializeToString(deterministic=True))


def build_lenet(path: str) -> None:
    """LeNet-5 from raw tf.nn ops in a TF1 graph, frozen with graph_util."""
    import tensorflow as tf

    v1 = tf.compat.v1
    rng = np.random.default_rng(SEED)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, 28, 28, 1), name="input")

        def var(name, shape, scale):
            return v1.Variable(rng.normal(0, scale, shape).astype(np.float32), name=name)

        w1 = var("conv1/weights", (5, 5, 1, 6), 0.3)
        b1 = var("conv1/biases", (6,), 0.1)
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w1, 1, "SAME", name="conv1/Conv2D"), b1))
        h = tf.nn.max_pool2d(h, 2, 2, "VALID", name="pool1")
        w2 = var("conv2/weights", (5, 5, 6, 16), 0.1)
        b2 = var("conv2/biases", (16,), 0.1)
        h = tf.nn.relu(tf.nn.conv2d(h, w2, 1, "VALID", name="conv2/Conv2D") + b2)
        h = tf.nn.avg_pool2d(h, 2, 2, "VALID", name="pool2")
        h = tf.reshape(h, (-1, 5 * 5 * 16), name="flatten")
        w3 = var("fc1/weights", (400, 120), 0.05)
        b3 = var("fc1/biases", (120,), 0.1)
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(h, w3), b3), name="fc1/Relu")
        w4 = var("fc2/weights", (120, 84), 0.1)
        b4 = var("fc2/biases", (84,), 0.1)
        h = tf.nn.tanh(tf.matmul(h, w4) + b4, name="fc2/Tanh")
        w5 = var("logits/weights", (10, 84), 0.1)
        b5 = var("logits/biases", (10,), 0.1)
        logits = tf.nn.bias_add(tf.matmul(h, w5, transpose_b=True), b5, name="logits/BiasAdd")
        tf.nn.softmax(logits, name="probs")
        _freeze_v1(graph, ["probs"], path)


def build_tf1_layers_cnn(path: str) -> None:
    """A tf.compat.v1.layers CNN with batch norm (inference mode), frozen with graph_util."""
    import tensorflow as tf

    v1 = tf.compat.v1
    rng = np.random.default_rng(SEED)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, 32, 32, 3), name="input")
        # tf.compat.v1.layers needs Keras 2; tf_keras ships the same functions.
        from tf_keras.src import legacy_tf_layers as legacy

        layers = _V1Layers(legacy)
        h = layers.conv2d(x, 16, 3, padding="same", use_bias=False, name="conv1")
        h = layers.batch_normalization(h, training=False, name="bn1")
        h = tf.nn.relu(h)
        h = layers.conv2d(h, 32, 3, strides=2, padding="valid", activation=tf.nn.relu, name="conv2")
        h = layers.batch_normalization(h, training=False, fused=False, name="bn2")
        h = layers.max_pooling2d(h, 2, 2, name="pool")
        h = layers.conv2d_transpose(h, 8, 3, strides=2, padding="same", name="deconv")
        h = layers.separable_conv2d(h, 12, 3, padding="same", name="sep")
        h = tf.nn.relu6(h)
        h = tf.reduce_mean(h, axis=[1, 2], name="gap")
        h = layers.dense(h, 10, name="logits")
        tf.identity(h, name="output")
        variables = v1.global_variables()
        with v1.Session(graph=graph) as sess:
            values = randomize(
                [np.zeros(v.shape.as_list(), np.float32) for v in variables],
                [v.name for v in variables],
                rng,
            )
            for v, value in zip(variables, values):
                v.load(value, sess)
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["output"]
            )
        with open(path, "wb") as f:
            f.write(frozen.SerializeToString(deterministic=True))


class _V1Layers:
    """The tf.compat.v1.layers functions, gathered from tf_keras's legacy modules."""

    def __init__(self, legacy):
        from tf_keras.src.legacy_tf_layers import convolutional, core, normalization, pooling

        self.conv2d = convolutional.conv2d
        self.conv2d_transpose = convolutional.conv2d_transpose
        self.separable_conv2d = convolutional.separable_conv2d
        self.batch_normalization = normalization.batch_normalization
        self.max_pooling2d = pooling.max_pooling2d
        self.dense = core.dense


def _freeze_v1(graph, outputs: list[str], path: str) -> None:
    import tensorflow as tf

    v1 = tf.compat.v1
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), outputs)
    with open(path, "wb") as f:
        f.write(frozen.SerializeToString(deterministic=True))


def input_shape(name: str) -> tuple[int, ...]:
    if name in APPLICATIONS:
        return APPLICATIONS[name][1]
    return {"lenet": (28, 28, 1), "tf1_layers_cnn": (32, 32, 3)}[name]


def build(name: str, path: str) -> None:
    """Write the frozen GraphDef of zoo model `name` to `path`."""
    if name == "lenet":
        build_lenet(path)
    elif name == "tf1_layers_cnn":
        build_tf1_layers_cnn(path)
    else:
        freeze_keras(build_application(name), path)


if __name__ == "__main__":
    import sys

    out = sys.argv[1]
    for name in sys.argv[2:] or ALL:
        build(name, os.path.join(out, name + ".pb"))
        print(name, os.path.getsize(os.path.join(out, name + ".pb")))
