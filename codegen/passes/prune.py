"""Cut the graph down to what computes the requested outputs from the requested inputs.

Identity-like ops are bypassed (they are TF plumbing, not model structure), and so are ops
that return an operand unchanged once settings are constants (passthrough.py: dropout with
keep_prob 1); control edges are already gone, and whatever does not feed an output is dropped. The result names its inputs and
outputs explicitly, so later stages never guess.

A `PlaceholderWithDefault` with a constant default and a fully known shape (`is_training`,
default False, shape []) is a switch for training code, not data: it is replaced by its
default, so the conditions it drives resolve statically for inference. Naming it in --inputs
keeps it as a model input; so does a default that is computed (a dataset iterator's output) or
a shape with an unknown dimension (example data standing in for a batch of any size).

`--set NAME=VALUE` does for any placeholder what a constant default does for those: the
placeholder becomes a constant of its dtype before control flow is resolved, so the branches it
drives (`is_train`, `keep_prob`) resolve statically and only the inference path is converted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError, BadInputError
from ..graph import Graph, Node, split_ref, tensor_ref
from .passthrough import PassThrough
from .shapes import input_shapes as inferred_input_shapes

# Ops that forward input i to output i unchanged at inference time.
IDENTITY_OPS = {
    "Identity",
    "IdentityN",
    "StopGradient",
    "Snapshot",
    "PreventGradient",
    "EnsureShape",
}
# Ops that produce nothing a model output can depend on.
SIDE_EFFECT_OPS = {"NoOp", "Assert", "Print", "PrintV2", "SaveV2", "RestoreV2", "VarHandleOp"}
PLACEHOLDER_OPS = {"Placeholder"}


@dataclass
class TensorSpec:
    """A tensor the user named on the command line, with an optional shape override."""

    tensor: str
    shape: tuple[int | None, ...] | None = None

    def __str__(self) -> str:
        """As the command line takes it (the inverse of parse)."""
        if self.shape is None:
            return self.tensor
        dims = ",".join("-1" if d is None else str(d) for d in self.shape)
        return f"{self.tensor}[{dims}]"

    @classmethod
    def parse(cls, text: str) -> "TensorSpec":
        """`input:0[1,224,224,3]` (tf2onnx's syntax); `:0` and the shape are optional."""
        text = text.strip()
        shape = None
        if text.endswith("]") and "[" in text:
            text, _, dims = text[:-1].rpartition("[")
            try:
                shape = tuple(
                    None if d.strip() in ("", "?", "-1", "None") else int(d)
                    for d in dims.split(",")
                    if dims.strip()
                )
            except ValueError:
                shape = None  # not a number
            if shape is None or any(d is not None and d < 0 for d in shape):
                raise UsageError(f"bad shape in tensor spec {text + '[' + dims + ']'!r}")
        if not text:
            raise UsageError("empty tensor name")
        return cls(tensor_ref(text), shape)


@dataclass
class Pruned:
    graph: Graph
    inputs: list[str]  # placeholder tensors, in the model's input order
    outputs: list[str]  # output tensors, in the model's output order
    # the inputs' shapes where the graph's declarations do not give them: from the command
    # line, else what their consumers fix (shapes.input_shapes)
    input_shapes: dict[str, tuple[int | None, ...] | None]
    # the outputs as the source graph names them (the Identity a TF2 graph ends with, the
    # user's --outputs): a tensor of an inlined branch or a loop exists only here
    source_outputs: list[str] = field(default_factory=list)
    # not errors: an input named in --inputs that feeds no output (it stays a model input)
    warnings: list[str] = field(default_factory=list)


def apply_sets(
    graph: Graph, sets: tuple[tuple[str, str], ...], inputs: list[TensorSpec] | None
) -> tuple[Graph, list[TensorSpec] | None]:
    """The graph with each --set placeholder a Const of its dtype (of its shape when that is
    fully known, else a scalar, which broadcasts as the placeholder's uses expect), and the
    inputs without them: a set placeholder is no longer fed. Every bad NAME or VALUE is
    reported at once."""
    if not sets:
        return graph, inputs
    problems, values = [], {}
    for name, text in sets:
        node_name, port = split_ref(tensor_ref(name))
        node = graph.nodes.get(node_name)
        if node is None or port != 0:
            problems.append(f"--set {name}: no placeholder named {name!r} in the graph")
        elif node.op not in ("Placeholder", "PlaceholderWithDefault"):
            problems.append(f"--set {name}: {node_name!r} is a {node.op} node, not a placeholder")
        else:
            try:
                values[node_name] = _set_value(node, text)
            except ValueError as err:
                problems.append(f"--set {name}={text}: {err}")
    if problems:
        raise UsageError(*problems)
    nodes = [
        (
            Node(
                n.name,
                "Const",
                [],
                {"dtype": n.attrs.get("dtype", "float32"), "value": values[n.name]},
            )
            if n.name in values
            else n
        )
        for n in graph
    ]
    if inputs is not None:
        inputs = [s for s in inputs if split_ref(s.tensor)[0] not in values] or None
    return Graph(nodes, graph.functions, graph.source), inputs


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _set_value(node: Node, text: str) -> np.ndarray:
    """`text` as a value of the placeholder's dtype; ValueError says why it is not one."""
    dtype = node.attrs.get("dtype", "float32")
    shape = node.attrs.get("shape")
    if not (isinstance(shape, tuple) and all(d is not None for d in shape)):
        shape = ()
    if dtype == "bool":
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError("a bool placeholder takes true or false")
        value = np.array(text.lower() in _TRUE)
    elif dtype == "string":
        value = np.array(text.encode("utf-8"), dtype=object)
    else:
        try:
            kind = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"cannot set a placeholder of dtype {dtype}") from None
        if kind.kind in "iu":
            try:
                number = int(text)
            except ValueError:
                raise ValueError(f"a {dtype} placeholder takes a whole number") from None
            if not np.iinfo(kind).min <= number <= np.iinfo(kind).max:
                raise ValueError(f"{number} is out of the range of {dtype}")
            value = np.array(number, kind)
        elif kind.kind in "fc":
            try:
                value = np.array(complex(text) if kind.kind == "c" else float(text), kind)
            except ValueError:
                raise ValueError(f"a {dtype} placeholder takes a number") from None
        else:
            raise ValueError(f"cannot set a placeholder of dtype {dtype}")
    return np.full(shape, value, value.dtype) if shape else value


