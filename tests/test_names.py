"""Names and keras.ops expressions as a reader meets them: the scopes function calls add name
no layer (codegen/names.py), and keras.ops results read once are written inside their reader
(codegen/nesting.py). Spec and names in, spec and names out; no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from codegen.emit import expression
from codegen.graph import Node
from codegen.names import ScopeNamer, name_path
from codegen.nesting import nest
from codegen.patterns.registry import Matcher
from codegen.recipes import Variable
from codegen.spec import Call, Item, Kind, Lambda, Layer, ModelSpec, Ref, Weight


def test_call_scopes_name_nothing():
    assert name_path("model/feature/StatefulPartitionedCall/PartitionedCall_1/Log1p") == [
        "model",
        "feature",
        "Log1p",
    ]
    assert name_path("Func/StatefulPartitionedCall/input/_0") == ["input", "_0"]
    # a node's own name is kept, even a call's
    assert name_path("model/PartitionedCall") == ["model", "PartitionedCall"]


def test_layer_names_from_inlined_bodies_drop_the_call_scopes():
    """A Keras 2 model frozen through its SavedModel signature: every node sits under the
    signature's call, the custom layer's nodes under its own call and a tf.function's."""
    nodes = [
        "StatefulPartitionedCall/model/feature_preprocess/StatefulPartitionedCall/strided_slice",
        "StatefulPartitionedCall/model/feature_preprocess/StatefulPartitionedCall/"
        "PartitionedCall/Log1p",
        "StatefulPartitionedCall/model/feature_preprocess/StatefulPartitionedCall/sub",
        "StatefulPartitionedCall/model/hidden/MatMul",
        "StatefulPartitionedCall/model/hidden/BiasAdd",
    ]
    namer = ScopeNamer(nodes)
    assert namer.model_name() == "model"
    assert namer.graph_scope == "StatefulPartitionedCall/model"
    assert {namer.layer_name([n]) for n in nodes[:3]} == {"feature_preprocess"}
    assert namer.layer_name(nodes[3:]) == "hidden"


def test_uniquified_keras_scopes_survive_call_scopes():
    """Keras 3 exported and frozen: `model_1/layer_1/...` under the signature's call."""
    nodes = [
        "StatefulPartitionedCall/tabular_1/feature_preprocess_1/strided_slice",
        "StatefulPartitionedCall/tabular_1/feature_preprocess_1/Log1p",
        "StatefulPartitionedCall/tabular_1/hidden_1/MatMul",
        "StatefulPartitionedCall/tabular_1/output_1/Softmax",
    ]
    namer = ScopeNamer(nodes)
    assert namer.uniquified and namer.model_name() == "tabular"
    assert namer.layer_name(nodes[:2]) == "feature_preprocess"
    assert namer.layer_name(nodes[2:3]) == "hidden"


def test_tf1_variables_name_their_layer_and_tf2_object_paths_do_not():
    """A TF1 checkpoint key is the variable's scope (`fc1/weights`); a TF2 key is the path of
    attributes to it (`layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE`)."""
    nodes = [Node("model/hidden/MatMul", "MatMul", []), Node("model/hidden/BiasAdd", "BiasAdd", [])]
    namer = ScopeNamer([n.name for n in nodes] + ["model/out/Softmax"])
    m = Matcher(None, None, {}, namer, set())
    tf1 = Weight("kernel", Variable("fc1/weights"), (4, 3))
    tf2 = Weight(
        "kernel", Variable("layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"), (4, 3)
    )
    assert m.layer_name(nodes, [tf1]) == "fc1"
    assert m.layer_name(nodes, [tf2]) == "hidden"


def _ops(name: str, inputs: list[str], output: str, expr, nodes=None) -> Layer:
    return Layer(
        name=name,
        inputs=inputs,
        outputs=[output],
        nodes=nodes or [name],
        ops=[name.capitalize()],
        kind=Kind.OPS,
        expr=expr,
    )


def _constant(name: str, anchor: str) -> Layer:
    return Layer(
        name=name,
        inputs=[anchor],
        outputs=[f"{name}:0"],
        nodes=[name],
        ops=["Const"],
        cls="Constant",
    )


def _source(layer: Layer) -> str:
    return expression(layer.expr, [t.split(":")[0] for t in layer.inputs])


