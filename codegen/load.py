"""Read a GraphDef from disk without importing TensorFlow, and decode its protobuf values
(tensors, shapes, attributes) into numpy arrays and plain Python values.

TensorFlow takes seconds to import; its protobuf schemas, shipped by tensorboard, take
milliseconds. Everything here works on those schemas and numpy alone.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import message, text_format
from tensorboard.compat.proto import graph_pb2, tensor_pb2, types_pb2

from . import budget
from .errors import BadInputError
from .files import read_input

TEXT_SUFFIXES = (".pbtxt", ".prototxt", ".txt")

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
    types_pb2.DT_QINT8: np.int8,
    types_pb2.DT_QUINT8: np.uint8,
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
    types_pb2.DT_QINT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
    types_pb2.DT_STRING: "string_val",
}


def dtype_name(enum: int) -> str:
    """'float32' for DT_FLOAT: the spelling Keras and numpy both accept."""
    dtype = _NUMPY.get(enum)
    if dtype is None or dtype is object:
        return (
            types_pb2.DataType.Name(enum).removeprefix("DT_").lower()
            if enum in types_pb2.DataType.values()
            else f"dtype{enum}"
        )
    return np.dtype(dtype).name


# TensorFlow's largest rank (TensorShape's kMaxDims): a shape of more dimensions is no shape.
MAX_RANK = 254


def tensor_to_numpy(proto: tensor_pb2.TensorProto) -> np.ndarray | None:
    """Decode a TensorProto the way TensorFlow does, including its short-form encodings.

    TF may store only a prefix of the values; the last one is then repeated to fill the shape.
    Every way the proto can disagree with itself (content length, value count, values out of
    the dtype's range, a rank above TensorFlow's) is a ValueError with a readable message. A
    short form is expanded only if the conversion's constant budget (budget.py) pays for it.
    """
    dtype = _NUMPY.get(proto.dtype)
    if dtype is None:
        raise ValueError(f"tensors of type {_type_name(proto.dtype)} are not supported")
    _check_rank(len(proto.tensor_shape.dim))
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(s < 0 for s in shape):
        raise ValueError(f"constant with unknown dimension in shape {shape}")
    size = math.prod(shape)  # Python ints: huge dims must not wrap around to a small size
    itemsize = np.dtype(dtype).itemsize
    content = proto.tensor_content  # each read of the field copies the bytes: read it once
    if content:
        if dtype is object:
            raise ValueError("string tensor stored as raw content")
        if len(content) != size * itemsize:
            raise ValueError(
                f"tensor content is {len(content)} bytes, shape {shape} of "
                f"{dtype_name(proto.dtype)} needs {size * itemsize}"
            )
        flat = np.frombuffer(content, dtype=dtype)
        return flat.reshape(shape)  # a read-only view of the proto's bytes: no second copy
    field = getattr(proto, _VALUE_FIELD[proto.dtype])
    if len(field) > size:
        raise ValueError(f"tensor holds {len(field)} values, shape {shape} needs {size}")
    stored = f"{len(field)} value{'s' if len(field) != 1 else ''}"
    what = f"a {dtype_name(proto.dtype)} constant of shape {shape} stored as {stored}"
    if not budget.current().decoded(size * itemsize, what):
        return None  # the conversion has failed already: see Budget.decoded
    values = list(field)
    try:
        if proto.dtype == types_pb2.DT_HALF:
            values = np.array(values, np.uint16).view(np.float16)
        elif proto.dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
            values = [complex(r, i) for r, i in zip(values[::2], values[1::2])]
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


def _type_name(enum: int) -> str:
    if enum in types_pb2.DataType.values():
        return types_pb2.DataType.Name(enum)
    return f"{enum} (no such DataType)"


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
    if path.suffix.lower() in TEXT_SUFFIXES or _looks_like_text(data):
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


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096].lstrip()
    if not head.startswith((b"node", b"library", b"versions", b"#")):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def one_line(err: BaseException, limit: int = 300) -> str:
    """The parser's message on one line, cut short: protobuf quotes the offending input, and
    one line of a text graph can hold megabytes of tensor content."""
    text = " ".join(str(err).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text or type(err).__name__


def decode_attr(value) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "s":
        return value.s.decode("utf-8", errors="replace")
    if kind in ("i", "f", "b"):
        return getattr(value, kind)
    if kind == "type":
        return dtype_name(value.type)
    if kind == "shape":
        return decode_shape(value.shape)
    if kind == "tensor":
        return tensor_to_numpy(value.tensor)
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
                    return [dtype_name(t) for t in items]
                if name == "shape":
                    return [decode_shape(s) for s in items]
                if name == "tensor":
                    return [tensor_to_numpy(t) for t in items]
                if name == "func":
                    return [f.name for f in items]
                return items
        return []
    return None


def decode_shape(shape) -> tuple[int | None, ...] | None:
    """TensorShapeProto -> tuple with None for unknown dims, or None for unknown rank."""
    if shape.unknown_rank:
        return None
    _check_rank(len(shape.dim))
    return tuple(d.size if d.size >= 0 else None for d in shape.dim)


def _check_rank(rank: int) -> None:
    if rank > MAX_RANK:
        raise ValueError(f"rank {rank} is more than TensorFlow's maximum of {MAX_RANK}")
