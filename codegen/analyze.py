"""Prepared graph -> model spec: the registered patterns claim nodes (pipeline.py runs the
passes before).

Nodes are visited in topological order; the first pattern registered for a node's op that
matches claims the node and whatever follows it in the same layer. Constants are never visited
(patterns read them as values), and a node no pattern claims is reported, all of them at once.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from pathlib import Path

from . import __version__
from .errors import UnsupportedError
from .graph import Graph, split_ref
from .names import Allocator, ScopeNamer, backend_name, identifier, keras_name, name_path
from .nesting import nest
from .options import Options
from .passes.prune import output_dtype
from .passes.shapes import undecided_rank
from .pipeline import Prepared, load, prepare
from .patterns import (
    FALLBACKS,
    MAX_LITERAL,
    OBJECT_KEY,
    PATTERNS,
    Matcher,
    literal_cells,
    load_all,
    variable_path,
)
from .recipes import Recipe, Value
from .spec import Call, Input, Item, Kind, Lambda, Layer, ModelSpec, Weight


def analyze_file(path: str | Path, options: Options = Options()) -> ModelSpec:
    """The spec of a graph file, SavedModel, meta graph or GraphDef + checkpoint (formats.py)."""
    return analyze(prepare(load(path, options)))


def analyze(prepared: Prepared, strict: bool = True) -> ModelSpec:
    """The model spec. With strict=False ops no pattern claims are counted in
    `spec.unsupported` instead of raised (for `graph2py inspect`).

    The patterns fold constants too (a loop body written out as keras.ops: patterns/control.py),
    after every pass: they draw on the conversion's constant budget like the passes do."""
    with prepared.loaded.budget.active():
        spec = _analyze(prepared, strict)
        prepared.loaded.budget.raise_refused()
    return spec


def _analyze(prepared: Prepared, strict: bool) -> ModelSpec:
    load_all()
    pruned, consts, shapes = prepared.pruned, prepared.constants, prepared.shapes
    graph = pruned.graph
    namer = ScopeNamer([n.name for n in graph if n.op not in ("Const", "Placeholder")])
    matcher = Matcher(graph, consts, shapes, namer, set(pruned.outputs))

    model_inputs = []
    for tensor in pruned.inputs:
        node = graph.producer(tensor)
        shape = shapes.get(tensor)
        if shape is None:
            raise UnsupportedError(undecided_rank(graph, tensor))
        dtype = node.attrs.get("dtype", "float32")
        if shape:
            model_inputs.append(Input(tensor, keras_name(node.name), tuple(shape[1:]), dtype))
        else:  # a scalar switch fed beside the data
            model_inputs.append(Input(tensor, keras_name(node.name), (), dtype, batched=False))

    input_set = set(pruned.inputs)
    outputs_of: dict[str, list[str]] = {}
    for tensor in pruned.outputs:
        outputs_of.setdefault(split_ref(tensor)[0], []).append(tensor)
    unfolded = computed_in_model(graph, consts)
    constants = _ConstantLayers(matcher, pruned.inputs[0] if pruned.inputs else None, unfolded)
    layers: list[Layer] = []
    pending: list[str] = []
    for registry in (PATTERNS, FALLBACKS):
        pending = []
        for node in graph:
            if node.name in matcher.covered or node.output(0) in input_set:
                continue
            if consts.is_const(node.output(0)) and node.name not in unfolded:
                continue
            for fn in [*registry.get(node.op, ()), *registry.get("*", ())]:
                found = fn(node, matcher)
                # a pattern may give a short chain of layers (a dilated conv, then its stride)
                chain = found if isinstance(found, list) else [found] if found else []
                covers = {n for layer in chain for n in layer.nodes}
                if (
                    chain
                    and not (covers & matcher.covered)
                    and not _hides_output(covers, chain, outputs_of)
                    and _keeps_dtype(chain[-1], graph)
                ):
                    matcher.covered.update(covers)
                    for layer in chain:
                        layers.extend(constants.for_layer(layer))
                        layers.append(layer)
                    break
            else:
                pending.append(node.name)

    unclaimed = Counter(graph.nodes[n].op for n in pending if n not in matcher.covered)
    if strict and unclaimed:
        raise UnsupportedError(
            *(
                f"no pattern for {count} {op} node{'s' if count > 1 else ''}"
                for op, count in sorted(unclaimed.items())
            )
        )
    # an output that folds to a constant (a setting resolved it) is returned as one
    const_outputs = [t for t in dict.fromkeys(pruned.outputs) if consts.is_const(t)]
    layers.extend(constants.for_tensors(const_outputs, "the model's output", own_names=True))

    layers = nest(layers, list(pruned.outputs))
    _unique_names(layers, model_inputs)
    loaded = prepared.loaded
    return ModelSpec(
        name=backend_name(namer.model_name() or loaded.name),
        scope=namer.graph_scope,
        source=loaded.source,
        sha256=loaded.sha256,
        inputs=model_inputs,
        # with unclaimed ops some inputs are never produced; keep the order patterns found
        layers=dependency_order(layers, input_set) if not unclaimed else layers,
        outputs=list(pruned.outputs),
        graph_outputs=list(pruned.source_outputs),
        version=__version__,
        unsupported=dict(sorted(unclaimed.items())),
        source_kind=loaded.kind,
        weights_source=loaded.weights_source,
        # the header's regenerate command (the language server's Regenerate reads it back)
        options=loaded.options.arguments(),
        warnings=list(pruned.warnings),
    )


