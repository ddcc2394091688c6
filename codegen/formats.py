"""Every input format, read without TensorFlow: frozen GraphDefs, SavedModels (TF1 and TF2), TF1
meta graphs with their checkpoint, and a GraphDef plus a checkpoint prefix.

`open_source` finds the graph (a GraphDef) and where its variables live. Once pipeline.load has
decoded it and inlined its function calls, `read_variables` replaces every variable read by a
`Const` node whose value is the checkpoint's (a view into the memory-mapped data file) and whose
`_checkpoint_key` attribute names it. Downstream, such a graph looks frozen; the fold pass turns
those constants into `Variable(key)` recipes, so the generated loader reads the checkpoint.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2, message, message_factory
from tensorboard.compat.proto import graph_pb2, meta_graph_pb2, trackable_object_graph_pb2

from .checkpoint import CheckpointError, CheckpointReader, checkpoint_prefix
from .errors import BadInputError, UsageError
from .graph import Graph, Node, split_ref, tensor_ref
from .load import one_line, parse_text, read_file, read_graph_file
from .passes.fold import CHECKPOINT_KEY_ATTR, EMBED_ATTR

DEFAULT_SIGNATURE = "serving_default"
# The converter checks the crc32c of the variables it reads up to this size; the generated
# loader checks every one it assigns.
VERIFY_UP_TO = 1 << 20
DEFAULT_TAG = "serve"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp"}
# Ops that initialize, save or restore variables: never part of a model's computation.
BOOKKEEPING_OPS = {
    "Assign",
    "AssignAdd",
    "AssignSub",
    "AssignVariableOp",
    "AssignAddVariableOp",
    "AssignSubVariableOp",
    "SaveV2",
    "RestoreV2",
    "Save",
    "SaveSlices",
    "Restore",
    "RestoreSlice",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "ShardedFilespec",
    "StringJoin",
    "VarIsInitializedOp",
    "IsVariableInitialized",
    "NoOp",
}


# Optimizer updates (ApplyAdam, ResourceApplyGradientDescent, ...): a training graph's sinks.
TRAINING_OPS = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")


@dataclass
class Source:
    """What was read and where the weights are: plain data for the later stages."""

    path: Path
    kind: str  # "graphdef", "savedmodel", "metagraph" or "checkpoint" (GraphDef + --checkpoint)
    graph_def: graph_pb2.GraphDef
    sha256: str  # of the graph file (saved_model.pb, the .meta, the GraphDef)
    checkpoint: str | None = None  # the checkpoint prefix, for every kind but "graphdef"
    variables: dict[str, str] = field(default_factory=dict)  # variable node -> checkpoint key
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (argument, tensor), sorted
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (output key, tensor), sorted
    signature: str | None = None
    size: int = 0  # bytes of the graph file

    @property
    def input_bytes(self) -> int:
        """The bytes of the input: the graph file and the checkpoint's data files, whose values
        folding may transform (the constant budget is proportional to it: see budget.py)."""
        total = self.size
        if self.checkpoint:
            for name in glob.glob(glob.escape(self.checkpoint) + ".data-*"):
                try:
                    info = os.stat(name)
                except OSError:
                    continue
                total += info.st_size if stat.S_ISREG(info.st_mode) else 0
        return total

    @property
    def name(self) -> str:
        """The model's default name: the directory or file name without suffixes."""
        name = self.path.name
        for suffix in (".meta", ".ckpt", ".pbtxt", ".pb"):
            name = name.removesuffix(suffix)
        return name or "model"


def open_source(
    path: str | Path,
    signature: str | None = None,
    tag: str | None = None,
    checkpoint: str | Path | None = None,
) -> Source:
    """Detect the format from the path and read the graph (not the weights)."""
    path = Path(path)
    if path.is_dir():
        source = _savedmodel(path, signature, tag)
    elif path.suffix == ".meta" or (not path.exists() and Path(f"{path}.meta").exists()):
        meta_path = path if path.suffix == ".meta" else Path(f"{path}.meta")
        source = _metagraph(meta_path, path, signature, tag)
    else:
        if signature is not None or tag is not None:
            raise UsageError(f"{path}: --signature and --tag apply to SavedModels only")
        graph_def, sha256 = read_graph_file(path)
        source = Source(path, "graphdef", graph_def, sha256, size=path.stat().st_size)
    if checkpoint is not None:
        if source.kind == "savedmodel":
            raise UsageError(
                f"{path}: --checkpoint applies to GraphDefs and meta graphs; a SavedModel's "
                "checkpoint is its variables/ directory"
            )
        source.checkpoint = str(checkpoint)
        source.kind = "checkpoint"  # the loader reads this prefix, whatever the graph file
    elif source.kind == "graphdef":
        variables = sum(
            n.op in ("VariableV2", "Variable", "ReadVariableOp") for n in graph_def.node
        )
        if variables:
            raise UsageError(
                f"{path}: the graph reads {variables} variable(s), which a GraphDef does not "
                "hold: give their checkpoint with --checkpoint PREFIX (or freeze the graph)"
            )
    if source.kind != "graphdef" and not source.inputs:
        source.graph_def = _without_bookkeeping(source.graph_def)
    return source


