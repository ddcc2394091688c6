"""The model spec: what the code generator knows, and nothing it does not need.

Patterns produce it, `emit` renders it. It is plain data (no graph objects, no protobufs), so a
spec can be printed, compared in tests and rendered twice with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Sequence

from .recipes import Recipe


@dataclass(frozen=True)
class Ref:
    """In a keras.ops expression: the layer's `inputs[index]`."""

    index: int


@dataclass(frozen=True)
class Call:
    """In a keras.ops expression: `keras.ops.<fn>(*args, **kwargs)`; fn may be dotted
    (`image.resize`). Arguments are Refs, nested Calls/Items or plain values."""

    fn: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Item:
    """In a keras.ops expression: `value[index]`, index a tuple of ints, slices, None and
    Ellipsis (Keras tensors support NumPy-style indexing on every backend)."""

    value: Any
    index: tuple


@dataclass(frozen=True)
class Lambda:
    """In a keras.ops expression: `lambda <params>: body`, whose Refs name the params. A loop's
    condition and body take everything they read as parameters: a closure over the symbolic
    tensors of a functional model fails when the model runs. A value the body reads more than
    once is computed once, in `bindings` order, and named (`name := ...`, written before the
    body): Ref(len(params) + j) is bindings[j]."""

    params: tuple[str, ...]
    body: Any
    bindings: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class TFOp:
    """What a TensorFlow-only layer calls: `tf.raw_ops.<op>` with these named inputs (the
    `count` of a list input is how many of the layer's inputs it takes; 0 for one tensor)."""

    op: str
    inputs: tuple[tuple[str, int], ...]
    attrs: tuple[str, ...]  # every attribute the class takes, in the op's order


# The nodes passes/rnn/ puts in place of a recurrent loop, as the report names them (a loop
# counts once; the views that forward its results are no computation), and those
# passes/arrays.py puts in place of TensorArray ops, named as the ops they stand for.
LIFTED = {
    "_Graph2pyLSTM": "LSTM loop",
    "_Graph2pyGRU": "GRU loop",
    "_Graph2pyRNNResult": "",
    "_Graph2pyTensorArray": "TensorArrayV3",
    "_Graph2pyArrayWrite": "TensorArrayWriteV3",
    "_Graph2pyArrayScatter": "TensorArrayScatterV3",
    "_Graph2pyArraySplit": "TensorArraySplitV3",
    "_Graph2pyArrayConcat": "TensorArrayConcatV3",
    "_Graph2pyArrayRead": "TensorArrayReadV3",
    "_Graph2pyArrayGather": "TensorArrayGatherV3",
    "_Graph2pyUnmasked": "",
}


class Kind(Enum):
    """How a source node is carried into Keras, best first (see patterns/__init__.py); the
    value names the path in the conversion report."""

    LAYER = "keras.layers"  # `cls(*args, **kwargs)(inputs)`: a keras.layers (or helper) class
    OPS = "keras.ops"  # `expr` over the inputs: a keras.ops expression, no layer
    TENSORFLOW = "tensorflow"  # a generated layer calling `tf.raw_ops.<tfop.op>`


PATHS = tuple(kind.value for kind in Kind)

# What a quantized TensorFlow dtype travels between layers as (Keras tensors have none): the
# integer of the same width, which a TensorFlow-only layer bitcasts back for its op.
QUANTIZED_STORAGE = {
    "qint8": "int8",
    "quint8": "uint8",
    "qint16": "int16",
    "quint16": "uint16",
    "qint32": "int32",
}
# Marks a tensor that passes between the layers of one pattern's chain (a dilated conv, then
# its stride): no graph node computes it, so nothing may look it up in the source graph.
INTERNAL = "#"


def internal_tensor(node: str, what: str) -> str:
    return f"{node}{INTERNAL}{what}:0"


# The Keras backends, by KERAS_BACKEND value: keras.layers and keras.ops run on each of them.
BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}