def bypass_defaults(graph: Graph, inputs: list[TensorSpec] | None) -> Graph:
    """The graph with each PlaceholderWithDefault either replaced by its constant default or
    turned into a Placeholder (when --inputs names it, or its default is computed)."""
    from .fold import Constants

    defaults = [n for n in graph if n.op == "PlaceholderWithDefault"]
    if not defaults:
        return graph
    named = {split_ref(s.tensor)[0] for s in inputs or ()}
    consts = Constants(graph)
    alias: dict[str, str] = {}
    nodes = []
    for node in graph:
        if node.op != "PlaceholderWithDefault":
            nodes.append(node)
        elif node.name not in named and (inputs or _is_setting(node, consts)):
            alias[node.output(0)] = node.inputs[0]
        else:
            nodes.append(Node(node.name, "Placeholder", [], dict(node.attrs)))
    nodes = [Node(n.name, n.op, [alias.get(t, t) for t in n.inputs], n.attrs) for n in nodes]
    return Graph(nodes, graph.functions, graph.source)


def _is_setting(node: Node, consts) -> bool:
    shape = node.attrs.get("shape")
    known = isinstance(shape, tuple) and all(d is not None for d in shape)
    return known and consts.is_const(node.inputs[0])


def prune(
    graph: Graph, inputs: list[TensorSpec] | None, outputs: list[TensorSpec] | None
) -> Pruned:
    graph = bypass_defaults(graph, inputs)
    alias: dict[str, str] = {}

    def resolve(tensor: str) -> str:
        while tensor in alias:
            tensor = alias[tensor]
        return tensor

    passes = PassThrough(graph, resolve)
    bypassed = set()
    for node in graph:
        if node.op in IDENTITY_OPS:
            for i, src in enumerate(node.inputs):
                alias[node.output(i)] = src
        elif (kept := passes.operand(node)) is not None:
            alias[node.output(0)] = node.inputs[kept]
            bypassed.add(node.name)

    nodes = {n.name: n for n in graph if n.op not in IDENTITY_OPS and n.name not in bypassed}
    for name, node in nodes.items():
        nodes[name] = Node(node.name, node.op, [resolve(t) for t in node.inputs], node.attrs)

    def known(spec: TensorSpec, what: str) -> str:
        problem = graph.tensor_problem(spec.tensor)
        if problem:
            raise UsageError(f"{what} tensor {spec.tensor!r}: {problem}")
        return resolve(spec.tensor)

    # Inputs: the user's tensors (interior ones become placeholders) or every placeholder.
    input_shapes: dict[str, tuple] = {}
    full_shapes = None  # shapes over the whole graph, computed once if an input is interior
    if inputs:
        input_tensors = []
        for spec in inputs:
            tensor = known(spec, "input")
            name, port = split_ref(tensor)
            node = nodes[name]
            if node.op not in PLACEHOLDER_OPS:
                dtype = output_dtype(node)
                new_name = name if port == 0 else f"{name}_{port}"
                if full_shapes is None:
                    full_shapes = _full_graph_shapes(graph)
                shape = full_shapes.get(tensor)
                placeholder = Node(new_name, "Placeholder", [], {"dtype": dtype, "shape": shape})
                nodes[new_name] = placeholder
                for other in nodes.values():
                    other.inputs = [
                        placeholder.output() if t == tensor else t for t in other.inputs
                    ]
                tensor = placeholder.output()
            input_tensors.append(tensor)
            if spec.shape is not None:
                input_shapes[tensor] = spec.shape
    else:
        input_tensors = None

    if outputs:
        output_tensors = [known(spec, "output") for spec in outputs]
        source_outputs = [spec.tensor for spec in outputs]
    else:
        sinks = _sinks(graph, resolve)
        output_tensors = list(sinks)
        source_outputs = list(sinks.values())
        if not output_tensors:
            raise BadInputError(
                "the graph computes nothing: no node outside constants has a result"
            )

    keep: dict[str, Node] = {}
    stack = [split_ref(t)[0] for t in output_tensors]
    stop = {split_ref(t)[0] for t in input_tensors} if input_tensors else set()
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        node = nodes[name]
        keep[name] = node
        if name in stop:
            node.inputs = []
            continue
        stack.extend(split_ref(t)[0] for t in node.inputs)

    warnings = []
    if input_tensors is not None:
        _check_inputs(input_tensors)
        for tensor in dict.fromkeys(input_tensors):
            name = split_ref(tensor)[0]
            if name not in keep:  # fed by the caller all the same: keep it, say so
                warnings.append(f"input tensor {tensor!r} does not feed the outputs")
                keep[name] = nodes[name]
                nodes[name].inputs = []
    placeholders = [
        n.output() for n in graph if n.name in keep and keep[n.name].op in PLACEHOLDER_OPS
    ]
    placeholders += [t for t in (input_tensors or []) if t not in placeholders]
    if input_tensors is None:
        input_tensors = placeholders
    else:
        missing = [t for t in placeholders if t not in input_tensors]
        if missing:
            raise UsageError(
                *(
                    f"the outputs depend on placeholder {split_ref(t)[0]!r}, which --inputs "
                    f"does not list (list it, or fix its value with --set {split_ref(t)[0]}=VALUE)"
                    for t in missing
                )
            )
    ordered = Graph([keep[n] for n in nodes if n in keep], source=graph.source)
    input_shapes = inferred_input_shapes(ordered, input_tensors, input_shapes)
    return Pruned(
        ordered,
        input_tensors,
        output_tensors,
        input_shapes,
        source_outputs,
        warnings,
    )


