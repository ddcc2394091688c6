"""The second path: ops no layer pattern claimed, as backend-neutral `keras.ops` expressions.

Keras 3 records a keras.ops call on symbolic tensors as a node of the functional model and
serializes it, so these need no Lambda and run on every backend. Each entry below states the
TensorFlow op's meaning in keras.ops terms; where the two differ for some attribute values
(an exclusive cumsum, a legacy resize) the function declines and the op falls through to the
TensorFlow-only layer rather than computing something else.

Tables map an op to a keras.ops function when the arguments line up one to one (the op table,
codegen/optable, spells them); the functions after them handle ops whose arguments need
translating.
"""

from __future__ import annotations

from .. import optable
from ..graph import Node
from ..optable.arrays import strided_slice_index
from ..spec import Call, Item, Ref
from .registry import Matcher, fallback, pattern, tensor_literal
from .sizes import product, sizes

# op -> keras.ops function, for the ops whose arguments line up one to one (declared with the
# op in codegen/optable).
UNARY = optable.keras_spellings(optable.UNARY)
BINARY = optable.keras_spellings(optable.BINARY)
REDUCE = optable.keras_spellings(optable.REDUCTION)


def operands(m: Matcher, tensors: list[str], as_tensors: bool = False) -> tuple[list, list[str]]:
    """(how the expression refers to each tensor, the layer's inputs). At least one operand is
    a tensor input: an expression of literals alone would be a constant, not a model node.
    `as_tensors` wraps literals in convert_to_tensor, for functions taking a list of tensors."""
    inputs: list[str] = []
    refs = [m.operand(t, inputs) for t in tensors]
    if as_tensors:
        for i, t in enumerate(tensors):
            if not isinstance(refs[i], (Ref, Call)):
                refs[i] = tensor_literal(m.consts.value(t))
    if not inputs and tensors:
        inputs.append(tensors[0])
        refs[0] = Ref(0)
    return refs, inputs


def _kw(**kwargs) -> tuple:
    return tuple(kwargs.items())


FLOATS = ("float16", "float32", "float64", "bfloat16")


def _is_float(node: Node) -> bool:
    return node.attrs.get("T", "float32") in FLOATS


@fallback(*UNARY)
def unary(node: Node, m: Matcher):
    if node.op in ("Round", "Rint") and not _is_float(node):
        return None  # TF leaves integers alone; keras.ops.round does not
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call(UNARY[node.op], (x,)), inputs)


@fallback(*BINARY, "Div", "SquaredDifference", "BiasAdd")
def binary(node: Node, m: Matcher):
    if node.op == "BiasAdd" and node.attrs.get("data_format", "NHWC") != "NHWC":
        return None
    fn = BINARY.get(node.op, "add" if node.op == "BiasAdd" else None)
    if node.op in ("Div", "RealDiv"):  # integer division truncates in TF; keras.ops' is true
        if not _is_float(node):
            return None
        fn = "divide"
    refs, inputs = operands(m, node.inputs[:2])
    if node.op == "SquaredDifference":
        return m.ops([node], Call("square", (Call("subtract", tuple(refs)),)), inputs)
    return m.ops([node], Call(fn, tuple(refs)), inputs)


def _axes(m: Matcher, tensor: str):
    axes = m.ints(tensor)
    if axes is None:
        return None
    return axes[0] if len(axes) == 1 else tuple(axes)


@fallback(*REDUCE)
def reduce(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[1])
    if axis is None or (node.op == "Mean" and not _is_float(node)):
        return None  # an integer Mean truncates in TF; keras.ops.mean returns floats
    kwargs = _kw(axis=axis, keepdims=True) if node.attrs.get("keep_dims") else _kw(axis=axis)
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call(REDUCE[node.op], (x,), kwargs), inputs)


@fallback("ArgMax", "ArgMin")
def arg_reduce(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[1])
    if not isinstance(axis, int):
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    expr = Call(node.op.lower(), (x,), _kw(axis=axis))
    dtype = node.attrs.get("output_type", "int64")
    return m.ops([node], Call("cast", (expr, dtype)) if dtype != "int32" else expr, inputs)


