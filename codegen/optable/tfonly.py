"""Ops that only a TensorFlow-only layer computes (special functions, linear algebra, segment
and scatter ops, strings, image resampling): their records state output shapes, which the
generated layer hands to Keras instead of letting it trace the op (patterns/tfonly.py). No
kernels: nothing here is folded.
"""

from __future__ import annotations

from .nn import resized_shape
from .numeric import same_shape
from .record import binary, op, unary

for _op in (
    "BesselI0e",
    "BesselI1e",
    "BesselJ0",
    "BesselJ1",
    "BesselK0e",
    "BesselY0",
    "CheckNumerics",
    "ComplexAbs",
    "Dawsn",
    "Digamma",
    "Expint",
    "FresnelCos",
    "FresnelSin",
    "Lgamma",
    "Ndtri",
    "PopulationCount",
    "Real",
    "Imag",
    "Spence",
    "StringLength",
    "StringToHashBucketFast",
    "InvertPermutation",
):
    unary(_op)

for _op in (
    "ApproximateEqual",
    "Complex",
    "Igamma",
    "Igammac",
    "Mod",
    "MulNoNan",
    "NextAfter",
    "Polygamma",
    "TruncateDiv",
    "TruncateMod",
    "Xdivy",
    "Xlog1py",
    "Xlogy",
    "Zeta",
):
    binary(_op)

# the first input's shape: matrices in, matrices out; updates scattered into a tensor
for _op in (
    "Cholesky",
    "Cross",
    "CumulativeLogsumexp",
    "MatrixInverse",
    "QuantizeAndDequantizeV2",
    "ReverseSequence",
    "TensorScatterAdd",
    "TensorScatterMax",
    "TensorScatterMin",
    "TensorScatterSub",
    "TensorScatterUpdate",
):
    op(_op, shape=same_shape)


def _scalar(node, ins, c):
    return ()


def _batch_of_matrices(node, ins, c):
    return None if ins[0] is None else ins[0][:-2]


def _solved(node, ins, c):
    return ins[1]


def _nth(node, ins, c):
    return None if ins[0] is None else ins[0][:-1]


def _segments(node, ins, c):
    """One row per segment: as many as the last id plus one (unknown), or num_segments."""
    data, ids = ins[0], ins[1]
    if data is None or ids is None:
        return None
    count = None if node.op.startswith("Segment") else c.scalar(node.inputs[2])
    return (None if count is None else int(count), *data[len(ids) :])


def _crops(node, ins, c):
    """(boxes, crop_size, channels)."""
    size = c.partial_vector(node.inputs[3])
    if ins[0] is None or ins[1] is None or size is None or len(size) != 2:
        return None
    return (ins[1][0], *size, ins[0][3])


def _gather_nd(node, ins, c):
    params, indices = ins[0], ins[1]
    if params is None or indices is None or not indices or indices[-1] is None:
        return None
    return (*indices[:-1], *params[indices[-1] :])


def _rfft(node, ins, c):
    length = c.ints(node.inputs[1])
    if ins[0] is None or length is None or len(length) != 1:
        return None
    return (*ins[0][:-1], length[0] // 2 + 1)


op("Rank", shape=_scalar)
op("Size", shape=_scalar)
op("MatrixDeterminant", shape=_batch_of_matrices)
op("LogMatrixDeterminant", shapes=lambda node, ins, c: [_batch_of_matrices(node, ins, c)] * 2)
op("MatrixSolve", shape=_solved)
op("MatrixTriangularSolve", shape=_solved)
op("InTopKV2", shape=_solved)
op("NthElement", shape=_nth)
op("Where", shape=lambda node, ins, c: None if ins[0] is None else (None, len(ins[0])))
op("HistogramFixedWidth", shape=lambda node, ins, c: (c.scalar(node.inputs[2]),))
for _op in ("SegmentMax", "SegmentMin", "SegmentSum", "SegmentMean", "SegmentProd"):
    op(_op, shape=_segments)
for _op in (
    "UnsortedSegmentMax",
    "UnsortedSegmentMin",
    "UnsortedSegmentSum",
    "UnsortedSegmentProd",
):
    op(_op, shape=_segments)
for _op in ("ResizeArea", "ResizeBicubic"):
    op(_op, shape=resized_shape)
op("CropAndResize", shape=_crops)
op("GatherNd", shape=_gather_nd)
op("RFFT", shape=_rfft)
op(
    "SparseSoftmaxCrossEntropyWithLogits",
    shapes=lambda node, ins, c: None if ins[0] is None else [ins[0][:1], ins[0]],
)