def test_a_result_read_once_is_written_inside_its_reader():
    layers = [
        _ops("slice", ["x:0"], "slice:0", Item(Ref(0), (slice(None), slice(None, 18)))),
        _ops("log1p", ["slice:0"], "log1p:0", Call("log1p", (Ref(0),))),
        _constant("mean", "log1p:0"),
        _ops("sub", ["log1p:0", "mean:0"], "sub:0", Call("subtract", (Ref(0), Ref(1)))),
        _ops("neg", ["sub:0"], "neg:0", Call("negative", (Ref(0),))),
    ]
    before = ModelSpec("m", "m.pb", "", [], list(layers), ["neg:0"]).report()
    out = nest(layers, ["neg:0"])
    assert [l.name for l in out] == ["mean", "sub", "neg"]
    assert ModelSpec("m", "m.pb", "", [], out, ["neg:0"]).report() == before
    constant, sub, neg = out
    assert _source(sub) == "keras.ops.subtract(keras.ops.log1p(x[:, :18]), mean)"
    assert sub.inputs == ["x:0", "mean:0"]
    assert sub.nodes == ["slice", "log1p", "sub"]
    assert sub.ops == ["Slice", "Log1p", "Sub"]
    # the Constant no longer waits for the folded result: it is placed by the model input
    assert constant.inputs == ["x:0"]
    # a fourth level would be too deep to read at a glance
    assert _source(neg) == "keras.ops.negative(sub)"


def test_what_is_not_folded():
    twice = Call("multiply", (Ref(0), Ref(0)))
    loop = Call("while_loop", (Lambda(("i",), Ref(0)), Lambda(("i",), Ref(0)), Ref(0)))
    layers = [
        _ops("a", ["x:0"], "a:0", Call("abs", (Ref(0),))),
        _ops("square", ["a:0"], "square:0", twice),  # reads `a` twice
        _ops("b", ["x:0"], "b:0", Call("exp", (Ref(0),))),  # a model output
        _ops("c", ["b:0"], "c:0", Call("log", (Ref(0),))),
        _ops("d", ["x:0"], "d:0", Call("sin", (Ref(0),))),  # read by a loop
        _ops("loop", ["d:0"], "loop:0", loop),
        _ops("e", ["x:0"], "e:0", Call("cos", (Ref(0),))),  # read by a keras.layers layer
        Layer(
            name="dense",
            inputs=["e:0"],
            outputs=["dense:0"],
            nodes=["dense"],
            ops=["M"],
            cls="Dense",
        ),
        _ops("f", ["x:0"], "f:0", Call("tan", (Ref(0),))),  # read by two layers
        _ops("g", ["f:0"], "g:0", Call("sinh", (Ref(0),))),
        _ops("h", ["f:0"], "h:0", Call("cosh", (Ref(0),))),
    ]
    out = nest(layers, ["b:0", "c:0", "square:0", "loop:0", "dense:0", "g:0", "h:0"])
    assert [l.name for l in out] == [l.name for l in layers]


def test_layers_out_of_order():
    """Patterns may give a reader before what it reads (analyze.py orders the layers after)."""
    layers = [
        _ops("neg", ["abs:0"], "neg:0", Call("negative", (Ref(0),))),
        _ops("abs", ["sin:0"], "abs:0", Call("abs", (Ref(0),))),
        _ops("sin", ["x:0"], "sin:0", Call("sin", (Ref(0),))),
    ]
    (out,) = nest(layers, ["neg:0"])
    assert _source(out) == "keras.ops.negative(keras.ops.abs(keras.ops.sin(x)))"
    assert out.inputs == ["x:0"] and out.nodes == ["sin", "abs", "neg"]


def test_inputs_are_renumbered_in_reading_order():
    layers = [
        _ops("scaled", ["y:0", "x:0"], "scaled:0", Call("multiply", (Ref(1), Ref(0)))),
        _ops("sum", ["z:0", "scaled:0", "x:0"], "sum:0", Call("add", (Ref(1), Ref(2)))),
    ]
    (out,) = nest(layers, ["sum:0"])
    assert out.inputs == ["x:0", "y:0", "z:0"]
    assert _source(out) == "keras.ops.add(keras.ops.multiply(x, y), x)"


def test_a_long_expression_is_not_folded():
    big = Call("convert_to_tensor", ([0.123456789] * 12,))
    layers = [
        _ops("sub", ["x:0"], "sub:0", Call("subtract", (Ref(0), big))),
        _ops("abs", ["sub:0"], "abs:0", Call("abs", (Ref(0),))),
    ]
    assert [l.name for l in nest(layers, ["abs:0"])] == ["sub", "abs"]


# -- real exports (TensorFlow) ----------------------------------------------------------------


def _identifiers(source: str) -> tuple[set[str], set[str]]:
    """(every name model.py assigns, every layer name it gives)."""
    import ast

    names, layers = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.keyword) and node.arg == "name":
            if isinstance(node.value, ast.Constant):
                layers.add(node.value.value)
    return names, layers


