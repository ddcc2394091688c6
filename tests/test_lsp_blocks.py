"""The language server on a factored model.py (block functions, nested calls, loops).

Two parts: `codegen.lsp.blocks`, the static evaluator that maps each layer call inside a block
function to the concrete Keras layers it builds, tested on source strings; and the server,
driven over stdio as tests/test_lsp.py drives it, on tests/fixtures/blocks/model.py (written by
hand in the factored format, over resmlp.pbtxt) — hover on block calls and on layers inside
block functions, go to definition, and Check's diagnostic on the call that built a layer.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.lsp import render
from codegen.lsp.blocks import BlockCall, expand
from codegen.lsp.graphs import GraphInfo, analyze_graph
from codegen.lsp.model_file import layer_calls, parse_header
from test_lsp import CLIENTS, diagnostics, execute, hover_text, open_file, position_of

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "blocks"


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def instances(text: str) -> dict[str, list[str]]:
    """Name as written -> concrete names, for every computed-name layer call."""
    return {call.name: names for call, names in expand(source(text)).instances_of.items()}


def built_by(text: str) -> dict[str, list[str]]:
    """The line of each block call -> the names it builds."""
    lines = source(text).splitlines()
    found = expand(source(text)).built_by
    return {lines[call.start[0]].strip(): names for call, names in found.items()}


# -- the evaluator -------------------------------------------------------------------------------

NESTED = """
import keras


def conv_bn(x, filters, kernel_size=1, strides=1, *, index):
    x = keras.layers.Conv2D(filters, kernel_size, strides, name=f"conv2d_{index}")(x)
    return keras.layers.BatchNormalization(name=f"batch_normalization_{index}")(x)


def inverted_res_block(x, expand_filters, filters, strides=1, name="block_1"):
    x = keras.layers.Conv2D(expand_filters, 1, name=f"{name}_expand")(x)
    x = keras.layers.DepthwiseConv2D(3, strides, name=f"{name}_depthwise")(x)
    return keras.layers.Conv2D(filters, 1, name=f"{name}_project")(x)


def stack(x, name):
    x = inverted_res_block(x, 96, 24, strides=2, name=f"{name}_a")
    return inverted_res_block(x, 144, 24, 1, f"{name}_b")


def build_model() -> keras.Model:
    input_ = keras.Input(shape=(32, 32, 3), name="input")
    x = keras.layers.Conv2D(32, 3, name="Conv1")(input_)
    x = inverted_res_block(x, 96, 24)
    for i in range(4, 6):
        x = inverted_res_block(x, 192, 32, name=f"block_{i}")
    x = stack(x, "stack1")
    for j in range(2):
        x = conv_bn(x, 64, (1, 1), index=j + 12)
    x = conv_bn(x, 8, index=f"{7:03d}")
    return keras.Model(inputs=input_, outputs=x, name="net")
