"""`graph2py lsp` end to end: the server runs as a subprocess, as an editor starts it, and is
driven by pytest-lsp's client with the capabilities VS Code and Neovim announce."""

from __future__ import annotations

import ast
import asyncio
import shutil
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from google.protobuf import text_format
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codegen.cli import write_atomically
from codegen.convert import convert
from codegen.load import read_graphdef

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lenet.pb"
CLIENTS = ["visual-studio-code", "neovim"]
BIAS_LINE = '"conv2/bias": "conv2/biases",'
CORRUPTED_BIAS_LINE = '"conv2/bias": ("conv2/biases", lambda x: x + 0.5),'
DIGAMMA = """node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "shape" value { shape { dim { size: -1 } dim { size: 4 } } } } }
node { name: "r" op: "Relu" input: "x" }
node {
  name: "d"
  op: "VendorGamma"
  input: "r"
}
"""

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """A workspace built once: lenet.pb and its text copy, each converted beside itself."""
    root = tmp_path_factory.mktemp("lsp-template")
    shutil.copy(EXAMPLE, root / "lenet.pb")
    (root / "lenettxt.pbtxt").write_text(text_format.MessageToString(read_graphdef(EXAMPLE)))
    for graph, folder in (("lenet.pb", "lenet"), ("lenettxt.pbtxt", "lenettxt")):
        write_atomically(root / folder, convert(root / graph, directory=root / folder)[1])
    (root / "graphs").mkdir()
    shutil.copy(EXAMPLE, root / "graphs" / "other.pb")
    (root / "graphs" / "digamma.pbtxt").write_text(DIGAMMA)
    (root / "train.py").write_text('import tensorflow as tf\n\nGRAPH = "graphs/other.pb"\n')
    return root


@pytest.fixture
def workspace(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "ws"))


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "codegen", "lsp"]),
    params=CLIENTS,
)
async def client(lsp_client: LanguageClient, request, workspace: Path):
    # VS Code registers file watchers when asked; the test client only has to accept.
    lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)(lambda params: None)
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=from_fs_path(str(workspace)),
            workspace_folders=[types.WorkspaceFolder(from_fs_path(str(workspace)), "ws")],
        )
    )
    yield
    await lsp_client.shutdown_session()


def open_file(client: LanguageClient, path: Path, language: str = "python") -> str:
    uri = from_fs_path(str(path))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id=language, version=1, text=path.read_text())
        )
    )
    return uri


def position_of(path: Path, needle: str, offset: int = 0) -> types.Position:
    for number, line in enumerate(path.read_text().splitlines()):
        if needle in line:
            return types.Position(line=number, character=line.index(needle) + offset)
    raise AssertionError(f"{needle!r} not in {path}")


