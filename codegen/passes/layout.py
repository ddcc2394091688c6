"""NCHW graphs to channels_last: Keras layers compute NHWC, so an NCHW graph is rewritten to
compute in NHWC with as few transposes as possible.

One sweep in topological order tracks which tensors are held transposed (the graph means
NCHW, the rewritten graph holds NHWC). An op with `data_format="NCHW"` (convolutions, pooling,
BiasAdd, FusedBatchNorm) is rewritten to NHWC and makes its output transposed; ops that do not
care about the layout (activations, elementwise arithmetic with scalars or per-channel
constants, concat along an axis, pads, reductions that keep the rest in order; codegen/optable
marks the element-wise ones and reductions `channels_last`) pass it on with their axes and
constants permuted. Any other op that reads a transposed tensor gets a Transpose
back to NCHW first, so the graph's meaning never changes. The model's inputs and outputs keep
their layout (a Transpose at each, which becomes a `Permute` layer) unless `io_layout="nhwc"`
asks for NHWC inputs and outputs.
"""

from __future__ import annotations

import numpy as np

from .. import optable
from ..graph import Graph, Node, split_ref
from .fold import Constants
from .prune import Pruned
from .shapes import infer_shapes

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
NCHW_AXIS = (0, 3, 1, 2)  # where NCHW axis i lives in NHWC


def channels_last(pruned: Pruned, io_layout: str = "keep") -> Pruned:
    """The pruned graph computing in NHWC where it computed in NCHW (unchanged if it has no
    NCHW op). With io_layout="nhwc" its 4-D inputs and outputs are NHWC too."""
    if not any(_nchw_op(n) for n in pruned.graph):
        return pruned
    return _Rewrite(pruned, io_layout).run()


def _nchw_op(node: Node) -> bool:
    """An NCHW image op. A batch-statistics FusedBatchNorm is not one: Keras 2's
    LayerNormalization reshapes to [1, rows, features, 1] and normalises each "channel" (row)
    in NCHW, which is what it computes, not a layout (patterns/norm.py reads it whole)."""
    return (
        optable.layout_class(node.op) == optable.NCHW
        and node.attrs.get("data_format") == "NCHW"
        and not node.attrs.get("is_training")
    )


