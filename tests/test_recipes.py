"""Recipes: the loader's numpy source (loader.recipe_source) and the interpreter (recipes.evaluate)
compute the same value, and a folded constant's recipe rebuilds the folded value."""

from __future__ import annotations

import numpy as np
import pytest

from codegen import quantization
from codegen.loader import recipe_source, weights_context
from codegen.graph import Graph, Node
from codegen.passes.fold import Constants
from codegen.recipes import (
    AsType,
    Concat,
    Dequantize,
    FakeQuant,
    Index,
    Operand,
    Quantize,
    Read,
    Reshape,
    Slice,
    Stack,
    Take,
    Transpose,
    Ufunc,
    Value,
    Variable,
    bind,
    evaluate,
    quantizes,
    shape_of,
    simplify,
)
from codegen.spec import Kind, Layer, ModelSpec, Weight

STORED = {
    "w": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    "b": np.linspace(-1, 1, 8).astype(np.float32),
    "codes": np.arange(0, 240, 10, dtype=np.uint8).reshape(2, 3, 4),
    "signed": np.arange(-120, 120, 10, dtype=np.int8).reshape(2, 3, 4),
    "wide": np.arange(-(2**31), 2**31 - 1, 2**27, dtype=np.int64).astype(np.int32)[:24],
    "lows": np.float32([-0.5, -1.25, -0.75, -2.0]),
    "highs": np.float32([0.5, 1.0, 2.25, 0.125]),
}
SCALED = Ufunc("multiply", (Read("w"), 0.05))

RECIPES = [
    Read("w"),
    Variable("b"),
    Value([[1, 2], [3, 4]], "int64"),
    Reshape(Read("w"), (6, 4)),
    Transpose(Read("w"), (2, 0, 1)),
    AsType(Variable("b"), "float64"),
    Slice(Read("w"), 1, 3, 1),
    Slice(Read("w"), 0, 2, -1),
    Concat(0, (Variable("b"), Slice(Variable("b"), 2, 4, 0))),
    Ufunc("add", (Slice(Variable("b"), 0, 4, 0), 1.0)),
    Ufunc("multiply", (Reshape(Read("w"), (24,)), Reshape(Read("w"), (24,)))),
    Index(Read("w"), (1, slice(None, None, -1), None, Ellipsis)),
    Stack(-1, (Read("w"), Ufunc("negative", (Read("w"),)))),
    Take(Read("w"), Value([2, 0, 2], "int32"), 1),
    Dequantize(Read("codes"), -0.7, 1.3, "MIN_FIRST"),
    Dequantize(Read("codes"), -0.7, 1.3),
    Dequantize(Read("signed"), -0.7, 1.3, "SCALED", narrow_range=True),
    Dequantize(Read("signed"), Read("lows"), Read("highs"), "MIN_COMBINED", axis=2),
    Dequantize(Variable("wide"), -3.0, 2.5, "MIN_COMBINED"),
    Quantize(SCALED, -0.6, 0.9, "uint8"),
    Quantize(SCALED, -0.6, 0.9, "int16", "MIN_FIRST"),
    Quantize(SCALED, Read("lows"), Read("highs"), "int8", "SCALED", "HALF_TO_EVEN", True, 2),
    Dequantize(Quantize(SCALED, -0.6, 0.9, "int8", "SCALED"), -0.6, 0.9, "SCALED"),
    FakeQuant(SCALED, "FakeQuantWithMinMaxArgs", -0.5, 0.8, 4),
    FakeQuant(SCALED, "FakeQuantWithMinMaxVars", -0.3, 0.6, 8, True),
    FakeQuant(SCALED, "FakeQuantWithMinMaxVarsPerChannel", Read("lows"), Read("highs"), 5),
]


def loader_namespace(reader: str) -> dict:
    """What a generated loader's weight lines see: numpy, the reader, and the quantization
    functions it embeds."""
    namespace = {"np": np, reader: STORED}
    exec(quantization.loader_source(), namespace)
    return namespace


@pytest.mark.parametrize("recipe", RECIPES, ids=repr)
def test_source_and_evaluate_agree(recipe):
    """What load_weights.py computes is what evaluate computes, value and dtype."""
    expected = evaluate(recipe, STORED)
    for reader in ("graph", "checkpoint"):
        got = eval(recipe_source(recipe, reader), loader_namespace(reader))
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_walks():
    recipe = Concat(0, (Ufunc("add", (Variable("k"), 0.5)), Read("a/read"), Read("b")))
    assert recipe.first_source() == "k"
    assert recipe.graph_reads() == ["a/read", "b"]
    assert recipe.reads_graph() and not Reshape(Variable("k"), (1,)).reads_graph()
    assert Value([1.0], "float32").first_source() is None