def _savedmodel(path: Path, signature: str | None, tag: str | None) -> Source:
    binary, text = path / "saved_model.pb", path / "saved_model.pbtxt"
    if not binary.exists() and not text.exists():
        raise BadInputError(
            f"{path} is a directory but not a SavedModel: no saved_model.pb or saved_model.pbtxt"
        )
    file = binary if binary.exists() else text
    data = read_file(file)
    saved = saved_model_class()()
    if file is text:
        parse_text(data, saved, file, "a SavedModel")
    else:
        try:
            saved.ParseFromString(data)
        except (message.DecodeError, RuntimeError) as err:
            raise BadInputError(f"{file}: not a SavedModel: {one_line(err)}") from None
    if not saved.meta_graphs:
        raise BadInputError(f"{file}: the SavedModel has no meta graphs")
    meta = _pick_meta_graph(file, list(saved.meta_graphs), tag)
    digest = hashlib.sha256(data).hexdigest()
    source = Source(path, "savedmodel", meta.graph_def, digest, size=len(data))
    source.checkpoint = checkpoint_prefix(path)
    _apply_signature(source, file, meta, signature or DEFAULT_SIGNATURE)
    return source


def _metagraph(meta_path: Path, given: Path, signature: str | None, tag: str | None) -> Source:
    if tag is not None:
        raise UsageError(f"{given}: --tag applies to SavedModels only")
    data = read_file(meta_path)
    meta = meta_graph_pb2.MetaGraphDef()
    try:
        meta.ParseFromString(data)
    except (message.DecodeError, RuntimeError) as err:
        raise BadInputError(f"{meta_path}: not a binary MetaGraphDef: {one_line(err)}") from None
    if not meta.graph_def.node:
        raise BadInputError(f"{meta_path}: the meta graph has no nodes")
    digest = hashlib.sha256(data).hexdigest()
    source = Source(given, "metagraph", meta.graph_def, digest, size=len(data))
    source.checkpoint = checkpoint_prefix(meta_path)
    if signature is not None:
        _apply_signature(source, meta_path, meta, signature)
    return source


_SAVED_MODEL = None


def saved_model_class():
    """`message SavedModel { int64 saved_model_schema_version = 1; repeated MetaGraphDef
    meta_graphs = 2; }`, which tensorboard does not ship, built on its MetaGraphDef."""
    global _SAVED_MODEL
    if _SAVED_MODEL is None:
        pool = meta_graph_pb2.DESCRIPTOR.pool
        name = "graph2py/saved_model.proto"
        try:
            file = pool.FindFileByName(name)
        except KeyError:
            proto = descriptor_pb2.FileDescriptorProto(
                name=name,
                package="graph2py",
                syntax="proto3",
                dependency=[meta_graph_pb2.DESCRIPTOR.name],
            )
            msg = proto.message_type.add(name="SavedModel")
            f = descriptor_pb2.FieldDescriptorProto
            msg.field.add(
                name="saved_model_schema_version",
                number=1,
                type=f.TYPE_INT64,
                label=f.LABEL_OPTIONAL,
            )
            msg.field.add(
                name="meta_graphs",
                number=2,
                type=f.TYPE_MESSAGE,
                label=f.LABEL_REPEATED,
                type_name="." + meta_graph_pb2.MetaGraphDef.DESCRIPTOR.full_name,
            )
            pool.Add(proto)
            file = pool.FindFileByName(name)
        _SAVED_MODEL = message_factory.GetMessageClass(file.message_types_by_name["SavedModel"])
    return _SAVED_MODEL


def _pick_meta_graph(file: Path, metas: list, tag: str | None):
    tag_sets = [sorted(m.meta_info_def.tags) for m in metas]
    if tag is None and len(metas) == 1:
        return metas[0]
    wanted = sorted(t.strip() for t in (tag or DEFAULT_TAG).split(",") if t.strip())
    for meta, tags in zip(metas, tag_sets):
        if tags == wanted:
            return meta
    available = "; ".join(",".join(t) or "(none)" for t in tag_sets)
    raise BadInputError(
        f"{file}: no meta graph with tag set {','.join(wanted)!r} (available: {available})"
    )