def _check_inputs(inputs: list[str]) -> None:
    """Each --inputs tensor once."""
    problems = [
        f"input tensor {t!r} is listed twice" for t in sorted(set(inputs)) if inputs.count(t) > 1
    ]
    if problems:
        raise UsageError(*problems)


def _sinks(graph: Graph, resolve) -> dict[str, str]:
    """Outputs nobody reads, skipping side-effect-only ops and constants: {tensor: the sink's
    own name}. Found before Identity nodes are bypassed: TF2 names each output with an
    Identity, and the tensor behind one may also feed other nodes (the values of a TopK whose
    indices are used further on)."""
    used = {split_ref(t)[0] for n in graph for t in n.inputs}
    skip = SIDE_EFFECT_OPS | {"Const", "Placeholder"}
    found: dict[str, str] = {}
    for node in graph:
        if node.op in skip or node.name in used:
            continue
        tensor = resolve(node.output(0))
        producer = graph.nodes.get(split_ref(tensor)[0])
        if producer is None or producer.op in skip or tensor in found:
            continue
        found[tensor] = node.output(0)
    return found


def _full_graph_shapes(graph: Graph) -> dict:
    """Shapes over the whole graph: an interior tensor named as an input keeps its shape."""
    from .fold import Constants
    from .shapes import infer_shapes

    return infer_shapes(graph, Constants(graph))


def output_dtype(node: Node) -> str:
    for key in ("T", "dtype", "out_type"):
        if isinstance(node.attrs.get(key), str):
            return node.attrs[key]
    return "float32"