def test_bind_replaces_operands_in_order():
    template = Concat(1, (Slice(Operand("x:0"), 0, 2, 1), Ufunc("add", (Operand("y:0"), 1.0))))
    seen = []
    bound = bind(template, lambda ref: seen.append(ref) or Read(ref.split(":")[0]))
    assert seen == ["x:0", "y:0"]
    assert bound == Concat(1, (Slice(Read("x"), 0, 2, 1), Ufunc("add", (Read("y"), 1.0))))
    assert bind(template, lambda ref: None if ref == "y:0" else Read(ref)) is None


def _const(name, value):
    value = np.asarray(value)
    return Node(name, "Const", [], {"value": value, "dtype": value.dtype.name})


def test_folded_recipe_rebuilds_the_folded_value():
    """Fold's recipe for a constant computed from stored ones evaluates, from those stored
    constants, to the value fold computed."""
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [
        _const("w", w),
        _const("shape", np.array([4, 3], np.int32)),
        _const("perm", np.array([1, 0], np.int32)),
        _const("half", np.float32(0.5)),
        Node("r", "Reshape", ["w:0", "shape:0"], {}),
        Node("t", "Transpose", ["r:0", "perm:0"], {}),
        Node("c", "Cast", ["t:0"], {"DstT": "float64"}),
        Node("m", "Mul", ["c:0", "half:0"], {}),
    ]
    consts = Constants(Graph(nodes))
    recipe = consts.recipe("m:0")
    assert recipe == Ufunc(
        "multiply", (AsType(Transpose(Reshape(Read("w"), (4, 3)), (1, 0)), "float64"), 0.5)
    )
    value = evaluate(recipe, {"w": w})
    assert value.dtype == consts.value("m:0").dtype
    assert np.array_equal(value, consts.value("m:0"))


def test_quantization_steps_walk_and_bind():
    recipe = Dequantize(Read("q"), Read("lo"), 1.5, "MIN_FIRST")
    assert recipe.graph_reads() == ["q", "lo"] and recipe.first_source() == "q"
    assert quantizes(Reshape(recipe, (4,))) and not quantizes(Reshape(Read("q"), (4,)))
    template = FakeQuant(Operand("w:0"), "FakeQuantWithMinMaxVars", Operand("lo:0"), 0.5)
    bound = bind(template, lambda ref: Read(ref.split(":")[0]))
    assert bound == FakeQuant(Read("w"), "FakeQuantWithMinMaxVars", Read("lo"), 0.5)
    assert bind(template, lambda ref: None) is None


def test_quantization_source_reads_as_tensorflow_calls():
    """Attributes at TensorFlow's defaults are left out; the rest are named (black turns the
    quotes double afterwards)."""
    assert (
        recipe_source(Dequantize(Read("q"), -0.5, 1.0, "MIN_FIRST"))
        == "dequantize(graph['q'], -0.5, 1.0, mode='MIN_FIRST')"
    )
    assert (
        recipe_source(
            FakeQuant(Variable("k"), "FakeQuantWithMinMaxVars", -0.25, 0.5, 8, True), "checkpoint"
        )
        == "fake_quant_with_min_max_vars(checkpoint['k'], -0.25, 0.5, narrow_range=True)"
    )
    assert (
        recipe_source(Quantize(Read("w"), -1.0, 1.0, "int8", "SCALED", axis=3))
        == "quantize(graph['w'], -1.0, 1.0, dtype='int8', mode='SCALED', axis=3)"
    )


def _attrs(**attrs):
    return attrs