async def diagnostics(client: LanguageClient, uri: str, wanted, timeout: float = 60.0):
    """Wait until the diagnostics published for `uri` satisfy `wanted`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.diagnostics.get(uri)
        if found is not None and wanted(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"diagnostics for {uri}: {client.diagnostics.get(uri)}")


async def hover_text(client: LanguageClient, uri: str, position: types.Position) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), position)
    )
    assert result is not None
    return result.contents.value


def execute(client: LanguageClient, command: str, *arguments, msg_id=None):
    params = types.ExecuteCommandParams(command=command, arguments=list(arguments))
    return client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, params, msg_id=msg_id
    )


def as_code_action_command(action) -> dict:
    """The command of a CodeAction as the server sent it. lsprotocol's client-side hook reads
    any `{"command": ...}` object as a `Command`, so a CodeAction carrying a command arrives as a
    Command whose `command` field is the repr of the nested command."""
    if isinstance(action, types.CodeAction):
        return {"command": action.command.command, "arguments": action.command.arguments}
    assert isinstance(action, types.Command) and action.arguments is None
    return ast.literal_eval(action.command)


def assert_progress(client: LanguageClient, end: str = "done") -> None:
    """Work done progress was created, begun, reported and ended (both profiles support it)."""
    reports = [r for r in client.progress_reports.values() if r]
    assert reports, "no $/progress"
    kinds = [type(r).__name__ for r in reports[-1]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert "WorkDoneProgressReport" in kinds
    assert reports[-1][-1].message == end


async def test_hover_shows_provenance(client: LanguageClient, workspace: Path):
    model = workspace / "lenet" / "model.py"
    uri = open_file(client, model)
    text = await hover_text(client, uri, position_of(model, "keras.layers.Conv2D(6"))
    assert "`conv1`" in text and "`keras.layers.Conv2D`" in text and "Keras layer" in text
    for node in ("`Conv2D` `conv1/Conv2D`", "`BiasAdd` `BiasAdd`", "`Relu` `Relu`"):
        assert node in text
    assert "(?, 28, 28, 6)" in text and "padding='SAME'" in text and "`bias` (6,)" in text
    # on the name literal of another layer: exactly that layer's nodes, nothing guessed
    text = await hover_text(client, uri, position_of(model, 'name="fc2"', 6))
    assert "`fc2`" in text and "`MatMul_1`" in text and "`fc2/Tanh`" in text
    assert "conv1" not in text
    text = await hover_text(client, uri, position_of(model, 'name="input"', 6))
    assert "model input" in text and "`Placeholder`" in text


async def test_hover_finds_a_graph_in_another_folder_and_after_the_pair_moves(
    client: LanguageClient, workspace: Path
):
    """`graph2py data/graphs/net.pb -o src/model`: the header records the graph relative to the
    model's directory, the one place a search from the model upwards never looks; the graph and
    the generated folder moved together still find each other, and Regenerate reads the same
    header (rewriting the files unchanged)."""
    graph = workspace / "data" / "graphs" / "net.pb"
    graph.parent.mkdir(parents=True)
    shutil.copy(EXAMPLE, graph)
    out = workspace / "src" / "model"
    write_atomically(out, convert(graph, directory=out)[1])
    model = out / "model.py"
    assert model.read_text().startswith("# Generated by graph2py 0.1.0 from ../../data/graphs/")
    for model in (model, workspace / "moved" / "src" / "model" / "model.py"):
        if not model.exists():  # move the pair: graph and generated folder together
            model.parents[2].mkdir()
            for folder in ("data", "src"):
                shutil.move(workspace / folder, model.parents[2] / folder)
        uri = open_file(client, model)
        text = await hover_text(client, uri, position_of(model, "keras.layers.Conv2D(6"))
        assert "`Conv2D` `conv1/Conv2D`" in text and "`bias` (6,)" in text
    before = model.read_bytes(), (model.parent / "load_weights.py").read_bytes()
    await execute(client, "graph2py.regenerate", uri)
    assert (model.read_bytes(), (model.parent / "load_weights.py").read_bytes()) == before


async def test_definition_goes_to_the_pbtxt_node(client: LanguageClient, workspace: Path):
    model = workspace / "lenettxt" / "model.py"
    uri = open_file(client, model)
    result = await client.text_document_definition_async(
        types.DefinitionParams(
            types.TextDocumentIdentifier(uri), position_of(model, 'name="conv2"', 6)
        )
    )
    source = workspace / "lenettxt.pbtxt"
    assert result.uri == from_fs_path(str(source))
    line = source.read_text().splitlines()[result.range.start.line]
    assert line.strip() == 'name: "conv2/Conv2D"'


async def test_stale_diagnostic_after_the_source_changes(client: LanguageClient, workspace):
    model = workspace / "lenettxt" / "model.py"
    uri = open_file(client, model)
    await diagnostics(client, uri, lambda d: not d)
    source = workspace / "lenettxt.pbtxt"
    source.write_text(source.read_text() + "# edited\n")
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            [types.FileEvent(from_fs_path(str(source)), types.FileChangeType.Changed)]
        )
    )
    found = await diagnostics(client, uri, lambda d: any(x.code == "stale" for x in d))
    stale = next(x for x in found if x.code == "stale")
    assert stale.range.start.line == 0 and "generated file is stale" in stale.message
    assert stale.severity == types.DiagnosticSeverity.Warning


async def test_tf_only_line_gets_a_warning(client: LanguageClient, workspace: Path):
    model = workspace / "lenet" / "model.py"
    uri = open_file(client, model)
    line = position_of(model, 'name="flatten"').line
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            [
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(line, 0), types.Position(line, 0)),
                    text="            # graph2py: tf-only\n",
                )
            ],
        )
    )
    found = await diagnostics(client, uri, lambda d: any(x.code == "tf-only" for x in d))
    [warning] = [x for x in found if x.code == "tf-only"]
    assert warning.range.start.line == line + 1 and "'flatten'" in warning.message


async def test_code_lenses_above_build_model(client: LanguageClient, workspace: Path):
    model = workspace / "lenet" / "model.py"
    uri = open_file(client, model)
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(types.TextDocumentIdentifier(uri))
    )
    assert [(l.command.title, l.command.command) for l in lenses] == [
        ("Regenerate", "graph2py.regenerate"),
        ("Check parity", "graph2py.check"),
    ]
    assert {l.range.start.line for l in lenses} == {position_of(model, "def build_model").line}
    assert list(lenses[0].command.arguments) == [uri]
    plain = workspace / "train.py"
    assert not await client.text_document_code_lens_async(
        types.CodeLensParams(types.TextDocumentIdentifier(open_file(client, plain)))
    )


async def test_regenerate_rewrites_both_files(client: LanguageClient, workspace: Path):
    model, loader = workspace / "lenet" / "model.py", workspace / "lenet" / "load_weights.py"
    expected = model.read_text(), loader.read_text()
    uri = open_file(client, model)
    model.write_text(expected[0].replace("Dense(84", "Dense(99"))
    loader.unlink()
    result = await execute(client, "graph2py.regenerate", uri)
    assert result["layers"] == 9
    assert (model.read_text(), loader.read_text()) == expected
    assert_progress(client)


async def test_check_publishes_the_first_diverging_layer(client: LanguageClient, workspace):
    model, loader = workspace / "lenet" / "model.py", workspace / "lenet" / "load_weights.py"
    loader.write_text(loader.read_text().replace(BIAS_LINE, CORRUPTED_BIAS_LINE))
    uri = open_file(client, model)
    result = await execute(client, "graph2py.check", uri)
    assert result["ok"] is False and result["first_divergence"][0] == "conv2"
    found = await diagnostics(client, uri, lambda d: any(x.code == "parity" for x in d))
    [parity] = [x for x in found if x.code == "parity" and "first diverging" in x.message]
    assert parity.range.start.line == position_of(model, 'name="conv2"').line
    assert parity.severity == types.DiagnosticSeverity.Error and "'conv2'" in parity.message
    assert_progress(client)
    assert any("conv2" in m.message for m in client.messages)


@pytest.mark.parametrize("how", ["cancelRequest", "workDoneProgress/cancel"])
async def test_cancel_a_running_check(client: LanguageClient, workspace: Path, how: str):
    model = workspace / "lenet" / "model.py"
    uri = open_file(client, model)
    request = asyncio.ensure_future(execute(client, "graph2py.check", uri, msg_id="check-1"))
    deadline = time.monotonic() + 30
    while not any(client.progress_reports.values()):
        assert time.monotonic() < deadline, "no progress began"
        await asyncio.sleep(0.02)
    # the check runs (TensorFlow loading in the worker): hovers still answer at once
    started = time.monotonic()
    assert "`conv1`" in await hover_text(client, uri, position_of(model, 'name="conv1"', 6))
    assert time.monotonic() - started < 2.0
    [token] = [t for t, r in client.progress_reports.items() if r]
    if how == "cancelRequest":
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="check-1"))
    else:
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(request, 30)
    assert caught.value.code == -32800  # RequestCancelled
    deadline = time.monotonic() + 10
    while not isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd):
        assert time.monotonic() < deadline, "progress never ended"
        await asyncio.sleep(0.02)
    assert client.progress_reports[token][-1].message == "cancelled"
    assert not any(d.code == "parity" for d in client.diagnostics.get(uri, []))


async def test_pbtxt_hover_shows_op_inputs_attrs_and_shape(client: LanguageClient, workspace):
    graph = workspace / "lenettxt.pbtxt"
    uri = open_file(client, graph, "pbtxt")
    text = await hover_text(client, uri, position_of(graph, 'name: "conv2/Conv2D"', 8))
    assert "op `Conv2D`" in text and "Output shape: (?, 10, 10, 16)" in text
    assert "`pool1:0`" in text and "`strides`: `[1, 1, 1, 1]`" in text
    assert "`keras.layers.Conv2D` `conv2`" in text
    # an input reference names a node too
    text = await hover_text(client, uri, position_of(graph, 'input: "conv1/weights"', 9))
    assert "op `Const`" in text and "float32 array (5, 5, 1, 6)" in text


async def test_pbtxt_unsupported_op_diagnostic(client: LanguageClient, workspace: Path):
    graph = workspace / "graphs" / "digamma.pbtxt"
    uri = open_file(client, graph, "pbtxt")
    found = await diagnostics(client, uri, lambda d: bool(d))
    [warning] = found
    assert warning.code == "unsupported-op" and "VendorGamma" in warning.message
    assert warning.range.start.line == position_of(graph, 'name: "d"').line
    text = await hover_text(client, uri, position_of(graph, 'name: "d"', 8))
    assert "op `VendorGamma`" in text and "Converts to: nothing" in text


async def test_code_action_generates_and_shows_the_model(client: LanguageClient, workspace):
    script = workspace / "train.py"
    uri = open_file(client, script)
    where = position_of(script, "graphs/other.pb", 3)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(uri),
            types.Range(where, where),
            types.CodeActionContext(diagnostics=[]),
        )
    )
    [action] = actions
    assert action.title == "Generate Keras model from other.pb"
    command = as_code_action_command(action)
    assert command["command"] == "graph2py.generate"
    await execute(client, command["command"], *command["arguments"])
    model = workspace / "graphs" / "other" / "model.py"
    assert model.read_text().startswith("# Generated by graph2py")
    assert (model.parent / "load_weights.py").is_file()
    assert [d.uri for d in client.shown_documents] == [from_fs_path(str(model))]
    elsewhere = position_of(script, "import tensorflow")
    assert not await client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(uri),
            types.Range(elsewhere, elsewhere),
            types.CodeActionContext(diagnostics=[]),
        )
    )