# Keras constructors' positional parameters, by name: what a block's parameter (blocks.py) or a
# changed argument (diff.py) is called.
POSITIONAL = {
    "Conv1D": ("filters", "kernel_size"),
    "Conv2D": ("filters", "kernel_size"),
    "Conv3D": ("filters", "kernel_size"),
    "SeparableConv2D": ("filters", "kernel_size"),
    "Conv2DTranspose": ("filters", "kernel_size"),
    "DepthwiseConv2D": ("kernel_size",),
    "Dense": ("units",),
    "EinsumDense": ("equation", "output_shape"),
    "MaxPooling2D": ("pool_size",),
    "AveragePooling2D": ("pool_size",),
    "ReLU": ("max_value",),
    "Activation": ("activation",),
    "Dropout": ("rate",),
    "Reshape": ("target_shape",),
    "Rescaling": ("scale",),
    "ZeroPadding2D": ("padding",),
    "Embedding": ("input_dim", "output_dim"),
    "LSTM": ("units",),
    "GRU": ("units",),
    "SimpleRNN": ("units",),
    "Permute": ("dims",),
    "Conv1DTranspose": ("filters", "kernel_size"),
    "Conv3DTranspose": ("filters", "kernel_size"),
    "MaxPooling1D": ("pool_size",),
    "MaxPooling3D": ("pool_size",),
    "AveragePooling1D": ("pool_size",),
    "AveragePooling3D": ("pool_size",),
}

# Layers defined in the generated module itself (templates/helpers/), not in keras.layers.
HELPERS = {"ChannelScale", "Constant", "Unmasked"}


@dataclass
class Weight:
    """One Keras variable of a layer and how to compute it from the source graph."""

    name: str  # the Keras variable name: kernel, bias, gamma, moving_mean, ...
    recipe: Recipe  # see recipes.py
    shape: tuple[int, ...]


@dataclass
class Layer:
    """One call in the generated functional code. What it calls depends on its kind: a
    keras.layers class `cls` (Kind.LAYER), a keras.ops expression `expr` (Kind.OPS), or a
    TensorFlow op `tfop` (Kind.TENSORFLOW), whose operands are `args` (expressions over the
    inputs) and whose attributes are `kwargs`."""

    name: str  # the Keras layer name (unique in the model)
    inputs: list[str]  # graph tensors the call consumes, in order
    outputs: list[str]  # graph tensors the call produces
    nodes: list[str]  # source nodes this layer covers (provenance)
    ops: list[str]  # their op types, same order
    kind: Kind = Kind.LAYER
    cls: str = ""  # Kind.LAYER: the class name, e.g. "Conv2D"
    args: list[Any] = field(default_factory=list)  # positional constructor arguments
    kwargs: dict[str, Any] = field(default_factory=dict)  # keyword constructor arguments
    weights: list[Weight] = field(default_factory=list)
    list_input: bool = False  # merge layers take a list of tensors
    # the trailing inputs passed by keyword, in order: (name, 0) one tensor, (name, n) a list
    # of n (an RNN's `mask=`, `initial_state=[h, c]`)
    keywords: tuple[tuple[str, int], ...] = ()
    # a chain's later layer covers no nodes of its own: what it does for the first, instead
    note: str = ""
    expr: Any = None  # Kind.OPS: a Call/Item/Ref/Lambda tree over the inputs
    tfop: TFOp | None = None  # Kind.TENSORFLOW
    # Kind.TENSORFLOW: (shapes, Keras dtypes) of the outputs as graph2py inferred them, which
    # the layer returns to Keras when it builds; None to let Keras trace the op
    output_specs: tuple[list, list] | None = None
    quantized: dict[str, str] = field(default_factory=dict)  # input keyword -> quantized dtype
    stores_quantized: bool = False  # an output is quantized: it leaves as its storage dtype

    def __post_init__(self):
        given = {Kind.LAYER: bool(self.cls), Kind.OPS: self.expr is not None}
        given[Kind.TENSORFLOW] = self.tfop is not None
        if [kind for kind, present in given.items() if present] != [self.kind]:
            raise ValueError(
                f"layer {self.name!r}: a {self.kind.value} call needs its payload alone"
            )

    @property
    def path(self) -> str:
        """The kind's name in reports: "keras.layers", "keras.ops" or "tensorflow"."""
        return self.kind.value

    def target(self) -> str:
        """What the layer becomes, for people: keras.layers.Conv2D, keras.ops.sum, ..."""
        if self.kind is Kind.OPS:
            return f"keras.ops.{self.expr.fn}" if isinstance(self.expr, Call) else "indexing"
        if self.kind is Kind.TENSORFLOW:
            return f"tf.raw_ops.{self.tfop.op} (TensorFlow-only layer)"
        return self.cls if self.cls in HELPERS else f"keras.layers.{self.cls}"