def test_folded_quantized_weights_keep_their_quantization_as_steps():
    """Dequantize, QuantizeV2 (its codes; its output range written out) and FakeQuant of
    stored constants fold to TensorFlow's values, and their recipes rebuild those values from
    the stored constants with the loader's numpy."""
    codes = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    w = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    nodes = [
        _const("codes", codes),
        _const("w", w),
        _const("lo", np.float32(-0.7)),
        _const("hi", np.float32(1.3)),
        _const("los", np.float32([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6])),
        _const("his", np.float32([0.6, 0.5, 0.4, 0.3, 0.2, 0.1])),
        Node(
            "dq",
            "Dequantize",
            ["codes:0", "lo:0", "hi:0"],
            _attrs(mode="MIN_FIRST", dtype="float32"),
        ),
        Node(
            "q", "QuantizeV2", ["w:0", "los:0", "his:0"], _attrs(T="qint8", mode="SCALED", axis=1)
        ),
        Node("back", "Dequantize", ["q:0", "q:1", "q:2"], _attrs(mode="SCALED", axis=1)),
        Node("fq", "FakeQuantWithMinMaxVars", ["w:0", "lo:0", "hi:0"], _attrs(num_bits=5)),
        Node("pc", "FakeQuantWithMinMaxVarsPerChannel", ["w:0", "los:0", "his:0"], {}),
        Node("args", "FakeQuantWithMinMaxArgs", ["w:0"], _attrs(min=-0.5, max=0.25)),
    ]
    consts = Constants(Graph(nodes))
    stored = {
        "codes": codes,
        "w": w,
        "los": nodes[4].attrs["value"],
        "his": nodes[5].attrs["value"],
    }
    assert consts.recipe("dq:0") == Dequantize(Read("codes"), -0.7, 1.3, "MIN_FIRST")
    assert consts.value("q:1").shape == (6,)
    back = consts.recipe("back:0")
    assert isinstance(back, Dequantize) and isinstance(back.inner, Quantize)
    assert isinstance(back.low, Value) and back.axis == 1
    for name in ("dq", "back", "fq", "pc", "args"):
        recipe = consts.recipe(f"{name}:0")
        value = eval(recipe_source(recipe), {**loader_namespace("graph"), "graph": stored})
        assert value.dtype == np.float32, name
        assert np.array_equal(value, consts.value(f"{name}:0")), name
        assert np.array_equal(evaluate(recipe, stored), value), name


def test_the_loader_embeds_the_quantization_functions_only_when_a_weight_needs_them():
    def spec(recipe):
        layer = Layer(
            kind=Kind.LAYER,
            cls="Dense",
            name="fc",
            inputs=[],
            outputs=[],
            nodes=[],
            ops=[],
            weights=[Weight("kernel", recipe, (4, 6))],
        )
        return ModelSpec(
            name="m",
            scope="",
            source="m.pb",
            sha256="",
            inputs=[],
            layers=[layer],
            outputs=[],
            source_kind="graphdef",
        )

    assert (
        "def dequantize(" in weights_context(spec(Dequantize(Read("q"), -1.0, 1.0)))["quantization"]
    )
    assert weights_context(spec(Read("w")))["quantization"] == ""


def test_computed_constants_of_stored_ones_have_recipes():
    """Slices, joins and gathers of stored constants are computed by the loader (a constant
    too large to write out is never an error); shape arithmetic made of values alone stays a
    folded value."""
    w = np.arange(40, dtype=np.float32).reshape(5, 8)
    nodes = [
        _const("w", w),
        _const("b", np.float32([[-1.0] * 8])),
        _const("axis", np.int32(0)),
        _const("begin", np.int32([1, 0])),
        _const("end", np.int32([4, 0])),
        _const("strides", np.int32([1, 2])),
        _const("rows", np.int32([2, 0, 2])),
        _const("two", np.int32(2)),
        _const("three", np.int32(3)),
        Node("cat", "ConcatV2", ["w:0", "b:0", "axis:0"], _attrs(N=2)),
        Node("sl", "StridedSlice", ["cat:0", "begin:0", "end:0", "strides:0"], _attrs(end_mask=2)),
        Node("st", "Pack", ["sl:0", "sl:0"], _attrs(axis=1, N=2)),
        Node("g", "GatherV2", ["st:0", "rows:0", "axis:0"], {}),
        Node("dims", "Pack", ["two:0", "three:0"], _attrs(N=2)),
    ]
    consts = Constants(Graph(nodes))
    recipe = consts.recipe("g:0")
    assert recipe == Take(
        Stack(1, (Index(Concat(0, (Read("w"), Read("b"))), (slice(1, 4), slice(0, None, 2))),) * 2),
        Value([2, 0, 2], "int32"),
        0,
    )
    stored = {"w": w, "b": nodes[1].attrs["value"], "rows": nodes[6].attrs["value"]}
    value = eval(recipe_source(recipe), {"np": np, "graph": stored})
    assert np.array_equal(value, consts.value("g:0")) and value.dtype == np.float32
    assert consts.value("dims:0").tolist() == [2, 3] and consts.recipe("dims:0") is None