def _apply_signature(source: Source, file: Path, meta, name: str) -> None:
    """Inputs, outputs and (TF2) variables from the SignatureDef; the graph is cut down to
    what the signature computes."""
    available = sorted(k for k in meta.signature_def if not k.startswith("__"))
    if name not in meta.signature_def:
        listed = ", ".join(available) or "none"
        raise BadInputError(f"{file}: no signature {name!r} (available: {listed})")
    sig = meta.signature_def[name]
    source.signature = name
    if not sig.outputs:
        raise BadInputError(f"{file}: signature {name!r} has no outputs")
    for key in sorted(sig.inputs):
        info = sig.inputs[key]
        if info.WhichOneof("encoding") != "name":
            raise BadInputError(f"{file}: signature input {key!r} is not a plain tensor")
        source.inputs.append((key, tensor_ref(info.name)))
    for key in sorted(sig.outputs):
        info = sig.outputs[key]
        if info.WhichOneof("encoding") != "name":
            raise BadInputError(f"{file}: signature output {key!r} is not a plain tensor")
        source.outputs.append((key, tensor_ref(info.name)))
    source.graph_def = _reachable(source.graph_def, [t for _, t in source.outputs], file)
    if meta.HasField("object_graph_def"):
        source.variables = _bound_variables(source, meta.object_graph_def)


def _reachable(graph_def, tensors: list[str], file: Path):
    """The nodes the tensors depend on (data edges), with the function library."""
    by_name = {n.name: n for n in graph_def.node}
    keep, stack = set(), [split_ref(t)[0] for t in tensors]
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        if name not in by_name:
            raise BadInputError(f"{file}: the signature names tensor of a missing node {name!r}")
        keep.add(name)
        stack += [split_ref(tensor_ref(i))[0] for i in by_name[name].input if not i.startswith("^")]
    out = graph_pb2.GraphDef()
    out.node.extend(n for n in graph_def.node if n.name in keep)
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    return out


def _without_bookkeeping(graph_def):
    """The graph without initializers, savers and what feeds only them (a training graph's
    sinks are its save and init ops, not its outputs)."""
    consumers: dict[str, set[str]] = {}
    for node in graph_def.node:
        for i in node.input:
            consumers.setdefault(split_ref(tensor_ref(i.lstrip("^")))[0], set()).add(node.name)
    dropped = {
        n.name for n in graph_def.node if n.op in BOOKKEEPING_OPS or n.op.startswith(TRAINING_OPS)
    }
    changed = True
    while changed:
        changed = False
        for node in graph_def.node:
            if node.name in dropped:
                continue
            users = consumers.get(node.name)
            after = any(i.startswith("^") and i[1:] in dropped for i in node.input)
            if after or (users and users <= dropped):  # sequenced after, or feeding only, them
                dropped.add(node.name)
                changed = True
    out = graph_pb2.GraphDef()
    out.node.extend(n for n in graph_def.node if n.name not in dropped)
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    return out


def _bound_variables(source: Source, object_graph) -> dict[str, str]:
    """TF2: variable handle node -> checkpoint key. A call's captured inputs are the last
    arguments; the concrete function's bound_inputs name the saved objects they are, and the
    checkpoint's object graph (same object paths) gives each one's key."""
    calls = [
        n
        for n in source.graph_def.node
        if n.op in ("StatefulPartitionedCall", "PartitionedCall")
        and n.attr["f"].func.name in object_graph.concrete_functions
    ]
    if not calls:
        return {}
    keys = _object_keys(source, object_graph)
    found = {}
    for call in calls:
        bound = object_graph.concrete_functions[call.attr["f"].func.name].bound_inputs
        inputs = [i for i in call.input if not i.startswith("^")]
        captured = inputs[len(inputs) - len(bound) :] if bound else []
        for text, node_id in zip(captured, bound):
            key = keys.get(node_id)
            if key is not None:
                found[split_ref(tensor_ref(text))[0]] = key
    return found


