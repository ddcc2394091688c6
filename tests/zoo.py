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
# name -> (tf_keras.applications constructor, input shape): Keras 2 models freeze to
# FusedBatchNormV3 and Keras 2 op names; small inputs keep CI time down
KERAS2 = {
    "k2_mobilenetv2": ("MobileNetV2", (96, 96, 3)),
    "k2_resnet50": ("ResNet50", (96, 96, 3)),
    "k2_inceptionv3": ("InceptionV3", (139, 139, 3)),
}
# name -> input shape of TF1 graphs built with tf-slim (is_training=False)
SLIM = {
    "slim_resnet_v1_50": (96, 96, 3),
    "slim_inception_v3": (139, 139, 3),
    "slim_mobilenet_v1": (128, 128, 3),
}
NCHW = {"nchw_cnn": (3, 32, 32)}
TRANSFORMER = {"transformer_encoder": (16,)}  # int32 token ids
# a Keras 2 attention block: Einsum ops with constant kernels, LayerNormalization as a
# batch-statistics FusedBatchNorm in NCHW
KERAS2_ATTENTION = {"k2_attention": (8, 16)}
ALL = (
    tuple(APPLICATIONS)
    + TF1_GRAPHS
    + tuple(KERAS2)
    + tuple(SLIM)
    + tuple(NCHW)
    + tuple(TRANSFORMER)
    + tuple(KERAS2_ATTENTION)
)


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


def build_keras2(name: str):
    """A tf_keras (Keras 2) application with seeded random weights."""
    import tf_keras

    ctor, shape = KERAS2[name]
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    model = getattr(tf_keras.applications, ctor)(
        weights=None, input_shape=shape, classifier_activation=None
    )
    rng = np.random.default_rng(SEED)
    variables = model.weights
    values = randomize([v.numpy() for v in variables], [v.name for v in variables], rng)
    for var, value in zip(variables, values):
        var.assign(value)
    return model


def build_slim(name: str, path: str) -> None:
    """A tf-slim network (is_training=False) in a TF1 graph, every variable randomised,
    frozen with graph_util; logits and softmax predictions (and Inception's aux logits) out."""
    import tensorflow as tf
    import tf_slim as slim
    from tf_slim.nets import inception_v3, resnet_utils, resnet_v1

    _legacy_layers_alias()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, *SLIM[name]), name="input")
        if name == "slim_resnet_v1_50":
            with slim.arg_scope(resnet_utils.resnet_arg_scope()):
                logits, ends = resnet_v1.resnet_v1_50(x, num_classes=10, is_training=False)
            outputs = [ends["predictions"]]
        elif name == "slim_inception_v3":
            with slim.arg_scope(inception_v3.inception_v3_arg_scope()):
                logits, ends = inception_v3.inception_v3(x, num_classes=10, is_training=False)
            outputs = [ends["Predictions"], ends["AuxLogits"]]
        else:
            logits, ends = _slim_mobilenet_v1(x, num_classes=10)
            outputs = [ends["Predictions"]]
        # the logits feed the softmax: named as an output too, so parity checks them unsquashed
        outputs.append(tf.identity(logits, name="logits"))
        _freeze_v1_randomized(graph, [t.op.name for t in outputs], path)


def _legacy_layers_alias() -> None:
    """TensorFlow's tf.layers shims (which tf-slim's batch_norm uses) import
    `tf_keras.legacy_tf_layers.*`, which tf_keras 2.21 keeps under `tf_keras.src`."""
    import importlib
    import sys

    for module in ("", ".base", ".convolutional", ".core", ".normalization", ".pooling"):
        real = importlib.import_module("tf_keras.src.legacy_tf_layers" + module)
        sys.modules.setdefault("tf_keras.legacy_tf_layers" + module, real)


# MobileNetV1's layers as in the TF-slim model zoo's mobilenet_v1.py (which tf_slim does not
# ship): (kind, stride, depth)
_MOBILENET_V1 = [("conv", 2, 32)] + [
    ("sep", s, d)
    for s, d in [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)]
    + [(1, 512)] * 5
    + [(2, 1024), (1, 1024)]
]


