"""Read TensorFlow checkpoints (tensor bundles) with numpy alone.

A checkpoint `PREFIX` is `PREFIX.index`, a LevelDB-format table mapping each checkpoint key to a
`BundleEntryProto` (dtype, shape, shard, offset, size, crc32c), and the data files
`PREFIX.data-0000K-of-0000N` holding raw little-endian tensor bytes. Data files are memory-mapped
and a tensor is a read-only view into one: nothing is read until a value is used.

Generated `load_weights.py` files read checkpoints through this reader (codegen/runtime.py), and
every problem it finds is a `CheckpointError` (a ValueError) naming the file or variable.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from .files import open_input, read_input


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, corrupt or in a form this reader cannot read."""


# DataType enum -> numpy dtype, for the types a model's variables hold
_CHECKPOINT_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    17: np.uint16,
    19: np.float16,
    22: np.uint32,
    23: np.uint64,
}
_DT_STRING = 7
_TABLE_MAGIC = 0xDB4775248B80FB57


def _crc_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()
_CRC_NUMPY = np.array(_CRC_TABLE, np.uint32)
_CRC_BLOCK = 4096  # bytes per lane of the vectorised CRC
_CRC_SHIFT = []  # per byte of a register: its image after _CRC_BLOCK zero bytes


def _crc_update(crc, data):
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _crc_shift_tables():
    """CRC is linear: the register after a block is (register before, moved through
    _CRC_BLOCK zero bytes) XOR (the block's CRC from zero). The move is a linear map,
    tabulated per register byte."""
    if not _CRC_SHIFT:
        basis = [_crc_update(1 << bit, bytes(_CRC_BLOCK)) for bit in range(32)]
        for k in range(4):
            row = []
            for v in range(256):
                image = 0
                for bit in range(8):
                    if v >> bit & 1:
                        image ^= basis[8 * k + bit]
                row.append(image)
            _CRC_SHIFT.append(row)
    return _CRC_SHIFT


def crc32c_masked(data):
    """LevelDB's masked CRC-32C (Castagnoli) of `data`, as checkpoints store it. Large data is
    split into 4 KiB lanes whose CRCs numpy computes side by side, then combined."""
    data = memoryview(data).cast("B")
    head = len(data) % _CRC_BLOCK if len(data) >= 16 * _CRC_BLOCK else len(data)
    crc = _crc_update(0xFFFFFFFF, data[:head])
    if head < len(data):
        lanes = np.frombuffer(data[head:], np.uint8).reshape(-1, _CRC_BLOCK)
        partial = np.zeros(len(lanes), np.uint32)
        for j in range(_CRC_BLOCK):
            partial = _CRC_NUMPY[(partial ^ lanes[:, j]) & 0xFF] ^ (partial >> 8)
        s0, s1, s2, s3 = _crc_shift_tables()
        for value in partial.tolist():
            crc = (
                s0[crc & 0xFF] ^ s1[crc >> 8 & 0xFF] ^ s2[crc >> 16 & 0xFF] ^ s3[crc >> 24]
            ) ^ value
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise CheckpointError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


_WIRE_TYPES = {0: "a varint", 1: "a fixed64", 2: "length-delimited", 5: "a fixed32"}