@fallback("Cast")
def cast(node: Node, m: Matcher):
    dtype = node.attrs.get("DstT")
    if not isinstance(dtype, str):
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("cast", (x, dtype)), inputs)


@fallback("Reshape")
def reshape(node: Node, m: Matcher):
    target = m.ints(node.inputs[1])
    if target is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("reshape", (x, tuple(target))), inputs)


@fallback("Transpose")
def transpose(node: Node, m: Matcher):
    perm = m.ints(node.inputs[1])
    if perm is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("transpose", (x, tuple(perm))), inputs)


@fallback("ExpandDims")
def expand_dims(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[1])
    if not isinstance(axis, int):
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("expand_dims", (x, axis)), inputs)


@fallback("Squeeze")
def squeeze(node: Node, m: Matcher):
    dims = node.attrs.get("squeeze_dims") or []
    (x,), inputs = operands(m, node.inputs[:1])
    if not dims:
        return m.ops([node], Call("squeeze", (x,)), inputs)
    axis = dims[0] if len(dims) == 1 else tuple(dims)
    return m.ops([node], Call("squeeze", (x,), _kw(axis=axis)), inputs)


@fallback("StridedSlice")
def strided_slice(node: Node, m: Matcher):
    bounds = [m.ints(t) for t in node.inputs[1:4]]
    shape = m.shape(node.inputs[0])
    if any(b is None for b in bounds) or shape is None:
        return None
    try:
        index = strided_slice_index(node, *bounds, len(shape))
    except ValueError:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    x, index = _positive_steps(x, index, len(shape))
    return m.ops([node], indexed(x, index, len(shape)) if index else x, inputs)


def indexed(x, index: tuple, rank: int):
    """`x[index]` as Keras tensors take it. They refuse an index that is only None (a new axis)
    or only Ellipsis, which slices nothing: new axes alone are expand_dims, and an index that
    selects everything is a copy."""
    if not all(i is None or i is Ellipsis or i == slice(None) for i in index):
        return Item(x, _tuple_index(index))
    new_axes, position = [], 0
    for item in index:
        if item is None:
            new_axes.append(position)
            position += 1
        elif item is Ellipsis:
            position += rank - sum(1 for i in index if i is not None and i is not Ellipsis)
        else:
            position += 1
    expr = x
    for axis in new_axes:
        expr = Call("expand_dims", (expr, axis))
    return Call("copy", (x,)) if expr is x else expr


def _positive_steps(x, index: tuple, rank: int) -> tuple:
    """(x flipped along every axis the index walks backwards, the index that walks it
    forwards): PyTorch tensors take no negative step, so `x[5::-2]` is written
    `keras.ops.flip(x, axis=0)[-6::2]`. Flipped, element i is n-1-i, which negative indices
    say without knowing n: start b >= 0 becomes -(b+1), b < 0 becomes -b-1, and so does the
    stop; out-of-range bounds clamp alike. An index left with nothing to do is dropped."""
    axes, flipped = [], []
    consumed = sum(1 for item in index if item is not None and item is not Ellipsis)
    axis = 0
    for item in index:
        if item is Ellipsis:
            axis = rank - (consumed - axis)
            flipped.append(item)
            continue
        if isinstance(item, slice) and item.step is not None and item.step < 0:
            axes.append(axis)
            start, stop = (
                None if v is None else -(v + 1) if v >= 0 else -v - 1
                for v in (item.start, item.stop)
            )
            item = slice(start, stop, None if item.step == -1 else -item.step)
        flipped.append(item)
        if item is not None:
            axis += 1
    if not axes:
        return x, index
    x = Call("flip", (x,), _kw(axis=axes[0] if len(axes) == 1 else tuple(axes)))
    if all(item == slice(None) or item is Ellipsis for item in flipped):
        return x, ()
    return x, tuple(flipped)


def _tuple_index(index: tuple) -> tuple:
    """A Keras tensor takes a lone slice only inside a tuple (`x[:1]` fails, `x[:1, ...]`
    works): a one-slice index gets a trailing Ellipsis, which changes nothing else."""
    if len(index) == 1 and isinstance(index[0], slice):
        return (*index, Ellipsis)
    return index


