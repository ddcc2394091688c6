"""How graph2py's time and memory grow with graph size: synthetic graphs of 1k to 200k nodes.

This is a script, not a test (timing assertions are flaky on shared machines; see
bench/convert.py). It builds four kinds of graph without TensorFlow (tests/graphs.py's
Builder), the convolutions TF1-style with `scope/kernel` + `scope/kernel/read` variables:

    chain        a single-input chain of units: Conv2D + BiasAdd + Relu, Tanh, Mul by a scalar
                 (10 nodes, 3 layers; a keras.Sequential model)
    elementwise  a chain of Relu, Exp, AddV2 of a scalar, Square (5 nodes, 4 statements: a
                 layer, keras.ops, a layer, keras.ops; a functional model)
    branchy      residual units: conv + Relu, conv, AddV2 with the unit's input, Relu,
                 ConcatV2 of that and the first conv, a 1x1 conv back to 4 channels (23 nodes,
                 6 layers; a functional model)
    scoped       Relu after Relu, in scopes `a` and `b` by turns: every layer wants one of
                 two names (1 node, 1 layer; a keras.Sequential model)

and converts each size in a fresh child process (`convert()` as `graph2py SOURCE` runs it),
timing every stage: the functions of pipeline.load and pipeline.prepare, the patterns
(analyze.py), the rendering (emit.py), postprocess.tidy (`tidy`: the libcst passes and the
statement-wise formatting) and black. A stage's time is its own, less the stages timed inside
it. Read the tables per kind: one column per size, a row per stage, then the high-water mark
of resident memory (getrusage in the child) at the end of each stage.

The last column divides the largest size's figure by the one before it; the `nodes` row gives
the ratio linear growth would show. A stage well above that ratio grows faster than linearly.
Absolute figures drift on a shared machine; the ratios within one run drift much less.

    python bench/scale.py                       # every kind, 1k 10k 50k 200k nodes
    python bench/scale.py --kinds chain --sizes 50k,200k --files model.py,load_weights.py

A child that runs past --timeout seconds or --max-mb of resident memory is stopped; its column
shows the stages it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from graphs import INT32, Builder  # noqa: E402  (numpy and protobuf schemas, no TensorFlow)

MB = 1e6

# -- graphs -------------------------------------------------------------------------------------

NHWC = {"data_format": "NHWC"}
ONES = [1, 1, 1, 1]
CHANNELS = 4


def _variable(b, name: str, *shape: int) -> str:
    return b.op(f"{name}/read", "Identity", b.weight(name, *shape))


def _conv(b, scope: str, x: str, cin: int, k: int = 3, act: str | None = "Relu") -> str:
    """tf.layers.conv2d: kernel and bias variables, Conv2D, BiasAdd, the activation."""
    with b.scope(scope):
        kernel = _variable(b, "kernel", k, k, cin, CHANNELS)
        h = b.op("Conv2D", "Conv2D", x, kernel, strides=ONES, padding="SAME", **NHWC)
        h = b.op("BiasAdd", "BiasAdd", h, _variable(b, "bias", CHANNELS), **NHWC)
        return b.op(act, act, h) if act else h


def chain_unit(b, i: int, x: str) -> str:
    h = _conv(b, f"conv_{i}", x, CHANNELS)
    h = b.op(f"tanh_{i}", "Tanh", h)
    with b.scope(f"scale_{i}"):
        return b.op("mul", "Mul", h, b.const("y", 0.5, short=True))


def elementwise_unit(b, i: int, x: str) -> str:
    x = b.op(f"relu_{i}", "Relu", x)
    x = b.op(f"exp_{i}", "Exp", x)
    x = b.op(f"add_{i}", "AddV2", x, b.const(f"add_{i}/y", 1.0, short=True))
    return b.op(f"square_{i}", "Square", x)


def scoped_unit(b, i: int, x: str) -> str:
    with b.scope("ab"[i % 2]):
        return b.op(f"Relu_{i}", "Relu", x)


def branchy_unit(b, i: int, x: str) -> str:
    with b.scope(f"block_{i}"):
        a = _conv(b, "conv_a", x, CHANNELS)
        h = _conv(b, "conv_b", a, CHANNELS, act=None)
        h = b.op("out", "Relu", b.op("add", "AddV2", x, h))
        axis = b.const("concat/axis", 3, short=True)
        h = b.op("concat", "ConcatV2", h, a, axis, N=2, Tidx=INT32)
        return _conv(b, "project", h, 2 * CHANNELS, k=1, act=None)


KINDS = {
    "chain": (chain_unit, 10),
    "elementwise": (elementwise_unit, 5),
    "branchy": (branchy_unit, 23),
    "scoped": (scoped_unit, 1),
}


def build(kind: str, nodes: int, path: Path) -> int:
    """Write a graph of about `nodes` nodes to `path` (binary GraphDef); its node count."""
    unit, size = KINDS[kind]
    b = Builder(seed=0)
    x = b.placeholder("images", [None, 8, 8, CHANNELS])
    for i in range(max(1, round((nodes - 1) / size))):
        x = unit(b, i, x)
    b.op("output", "Identity", x)
    path.write_bytes(b.graph.SerializeToString())
    return len(b.graph.node)


# -- measuring, in the child ----------------------------------------------------------------------

# (module, attribute, stage): the functions timed, in pipeline order. Wrapping a module's own
# binding of a name times the calls made through that module.
STAGES = [
    ("codegen.pipeline", "open_source", "read"),
    ("codegen.pipeline", "from_graphdef", "decode nodes"),
    ("codegen.pipeline", "lift_recurrent", "rnn"),
    ("codegen.pipeline", "functionalize_frames", "frames"),
    ("codegen.pipeline", "Graph", "graph"),
    ("codegen.pipeline", "inline_functions", "inline"),
    ("codegen.pipeline", "read_variables", "variables"),
    ("codegen.pipeline", "resolve_control_flow", "control"),
    ("codegen.pipeline", "prune", "prune"),
    ("codegen.pipeline", "channels_last", "layout"),
    ("codegen.pipeline", "Constants", "constants"),
    ("codegen.pipeline", "infer_shapes", "shapes"),
    ("codegen.analyze", "analyze", "patterns"),
    ("codegen.analyze", "_unique_names", "layer names"),
    ("codegen.analyze", "dependency_order", "layer order"),
    ("codegen.analyze", "_dependency_order", "layer order"),
    ("codegen.convert", "render", "render"),
    ("codegen.convert", "tidy", "tidy"),
    ("libcst", "parse_module", "libcst parse"),
    ("codegen.postprocess", "format_source", "black"),
    ("codegen.convert", "format_loader", "loader"),
    ("codegen.convert", "format_source", "loader black"),
]
ORDER = ["imports", *dict.fromkeys(stage for _, _, stage in STAGES), "other", "total"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # Linux: KiB


def _report(stage: str, seconds: float) -> None:
    """One JSON line per finished call, so a child stopped for time still tells its stages."""
    print(json.dumps([stage, seconds, _peak_mb()]), flush=True)


def measure(path: str, files: tuple[str, ...]) -> None:
    """Convert `path`, reporting each timed stage's own time (less the stages inside it)."""
    start = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import importlib

    import black  # noqa: F401  (postprocess imports it on its first call: an import, not black)

    import codegen.convert

    _report("imports", time.perf_counter() - start)
    inner = [0.0]  # time spent in timed calls below the current one

    def timed(fn, stage):
        def wrapper(*args, **kwargs):
            outer, inner[0] = inner[0], 0.0
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - began
                _report(stage, spent - inner[0])
                inner[0] = outer + spent

        return wrapper

    for module, name, stage in STAGES:
        mod = importlib.import_module(module)
        if hasattr(mod, name):  # an older graph2py may lack one
            setattr(mod, name, timed(getattr(mod, name), stage))
    began = time.perf_counter()
    codegen.convert.convert(path, files=files)
    _report("other", time.perf_counter() - began - inner[0])
    _report("total", time.perf_counter() - start)