def _fields(data):
    """(field number, wire type, value) of each field of a protobuf message: an int for a
    varint or fixed field, bytes for a length-delimited one. Every length is checked against
    the bytes left before it is used."""
    pos, out, end = 0, [], len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if width > end - pos:
                raise CheckpointError(f"field {number} runs past the end of its message")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length > end - pos:
                raise CheckpointError(
                    f"field {number} claims {length} bytes, past the end of its message "
                    f"({end - pos} left)"
                )
            value, pos = bytes(data[pos : pos + length]), pos + length
        else:
            raise CheckpointError(f"field {number} has unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _message(data, name, schema):
    """The fields of a protobuf message `name` that `schema` describes, {field number: "int"
    (a varint or fixed field), "bytes" (length-delimited) or "repeated" (length-delimited, every
    occurrence, as a list)}, each checked to have the wire type its kind needs; a field that
    occurs twice keeps its last value, as protobuf reads it. Other fields are skipped."""
    found = {number: [] for number, kind in schema.items() if kind == "repeated"}
    for number, wire, value in _fields(data):
        kind = schema.get(number)
        if kind is None:
            continue
        if (wire == 2) != (kind != "int"):
            wanted = "a number" if kind == "int" else "length-delimited"
            raise CheckpointError(
                f"field {number} of {name} has wire type {wire} ({_WIRE_TYPES[wire]}), "
                f"not {wanted}"
            )
        if kind == "repeated":
            found[number].append(value)
        else:
            found[number] = value
    return found


# The messages this reader decodes, as TensorFlow's tensor_bundle.proto, tensor_shape.proto
# and tensor_slice.proto define them.
_HEADER = {1: "int", 2: "int"}  # BundleHeaderProto: num_shards, endianness
_ENTRY = {1: "int", 2: "bytes", 3: "int", 4: "int", 5: "int", 6: "int", 7: "repeated"}
_SHAPE = {2: "repeated", 3: "int"}  # TensorShapeProto: dim, unknown_rank
_DIM = {1: "int"}  # TensorShapeProto.Dim: size
_SLICE = {1: "repeated"}  # TensorSliceProto: extent
_EXTENT = {1: "int", 2: "int"}  # TensorSliceProto.Extent: start, length
_MAX_RANK = 254  # TensorFlow's


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


# A snappy copy tag of 3 bytes writes at most 64 bytes; nothing in the format writes more per
# byte read, so a block declaring more than this many times its size is corrupt.
_SNAPPY_MAX_RATIO = 22


def _snappy(data):
    """Decompress a snappy block (LevelDB tables may be written with snappy). The declared
    length is checked against what the block could hold, and decompression stops there."""
    size, pos = _varint(data, 0)
    end = len(data)
    if size > _SNAPPY_MAX_RATIO * end:
        raise CheckpointError(
            f"corrupt snappy block: {end} bytes cannot hold the {size} bytes it declares"
        )
    out = bytearray()
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if extra > end - pos:
                    raise CheckpointError("corrupt snappy block: truncated literal length")
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            length += 1
            if length > end - pos or len(out) + length > size:
                raise CheckpointError("corrupt snappy block: literal past the end")
            out += data[pos : pos + length]
            pos += length
            continue
        width = 1 if kind == 1 else 2 if kind == 2 else 4
        if width > end - pos:
            raise CheckpointError("corrupt snappy block: truncated copy")
        if kind == 1:
            length, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | data[pos]
        else:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + width], "little")
        pos += width
        if offset == 0 or offset > len(out):
            raise CheckpointError("corrupt snappy block: copy from before the start")
        if len(out) + length > size:
            raise CheckpointError(f"corrupt snappy block: expands past its declared {size} bytes")
        start = len(out) - offset
        if length <= offset:
            out += out[start : start + length]
        else:  # the copy overlaps what it writes: byte by byte
            for i in range(length):
                out.append(out[start + i])
    if len(out) != size:
        raise CheckpointError("corrupt snappy block: shorter than it declares")
    return bytes(out)


