"""An MTCNN-like first stage as its TF1 ports wrote it: an image pyramid in a `tf.while_loop`
(resize by a scale factor per step, a small fully convolutional P-Net on each scale, the best
cells of each scale's face map written as boxes into a TensorArray, concatenated afterwards)
and a greedy NMS as a second `tf.while_loop` over the fixed candidate set, reading candidates
from a TensorArray and writing each one kept (or zeros) into another. Outputs: the boxes with
their scores in score order, zeros where suppressed, and the count kept."""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
CONTROL_FLOW_V1 = True
SIZE = 48  # the detector's input image, one at a time as MTCNN runs
SCALES = (1.0, 0.7, 0.49)  # factor 0.7 from the minimum face size down to P-Net's 12 pixels
PER_SCALE = 8  # best cells kept per scale
IOU_THRESHOLD = 0.5
SCORE_THRESHOLD = 0.3


def prelu(x, name):
    alpha = v1.get_variable(f"{name}/alpha", (x.shape[-1],))
    return tf.nn.relu(x) - alpha * tf.nn.relu(-x)


def conv(x, filters, size, name):
    w = v1.get_variable(f"{name}/weights", (size, size, x.shape[-1], filters))
    b = v1.get_variable(f"{name}/biases", (filters,))
    return tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 1, 1, 1], "VALID"), b)


def pnet(image):
    """P-Net: 12x12 cells, stride 2. Its variables are created on the first call only."""
    with v1.variable_scope("pnet", reuse=v1.AUTO_REUSE):
        h = prelu(conv(image, 10, 3, "conv1"), "prelu1")
        h = tf.nn.max_pool2d(h, 2, 2, "SAME")
        h = prelu(conv(h, 16, 3, "conv2"), "prelu2")
        h = prelu(conv(h, 32, 3, "conv3"), "prelu3")
        prob = tf.nn.softmax(conv(h, 2, 1, "conv4-1"), axis=-1)
        reg = conv(h, 4, 1, "conv4-2")
    return prob, reg


def pyramid(image):
    scales = tf.constant(SCALES, tf.float32, name="scales")
    boxes = tf.TensorArray(tf.float32, size=len(SCALES), name="pyramid_boxes")

    def body(i, boxes):
        scale = tf.gather(scales, i)
        side = tf.cast(tf.math.ceil(SIZE * scale), tf.int32)
        scaled = v1.image.resize_bilinear(image, tf.stack([side, side]), half_pixel_centers=True)
        prob, reg = pnet(scaled)
        cells = (side - 1) // 2 - 4  # the face map's width: conv 3, pool 2 (SAME), conv 3, conv 3
        score = tf.reshape(prob[0, :, :, 1], [-1])
        best = tf.nn.top_k(score, PER_SCALE)
        offsets = tf.gather(tf.reshape(reg[0], [-1, 4]), best.indices)
        y = tf.cast(best.indices // cells, tf.float32)
        x = tf.cast(best.indices % cells, tf.float32)
        x1, y1 = (2.0 * x + 1.0) / scale, (2.0 * y + 1.0) / scale
        x2, y2 = (2.0 * x + 12.0) / scale, (2.0 * y + 12.0) / scale
        width, height = x2 - x1, y2 - y1
        found = tf.stack(
            [
                x1 + offsets[:, 0] * width,
                y1 + offsets[:, 1] * height,
                x2 + offsets[:, 2] * width,
                y2 + offsets[:, 3] * height,
                best.values,
            ],
            axis=1,
        )
        return i + 1, boxes.write(i, found)

    _, boxes = tf.while_loop(
        lambda i, boxes: i < len(SCALES), body, [tf.constant(0), boxes], name="pyramid"
    )
    return boxes.concat(name="candidates")


def iou(box, boxes):
    x1 = tf.maximum(box[0], boxes[:, 0])
    y1 = tf.maximum(box[1], boxes[:, 1])
    x2 = tf.minimum(box[2], boxes[:, 2])
    y2 = tf.minimum(box[3], boxes[:, 3])
    inter = tf.maximum(x2 - x1, 0.0) * tf.maximum(y2 - y1, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter + 1e-6)


def nms(candidates):
    count = PER_SCALE * len(SCALES)
    order = tf.nn.top_k(candidates[:, 4], count).indices
    ranked = tf.gather(candidates, order)
    queue = tf.TensorArray(tf.float32, size=count, name="queue").unstack(ranked)
    kept = tf.TensorArray(tf.float32, size=count, name="kept")

    def body(i, n, suppressed, kept):
        box = queue.read(i)
        alive = tf.logical_and(suppressed[i] < 0.5, box[4] > SCORE_THRESHOLD)
        overlap = tf.cast(iou(box, ranked) > IOU_THRESHOLD, tf.float32)
        suppressed = tf.where(alive, tf.maximum(suppressed, overlap), suppressed)
        kept = kept.write(i, tf.where(alive, box, tf.zeros_like(box)))
        return i + 1, n + tf.cast(alive, tf.int32), suppressed, kept

    _, n, _, kept = tf.while_loop(
        lambda i, n, suppressed, kept: i < queue.size(),
        body,
        [tf.constant(0), tf.constant(0), tf.zeros([count]), kept],
        name="nms",
    )
    return tf.identity(kept.stack(), name="boxes"), tf.identity(n, name="count")


def build():
    image = v1.placeholder(tf.float32, (1, SIZE, SIZE, 3), name="image")
    boxes, count = nms(pyramid((image - 127.5) * 0.0078125))
    return ["image:0"], [boxes.name, count.name]


def feeds(rng):
    return [rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)]