# -- the parent -----------------------------------------------------------------------------------


def run_child(argv: list[str], timeout: float, max_mb: float) -> tuple[list, float, float, str]:
    """(reported lines, wall seconds, peak RSS MB from wait4, error or ""). A child past
    `timeout` seconds or `max_mb` of resident memory is stopped."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT)
        problem = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - began > timeout:
                problem = f"stopped after {timeout:g} s"
            elif _resident_mb(proc.pid) > max_mb:
                problem = f"stopped at {max_mb:g} MB"
            if problem:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        lines = [json.loads(line) for line in out.read().decode().splitlines() if line]
        if not problem and proc.returncode != 0:
            tail = err.read().decode(errors="replace").strip().splitlines()
            problem = (tail or [f"exit status {proc.returncode}"])[-1]
    return lines, wall, usage.ru_maxrss * 1024 / MB, problem


def _resident_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def parse_size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"from {', '.join(KINDS)}")
    ap.add_argument("--sizes", default="1k,10k,50k,200k", help="node counts, e.g. 1k,10k")
    ap.add_argument(
        "--files", default="model.py", help="what to write (model.py,load_weights.py as -o does)"
    )
    ap.add_argument("--timeout", type=float, default=600, help="seconds per conversion")
    ap.add_argument("--max-mb", type=float, default=6000, help="resident MB per conversion")
    ap.add_argument("--keep", metavar="DIR", help="keep the graphs here (default: temp dir)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child[0] == "build":
            print(build(args.child[1], int(args.child[2]), Path(args.child[3])))
        else:
            measure(args.child[1], tuple(args.child[2].split(",")))
        return

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if any(k not in KINDS for k in kinds):
        ap.error(f"--kinds: choose from {', '.join(KINDS)}")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    keep = Path(args.keep or tempfile.mkdtemp(prefix="graph2py-scale-"))
    keep.mkdir(parents=True, exist_ok=True)
    script = str(Path(__file__).resolve())
    print(f"graphs in {keep}; files: {args.files}; python {sys.version.split()[0]}\n")
    for kind in kinds:
        columns = []  # (label, nodes, {stage: seconds}, {stage: peak MB}, wall, rss, problem)
        for size in sizes:
            path = keep / f"{kind}_{size}.pb"
            built = subprocess.run(
                [sys.executable, script, "--child", "build", kind, str(size), str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            nodes = int(built.stdout)
            argv = [sys.executable, script, "--child", "measure", str(path), args.files]
            lines, wall, rss, problem = run_child(argv, args.timeout, args.max_mb)
            seconds: dict[str, float] = {}
            peaks: dict[str, float] = {}
            for stage, spent, peak in lines:
                seconds[stage] = seconds.get(stage, 0.0) + spent
                peaks[stage] = max(peaks.get(stage, 0.0), peak)
            label = f"{size // 1000}k" if size % 1000 == 0 else str(size)
            columns.append((label, nodes, seconds, peaks, wall, rss, problem))
            print(
                f"  {kind} {label}: {nodes} nodes, {wall:.1f} s, {rss:.0f} MB"
                + (f"  FAILED: {problem}" if problem else ""),
                file=sys.stderr,
                flush=True,
            )
        print_tables(kind, columns)


def print_tables(kind: str, columns: list) -> None:
    ratio_of = f"{columns[-1][0]}/{columns[-2][0]}" if len(columns) > 1 else ""
    head = f"{kind + ' (s)':<16}" + "".join(f"{c[0]:>10}" for c in columns) + f"{ratio_of:>10}"
    print(head)
    print("-" * len(head))

    def row(name: str, values: list, fmt: str) -> None:
        cells = "".join(f"{v:>10{fmt}}" if v is not None else f"{'-':>10}" for v in values)
        last = values[-2:] if len(values) > 1 else []
        ratio = f"{last[1] / last[0]:>10.2f}" if last and None not in last and last[0] else ""
        print(f"{name:<16}{cells}{ratio}")

    row("nodes", [c[1] for c in columns], "d")
    stages = [s for s in ORDER if any(s in c[2] for c in columns)]
    for stage in stages:
        row(stage, [c[2].get(stage) for c in columns], ".2f")
    row("wall (outside)", [c[4] for c in columns], ".2f")
    print()
    print(
        f"{kind + ' (peak MB)':<16}" + "".join(f"{c[0]:>10}" for c in columns) + f"{ratio_of:>10}"
    )
    print("-" * len(head))
    for stage in stages:
        row(stage, [c[3].get(stage) for c in columns], ".0f")
    row("peak (wait4)", [c[5] for c in columns], ".0f")
    for c in columns:
        if c[6]:
            print(f"{c[0]}: {c[6]}")
    print()


if __name__ == "__main__":
    main()