@fallback("Slice")
def slice_(node: Node, m: Matcher):
    begin, size = m.ints(node.inputs[1]), m.ints(node.inputs[2])
    if begin is None or size is None or len(begin) != len(size):
        return None
    index = tuple(slice(b or None, None if s == -1 else b + s) for b, s in zip(begin, size))
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], indexed(x, index, len(index)), inputs)


@fallback("ConcatV2")
def concat(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[-1])
    if not isinstance(axis, int):
        return None
    refs, inputs = operands(m, node.inputs[:-1], as_tensors=True)
    return m.ops([node], Call("concatenate", (refs,), _kw(axis=axis)), inputs)


@fallback("Pack")
def pack(node: Node, m: Matcher):
    refs, inputs = operands(m, node.inputs, as_tensors=True)
    axis = node.attrs.get("axis", 0)
    return m.ops([node], Call("stack", (refs,), _kw(axis=axis) if axis else ()), inputs)


def _outputs(node: Node, count: int) -> list[str]:
    return [node.output(i) for i in range(count)]


@fallback("Unpack")
def unpack(node: Node, m: Matcher):
    num, axis = node.attrs.get("num"), node.attrs.get("axis", 0)
    (x,), inputs = operands(m, node.inputs[:1])
    if num == 1:  # one output is one tensor, not a list of one
        return m.ops([node], Call("squeeze", (x,), _kw(axis=axis)), inputs)
    kwargs = _kw(num=num, axis=axis) if axis else _kw(num=num)
    return m.ops([node], Call("unstack", (x,), kwargs), inputs, _outputs(node, num))


@fallback("Split")
def split(node: Node, m: Matcher):
    axis, num = _axes(m, node.inputs[0]), node.attrs.get("num_split")
    if not isinstance(axis, int):
        return None
    (x,), inputs = operands(m, node.inputs[1:2])
    if num == 1:
        return m.ops([node], Call("copy", (x,)), inputs)
    kwargs = _kw(axis=axis) if axis else ()
    return m.ops([node], Call("split", (x, num), kwargs), inputs, _outputs(node, num))


@fallback("SplitV")
def split_v(node: Node, m: Matcher):
    sizes, axis = m.ints(node.inputs[1]), _axes(m, node.inputs[2])
    shape = m.shape(node.inputs[0])
    if sizes is None or not isinstance(axis, int) or shape is None or not shape:
        return None
    if -1 in sizes:
        total = shape[axis]
        if total is None:
            return None
        sizes[sizes.index(-1)] = total - (sum(sizes) + 1)
    cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
    (x,), inputs = operands(m, node.inputs[:1])
    if len(sizes) == 1:
        return m.ops([node], Call("copy", (x,)), inputs)
    kwargs = _kw(axis=axis) if axis else ()
    return m.ops([node], Call("split", (x, cuts), kwargs), inputs, _outputs(node, len(sizes)))


@fallback("GatherV2")
def gather(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[2])
    if not isinstance(axis, int) or node.attrs.get("batch_dims", 0):
        return None
    refs, inputs = operands(m, node.inputs[:2])
    return m.ops([node], Call("take", tuple(refs), _kw(axis=axis)), inputs)


@fallback("Select", "SelectV2")
def select(node: Node, m: Matcher):
    shapes = [m.shape(t) for t in node.inputs]
    if node.op == "Select" and (shapes[0] is None or len(set(map(len, shapes))) != 1):
        if shapes[0] != ():  # a scalar condition picks one operand whole, as where does
            return None  # v1 Select with a vector condition picks whole rows: no broadcast
    refs, inputs = operands(m, node.inputs)
    return m.ops([node], Call("where", tuple(refs)), inputs)


@fallback("Tile")
def tile(node: Node, m: Matcher):
    reps = m.ints(node.inputs[1])
    if reps is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("tile", (x, tuple(reps))), inputs)


