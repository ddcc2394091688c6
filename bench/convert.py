"""Benchmark graph2py conversions of the test zoo: wall and CPU time, peak RSS, protobuf parse
time, and tf2onnx's time on the same file.

This is a script, not a test. Timing assertions in unit tests are flaky on shared, noisy machines
(CI runners, 2-core boxes running other suites), so speed is measured here and read by a person.
Absolute numbers drift from run to run; compare the ratios within one run instead, above all
conversion time / protobuf parse time of the same file, which cancels most machine speed.

    python bench/convert.py --models mobilenetv2,resnet50,vgg16 --repeat 5 --cache /tmp/zoo

Missing models are built with TensorFlow in a subprocess (tests/zoo.py), so TensorFlow's memory
never touches this process or the measurements; `--cache DIR` keeps the .pb files for reuse.
The children import the codegen of this checkout (its root is put first on PYTHONPATH).

CPU time is user + system time of the whole child process, from the resource usage os.wait4
returns for it: the figures `/usr/bin/time -v` prints (it reads them the same way), without a
wrapper process. Unlike wall time it hardly depends on what else the machine runs, so it is the
figure to compare across runs; the median of --repeat runs is shown.

Where PYTHONDONTWRITEBYTECODE is set, a source checkout's codegen is compiled anew at every
start (about 0.07 s of CPU), which an installed wheel's is not (pip compiles it at install).
`--bytecode installed` measures graph2py as installed: its children read bytecode from a
temporary PYTHONPYCACHEPREFIX that one unmeasured run fills.

`--tf2onnx MODELS` (default mobilenetv2) also converts those models once with tf2onnx
(`python -m tf2onnx.convert --graphdef X.pb --inputs ... --outputs ...`, the tensors graph2py's
inspect names) and prints both converters' times and their ratio. tf2onnx is no dependency of
graph2py: install it for the benchmark (`pip install tf2onnx`); without it the pairing is
skipped, saying so.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import zoo  # noqa: E402  (only numpy at import time; TensorFlow is imported inside builders)

# model -> max conversion seconds; each must also peak at most 2 x file size + 300 MB of RSS.
TARGETS = {"mobilenetv2": 1.0, "resnet50": 2.0, "vgg16": 4.0}
# model -> (max CPU seconds of `graph2py X.pb > model.py`, min tf2onnx CPU time / graph2py's)
CPU_TARGETS = {"mobilenetv2": (0.6, 8.0)}
MB = 1e6
# Does anything named tensorflow (or tensorflow.*) sit in sys.modules? Appended to child scripts.
TF_PROBE = "print(any(m.split('.')[0] == 'tensorflow' for m in sys.modules))"


# the children import this checkout's codegen, whatever the editable install points at
CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}


def graph2py_command() -> list[str]:
    """The real console script next to this interpreter, skipping shims (pyenv adds ~0.1 s)."""
    script = Path(sys.executable).parent / "graph2py"
    if script.exists():
        return [str(script)]
    found = shutil.which("graph2py")
    return [found] if found else [sys.executable, "-m", "codegen.cli"]


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss: float  # peak resident MB
    code: int  # exit code
    stderr: str


def run_measured(argv: list[str], env: dict[str, str] = CHILD_ENV) -> Run:
    """Run argv with stdout to /dev/null: its wall and CPU time, peak RSS, exit code, stderr.

    Peak RSS comes from os.wait4, which returns the resource usage of that one child (and its
    waited-for descendants) rather than RUSAGE_CHILDREN's running maximum over every child this
    process ever reaped. It needs no wrapper process whose own startup would be measured, no
    /usr/bin/time, and it survives exec (a shim exec-ing python keeps the high-water mark).
    """
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss * 1024 / MB, proc.returncode, stderr)  # KiB on Linux


_PARSE = """
import statistics, sys, time
from tensorboard.compat.proto import graph_pb2
data = open(sys.argv[1], "rb").read()
times = []
for _ in range(int(sys.argv[2])):
    graph = graph_pb2.GraphDef()
    start = time.perf_counter()
    graph.ParseFromString(data)
    times.append(time.perf_counter() - start)
    del graph
print(statistics.median(times))
"""


def parse_seconds(path: Path, repeat: int) -> float:
    """Median time of GraphDef.ParseFromString on the file's bytes, timed in a child process:
    Linux carries a process's peak RSS across fork and exec, so parsing a 500 MB graph in this
    process would inflate the peak RSS reported for every conversion measured after it."""
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, str(path), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def ensure_model(name: str, cache: Path) -> str | None:
    """Build cache/NAME.pb unless present; the build's last stderr line if it failed."""
    if (cache / f"{name}.pb").exists():
        return None
    print(f"building {name} ...", file=sys.stderr, flush=True)
    argv = [sys.executable, str(ROOT / "tests" / "zoo.py"), str(cache), name]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0:
        return None
    return (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]