def _slim_mobilenet_v1(x, num_classes: int):
    """MobileNetV1 written with slim ops the way the model zoo's mobilenet_v1.py writes it:
    depthwise `separable_conv2d(num_outputs=None)` then a 1x1 `conv2d`, both with batch norm
    and ReLU6; average pool, 1x1 conv logits, spatial squeeze, softmax."""
    import tensorflow as tf
    import tf_slim as slim

    bn = {"is_training": False, "center": True, "scale": True, "epsilon": 0.001}
    with tf.compat.v1.variable_scope("MobilenetV1"):
        with slim.arg_scope(
            [slim.conv2d, slim.separable_conv2d],
            normalizer_fn=slim.batch_norm,
            normalizer_params=bn,
            activation_fn=tf.nn.relu6,
            padding="SAME",
        ):
            net = x
            for i, (kind, stride, depth) in enumerate(_MOBILENET_V1):
                if kind == "conv":
                    net = slim.conv2d(net, depth, [3, 3], stride=stride, scope=f"Conv2d_{i}")
                else:
                    net = slim.separable_conv2d(
                        net,
                        None,
                        [3, 3],
                        depth_multiplier=1,
                        stride=stride,
                        scope=f"Conv2d_{i}_depthwise",
                    )
                    net = slim.conv2d(net, depth, [1, 1], stride=1, scope=f"Conv2d_{i}_pointwise")
        with tf.compat.v1.variable_scope("Logits"):
            kernel = net.get_shape().as_list()[1:3]
            net = slim.avg_pool2d(net, kernel, padding="VALID", scope="AvgPool_1a")
            net = slim.dropout(net, keep_prob=0.999, is_training=False, scope="Dropout_1b")
            logits = slim.conv2d(
                net,
                num_classes,
                [1, 1],
                activation_fn=None,
                normalizer_fn=None,
                scope="Conv2d_1c_1x1",
            )
            logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
        predictions = slim.softmax(logits, scope="Predictions")
    return logits, {"Predictions": predictions}


def _freeze_v1_randomized(graph, outputs: list[str], path: str) -> None:
    """Set every global variable of a TF1 graph to seeded random values, then freeze."""
    import tensorflow as tf

    v1 = tf.compat.v1
    rng = np.random.default_rng(SEED)
    with graph.as_default():
        variables = v1.global_variables()
        with v1.Session(graph=graph) as sess:
            values = randomize(
                [np.zeros(v.shape.as_list(), v.dtype.as_numpy_dtype) for v in variables],
                [v.name for v in variables],
                rng,
            )
            # one run initialising every variable from its fed value (a load per variable
            # is a run each: seconds on a ResNet)
            sess.run(
                [v.initializer for v in variables],
                {v.initial_value: value for v, value in zip(variables, values)},
            )
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), outputs
            )
    with open(path, "wb") as f:
        f.write(frozen.SerializeToString(deterministic=True))


def _nchw_net(x, data_format: str):
    """A small conv net in either layout, same variables: conv+bias, fused batch norm, ReLU,
    max and average pooling, a concat along channels, a pad, a separable conv, scalar
    arithmetic, then dense heads on global average pooling (keepdims, squeezed) and on a
    feature map flattened (with a constant and with a computed batch size). Returns (logits,
    feature map)."""
    import tensorflow as tf
    from tf_keras.src.legacy_tf_layers import convolutional, core, normalization, pooling

    channels_first = data_format == "channels_first"
    axis = 1 if channels_first else 3
    fmt = "NCHW" if channels_first else "NHWC"
    h = convolutional.conv2d(x, 16, 3, padding="same", data_format=data_format, name="conv1")
    h = normalization.batch_normalization(h, axis=axis, training=False, fused=True, name="bn1")
    h = tf.nn.relu(h)
    a = pooling.max_pooling2d(h, 2, 2, data_format=data_format, name="maxpool")
    b = pooling.average_pooling2d(h, 2, 2, data_format=data_format, name="avgpool")
    b = convolutional.conv2d(b, 8, 1, data_format=data_format, activation=tf.nn.relu, name="conv2")
    h = tf.concat([a, b], axis=axis, name="concat")
    pads = [[0, 0], [0, 0], [1, 1], [1, 1]] if channels_first else [[0, 0], [1, 1], [1, 1], [0, 0]]
    h = tf.pad(h, pads, name="pad")
    h = convolutional.separable_conv2d(h, 24, 3, data_format=data_format, name="sep")
    h = h * 0.5 + 0.25
    w = tf.compat.v1.get_variable("conv3/kernel", (3, 3, 24, 32))
    bias = tf.compat.v1.get_variable("conv3/bias", (32,))
    h = tf.nn.conv2d(h, w, 1, "SAME", data_format=fmt, name="conv3/Conv2D")
    features = tf.nn.relu(tf.nn.bias_add(h, bias, data_format=fmt))
    spatial = [2, 3] if channels_first else [1, 2]
    pooled = tf.reduce_mean(features, axis=spatial, keepdims=True, name="gap")
    logits = core.dense(tf.squeeze(pooled, spatial, name="squeeze"), 10, name="logits")
    small = pooling.max_pooling2d(features, 4, 4, data_format=data_format, name="pool4")
    if not channels_first:  # the twin flattens in the graph's (NCHW) order
        small = tf.transpose(small, (0, 3, 1, 2))
    flat = tf.reshape(small, (-1, 32 * 4 * 4), name="flatten")
    logits = logits + core.dense(flat, 10, name="flat_logits")
    # the same with the batch size read from the graph, as TF1 code often writes it
    flat = tf.reshape(small, (tf.shape(small)[0], 32 * 4 * 4), name="flatten_dynamic")
    logits = logits + core.dense(flat, 10, name="dynamic_logits")
    return tf.identity(logits, name="output"), tf.identity(features, name="features")