class CheckpointReader:
    """The tensors of the checkpoint at `prefix` (PREFIX.index and PREFIX.data-*), by key.
    Each value read is checked against its crc32c, unless larger than `verify_up_to` bytes
    (checking costs about 30 ms per MiB).

    The index is as untrusted as any input: every field's wire type and every length and
    offset is checked before it is used, and a value must lie inside its data file, so that a
    broken or hostile checkpoint is a CheckpointError naming the file or variable."""

    def __init__(self, prefix, verify_up_to=None):
        self.prefix = str(prefix)
        self.verify_up_to = verify_up_to
        index = self.prefix + ".index"
        try:
            table = read_input(index)
        except OSError as err:
            raise CheckpointError(
                f"{index}: cannot read the checkpoint index: {err.strerror or err}"
            ) from None
        try:
            self._entries = self._read_table(table)
            header = _message(self._entries.pop(b"", b""), "BundleHeaderProto", _HEADER)
        except (CheckpointError, IndexError) as err:
            raise CheckpointError(f"{index}: not a checkpoint index: {err}") from None
        if header.get(2, 0) != 0:
            raise CheckpointError(f"{index}: big-endian checkpoints are not supported")
        self.num_shards = header.get(1, 1)
        self._maps = {}

    @staticmethod
    def _block(table, handle):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        if offset + size + 5 > len(table):
            raise CheckpointError("block past the end of the file (truncated?)")
        data, kind = table[offset : offset + size], table[offset + size]
        stored = int.from_bytes(table[offset + size + 1 : offset + size + 5], "little")
        if crc32c_masked(table[offset : offset + size + 1]) != stored:
            raise CheckpointError("block checksum mismatch (corrupt file)")
        if kind == 1:
            return _snappy(data)
        if kind != 0:
            raise CheckpointError(f"block compression type {kind} is not supported")
        return data

    @classmethod
    def _read_table(cls, table):
        if len(table) < 48 or int.from_bytes(table[-8:], "little") != _TABLE_MAGIC:
            raise CheckpointError("no table footer (truncated or another format)")
        footer = table[-48:-8]
        _, pos = _varint(footer, 0)  # metaindex handle: unused
        _, pos = _varint(footer, pos)
        index = cls._block(table, footer[pos:])
        entries = {}
        for _, handle in cls._block_items(index):
            entries.update(cls._block_items(cls._block(table, handle)))
        return entries

    @staticmethod
    def _block_items(block):
        if len(block) < 4:
            raise CheckpointError("block too short")
        restarts = int.from_bytes(block[-4:], "little")
        end = len(block) - 4 - 4 * restarts
        if end < 0:
            raise CheckpointError("bad block restart count")
        pos, key, items = 0, b"", []
        while pos < end:
            shared, pos = _varint(block, pos)
            unshared, pos = _varint(block, pos)
            length, pos = _varint(block, pos)
            if shared > len(key) or unshared + length > end - pos:
                raise CheckpointError("block entry past the end of its block")
            key = key[:shared] + bytes(block[pos : pos + unshared])
            pos += unshared
            items.append((key, bytes(block[pos : pos + length])))
            pos += length
        return items

    def keys(self):
        return sorted(k.decode("utf-8", "replace") for k in self._entries if k[:1] != b"\x00")

    def __contains__(self, key):
        return key.encode("utf-8", "surrogateescape") in self._entries

    def entry(self, key):
        """(dtype enum, shape, shard, offset, size, crc32c, slices) of a key; slices holds
        a TensorSliceProto per slice of a variable saved in slices, else nothing."""
        return self._entry(key, f"variable {key!r}")

    def _entry(self, key, what):
        raw = self._entries.get(key.encode("utf-8", "surrogateescape"))
        if raw is None:
            raise CheckpointError(f"{self.prefix}: the checkpoint has no {what}")
        try:
            values = _message(raw, "BundleEntryProto", _ENTRY)
            shape_proto = _message(values.get(2, b""), "TensorShapeProto", _SHAPE)
            if shape_proto.get(3):
                raise CheckpointError("unknown rank")
            dims = shape_proto[2]
            if len(dims) > _MAX_RANK:
                raise CheckpointError(f"rank {len(dims)} is more than {_MAX_RANK}")
            shape = tuple(
                _signed(_message(d, "TensorShapeProto.Dim", _DIM).get(1, 0)) for d in dims
            )
        except CheckpointError as err:
            raise CheckpointError(f"{self.prefix}: {what}: {err}") from None
        shard = values.get(3, 0)
        if shard >= self.num_shards:
            raise CheckpointError(
                f"{self.prefix}: {what} is in data file {shard}, of {self.num_shards}"
            )
        return (
            values.get(1, 0),
            shape,
            shard,
            values.get(4, 0),
            values.get(5, 0),
            values.get(6),
            values[7],
        )

    def _bytes(self, what, shard, offset, size):
        """The memory-mapped data file `shard`, checked to hold bytes offset..offset+size."""
        name = f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"
        if shard not in self._maps:
            try:
                file, length = open_input(name)
                with file:
                    self._maps[shard] = (
                        mmap.mmap(file.fileno(), length, access=mmap.ACCESS_READ) if length else b""
                    )
            except (OSError, ValueError) as err:
                raise CheckpointError(
                    f"{name}: cannot read checkpoint data: {getattr(err, 'strerror', None) or err}"
                ) from None
        data = self._maps[shard]
        if offset + size > len(data):
            raise CheckpointError(
                f"{name}: truncated: {what} needs bytes {offset}..{offset + size} of this data "
                f"file, which has {len(data)}"
            )
        return data

    def tensor(self, key):
        """The value of `key` as a read-only array: a view into the memory-mapped data file, or
        for a variable saved in slices (TF2's sharding policies split large ones) the slices
        assembled into a new array."""
        dtype, shape, shard, offset, size, crc, slices = self.entry(key)
        if dtype == _DT_STRING:
            raise CheckpointError(f"{self.prefix}: {key!r} is a string tensor: not supported")
        if slices:
            return self._assemble(key, dtype, shape, slices)
        return self._plain(f"variable {key!r}", (dtype, shape, shard, offset, size, crc))

    def _plain(self, what, entry):
        """The value of an entry stored in one piece, checked before it is read."""
        dtype, shape, shard, offset, size, crc = entry
        if dtype not in _CHECKPOINT_DTYPES:
            raise CheckpointError(f"{self.prefix}: {what} has dtype enum {dtype}: not supported")
        count = 1
        for d in shape:
            if d < 0:
                raise CheckpointError(f"{self.prefix}: {what} has shape {shape}")
            count *= d
        itemsize = np.dtype(_CHECKPOINT_DTYPES[dtype]).itemsize
        if count * itemsize != size:
            raise CheckpointError(
                f"{self.prefix}: {what} of shape {shape} is {size} bytes, "
                f"expected {count * itemsize}"
            )
        data = self._bytes(what, shard, offset, size)
        if crc is not None and (self.verify_up_to is None or size <= self.verify_up_to):
            if crc32c_masked(memoryview(data)[offset : offset + size]) != crc:
                raise CheckpointError(f"{self.prefix}: {what}: checksum mismatch")
        array = np.frombuffer(data, _CHECKPOINT_DTYPES[dtype], count, offset)
        return array.reshape(shape)

    def _assemble(self, key, dtype, shape, slices):
        """A variable saved in slices, each checked (its entry, and that its bytes lie in its
        data file, apart from every other slice's) before the array is allocated: its size is
        then at most the data files' bytes, whatever the index claims."""
        what = f"variable {key!r}"
        if dtype not in _CHECKPOINT_DTYPES:
            raise CheckpointError(f"{self.prefix}: {what} has dtype enum {dtype}: not supported")
        if any(d < 0 for d in shape):
            raise CheckpointError(f"{self.prefix}: {what} has shape {shape}")
        parts, spans = [], []
        for number, proto in enumerate(slices):
            try:
                extents = [
                    _message(e, "TensorSliceProto.Extent", _EXTENT)
                    for e in _message(proto, "TensorSliceProto", _SLICE)[1]
                ]
            except CheckpointError as err:
                raise CheckpointError(f"{self.prefix}: {what}: slice {number}: {err}") from None
            if len(extents) != len(shape):
                raise CheckpointError(f"{self.prefix}: {what}: bad slice {extents}")
            starts = [_signed(e.get(1, 0)) for e in extents]
            lengths = [_signed(e[2]) if 2 in e else -1 for e in extents]
            part = f"{what}, slice {number}"
            entry = self._entry(_slice_key(key, starts, lengths), part)
            if entry[0] != dtype or entry[6]:
                raise CheckpointError(f"{self.prefix}: {part} is not a plain {dtype} tensor")
            self._bytes(part, entry[2], entry[3], entry[4])  # in its data file
            spans.append((entry[2], entry[3], entry[4]))
            parts.append((starts, lengths, part, entry[:6]))
        itemsize = np.dtype(_CHECKPOINT_DTYPES[dtype]).itemsize
        total = itemsize
        for d in shape:
            total *= d
        spans.sort()
        overlap = any(a[0] == b[0] and a[1] + a[2] > b[1] for a, b in zip(spans, spans[1:]))
        if overlap or sum(span[2] for span in spans) != total:
            raise CheckpointError(f"{self.prefix}: {what}: its slices do not make up shape {shape}")
        out = np.zeros(shape, _CHECKPOINT_DTYPES[dtype])
        for starts, lengths, part, entry in parts:
            value = self._plain(part, entry)
            index = tuple(
                slice(None) if n < 0 else slice(b, b + n) for b, n in zip(starts, lengths)
            )
            if out[index].shape != value.shape:
                raise CheckpointError(f"{self.prefix}: {what}: slice shape mismatch")
            out[index] = value
        out.flags.writeable = False
        return out

    def string(self, key):
        """A scalar string tensor (e.g. the object graph TF2 checkpoints carry) as bytes."""
        dtype, shape, shard, offset, size, _, _ = self.entry(key)
        if dtype != _DT_STRING or shape != ():
            raise CheckpointError(f"{self.prefix}: {key!r} is not a scalar string")
        data = self._bytes(f"variable {key!r}", shard, offset, size)[offset : offset + size]
        length, pos = _varint(data, 0)
        pos += 4  # masked crc32c of the length
        if pos + length > len(data):
            raise CheckpointError(f"{self.prefix}: {key!r} is truncated")
        return bytes(data[pos : pos + length])