def tensorflow_checks(models: list[Path]) -> tuple[str, str, str]:
    """Does `graph2py --help`, or converting the smallest model, import TensorFlow? Fresh pythons."""
    help_code = (
        "import sys, contextlib, io, codegen.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    codegen.cli.main(['--help'])\n"
    )
    model = min(models, key=lambda p: p.stat().st_size) if models else None
    codes = [help_code]
    if model:
        codes.append(f"import sys\nfrom codegen.convert import convert\nconvert({str(model)!r})\n")
    answers = []
    for code in codes:
        out = subprocess.run(
            [sys.executable, "-c", code + TF_PROBE], capture_output=True, text=True, env=CHILD_ENV
        )
        last = out.stdout.strip().splitlines()[-1:] or ["?"]
        verdict = {"True": "yes", "False": "no"}.get(last[0])
        answers.append(verdict or f"? ({(out.stderr.strip().splitlines() or ['no output'])[-1]})")
    if not model:
        return answers[0], "not checked (no model converted)", "-"
    return answers[0], answers[1], model.name


def bytecode_env(how: str, cmd: list[str], path: Path | None) -> tuple[dict[str, str], str]:
    """The environment of the measured graph2py runs, and a line saying how codegen's bytecode
    is had."""
    if how == "installed":
        prefix = tempfile.mkdtemp(prefix="graph2py-bytecode-")
        atexit.register(shutil.rmtree, prefix, ignore_errors=True)
        env = {**CHILD_ENV, "PYTHONPYCACHEPREFIX": prefix}
        warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        run_measured(cmd + ([str(path)] if path else ["--help"]), warm)
        return env, f"bytecode: read from {prefix}, as an installed wheel's (--bytecode installed)"
    if (
        os.environ.get("PYTHONDONTWRITEBYTECODE")
        and not (ROOT / "codegen" / "__pycache__").exists()
    ):
        return (
            CHILD_ENV,
            "bytecode: codegen compiled at every start (PYTHONDONTWRITEBYTECODE is set)",
        )
    return CHILD_ENV, "bytecode: as Python finds it (__pycache__)"


def tensor_names(cmd: list[str], path: Path) -> tuple[list[str], list[str]]:
    """The graph's input and output tensors, as `graph2py inspect --json` names them."""
    out = subprocess.run(
        cmd + ["inspect", str(path), "--json"], capture_output=True, text=True, env=CHILD_ENV
    )
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip().splitlines() or ["inspect failed"])[-1])
    facts = json.loads(out.stdout)
    return [t["name"] for t in facts["inputs"]], [t["name"] for t in facts["outputs"]]


def tf2onnx_run(cmd: list[str], path: Path) -> Run:
    """One tf2onnx conversion of the frozen graph, the tensors graph2py finds given to it."""
    inputs, outputs = tensor_names(cmd, path)
    with tempfile.TemporaryDirectory(prefix="graph2py-tf2onnx-") as tmp:
        argv = [sys.executable, "-m", "tf2onnx.convert", "--graphdef", str(path)]
        argv += ["--inputs", ",".join(inputs), "--outputs", ",".join(outputs)]
        return run_measured(argv + ["--output", str(Path(tmp) / "model.onnx")])


