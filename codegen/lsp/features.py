"""The language server (`server`) and its LSP handlers: document sync, hover, definition, code
lenses, code actions and the `graph2py.*` commands. Each handler is thin: it finds the
document's kind and hands over to `model_file`, `graphs`, `render` or `jobs`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from ..files import read_input
from . import model_file, render
from .graphs import is_text_graph, node_lines
from .jobs import JobFailed
from .server import GRAPH_SUFFIXES, Graph2PyServer, quoted_at, text_range

server = Graph2PyServer()
REGENERATE, CHECK, GENERATE = "graph2py.regenerate", "graph2py.check", "graph2py.generate"


def _warm(ls: Graph2PyServer, uri: str) -> None:
    """Start analysing the source of a generated model as soon as it opens, so the first hover
    finds the spec ready."""
    found = ls.model_source(uri)
    if found and found[1] is not None:
        task = asyncio.ensure_future(ls.graph(found[1], generated=True))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # reported on use


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: Graph2PyServer, params: types.DidOpenTextDocumentParams):
    _warm(ls, params.text_document.uri)
    ls.schedule_publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: Graph2PyServer, params: types.DidChangeTextDocumentParams):
    ls.schedule_publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: Graph2PyServer, params: types.DidSaveTextDocumentParams):
    _republish_all(ls)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: Graph2PyServer, params: types.DidChangeWatchedFilesParams):
    """A graph changed on disk: every open model may have gone stale."""
    _republish_all(ls)


def _republish_all(ls: Graph2PyServer) -> None:
    for uri in list(ls.workspace.text_documents):
        ls.schedule_publish(uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: Graph2PyServer, params: types.DidCloseTextDocumentParams):
    ls.forget(params.text_document.uri)


@server.feature(types.INITIALIZED)
async def initialized(ls: Graph2PyServer, params: types.InitializedParams):
    """Ask to hear about graph files changing on disk, which makes open models stale."""
    watched = (
        ls.client_capabilities.workspace
        and ls.client_capabilities.workspace.did_change_watched_files
    )
    if not (watched and watched.dynamic_registration):
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern=f"**/*{s}") for s in GRAPH_SUFFIXES]
    )
    registration = types.Registration(
        id="graph2py-graph-files",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(registrations=[registration])
        )
    except Exception:  # the client cannot watch files: staleness shows on the next edit
        pass


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def hover(ls: Graph2PyServer, params: types.HoverParams) -> types.Hover | None:
    uri, position = params.text_document.uri, params.position
    path = Path(to_fs_path(uri))
    if path.suffix == ".py":
        found = ls.model_source(uri)
        target = _target_at(ls, uri, position) if found else None
        if not found or found[1] is None or target is None:
            return None
        header, source = found
        blocks = ls.blocks(uri)
        info = await ls.graph(source, generated=True)
        if target in blocks.built_by:
            text = render.block_call_hover(info, target.callee, blocks.built_by[target], blocks)
        elif target in blocks.instances_of:
            text = render.instances_hover(
                info, target, blocks.function_of[target], blocks.instances_of[target]
            )
        else:
            text = render.layer_hover(info, target)
        if info.spec is None and info.problems:
            problem = f"{source.name} no longer converts: " + "; ".join(info.problems)
            text = problem if text is None else f"{text}\n\n{problem}"
        if text is None:
            return None
        if info.sha256 != header.sha256:
            text += f"\n\n_{source.name} changed since generation: provenance shown is today's._"
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
            range=text_range(target.start[0], target.start[1], target.end[0], target.end[1]),
        )
    if is_text_graph(path):
        name = _node_ref(ls, uri, position)
        if name is None:
            return None
        info = await ls.graph(path, generated=False)
        node = info.nodes.get(name)
        if node is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=render.node_hover(info, node)
            )
        )
    return None


def _target_at(ls: Graph2PyServer, uri: str, position: types.Position):
    """What the cursor is on in a model.py, the innermost of: a layer call with a literal name
    (a `model_file.LayerCall`), a layer call inside a block function (a LayerCall of
    `blocks.instances_of`), a block call (a `blocks.BlockCall`)."""
    line, column = position.line, position.character
    call = model_file.call_at(ls.calls(uri), line, column)
    block = ls.blocks(uri).at(line, column)
    if block is not None and (call is None or _extent(block) < _extent(call)):
        return block
    return call


def _extent(call) -> tuple[int, int]:
    return call.end[0] - call.start[0], call.end[1] - call.start[1]


def _layer_name_at(ls: Graph2PyServer, uri: str, position: types.Position) -> str | None:
    """The Keras layer name the cursor means: a plain layer's, else the first one a block
    call or a layer call inside a block function builds."""
    target = _target_at(ls, uri, position)
    if target is None:
        return None
    blocks = ls.blocks(uri)
    if target in blocks.built_by or target in blocks.instances_of:
        names = blocks.built_by.get(target) or blocks.instances_of.get(target)
        return names[0] if names else None
    return target.name


def _node_ref(ls: Graph2PyServer, uri: str, position: types.Position) -> str | None:
    """The node a quoted name or input reference under the cursor means (`^ctrl`, `x:1`)."""
    lines = ls.workspace.get_text_document(uri).lines
    if position.line >= len(lines):
        return None
    text = quoted_at(lines[position.line], position.character)
    if text is None:
        return None
    text = text.lstrip("^")
    name, sep, port = text.rpartition(":")
    return name if sep and port.isdigit() else text


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
async def definition(ls: Graph2PyServer, params: types.DefinitionParams):
    uri, position = params.text_document.uri, params.position
    path = Path(to_fs_path(uri))
    if is_text_graph(path):  # an input reference -> the node it names, in the same file
        name = _node_ref(ls, uri, position)
        where = node_lines(ls.text(uri)).get(name) if name else None
        return (
            types.Location(uri=uri, range=text_range(where[0], where[1], None, where[2]))
            if where
            else None
        )
    found = ls.model_source(uri)
    name = _layer_name_at(ls, uri, position) if found else None
    if not found or found[1] is None or name is None or not is_text_graph(found[1]):
        return None
    source = found[1]
    info = await ls.graph(source, generated=True)
    layer, model_input = info.layer(name), info.input(name)
    if layer is not None:
        target = layer.nodes[0]
    elif model_input is not None:
        target = model_input.tensor.rsplit(":", 1)[0]
    else:
        return None
    source_uri = from_fs_path(str(source))
    document = ls.workspace.text_documents.get(source_uri)
    if document is not None:
        text = document.source
    else:
        try:
            text = await asyncio.get_running_loop().run_in_executor(
                ls.executor, lambda: read_input(source).decode("utf-8")
            )
        except (OSError, UnicodeDecodeError):
            return None
    where = node_lines(text).get(target)
    if where is None:
        return None
    return types.Location(uri=source_uri, range=text_range(where[0], where[1], None, where[2]))


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: Graph2PyServer, params: types.CodeLensParams):
    uri = params.text_document.uri
    if not uri.endswith(".py") or ls.model_source(uri) is None:
        return None
    line = model_file.build_model_line(ls.text(uri))
    if line is None:
        return None
    return [
        types.CodeLens(
            range=text_range(line),
            command=types.Command(title=title, command=command, arguments=[uri]),
        )
        for title, command in (("Regenerate", REGENERATE), ("Check parity", CHECK))
    ]


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.Refactor]),
)
def code_action(ls: Graph2PyServer, params: types.CodeActionParams):
    """On a string literal naming an existing graph file: offer to generate its Keras code."""
    uri = params.text_document.uri
    if not uri.endswith(".py"):
        return None
    graph = _graph_literal(ls, uri, params.range.start)
    if graph is None:
        return None
    title = f"Generate Keras model from {graph.name}"
    return [
        types.CodeAction(
            title=title,
            kind=types.CodeActionKind.Refactor,
            command=types.Command(title=title, command=GENERATE, arguments=[str(graph)]),
        )
    ]


def _graph_literal(ls: Graph2PyServer, uri: str, position: types.Position) -> Path | None:
    lines = ls.workspace.get_text_document(uri).lines
    if position.line >= len(lines):
        return None
    text = quoted_at(lines[position.line], position.character)
    if not text or not text.lower().endswith(GRAPH_SUFFIXES):
        return None
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = Path(to_fs_path(uri)).parent / candidate
    return candidate.resolve() if candidate.is_file() else None


def _model_paths(ls: Graph2PyServer, uri: str) -> tuple[Path, Path]:
    found = ls.model_source(uri) if uri in ls.workspace.text_documents else None
    if found is None:  # not open: read the header from disk
        path = Path(to_fs_path(uri))
        try:
            header = model_file.parse_header(read_input(path).decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            header = None
        if header is None:
            raise JobFailed(f"{uri}: not a model.py generated by graph2py")
        found = header, model_file.resolve_source(path, header.source, ls.roots())
    header, source = found
    if source is None:
        raise JobFailed(f"source graph {header.source!r} not found")
    return source, Path(to_fs_path(uri)).parent


@server.command(REGENERATE)
async def regenerate(ls: Graph2PyServer, *args):
    """Rewrite model.py and load_weights.py beside the model from its source graph."""
    uri = args[0]
    source, directory = _model_paths(ls, uri)
    result = await ls.jobs.run(
        f"graph2py: regenerating {directory.name}", "regenerate", str(source), str(directory)
    )
    ls.parity.pop(uri, None)
    ls.schedule_publish(uri)
    return result


@server.command(CHECK)
async def check(ls: Graph2PyServer, *args):
    """Parity check of the files on disk; the first diverging layer gets an error diagnostic."""
    uri = args[0]
    source, directory = _model_paths(ls, uri)
    result = await ls.jobs.run(
        f"graph2py: checking parity of {directory.name}", "check", str(source), str(directory)
    )
    messages = []
    if result["first_divergence"]:
        layer, tensor, rel = result["first_divergence"]
        messages.append(
            (
                layer,
                f"parity: first diverging layer {layer!r}: its output differs from graph tensor "
                f"{tensor!r} by {rel:.3g} (relative; tolerance 1e-4)",
            )
        )
    for output in result["outputs"]:
        if not output["ok"]:
            messages.append(
                (
                    "",
                    f"parity: output {output['tensor']!r} differs by {output['max_rel']:.3g} "
                    "(relative; tolerance 1e-4)",
                )
            )
    ls.parity[uri] = messages
    await ls.publish(uri)
    ls.window_show_message(
        types.ShowMessageParams(
            type=types.MessageType.Info if result["ok"] else types.MessageType.Warning,
            message="graph2py check: " + ("parity holds" if result["ok"] else messages[0][1]),
        )
    )
    return result


@server.command(GENERATE)
async def generate(ls: Graph2PyServer, *args):
    """Convert a graph into GRAPH_DIR/STEM/ and ask the client to open the new model.py."""
    graph = Path(args[0])
    if not graph.is_file():
        raise JobFailed(f"{graph}: no such file")
    directory = graph.parent / graph.stem
    result = await ls.jobs.run(
        f"graph2py: generating {graph.stem}/model.py", "regenerate", str(graph), str(directory)
    )
    model_uri = from_fs_path(str(directory / "model.py"))
    window = ls.client_capabilities.window
    if window and window.show_document and window.show_document.support:
        await ls.window_show_document_async(
            types.ShowDocumentParams(uri=model_uri, take_focus=True)
        )
    else:
        ls.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Info, message=f"wrote {model_uri}")
        )
    return result


def enable_debug() -> None:
    """`graph2py.debug.modules`, for bench/lsp.py only (GRAPH2PY_LSP_DEBUG=1): proves the
    server has not imported TensorFlow."""

    @server.command("graph2py.debug.modules")
    def modules(ls: Graph2PyServer, *args):
        return {"tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}


def main() -> None:
    """Serve over stdio."""
    if os.environ.get("GRAPH2PY_LSP_DEBUG"):
        enable_debug()
    server.start_io()