def _object_keys(source: Source, object_graph) -> dict[int, str]:
    """SavedObjectGraph node id -> checkpoint key of its variable value, matched by path."""
    reader = open_checkpoint(source.checkpoint, source.path)
    try:
        raw = reader.string(OBJECT_GRAPH_KEY)
    except CheckpointError as err:
        raise BadInputError(str(err)) from None
    trackable = trackable_object_graph_pb2.TrackableObjectGraph()
    try:
        trackable.ParseFromString(raw)
    except message.DecodeError as err:
        raise BadInputError(f"{source.checkpoint}: corrupt object graph: {one_line(err)}") from None
    saved_paths = _paths(
        [[(c.node_id, c.local_name) for c in n.children] for n in object_graph.nodes]
    )
    ckpt_paths = _paths([[(c.node_id, c.local_name) for c in n.children] for n in trackable.nodes])
    by_path = {p: i for i, p in ckpt_paths.items()}
    keys = {}
    for node_id, path in saved_paths.items():
        ckpt_id = by_path.get(path)
        if ckpt_id is None:
            continue
        for attribute in trackable.nodes[ckpt_id].attributes:
            if attribute.name == "VARIABLE_VALUE":
                keys[node_id] = attribute.checkpoint_key
    return keys


def _paths(children: list[list[tuple[int, str]]]) -> dict[int, tuple[str, ...]]:
    """Breadth-first: each object's shortest path of child names from the root (node 0)."""
    paths: dict[int, tuple[str, ...]] = {0: ()} if children else {}
    queue = [0] if children else []
    while queue:
        current = queue.pop(0)
        for child, name in children[current]:
            if 0 <= child < len(children) and child not in paths:
                paths[child] = (*paths[current], name)
                queue.append(child)
    return paths


def open_checkpoint(prefix: str | None, path: Path) -> CheckpointReader:
    if prefix is None:
        raise BadInputError(f"{path}: no checkpoint to read variables from")
    try:
        return CheckpointReader(prefix, verify_up_to=VERIFY_UP_TO)
    except CheckpointError as err:
        raise BadInputError(str(err)) from None


# A source becomes the analyzer's graph in three steps around decoding and inlining, which
# pipeline.load runs: the GraphDef to decode (`graph_def_to_decode`), then on the decoded
# graph `name_outputs` (before inlining: it finds the call nodes) and, once calls are inlined,
# `read_variables`.


def graph_def_to_decode(source: Source) -> graph_pb2.GraphDef:
    """The source's GraphDef with each signature input's placeholder named after its argument
    (the signature's tensors in `source` follow)."""
    if not source.inputs:
        return source.graph_def
    return _rename_inputs(source.graph_def, source)


def read_variables(graph: Graph, source: Source, outputs: list[str] | None = None) -> Graph:
    """The inlined graph with variable reads replaced by checkpoint constants (only those the
    outputs depend on, when `outputs` or the signature name them); a frozen GraphDef as is."""
    if source.kind == "graphdef":
        return graph
    graph = _without_call_scopes(graph)
    wanted = outputs or [t for _, t in source.outputs]
    return _read_variables(graph, source, _upstream(graph, wanted) if wanted else None)


def _upstream(graph: Graph, tensors: list[str]) -> set[str]:
    """The nodes the tensors depend on (names that exist; prune reports the others)."""
    found: set[str] = set()
    stack = [split_ref(t)[0] for t in tensors]
    while stack:
        name = stack.pop()
        if name in found or name not in graph.nodes:
            continue
        found.add(name)
        stack += [split_ref(t)[0] for t in graph.nodes[name].inputs]
    return found


_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*")
_CALL_SCOPE = re.compile(r"(Stateful)?PartitionedCall(_\d+)?")


def _without_call_scopes(graph: Graph) -> Graph:
    """Inlined nodes are named `<call node>/<body node>`; a SavedModel's call nodes are all
    `StatefulPartitionedCall_N`, which names nothing. Drop those scopes where the shorter
    name stays unique, so layers are named after the function's own scopes."""
    names = {}
    for node in graph:
        parts = node.name.split("/")
        while len(parts) > 1 and _CALL_SCOPE.fullmatch(parts[0]):
            parts.pop(0)
        names[node.name] = "/".join(parts)
    counts: dict[str, int] = {}
    for short in names.values():
        counts[short] = counts.get(short, 0) + 1
    renames = {
        old: new
        for old, new in names.items()
        if new != old and counts[new] == 1 and new not in graph.nodes
    }
    if not renames:
        return graph

    def renamed(tensor: str) -> str:
        name, port = split_ref(tensor)
        return f"{renames.get(name, name)}:{port}"

    nodes = [
        Node(renames.get(n.name, n.name), n.op, [renamed(t) for t in n.inputs], n.attrs)
        for n in graph
    ]
    return Graph(nodes, graph.functions, graph.source)


