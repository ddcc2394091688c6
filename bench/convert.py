"""Benchmark graph2py conversions of the test zoo: wall time, peak RSS, and protobuf parse time.

This is a script, not a test. Timing assertions in unit tests are flaky on shared, noisy machines
(CI runners, 2-core boxes running other suites), so speed is measured here and read by a person.
Absolute numbers drift from run to run; compare the ratios within one run instead, above all
conversion time / protobuf parse time of the same file, which cancels most machine speed.

    python bench/convert.py --models mobilenetv2,resnet50,vgg16 --repeat 5 --cache /tmp/zoo

Missing models are built with TensorFlow in a subprocess (tests/zoo.py), so TensorFlow's memory
never touches this process or the measurements; `--cache DIR` keeps the .pb files for reuse.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import zoo  # noqa: E402  (only numpy at import time; TensorFlow is imported inside builders)

# model -> max conversion seconds; each must also peak at most 2 x file size + 300 MB of RSS.
TARGETS = {"mobilenetv2": 1.0, "resnet50": 2.0, "vgg16": 4.0}
MB = 1e6
# Does anything named tensorflow (or tensorflow.*) sit in sys.modules? Appended to child scripts.
TF_PROBE = "print(any(m.split('.')[0] == 'tensorflow' for m in sys.modules))"


def graph2py_command() -> list[str]:
    """The real console script next to this interpreter, skipping shims (pyenv adds ~0.1 s)."""
    script = Path(sys.executable).parent / "graph2py"
    if script.exists():
        return [str(script)]
    found = shutil.which("graph2py")
    return [found] if found else [sys.executable, "-m", "codegen.cli"]


def run_measured(argv: list[str]) -> tuple[float, float, int, str]:
    """Run argv with stdout to /dev/null: (wall seconds, peak RSS MB, exit code, stderr).

    Peak RSS comes from os.wait4, which returns the resource usage of that one child (and its
    waited-for descendants) rather than RUSAGE_CHILDREN's running maximum over every child this
    process ever reaped. It needs no wrapper process whose own startup would be measured, no
    /usr/bin/time, and it survives exec (a shim exec-ing python keeps the high-water mark).
    """
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return wall, usage.ru_maxrss * 1024 / MB, proc.returncode, stderr  # Linux: ru_maxrss in KiB


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
            [sys.executable, "-c", code + TF_PROBE], capture_output=True, text=True
        )
        last = out.stdout.strip().splitlines()[-1:] or ["?"]
        verdict = {"True": "yes", "False": "no"}.get(last[0])
        answers.append(verdict or f"? ({(out.stderr.strip().splitlines() or ['no output'])[-1]})")
    if not model:
        return answers[0], "not checked (no model converted)", "-"
    return answers[0], answers[1], model.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(zoo.ALL), help="comma-separated zoo names")
    ap.add_argument("--cache", metavar="DIR", help="where .pb files are kept (default: temp dir)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = ap.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in zoo.ALL]
    if unknown:
        ap.error(f"unknown models {unknown}; choose from {', '.join(zoo.ALL)}")
    cache = Path(args.cache or tempfile.mkdtemp(prefix="graph2py-zoo-"))
    cache.mkdir(parents=True, exist_ok=True)
    paths = {name: cache / f"{name}.pb" for name in names}
    build_errors = {name: ensure_model(name, cache) for name in names}

    from google.protobuf.internal import api_implementation

    cmd = graph2py_command()
    print(f"graph2py: {' '.join(cmd)} | protobuf backend: {api_implementation.Type()}")
    print(f"median of {args.repeat} runs; cache {cache}\n")
    header = (
        f"{'model':<18}{'size MB':>9}{'convert s':>11}{'peak RSS MB':>13}"
        f"{'parse ms':>10}{'conv/parse':>12}  target"
    )
    print(header)
    print("-" * len(header))
    converted = []
    for name, path in paths.items():
        if build_errors[name]:
            print(f"{name:<18}{'-':>9}  BUILD FAILED: {build_errors[name]}", flush=True)
            continue
        size = path.stat().st_size / MB
        runs = [run_measured(cmd + [str(path)]) for _ in range(args.repeat)]
        failed = next((r for r in runs if r[2] != 0), None)
        if failed:
            first = (failed[3].strip().splitlines() or [f"exit code {failed[2]}"])[0]
            print(f"{name:<18}{size:>9.1f}  FAILED: {first}", flush=True)
            continue
        converted.append(path)
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        parse = parse_seconds(path, args.repeat)
        verdict = ""
        if name in TARGETS:
            over = {"time": wall > TARGETS[name], "RSS": rss > 2 * size + 300}
            misses = [what for what, bad in over.items() if bad]
            verdict = f"MISS ({', '.join(misses)})" if misses else "ok"
        print(
            f"{name:<18}{size:>9.1f}{wall:>11.3f}{rss:>13.0f}"
            f"{parse * 1e3:>10.2f}{wall / parse:>12.1f}  {verdict}",
            flush=True,
        )

    helps = [run_measured(cmd + ["--help"]) for _ in range(args.repeat)]
    print(f"\ngraph2py --help: {statistics.median(h[0] for h in helps):.3f} s")
    on_help, on_convert, model = tensorflow_checks(converted)
    print(f"tensorflow imported by --help: {on_help}")
    print(f"tensorflow imported by convert({model}): {on_convert}")
    print("\nreach targets: " + ", ".join(f"{m} <= {s:g} s" for m, s in TARGETS.items()))
    print("  each with peak RSS <= 2 x file size + 300 MB (rows marked ok/MISS)")


if __name__ == "__main__":
    main()