@fallback("Pad", "PadV2", "MirrorPad")
def pad(node: Node, m: Matcher):
    pads = m.consts.value(node.inputs[1])
    if pads is None or pads.ndim != 2 or pads.dtype.kind not in "iu":
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = {}
    if node.op == "MirrorPad":
        kwargs["mode"] = str(node.attrs.get("mode", "REFLECT")).lower()
    if node.op == "PadV2":
        value = m.scalar(node.inputs[2])
        if value is None:
            return None
        kwargs["constant_values"] = value
    width = tuple(tuple(int(v) for v in row) for row in pads)
    if kwargs.get("mode") == "symmetric":
        return m.ops([node], _symmetric_pad(x, width), inputs)
    return m.ops([node], Call("pad", (x, width), tuple(kwargs.items())), inputs)


def _symmetric_pad(x, width: tuple):
    """Symmetric padding as the mirrored edges concatenated on, one padded axis at a time:
    keras.ops.pad's mode="symmetric" pads by repeating the edge value on PyTorch."""
    for axis, (before, after) in enumerate(width):
        if not before and not after:
            continue
        lead = (slice(None),) * axis

        def edge(part: slice):
            return Call("flip", (Item(x, _tuple_index((*lead, part))),), _kw(axis=axis))

        parts = [edge(slice(None, before))] if before else []
        parts.append(x)
        parts += [edge(slice(-after, None))] if after else []
        x = Call("concatenate", (parts,), _kw(axis=axis) if axis != 0 else ())
    return x


@fallback("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def matmul(node: Node, m: Matcher):
    refs, inputs = operands(m, node.inputs[:2])
    flags = ("transpose_a", "transpose_b") if node.op == "MatMul" else ("adj_x", "adj_y")
    for i, flag in enumerate(flags):
        if node.attrs.get(flag):
            refs[i] = Call("swapaxes", (refs[i], -1, -2))
    return m.ops([node], Call("matmul", tuple(refs)), inputs)


@fallback("Einsum")
def einsum(node: Node, m: Matcher):
    equation = node.attrs.get("equation")
    if not isinstance(equation, str):
        return None
    refs, inputs = operands(m, node.inputs)
    return m.ops([node], Call("einsum", (equation, *refs)), inputs)


@fallback("OneHot")
def one_hot(node: Node, m: Matcher):
    depth = m.scalar(node.inputs[1])
    on, off = m.scalar(node.inputs[2]), m.scalar(node.inputs[3])
    dtype = node.attrs.get("T", "float32")
    if depth is None or on is None or off is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    axis = node.attrs.get("axis", -1)
    # an index of depth or more gives a row of zeros, as a negative one does on every backend
    # (PyTorch's one_hot raises on it)
    x = Call("where", (Call("less", (x, int(depth))), x, -1))
    expr = Call(
        "one_hot", (x, int(depth)), _kw(axis=axis, dtype=dtype) if axis != -1 else _kw(dtype=dtype)
    )
    if (on, off) != (1, 0):
        expr = Call("add", (Call("multiply", (expr, on - off)), off))
    return m.ops([node], expr, inputs)


@fallback("TopKV2")
def top_k(node: Node, m: Matcher):
    k = m.scalar(node.inputs[1])
    if k is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = () if node.attrs.get("sorted", True) else _kw(sorted=False)
    call = Call("top_k", (x, int(k)), kwargs)
    # the indices are int32 as TensorFlow gives them (PyTorch's top_k gives int64)
    expr = (
        Item(call, (0,)),
        Call("cast", (Item(call, (1,)), node.attrs.get("index_type", "int32"))),
    )
    return m.ops([node], expr, inputs, _outputs(node, 2))


@fallback("Cumsum", "Cumprod")
def cumulative(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[1])
    if not isinstance(axis, int) or node.attrs.get("exclusive") or node.attrs.get("reverse"):
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call(node.op.lower(), (x,), _kw(axis=axis)), inputs)


@fallback("ClipByValue")
def clip(node: Node, m: Matcher):
    """keras.ops.clip takes its bounds as numbers (it keeps them as attributes, not inputs):
    bounds that are tensors (computed, or constant arrays) clip with minimum and maximum."""
    (x, low, high), inputs = operands(m, node.inputs[:3])
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return m.ops([node], Call("clip", (x, low, high)), inputs)
    return m.ops([node], Call("maximum", (Call("minimum", (x, high)), low)), inputs)


