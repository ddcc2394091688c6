"""The arithmetic behind two layer patterns that rewrite what Keras refuses, checked against
TensorFlow's definitions written out in numpy, over every small size. No TensorFlow.

* A Conv2D with strides and dilations both above 1 is a dilated conv at stride 1 followed by
  a strided slice (patterns/conv._stride_of_dilated picks the slice).
* A Conv2DBackpropInput's output size, a constant or computed from its input's, is Keras's
  own or an output_padding (patterns/conv.transpose_kwargs): Keras's size formula must give
  back the graph's size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from codegen.graph import Node
from codegen.names import ScopeNamer
from codegen.patterns import Matcher, load_all
from codegen.patterns.conv import _stride_of_dilated, transpose_kwargs
from codegen.pipeline import load, prepare
from graphs import FLOAT, INT32, Builder


def _conv1d(x, w, stride, dilation, padding):
    """TF's convolution along one axis: SAME pads (out - 1) * s + reach - size in total, the
    smaller half first; VALID pads nothing."""
    reach = (len(w) - 1) * dilation + 1
    if padding == "SAME":
        out = math.ceil(len(x) / stride)
        total = max((out - 1) * stride + reach - len(x), 0)
        x = np.concatenate([np.zeros(total // 2), x, np.zeros(total - total // 2)])
    else:
        out = (len(x) - reach) // stride + 1
    return np.array(
        [sum(w[j] * x[i * stride + j * dilation] for j in range(len(w))) for i in range(out)]
    )


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_strided_dilated_conv_is_dilated_conv_then_slice(padding):
    rng = np.random.default_rng(0)
    checked = 0
    for size in range(1, 24):
        for k in range(1, 5):
            for s in (2, 3, 4):
                for d in (2, 3):
                    if padding == "VALID" and size < (k - 1) * d + 1:
                        continue
                    node = Node(
                        "conv",
                        "Conv2D",
                        ["x:0", "w:0"],
                        {"strides": [1, s, 1, 1], "dilations": [1, d, 1, 1], "padding": padding},
                    )
                    index = _stride_of_dilated(node, (k, 1), (None, size, 1, 1))
                    x, w = rng.normal(size=size), rng.normal(size=k)
                    want = _conv1d(x, w, s, d, padding)
                    got = _conv1d(x, w, 1, d, padding)[index[0]]
                    np.testing.assert_allclose(got, want, err_msg=f"{size=} {k=} {s=} {d=}")
                    checked += 1
    assert checked > 300


def test_strided_dilated_valid_conv_needs_no_size():
    node = Node(
        "conv", "Conv2D", ["x:0", "w:0"], {"strides": [1, 2, 3, 1], "dilations": [1, 2, 2, 1]}
    )
    node.attrs["padding"] = "VALID"
    assert _stride_of_dilated(node, (3, 3), (None, None, None, 4)) == (
        slice(None, None, 2),
        slice(None, None, 3),
    )
    node.attrs["padding"] = "SAME"  # TF's padding depends on the size
    assert _stride_of_dilated(node, (3, 3), (None, None, None, 4)) is None


def _keras_transposed_size(size, k, s, same, output_padding):
    """keras.src.utils.conv_utils.deconv_output_length, dilation 1."""
    if output_padding is None:
        return size * s if same else size * s + max(k - s, 0)
    pad = k // 2 if same else 0
    return (size - 1) * s + k - 2 * pad + output_padding


def _tf_accepts(size, k, s, same, out):
    """The output sizes a Conv2DBackpropInput allows: those whose forward conv gives `size`."""
    forward = math.ceil(out / s) if same else (out - k) // s + 1
    return out >= (1 if same else k) and forward == size


def _transposed(tmp_path, size, k, s, same, out, computed):
    """transpose_kwargs on a graph whose output size is a constant, or (`computed`) the
    input's size times s plus a constant (the input's height then unknown)."""
    b = Builder()
    x = b.placeholder("x", [-1, -1 if computed else size, 1, 2])
    if computed:
        shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
        height = b.op(
            "height",
            "StridedSlice",
            shape,
            b.const("begin", np.array([1], np.int32)),
            b.const("end", np.array([2], np.int32)),
            b.const("step", np.array([1], np.int32)),
            T=INT32,
            Index=INT32,
            shrink_axis_mask=1,
        )
        height = b.op("scaled", "Mul", height, b.const("s", np.int32(s)), T=INT32)
        height = b.op("shifted", "AddV2", height, b.const("c", np.int32(out - s * size)), T=INT32)
        sizes = b.op(
            "sizes",
            "Pack",
            b.const("n", np.int32(2)),
            height,
            b.const("w", np.int32(1)),
            b.const("ch", np.int32(3)),
            T=INT32,
            N=4,
            axis=0,
        )
    else:
        sizes = b.const("sizes", np.array([2, out, 1, 3], np.int32))
    padding = "SAME" if same else "VALID"
    b.op(
        "up",
        "Conv2DBackpropInput",
        sizes,
        b.weight("kernel", k, 1, 3, 2),
        x,
        strides=[1, s, 1, 1],
        padding=padding,
        data_format="NHWC",
    )
    path = tmp_path / "graph.pbtxt"
    path.write_text(b.text(), encoding="utf-8")
    prepared = prepare(load(path))
    graph = prepared.pruned.graph
    m = Matcher(graph, prepared.constants, prepared.shapes, ScopeNamer(["up"]), {"up:0"})
    return transpose_kwargs(graph.nodes["up"], m)


@pytest.mark.parametrize("computed", [False, True], ids=["constant", "from_input"])
@pytest.mark.parametrize("same", [True, False], ids=["same", "valid"])
def test_transposed_conv_gives_the_graphs_output_size(tmp_path, same, computed):
    """For every output size TF allows, transpose_kwargs gives a layer whose Keras size formula
    is that size, or declines (an output_padding outside [0, s), which Keras refuses)."""
    load_all()
    size, layers, declined = 4, 0, 0
    for k in range(1, 5):
        for s in range(1, 4):
            for out in range(1, s * size + k + s):
                if not _tf_accepts(size, k, s, same, out):
                    continue
                kwargs = _transposed(tmp_path, size, k, s, same, out, computed)
                if kwargs is None:
                    declined += 1
                    continue
                layers += 1
                padding = kwargs.get("output_padding")
                padding = padding[0] if isinstance(padding, tuple) else padding
                assert padding is None or 0 <= padding < s
                assert _keras_transposed_size(size, k, s, same, padding) == out, (k, s, out)
    assert layers > 3 * declined