def test_checkpoint_ranges_are_read_from_the_checkpoint():
    """A QAT net restored from a checkpoint: the weight and its range are variables, so the
    loader reads the range the checkpoint holds, not the value seen at conversion."""
    from codegen.passes.fold import CHECKPOINT_KEY_ATTR

    def variable(name, value):
        node = _const(name, value)
        node.attrs[CHECKPOINT_KEY_ATTR] = name
        return node

    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    nodes = [
        variable("conv/weights", w),
        variable("conv/weights_quant/min", np.float32(-0.4)),
        _const("max", np.float32(0.5)),
        Node(
            "fq",
            "FakeQuantWithMinMaxVars",
            ["conv/weights:0", "conv/weights_quant/min:0", "max:0"],
            _attrs(narrow_range=True),
        ),
    ]
    recipe = Constants(Graph(nodes)).recipe("fq:0")
    assert recipe == FakeQuant(
        Variable("conv/weights"),
        "FakeQuantWithMinMaxVars",
        Variable("conv/weights_quant/min"),
        0.5,
        narrow_range=True,
    )


def test_a_batch_norm_folded_into_a_kernel_is_spelled_out():
    """contrib.quantize folded BatchNorm into the kernel before quantizing it:
    weights * gamma * rsqrt(variance + eps); the loader computes it as numpy does."""
    w = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    variance = np.float32([0.5, 1.5, 2.0, 0.25])
    nodes = [
        _const("w", w),
        _const("variance", variance),
        _const("eps", np.float32(0.001)),
        Node("add", "AddV2", ["variance:0", "eps:0"], {}),
        Node("rsqrt", "Rsqrt", ["add:0"], {}),
        Node("fold", "Mul", ["w:0", "rsqrt:0"], {}),
    ]
    consts = Constants(Graph(nodes))
    recipe = consts.recipe("fold:0")
    assert recipe is not None
    value = eval(recipe_source(recipe), {"np": np, "graph": {"w": w, "variance": variance}})
    assert value.dtype == np.float32 and np.array_equal(value, consts.value("fold:0"))


def test_constants_no_recipe_rebuilds_are_computed_in_the_model():
    """A large constant the loader cannot compute (Exp of a stored one: no recipe step) is
    computed by the model from its operands; one with a recipe, or small enough to write
    out, is not."""
    from codegen.analyze import computed_in_model

    big = np.linspace(-1, 1, 5000, dtype=np.float32)
    nodes = [
        Node("x", "Placeholder", [], {"dtype": "float32"}),
        _const("w", big),
        _const("small", np.float32([1.0, 2.0])),
        Node("exp", "Exp", ["w:0"], {}),
        Node("neg", "Neg", ["w:0"], {}),
        Node("exp_small", "Exp", ["small:0"], {}),
        Node("a", "Mul", ["x:0", "exp:0"], {}),
        Node("b", "Mul", ["a:0", "neg:0"], {}),
        Node("c", "Mul", ["b:0", "exp_small:0"], {}),
    ]
    graph = Graph(nodes)
    assert computed_in_model(graph, Constants(graph)) == {"exp"}