def test_golden_outputs_name_no_call_scope_and_nothing_long():
    """Done means (issue 14): no identifier longer than 40 characters, none from a call scope."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [
        *(root / "tests" / "cases").glob("*.model.py"),
        *root.glob("generated/*/model.py"),
    ]:
        names, layers = _identifiers(path.read_text(encoding="utf-8"))
        assert not [n for n in names | layers if "partitioned" in n.lower()], path.name
        assert max(map(len, names), default=0) <= 40, path.name


@pytest.fixture(scope="module")
def custom_layer_export(tmp_path_factory):
    """A Keras 2 model with a custom layer whose call is a tf.function calling another, saved
    as a SavedModel and, as users freeze one, its signature frozen with
    convert_variables_to_constants_v2 (which inlines the calls, keeping their scopes)."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    @tf.function
    def compress(x):
        return tf.math.log1p(tf.abs(x))

    class FeaturePreprocess(keras.layers.Layer):
        def build(self, shape):
            self.mean = self.add_weight("mean", (17,), initializer="random_normal")
            self.std = self.add_weight("std", (17,), initializer="random_normal")

        @tf.function
        def call(self, x):
            numeric = (compress(x[:, :17]) - self.mean) / (tf.abs(self.std) + 1e-3)
            return tf.concat([numeric, tf.tanh(x[:, 17:] * 0.5)], axis=-1)

    tf.random.set_seed(3)
    x = keras.Input((24,), name="features")
    h = FeaturePreprocess(name="feature_preprocess")(x)
    h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
    model = keras.Model(x, keras.layers.Dense(3, name="logits")(h), name="tabular_classifier")
    root = tmp_path_factory.mktemp("custom_layer")
    tf.saved_model.save(model, str(root / "saved"))
    loaded = tf.saved_model.load(str(root / "saved"))  # alive while its variables are read
    frozen = convert_variables_to_constants_v2(loaded.signatures["serving_default"])
    frozen = frozen.graph.as_graph_def()
    (root / "frozen.pb").write_bytes(frozen.SerializeToString(deterministic=True))
    return root, model


@pytest.mark.parametrize("source", ["saved", "frozen.pb"])
def test_an_exported_custom_layer_reads_without_call_scopes(custom_layer_export, source, tmp_path):
    from codegen.cli import write_atomically
    from codegen.convert import convert
    from codegen.verify import import_generated, max_error, seeded_inputs

    root, original = custom_layer_export
    spec, files = convert(root / source)
    names, layers = _identifiers(files["model.py"])
    assert not [n for n in names | layers if "partitioned" in n.lower()]
    assert {"hidden", "logits"} <= layers
    # a captured variable is named after its layer, not `unknown_0` or `layer_with_weights-0`
    assert not [n for n in layers if n.startswith(("unknown", "layer_with_weights", "variables"))]
    assert [n for n in layers if n.startswith("feature_preprocess_")]
    assert max(map(len, names)) <= 40
    assert "keras.ops.log1p(keras.ops.abs(" in files["model.py"]
    write_atomically(tmp_path, files)
    model_module, loader = import_generated(tmp_path)
    model = loader.load_weights(model_module.build_model(), str(root / source))
    x = seeded_inputs([(24,)], ["float32"], batch=3, seed=1)[0]
    error, bound = max_error(np.asarray(original(x)), np.asarray(model(x)))
    assert error <= bound


def test_a_long_chain_folds_in_threes_and_a_wide_reader_stays():
    """3,000 unary ops one after the other: a call three deep per statement; a concatenation of
    10,000 results folds nothing into itself (nor costs 10,000 × 10,000 steps deciding so)."""
    chain = [_ops("s0", ["x:0"], "s0:0", Call("sin", (Ref(0),)))]
    for i in range(1, 3000):
        chain.append(_ops(f"s{i}", [f"s{i - 1}:0"], f"s{i}:0", Call("sin", (Ref(0),))))
    out = nest(chain, ["s2999:0"])
    assert len(out) == 1000
    assert _source(out[-1]) == "keras.ops.sin(keras.ops.sin(keras.ops.sin(s2996)))"
    parts = [_ops(f"p{i}", ["x:0"], f"p{i}:0", Call("cos", (Ref(0),))) for i in range(10_000)]
    wide = _ops(
        "cat", [p.outputs[0] for p in parts], "cat:0", Call("stack", ([*map(Ref, range(10_000))],))
    )
    assert len(nest([*parts, wide], ["cat:0"])) == 10_001