def computed_in_model(graph: Graph, consts) -> set[str]:
    """The nodes whose constant results the model computes rather than reads: a constant that
    the computation reads, that no recipe rebuilds from stored constants (the loader cannot
    compute it) and that is too large to write out (or no number) is computed by layers from
    its operands, and so on back to what can be read or written out. A valid graph never
    fails for a constant it holds."""

    def unwritable(tensor: str) -> bool:
        value = consts.value(tensor)
        if value is None or consts.recipe(tensor) is not None:
            return False
        return literal_cells(value) > MAX_LITERAL or value.dtype.kind not in "biuf"

    stack = [
        t
        for node in graph
        if not consts.is_const(node.output(0))
        for t in node.inputs
        if unwritable(t)
    ]
    found: set[str] = set()
    while stack:
        node = graph.producer(stack.pop())
        if node.name not in found:
            found.add(node.name)
            stack.extend(t for t in node.inputs if unwritable(t))
    return found


# what TF calls a captured variable it freezes: `unknown_N` from a signature, a number from a
# concrete function
_UNNAMED = re.compile(r"unknown(_\d+)?|\d+")
_WORD = re.compile(r"[A-Za-z][A-Za-z_]*")


class _ConstantLayers:
    """A constant that a keras.ops expression or a TensorFlow-only layer takes as a tensor
    becomes a `Constant` layer (a helper holding it as a non-trainable weight, which
    load_weights.py fills), made once however many layers read it."""

    def __init__(self, m: Matcher, fallback_anchor: str | None, unfolded: set[str]):
        self.m = m
        self.fallback_anchor = fallback_anchor
        self.made: set[str] = set()
        self.unfolded = unfolded  # nodes whose constant results a layer computes

    def for_layer(self, layer: Layer) -> list[Layer]:
        computed = [t for t in layer.inputs if not self.m.consts.is_const(t)]
        anchor = computed[0] if computed else self.fallback_anchor
        reader = repr(layer.nodes[0]) if layer.nodes else repr(layer.name)
        return self.for_tensors(layer.inputs, reader, anchor, owner=layer.name)

    def for_tensors(
        self,
        tensors: list[str],
        reader: str,
        anchor: str | None = None,
        own_names=False,
        owner: str | None = None,
    ) -> list[Layer]:
        """A Constant layer for each constant among `tensors` not made yet, placed by `anchor`
        (by default the model's first input); `reader` names who reads them, for the error.
        Named after the stored constant it reads (or the layer reading it, `owner`, where that
        has no name of its own), or with `own_names` (a model output) after the tensor's node."""
        consts, anchor = self.m.consts, anchor or self.fallback_anchor
        new = []
        for tensor in tensors:
            if tensor in self.made or not consts.is_const(tensor):
                continue
            if split_ref(tensor)[0] in self.unfolded:
                continue  # computed by the layer made for its node
            if anchor is None:
                raise UnsupportedError(f"{reader} computes on constants alone")
            value = consts.value(tensor)
            recipe = consts.recipe(tensor)
            if recipe is None:  # folded at conversion time: the loader writes the value out
                if literal_cells(value) > MAX_LITERAL or value.dtype.kind not in "biuf":
                    raise UnsupportedError(
                        f"{reader} reads a computed constant of shape "
                        f"{tuple(value.shape)} that is too large to write out"
                    )
                recipe = Value(value.tolist(), value.dtype.name)
            node = self.m.node(tensor)
            kwargs = {"shape": tuple(int(d) for d in value.shape)}
            if value.dtype.name != "float32":
                kwargs["value_dtype"] = value.dtype.name
            weight = Weight("value", recipe, tuple(value.shape))
            self.made.add(tensor)
            new.append(
                Layer(
                    kind=Kind.LAYER,
                    cls="Constant",
                    name=(
                        keras_name(node.name) if own_names else self._name(node.name, recipe, owner)
                    ),
                    inputs=[anchor],
                    outputs=[tensor],
                    nodes=[node.name],
                    ops=["Const"],
                    kwargs=kwargs,
                    weights=[weight],
                )
            )
        return new

    def _name(self, node_name: str, recipe: Recipe, owner: str | None) -> str:
        """The stored constant's own name, less the suffixes freezing adds (`.../kernel` for
        `.../kernel/ReadVariableOp/resource`), the call scopes and the model scope. A TF2
        checkpoint key is the path of attributes to the variable (`layer_with_weights-0/mean`,
        Keras 3's `variables/0`) and TF calls a captured variable it freezes `unknown_N` or `N`: those
        are named after the layer reading them, with the attribute where it is a word."""
        source = recipe.first_source() or node_name
        unnamed = _UNNAMED.fullmatch(source.rsplit("/", 1)[-1])
        if owner and (source.endswith(OBJECT_KEY) or unnamed):
            attribute = variable_path(source)[-1] if source.endswith(OBJECT_KEY) else ""
            word = attribute if _WORD.fullmatch(attribute) else "const"
            return backend_name(f"{owner}_{word}")
        parts = variable_path(source)
        parts = name_path("/".join(parts)) if parts else parts
        scope = self.m.namer.model_scope
        if scope and len(parts) > 1 and parts[0] == scope:
            parts = parts[1:]
        if len(parts) > 1:
            return backend_name("_".join(parts))
        # a one-part name (`Gather/resource`) is usually its reader's too: say what this is
        return backend_name((parts[0] if parts else node_name) + "_const")