"""


def test_nested_blocks_loops_defaults_and_arguments():
    assert instances(NESTED) == {
        'f"conv2d_{index}"': ["conv2d_12", "conv2d_13", "conv2d_007"],
        'f"batch_normalization_{index}"': [
            "batch_normalization_12",
            "batch_normalization_13",
            "batch_normalization_007",
        ],
        # the default name, a loop variable, then through `stack` (keyword, then positional)
        'f"{name}_expand"': ["block_1_expand", "block_4_expand", "block_5_expand"]
        + ["stack1_a_expand", "stack1_b_expand"],
        'f"{name}_depthwise"': ["block_1_depthwise", "block_4_depthwise", "block_5_depthwise"]
        + ["stack1_a_depthwise", "stack1_b_depthwise"],
        'f"{name}_project"': ["block_1_project", "block_4_project", "block_5_project"]
        + ["stack1_a_project", "stack1_b_project"],
    }
    block = ["expand", "depthwise", "project"]
    assert built_by(NESTED) == {
        # inside `stack`: once per call of `stack`
        'x = inverted_res_block(x, 96, 24, strides=2, name=f"{name}_a")': [
            f"stack1_a_{l}" for l in block
        ],
        'return inverted_res_block(x, 144, 24, 1, f"{name}_b")': [f"stack1_b_{l}" for l in block],
        "x = inverted_res_block(x, 96, 24)": [f"block_1_{l}" for l in block],
        # a call in a loop builds every iteration's layers
        'x = inverted_res_block(x, 192, 32, name=f"block_{i}")': [
            f"block_{i}_{l}" for i in (4, 5) for l in block
        ],
        'x = stack(x, "stack1")': [f"stack1_{b}_{l}" for b in "ab" for l in block],
        "x = conv_bn(x, 64, (1, 1), index=j + 12)": ["conv2d_12", "batch_normalization_12"]
        + ["conv2d_13", "batch_normalization_13"],
        'x = conv_bn(x, 8, index=f"{7:03d}")': ["conv2d_007", "batch_normalization_007"],
    }


def test_each_layer_maps_to_its_layer_call_and_the_statement_that_built_it():
    text = source(NESTED)
    lines = text.splitlines()
    found = expand(text).instances
    # built through `stack`: the layer call in inverted_res_block, the statement in build_model
    instance = found["stack1_b_depthwise"]
    assert instance.function == "inverted_res_block"
    assert lines[instance.call.start[0]].strip().startswith("x = keras.layers.DepthwiseConv2D")
    assert instance.call.callee == "keras.layers.DepthwiseConv2D"
    assert instance.site.callee == "stack"
    assert lines[instance.site.start[0]].strip() == 'x = stack(x, "stack1")'
    # built in a loop: the call statement inside the loop
    site = found["block_5_project"].site
    assert lines[site.start[0]].strip() == 'x = inverted_res_block(x, 192, 32, name=f"block_{i}")'
    assert (site.start[1], site.end) == (8, (site.start[0], len(lines[site.start[0]])))
    # plain layers stay with model_file.layer_calls, exactly as in a flat file
    assert "Conv1" not in found and "Conv1" in layer_calls(text)
    assert not any(c.name == '"Conv1"' for c in expand(text).instances_of)


def test_the_innermost_block_or_layer_call_at_a_position():
    text = source(NESTED)
    lines = text.splitlines()
    blocks = expand(text)
    row = next(n for n, l in enumerate(lines) if "x = stack(x" in l)
    found = blocks.at(row, lines[row].index("stack("))
    assert isinstance(found, BlockCall) and found.callee == "stack"
    assert blocks.at(row, 2) is None  # the indentation before the statement
    row = next(n for n, l in enumerate(lines) if "_depthwise" in l)
    found = blocks.at(row, lines[row].index("name="))
    assert found.name == 'f"{name}_depthwise"' and blocks.function_of[found] == "inverted_res_block"


def test_a_flat_file_has_no_blocks():
    blocks = expand(source("""
            import keras


            def build_model() -> keras.Model:
                x = keras.Input(shape=(4,), name="x")
                y = keras.layers.Dense(3, name="dense")(x)
                return keras.Model(inputs=x, outputs=y, name="flat")
            """))
    assert not blocks.instances and not blocks.built_by and not blocks.instances_of


def test_hand_edits_leave_layers_unmapped_and_never_raise():
    broken = """
    import keras

    PREFIX = "top"


    def helper(i):
        return f"h{i}"


    def block(x, units, name, *rest, **options):
        x = keras.layers.Dense(units, name=f"{name}_dense")(x)
        x = keras.layers.Dense(units, name=helper(units))(x)  # a computed name: unknown
        x = keras.layers.Dense(units, name=name + "_sum")(x)  # concatenation: still known
        return keras.layers.Dense(units, name=f"{name}_{units!r}_{PREFIX}")(x)


    def recursive(x, name):
        x = keras.layers.Dense(1, name=f"{name}_r")(x)
        return recursive(x, name=f"{name}r")


    def strict(x, a, /, b, *, c):
        return keras.layers.Dense(a, name=f"s{a}{b}{c}")(x)


    def build_model() -> keras.Model:
        x = keras.Input(shape=(4,), name="x")
        x = block(x, 2, "ok")
        x = block(x, 2)  # a required argument missing
        x = block(*[x, 2, "star"])
        x = block(x, 2, "extra", 7, flag=True)  # *rest and **options take the extras
        x = block(x, units=3, name=make_name())  # an unknown name
        x = recursive(x, "rec")
        x = strict(x, 1, b=2, c=3)
        x = strict(x, a=1, b=2, c=3)  # a positional-only parameter by keyword
        for i in range(n):
            x = block(x, 2, f"n{i}")
        for i in range(1_000_000_000):
            x = block(x, 2, f"huge{i}")
        for i in [1, 2]:
            x = block(x, 2, f"list{i}")
        if x is not None:
            x = block(x, 4, name="branch")
        while False:
            x = block(x, 5, name=f"w{x}")
        name = "later"
        x = block(x, 6, name=f"{name}_{name[0]}")  # a subscript: unknown
        x = block(x, 6, name=name + "_known")
        return keras.Model(inputs=x, outputs=x, name="broken")
    """
    found = instances(broken)
    assert found["helper(units)"] == []
    assert found['f"{name}_dense"'] == [
        "ok_dense",
        "extra_dense",
        "branch_dense",
        "later_known_dense",
    ]
    assert found['name + "_sum"'] == ["ok_sum", "extra_sum", "branch_sum", "later_known_sum"]
    assert found['f"{name}_{units!r}_{PREFIX}"'] == [
        "ok_2_top",
        "extra_2_top",
        "branch_4_top",
        "later_known_6_top",
    ]
    assert found['f"{name}_r"'] == ["rec_r"]  # one level: the recursive call is not followed
    assert found['f"s{a}{b}{c}"'] == ["s123"]
    calls = built_by(broken)
    assert calls['x = block(x, 2, "ok")'] == ["ok_dense", "ok_sum", "ok_2_top"]
    assert calls["x = block(x, 2)  # a required argument missing"] == []
    assert calls['x = block(*[x, 2, "star"])'] == []
    assert calls['return recursive(x, name=f"{name}r")'] == []  # recorded, not expanded
    assert calls['x = recursive(x, "rec")'] == ["rec_r"]
    assert calls["x = strict(x, a=1, b=2, c=3)  # a positional-only parameter by keyword"] == []
    assert calls['x = block(x, 2, f"huge{i}")'] == []  # too long a loop: not expanded


def test_a_file_that_does_not_parse():
    assert expand("def build_model(:\n") is None


def test_an_expansion_too_large_stops_with_what_it_found():
    blocks = expand(source("""
            def block(x, name):
                return keras.layers.ReLU(name=f"{name}_relu")(x)


            def build_model():
                x = keras.Input(shape=(4,), name="x")
                for i in range(1000):
                    for j in range(1000):
                        x = block(x, name=f"b{i}_{j}")
            """))
    assert not blocks.complete
    assert "b0_0_relu" in blocks.instances and "b999_999_relu" not in blocks.instances


def test_long_lists_are_bounded():
    text = source("""
        def block(x, name):
            return keras.layers.ReLU(name=f"{name}_relu")(x)


        def build_model():
            x = keras.Input(shape=(4,), name="x")
            for i in range(50):
                x = block(x, name=f"b{i}")
        """)
    blocks = expand(text)
    info = GraphInfo(Path("net.pbtxt"), "0" * 64, {})  # no spec: names only
    [(call, names)] = blocks.built_by.items()
    hover = render.block_call_hover(info, call.callee, names, blocks)
    assert hover.count("\n- ") == render.MAX_LAYERS + 1 and "- **`b39_relu`**" in hover
    assert hover.endswith("- … and 10 more") and "b40_relu" not in hover
    [(call, names)] = blocks.instances_of.items()
    hover = render.instances_hover(info, call, "block", names)
    assert hover.count("\n- ") == render.MAX_INSTANCES + 1 and hover.endswith("- … and 30 more")


def test_the_fixture_graph_is_what_make_fixture_writes():
    sys.path.insert(0, str(FIXTURE))
    try:
        import make_fixture
    finally:
        sys.path.remove(str(FIXTURE))
    assert make_fixture.build() == (FIXTURE / "resmlp.pbtxt").read_text()


def test_the_fixture_builds_exactly_the_converters_layers():
    """model.py here is hand-written: its names, evaluated, must be those the converter gives
    resmlp.pbtxt (if the converter's naming changes, rewrite the fixture's names)."""
    text = (FIXTURE / "model.py").read_text()
    info = analyze_graph(FIXTURE / "resmlp.pbtxt", generated=True)
    plain = set(layer_calls(text)) - {"resmlp"}  # the model's own name
    assert plain | set(expand(text).instances) == {
        *(layer.name for layer in info.spec.layers),
        *(i.name for i in info.spec.inputs),
    }
    assert parse_header(text).sha256 == info.sha256


# -- the server ----------------------------------------------------------------------------------


# Appended to the loader the converter writes: whatever its layout, its `load_weights` is what
# `graph2py check` calls.
SHIFT_ONE_BIAS = """

