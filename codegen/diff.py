"""`graph2py diff OLD NEW`: two sources compared as models, not as bytes or as text.

A re-exported graph gives a long textual diff of model.py even when one layer changed; a reviewer
wants "block_3_expand: filters 144 → 192". Both sides are analysed to model specs (spec.py) the
way a conversion would (no TensorFlow), then compared in three plain steps:

    load_side     a source (graph file, SavedModel, meta graph, or a directory graph2py
                  generated, read back through its header) -> Side: spec, port facts, and the
                  stored constants its weight recipes read
    compare       Side, Side -> Comparison: typed records (PortChange, LayerChange,
                  WeightChange) and the counts
    render_text / render_markdown

Layers are paired by name first (a name that now holds another class is a removal and an
addition, not a change), then by structure: an unpaired layer of the same class and the same
configuration, wired to the same (already paired) producers, is the same layer renamed: a
renamed scope pairs a whole block, producer by producer. Inputs pair by name, then in order;
outputs by name, then by the paired layer that computes them, then in order. Configuration is compared as the
constructor sees it: positional arguments by the constructor's parameter names, keyword arguments
against Keras's defaults (a default left out equals the default written out); keras.ops layers by
their expression, TensorFlow-only layers by op, operands and attributes. Wiring is compared too:
a paired layer that now reads another paired layer says so; one whose producer was added or
removed does not repeat what that line says.

Without `--weights` only the architecture is compared and the report says that weights were not:
a retrained graph is "equal", exit 0. With it, every weight of every paired layer is computed from
its recipe (recipes.evaluate, the numpy the generated loader spells out) against the stored
constants and checkpoint variables the loaded graph holds, and compared exactly.

Every text from a graph passes errors.printable before it is printed; in Markdown it is a code
span that neither a backtick nor a `|` can end or split (`code`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .emit import DEFAULTS, expression, literal
from .errors import BadInputError, printable
from .graph import Graph, const_value, split_ref
from .options import Options
from .passes.fold import CHECKPOINT_KEY_ATTR
from .passes.prune import output_dtype
from .recipes import evaluate
from .spec import POSITIONAL, Kind, Layer, ModelSpec

EXIT_SAME, EXIT_DIFFERENT = 0, 1  # as diff(1): 0 equal, 1 different (errors keep theirs)

ARROW = "→"
NOT_GIVEN = "not given"


class Code(str):
    """A configuration value that is source already (an expression): shown as it is."""


# -- one side --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    """A model input or output as a caller sees it."""

    name: str
    shape: tuple | None  # with the batch dimension (None) when the input is batched
    dtype: str
    producer: tuple = ()  # an output's producing layer, as `_Wiring` identifies producers


@dataclass
class Side:
    """One source analysed: what `compare` reads."""

    label: str  # the source as the command line gave it
    spec: ModelSpec
    inputs: list[Port]
    outputs: list[Port]
    stored: Mapping[str, np.ndarray] | None = None  # what the weight recipes read
    warnings: list[str] = field(default_factory=list)  # for stderr: what the reader should know


def load_side(source: str, options: Options = Options(), weights: bool = False) -> Side:
    """A source as a model: a graph file, SavedModel or meta graph with `options`, or a
    directory graph2py generated (or its model.py), rebuilt from the source and options its
    header records. `weights`: keep the stored constants for comparing weights."""
    from .pipeline import load, prepare
    from .analyze import analyze

    path = Path(source)
    generated = generated_model(path)
    recorded, given = None, options
    if generated is not None:
        path, options, recorded = _recorded_source(generated)
    loaded = load(path, options)
    prepared = prepare(loaded)
    spec = analyze(prepared)
    warnings = []  # not the conversion's (an unused input): what makes this comparison unusual
    if generated is not None and given != Options():
        warnings.append(
            f"{source}: a generated model is rebuilt with the options its header records; "
            f"the command line's apply to the other side only"
        )
    if recorded is not None and recorded != spec.sha256:
        warnings.append(
            f"{generated}: its header records another {spec.source} (sha256 {recorded[:12]}…, "
            f"now {spec.sha256[:12]}…): comparing the model the graph gives now"
        )
    graph = prepared.pruned.graph
    facts = _Wiring(spec)
    inputs = [
        Port(i.name, (None, *i.shape) if i.batched else tuple(i.shape), i.dtype)
        for i in spec.inputs
    ]
    names = spec.graph_outputs if len(spec.graph_outputs) == len(spec.outputs) else spec.outputs
    outputs = []
    for name, tensor in zip(names, spec.outputs):
        shape = prepared.shapes.get(tensor)
        node = graph.nodes.get(split_ref(tensor)[0])
        dtype = output_dtype(node) if node is not None else "float32"
        outputs.append(
            Port(
                name[:-2] if name.endswith(":0") else name,
                None if shape is None else tuple(shape),
                dtype,
                facts.producer(tensor),
            )
        )
    stored = StoredValues(graph) if weights else None
    return Side(source, spec, inputs, outputs, stored, warnings)


def generated_model(path: Path) -> Path | None:
    """DIR/model.py when `path` is a directory holding one (a SavedModel directory holds
    saved_model.pb instead), or `path` itself when it names a .py file."""
    if path.is_dir():
        model = path / "model.py"
        return model if model.is_file() else None
    return path if path.suffix == ".py" else None


def _recorded_source(model: Path) -> tuple[Path, Options, str]:
    """(the graph, the options, the graph's sha256) a generated model.py records in its header;
    the source found as check --fresh and the language server find it (header.find_source)."""
    from .header import find_source, parse_header

    try:
        text = model.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise BadInputError(f"{model}: cannot read: {reason}") from None
    header = parse_header(text)
    if header is None:
        raise BadInputError(
            f"{model}: no graph2py header (`# Generated by graph2py VERSION from SOURCE` and "
            f"its sha256): not a generated model"
        )
    source = find_source(model.parent, header.source)
    if source is None:
        raise BadInputError(
            f"{model}: the graph its header names, {header.source}, is not found from "
            f"{model.parent} (diff rebuilds the model from it: put it there, or give the graph "
            f"itself)"
        )
    options = Options.from_header(text, source)
    if options is None:
        raise BadInputError(
            f"{model}: the header's regenerate line is missing or unreadable, so the options "
            f"the model was made with are unknown (give the graph and its options instead)"
        )
    return source, options, header.sha256


class StoredValues(Mapping):
    """The values weight recipes read, from the loaded graph: a graph constant by node name
    (`Read`), a checkpoint variable by key (`Variable`: formats.py read it into a Const that
    keeps its key). The same values the generated loader reads from the file."""

    def __init__(self, graph: Graph):
        self._graph = graph
        self._keys: dict[str, str] | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        node = self._graph.nodes.get(name)
        value = const_value(node) if node is not None else None
        if value is None:
            if self._keys is None:
                self._keys = {
                    n.attrs[CHECKPOINT_KEY_ATTR]: n.name
                    for n in self._graph
                    if n.op == "Const" and CHECKPOINT_KEY_ATTR in n.attrs
                }
            node = self._graph.nodes.get(self._keys.get(name, ""))
            value = const_value(node) if node is not None else None
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self):
        return (n.name for n in self._graph if const_value(n) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# -- comparing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortChange:
    which: str  # "input" or "output"
    change: str  # "added", "removed", "renamed", "changed"
    name: str  # the new name (the old one when removed)
    old_name: str = ""  # renamed: the old name
    details: tuple[str, ...] = ()  # "shape (None, 8) → (None, 16)", ...


@dataclass(frozen=True)
class LayerChange:
    change: str  # "added", "removed", "renamed", "changed"
    name: str  # the new name (the old one when removed)
    old_name: str = ""  # renamed: the old name
    what: str = ""  # added or removed: the call, `Conv2D(16, (3, 3))`
    details: tuple[str, ...] = ()  # "filters 144 → 192", ...


@dataclass(frozen=True)
class WeightChange:
    layer: str  # the new layer name
    weight: str
    change: str  # "changed", "reshaped", "added", "removed"
    max_abs: float | None = None  # changed: max |new - old|
    relative: float | None = None  # changed: ||new - old|| / ||old|| (inf when old is zero)
    old_shape: tuple | None = None
    new_shape: tuple | None = None


@dataclass
class Comparison:
    old: str  # labels, as given
    new: str
    ports: list[PortChange] = field(default_factory=list)
    layers: list[LayerChange] = field(default_factory=list)
    weights: list[WeightChange] | None = None  # None: weights not compared
    changed: int = 0  # layers paired and different (configuration, wiring, weights)
    added: int = 0
    removed: int = 0
    renamed: int = 0  # paired by structure, otherwise equal
    unchanged: int = 0

    @property
    def equal(self) -> bool:
        return not (self.ports or self.layers or self.weights)

    def counts(self) -> str:
        """The last line: `2 layers changed, 1 added, 0 removed, 0 renamed, 171 unchanged`,
        after the inputs' and outputs' changes when there are any."""
        tally: dict[tuple[str, str], int] = {}
        for port in self.ports:
            tally[port.which, port.change] = tally.get((port.which, port.change), 0) + 1
        ports = [
            f"{count} {which}{'s' if count > 1 else ''} {change}"
            for (which, change), count in tally.items()
        ]
        layers = (
            f"{self.changed} layer{'' if self.changed == 1 else 's'} changed, {self.added} added, "
            f"{self.removed} removed, {self.renamed} renamed, {self.unchanged} unchanged"
        )
        return "; ".join([", ".join(ports), layers] if ports else [layers])


def compare(old: Side, new: Side) -> Comparison:
    """Every difference between the two models, in reading order: inputs, outputs, layers (in
    the new model's order, then those removed, in the old's), weights (by layer)."""
    result = Comparison(old.label, new.label)
    inputs = _pair_ports("input", old.inputs, new.inputs, result)
    pairing = _pair_layers(old.spec, new.spec, inputs)
    _pair_outputs(old, new, pairing, result)
    compared = old.stored is not None and new.stored is not None
    if compared:
        result.weights = []
    old_layers = {layer.name: layer for layer in old.spec.layers}
    removed = [layer for layer in old.spec.layers if layer.name not in pairing.new_of]
    for layer in new.spec.layers:
        old_name = pairing.old_of.get(layer.name)
        if old_name is None:
            result.layers.append(LayerChange("added", layer.name, what=describe(layer)))
            result.added += 1
            continue
        before = old_layers[old_name]
        details = _config_changes(before, layer) + pairing.rewired(before, layer)
        weights = _weight_changes(before, layer, old, new) if compared else []
        if compared:
            result.weights.extend(weights)
        if details:
            result.layers.append(LayerChange("changed", layer.name, old_name, details=details))
        elif old_name != layer.name:
            result.layers.append(LayerChange("renamed", layer.name, old_name))
        if details or weights:
            result.changed += 1
        elif old_name != layer.name:
            result.renamed += 1
        else:
            result.unchanged += 1
    for layer in removed:
        result.layers.append(LayerChange("removed", layer.name, what=describe(layer)))
        result.removed += 1
    return result


def _pair_ports(which: str, old: list[Port], new: list[Port], result: Comparison):
    """Inputs by name, then the rest in order: first those alike (a rename), then any (a rename
    that changed too). Returns {old name: new name}."""
    pairs = _by_name_then_alike(old, new)
    _port_changes(which, old, new, pairs, result)
    return pairs


def _by_name_then_alike(old: list[Port], new: list[Port], pairs: dict | None = None):
    pairs = dict(pairs or {})
    new_names = {p.name for p in new}
    for port in old:
        if port.name in new_names and port.name not in pairs and port.name not in pairs.values():
            pairs[port.name] = port.name
    for alike in (True, False):
        left_new = [p for p in new if p.name not in pairs.values()]
        for port in [p for p in old if p.name not in pairs]:
            match = next(
                (
                    p
                    for p in left_new
                    if not alike or (p.shape, p.dtype) == (port.shape, port.dtype)
                ),
                None,
            )
            if match is not None:
                pairs[port.name] = match.name
                left_new.remove(match)
    return pairs


def _port_changes(which, old: list[Port], new: list[Port], pairs: dict, result: Comparison):
    """A paired port is changed by shape, dtype or position among the paired ones (callers
    pass inputs and read outputs by position)."""
    old_by = {p.name: p for p in old}
    old_of = {n: o for o, n in pairs.items()}
    old_order = [n for n in (p.name for p in old) if n in pairs]
    new_order = [p.name for p in new if p.name in pairs.values()]
    position = {name: i for i, name in enumerate(new_order)}
    for port in new:
        before = old_by[old_of[port.name]] if port.name in old_of else None
        if before is None:
            result.ports.append(PortChange(which, "added", port.name, details=(_port(port),)))
            continue
        details = []
        if before.shape != port.shape:
            details.append(f"shape {_shape(before.shape)} {ARROW} {_shape(port.shape)}")
        if before.dtype != port.dtype:
            details.append(f"dtype {before.dtype} {ARROW} {port.dtype}")
        was = old_order.index(before.name)
        if was != position[port.name]:
            details.append(f"position {was + 1} {ARROW} {position[port.name] + 1}")
        if details:
            result.ports.append(
                PortChange(which, "changed", port.name, before.name, tuple(details))
            )
        elif before.name != port.name:
            result.ports.append(PortChange(which, "renamed", port.name, before.name))
    for port in old:
        if port.name not in pairs:
            result.ports.append(PortChange(which, "removed", port.name, details=(_port(port),)))


def _pair_outputs(old: Side, new: Side, pairing: _Pairing, result: Comparison) -> None:
    """Outputs by name, then by producer (the same layer's result under another tensor name),
    then as inputs are."""
    pairs: dict[str, str] = {}
    new_names = {p.name for p in new.outputs}
    for port in old.outputs:
        if port.name in new_names:
            pairs[port.name] = port.name
    by_producer = {p.producer: p.name for p in new.outputs if p.name not in pairs.values()}
    for port in old.outputs:
        if port.name not in pairs:
            mapped = pairing.map_old(port.producer)
            match = by_producer.get(mapped) if mapped else None
            if match is not None and match not in pairs.values():
                pairs[port.name] = match
    pairs = _by_name_then_alike(old.outputs, new.outputs, pairs)
    _port_changes("output", old.outputs, new.outputs, pairs, result)


class _Wiring:
    """Who produces each tensor a layer reads: ("input", name), ("layer", name, output) or,
    for a tensor no layer computes, ("tensor", name)."""

    def __init__(self, spec: ModelSpec):
        self.of: dict[str, tuple] = {i.tensor: ("input", i.name) for i in spec.inputs}
        for layer in spec.layers:
            for index, tensor in enumerate(layer.outputs):
                self.of[tensor] = ("layer", layer.name, index)

    def producer(self, tensor: str) -> tuple:
        return self.of.get(tensor, ("tensor", tensor))

    def producers(self, layer: Layer) -> tuple:
        return tuple(self.producer(t) for t in layer.inputs)


class _Pairing:
    """Old layer name <-> new layer name, and the inputs' pairs: how an old producer is named
    in the new model."""

    def __init__(self, old: ModelSpec, new: ModelSpec, inputs: dict[str, str]):
        self.inputs = inputs
        self.old_wiring, self.new_wiring = _Wiring(old), _Wiring(new)
        self.new_of: dict[str, str] = {}  # old layer -> new layer
        self.old_of: dict[str, str] = {}

    def pair(self, old: str, new: str) -> None:
        self.new_of[old] = new
        self.old_of[new] = old

    def map_old(self, producer: tuple) -> tuple | None:
        """An old producer as the new model names it; None when it has no counterpart."""
        match producer:
            case ("input", name):
                return ("input", self.inputs[name]) if name in self.inputs else None
            case ("layer", name, index):
                return ("layer", self.new_of[name], index) if name in self.new_of else None
        return producer

    def map_new(self, producer: tuple) -> tuple | None:
        """A new producer as the old model named it; None when it has no counterpart."""
        match producer:
            case ("input", name):
                olds = [o for o, n in self.inputs.items() if n == name]
                return ("input", olds[0]) if olds else None
            case ("layer", name, index):
                return ("layer", self.old_of[name], index) if name in self.old_of else None
        return producer

    def rewired(self, old: Layer, new: Layer) -> tuple[str, ...]:
        """`inputs a → b` when the layer reads other layers than it did, unless the difference
        is a producer added or removed (its own line says so)."""
        before = self.old_wiring.producers(old)
        after = self.new_wiring.producers(new)
        mapped = [self.map_old(p) for p in before]
        if len(before) == len(after):
            differs = [
                i
                for i, (m, a) in enumerate(zip(mapped, after))
                if m != a and m is not None and self._paired_new(a)
            ]
            if not differs:
                return ()
        shown_before = ", ".join(_producer_name(p) for p in before)
        shown_after = ", ".join(_producer_name(p) for p in after)
        return (f"inputs {shown_before} {ARROW} {shown_after}",)

    def _paired_new(self, producer: tuple) -> bool:
        match producer:
            case ("input", name):
                return name in self.inputs.values()
            case ("layer", name, _):
                return name in self.old_of
        return True


def _producer_name(producer: tuple) -> str:
    match producer:
        case ("layer", name, index):
            return name if index == 0 else f"{name}[{index}]"
        case (_, name):
            return name
    return "?"


def _pair_layers(old: ModelSpec, new: ModelSpec, inputs: dict[str, str]) -> _Pairing:
    """By name when the class is the same, then by structure: an unpaired new layer takes the
    first unpaired old layer (in the old model's order) of the same label (kind, class,
    configuration) that reads what its own producers were in the old model. One pass in the
    new model's (dependency) order pairs a renamed chain link by link, in linear time."""
    pairing = _Pairing(old, new, inputs)
    old_by_name = {layer.name: layer for layer in old.layers}
    for layer in new.layers:
        before = old_by_name.get(layer.name)
        if before is not None and _family(before) == _family(layer):
            pairing.pair(before.name, layer.name)
    waiting: dict[tuple, list[Layer]] = {}
    for layer in old.layers:
        if layer.name not in pairing.new_of:
            key = (_label(layer), pairing.old_wiring.producers(layer))
            waiting.setdefault(key, []).append(layer)
    if not waiting:
        return pairing
    for layer in new.layers:
        if layer.name in pairing.old_of:
            continue
        wiring = tuple(pairing.map_new(p) for p in pairing.new_wiring.producers(layer))
        candidates = waiting.get((_label(layer), wiring)) if None not in wiring else None
        if candidates:
            pairing.pair(candidates.pop(0).name, layer.name)
    return pairing


def _family(layer: Layer) -> tuple:
    """What a layer is, configuration aside: a same-named layer of another family is another
    layer."""
    if layer.kind is Kind.LAYER:
        return (layer.kind, layer.cls)
    if layer.kind is Kind.TENSORFLOW:
        return (layer.kind, layer.tfop.op)
    return (layer.kind,)


def _label(layer: Layer) -> tuple:
    config = configuration(layer)
    return (_family(layer), tuple((k, _canonical(v)) for k, v in sorted(config.items())))


def configuration(layer: Layer) -> dict[str, Any]:
    """The layer's configuration by parameter name, as its constructor (or expression) takes
    it: positional arguments named, keyword arguments as given (defaults are filled in when
    two are compared)."""
    if layer.kind is Kind.OPS:
        return {"expression": Code(expression(layer.expr, _refs(layer)))}
    config: dict[str, Any] = {}
    if layer.kind is Kind.TENSORFLOW:
        config["operands"] = Code(", ".join(expression(a, _refs(layer)) for a in layer.args))
    else:
        names = POSITIONAL.get(layer.cls, ())
        for index, value in enumerate(layer.args):
            config[names[index] if index < len(names) else f"argument {index + 1}"] = value
    config.update(layer.kwargs)
    return config


def _refs(layer: Layer) -> list[str]:
    """How an expression calls the layer's inputs: x, or x0, x1, ..."""
    count = max(len(layer.inputs), 1)
    return ["x"] if count == 1 else [f"x{i}" for i in range(count)]


def _config_changes(old: Layer, new: Layer) -> tuple[str, ...]:
    before, after = configuration(old), configuration(new)
    defaults = DEFAULTS.get(new.cls, {}) if new.kind is Kind.LAYER else {}
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        a = before.get(key, defaults.get(key, NOT_GIVEN))
        b = after.get(key, defaults.get(key, NOT_GIVEN))
        if _canonical(a) == _canonical(b):
            continue
        if (key not in before or key not in after) and _spreads(defaults.get(key), a, b):
            continue  # a default 1 left out, (1, 1) written: the same to Keras
        changes.append(f"{key} {_value(a)} {ARROW} {_value(b)}")
    return tuple(changes)


def _spreads(default: Any, a: Any, b: Any) -> bool:
    """Whether one value is the number `default` and the other that number for every axis
    (Keras takes `strides=1` for `(1, 1)`)."""
    if not isinstance(default, (int, float)) or isinstance(default, bool):
        return False
    value = b if _canonical(a) == _canonical(default) else a
    return isinstance(value, (tuple, list)) and all(
        not isinstance(v, bool) and v == default for v in value
    )


def _canonical(value: Any) -> Any:
    """A value as Keras sees it, for comparing: 1 == 1.0 and (1, 1) == [1, 1], but True is
    not 1, NaN equals NaN, and an array is its dtype, shape and bytes."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((_canonical(k), _canonical(v)) for k, v in value.items()))
    return value


def _value(value: Any) -> str:
    if value is NOT_GIVEN or isinstance(value, Code):
        return str(value)
    if isinstance(value, str) and value.isprintable() and not set(value) & {'"', "\\"}:
        return f'"{value}"'  # as model.py has it (black's quotes)
    try:
        return literal(value)
    except TypeError:
        return repr(value)


def describe(layer: Layer) -> str:
    """The call that makes the layer: `Conv2D(16, (3, 3), padding='same')`,
    `keras.ops.add(x0, x1)`, `TFZeta(x0, x1)`."""
    if layer.kind is Kind.OPS:
        return expression(layer.expr, _refs(layer))
    config = configuration(layer)
    if layer.kind is Kind.TENSORFLOW:
        operands = config.pop("operands")
        parts = [operands] if operands else []
        parts += [f"{key}={_value(value)}" for key, value in config.items()]
        return f"TF{layer.tfop.op}({', '.join(parts)})"
    defaults = DEFAULTS.get(layer.cls, {})
    parts = [_value(a) for a in layer.args]
    parts += [
        f"{key}={_value(value)}"
        for key, value in layer.kwargs.items()
        if key not in defaults or _canonical(defaults[key]) != _canonical(value)
    ]
    return f"{layer.cls}({', '.join(parts)})"


def _weight_changes(old: Layer, new: Layer, old_side: Side, new_side: Side) -> list:
    """Each weight of a paired layer, computed on both sides and compared exactly."""
    before = {w.name: w for w in old.weights}
    after = {w.name: w for w in new.weights}
    changes = []
    for name, weight in after.items():
        if name not in before:
            changes.append(WeightChange(new.name, name, "added", new_shape=tuple(weight.shape)))
            continue
        a = np.asarray(evaluate(before[name].recipe, old_side.stored))
        b = np.asarray(evaluate(weight.recipe, new_side.stored))
        if a.shape != b.shape:
            changes.append(WeightChange(new.name, name, "reshaped", None, None, a.shape, b.shape))
            continue
        if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            if np.array_equal(a64, b64, equal_nan=True):
                continue
            max_abs, relative = _change(a64, b64)
            changes.append(WeightChange(new.name, name, "changed", max_abs, relative, a.shape))
        elif not np.array_equal(a, b):
            changes.append(WeightChange(new.name, name, "changed", None, None, a.shape))
    for name, weight in before.items():
        if name not in after:
            changes.append(WeightChange(new.name, name, "removed", old_shape=tuple(weight.shape)))
    return changes


def _change(old: np.ndarray, new: np.ndarray) -> tuple[float, float]:
    """(max |new - old|, ||new - old|| / ||old||): a value equal on both sides (NaN and NaN,
    inf and inf included) differs by 0, one that turned NaN or infinite by inf; an old weight
    that is zero, NaN or infinite somewhere changed by inf, relatively."""
    with np.errstate(invalid="ignore", over="ignore"):
        same = (old == new) | (np.isnan(old) & np.isnan(new))
        delta = np.where(same, 0.0, new - old)
    delta = np.nan_to_num(np.abs(delta), nan=np.inf)
    max_abs = float(delta.max()) if delta.size else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        norm, step = float(np.linalg.norm(old)), float(np.linalg.norm(delta))
    if step == 0:
        return max_abs, 0.0
    if math.isnan(norm) or math.isinf(norm) or math.isinf(step):
        return max_abs, math.inf
    return max_abs, step / norm if norm else math.inf


def _shape(shape: tuple | None) -> str:
    if shape is None:
        return "unknown"
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _port(port: Port) -> str:
    return f"{_shape(port.shape)} {port.dtype}"


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.3g}"


# -- rendering ---------------------------------------------------------------------------------


def render_text(result: Comparison) -> str:
    """One line per difference, then the counts; graph text made printable."""
    out = []
    for port in result.ports:
        out.append(f"{port.which} {port.change}: " + _change_text(port, "; ".join(port.details)))
    for layer in result.layers:
        out.append(f"layer {layer.change}: " + _change_text(layer, layer.what))
    for weight in result.weights or ():
        out.append(f"weight {_weight_change(weight)}")
    if result.equal:
        compared = ", layers or weights" if result.weights is not None else " or layers"
        out.append(f"no differences: the models are equal (inputs, outputs{compared})")
    if result.weights is None:
        out.append("weights not compared (--weights compares them)")
    out.append(result.counts())
    return "".join(printable(line) + "\n" for line in out)


def _change_text(item: PortChange | LayerChange, added_or_removed: str) -> str:
    """A port's or layer's change after its kind: the old name and the new, then what changed
    (a rename alone: the names only; added or removed: `added_or_removed`)."""
    if item.change == "renamed":
        return f"{item.old_name} {ARROW} {item.name}"
    if item.change == "changed":
        renamed = f"{item.old_name} {ARROW} " if item.old_name != item.name else ""
        return f"{renamed}{item.name}: " + "; ".join(item.details)
    return f"{item.name}: {added_or_removed}"


def _weight_change(weight: WeightChange) -> str:
    where = f"{weight.layer} {weight.weight}"
    if weight.change == "changed":
        if weight.max_abs is None:
            return f"changed: {where}: values differ"
        return (
            f"changed: {where}: max|Δ| {_number(weight.max_abs)}, "
            f"relative L2 {_number(weight.relative)}"
        )
    if weight.change == "reshaped":
        return (
            f"shape changed: {where}: {_shape(weight.old_shape)} {ARROW} {_shape(weight.new_shape)}"
        )
    shape = weight.new_shape if weight.change == "added" else weight.old_shape
    return f"{weight.change}: {where}: {_shape(shape)}"


def code(text: str, cell: bool = True) -> str:
    """Graph text as a Markdown code span: printable (errors.printable), in a table `cell`
    each `|` escaped (GitHub and markdown-it split cells on an unescaped pipe, even inside a
    code span, and unescape it there), fenced by one more backtick than the longest run inside,
    padded with a space when it starts or ends with a backtick (CommonMark strips one)."""
    text = printable(text)
    if cell:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(result: Comparison) -> str:
    """The report for a pull-request comment: a table of changes, a table of changed weights,
    the counts in bold."""
    title = f"{code(result.old, cell=False)} {ARROW} {code(result.new, cell=False)}"
    out = [f"### graph2py diff: {title}", ""]
    rows = []
    for port in result.ports:
        name = _renamed_md(port.old_name, port.name)
        rows.append((f"{port.which} {port.change}", name, _details_md(port.details)))
    for layer in result.layers:
        name = _renamed_md(layer.old_name, layer.name)
        details = code(layer.what) if layer.what else _details_md(layer.details)
        rows.append((f"layer {layer.change}", name, details))
    numeric = []
    for weight in result.weights or ():
        if weight.change == "changed":
            numeric.append(weight)
            continue
        shape = (
            f"{_shape(weight.old_shape)} {ARROW} {_shape(weight.new_shape)}"
            if weight.change == "reshaped"
            else _shape(weight.new_shape if weight.change == "added" else weight.old_shape)
        )
        what = "shape changed" if weight.change == "reshaped" else weight.change
        rows.append((f"weight {what}", f"{code(weight.layer)} {code(weight.weight)}", code(shape)))
    if rows:
        out += ["| Change | Name | Details |", "| --- | --- | --- |"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        out.append("")
    if numeric:
        out += ["| Layer | Weight | max\\|Δ\\| | Relative L2 |", "| --- | --- | ---: | ---: |"]
        for weight in numeric:
            out.append(
                f"| {code(weight.layer)} | {code(weight.weight)} | {_number(weight.max_abs)} | "
                f"{_number(weight.relative)} |"
            )
        out.append("")
    if result.equal:
        compared = ", layers or weights" if result.weights is not None else " or layers"
        out += [f"No differences: the models are equal (inputs, outputs{compared}).", ""]
    if result.weights is None:
        out += ["Weights not compared (`--weights` compares them).", ""]
    out.append(f"**{result.counts()}**")
    return "\n".join(out) + "\n"


def _renamed_md(old: str, new: str) -> str:
    return f"{code(old)} {ARROW} {code(new)}" if old and old != new else code(new)


def _details_md(details: tuple[str, ...]) -> str:
    return "<br>".join(code(d) for d in details)