@fallback("DepthToSpace", "SpaceToDepth")
def depth_to_space(node: Node, m: Matcher):
    if node.attrs.get("data_format", "NHWC") != "NHWC":
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    fn = "depth_to_space" if node.op == "DepthToSpace" else "space_to_depth"
    return m.ops([node], Call(fn, (x, node.attrs.get("block_size"))), inputs)


@fallback("ResizeBilinear", "ResizeNearestNeighbor")
def resize(node: Node, m: Matcher):
    """keras.ops.image.resize samples at half-pixel centres, as TF2's resize does; the TF1
    default (corner-aligned or legacy sampling) agrees only for integer nearest upscaling."""
    size, shape = m.ints(node.inputs[1]), m.shape(node.inputs[0])
    if size is None or shape is None or len(shape) != 4 or node.attrs.get("align_corners"):
        return None
    if not node.attrs.get("half_pixel_centers"):
        if node.op != "ResizeNearestNeighbor" or None in shape[1:3]:
            return None
        if any(s % d for s, d in zip(size, shape[1:3])):
            return None
    method = "bilinear" if node.op == "ResizeBilinear" else "nearest"
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = _kw(interpolation=method) if method != "bilinear" else ()
    if method == "bilinear" and node.attrs.get("T", "float32") != "float32":
        x = Call("cast", (x, "float32"))  # TF's ResizeBilinear returns float32 for any input
    return m.ops([node], Call("image.resize", (x, tuple(size)), kwargs), inputs)


@fallback("Bucketize")
def bucketize(node: Node, m: Matcher):
    """TF's bucket of x counts the boundaries <= x: numpy's digitize with right=False."""
    boundaries = node.attrs.get("boundaries")
    if not isinstance(boundaries, list) or not boundaries:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    bins = Call("convert_to_tensor", ([float(b) for b in boundaries],))
    return m.ops([node], Call("digitize", (x, bins)), inputs)


@fallback("MatrixBandPart")
def band_part(node: Node, m: Matcher):
    """Keeps x[i, j] where i - j <= lower and j - i <= upper (a negative bound keeps all):
    triu with k = -lower, then tril with k = upper."""
    lower, upper = m.scalar(node.inputs[1]), m.scalar(node.inputs[2])
    if lower is None or upper is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    if lower >= 0:
        x = Call("triu", (x,), _kw(k=-int(lower)) if lower else ())
    if upper >= 0:
        x = Call("tril", (x,), _kw(k=int(upper)) if upper else ())
    if isinstance(x, Ref):
        x = Call("copy", (x,))
    return m.ops([node], x, inputs)


def _one_diagonal(m: Matcher, node: Node) -> int | None:
    """The k of a MatrixDiag* or MatrixDiagPart* node that names one diagonal, else None."""
    if node.op in ("MatrixDiag", "MatrixDiagPart"):
        return 0
    k = m.ints(node.inputs[1])
    if k is None or not 1 <= len(k) <= 2 or k[0] != k[-1]:
        return None  # several diagonals, padded and aligned: the TensorFlow-only layer
    return k[0]


@fallback("MatrixDiagPart", "MatrixDiagPartV2", "MatrixDiagPartV3")
def diag_part(node: Node, m: Matcher):
    """One diagonal (k above the main one, -k below) is exactly long enough: no padding."""
    k = _one_diagonal(m, node)
    if k is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = _kw(offset=k, axis1=-2, axis2=-1) if k else _kw(axis1=-2, axis2=-1)
    return m.ops([node], Call("diagonal", (x,), kwargs), inputs)


