"""Model spec -> the context of `load_weights.py`: the weight table and the code it embeds.

The loader is a table, one row per Keras weight, read by one short loop (templates/
load_weights.py.j2):

    SCOPE = "mobilenetv2_1.00_224_1/"
    WEIGHTS = {
        "Conv1/kernel": "~_1/convolution/ReadVariableOp/resource",
        "logits/kernel": ("logits/weights", lambda x: np.transpose(x, (1, 0))),
    }

A row's key is the Keras variable's path, LAYER/WEIGHT (Keras forbids '/' in a layer name).
Its value is the name of the node (or checkpoint key) that holds the weight, after SCOPE (the
prefix all the names share), or a pair: that name, or a tuple of names, and the recipe, a
function of their values (None only for one name written as a tuple, see below). A weight that
is its node's value, reshaped at most across axes of size 1 (the loop does that, against the
Keras variable's shape), has no recipe. Where names would make rows too long for one line, a
single name that goes on from the layer's name (LAYER/..., LAYER_1/...) has "~" for it; a name
that only starts with "~" is written as a tuple, which the loop never abbreviates.

Recipes are simplified first (recipes.simplify), so the loader spells only steps that change
the numbers. Every name and value reaches the loader through `literal` (Python's repr).
"""

from __future__ import annotations

import os

from . import quantization
from .literals import index_source, literal
from .names import comment_text, docstring_text
from .recipes import (
    FAKE_QUANT,
    AsType,
    Concat,
    Dequantize,
    FakeQuant,
    Index,
    Quantize,
    Read,
    Recipe,
    Reshape,
    Slice,
    Stack,
    Step,
    Take,
    Transpose,
    Ufunc,
    Value,
    Variable,
    quantizes,
    shape_of,
    simplify,
)
from .spec import ModelSpec

LINE_LENGTH = 88  # black's default, which postprocess formats generated code with
LAYER = "~"  # at the start of a row's single name: the layer's name (the template's loop)


def recipe_source(recipe: Recipe, reader: str = "graph", names: dict | None = None) -> str:
    """Numpy source that rebuilds a weight from the graph's constants or the checkpoint's
    variables (`reader`, the loader's name for either; or, for a stored name in `names`, the
    variable holding its value); recipes.evaluate computes the same."""

    def source(step) -> str:
        return recipe_source(step, reader, names)

    match recipe:
        case Read(node, stored):
            return _read(stored or node, reader, names)
        case Variable(key):
            return _read(key, reader, names)
        case Reshape(inner, shape):
            return f"np.reshape({source(inner)}, {literal(shape)})"
        case Transpose(inner, perm):
            return f"np.transpose({source(inner)}, {literal(perm)})"
        case AsType(inner, dtype):
            return f"{source(inner)}.astype({literal(dtype)})"
        case Value(values, dtype):
            return f"np.array({literal(values)}, {literal(dtype)})"
        case Slice(inner, start, stop, axis):
            lead = "..., " if axis < 0 else ":, " * axis
            return f"{source(inner)}[{lead}{literal(start)}:{literal(stop)}]"
        case Concat(axis, parts):
            sources = ", ".join(source(p) for p in parts)
            return f"np.concatenate([{sources}], axis={literal(axis)})"
        case Ufunc(name, args):
            sources = (source(a) if isinstance(a, Step) else literal(a) for a in args)
            return f"np.{name}({', '.join(sources)})"
        case Index(inner, index):
            return f"{source(inner)}[{index_source(index)}]"
        case Stack(axis, parts):
            sources = ", ".join(source(p) for p in parts)
            return f"np.stack([{sources}], axis={literal(axis)})"
        case Take(inner, indices, axis):
            return f"np.take({source(inner)}, {source(indices)}, axis={literal(axis)})"
        case Dequantize(inner, low, high, mode, axis, narrow_range):
            options = {"mode": (mode, "MIN_COMBINED"), "axis": (axis, -1)}
            options["narrow_range"] = (narrow_range, False)
            return _quantization_call("dequantize", (inner, low, high), options, source)
        case Quantize(inner, low, high, dtype, mode, round_mode, narrow_range, axis, ensure):
            options = {
                "dtype": (dtype, None),
                "mode": (mode, "MIN_COMBINED"),
                "round_mode": (round_mode, "HALF_AWAY_FROM_ZERO"),
                "narrow_range": (narrow_range, False),
                "axis": (axis, -1),
                "ensure_minimum_range": (ensure, 0.01),
            }
            return _quantization_call("quantize", (inner, low, high), options, source)
        case FakeQuant(inner, op, low, high, num_bits, narrow_range):
            options = {"num_bits": (num_bits, 8), "narrow_range": (narrow_range, False)}
            return _quantization_call(FAKE_QUANT[op], (inner, low, high), options, source)
    raise ValueError(f"no loader source for the recipe step {recipe!r}")


def _read(key: str, reader: str, names: dict | None) -> str:
    return names[key] if names and key in names else f"{reader}[{literal(key)}]"


def _quantization_call(fn: str, args: tuple, options: dict, source) -> str:
    """A call of one of codegen/quantization.py's functions (embedded in the loader): the
    operands, then the attributes that differ from TensorFlow's defaults, by keyword."""
    parts = [source(a) if isinstance(a, Step) else literal(a) for a in args]
    parts += [
        f"{key}={literal(value)}" for key, (value, default) in options.items() if value != default
    ]
    return f"{fn}({', '.join(parts)})"


