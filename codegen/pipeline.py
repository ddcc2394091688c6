"""From a source file to the graph a model computes, written once.

convert, inspect, check and the language server all start here, so they cannot disagree about
what a graph means:

    load      formats.open_source -> decode (graph.py, then RNN lifting and TF1 loop
              functionalisation on the node list: a lowered loop is a cycle, which a Graph
              refuses) -> signature outputs named -> calls inlined -> checkpoint variables read
    prepare   --set placeholders made constants -> control flow resolved -> pruned to the
              inputs and outputs (their shapes inferred where not declared) -> channels_last
              -> constants -> shapes

Each returns plain data. `load` and `prepare` are separate steps for the language server, which
describes a graph's nodes even when the passes reject it; everything else calls
`prepare(load(path, options))` once per conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tensorboard.compat.proto import graph_pb2

from .budget import Budget, for_input
from .formats import graph_def_to_decode, name_outputs, open_source, read_variables
from .graph import Graph, from_graphdef
from .load import read_graph_file
from .names import keras_name
from .options import Options
from .passes.control import functionalize_frames, resolve_control_flow
from .passes.fold import Constants
from .passes.inline import inline_functions
from .passes.layout import channels_last
from .passes.prune import Pruned, TensorSpec, apply_sets, prune
from .passes.rnn import lift_recurrent
from .passes.shapes import infer_shapes


@dataclass
class Loaded:
    """A source read and decoded: what the header says about it, and its graph."""

    options: Options
    name: str  # the model's name unless the graph's scopes give one
    source: str  # the file or directory name converted, as the header gives it
    sha256: str  # of the graph file
    kind: str  # formats.Source.kind: where the generated loader reads the weights
    weights_source: str  # the file or checkpoint prefix load_weights.py reads by default
    # the model's inputs and outputs: --inputs/--outputs, else a signature's (sorted by key),
    # else None (every placeholder, every sink)
    inputs: list[TensorSpec] | None
    outputs: list[TensorSpec] | None
    graph: Graph  # every node of the source, calls inlined, variables read as constants
    budget: Budget  # what is left of its constant budget, for the stages after load


@dataclass
class Prepared:
    """What the patterns read: the graph pruned to the model, its constants and shapes."""

    loaded: Loaded
    graph: Graph  # loaded.graph with control flow resolved, before pruning
    selected: Pruned  # what the outputs depend on, in the graph's own layout
    pruned: Pruned  # what the model computes: `selected` rewritten channels_last
    constants: Constants  # of pruned.graph
    shapes: dict  # tensor -> shape, for pruned.graph


def load(path: str | Path, options: Options = Options()) -> Loaded:
    """Any input format (see formats.py), decoded into the analyzer's graph. Sizes the
    conversion's constant budget (budget.py), which prepare draws on as well."""
    path = Path(path)
    source = open_source(path, options.signature, options.tag, options.checkpoint)
    spend = for_input(source.input_bytes, str(source.path), options.max_constant_mb)
    with spend.active():
        graph = name_outputs(decode(graph_def_to_decode(source), str(source.path)), source)
        source.graph_def = None  # the decoded graph holds what it needs
        wanted = [o.tensor for o in options.outputs] if options.outputs else None
        graph = read_variables(inline_functions(graph), source, wanted)
        spend.raise_refused()
    inputs, outputs = options.inputs, options.outputs
    if inputs is None and source.inputs:
        inputs = [TensorSpec(t) for _, t in source.inputs]
    if outputs is None and source.outputs:
        outputs = [TensorSpec(t) for _, t in source.outputs]
    return Loaded(
        options=options,
        name=keras_name(Path(source.name).stem) or "model",
        source=path.name,
        sha256=source.sha256,
        kind=source.kind,
        weights_source=Path(source.checkpoint).name if source.kind == "checkpoint" else path.name,
        inputs=inputs,
        outputs=outputs,
        graph=graph,
        budget=spend,
    )


def decode(graph_def: graph_pb2.GraphDef, source: str = "graph") -> Graph:
    """A GraphDef as a Graph, its loops already single nodes: recurrent ones lifted to Keras
    RNN nodes first (passes/rnn.py), the others made While nodes (passes/control.py)."""
    nodes, functions = from_graphdef(graph_def, source)
    nodes = lift_recurrent(nodes, functions, source)
    nodes = functionalize_frames(nodes, source, graph_def)
    return Graph(nodes, functions, source)


def decode_file(path: Path, options: Options = Options()) -> tuple[Graph, str]:
    """A GraphDef file's graph (calls inlined) and sha256, for describing its nodes when it
    does not load as a source (formats.open_source refuses a GraphDef that reads variables
    without their checkpoint)."""
    graph_def, sha256 = read_graph_file(path)
    spend = for_input(Path(path).stat().st_size, str(path), options.max_constant_mb)
    with spend.active():
        graph = inline_functions(decode(graph_def, str(path)))
        spend.raise_refused()
    return graph, sha256


def prepare(loaded: Loaded) -> Prepared:
    """The passes, in order. io_layout="nhwc" gives an NCHW graph NHWC inputs and outputs
    (see passes/layout.py)."""
    with loaded.budget.active():
        graph, inputs = apply_sets(loaded.graph, loaded.options.sets, loaded.inputs)
        graph = resolve_control_flow(graph, inputs, loaded.outputs)
        selected = prune(graph, inputs, loaded.outputs)
        pruned = channels_last(selected, loaded.options.io_layout)
        constants = Constants(pruned.graph)
        shapes = infer_shapes(pruned.graph, constants, pruned.input_shapes)
        loaded.budget.raise_refused()
    return Prepared(loaded, graph, selected, pruned, constants, shapes)


def selected_facts(prepared: Prepared) -> tuple[Constants, dict]:
    """Constants and shapes of `prepared.selected`, for describing the graph's own tensors
    (inspect, hovers): the model's, unless channels_last rewrote the graph."""
    if prepared.selected is prepared.pruned:
        return prepared.constants, prepared.shapes
    graph = prepared.selected.graph
    constants = Constants(graph)
    with prepared.loaded.budget.active():
        return constants, infer_shapes(graph, constants, prepared.selected.input_shapes)