_load_weights = load_weights


def load_weights(model, source):
    model = _load_weights(model, source)
    kernel, bias = model.get_layer("stage2_block1_dense2").get_weights()
    model.get_layer("stage2_block1_dense2").set_weights([kernel, bias + 0.5])
    return model
"""


@pytest.fixture(scope="session")
def blocks_template(tmp_path_factory) -> Path:
    """resmlp.pbtxt, and beside it resmlp/ with the hand-factored model.py and the loader the
    converter writes (the layer names are the same, so Check runs the factored model)."""
    root = tmp_path_factory.mktemp("lsp-blocks")
    shutil.copy(FIXTURE / "resmlp.pbtxt", root / "resmlp.pbtxt")
    write_atomically(root / "resmlp", convert(root / "resmlp.pbtxt")[1])
    shutil.copy(FIXTURE / "model.py", root / "resmlp" / "model.py")
    return root


@pytest.fixture
def factored(blocks_template, tmp_path) -> Path:
    return Path(shutil.copytree(blocks_template, tmp_path / "ws"))


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "codegen", "lsp"]),
    params=CLIENTS,
)
async def client(lsp_client: LanguageClient, request, factored: Path):
    lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)(lambda params: None)
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=from_fs_path(str(factored)),
            workspace_folders=[types.WorkspaceFolder(from_fs_path(str(factored)), "ws")],
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_hover_on_a_block_call_lists_its_layers(client: LanguageClient, factored: Path):
    model = factored / "resmlp" / "model.py"
    uri = open_file(client, model)
    text = await hover_text(client, uri, position_of(model, 'stage(x, 8, "stage1")'))
    assert text.startswith("**`stage()`** · block call · builds 8 layers of `resmlp.pbtxt`")
    assert (
        "- **`stage1_block2_dense1`** · `keras.layers.Dense` · Keras layer: "
        "`stage1/block2/dense1/MatMul`, `stage1/block2/dense1/BiasAdd`, "
        "`stage1/block2/dense1/Relu` → (?, 8)"
    ) in text
    assert "`stage1/block1/residual`" in text and "stage2" not in text
    # in a loop: the layers of every iteration
    text = await hover_text(client, uri, position_of(model, 'stage(x, name=f"stage{i}")', 3))
    assert "builds 16 layers" in text and "stage1" not in text
    assert "`stage2_block1_relu`" in text and "`stage3/block2/Relu`" in text
    # a block call inside a block function: over every call of the enclosing block
    text = await hover_text(client, uri, position_of(model, 'res_block(x, units, f"{name}'))
    assert "builds 12 layers" in text
    assert [f"stage{s}_block2_dense2" in text for s in (1, 2, 3)] == [True] * 3
    assert "block1" not in text
    # a plain layer: unchanged
    text = await hover_text(client, uri, position_of(model, 'name="stem"', 6))
    assert text.startswith("**`stem`** · `keras.layers.Dense` · Keras layer")
    assert "`MatMul` `stem/MatMul`" in text


@pytest.mark.asyncio
async def test_hover_on_a_layer_in_a_block_lists_its_instances(client, factored: Path):
    model = factored / "resmlp" / "model.py"
    uri = open_file(client, model)
    text = await hover_text(client, uri, position_of(model, 'name=f"{name}_dense1"', 6))
    assert text.startswith(
        '**`name=f"{name}_dense1"`** · `keras.layers.Dense` · Keras layer · in `res_block()`'
    )
    assert "6 instances in `resmlp.pbtxt`:" in text
    for stage in (1, 2, 3):
        for block in (1, 2):
            scope = f"stage{stage}/block{block}/dense1"
            assert (
                f"- **`stage{stage}_block{block}_dense1`**: `{scope}/MatMul`, "
                f"`{scope}/BiasAdd`, `{scope}/Relu` → (?, 8)"
            ) in text
    assert "dense2" not in text
    # anywhere on the call, through its application to the inputs
    text = await hover_text(client, uri, position_of(model, ")([x, y])", 3))
    assert "`stage3_block2`" in text and "`stage3/block2/residual`" in text


@pytest.mark.asyncio
async def test_tf_only_layer_in_a_block_gets_a_warning(client, factored: Path):
    model = factored / "resmlp" / "model.py"
    text = model.read_text().replace(
        "    # {name}/dense2/{MatMul, BiasAdd}\n", "    # {name}/dense2 graph2py: tf-only\n"
    )
    model.write_text(text)
    uri = open_file(client, model)
    found = await diagnostics(client, uri, lambda d: any(x.code == "tf-only" for x in d))
    [warning] = [x for x in found if x.code == "tf-only"]
    assert warning.range.start.line == position_of(model, 'name=f"{name}_dense2"').line
    assert warning.message == (
        "name=f\"{name}_dense2\" in res_block() (builds 'stage1_block1_dense2', "
        "'stage1_block2_dense2', 'stage2_block1_dense2' and 3 more) runs TensorFlow "
        "(keras.layers.Dense): not portable to other Keras backends"
    )


@pytest.mark.asyncio
async def test_definition_of_a_block_call_goes_to_its_first_node(client, factored: Path):
    model = factored / "resmlp" / "model.py"
    uri = open_file(client, model)
    result = await client.text_document_definition_async(
        types.DefinitionParams(
            types.TextDocumentIdentifier(uri), position_of(model, 'stage(x, name=f"stage{i}")')
        )
    )
    graph = factored / "resmlp.pbtxt"
    assert result.uri == from_fs_path(str(graph))
    line = graph.read_text().splitlines()[result.range.start.line]
    assert line.strip() == 'name: "stage2/block1/dense1/MatMul"'
    await diagnostics(client, uri, lambda d: not d)  # the header's sha256 is the graph's


@pytest.mark.asyncio
@pytest.mark.parametrize("client", ["neovim"], indirect=True)
async def test_check_lands_on_the_call_that_built_the_layer(client, factored: Path):
    model, loader = factored / "resmlp" / "model.py", factored / "resmlp" / "load_weights.py"
    loader.write_text(loader.read_text() + SHIFT_ONE_BIAS)
    uri = open_file(client, model)
    result = await execute(client, "graph2py.check", uri)
    assert result["ok"] is False and result["first_divergence"][0] == "stage2_block1_dense2"
    found = await diagnostics(client, uri, lambda d: any(x.code == "parity" for x in d))
    [parity] = [x for x in found if x.code == "parity" and "first diverging" in x.message]
    assert parity.range.start.line == position_of(model, 'stage(x, name=f"stage{i}")').line
    assert "'stage2_block1_dense2'" in parity.message and "call of stage()" in parity.message
    [related] = parity.related_information
    assert related.location.range.start.line == position_of(model, 'name=f"{name}_dense2"').line