def stored_names(recipe: Recipe) -> list[str]:
    """What the recipe reads from the graph file or the checkpoint, each name once, in order."""
    names = []
    for leaf in recipe.leaves():
        match leaf:
            case Read(node, stored):
                names.append(stored or node)
            case Variable(key):
                names.append(key)
    return list(dict.fromkeys(names))


def needs_no_recipe(recipe: Recipe, shape: tuple[int, ...]) -> bool:
    """Whether the weight is a stored value as it is, or reshaped only in axes of size 1 (the
    loader's loop reshapes such a value to the Keras variable's shape)."""
    if isinstance(recipe, Reshape) and tuple(recipe.shape) == tuple(shape):
        stored = shape_of(recipe.inner)
        recipe = (
            recipe.inner if stored is not None and _squeezed(stored) == _squeezed(shape) else recipe
        )
    return isinstance(recipe, (Read, Variable))


def _squeezed(shape) -> list[int]:
    return [d for d in shape if d != 1]


def weight_table(spec: ModelSpec) -> tuple[str, list[str], bool]:
    """(SCOPE, the rows of WEIGHTS as source lines, whether a row writes LAYER for its layer's
    name): see the module's docstring."""
    entries = []  # (layer, weight, stored names, recipe or None)
    for layer in spec.layers:
        for w in layer.weights:
            recipe = simplify(w.recipe)
            names = stored_names(recipe)
            entries.append(
                (layer.name, w.name, names, None if needs_no_recipe(recipe, w.shape) else recipe)
            )
    every = [name for *_, names, _ in entries for name in names]
    scope = os.path.commonprefix(every) if every else ""
    scope = scope[: scope.rfind("/") + 1]

    def row(layer, weight, names, recipe, abbreviate):
        key = literal(f"{layer}/{weight}")
        relative = [name[len(scope) :] for name in names]
        one = relative[0] if len(relative) == 1 else None
        if one is not None and abbreviate and _under(one, layer):
            nodes = literal(LAYER + one[len(layer) :])
        elif one is not None and not one.startswith(LAYER):
            nodes = literal(one)
        else:  # several names, none, or one the loop would take for an abbreviation
            nodes = literal(tuple(relative))
            if recipe is None:
                return f"{key}: ({nodes}, None),"
        if recipe is None:
            return f"{key}: {nodes},"
        params = ["x"] if len(names) == 1 else [f"x{i}" for i in range(len(names))]
        body = recipe_source(recipe, names=dict(zip(names, params)))
        return f"{key}: ({nodes}, lambda {', '.join(params)}: {body}),"

    rows = [row(*entry, abbreviate=False) for entry in entries]
    # a row with a recipe takes lines of its own however its names are written
    plain = [r for r, entry in zip(rows, entries) if entry[-1] is None]
    if not any(len(r) + 4 > LINE_LENGTH for r in plain):
        return scope, rows, False
    abbreviated = [row(*entry, abbreviate=True) for entry in entries]
    return scope, abbreviated, abbreviated != rows


def _under(name: str, layer: str) -> bool:
    """Whether a node's name continues with the layer's: LAYER/..., LAYER_1/... (not LAYER10)."""
    return name.startswith(layer) and name[len(layer) : len(layer) + 1] in ("/", "_")


def weights_context(spec: ModelSpec) -> dict:
    """A model converted from a checkpoint or SavedModel (`spec.source_kind`, from the
    source format) gets a loader that reads the checkpoint: its recipes hold `Variable` steps and
    no `Read` of graph nodes."""
    from .errors import UnsupportedError

    kind = spec.source_kind
    checkpoint = kind != "graphdef"
    for layer in spec.layers:
        for w in layer.weights:
            if checkpoint and w.recipe.reads_graph():
                raise UnsupportedError(
                    f"layer {layer.name!r} weight {w.name!r} is a large constant of the graph, "
                    "not a variable of the checkpoint: convert a frozen GraphDef instead"
                )
    scope, rows, abbreviated = weight_table(spec)
    return {
        "spec": spec,
        "scope": literal(scope),
        "rows": rows,
        "abbreviated": abbreviated,
        "source": comment_text(spec.source),
        "source_doc": docstring_text(spec.source),
        # load_weights.py's default source, relative to its own directory (header.py)
        "default_source": literal(spec.weights_source or spec.source),
        "checkpoint": checkpoint,
        # what load_weights reads: the source, or for a GraphDef + --checkpoint the prefix
        "weights_source_doc": docstring_text(spec.weights_source or spec.source),
        "source_kind_doc": docstring_text(_SOURCE_ARGUMENT.get(kind, "")),
        "source_help": literal(_SOURCE_HELP.get(kind, "the source") + " (default: %(default)s)"),
        # TensorFlow's quantization arithmetic, for weights dequantized or fake-quantized here
        "quantization": (
            quantization.loader_source()
            if any(quantizes(w.recipe) for layer in spec.layers for w in layer.weights)
            else ""
        ),
    }


_SOURCE_ARGUMENT = {
    "graphdef": "the frozen graph file (.pb or .pbtxt)",
    "savedmodel": "the SavedModel directory (the checkpoint in its variables/ is read)",
    "metagraph": "the .meta file or the checkpoint prefix beside it",
    "checkpoint": "the checkpoint prefix (PREFIX.index and PREFIX.data-*)",
}
# the script's help for its source argument (the docstring of load_weights says more)
_SOURCE_HELP = {
    "graphdef": "the graph",
    "savedmodel": "the SavedModel directory",
    "metagraph": "the .meta file or checkpoint prefix",
    "checkpoint": "the checkpoint prefix",
}
