"""`graph2py inspect`: what is in a graph, answered without converting it.

The question users ask first about a frozen graph is "what are its inputs and outputs?"; the
second is "will it convert?". This module answers both from the converter's own pipeline and
patterns, so the answer cannot disagree with what a conversion would do.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .analyze import analyze
from .errors import Graph2PyError, printable
from .graph import Graph
from .options import Options
from .passes.prune import IDENTITY_OPS
from .passes.settings import inference_value
from .pipeline import load, prepare, selected_facts
from .spec import LIFTED


@dataclass
class TensorInfo:
    name: str
    op: str
    dtype: str
    shape: list | None  # None: unknown rank; None entries: unknown dimensions


@dataclass
class Knob:
    name: str
    dtype: str
    suggest: str  # e.g. "--set is_train=false"


@dataclass
class Summary:
    source: str
    sha256: str
    nodes: int
    op_counts: dict[str, int]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    parameters: int  # elements of every constant a layer reads as a weight
    constants: int  # elements of all Const nodes in the pruned graph
    # op type -> {path: node count}; a path is "keras.layers.X", "constant" or "unsupported"
    paths: dict[str, dict[str, int]] = field(default_factory=dict)
    convertible: bool = True
    problems: list[str] = field(default_factory=list)
    # training switches left as placeholders (is_train, keep_prob), each with the --set that
    # fixes it for inference
    knobs: list[Knob] = field(default_factory=list)
    # the Keras backends the converted model runs on, and that said in words (spec.py)
    backends: list[str] = field(default_factory=list)
    runs_on: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)


def summarize(path: str | Path, options: Options = Options()) -> Summary:
    """Any input format (see formats.py). The inputs and outputs shown are the model's: the
    options', else a signature's, else the graph's placeholders and sinks."""
    prepared = prepare(load(path, options))
    # nodes as the converter sees them: calls inlined, static conditions resolved
    # (passes/control.py); the selected ones in the graph's own layout
    graph, pruned = prepared.graph, prepared.selected
    consts, shapes = selected_facts(prepared)
    summary = Summary(
        source=prepared.loaded.source,
        sha256=prepared.loaded.sha256,
        nodes=len(graph),
        op_counts=dict(sorted(Counter(n.op for n in graph).items())),
        inputs=[_info(pruned.graph, shapes, t) for t in pruned.inputs],
        outputs=[_info(pruned.graph, shapes, t) for t in pruned.outputs],
        parameters=0,
        constants=int(
            sum(
                n.attrs["value"].size
                for n in pruned.graph
                if n.op == "Const" and isinstance(n.attrs.get("value"), np.ndarray)
            )
        ),
    )
    summary.knobs = knobs(graph)
    try:
        spec = analyze(prepared, strict=False)
    except Graph2PyError as err:
        summary.convertible = False
        summary.problems = err.problems
        return summary
    summary.parameters = sum(int(np.prod(w.shape)) for layer in spec.layers for w in layer.weights)
    summary.backends, summary.runs_on = spec.backends(), spec.where_it_runs()
    paths: dict[str, Counter] = {}
    covered = set()
    for layer in spec.layers:
        for node, op in zip(layer.nodes, layer.ops):
            covered.add(node)
            op = LIFTED.get(op, op)  # a lifted RNN loop, as the report names it
            if op:
                paths.setdefault(op, Counter())[layer.target()] += 1
    for node in pruned.graph:
        if node.output(0) in pruned.inputs:
            paths.setdefault(node.op, Counter())["keras.Input"] += 1
            continue
        if node.name in covered:
            continue
        path_name = "constant" if consts.is_const(node.output(0)) else "unsupported"
        paths.setdefault(node.op, Counter())[path_name] += 1
    summary.paths = {op: dict(sorted(c.items())) for op, c in sorted(paths.items())}
    if spec.unsupported:
        summary.convertible = False
        summary.problems = [
            f"no pattern for {n} {op} node(s)" for op, n in spec.unsupported.items()
        ]
    return summary


def knobs(graph: Graph) -> list[Knob]:
    """The placeholders that look like training switches (passes/settings.py)."""
    found = []
    for node in graph:
        value = inference_value(node)
        if value is not None:
            dtype = node.attrs.get("dtype", "float32")
            found.append(Knob(node.name, dtype, f"--set {node.name}={value}"))
    return found


def _info(graph: Graph, shapes: dict, tensor: str) -> TensorInfo:
    node = graph.producer(tensor)
    dtype = next((node.attrs[k] for k in ("dtype", "T") if isinstance(node.attrs.get(k), str)), "?")
    shape = shapes.get(tensor)
    return TensorInfo(tensor, node.op, dtype, None if shape is None else list(shape))


def render_table(s: Summary) -> str:
    """The human-readable form: short sections, aligned columns."""

    def shape_text(shape):
        if shape is None:
            return "unknown rank"
        return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"

    lines = [f"{s.source}  sha256 {s.sha256[:16]}…", ""]
    lines.append("inputs")
    for t in s.inputs:
        lines.append(f"  {t.name:<40} {t.dtype:<9} {shape_text(t.shape)}")
    lines.append("outputs (graph sinks)")
    for t in s.outputs:
        lines.append(f"  {t.name:<40} {t.dtype:<9} {shape_text(t.shape)}  [{t.op}]")
    if s.knobs:
        lines.append("training switches (fix them for inference with --set)")
        for k in s.knobs:
            lines.append(f"  {k.name:<40} {k.dtype:<9} {k.suggest}")
    lines += [
        "",
        f"nodes {s.nodes}, parameters {s.parameters:,}, constant elements {s.constants:,}",
    ]
    lines += ["", f"{'op':<26}{'nodes':>7}  path"]
    for op, count in s.op_counts.items():
        where = s.paths.get(op, {})
        text = ", ".join(f"{p} ×{n}" if len(where) > 1 else p for p, n in where.items())
        if not text:
            text = "bypassed (identity)" if op in IDENTITY_OPS else "pruned (feeds no output)"
        lines.append(f"  {op:<24}{count:>7}  {text}")
    lines.append("")
    if s.convertible:
        lines.append("converts: yes")
        lines.append(s.runs_on)
    else:
        lines.append("converts: no")
        lines += [f"  {p}" for p in s.problems]
    return "".join(printable(line) + "\n" for line in lines)