def _rename_inputs(graph_def, source: Source):
    """Each signature input's placeholder takes the argument's name (a node already called
    that is renamed out of the way), so the Keras Input is named as the signature's argument."""
    renames: dict[str, str] = {}
    taken = {n.name for n in graph_def.node}
    for arg, tensor in source.inputs:
        name, port = split_ref(tensor)
        if port != 0 or name == arg or not _NODE_NAME.fullmatch(arg) or arg in renames.values():
            continue  # an argument TF could not name a node after keeps its placeholder's name
        if arg in taken:
            other = next(
                f"{arg}_{i}" for i in range(1, len(taken) + 2) if f"{arg}_{i}" not in taken
            )
            renames[arg] = other
            taken.add(other)
        renames[name] = arg
    if not renames:
        return graph_def
    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        node.name = renames.get(node.name, node.name)
        for i, text in enumerate(node.input):
            control = text.startswith("^")
            name, port = split_ref(tensor_ref(text.lstrip("^")))
            if name in renames:
                node.input[i] = f"^{renames[name]}" if control else f"{renames[name]}:{port}"
    source.inputs = [
        (arg, f"{renames.get(split_ref(t)[0], split_ref(t)[0])}:{split_ref(t)[1]}")
        for arg, t in source.inputs
    ]
    source.outputs = [(key, _renamed(t, renames)) for key, t in source.outputs]
    return out


def _renamed(tensor: str, renames: dict[str, str]) -> str:
    name, port = split_ref(tensor)
    return f"{renames.get(name, name)}:{port}"


def name_outputs(graph: Graph, source: Source) -> Graph:
    """An Identity per signature output that a function call produces: after inlining the call
    node is gone, and the output must still be nameable."""
    if not source.outputs:
        return graph
    nodes = list(graph)
    taken = set(graph.nodes)
    outputs = []
    for key, tensor in source.outputs:
        producer = graph.nodes.get(split_ref(tensor)[0])
        if producer is None or producer.op not in ("StatefulPartitionedCall", "PartitionedCall"):
            outputs.append((key, tensor))
            continue
        name = next(
            n for n in (key, *(f"{key}_{i}" for i in range(1, len(taken) + 2))) if n not in taken
        )
        taken.add(name)
        nodes.append(Node(name, "Identity", [tensor], {}))
        outputs.append((key, f"{name}:0"))
    source.outputs = outputs
    return Graph(nodes, graph.functions, graph.source)


def _read_variables(graph: Graph, source: Source, needed: set[str] | None) -> Graph:
    """Variable reads become Const nodes holding the checkpoint's value and key; every other
    Const is marked to be embedded in the loader (which reads the checkpoint, not the graph)."""
    reader = open_checkpoint(source.checkpoint, source.path)
    missing = []

    def key_of(node: Node) -> str:
        key = source.variables.get(node.name)
        if key is None:
            shared = node.attrs.get("shared_name")
            shared = shared if isinstance(shared, str) else ""  # a damaged attribute names none
            key = next((k for k in (node.name, shared) if k and k in reader), node.name)
        return key

    def constant(name: str, variable: Node) -> Node:
        key = key_of(variable)
        if key not in reader:
            missing.append(key)
            return Node(name, "Const", [], {"value": None, CHECKPOINT_KEY_ATTR: key})
        try:
            value = reader.tensor(key)  # one line for a broken file, not one per variable
        except CheckpointError as err:
            raise BadInputError(str(err)) from None
        return Node(
            name, "Const", [], {"value": value, "dtype": value.dtype.name, CHECKPOINT_KEY_ATTR: key}
        )

    nodes = []
    for node in graph:
        if needed is not None and node.name not in needed:
            nodes.append(node)  # feeds no output: pruned later, its variable never read
        elif node.op in ("VariableV2", "Variable"):
            nodes.append(constant(node.name, node))
        elif node.op == "ReadVariableOp" and node.inputs:
            handle = _through_identities(graph, node.inputs[0])
            if handle.op == "VarHandleOp":
                nodes.append(constant(node.name, handle))
            else:
                nodes.append(node)
        elif node.op == "Const":
            nodes.append(Node(node.name, node.op, node.inputs, {**node.attrs, EMBED_ATTR: True}))
        else:
            nodes.append(node)
    if missing:
        shown = ", ".join(repr(k) for k in list(dict.fromkeys(missing))[:5])
        more = f" and {len(set(missing)) - 5} more" if len(set(missing)) > 5 else ""
        raise BadInputError(
            f"{source.checkpoint}: the checkpoint has no variable {shown}{more} "
            f"(it holds {len(reader.keys())} keys)"
        )
    return Graph(nodes, graph.functions, graph.source)


def _through_identities(graph: Graph, tensor: str) -> Node:
    node = graph.producer(tensor)
    seen = set()
    while node.op == "Identity" and node.inputs and node.name not in seen:
        seen.add(node.name)
        node = graph.producer(node.inputs[0])
    return node