# what a recipe reads, with its shape and dtype known (as passes/fold.py records them)
W = Read("w", shape=(2, 3, 4), dtype="float32")
B = Read("b", shape=(8,), dtype="float32")
K = Variable("b", shape=(8,), dtype="float32")
SIMPLIFIED = [
    # a BatchNorm statistic reshaped to 1x1x1xC by the graph and back to C for Keras
    (Reshape(Reshape(B, (1, 1, 1, 8)), (8,)), B),
    (Reshape(Reshape(Reshape(W, (24,)), (4, 6)), (6, 4)), Reshape(W, (6, 4))),
    (Reshape(Reshape(Read("w"), (24,)), (4, 6)), Reshape(Read("w"), (4, 6))),  # shape unknown
    (Reshape(W, (2, 3, 4)), W),
    (Reshape(Read("w"), (2, 3, 4)), Reshape(Read("w"), (2, 3, 4))),  # may be a reshape
    (Transpose(Transpose(W, (2, 0, 1)), (1, 2, 0)), W),
    (Transpose(Transpose(W, (2, 0, 1)), (0, 2, 1)), Transpose(W, (2, 1, 0))),
    (Transpose(Transpose(Read("w"), (1, 0, 2)), (1, 0, 2)), Read("w")),  # no shape needed
    (Transpose(W, (0, 1, 2)), W),
    (Transpose(W, (-3, -2, -1)), W),  # numpy's axes from the end: the identity too
    (Transpose(Read("w"), (-3, -2, -1)), Transpose(Read("w"), (-3, -2, -1))),  # rank unknown
    # moving only axes of size 1 is a reshape, which the reshape around it absorbs
    (Reshape(Transpose(Reshape(B, (1, 8, 1)), (2, 0, 1)), (8,)), B),
    (Transpose(Reshape(B, (8, 1)), (1, 0)), Reshape(B, (1, 8))),
    (AsType(W, "float32"), W),
    (AsType(K, "float64"), AsType(K, "float64")),
    (AsType(AsType(K, "float64"), "float64"), AsType(K, "float64")),
    (AsType(Read("w"), "float32"), AsType(Read("w"), "float32")),  # dtype unknown
    (Slice(W, 0, 3, 1), W),
    (Slice(W, 0, 99, -1), W),
    (Slice(W, 1, 3, 1), Slice(W, 1, 3, 1)),
    (Concat(0, (Reshape(Reshape(K, (1, 8)), (8,)),)), K),
    # inside other steps, and around the quantization steps' operands
    (
        Ufunc("add", (Reshape(Reshape(B, (8, 1)), (8,)), 1.0)),
        Ufunc("add", (B, 1.0)),
    ),
    (
        Dequantize(
            Reshape(Read("codes"), (2, 3, 4)), Reshape(Read("lows", shape=(4,)), (4,)), 1.3, axis=2
        ),
        Dequantize(Reshape(Read("codes"), (2, 3, 4)), Read("lows"), 1.3, axis=2),
    ),
    (
        Take(Transpose(Transpose(W, (1, 0, 2)), (1, 0, 2)), Value([2, 0], "int32"), 2),
        Take(W, Value([2, 0], "int32"), 2),
    ),
    (Stack(0, (AsType(W, "float32"), W)), Stack(0, (W, W))),
]


@pytest.mark.parametrize("recipe, expected", SIMPLIFIED, ids=repr)
def test_simplify(recipe, expected):
    """The steps that change nothing are gone, and the value is the same (dtype too)."""
    simplified = simplify(recipe)
    assert simplified == expected
    rng = np.random.default_rng(0)
    stored = {
        "w": rng.normal(size=(2, 3, 4)).astype(np.float32),
        "b": rng.normal(size=8).astype(np.float32),
        "codes": rng.integers(0, 255, 24).astype(np.uint8).reshape(2, 3, 4),
        "lows": -rng.uniform(0.1, 1, 4).astype(np.float32),
    }
    before, after = evaluate(recipe, stored), evaluate(simplified, stored)
    assert before.dtype == after.dtype and np.array_equal(before, after)


@pytest.mark.parametrize("recipe", RECIPES, ids=repr)
def test_simplify_keeps_every_value(recipe):
    before, after = evaluate(recipe, STORED), evaluate(simplify(recipe), STORED)
    assert before.dtype == after.dtype and np.array_equal(before, after)


def test_shape_of():
    assert shape_of(Transpose(Slice(W, 1, 3, 1), (2, 0, 1))) == (4, 2, 2)
    assert shape_of(Reshape(Read("w"), (6, -1))) is None
    assert shape_of(Transpose(W, (0, 1))) is None  # not a permutation of its axes
    assert shape_of(Value([[1, 2, 3]], "int8")) == (1, 3)


def test_folded_reads_know_their_shape_and_dtype():
    w = np.arange(12, dtype=np.float16).reshape(3, 4)
    read = Constants(Graph([_const("w", w)])).recipe("w:0")
    assert read == Read("w") and (read.shape, read.dtype) == ((3, 4), "float16")


def _weights_only(layers) -> ModelSpec:
    """A spec of a frozen graph holding just these layers: what its loader is rendered from."""
    return ModelSpec(
        name="m",
        scope="",
        source="m.pb",
        sha256="",
        inputs=[],
        layers=layers,
        outputs=[],
        source_kind="graphdef",
    )


def _loader_module(layers):
    """The load_weights.py graph2py writes for these layers, run as a module."""
    import types

    from codegen.convert import format_loader
    from codegen.emit import render

    spec = _weights_only(layers)
    source = format_loader(render(spec, ("load_weights.py",))["load_weights.py"])
    module = types.ModuleType("load_weights")
    module.__file__ = "load_weights.py"  # as imported from its file (SOURCE)
    exec(compile(source, "load_weights.py", "exec"), module.__dict__)
    return source, module