# Keras layers compute in float32 (a float16 or float64 input is cast) and most give float
# results whatever they are fed; these move or combine values in the inputs' own dtype, so
# integers come out as TensorFlow computes them.
_INT_EXACT = {
    "Reshape",
    "Flatten",
    "Permute",
    "Concatenate",
    "Cropping2D",
    "ZeroPadding2D",
    "Add",
    "Subtract",
    "Multiply",
    "Maximum",
    "Minimum",
}


def _keeps_dtype(layer: Layer, graph: Graph) -> bool:
    """Whether a keras.layers layer gives the dtype the graph computes: an int32 mean must stay
    a truncating int32 mean, which GlobalAveragePooling2D is not (keras.ops and TensorFlow-only
    layers compute in the graph's own dtypes)."""
    if layer.kind is not Kind.LAYER:
        return True
    dtype = output_dtype(graph.producer(layer.outputs[0]))
    return dtype == "float32" or (layer.cls in _INT_EXACT and dtype.startswith(("int", "uint")))


def _hides_output(nodes: set[str], chain: list[Layer], outputs: dict[str, list[str]]) -> bool:
    """Whether a pattern's layers swallow a model output: a tensor of one of the nodes they
    cover that the user asked for (--outputs) would exist nowhere in the Keras model.
    `outputs`: the model's outputs by node (a graph of 100,000 sinks has as many outputs,
    asked about per layer)."""
    made = {t for layer in chain for t in layer.outputs}
    return any(t not in made for n in nodes for t in outputs.get(n, ()))