def forms_chain(
    inputs: Sequence[str],
    steps: Iterable[tuple[Sequence[str], Sequence[str]]],
    outputs: Sequence[str],
) -> bool:
    """Whether a model can be a keras.Sequential: one input, one output, and each step (what
    it reads, what it writes) reading only the previous step's one result, nothing bound twice.
    The one rule for both the spec (ModelSpec.is_chain) and the rendered code
    (source_passes.CollapseSequential)."""
    if len(inputs) != 1 or len(outputs) != 1:
        return False
    current = inputs[0]
    bound = {current}
    for reads, writes in steps:
        if list(reads) != [current] or len(writes) != 1 or writes[0] in bound:
            return False
        current = writes[0]
        bound.add(current)
    return list(outputs) == [current]


@dataclass
class Input:
    tensor: str
    name: str
    shape: tuple[int | None, ...]  # without the batch dimension (unless not batched)
    dtype: str = "float32"
    # False: one value for the whole call, not one per example (a scalar is_train or keep_prob
    # fed beside the data): keras.Input(batch_shape=shape)
    batched: bool = True


@dataclass
class ModelSpec:
    name: str
    source: str  # file name the model was converted from (for headers and the loader)
    sha256: str
    inputs: list[Input]
    layers: list[Layer]
    outputs: list[str]  # graph tensors
    version: str = ""
    scope: str = ""  # the scope every node sits under (a frozen Keras model's), or ""
    unsupported: dict[str, int] = field(default_factory=dict)  # op -> count no pattern claimed
    # where the weights come from (formats.py): "graphdef" (frozen constants), "savedmodel",
    # "meta" (TF1 meta graph + checkpoint) or "checkpoint" (GraphDef + --checkpoint PREFIX)
    source_kind: str = "graphdef"
    weights_source: str = ""  # the file or prefix load_weights.py reads by default
    options: list[str] = field(default_factory=list)  # command-line options that shaped it
    # the outputs as the source graph names them, for running it (see passes/prune.py)
    graph_outputs: list[str] = field(default_factory=list)
    # what the user should know that is not an error (an input that feeds no output)
    warnings: list[str] = field(default_factory=list)

    def report(self) -> dict[str, dict[str, int]]:
        """Source nodes per path, by op type: what became layers, keras.ops, TensorFlow."""
        counts: dict[str, dict[str, int]] = {path: {} for path in PATHS}
        for layer in self.layers:
            if layer.ops == ["Const"]:
                continue  # a constant held by a Constant layer is not a compute node
            for op in layer.ops:
                op = LIFTED.get(op, op)
                if op:
                    row = counts[layer.path]
                    row[op] = row.get(op, 0) + 1
        return {path: dict(sorted(row.items())) for path, row in counts.items()}

    def backends(self) -> list[str]:
        """The Keras backends the generated model runs on: every one, unless a TensorFlow-only
        layer or a string input (only TensorFlow has string tensors) ties it to TensorFlow."""
        return list(BACKENDS) if not self._tied_to_tensorflow() else ["tensorflow"]

    def _tied_to_tensorflow(self) -> list[str]:
        """What ties the model to TensorFlow, each as the report says it."""
        tied = [f"TF{op} ×{count}" for op, count in self.report()["tensorflow"].items()]
        strings = [i.name for i in self.inputs if i.dtype == "string"]
        if strings:
            tied.append("string input " + ", ".join(strings))
        return tied

    def where_it_runs(self) -> str:
        """ "runs on TensorFlow, JAX, PyTorch", or "TensorFlow only: " and what ties it there:
        the TensorFlow-only layer classes with their counts, string inputs."""
        tied = self._tied_to_tensorflow()
        if not tied:
            return "runs on " + ", ".join(BACKENDS.values())
        return "TensorFlow only: " + ", ".join(tied)

    def is_chain(self) -> bool:
        """Whether the model is a chain of keras.layers calls (see `forms_chain`); a Constant
        layer, a keras.ops expression or a TensorFlow-only layer keeps it functional."""
        if any(layer.kind is not Kind.LAYER or layer.cls == "Constant" for layer in self.layers):
            return False
        steps = (([] if layer.list_input else layer.inputs, layer.outputs) for layer in self.layers)
        return forms_chain([i.tensor for i in self.inputs], steps, self.outputs)