class _Rewrite:
    def __init__(self, pruned: Pruned, io_layout: str):
        self.pruned = pruned
        self.io_layout = io_layout
        self.consts = Constants(pruned.graph)
        self.shapes = infer_shapes(pruned.graph, self.consts, pruned.input_shapes)  # NCHW
        self.kernels: dict[str, tuple[int, int, int]] = {}  # MatMul -> (C, H, W) it reads
        self.nodes: list[Node] = []
        self.names = set(pruned.graph.nodes)
        self.moved: set[str] = set()  # tensors held NHWC that the graph means NCHW
        self.back: dict[str, str] = {}  # moved tensor -> its NCHW transpose
        self.front: dict[str, str] = {}  # NCHW tensor -> its NHWC transpose

    def run(self) -> Pruned:
        input_shapes = dict(self.pruned.input_shapes)
        outputs = set(self.pruned.outputs)
        for node in self.pruned.graph:
            node = Node(node.name, node.op, list(node.inputs), dict(node.attrs))
            if node.op == "Placeholder":
                self._placeholder(node, input_shapes)
                continue
            if node.op == "Const" or self.consts.is_const(node.output(0)):
                self.nodes.append(node)
                continue
            if node.name in self.kernels:
                self._permute_kernel(node)
            if not self._propagate(node):
                node.inputs = [self._nchw(t) for t in node.inputs]
                self.nodes.append(node)
        if self.io_layout != "nhwc":
            for tensor in outputs:
                if tensor in self.moved:
                    self._restore_output(tensor)
        graph = Graph(self.nodes, self.pruned.graph.functions, self.pruned.graph.source)
        return Pruned(
            graph,
            self.pruned.inputs,
            self.pruned.outputs,
            input_shapes,
            self.pruned.source_outputs,
            self.pruned.warnings,
        )

    # nodes ----------------------------------------------------------------------------------
    def _new_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def _const(self, base: str, value: np.ndarray) -> str:
        node = Node(self._new_name(base), "Const", [], {"dtype": value.dtype.name, "value": value})
        self.nodes.append(node)
        return node.output(0)

    def _transpose(self, tensor: str, perm, name: str) -> Node:
        perm_const = self._const(name + "/perm", np.array(perm, np.int32))
        node = Node(
            self._new_name(name),
            "Transpose",
            [tensor, perm_const],
            {"T": "float32", "Tperm": "int32"},
        )
        self.nodes.append(node)
        return node

    def _nchw(self, tensor: str) -> str:
        """The tensor as the graph means it: a moved one transposed back (once)."""
        if tensor not in self.moved:
            return tensor
        if tensor not in self.back:
            name = split_ref(tensor)[0] + "_to_nchw"
            self.back[tensor] = self._transpose(tensor, TO_NCHW, name).output(0)
        return self.back[tensor]

    def _nhwc(self, tensor: str) -> str:
        """The tensor in NHWC: a moved one as it is, any other transposed (once)."""
        if tensor in self.moved:
            return tensor
        if tensor not in self.front:
            name = split_ref(tensor)[0] + "_to_nhwc"
            self.front[tensor] = self._transpose(tensor, TO_NHWC, name).output(0)
        return self.front[tensor]

    def _placeholder(self, node: Node, input_shapes: dict) -> None:
        shape = input_shapes.get(node.output(0), node.attrs.get("shape"))
        self.nodes.append(node)
        if self.io_layout == "nhwc" and shape is not None and len(shape) == 4:
            permuted = tuple(shape[i] for i in TO_NHWC)
            node.attrs["shape"] = permuted
            if node.output(0) in input_shapes:
                input_shapes[node.output(0)] = permuted
            self.moved.add(node.output(0))

    def _restore_output(self, tensor: str) -> None:
        """A moved model output: the producer is renamed and a Transpose back to NCHW takes its
        name, so the output tensor keeps its name and its layout."""
        name, port = split_ref(tensor)
        producer = next(n for n in self.nodes if n.name == name)
        new = self._new_name(name + "_nhwc")
        producer.name = new
        for node in self.nodes:
            node.inputs = [
                f"{new}:{split_ref(t)[1]}" if split_ref(t)[0] == name else t for t in node.inputs
            ]
        perm = self._const(name + "/to_nchw/perm", np.array(TO_NCHW, np.int32))
        self.nodes.append(
            Node(name, "Transpose", [f"{new}:{port}", perm], {"T": "float32", "Tperm": "int32"})
        )

    # propagation ----------------------------------------------------------------------------
    def _propagate(self, node: Node) -> bool:
        """Rewrite `node` to read and write NHWC if it can; False leaves it to read NCHW."""
        if _nchw_op(node):
            return self._layout_op(node)
        moved = [t for t in node.inputs if t in self.moved]
        if not moved:
            return False
        op, kind = node.op, optable.layout_class(node.op)
        if kind == optable.UNARY and len(node.inputs) == 1:
            return self._emit(node, moved=True)
        if kind == optable.BINARY and len(node.inputs) == 2:
            return self._binary(node)
        if op == "ConcatV2":
            return self._concat(node)
        if kind == optable.REDUCTION:
            return self._reduction(node)
        if op in ("Pad", "PadV2", "MirrorPad"):
            return self._pad(node)
        if op == "Transpose":
            return self._transpose_op(node)
        if op == "Squeeze":
            return self._squeeze(node)
        if op == "Reshape":
            return self._flatten(node)
        if op == "Shape":
            return self._batch_size(node)
        return False

    def _emit(self, node: Node, moved: bool) -> bool:
        self.nodes.append(node)
        if moved:
            self.moved.add(node.output(0))
        return True

    def _layout_op(self, node: Node) -> bool:
        a = node.attrs
        if node.op.startswith("FusedBatchNorm") and any(
            split_ref(t)[1] for t in self._consumed(node)
        ):
            return False  # batch statistics read: leave it (it cannot run on CPU anyway)
        node.inputs = [self._nhwc(node.inputs[0]), *node.inputs[1:]]
        a["data_format"] = "NHWC"
        for key in ("strides", "ksize", "dilations"):
            if isinstance(a.get(key), list) and len(a[key]) == 4:
                a[key] = [a[key][i] for i in TO_NHWC]
        pads = a.get("explicit_paddings")
        if isinstance(pads, list) and len(pads) == 8:
            a["explicit_paddings"] = [pads[2 * i + j] for i in TO_NHWC for j in (0, 1)]
        return self._emit(node, moved=True)

    def _consumed(self, node: Node) -> list[str]:
        return [t for n in self.pruned.graph for t in n.inputs if split_ref(t)[0] == node.name]

    def _binary(self, node: Node) -> bool:
        """Both operands moved, or one moved and the other a constant that broadcasts as a
        scalar or per channel ([C,1,1], [1,C,1,1]), which is permuted with it."""
        inputs = []
        for t in node.inputs:
            if t in self.moved:
                inputs.append(t)
                continue
            value = self.consts.value(t)
            if value is None or value.ndim > 4:
                return False
            if value.size == 1:
                inputs.append(t)
                continue
            full = value.reshape((1,) * (4 - value.ndim) + value.shape)
            inputs.append(self._const(split_ref(t)[0] + "/nhwc", np.transpose(full, TO_NHWC)))
        node.inputs = inputs
        return self._emit(node, moved=True)

    def _concat(self, node: Node) -> bool:
        *tensors, axis_t = node.inputs
        axis = self.consts.value(axis_t)
        if axis is None or axis.size != 1 or any(t not in self.moved for t in tensors):
            return False
        new_axis = NCHW_AXIS[int(axis) % 4]
        node.inputs = [
            *tensors,
            self._const(node.name + "/nhwc_axis", np.array(new_axis, axis.dtype)),
        ]
        return self._emit(node, moved=True)

    def _reduction(self, node: Node) -> bool:
        """A reduction keeps the NHWC order when keep_dims holds or the axes it keeps come in
        the same order in both layouts (over H and W, N-C stays N-C)."""
        x, axes_t = node.inputs
        axes = self.consts.value(axes_t)
        if x not in self.moved or axes is None:
            return False
        axes = sorted({int(v) % 4 for v in np.atleast_1d(axes)})
        new = [NCHW_AXIS[i] for i in axes]
        keep = bool(node.attrs.get("keep_dims"))
        if not keep:
            rest_nchw = [i for i in range(4) if i not in axes]
            rest_nhwc = [i for i in TO_NHWC if i not in axes]
            if rest_nchw != rest_nhwc:
                return False
        node.inputs = [x, self._const(node.name + "/nhwc_axes", np.array(new, np.int32))]
        return self._emit(node, moved=keep)

    def _pad(self, node: Node) -> bool:
        x, pads_t, *rest = node.inputs
        pads = self.consts.value(pads_t)
        if x not in self.moved or pads is None or pads.shape != (4, 2):
            return False
        node.inputs = [x, self._const(node.name + "/nhwc_paddings", pads[list(TO_NHWC)]), *rest]
        return self._emit(node, moved=True)

    def _transpose_op(self, node: Node) -> bool:
        """A transpose of a moved tensor composes with the move: NCHW->NHWC cancels out."""
        x, perm_t = node.inputs
        perm = self.consts.value(perm_t)
        if perm is None or sorted(int(p) for p in perm.reshape(-1)) != [0, 1, 2, 3]:
            return False
        composed = [TO_NCHW[int(p)] for p in perm]
        node.inputs = [x, self._const(node.name + "/nhwc_perm", np.array(composed, perm.dtype))]
        return self._emit(node, moved=False)

    def _squeeze(self, node: Node) -> bool:
        """Squeezing H and W (after a keep-dims pooling) leaves N, C in both layouts."""
        dims = node.attrs.get("squeeze_dims") or []
        axes = sorted({int(d) % 4 for d in dims})
        if not axes or 1 in axes or 0 in axes:
            return False
        node.attrs["squeeze_dims"] = [NCHW_AXIS[i] for i in axes]
        return self._emit(node, moved=False)

    def _flatten(self, node: Node) -> bool:
        """reshape(x, [-1, C*H*W]) read only by x @ W: flattening the NHWC tensor instead and
        permuting W's rows to match spares a transpose back to NCHW. The flattened tensor's
        order differs from the graph's, so it must feed nothing else."""
        x, target_t = node.inputs
        shape, target = self.shapes.get(x), self.consts.partial_vector(target_t)
        if shape is None or None in shape[1:] or target is None or len(target) != 2:
            return False
        size = int(np.prod(shape[1:]))
        if target[0] not in (-1, None, 1) or target[1] not in (size, -1):
            return False
        users = self.pruned.graph.users(node.output(0))
        if len(users) != 1 or node.output(0) in self.pruned.outputs:
            return False
        mm = users[0]
        kernel = self.consts.value(mm.inputs[1]) if mm.op == "MatMul" else None
        if kernel is None or mm.inputs[0] != node.output(0) or mm.attrs.get("transpose_a"):
            return False
        rows = 1 if mm.attrs.get("transpose_b") else 0
        if kernel.ndim != 2 or kernel.shape[rows] != size:
            return False
        self.kernels[mm.name] = tuple(int(d) for d in shape[1:])
        return self._emit(node, moved=False)

    def _permute_kernel(self, node: Node) -> None:
        """The MatMul after `_flatten`: its kernel's C*H*W axis reordered to H*W*C, as graph
        nodes, so the weight loader shows the reshape and transpose it applies."""
        c, h, w = self.kernels[node.name]
        kernel = node.inputs[1]
        units = int(self.consts.value(kernel).shape[0 if node.attrs.get("transpose_b") else 1])
        base = split_ref(kernel)[0] + "_nhwc_rows"
        if node.attrs.get("transpose_b"):
            shape, perm, flat = (units, c, h, w), (0, 2, 3, 1), (units, h * w * c)
        else:
            shape, perm, flat = (c, h, w, units), (1, 2, 0, 3), (h * w * c, units)
        t = self._reshape(kernel, shape, base + "/split")
        t = self._transpose(t, perm, base + "/transpose").output(0)
        node.inputs = [node.inputs[0], self._reshape(t, flat, base)]

    def _reshape(self, tensor: str, shape, name: str) -> str:
        target = self._const(name + "/shape", np.array(shape, np.int32))
        node = Node(self._new_name(name), "Reshape", [tensor, target], {"T": "float32"})
        self.nodes.append(node)
        return node.output(0)

    def _batch_size(self, node: Node) -> bool:
        """shape(x) read only for its first entry (the batch size, for a dynamic reshape):
        the same in both layouts."""
        for user in self.pruned.graph.users(node.output(0)):
            begin, end, strides = (
                (self.consts.ints(t) if len(user.inputs) == 4 else None for t in user.inputs[1:4])
                if user.op == "StridedSlice"
                else (None, None, None)
            )
            masks = [user.attrs.get(k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask")]
            if (begin, end, strides) != ([0], [1], [1]) or any(masks):
                return False
            if user.attrs.get("new_axis_mask", 0):
                return False
        return self._emit(node, moved=False)