NUMBERS = (*FLOATS, "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


@fallback("MatrixDiag", "MatrixDiagV2", "MatrixDiagV3")
def diag(node: Node, m: Matcher):
    """The main diagonal of a square matrix, zero elsewhere: x[..., None] * eye(n)."""
    shape, dtype = m.shape(node.inputs[0]), node.attrs.get("T", "float32")
    if not shape or shape[-1] is None or dtype not in NUMBERS or _one_diagonal(m, node) != 0:
        return None
    if node.op != "MatrixDiag":
        rows, cols, padding = (m.scalar(t) for t in node.inputs[2:5])
        if rows != -1 or cols != -1 or padding != 0:
            return None  # a wider matrix, or padded with something other than zeros
    (x,), inputs = operands(m, node.inputs[:1])
    eye = Call("eye", (shape[-1],), _kw(dtype=dtype) if dtype != "float32" else ())
    return m.ops([node], Call("multiply", (Call("expand_dims", (x, -1)), eye)), inputs)


@fallback("AddN")
def add_n(node: Node, m: Matcher):
    refs, inputs = operands(m, node.inputs)
    expr = refs[0]
    for ref in refs[1:]:
        expr = Call("add", (expr, ref))
    if len(refs) == 1:
        expr = Call("copy", (expr,))
    return m.ops([node], expr, inputs)


@fallback("ReverseV2")
def reverse(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[1])
    if axis is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("flip", (x,), _kw(axis=axis)), inputs)


@fallback("Roll")
def roll(node: Node, m: Matcher):
    shift, axis = _axes(m, node.inputs[1]), _axes(m, node.inputs[2])
    if shift is None or axis is None or isinstance(shift, int) != isinstance(axis, int):
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("roll", (x, shift), _kw(axis=axis)), inputs)


def _shape_of(m: Matcher, tensor: str) -> Node | None:
    """The Shape node computing `tensor` when that is all it is (and nothing else reads it): a
    Fill or BroadcastTo to another tensor's shape, which keras.ops spells with *_like."""
    node = m.node(tensor)
    if node.op != "Shape" or m.shape_plumbing(tensor, node.inputs[0]) != [node]:
        return None
    return node


@pattern("Fill")
def fill(node: Node, m: Matcher):
    """A shape known at conversion time is keras.ops.full's; the shape of another tensor is
    full_like's (the value is computed: a constant one was folded)."""
    dtype = node.attrs.get("T", "float32")
    dims, plumbing = m.ints(node.inputs[0]), []
    if dims is None:  # the static part of a shape, e.g. Shape(x)[1:]
        dims = m.consts.partial_vector(node.inputs[0])
        plumbing = m.shape_plumbing(node.inputs[0], node.inputs[1])
        if dims is None or None in dims or plumbing is None:
            dims = None
    if dims is not None:
        (value,), inputs = operands(m, node.inputs[1:2])
        expr = Call("full", (tuple(dims), value), _kw(dtype=dtype))
        return m.ops([node, *plumbing], expr, inputs, [node.output(0)])
    if dtype not in (*NUMBERS, "bool"):
        return None
    batched = _batch_fill(node, m, dtype)
    if batched is not None:
        return batched
    shape = _shape_of(m, node.inputs[0])
    if shape is None:
        return None
    (like, value), inputs = operands(m, [shape.inputs[0], node.inputs[1]])
    expr = Call("full_like", (like, value), _kw(dtype=dtype))
    return m.ops([node, shape], expr, inputs, [node.output(0)])


def _batch_fill(node: Node, m: Matcher, dtype: str):
    """Fill([tf.shape(y)[0], d1, ..., dk], v), a zero state sized to the batch: v like one
    element of each of y's examples, tiled to d1 x ... x dk. y's other dimensions must be
    known and not empty, so that its first element exists."""
    dims, pack = m.consts.partial_vector(node.inputs[0]), m.node(node.inputs[0])
    if dims is None or dims[0] is not None or None in dims[1:] or pack.op != "Pack":
        return None
    first = m.node(pack.inputs[0])
    if first.op != "StridedSlice" or m.node(first.inputs[0]).op != "Shape":
        return None
    if m.ints(first.inputs[1]) != [0] or first.attrs.get("shrink_axis_mask") != 1:
        return None
    y = m.node(first.inputs[0]).inputs[0]
    plumbing, shape = m.shape_plumbing(node.inputs[0], y), m.shape(y)
    if plumbing is None or not shape or None in shape[1:] or 0 in shape[1:]:
        return None
    (like, value), inputs = operands(m, [y, node.inputs[1]])
    rest = tuple(dims[1:])
    if len(shape) > 1:
        like = Item(like, (slice(None), *[slice(None, 1)] * (len(shape) - 1)))
    if len(shape) != len(dims) or len(shape) == 1:
        like = Call("reshape", (like, (-1, *[1] * len(rest))))
    expr = Call("full_like", (like, value), _kw(dtype=dtype))
    if any(d != 1 for d in rest):
        expr = Call("tile", (expr, (1, *rest)))
    return m.ops([node, *plumbing], expr, inputs, [node.output(0)])


