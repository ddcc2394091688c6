"""The language server's state: caches, the documents it knows, and their diagnostics (the
handlers that use it are in features.py, which makes the one `Graph2PyServer`).

Handlers on the event loop only read caches and parse the open document (`ast`, milliseconds);
anything that reads a graph file runs in a thread (`graphs.analyze_graph`, cached per sha256),
and regenerate/check run as cancellable subprocesses (`jobs`). So a hover never waits behind a
parity check, and the server never imports TensorFlow.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..errors import printable
from . import model_file, render
from .graphs import GraphInfo, ShaCache, analyze_graph, is_text_graph, node_lines
from .jobs import Jobs, Protocol

GRAPH_SUFFIXES = (".pb", ".pbtxt")
_QUOTED = re.compile(r"""(['"])((?:(?!\1)[^\\]|\\.)*)\1""")


class Graph2PyServer(LanguageServer):
    def __init__(self):
        super().__init__("graph2py", __version__, protocol_cls=Protocol)
        self.jobs = Jobs(self)
        self.shas = ShaCache()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="graph2py")
        self._graphs: dict[tuple[Path, bool], tuple[str, asyncio.Future]] = {}
        self._calls: dict[str, tuple[int | None, dict]] = {}  # uri -> (version, calls)
        self._blocks: dict[str, tuple[int | None, object]] = {}  # uri -> (version, Blocks)
        self._trees: dict[str, tuple[int | None, object]] = {}  # uri -> (version, ast or None)
        self.parity: dict[str, list[tuple[str, str]]] = {}  # model uri -> [(layer, message)]
        self._generation: dict[str, int] = {}  # uri -> latest publish started, to drop stale ones

    # -- shared state ---------------------------------------------------------------------------

    def roots(self) -> list[Path]:
        folders = [Path(to_fs_path(f.uri)) for f in self.workspace.folders.values()]
        return folders + ([Path(self.workspace.root_path)] if self.workspace.root_path else [])

    async def sha(self, path: Path) -> str | None:
        cached = self.shas.cached(path)
        if cached is not None:
            return cached
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.shas.get, path)

    async def graph(self, path: Path, generated: bool) -> GraphInfo:
        """The analysis of a graph file, computed once per content (in a thread) and shared by
        every request that asks while it runs."""
        digest = await self.sha(path)
        key = (path.resolve(), generated)
        entry = self._graphs.get(key)
        if entry is None or entry[0] != digest:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, analyze_graph, path, generated)
            entry = self._graphs[key] = (digest, future)
        return await asyncio.shield(entry[1])

    def calls(self, uri: str) -> dict[str, model_file.LayerCall]:
        """Layer calls of the open document, reparsed when its version changes; while the file
        does not parse, the last good map stands."""
        document = self.workspace.get_text_document(uri)
        version, calls = self._calls.get(uri, (None, {}))
        if version != document.version or not calls:
            fresh = model_file.layer_calls(document.source, self._tree(uri))
            if fresh is not None:
                calls = fresh
            self._calls[uri] = (document.version, calls)
        return calls

    def blocks(self, uri: str):
        """The open document's block functions expanded (`blocks.Blocks`), like `calls`: per
        version, the last good one while the file does not parse. Imported on first use, so
        start-up does not pay for it."""
        from . import blocks

        document = self.workspace.get_text_document(uri)
        version, found = self._blocks.get(uri, (None, None))
        if found is None or version != document.version:
            fresh = blocks.expand(document.source, self._tree(uri))
            found = fresh if fresh is not None else found or blocks.Blocks()
            self._blocks[uri] = (document.version, found)
        return found

    def _tree(self, uri: str):
        """The open document parsed once per version, for `calls` and `blocks` to share."""
        document = self.workspace.get_text_document(uri)
        version, tree = self._trees.get(uri, (None, None))
        if version != document.version or uri not in self._trees:
            tree = model_file.parse(document.source)
            self._trees[uri] = (document.version, tree)
        return tree

    def forget(self, uri: str) -> None:
        """Drop what was parsed from a closed document; the graph caches stay (cheap to keep,
        costly to rebuild)."""
        self._calls.pop(uri, None)
        self._blocks.pop(uri, None)
        self._trees.pop(uri, None)
        self._generation.pop(uri, None)

    def model_source(self, uri: str) -> tuple[model_file.Header, Path | None] | None:
        """(header, resolved source graph) for a generated model.py, None for other files."""
        document = self.workspace.get_text_document(uri)
        header = model_file.parse_header(document.source)
        if header is None:
            return None
        return header, model_file.resolve_source(Path(document.path), header.source, self.roots())

    # -- diagnostics ----------------------------------------------------------------------------

    async def publish(self, uri: str) -> None:
        """Compute and send a document's diagnostics, unless a newer computation for the same
        document started meanwhile (edits can overtake a slow first hash of a large graph)."""
        generation = self._generation[uri] = self._generation.get(uri, 0) + 1
        path = Path(to_fs_path(uri))
        if path.suffix == ".py":
            diagnostics = await self.model_diagnostics(uri)
        elif is_text_graph(path):
            diagnostics = await self.graph_diagnostics(uri)
        else:
            return
        if diagnostics is not None and self._generation.get(uri) == generation:
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
            )

    async def model_diagnostics(self, uri: str) -> list[types.Diagnostic] | None:
        found = self.model_source(uri)
        if found is None:
            return None
        header, source = found
        result = []
        if source is None:
            result.append(
                _diagnostic(
                    0,
                    f"source graph {header.source!r} not found beside this file or in its parent "
                    "directories (up to the workspace root)",
                    types.DiagnosticSeverity.Warning,
                )
            )
        elif (digest := await self.sha(source)) != header.sha256:
            result.append(
                _diagnostic(
                    0,
                    f"generated file is stale: {source.name} changed since this file was "
                    f"generated (sha256 {digest[:12]}…, header says {header.sha256[:12]}…); "
                    "run Regenerate",
                    types.DiagnosticSeverity.Warning,
                    code="stale",
                )
            )
        calls, blocks = self.calls(uri), self.blocks(uri)
        for call in calls.values():
            if call.path == model_file.TF_ONLY:
                result.append(
                    _diagnostic(
                        call.start[0],
                        f"{call.name!r} runs TensorFlow ({call.callee}): not portable to other "
                        "Keras backends",
                        types.DiagnosticSeverity.Warning,
                        code="tf-only",
                    )
                )
        for call, names in blocks.instances_of.items():
            if call.path == model_file.TF_ONLY:
                built = f" (builds {_listed(names)})" if names else ""
                result.append(
                    _diagnostic(
                        call.start[0],
                        f"name={call.name} in {blocks.function_of[call]}(){built} runs "
                        f"TensorFlow ({call.callee}): not portable to other Keras backends",
                        types.DiagnosticSeverity.Warning,
                        code="tf-only",
                    )
                )
        for layer, message in self.parity.get(uri, []):
            result.append(self._parity_diagnostic(uri, calls, blocks, layer, message))
        return result

    def _parity_diagnostic(self, uri, calls, blocks, layer: str, message: str):
        """On the layer's own call, or for a layer a block built, on the statement of
        build_model that built it, pointing to the layer call inside the block as well."""
        call, instance = calls.get(layer), blocks.instances.get(layer)
        if call is None and instance is not None:
            diagnostic = _diagnostic(
                instance.site.start[0],
                f"{message}; built by this call of {instance.site.callee}()",
                types.DiagnosticSeverity.Error,
                code="parity",
            )
            diagnostic.related_information = [
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=uri, range=text_range(*instance.call.start, *instance.call.end)
                    ),
                    message=printable(
                        f"layer {layer!r}: name={instance.call.name} in {instance.function}()"
                    ),
                )
            ]
            return diagnostic
        line = call.start[0] if call else model_file.build_model_line(self.text(uri)) or 0
        return _diagnostic(line, message, types.DiagnosticSeverity.Error, code="parity")

    async def graph_diagnostics(self, uri: str) -> list[types.Diagnostic]:
        path = Path(to_fs_path(uri))
        try:
            info = await self.graph(path, generated=False)
        except Exception as err:  # unreadable or malformed: say so where the user looks
            problems = getattr(err, "problems", [f"{type(err).__name__}: {err}"])
            return [_diagnostic(0, p, types.DiagnosticSeverity.Error) for p in problems]
        lines = node_lines(self.text(uri))
        result = [_diagnostic(0, p, types.DiagnosticSeverity.Error) for p in info.problems]
        for name in info.unsupported:
            line, start, end = lines.get(name, (0, 0, 0))
            node = info.nodes[name]
            result.append(
                types.Diagnostic(
                    range=text_range(line, start, line, end),
                    message=printable(
                        f"op {node.op} ({name!r}) has no path: no Keras layer, keras.ops "
                        "expression or TensorFlow op computes it"
                    ),
                    severity=types.DiagnosticSeverity.Warning,
                    source="graph2py",
                    code="unsupported-op",
                )
            )
        return result

    def text(self, uri: str) -> str:
        return self.workspace.get_text_document(uri).source

    def schedule_publish(self, uri: str) -> None:
        asyncio.ensure_future(self.publish(uri))

    def open_models(self):
        return [uri for uri in self.workspace.text_documents if uri.endswith(".py")]


def text_range(line: int, start: int = 0, end_line: int | None = None, end: int = 0) -> types.Range:
    """Line `line` from column `start` to (`end_line`, default the same line; `end`)."""
    return types.Range(
        start=types.Position(line=line, character=start),
        end=types.Position(line=line if end_line is None else end_line, character=end),
    )


def _diagnostic(line: int, message: str, severity, code: str | None = None) -> types.Diagnostic:
    """A diagnostic on a whole line; its message one line of printable text (errors.printable),
    as the command line prints it."""
    return types.Diagnostic(
        range=text_range(line, 0, line + 1, 0),
        message=printable(message),
        severity=severity,
        source="graph2py",
        code=code,
    )


def _listed(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def quoted_at(line: str, column: int) -> str | None:
    """The string literal on `line` that spans `column`, without quotes."""
    for match in _QUOTED.finditer(line):
        if match.start() <= column <= match.end():
            return match.group(2)
    return None