def first_line(run: Run) -> str:
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {run.code}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(zoo.ALL), help="comma-separated zoo names")
    ap.add_argument("--cache", metavar="DIR", help="where .pb files are kept (default: temp dir)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    ap.add_argument(
        "--tf2onnx",
        metavar="MODELS",
        default="mobilenetv2",
        help="comma-separated models (of --models) to convert once with tf2onnx too; '' for none",
    )
    ap.add_argument(
        "--bytecode",
        choices=("as-is", "installed"),
        default="as-is",
        help="codegen's bytecode as this checkout has it, or cached as an installed wheel's",
    )
    args = ap.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in zoo.ALL]
    if unknown:
        ap.error(f"unknown models {unknown}; choose from {', '.join(zoo.ALL)}")
    paired = [n.strip() for n in args.tf2onnx.split(",") if n.strip() in names]
    cache = Path(args.cache or tempfile.mkdtemp(prefix="graph2py-zoo-"))
    cache.mkdir(parents=True, exist_ok=True)
    paths = {name: cache / f"{name}.pb" for name in names}
    build_errors = {name: ensure_model(name, cache) for name in names}

    from google.protobuf.internal import api_implementation

    cmd = graph2py_command()
    smallest = min(
        (paths[n] for n in names if not build_errors[n]),
        key=lambda p: p.stat().st_size,
        default=None,
    )
    env, bytecode = bytecode_env(args.bytecode, cmd, smallest)
    print(f"graph2py: {' '.join(cmd)} (codegen from {ROOT})")
    print(f"protobuf backend: {api_implementation.Type()}; {bytecode}")
    print(f"median of {args.repeat} runs; CPU = user + sys (os.wait4 rusage); cache {cache}\n")
    header = (
        f"{'model':<18}{'size MB':>9}{'convert s':>11}{'CPU s':>8}{'peak RSS MB':>13}"
        f"{'parse ms':>10}{'conv/parse':>12}  target"
    )
    print(header)
    print("-" * len(header))
    converted = {}
    for name, path in paths.items():
        if build_errors[name]:
            print(f"{name:<18}{'-':>9}  BUILD FAILED: {build_errors[name]}", flush=True)
            continue
        size = path.stat().st_size / MB
        runs = [run_measured(cmd + [str(path)], env) for _ in range(args.repeat)]
        failed = next((r for r in runs if r.code != 0), None)
        if failed:
            print(f"{name:<18}{size:>9.1f}  FAILED: {first_line(failed)}", flush=True)
            continue
        converted[name] = runs
        wall = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        rss = max(r.rss for r in runs)
        parse = parse_seconds(path, args.repeat)
        verdict = ""
        if name in TARGETS:
            over = {"time": wall > TARGETS[name], "RSS": rss > 2 * size + 300}
            misses = [what for what, bad in over.items() if bad]
            verdict = f"MISS ({', '.join(misses)})" if misses else "ok"
        print(
            f"{name:<18}{size:>9.1f}{wall:>11.3f}{cpu:>8.3f}{rss:>13.0f}"
            f"{parse * 1e3:>10.2f}{wall / parse:>12.1f}  {verdict}",
            flush=True,
        )

    if paired:
        pair_table(cmd, paths, converted, paired)

    helps = [run_measured(cmd + ["--help"], env) for _ in range(args.repeat)]
    print(
        f"\ngraph2py --help: {statistics.median(h.wall for h in helps):.3f} s, "
        f"CPU {statistics.median(h.cpu for h in helps):.3f} s"
    )
    on_help, on_convert, model = tensorflow_checks([paths[n] for n in converted])
    print(f"tensorflow imported by --help: {on_help}")
    print(f"tensorflow imported by convert({model}): {on_convert}")
    print("\nreach targets: " + ", ".join(f"{m} <= {s:g} s" for m, s in TARGETS.items()))
    print("  each with peak RSS <= 2 x file size + 300 MB (rows marked ok/MISS)")
    print(
        "  "
        + ", ".join(
            f"{m}: CPU <= {cpu:g} s and >= {ratio:g}x faster than tf2onnx"
            for m, (cpu, ratio) in CPU_TARGETS.items()
        )
    )


def pair_table(cmd: list[str], paths: dict, converted: dict, paired: list[str]) -> None:
    """graph2py's medians next to one tf2onnx conversion of each paired model."""
    print("\ngraph2py (median) vs tf2onnx (one run) on the same file")
    if importlib.util.find_spec("tf2onnx") is None:
        print("  skipped: tf2onnx is not installed (pip install tf2onnx; no graph2py dependency)")
        return
    header = (
        f"{'model':<18}{'graph2py CPU':>13}{'tf2onnx CPU':>12}{'ratio':>7}"
        f"{'graph2py s':>11}{'tf2onnx s':>10}{'ratio':>7}  target"
    )
    print(header)
    print("-" * len(header))
    for name in paired:
        if name not in converted:
            print(f"{name:<18}  graph2py did not convert it")
            continue
        try:
            other = tf2onnx_run(cmd, paths[name])
        except RuntimeError as err:
            print(f"{name:<18}  tf2onnx not run: {err}")
            continue
        if other.code != 0:
            print(f"{name:<18}  tf2onnx FAILED: {first_line(other)}")
            continue
        runs = converted[name]
        cpu = statistics.median(r.cpu for r in runs)
        wall = statistics.median(r.wall for r in runs)
        verdict = ""
        if name in CPU_TARGETS:
            most, least = CPU_TARGETS[name]
            misses = [
                w for w, bad in (("CPU", cpu > most), ("ratio", other.cpu / cpu < least)) if bad
            ]
            verdict = f"MISS ({', '.join(misses)})" if misses else "ok"
        print(
            f"{name:<18}{cpu:>13.3f}{other.cpu:>12.3f}{other.cpu / cpu:>7.1f}"
            f"{wall:>11.3f}{other.wall:>10.3f}{other.wall / wall:>7.1f}  {verdict}",
            flush=True,
        )


if __name__ == "__main__":
    main()