def _unique_names(layers: list[Layer], inputs: list[Input]) -> None:
    """A second layer from one scope (the ReLU after a TF1 conv's batch norm, both in `conv1`)
    is named for what it does, `conv1_relu`, before falling back to a number."""
    names = Allocator()
    auto = _operation_names(layers)
    for item in [*inputs, *layers]:
        if isinstance(item, Layer) and item.kind is not Kind.OPS and auto.match(item.name):
            # Keras names each keras.ops call after its function (`add`, `add_1`, ...) and
            # requires every name in a model to be unique
            item.name = f"{item.name}_{identifier(item.cls or item.ops[-1])}"
        if item.name in names.used and isinstance(item, Layer) and item.ops:
            kind = re.sub(r"v\d+$", "", identifier(item.ops[-1]).replace("_", ""))
            item.name = f"{item.name}_{kind}"
        item.name = names.claim(item.name)


def _operation_names(layers: list[Layer]) -> re.Pattern:
    """A pattern of the names Keras may give the keras.ops calls of these layers."""
    functions = {"get_item"}
    stack = [layer.expr for layer in layers if layer.kind is Kind.OPS]
    while stack:
        expr = stack.pop()
        if isinstance(expr, Call):
            functions.add(expr.fn.rsplit(".", 1)[-1])
            stack.extend(expr.args)
            stack.extend(v for _, v in expr.kwargs)
        elif isinstance(expr, Item):
            stack.append(expr.value)
        elif isinstance(expr, (list, tuple)):
            stack.extend(expr)
        elif isinstance(expr, Lambda):
            stack.append(expr.body)
            stack.extend(v for _, v in expr.bindings)
    alternatives = "|".join(sorted(re.escape(f) for f in functions))
    return re.compile(rf"^(?:{alternatives})(?:_\d+)?$")


def dependency_order(layers: list[Layer], available: set[str]) -> list[Layer]:
    """Layers in an order where every input exists before it is used (patterns that absorb
    earlier nodes can otherwise be created after a layer that reads their output): each time,
    the earliest layer whose inputs all exist."""
    produced = set(available)
    waiting: dict[str, list[int]] = {}  # tensor -> the layers that read it before it exists
    missing = []  # per layer: how many of its inputs do not exist yet
    for i, layer in enumerate(layers):
        absent = {t for t in layer.inputs if t not in produced}
        for tensor in absent:
            waiting.setdefault(tensor, []).append(i)
        missing.append(len(absent))
    ready = [i for i, count in enumerate(missing) if count == 0]
    heapq.heapify(ready)
    ordered = []
    while ready:
        layer = layers[heapq.heappop(ready)]
        ordered.append(layer)
        for tensor in layer.outputs:
            if tensor in produced:
                continue
            produced.add(tensor)
            for i in waiting.pop(tensor, ()):
                missing[i] -= 1
                if missing[i] == 0:
                    heapq.heappush(ready, i)
    if len(ordered) < len(layers):
        remaining = [layers[i] for i, count in enumerate(missing) if count]
        missing_tensors = sorted({t for l in remaining for t in l.inputs if t not in produced})
        raise UnsupportedError(
            f"cannot order layers: tensors {missing_tensors[:5]} are never produced"
        )
    return ordered
