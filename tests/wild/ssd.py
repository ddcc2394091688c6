"""An SSD-style detector body as TF1 detection code wrote it, with 8-bit weights.

A small conv backbone with BatchNorm, an atrous (dilated) conv as `tf.nn.atrous_conv2d` wrote
it (SpaceToBatchND -> Conv2D -> BatchToSpaceND), L2-normalised features with a learned
per-channel scale (SSD's conv4_3 norm), and two heads per feature map (class scores, box
offsets) reshaped to [batch, anchors, k] and concatenated as SSD did. After freezing, every
large float weight is stored as quint8 with its range and read through `Dequantize` (mode
MIN_FIRST), as TF's `quantize_weights` graph transform left it: the reference is TensorFlow
running that rewritten graph.
"""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, graph_pb2, node_def_pb2, types_pb2

v1 = tf.compat.v1

CLASSES = 4
ANCHORS = 3
MINIMUM_SIZE = 512  # quantize_weights' minimum_size: smaller constants stay float


def _conv(x, name, filters, size=3, rate=1):
    with v1.variable_scope(name):
        w = v1.get_variable("weights", (size, size, x.shape[-1], filters))
        if rate > 1:
            y = tf.nn.atrous_conv2d(x, w, rate, "SAME")
        else:
            y = tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME")
        return y


def _conv_bn_relu(x, name, filters):
    y = _conv(x, name, filters)
    with v1.variable_scope(name + "/BatchNorm"):
        channels = [filters]
        gamma = v1.get_variable("gamma", channels)
        beta = v1.get_variable("beta", channels)
        mean = v1.get_variable("moving_mean", channels)
        variance = v1.get_variable("moving_variance", channels)
        y, _, _ = v1.nn.fused_batch_norm(
            y, gamma, beta, mean, variance, epsilon=1e-3, is_training=False
        )
    return tf.nn.relu(y)


def _heads(x, name):
    """Class scores and box offsets of one feature map, as [batch, anchors, k] (the feature
    map's size is static, as SSD's fixed input made it)."""
    locations = x.shape[1] * x.shape[2] * ANCHORS
    outputs = []
    for head, k in (("ClassPredictor", CLASSES), ("BoxEncodingPredictor", 4)):
        scope = f"{name}/{head}"
        y = _conv(x, scope, ANCHORS * k)
        with v1.variable_scope(scope):
            y = tf.nn.bias_add(y, v1.get_variable("biases", (ANCHORS * k,)))
        outputs.append(tf.reshape(y, [-1, locations, k]))
    return outputs


def build():
    images = v1.placeholder(tf.float32, (None, 32, 32, 3), name="image_tensor")
    x = _conv_bn_relu(images, "FeatureExtractor/conv1", 16)
    x = tf.nn.max_pool2d(x, 2, 2, "SAME")
    x = _conv_bn_relu(x, "FeatureExtractor/conv2", 32)
    x = tf.nn.max_pool2d(x, 2, 2, "SAME")
    conv4 = _conv_bn_relu(x, "FeatureExtractor/conv4", 32)
    with v1.variable_scope("FeatureExtractor/conv4_norm"):
        scale = v1.get_variable("scale", (32,))
        normed = tf.nn.l2_normalize(conv4, axis=3) * scale
    x = tf.nn.max_pool2d(conv4, 2, 2, "SAME")
    with v1.variable_scope("FeatureExtractor/fc6"):
        fc6 = _conv(x, "atrous", 48, rate=2)
        fc6 = tf.nn.relu(tf.nn.bias_add(fc6, v1.get_variable("biases", (48,))))
    fc7 = tf.nn.relu(_conv(fc6, "FeatureExtractor/fc7", 48, size=1))
    scores, boxes = [], []
    for i, feature in enumerate((normed, fc7)):
        s, b = _heads(feature, f"BoxPredictor_{i}")
        scores.append(s)
        boxes.append(b)
    class_scores = tf.nn.softmax(tf.concat(scores, 1), name="class_predictions")
    box_encodings = tf.identity(tf.concat(boxes, 1), name="box_encodings")
    return ["image_tensor:0"], [class_scores.name, box_encodings.name]


def feeds(rng):
    return [rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)]


def _quantize_min_first(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """quint8 codes of `values` in [low, high], as quantize_weights' FloatToQuantized does:
    round(v * s) - round(low * s) with s = 256 / ((high - low) * 256 / 255), clamped."""
    scale = 256.0 / ((float(high) - float(low)) * (256.0 / 255.0))
    codes = np.round(values.astype(np.float64) * scale) - np.round(float(low) * scale)
    return np.clip(codes, 0, 255).astype(np.uint8)


def _attr_type(enum):
    return attr_value_pb2.AttrValue(type=enum)


def rewrite(graph_def):
    """Every float Const of at least MINIMUM_SIZE elements becomes a quint8 Const, its range
    (two float Consts) and a Dequantize of mode MIN_FIRST under the Const's own name."""
    out = graph_pb2.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        value = (
            tf.make_ndarray(node.attr["value"].tensor)
            if node.op == "Const" and node.attr["dtype"].type == types_pb2.DT_FLOAT
            else None
        )
        if value is None or value.size < MINIMUM_SIZE:
            out.node.add().CopyFrom(node)
            continue
        low = min(float(value.min()), 0.0)
        high = max(float(value.max()), 0.0)
        codes = _quantize_min_first(value, low, high)
        quantized = out.node.add(name=node.name + "_quantized_const", op="Const")
        quantized.attr["dtype"].CopyFrom(_attr_type(types_pb2.DT_QUINT8))
        tensor = quantized.attr["value"].tensor
        tensor.dtype = types_pb2.DT_QUINT8
        tensor.tensor_shape.CopyFrom(node.attr["value"].tensor.tensor_shape)
        tensor.tensor_content = codes.tobytes()
        for suffix, bound in (("min", low), ("max", high)):
            const = out.node.add(name=f"{node.name}_quantized_{suffix}", op="Const")
            const.attr["dtype"].CopyFrom(_attr_type(types_pb2.DT_FLOAT))
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(bound)))
        dequantize = node_def_pb2.NodeDef(name=node.name, op="Dequantize")
        dequantize.input.extend(
            [quantized.name, f"{node.name}_quantized_min", f"{node.name}_quantized_max"]
        )
        dequantize.attr["T"].CopyFrom(_attr_type(types_pb2.DT_QUINT8))
        dequantize.attr["dtype"].CopyFrom(_attr_type(types_pb2.DT_FLOAT))
        dequantize.attr["mode"].CopyFrom(attr_value_pb2.AttrValue(s=b"MIN_FIRST"))
        out.node.add().CopyFrom(dequantize)
    return out
