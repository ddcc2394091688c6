"""docs/supported_ops.md, generated from the pattern registry: which path each op type takes.

Run `python -m codegen.supported` after adding a pattern; tests/test_op_table.py checks that the
committed file equals what this module generates. No TensorFlow import: the TensorFlow-only count
comes from the op table shipped with graph2py (`codegen/opdefs.py`).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from . import opdefs
from .patterns import FALLBACKS, PATTERNS, load_all
from .spec import LIFTED

DOC = Path(__file__).resolve().parent.parent / "docs" / "supported_ops.md"

# The Keras layers each layer pattern produces, by pattern function (module.function), or by
# function and op (module.function:Op) where one function makes a different layer per op. A
# pattern missing here is described by the layer classes named in its source.
LAYERS = {
    "merge.elementwise:Add": "Add",
    "merge.elementwise:AddV2": "Add",
    "merge.elementwise:Sub": "Subtract",
    "merge.elementwise:Mul": "Multiply",
    "merge.elementwise:Maximum": "Maximum",
    "merge.elementwise:Minimum": "Minimum",
    "pool.global_pool:Mean": "GlobalAveragePooling2D",
    "pool.global_pool:Max": "GlobalMaxPooling2D",
    "pool.pool2d:MaxPool": "MaxPooling2D",
    "pool.pool2d:AvgPool": "AveragePooling2D",
    "activation.composite_from_mul": "Activation (swish, gelu, hard_swish)",
    "activation.gelu_from_neg": "Activation (gelu)",
    "activation.hard_swish_from_add": "Activation (hard_swish)",
    "activation.leaky_relu": "LeakyReLU (keras.ops.leaky_relu for a negative slope)",
    "activation.relu": "ReLU",
    "activation.relu6": "ReLU (max_value=6)",
    "activation.simple": "Activation",
    "activation.softmax": "Softmax",
    "attention.einsum": "EinsumDense",
    "attention.merge_heads": "EinsumDense",
    "attention.split_heads": "EinsumDense",
    "conv.conv2d": "Conv2D",
    "conv.conv2d_transpose": "Conv2DTranspose",
    "conv.conv3d": "Conv3D",
    "conv.depthwise": "DepthwiseConv2D, SeparableConv2D",
    "dense.matmul": "Dense",
    "embedding.wrapped_embedding": "Embedding",
    "merge.add_n": "Add",
    "merge.concat": "Concatenate",
    "merge.elementwise": "Add, Subtract, Multiply, Maximum, Minimum",
    "norm.batch_norm": "BatchNormalization",
    "norm.fused_batch_norm": "BatchNormalization",
    "norm.layer_norm": "LayerNormalization",
    "norm.centred_layer_norm": "LayerNormalization",
    "norm.normalization": "Normalization",
    "pool.global_pool": "GlobalAveragePooling2D, GlobalMaxPooling2D",
    "pool.pool2d": "MaxPooling2D, AveragePooling2D",
    "reshape.cropping": "Cropping2D",
    "reshape.permute": "Permute",
    "reshape.reshape": "Reshape, Flatten",
    "reshape.squeeze": "Reshape",
    "reshape.zero_padding": "ZeroPadding2D",
    "rnn.embedding": "Embedding",
    "rnn.recurrent": "LSTM, GRU",
    "scale.channel_scale": "ChannelScale (generated helper layer)",
    "scale.rescaling": "Rescaling",
}

# keras.ops functions of fallbacks whose source names more than the op's own function.
OPS = {
    "BiasAdd": "add",
    "Div": "divide",
    "SquaredDifference": "square(subtract(x, y))",
    "EuclideanNorm": "sqrt(sum(square(x)))",
    "L2Loss": "sum(square(x)) * 0.5",
    "FakeQuantWithMinMaxArgs": "clip, floor (fake-quant math on the nudged range)",
    "FakeQuantWithMinMaxVars": "clip, floor (fake-quant math on the nudged range)",
    "FakeQuantWithMinMaxVarsPerChannel": "clip, floor (fake-quant math on the nudged range)",
    "MatMul": "matmul",
    "BatchMatMul": "matmul",
    "BatchMatMulV2": "matmul",
    "BatchMatMulV3": "matmul",
    "OneHot": "one_hot",
    "ArgMax": "argmax",
    "ArgMin": "argmin",
    "Cumsum": "cumsum",
    "Cumprod": "cumprod",
    "DepthToSpace": "depth_to_space",
    "SpaceToDepth": "space_to_depth",
    "StridedSlice": "tensor indexing `x[...]`",
    "Slice": "tensor indexing `x[...]`",
}


def _key(fn) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"


def _named_in_source(fn, pattern: str, skip=()) -> list[str]:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return []
    names = []
    for name in re.findall(pattern, source):
        if name not in names and name not in skip:
            names.append(name)
    return names


def layer_names(op: str, fn) -> str:
    for key in (f"{_key(fn)}:{op}", _key(fn)):
        if key in LAYERS:
            return LAYERS[key]
    return ", ".join(_named_in_source(fn, r'\.layer\(\s*"(\w+)"')) or f"see `{_key(fn)}`"


def ops_names(op: str, fn) -> str:
    if op in OPS:
        return OPS[op]
    module = inspect.getmodule(fn)
    for table in ("UNARY", "BINARY", "REDUCE"):
        if op in getattr(module, table, {}):
            return getattr(module, table)[op]
    names = _named_in_source(fn, r'Call\(\s*"([\w.]+)"', skip={"convert_to_tensor"})
    return ", ".join(names) or f"see `{_key(fn)}`"


def tensorflow_only_candidates() -> tuple[int, int]:
    """(op types TensorFlow registers, those the TensorFlow-only layer can call: no resource
    or variant handles, no function-valued attributes)."""
    from .patterns.tfonly import NOT_COMPUTATIONS

    names = sorted(opdefs._table())
    callable_ = 0
    for name in names:
        op = opdefs.get(name)
        if op.handles or name in NOT_COMPUTATIONS or any("func" in k for _, k, _ in op.attrs):
            continue
        callable_ += 1
    return len(names), callable_


def _writes_ops(fn) -> bool:
    """A pattern of patterns/ops.py: a keras.ops expression that runs with the layer patterns
    (to take the shape arithmetic before it) rather than after them."""
    return fn.__module__.endswith(".patterns.ops")


def generate() -> str:
    load_all()
    layer_ops = sorted(
        op
        for op, fns in PATTERNS.items()
        if not op.startswith("_") and not all(_writes_ops(fn) for fn in fns)
    )
    early = {op: [fn for fn in fns if _writes_ops(fn)] for op, fns in PATTERNS.items()}
    # graph2py's own nodes (passes/arrays.py) under the TF ops they stand for (spec.LIFTED)
    ops_of = {LIFTED.get(op) or op: op for op in FALLBACKS if op != "*"}
    ops_of.update({op: op for op in early if early[op] and op not in ops_of})
    ops_ops = sorted(ops_of)
    total, callable_ = tensorflow_only_candidates()
    covered = len(set(layer_ops) | {op for op in FALLBACKS if op != "*" and op[0] != "_"})
    lines = [
        "# Supported TensorFlow ops",
        "",
        "<!-- Generated by `python -m codegen.supported` from the pattern registry; do not edit."
        " tests/test_op_table.py checks it is current. -->",
        "",
        "Every op has a path, tried in this order: an idiomatic `keras.layers` layer; a",
        "backend-neutral `keras.ops` expression in the functional code; for anything else, a",
        "small generated layer whose `call` runs `tf.raw_ops.<Op>` (TensorFlow backend only).",
        "Constant subgraphs (shape arithmetic on known shapes, Dequantize or FakeQuant of stored",
        "constants, weight preparation) are folded at conversion time with numpy.",
        "",
        "| Path | Op types |",
        "| --- | --- |",
        f"| keras.layers | {len(layer_ops)} |",
        f"| keras.ops | {len(ops_ops)} |",
        f"| TensorFlow-only | every other op TensorFlow registers: {callable_ - covered} more"
        f" (of {total}; the rest pass resource/variant handles or functions) |",
        "",
        "An op with a layer pattern whose structure the pattern does not match (a Conv2D with",
        "a computed filter, a Mul of two computed tensors that is no swish) falls through to",
        "`keras.ops`, and an op whose `keras.ops` form does not hold for its attributes or",
        "dtypes (an exclusive Cumsum, a corner-aligned resize, an integer Mean) falls through",
        "to the TensorFlow-only layer: the numbers stay the same, only the code changes.",
        "",
        "## keras.layers",
        "",
        "| Op | Keras layer(s) |",
        "| --- | --- |",
    ]
    for op in layer_ops:
        names = []
        for fn in PATTERNS[op]:
            if _writes_ops(fn):
                continue
            for name in layer_names(op, fn).split(", "):
                if name not in names:
                    names.append(name)
        lines.append(f"| {op} | {', '.join(names)} |")
    lines += ["", "## keras.ops", "", "| Op | keras.ops |", "| --- | --- |"]
    for op in ops_ops:
        fns = [*early.get(ops_of[op], []), *FALLBACKS.get(ops_of[op], [])]
        names = ", ".join(dict.fromkeys(ops_names(ops_of[op], fn) for fn in fns))
        lines.append(f"| {op} | {names} |")
    lines += [
        "",
        "## TensorFlow-only",
        "",
        f"Every other op TensorFlow registers ({total} op types in `codegen/data/tf_ops.json`,",
        f"{callable_} of them callable from a layer) becomes a generated layer class calling",
        "`tf.raw_ops.<Op>` with the node's attributes, unless it passes resource or variant",
        "handles (variables, tables, tensor lists) or takes function-valued attributes (control",
        "flow has its own passes). The model then runs on the TensorFlow backend only; the",
        "report at the top of model.py and `graph2py SRC --report json` list those ops.",
        "",
    ]
    return "\n".join(lines)


def write(path: Path = DOC) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generate(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
