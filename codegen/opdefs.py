"""TensorFlow's op signatures, as a small table shipped with graph2py.

The TensorFlow-only fallback layer calls `tf.raw_ops.<Op>(**named_inputs, **attrs)`, so the
converter must know each op's argument names, which inputs are lists, which attributes the
caller passes (TensorFlow infers the others from the inputs) and how many outputs a node has.
That lives in TensorFlow's op registry; importing TensorFlow costs seconds, so the table is
extracted once (`python -m codegen.opdefs`, with TensorFlow installed) and read as JSON.
The op table (codegen/optable) derives the input and output counts of the ops graph2py knows
from it too.

Per op:
    "in":    [[name, list_attr]]   list_attr names the attr holding the length of a list input
                                    (a number_attr or type_list_attr), "" for one tensor
    "out":   [[name, list_attr]]   the same for outputs
    "in_types", "out_types": [type]  per input and output argument, what its dtype is: a
                                    dtype in TF's spelling ("float32", "string"), "attr:T" for
                                    the node's dtype attribute T, "list:T" for a type-list one
    "attrs": [[name, type, default]]  attributes `tf.raw_ops` takes (none of the inferred ones);
                                    default is null when there is none or it is not JSON-able
    "handles": true                 present when an input or output is a resource or variant
                                    handle, which no Keras tensor can carry between layers
    "renamed": {name: keyword}      present when tf.raw_ops takes an input or attribute under
                                    another name than the registry's (Sum's `reduction_indices`
                                    is `axis`, as TF's Python API renames it)
    "allowed_values": {name: [type, [value, ...]]}
                                    present when an attribute (inferred ones too) may hold only
                                    some values: strings (Conv2D's padding), or dtypes in TF's
                                    spelling (`float32`, `qint8`), in the registry's order
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

TABLE = Path(__file__).parent / "data" / "tf_ops.json"
_NO_DEFAULT = None


@dataclass(frozen=True)
class OpDef:
    name: str
    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...]
    attrs: tuple[tuple[str, str, object], ...]
    handles: bool = False
    renamed: dict = field(default_factory=dict)
    allowed_values: dict = field(default_factory=dict)  # name -> (type, values)
    input_types: tuple[str, ...] = ()  # per input argument; see the module docstring
    output_types: tuple[str, ...] = ()  # per output argument

    def keyword(self, name: str) -> str:
        """The keyword `tf.raw_ops.<op>` takes for the registry's input or attribute `name`."""
        return self.renamed.get(name, name)

    def output_count(self, attrs: dict) -> int | None:
        """Outputs of a node with these attributes; None when a list length is unknown."""
        total = 0
        for _, length in self.outputs:
            if not length:
                total += 1
                continue
            value = attrs.get(length)
            if isinstance(value, list):
                total += len(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                total += value
            else:
                return None
        return total

    def output_dtypes(self, attrs: dict) -> list[str | None] | None:
        """The dtype of each output of a node with these attributes, in TensorFlow's spelling
        (None where an attribute it follows is missing); None when a list length is unknown."""
        return _dtypes(self.outputs, self.output_types, attrs)

    def input_dtypes(self, attrs: dict) -> list[str | None] | None:
        """The dtype of each input tensor, as `output_dtypes` gives the outputs'."""
        return _dtypes(self.inputs, self.input_types, attrs)


def _dtypes(args, types, attrs: dict) -> list[str | None] | None:
    if len(types) != len(args):
        return None
    dtypes: list[str | None] = []
    for (_, length), kind in zip(args, types):
        source, _, name = kind.partition(":")
        if source == "list":
            listed = attrs.get(name)
            if not isinstance(listed, list):
                return None
            dtypes += [d if isinstance(d, str) else None for d in listed]
            continue
        dtype = attrs.get(name) if source == "attr" else kind
        count = 1
        if length:
            count = attrs.get(length)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                return None
        dtypes += [dtype if isinstance(dtype, str) else None] * count
    return dtypes


@functools.cache
def _table() -> dict:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def get(op: str) -> OpDef | None:
    entry = _table().get(op)
    if entry is None:
        return None
    return OpDef(
        op,
        tuple(tuple(x) for x in entry["in"]),
        tuple(tuple(x) for x in entry["out"]),
        tuple(tuple(x) for x in entry["attrs"]),
        entry.get("handles", False),
        entry.get("renamed", {}),
        {k: (kind, tuple(values)) for k, (kind, values) in entry.get("allowed_values", {}).items()},
        tuple(entry.get("in_types", ())),
        tuple(entry.get("out_types", ())),
    )


def extract() -> dict:
    """The table, from the installed TensorFlow's registry (ops `tf.raw_ops` exposes)."""
    import inspect

    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    from tensorboard.compat.proto import types_pb2

    from .load import decode_attr

    table = {}
    for name in sorted(dir(tf.raw_ops)):
        op = op_def_registry.get(name)
        if op is None:
            continue

        def length(arg):
            return arg.number_attr or arg.type_list_attr or ""

        inferred = set()
        for arg in op.input_arg:
            inferred.update(a for a in (arg.type_attr, arg.number_attr, arg.type_list_attr) if a)
        attrs = []
        for attr in op.attr:
            if attr.name in inferred:
                continue
            default = decode_attr(attr.default_value) if attr.HasField("default_value") else None
            try:
                json.dumps(default)
            except TypeError:
                default = _NO_DEFAULT
            attrs.append([attr.name, attr.type, default])
        table[name] = {
            "in": [[a.name, length(a)] for a in op.input_arg],
            "out": [[a.name, length(a)] for a in op.output_arg],
            "attrs": attrs,
            "in_types": [_arg_type(tf, a) for a in op.input_arg],
            "out_types": [_arg_type(tf, a) for a in op.output_arg],
        }
        handle_types = (types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT)
        if any(a.type in handle_types for a in [*op.input_arg, *op.output_arg]):
            table[name]["handles"] = True
        allowed = {a.name: _allowed(tf, a) for a in op.attr if a.HasField("allowed_values")}
        if allowed:
            table[name]["allowed_values"] = allowed
        registry = [a.name for a in op.input_arg] + [a[0] for a in attrs]
        keywords = [p for p in inspect.signature(getattr(tf.raw_ops, name)).parameters]
        renamed = _renamed(registry, [k for k in keywords if k != "name"])
        if renamed:
            table[name]["renamed"] = renamed
    return table


def _allowed(tf, attr) -> list:
    """[type, values] of an attribute's allowed values: strings as written, dtypes as
    TensorFlow names them; each once, in the registry's order."""
    values = attr.allowed_values.list
    if "type" in attr.type:
        names = [tf.dtypes.as_dtype(t).name for t in values.type]
    else:
        names = [v.decode("utf-8") for v in values.s]
    return [attr.type, list(dict.fromkeys(names))]


def _arg_type(tf, arg) -> str:
    if arg.type:
        return tf.dtypes.as_dtype(arg.type).name
    return f"attr:{arg.type_attr}" if arg.type_attr else f"list:{arg.type_list_attr}"


def _renamed(registry: list[str], keywords: list[str]) -> dict[str, str]:
    """{registry name: raw_ops keyword} for the arguments tf.raw_ops spells otherwise: the
    registry names it lacks paired, in order, with the keywords the registry lacks."""
    missing = [n for n in registry if n not in keywords]
    extra = [k for k in keywords if k not in registry]
    return dict(zip(missing, extra)) if len(missing) == len(extra) else {}


def write(path: Path = TABLE) -> int:
    table = extract()
    entries = (
        f"{json.dumps(name)}:{json.dumps(entry, separators=(',', ':'), sort_keys=True)}"
        for name, entry in sorted(table.items())
    )
    path.write_text("{" + ",\n".join(entries) + "}\n", encoding="utf-8")  # one op a line
    return len(table)


if __name__ == "__main__":
    print(f"wrote {write()} op signatures to {TABLE}")
