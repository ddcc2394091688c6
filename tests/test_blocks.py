"""Block functions and loops (codegen/blocks.py), without TensorFlow: the golden case
`blocks_repeated` shows the form; these check what it must never do."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from codegen.blocks import BlockCall, factor
from codegen.convert import convert
from codegen.options import Options
from codegen.spec import Input, Layer, ModelSpec

CASE = Path(__file__).parent / "cases" / "blocks_repeated.pbtxt"


def _model(path: Path, options: Options = Options()) -> str:
    return convert(path, options, files=("model.py",))[1]["model.py"]


def _layer_names(source: str) -> list[str]:
    """Every layer name the code builds, block calls expanded (f-strings over `name` and `i`)."""
    tree = ast.parse(source)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def names_in(function: ast.FunctionDef, env: dict) -> list[str]:
        found = []
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            callee = node.func.id if isinstance(node.func, ast.Name) else None
            if callee in functions and callee != function.name:
                value = keywords.get("name") or keywords.get("index")
                loops = [env]
                for parent in ast.walk(function):
                    if isinstance(parent, ast.For) and node in ast.walk(parent):
                        start, stop = (a.value for a in parent.iter.args)
                        loops = [{**env, "i": i} for i in range(start, stop)]
                for scope in loops:
                    inner = {"name": eval(compile(ast.Expression(value), "", "eval"), {}, scope)}
                    found += names_in(functions[callee], inner)
            elif "name" in keywords and not callee:
                found.append(eval(compile(ast.Expression(keywords["name"]), "", "eval"), {}, env))
        return found

    return names_in(functions["build_model"], {})


def test_factored_and_flat_name_the_same_layers():
    factored, flat = _model(CASE), _model(CASE, Options(flat=True))
    assert "def block(" in factored and "for i in range(2, 5):" in factored
    assert re.findall(r"^def (\w+)", flat, re.M) == ["build_model"]
    assert sorted(_layer_names(factored)) == sorted(_layer_names(flat))
    assert len(_layer_names(flat)) == len(set(_layer_names(flat))) > 20


def test_the_output_is_the_same_every_run():
    assert _model(CASE) == _model(CASE)


def test_names_that_need_escaping_stay_literals(tmp_path):
    """A scope holding a quote, brace or backslash never becomes f-string text: those blocks
    stay flat, written as escaped literals, and the file compiles."""
    text = CASE.read_text(encoding="utf-8")
    for payload in ('b\\"{x}', "b\\\\N"):  # pbtxt escapes: the names hold b"{x} and b\\N
        hostile = tmp_path / "hostile.pbtxt"
        hostile.write_text(text.replace('"block', f'"{payload}'), encoding="utf-8")
        source = _model(hostile)
        compile(source, "model.py", "exec")
        for template in re.findall(r'name=f"([^"]*)"', source):
            assert re.fullmatch(r"[A-Za-z0-9_.\-/: {}]*", template), template


def test_a_window_across_two_blocks_is_no_block():
    """Names are the alignment: every layer of a block function is `<part><suffix>` with one
    part per call, so no function mixes the end of one block with the start of the next."""
    blocks = _model(CASE).split("def build_model")[0]
    for template in re.findall(r'name=f"([^"]*)"', blocks):
        assert template.startswith("{name}"), template


def test_an_input_named_x_is_never_reassigned(tmp_path):
    """The main line reuses `x`; an input the graph names `x` keeps its variable, which
    keras.Model(inputs=...) reads at the end."""
    hostile = tmp_path / "x_input.pbtxt"
    hostile.write_text(CASE.read_text(encoding="utf-8").replace('"images"', '"x"'), "utf-8")
    source = _model(hostile)
    build = next(
        f
        for f in ast.parse(source).body
        if isinstance(f, ast.FunctionDef) and f.name == "build_model"
    )
    assigned = [
        t.id
        for node in ast.walk(build)
        if isinstance(node, (ast.Assign, ast.For))
        for t in ast.walk(node.targets[0] if isinstance(node, ast.Assign) else node.target)
        if isinstance(t, ast.Name)
    ]
    model = build.body[-1].value
    inputs = next(k.value.id for k in model.keywords if k.arg == "inputs")
    assert inputs == "x" and assigned.count("x") == 1


def _nasnet_like(cells: int = 6) -> ModelSpec:
    """Cells in NASNet's way: each reads the cell before (`x`) and the one before that (`p`),
    adjusted in one of two ways; Keras counter names (`activation_N`) among names that end in
    the cell's number; in the converter's order, the cell's own branch before the adjustment."""
    layers, counter = [], iter(range(1, 1000))

    def layer(name, cls, inputs, **kwargs):
        merge = cls in ("Add", "Concatenate")
        layers.append(
            Layer(
                name,
                list(inputs),
                [f"{name}:0"],
                [name],
                ["Op"],
                cls=cls,
                kwargs=kwargs,
                list_input=merge,
            )
        )
        return f"{name}:0"

    def relu(x):
        return layer(f"activation_{next(counter)}", "ReLU", [x])

    def unit(x, name):  # the separable-conv unit, named by words
        x = layer(f"separable_conv_1_normal_{name}", "SeparableConv2D", [relu(x)], filters=8)
        x = layer(f"separable_conv_1_bn_normal_{name}", "BatchNormalization", [x])
        x = layer(f"separable_conv_2_normal_{name}", "SeparableConv2D", [relu(x)], filters=8)
        return layer(f"separable_conv_2_bn_normal_{name}", "BatchNormalization", [x])

    p = layer("stem_conv1", "Conv2D", ["input:0"], filters=8)
    x = layer("stem_bn1", "BatchNormalization", [p])
    for i in range(cells):
        h = layer(f"normal_conv_1_{i}", "Conv2D", [relu(x)], filters=8)
        h = layer(f"normal_bn_1_{i}", "BatchNormalization", [h])
        left = unit(h, f"left1_{i}")
        if i % 3 == 0:  # the input halved
            q = layer(f"adjust_relu_1_{i}", "ReLU", [p])
            q = layer(f"adjust_avg_pool_1_{i}", "AveragePooling2D", [q], strides=2)
            q = layer(f"adjust_conv_1_{i}", "Conv2D", [q], filters=8)
        else:  # the input projected
            q = layer(f"adjust_conv_projection_{i}", "Conv2D", [relu(p)], filters=8)
        q = layer(f"adjust_bn_{i}", "BatchNormalization", [q])
        right = unit(q, f"right1_{i}")
        add_1 = layer(f"normal_add_1_{i}", "Add", [left, right])
        left3 = layer(f"normal_left3_{i}", "AveragePooling2D", [h], padding="same")
        add_3 = layer(f"normal_add_3_{i}", "Add", [left3, q])
        p, x = x, layer(f"normal_concat_{i}", "Concatenate", [q, add_1, add_3])
    inputs = [Input("input:0", "input", (8, 8, 3))]
    return ModelSpec("m", "m.pb", "", inputs, layers, [x])


def test_cells_are_one_function_whatever_their_adjustment():
    """NASNet's cells (issue 14): the part of every cell after its adjustment is one numbered
    function, whichever of the two adjustments the cell starts with; the separable-conv unit
    is a function of its own, which it calls; every layer is made once, after its inputs."""
    spec = _nasnet_like()
    program = factor(spec)
    by_name = {f.name: f for f in program.functions}
    cell = [f for f in program.functions if f.name_param == "index" and f.instances == 6]
    assert len(cell) == 1, [(f.name, f.instances) for f in program.functions]
    called = {i.function for i in cell[0].body if isinstance(i, BlockCall)}
    assert any(by_name[c].name_param == "name" and by_name[c].instances >= 12 for c in called)
    own = {i.name.prefix for i in cell[0].body if isinstance(i, Layer)}
    assert {"normal_conv_1_", "normal_bn_1_", "normal_concat_"} <= own  # the whole cell

    def made(items) -> int:  # layers, calls expanded
        return sum(made(by_name[i.function].body) if isinstance(i, BlockCall) else 1 for i in items)

    assert made(program.body) == len(spec.layers)
    defined = {"input:0"}
    for item in program.body:
        assert set(item.inputs) <= defined, item
        defined |= set(item.outputs)
