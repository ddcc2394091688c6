"""Responsiveness of `graph2py lsp` with the generated ResNet50 open.

Measures, as an editor sees them over stdio:
- server start to `initialized`, the median of several starts (target ≤ 0.5 s), and that neither
  TensorFlow nor the converter core (numpy, libcst, jinja2, black) is imported by then (asked of
  the server through `graph2py.debug.modules`, a command that exists only with
  GRAPH2PY_LSP_DEBUG=1);
- hover latency over 100 hovers on different layers, after the first (which waits for the
  analysis of the 100 MB graph; reported separately), target p95 ≤ 50 ms;
- didChange -> publishDiagnostics latency, target ≤ 200 ms.

    python bench/lsp.py [--cache /tmp/zoo] [--starts 9] [--baseline DIR] [--starts-only]
                        [--from-source]

`--baseline DIR` also starts the server of another checkout (say `git worktree add DIR main`),
alternating with this one start by start, so both medians see the same machine load. Starts
read cached bytecode, as an installed graph2py does; `--from-source` measures them as a
checkout under PYTHONDONTWRITEBYTECODE=1 runs, compiling graph2py's modules every time. Beside
them, the floor: a Python that only imports pygls's server, which no pygls server can beat.

A script, not a test, for the reason bench/convert.py gives: timings on a shared machine are for
a person to read. It exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ)  # of every Python started here; see use_bytecode
TARGETS = {"start": 0.5, "hover_p95": 0.050, "diagnostics": 0.200}


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


# What start-up must not pay for: imported on first use by hover, diagnostics or a job.
LAZY = ("tensorflow", "keras", "numpy", "libcst", "jinja2", "black", "codegen.analyze")


async def start(client: LanguageClient, workspace: Path, tree: Path = ROOT) -> tuple[float, float]:
    """(wall, CPU) seconds from spawning the server of checkout `tree` to `initialized` sent. The
    server's CPU time (Linux: /proc) moves less with the machine's load than the wall time."""
    env = {**ENV, "GRAPH2PY_LSP_DEBUG": "1", "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    # cwd too: `python -m` puts the working directory first on sys.path
    await client.start_io(sys.executable, "-m", "codegen", "lsp", env=env, cwd=str(tree))
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            process_id=os.getpid(),
            root_uri=from_fs_path(str(workspace)),
        )
    )
    client.initialized(types.InitializedParams())
    wall = time.perf_counter() - started
    try:
        fields = Path(f"/proc/{client._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, AttributeError, ValueError):
        cpu = float("nan")
    return wall, cpu


def floor() -> tuple[float, float]:
    """(wall, CPU) seconds of a Python that imports pygls's server and exits: what any pygls
    server pays before its own code runs, so the part of start-up that is ours shows."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pygls.lsp.server"], check=True, env=ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


async def stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def use_bytecode() -> None:
    """Let the servers started from here read cached bytecode, as an installed graph2py does
    (pip compiles it), even where PYTHONDONTWRITEBYTECODE is set: the cache goes to a
    directory of its own (PYTHONPYCACHEPREFIX), filled by a first start that is not counted."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="graph2py-bench-pycache-")


async def starts(workspace: Path, count: int, trees: list[Path]) -> dict:
    """`count` starts of each tree's server and of the pygls floor, taken in turn, so that every
    median sees the same machine load, after one uncounted start of each (it fills the bytecode
    cache): {tree or "floor": [(wall, CPU), ...]}."""
    times: dict = {tree: [] for tree in [*trees, "floor"]}
    for tree in trees:
        client = LanguageClient("bench", "1")
        await start(client, workspace, tree)
        await stop(client)
    floor()
    for _ in range(count):
        for tree in trees:
            client = LanguageClient("bench", "1")
            times[tree].append(await start(client, workspace, tree))
            await stop(client)
        times["floor"].append(floor())
    return times


async def run(model: Path) -> dict:
    client = LanguageClient("bench", "1")
    published: asyncio.Queue = asyncio.Queue()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: types.PublishDiagnosticsParams):
        published.put_nowait((time.perf_counter(), params))

    figures = {"first_start": (await start(client, model.parent.parent))[0]}
    modules = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="graph2py.debug.modules", arguments=list(LAZY))
    )
    figures["imported"] = [name for name in LAZY if modules[name]]

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
    await stop(client)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="/tmp/zoo", help="directory holding resnet50.pb")
    parser.add_argument("--starts", type=int, default=9, help="starts to take the median of")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose server starts alternate with ours"
    )
    parser.add_argument(
        "--starts-only", action="store_true", help="measure start-up only (no graph needed)"
    )
    parser.add_argument(
        "--from-source",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set: every start compiles graph2py's modules",
    )
    args = parser.parse_args()
    if not args.from_source:
        use_bytecode()
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    trees = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    model = None if args.starts_only else prepare(Path(args.cache))
    workspace = ROOT if model is None else model.parent.parent
    times = asyncio.run(starts(workspace, args.starts, trees))
    median = lambda pairs, i: statistics.median(p[i] for p in pairs)  # noqa: E731
    figures = {"start": median(times[ROOT], 0)}
    cache = "from source" if "PYTHONDONTWRITEBYTECODE" in ENV else "bytecode cached"
    print(
        f"start to initialized, median of {args.starts} starts taken in turn, {cache} "
        "(wall; server CPU):"
    )
    for tree, pairs in times.items():
        label = {ROOT: "this checkout", "floor": "floor: python -c 'import pygls.lsp.server'"}
        spread = f"{ms(min(p[0] for p in pairs))} … {ms(max(p[0] for p in pairs))}"
        print(
            f"  {ms(median(pairs, 0)):>9} ({spread}); CPU {ms(median(pairs, 1))}   "
            + label.get(tree, f"baseline {tree}")
        )
    print("  (target: this checkout ≤ 500 ms)")
    if model is None:
        return 1 if figures["start"] > TARGETS["start"] else 0
    figures |= asyncio.run(run(model))
    print(f"model: {model} ({figures['layers']} layer lines)")
    imported = ", ".join(figures["imported"]) or "none"
    print(f"imported after start       {imported}   (target none of {', '.join(LAZY)})")
    print(f"first hover (analysis)     {ms(figures['first_hover'])}")
    print(f"hover p50 / p95 (100)      {ms(figures['hover_p50'])} / {ms(figures['hover_p95'])}")
    print("                           (target p95 ≤ 50 ms)")
    print(
        f"didChange -> diagnostics   median {ms(figures['diagnostics_p50'])}, "
        f"max {ms(figures['diagnostics'])}   (target ≤ 200 ms)"
    )
    missed = [k for k, limit in TARGETS.items() if figures[k] > limit]
    missed += ["imports"] if figures["imported"] else []
    print("targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
