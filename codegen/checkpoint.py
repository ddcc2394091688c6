"""Read TensorFlow checkpoints (tensor bundles) with numpy alone.

A checkpoint `PREFIX` is `PREFIX.index`, a LevelDB-format table mapping each checkpoint key to a
`BundleEntryProto` (dtype, shape, shard, offset, size, crc32c), and the data files
`PREFIX.data-0000K-of-0000N` holding raw little-endian tensor bytes. Data files are memory-mapped
and a tensor is a read-only view into one: nothing is read until a value is used.

Everything between the READER markers is copied verbatim into generated `load_weights.py` files,
so it may use only the standard library and numpy, and raises `CheckpointError` (a ValueError).
"""

from __future__ import annotations

# BEGIN READER
import mmap
import os
import struct

import numpy as np


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


def _fields(data):
    """(field number, value) pairs of a protobuf message: ints for varint and fixed fields,
    bytes for length-delimited ones."""
    pos, out = 0, []
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = bytes(data[pos : pos + length]), pos + length
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        if pos > len(data):
            raise CheckpointError("truncated protobuf message")
        out.append((number, value))
    return out


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _snappy(data):
    """Decompress a snappy block (LevelDB tables may be written with snappy)."""
    size, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            length += 1
            out += data[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise CheckpointError("corrupt snappy block")
        for _ in range(length):
            out.append(out[-offset])
    if len(out) != size:
        raise CheckpointError("corrupt snappy block")
    return bytes(out)


class CheckpointReader:
    """The tensors of the checkpoint at `prefix` (PREFIX.index and PREFIX.data-*), by key.
    Each value read is checked against its crc32c, unless larger than `verify_up_to` bytes
    (checking costs about 30 ms per MiB)."""

    def __init__(self, prefix, verify_up_to=None):
        self.prefix = str(prefix)
        self.verify_up_to = verify_up_to
        index = self.prefix + ".index"
        try:
            with open(index, "rb") as f:
                table = f.read()
        except OSError as err:
            raise CheckpointError(
                f"{index}: cannot read the checkpoint index: {err.strerror or err}"
            ) from None
        try:
            self._entries = self._read_table(table)
        except (CheckpointError, IndexError, struct.error) as err:
            raise CheckpointError(f"{index}: not a checkpoint index: {err}") from None
        header = dict(_fields(self._entries.pop(b"", b"")))
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
        raw = self._entries.get(key.encode("utf-8", "surrogateescape"))
        if raw is None:
            raise CheckpointError(f"{self.prefix}: the checkpoint has no variable {key!r}")
        fields = _fields(raw)
        values = dict(fields)
        shape = []
        for number, dim in _fields(values.get(2, b"")):
            if number == 3 and dim:
                raise CheckpointError(f"{self.prefix}: variable {key!r} has an unknown rank")
            if number == 2:
                shape.append(_signed(dict(_fields(dim)).get(1, 0)))
        return (
            values.get(1, 0),
            tuple(shape),
            values.get(3, 0),
            values.get(4, 0),
            values.get(5, 0),
            values.get(6),
            [v for n, v in fields if n == 7],
        )

    def _bytes(self, key, shard, offset, size):
        name = f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"
        if shard not in self._maps:
            try:
                with open(name, "rb") as f:
                    length = os.fstat(f.fileno()).st_size
                    self._maps[shard] = (
                        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if length else b""
                    )
            except OSError as err:
                raise CheckpointError(
                    f"{name}: cannot read checkpoint data: {err.strerror or err}"
                ) from None
        data = self._maps[shard]
        if offset + size > len(data):
            raise CheckpointError(
                f"{name}: truncated: variable {key!r} needs bytes {offset}..{offset + size}, "
                f"the file has {len(data)}"
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
        if dtype not in _CHECKPOINT_DTYPES:
            raise CheckpointError(
                f"{self.prefix}: variable {key!r} has dtype enum {dtype}: not supported"
            )
        count = 1
        for d in shape:
            if d < 0:
                raise CheckpointError(f"{self.prefix}: variable {key!r} has shape {shape}")
            count *= d
        itemsize = np.dtype(_CHECKPOINT_DTYPES[dtype]).itemsize
        if count * itemsize != size:
            raise CheckpointError(
                f"{self.prefix}: variable {key!r} of shape {shape} is {size} bytes, "
                f"expected {count * itemsize}"
            )
        data = self._bytes(key, shard, offset, size)
        if crc is not None and (self.verify_up_to is None or size <= self.verify_up_to):
            if crc32c_masked(memoryview(data)[offset : offset + size]) != crc:
                raise CheckpointError(f"{self.prefix}: variable {key!r}: checksum mismatch")
        array = np.frombuffer(data, _CHECKPOINT_DTYPES[dtype], count, offset)
        return array.reshape(shape)

    def _assemble(self, key, dtype, shape, slices):
        if dtype not in _CHECKPOINT_DTYPES:
            raise CheckpointError(
                f"{self.prefix}: variable {key!r} has dtype enum {dtype}: not supported"
            )
        parts = []
        for proto in slices:
            extents = [dict(_fields(e)) for n, e in _fields(proto) if n == 1]
            if len(extents) != len(shape):
                raise CheckpointError(f"{self.prefix}: variable {key!r}: bad slice {extents}")
            starts = [_signed(e.get(1, 0)) for e in extents]
            lengths = [_signed(e[2]) if 2 in e else -1 for e in extents]
            parts.append((starts, lengths, _slice_key(key, starts, lengths)))
        itemsize = np.dtype(_CHECKPOINT_DTYPES[dtype]).itemsize
        total = itemsize
        for d in shape:
            total *= d
        if any(d < 0 for d in shape) or sum(self.entry(k)[4] for _, _, k in parts) != total:
            raise CheckpointError(
                f"{self.prefix}: variable {key!r}: its slices do not make up shape {shape}"
            )
        out = np.zeros(shape, _CHECKPOINT_DTYPES[dtype])
        for starts, lengths, slice_key in parts:
            part = self.tensor(slice_key)
            index = tuple(
                slice(None) if n < 0 else slice(b, b + n) for b, n in zip(starts, lengths)
            )
            if out[index].shape != part.shape:
                raise CheckpointError(f"{self.prefix}: variable {key!r}: slice shape mismatch")
            out[index] = part
        out.flags.writeable = False
        return out

    def string(self, key):
        """A scalar string tensor (e.g. the object graph TF2 checkpoints carry) as bytes."""
        dtype, shape, shard, offset, size, _, _ = self.entry(key)
        if dtype != _DT_STRING or shape != ():
            raise CheckpointError(f"{self.prefix}: {key!r} is not a scalar string")
        data = self._bytes(key, shard, offset, size)[offset : offset + size]
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


# END READER


def reader_source() -> str:
    """The reader's source, for embedding in generated files (which import mmap, os, struct
    and numpy at their top)."""
    with open(__file__, encoding="utf-8") as f:
        text = f.read()
    body = text.split("# BEGIN READER\n", 1)[1].split("# END READER\n", 1)[0]
    lines = [line for line in body.splitlines() if not line.startswith(("import ", "from "))]
    return "\n".join(lines).strip() + "\n"