@pattern("BroadcastTo")
def broadcast_like(node: Node, m: Matcher):
    """x broadcast to the shape of y: x plus zeros like y (or with False, for booleans)."""
    shape, dtype = _shape_of(m, node.inputs[1]), node.attrs.get("T", "float32")
    if shape is None or dtype not in (*NUMBERS, "bool"):
        return None
    (x, like), inputs = operands(m, [node.inputs[0], shape.inputs[0]])
    zeros = Call("zeros_like", (like,), _kw(dtype=dtype))
    expr = Call("logical_or" if dtype == "bool" else "add", (x, zeros))
    return m.ops([node, shape], expr, inputs, [node.output(0)])


def _reshape_target(m: Matcher, node: Node) -> tuple | None:
    """The target as keras.ops.reshape takes it: every entry a number but one -1. An entry
    computed at run time is found when it is what the others leave of x's size (x's first two
    dimensions merged: the other entries account for the rest)."""
    target, shape = sizes(m, node.inputs[1]), m.shape(node.inputs[0])
    if target is None or shape is None:
        return None
    unknown = [i for i, (f, d) in enumerate(target) if d or f == -1]
    if len(unknown) == 1:
        return tuple(-1 if i in unknown else f for i, (f, _) in enumerate(target))
    total = product(
        [(d, ()) if d is not None else (1, ((node.inputs[0], i),)) for i, d in enumerate(shape)]
    )
    if len(unknown) != 2 or any(f == -1 and d for f, d in target):
        return None
    wild = [i for i in unknown if target[i][0] == -1]
    if len(wild) != 1:
        return None
    known = product([target[i] for i in range(len(target)) if i not in wild])
    dims = list(total[1])
    for dim in known[1]:
        if dim not in dims:
            return None  # a dimension of another tensor: not x's own
        dims.remove(dim)
    if dims or not known[0] or total[0] % known[0]:
        return None
    rest = total[0] // known[0]  # the -1 is a number now; the run-time entry becomes the -1
    return tuple(
        rest if i in wild else -1 if i in unknown else f for i, (f, _) in enumerate(target)
    )


@pattern("Reshape")
def reshape_computed(node: Node, m: Matcher):
    """A target computed from shapes at run time: keras.ops.reshape with -1 for the one entry
    graph2py cannot know, the shape arithmetic going with it."""
    if m.consts.is_const(node.inputs[1]):
        return None  # the keras.ops fallback's, when no layer took it
    target = _reshape_target(m, node)
    plumbing = m.shape_plumbing(node.inputs[1], node.inputs[0])
    if target is None or plumbing is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node, *plumbing], Call("reshape", (x, target)), inputs, [node.output(0)])


@fallback("BroadcastTo")
def broadcast_to(node: Node, m: Matcher):
    shape = m.ints(node.inputs[1])
    if shape is None:
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("broadcast_to", (x, tuple(shape))), inputs)


@fallback("EuclideanNorm")
def euclidean_norm(node: Node, m: Matcher):
    axis = _axes(m, node.inputs[1])
    if axis is None or not _is_float(node):
        return None
    (x,), inputs = operands(m, node.inputs[:1])
    kwargs = _kw(axis=axis, keepdims=True) if node.attrs.get("keep_dims") else _kw(axis=axis)
    return m.ops([node], Call("sqrt", (Call("sum", (Call("square", (x,)),), kwargs),)), inputs)


@fallback("L2Loss")
def l2_loss(node: Node, m: Matcher):
    """sum(x ** 2) / 2, over every axis, batch included: the result is a scalar."""
    (x,), inputs = operands(m, node.inputs[:1])
    return m.ops([node], Call("multiply", (Call("sum", (Call("square", (x,)),)), 0.5)), inputs)