def _ordered_number(value):
    """OrderedCode::WriteNumIncreasing: a length byte, then the big-endian bytes."""
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(data)]) + data


def _ordered_signed(value):
    """OrderedCode::WriteSignedNumIncreasing: length in the leading bits of the first bytes."""
    x = ~value if value < 0 else value
    length = max(1, -(-(x.bit_length() + 1) // 7))
    data = bytearray(value.to_bytes(10, "big", signed=True)[10 - length :])
    header = (0xFF << (8 - min(length, 8))) & 0xFF, {9: 0x80, 10: 0xC0}.get(length, 0)
    data[0] ^= header[0]
    if length > 1:
        data[1] ^= header[1]
    return bytes(data)


def _slice_key(name, starts, lengths):
    """The key TF stores one slice of a variable under (checkpoint::EncodeTensorNameSlice)."""
    escaped = b"".join(
        b"\x00\xff" if b == 0 else b"\xff\x00" if b == 0xFF else bytes([b])
        for b in name.encode("utf-8")
    )
    key = _ordered_number(0) + escaped + b"\x00\x01" + _ordered_number(len(starts))
    for start, length in zip(starts, lengths):
        key += _ordered_signed(start) + _ordered_signed(length)
    return key.decode("utf-8", "surrogateescape")


def checkpoint_prefix(source):
    """The checkpoint prefix for a SavedModel directory, a `.meta` or `.index` file, or a prefix."""
    source = os.fspath(source)
    if os.path.isdir(source):
        return os.path.join(source, "variables", "variables")
    for suffix in (".meta", ".index"):
        if source.endswith(suffix):
            return source[: -len(suffix)]
    return source
