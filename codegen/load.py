"""Read a GraphDef from disk without importing TensorFlow, and decode its protobuf values
(tensors, shapes, attributes) into numpy arrays and plain Python values.

TensorFlow takes seconds to import; its protobuf schemas, shipped by tensorboard, take
milliseconds. Everything here works on those schemas and numpy alone.

A generated `load_weights.py` reads its graph file with this code too (through
codegen/runtime.py), so it reads exactly what the converter read.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import message, text_format
from tensorboard.compat.proto import graph_pb2, tensor_pb2, types_pb2

from . import budget
from .errors import BadInputError
from .files import read_input

# DataType enum -> numpy dtype, for the types a frozen inference graph carries.
_NUMPY = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_COMPLEX64: np.complex64,
    types_pb2.DT_COMPLEX128: np.complex128,
    # quantized types hold integer codes (Dequantize gives their meaning)
    types_pb2.DT_QINT8: np.int8,
    types_pb2.DT_QUINT8: np.uint8,
    types_pb2.DT_QINT16: np.int16,
    types_pb2.DT_QUINT16: np.uint16,
    types_pb2.DT_QINT32: np.int32,
    types_pb2.DT_STRING: object,
}

# Which repeated field of TensorProto holds the values of each dtype when there is no
# tensor_content.
_VALUE_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_QINT8: "int_val",
    types_pb2.DT_QUINT8: "int_val",
    types_pb2.DT_QINT16: "int_val",
    types_pb2.DT_QUINT16: "int_val",
    types_pb2.DT_QINT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
    types_pb2.DT_STRING: "string_val",
}


_DATATYPES = frozenset(types_pb2.DataType.values()) - {types_pb2.DT_INVALID}
_REF = 100  # DT_FLOAT_REF is DT_FLOAT + 100: the dtype of a TF1 variable's reference
_TF_NAMES = {
    types_pb2.DT_HALF: "float16",
    types_pb2.DT_FLOAT: "float32",
    types_pb2.DT_DOUBLE: "float64",
}


def type_name(enum: int) -> str:
    """TensorFlow's name of a DataType (`float32`, `qint8`, `bfloat16`, `float32_ref`), the
    spelling of its op registry's allowed values; ValueError for a number that is no dtype
    (DT_INVALID, or none of the enum's values)."""
    if enum not in _DATATYPES:
        raise ValueError(
            f"{enum} is no TensorFlow DataType" if enum else "DT_INVALID is no TensorFlow dtype"
        )
    base = enum - _REF if enum > _REF else enum
    name = _TF_NAMES.get(base) or types_pb2.DataType.Name(base).removeprefix("DT_").lower()
    return name + ("_ref" if enum > _REF else "")


def dtype_name(enum: int) -> str:
    """'float32' for DT_FLOAT: the spelling Keras and numpy both accept (TensorFlow's, see
    `type_name`, for the types numpy lacks). ValueError for a number that is no dtype."""
    dtype = _NUMPY.get(enum)
    if dtype is None or dtype is object:
        return type_name(enum)
    return np.dtype(dtype).name


# TensorFlow's largest rank (TensorShape's kMaxDims): a shape of more dimensions is no shape.
MAX_RANK = 254

# A constant in short form (a few values, the last one repeated) is expanded to its full shape
# in memory. Real graphs store their large weights in full (tensor_content), so a short form
# that expands beyond this is corrupt or a memory bomb, not a model; the converter's constant
# budget (budget.py, through `charge`) bounds the total as well.
MAX_EXPANDED_BYTES = 1 << 28


def check_rank(rank: int) -> None:
    if rank > MAX_RANK:
        raise ValueError(f"rank {rank} is more than TensorFlow's maximum of {MAX_RANK}")


def tensor_to_numpy(proto: tensor_pb2.TensorProto, charge=None) -> np.ndarray | None:
    """Decode a TensorProto the way TensorFlow does, including its short-form encodings.

    TF may store only a prefix of the values; the last one is then repeated to fill the shape.
    Every way the proto can disagree with itself (content length, value count, values out of
    the dtype's range, a rank above TensorFlow's) is a ValueError with a readable message. A
    short form is expanded only if `charge(bytes, what)` (the converter's constant budget,
    budget.py; the generated loaders pass none) pays for it.
    """
    dtype = _NUMPY.get(proto.dtype)
    if dtype is None:
        raise ValueError(f"tensors of type {type_name(proto.dtype)} are not supported")
    check_rank(len(proto.tensor_shape.dim))
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(s < 0 for s in shape):
        raise ValueError(f"constant with unknown dimension in shape {shape}")
    # Python ints: huge dims must not wrap around to a small size
    size = math.prod(shape)
    itemsize = np.dtype(dtype).itemsize
    # each read of the field copies the bytes: read it once
    content = proto.tensor_content
    if content:
        if dtype is object:
            raise ValueError("string tensor stored as raw content")
        if len(content) != size * itemsize:
            raise ValueError(
                f"tensor content is {len(content)} bytes, shape {shape} of "
                f"{dtype_name(proto.dtype)} needs {size * itemsize}"
            )
        # a read-only view of the bytes read above: no second copy
        return np.frombuffer(content, dtype=dtype).reshape(shape)
    field = getattr(proto, _VALUE_FIELD[proto.dtype])
    values = list(field)
    if proto.dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        # two floats per value: real, imaginary (TF drops an odd last one)
        values = [complex(r, i) for r, i in zip(values[::2], values[1::2])]
    if len(values) > size:
        raise ValueError(f"tensor holds {len(values)} values, shape {shape} needs {size}")
    if size * itemsize > MAX_EXPANDED_BYTES:
        raise ValueError(
            f"constant of shape {shape} would expand {len(values)} stored values to "
            f"{size * itemsize / 2**20:.0f} MiB"
        )
    stored = f"{len(field)} value{'s' if len(field) != 1 else ''}"
    what = f"a {dtype_name(proto.dtype)} constant of shape {shape} stored as {stored}"
    if charge is not None and not charge(size * itemsize, what):
        return None  # the conversion has failed already: see budget.Budget.decoded
    try:
        if proto.dtype == types_pb2.DT_HALF:
            values = np.array(values, np.uint16).view(np.float16)
        if size == 0:
            return np.zeros(shape, dtype)
        if len(values) == 0:
            return np.zeros(shape, dtype) if dtype is not object else np.full(shape, b"", object)
        flat = np.empty(size, dtype)
        flat[: len(values)] = values
    except (OverflowError, TypeError, ValueError) as err:
        raise ValueError(f"values do not fit {dtype_name(proto.dtype)}: {err}") from None
    flat[len(values) :] = values[-1]
    return flat.reshape(shape)


def attr_dtype(enum: int) -> str:
    """The dtype an attribute holds: as `dtype_name`, and never a reference type (TensorFlow
    refuses `float32_ref` as an attribute value: a reference is no type of its own)."""
    if enum > _REF and enum in _DATATYPES:
        raise ValueError(f"{type_name(enum)} is a reference type, which no attribute may hold")
    return dtype_name(enum)


def read_graphdef(path: str | os.PathLike) -> graph_pb2.GraphDef:
    return read_graph_file(path)[0]


def read_graph_file(path: str | os.PathLike) -> tuple[graph_pb2.GraphDef, str]:
    """(GraphDef, sha256 of the file). Binary or text; the format is taken from the content,
    not trusted from the suffix alone, because users rename files freely. The file is read
    once: hashing it separately would read a 500 MB graph twice."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not a GraphDef file")
    data = read_file(path)
    if len(data) < 4096 and not data.strip():
        raise BadInputError(f"{path}: file is empty")
    digest = hashlib.sha256(data).hexdigest()
    graph = graph_pb2.GraphDef()
    if is_text_graph(data):
        parse_text(data, graph, path, "a text GraphDef")
    else:
        try:
            graph.ParseFromString(data)
        except (message.DecodeError, RuntimeError, ValueError) as err:
            raise BadInputError(
                f"{path}: not a binary GraphDef (truncated or another format): {one_line(err)}"
            ) from None
    if not graph.node:
        raise BadInputError(f"{path}: the GraphDef has no nodes")
    return graph, digest


# A text GraphDef opens with one of GraphDef's field names, after blank lines and # comments. A
# binary one cannot: it opens with a field tag (0x0a, a newline, for a node), the node's length
# and the node's own tags, never a name followed by `{`, `:` or `<`. Only the content decides,
# in the converter and in the loader alike: users rename files freely.
_TEXT_GRAPH_START = re.compile(
    rb"\s*(?:#[^\n]*(?:\n\s*|\Z))*(?:(?:node|library|versions?|debug_info)\s*[{:<]|\Z)"
)


def is_text_graph(data: bytes) -> bool:
    """Whether a graph file holds a text GraphDef rather than a binary one."""
    return _TEXT_GRAPH_START.match(data[:4096]) is not None


def one_line(err: BaseException, limit: int = 300) -> str:
    """The parser's message on one line, cut short: protobuf quotes the offending input, and
    one line of a text graph can hold megabytes of tensor content."""
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text or type(err).__name__


def read_file(path: Path) -> bytes:
    """An input file's bytes (files.read_input: a regular file, read up to its size);
    BadInputError when it cannot be read or is empty."""
    try:
        data = read_input(path)
    except OSError as err:
        raise BadInputError(f"{path}: cannot read: {err.strerror or err}") from None
    if not data:
        raise BadInputError(f"{path}: file is empty")
    return data


def parse_text(data: bytes, proto: message.Message, path: Path, what: str) -> None:
    """Text-format `data` parsed into `proto`, or BadInputError "PATH: not WHAT: why". The one
    place graph2py parses text: protobuf's text parser recurses once per nested message
    (AttrValue holds NameAttrList holds AttrValue, without end), so deep nesting is refused
    here when it exhausts Python's recursion."""
    try:
        text_format.Parse(data.decode("utf-8"), proto)
    except RecursionError:
        raise BadInputError(f"{path}: not {what}: messages nested too deeply") from None
    except (text_format.ParseError, UnicodeDecodeError, RuntimeError) as err:
        raise BadInputError(f"{path}: not {what}: {one_line(err)}") from None


def decode_attr(value) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "s":
        return value.s.decode("utf-8", errors="replace")
    if kind in ("i", "f", "b"):
        return getattr(value, kind)
    if kind == "type":
        return attr_dtype(value.type)
    if kind == "shape":
        return decode_shape(value.shape)
    if kind == "tensor":
        return tensor_to_numpy(value.tensor, budget.current().decoded)
    if kind == "func":
        return value.func.name
    if kind == "list":
        lst = value.list
        for name in ("i", "f", "b", "s", "type", "shape", "tensor", "func"):
            items = list(getattr(lst, name))
            if items:
                if name == "s":
                    return [s.decode("utf-8", errors="replace") for s in items]
                if name == "type":
                    return [attr_dtype(t) for t in items]
                if name == "shape":
                    return [decode_shape(s) for s in items]
                if name == "tensor":
                    return [tensor_to_numpy(t, budget.current().decoded) for t in items]
                if name == "func":
                    return [f.name for f in items]
                return items
        return []
    return None


def decode_shape(shape) -> tuple[int | None, ...] | None:
    """TensorShapeProto -> tuple with None for unknown dims, or None for unknown rank."""
    if shape.unknown_rank:
        return None
    check_rank(len(shape.dim))
    return tuple(d.size if d.size >= 0 else None for d in shape.dim)