def build_nchw(path: str, data_format: str = "channels_first") -> None:
    """The NCHW conv net, frozen without running it (TF's CPU kernels refuse NCHW convolution
    and pooling). `data_format="channels_last"` builds its NHWC twin with the same variable
    values, which is what the parity test runs as the reference."""
    import tensorflow as tf

    shape = NCHW["nchw_cnn"]
    if data_format == "channels_last":
        shape = (shape[1], shape[2], shape[0])
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, *shape), name="input")
        logits, features = _nchw_net(x, data_format)
        _freeze_v1_randomized(graph, [logits.op.name, features.op.name], path)


def build_keras2_attention(path: str) -> None:
    """tf_keras MultiHeadAttention, a residual and LayerNormalization, frozen like an app."""
    import tf_keras

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    x = tf_keras.Input(KERAS2_ATTENTION["k2_attention"], name="input")
    attn = tf_keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x)
    y = tf_keras.layers.LayerNormalization(name="norm")(
        tf_keras.layers.Add(name="residual")([x, attn])
    )
    model = tf_keras.Model(x, y, name="block")
    rng = np.random.default_rng(SEED)
    values = randomize([v.numpy() for v in model.weights], [v.name for v in model.weights], rng)
    for var, value in zip(model.weights, values):
        var.assign(value)
    freeze_keras(model, path)


def build_transformer(path: str) -> None:
    """A one-block Keras 3 transformer encoder on int32 tokens: token and position embeddings,
    MultiHeadAttention, LayerNormalization, a GELU feed-forward; the sequence and a pooled
    classifier out."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    (length,) = TRANSFORMER["transformer_encoder"]
    vocab, dim, heads = 100, 32, 4
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    tokens = keras.Input((length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab, dim, name="token_embedding")(tokens)
    positions = keras.layers.Embedding(length, dim, name="position_embedding")(
        keras.ops.arange(length)
    )
    x = x + positions
    attn = keras.layers.MultiHeadAttention(heads, dim // heads, name="attention")(x, x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="attention_norm")(x + attn)
    ff = keras.layers.Dense(4 * dim, activation="gelu", name="ffn_in")(x)
    ff = keras.layers.Dense(dim, name="ffn_out")(ff)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ffn_norm")(x + ff)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    logits = keras.layers.Dense(4, name="classifier")(pooled)
    model = keras.Model(tokens, [x, logits], name="encoder")
    rng = np.random.default_rng(SEED)
    variables = model.variables
    values = randomize([np.asarray(v) for v in variables], [v.path for v in variables], rng)
    for var, value in zip(variables, values):
        var.assign(value)
    spec = tf.TensorSpec((None, length), tf.int32, name="tokens")
    fn = tf.function(lambda t: model(t, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    with open(path, "wb") as f:
        f.write(frozen.graph.as_graph_def().SerializeToString(deterministic=True))


def input_shape(name: str) -> tuple[int, ...]:
    if name in APPLICATIONS:
        return APPLICATIONS[name][1]
    if name in KERAS2:
        return KERAS2[name][1]
    for table in (SLIM, NCHW, TRANSFORMER, KERAS2_ATTENTION):
        if name in table:
            return table[name]
    return {"lenet": (28, 28, 1), "tf1_layers_cnn": (32, 32, 3)}[name]


def reference_path(path: str) -> str:
    """Where an NCHW model's NHWC twin (its parity reference) is written."""
    return path[: -len(".pb")] + ".nhwc.pb"


def build(name: str, path: str) -> None:
    """Write the frozen GraphDef of zoo model `name` to `path`."""
    if name == "lenet":
        build_lenet(path)
    elif name == "tf1_layers_cnn":
        build_tf1_layers_cnn(path)
    elif name in KERAS2:
        freeze_keras(build_keras2(name), path)
    elif name in SLIM:
        build_slim(name, path)
    elif name in NCHW:
        build_nchw(path)
        build_nchw(reference_path(path), "channels_last")
    elif name in TRANSFORMER:
        build_transformer(path)
    elif name in KERAS2_ATTENTION:
        build_keras2_attention(path)
    else:
        freeze_keras(build_application(name), path)


if __name__ == "__main__":
    import sys

    out = sys.argv[1]
    for name in sys.argv[2:] or ALL:
        build(name, os.path.join(out, name + ".pb"))
        print(name, os.path.getsize(os.path.join(out, name + ".pb")))
