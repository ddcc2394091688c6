"""Responsiveness of `graph2py lsp` with the generated ResNet50 open.

Measures, as an editor sees them over stdio:
- server start to `initialized` (target ≤ 1 s), and that TensorFlow is not imported (asked of the
  server through `graph2py.debug.modules`, a command that exists only with GRAPH2PY_LSP_DEBUG=1);
- hover latency over 100 hovers on different layers, after the first (which waits for the
  analysis of the 100 MB graph; reported separately), target p95 ≤ 50 ms;
- didChange -> publishDiagnostics latency, target ≤ 200 ms.

    python bench/lsp.py [--cache /tmp/zoo]

A script, not a test, for the reason bench/convert.py gives: timings on a shared machine are for
a person to read. It exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"start": 1.0, "hover_p95": 0.050, "diagnostics": 0.200}


def prepare(cache: Path) -> Path:
    """model.py of ResNet50 converted beside a copy of its graph (built if missing)."""
    graph = cache / "resnet50.pb"
    if not graph.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(ROOT / "tests" / "zoo.py"), str(cache), "resnet50"], check=True
        )
    workspace = cache / "lsp-bench"
    model = workspace / "resnet50" / "model.py"
    if not model.exists():
        workspace.mkdir(exist_ok=True)
        if not (workspace / "resnet50.pb").exists():
            shutil.copy(graph, workspace / "resnet50.pb")
        script = Path(sys.executable).parent / "graph2py"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "codegen"]
        subprocess.run(
            [*command, str(workspace / "resnet50.pb"), "-o", str(workspace / "resnet50")],
            check=True,
        )
    return model


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(model: Path) -> dict:
    client = LanguageClient("bench", "1")
    published: asyncio.Queue = asyncio.Queue()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: types.PublishDiagnosticsParams):
        published.put_nowait((time.perf_counter(), params))

    env = {**os.environ, "GRAPH2PY_LSP_DEBUG": "1"}
    started = time.perf_counter()
    await client.start_io(sys.executable, "-m", "codegen", "lsp", env=env)
    workspace = model.parent.parent
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            process_id=os.getpid(),
            root_uri=from_fs_path(str(workspace)),
        )
    )
    client.initialized(types.InitializedParams())
    figures = {"start": time.perf_counter() - started}
    modules = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="graph2py.debug.modules")
    )
    figures["tensorflow_imported"] = modules["tensorflow"]

    text = model.read_text()
    uri = from_fs_path(str(model))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    targets = [
        types.Position(line=n, character=line.index('name="') + 6)
        for n, line in enumerate(text.splitlines())
        if 'name="' in line and "keras.layers." in line
    ]

    async def hover(position) -> float:
        began = time.perf_counter()
        result = await client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), position)
        )
        assert result is not None and "Replaces" in result.contents.value, result
        return time.perf_counter() - began

    figures["first_hover"] = await hover(targets[0])
    step = max(1, len(targets) // 100)
    hovers = [await hover(targets[(i * step) % len(targets)]) for i in range(100)]
    figures["hover_p50"], figures["hover_p95"] = percentile(hovers, 0.5), percentile(hovers, 0.95)
    figures["layers"] = len(targets)

    while not published.empty():
        published.get_nowait()
    latencies = []
    for version in range(2, 22):
        began = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(3, 0), types.Position(3, 0)),
                        text=f"# edit {version}\n",
                    )
                ],
            )
        )
        while True:
            arrived, params = await asyncio.wait_for(published.get(), 10)
            if params.uri == uri:
                break
        latencies.append(arrived - began)
    figures["diagnostics_p50"] = statistics.median(latencies)
    figures["diagnostics"] = max(latencies)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="/tmp/zoo", help="directory holding resnet50.pb")
    args = parser.parse_args()
    model = prepare(Path(args.cache))
    figures = asyncio.run(run(model))
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    print(f"model: {model} ({figures['layers']} layer lines)")
    print(f"start to initialized       {ms(figures['start'])}   (target ≤ 1000 ms)")
    print(f"TensorFlow imported        {figures['tensorflow_imported']}   (target False)")
    print(f"first hover (analysis)     {ms(figures['first_hover'])}")
    print(f"hover p50 / p95 (100)      {ms(figures['hover_p50'])} / {ms(figures['hover_p95'])}")
    print("                           (target p95 ≤ 50 ms)")
    print(
        f"didChange -> diagnostics   median {ms(figures['diagnostics_p50'])}, "
        f"max {ms(figures['diagnostics'])}   (target ≤ 200 ms)"
    )
    missed = [k for k, limit in TARGETS.items() if figures[k] > limit]
    missed += ["tensorflow"] if figures["tensorflow_imported"] else []
    print("targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