def _read_weights(module, stored: dict[str, np.ndarray]) -> dict:
    """The loader's read_weights, its source a dict of stored values by full name (the
    reader it imports replaced): (value, full names read) by (layer, weight)."""
    module.graph_constants = lambda source: stored.__getitem__
    return module.read_weights("graph.pb")


def _dense(name, *weights):
    return Layer(
        kind=Kind.LAYER,
        cls="Dense",
        name=name,
        inputs=[],
        outputs=[],
        nodes=[],
        ops=[],
        weights=[Weight(w, recipe, (4,)) for w, recipe in weights],
    )


LONG = "a_layer_name_long_enough_that_its_row_of_full_names_needs_more_than_a_line"
ODD_NAMES = [
    (LONG, "kernel", [f"model/{LONG}_1/weights"]),
    ("fc", "kernel", ["model/fc/weights"]),
    ("fc10", "kernel", ["model/fc_10/w"]),  # no abbreviation: fc10 is not fc_10
    ("odd'\"\\\n", "kernel", ["model/odd'\"\\\n_1/k"]),  # quotes, a backslash, a newline
    ("tilde", "kernel", ["model/~tilde/k"]),  # starts as an abbreviation would
    ("two", "kernel", ["model/two/a", "model/b"]),
]


def test_the_loader_reads_every_name_as_written_however_odd():
    """Each row of WEIGHTS resolves to the names its recipe reads (the loop's own reading of a
    row), whatever those names hold; rows too long for one line abbreviate the
    layer's name, and never where a name only looks like an abbreviation."""
    layers = []
    for layer, weight, names in ODD_NAMES:
        reads = [Read(n, shape=(4,), dtype="float32") for n in names]
        recipe = reads[0] if len(reads) == 1 else Ufunc("add", tuple(reads))
        layers.append(_dense(layer, (weight, recipe)))
    source, module = _loader_module(layers)
    assert module.SCOPE == "model/" and f'"{LONG}/kernel": "~_1/weights",' in source
    assert '"fc/kernel": "~/weights",' in source and '"fc10/kernel": "fc_10/w",' in source
    assert '"tilde/kernel": (("~tilde/k",), None),' in source
    stored = {name: np.zeros(4, np.float32) for *_, names in ODD_NAMES for name in names}
    read = _read_weights(module, stored)
    for layer, weight, names in ODD_NAMES:
        assert read[layer, weight][1] == names


def test_the_loader_writes_no_recipe_for_a_read_reshaped_across_axes_of_size_one():
    """A bias stored as 1x1x1xC (and reshaped to C by the graph's own Reshape nodes) is a
    plain row: the loop reshapes it; a reshape that moves numbers between axes is spelled."""
    stored = Read("b", shape=(1, 1, 1, 4), dtype="float32")
    flat = Read("k", shape=(2, 2), dtype="float32")
    layers = [
        _dense("bias", ("bias", Reshape(Reshape(stored, (1, 4)), (4,)))),
        _dense("kernel", ("kernel", Reshape(flat, (4,)))),
    ]
    source, module = _loader_module(layers)
    assert module.WEIGHTS["bias/bias"] == "b"
    value, names = _read_weights(module, {"b": np.zeros((1, 1, 1, 4)), "k": np.eye(2)})[
        "kernel", "kernel"
    ]
    assert names == ["k"] and value.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_the_loaders_table_is_formatted_as_black_formats_the_whole_file():
    """convert.format_loader formats the table's rows apart from the rest (plain rows only
    requoted, the others a batch at a time): the file is black's all the same."""
    from codegen.convert import format_loader
    from codegen.emit import render
    from codegen.postprocess import format_source

    w = Read("w" * 40, shape=(8, 4), dtype="float32")
    layers = [
        _dense("a", ("kernel", Transpose(w, (1, 0))), ("bias", Read("b", shape=(4,)))),
        _dense("b" * 70, ("kernel", Read("b" * 70 + "_1/k", shape=(4,)))),
        _dense("c'\"", ("kernel", Ufunc("add", (Slice(w, 0, 4, 0), Read("c\\'")))), ("bias", w)),
        _dense("d", ("kernel", Value([[0.5] * 30] * 3, "float32"))),
    ]
    spec = _weights_only(layers)
    rendered = render(spec, ("load_weights.py",))["load_weights.py"]
    assert format_loader(rendered) == format_source(rendered)
