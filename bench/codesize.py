"""How much code graph2py writes per keras.applications model, next to the Keras source by hand.

For every keras.applications model of the test zoo (tests/zoo.py APPLICATIONS), one row:

    model.py     code lines of the generated model.py (block functions and loops), and with
                 --flat (one flat build_model), against the issue-14 target
    keras        code lines of the hand-written source of the model's family in the installed
                 Keras (keras/src/applications/*.py; a file covers a whole family, e.g.
                 resnet.py is ResNet50, 101 and 152)
    loader       code lines of load_weights.py, the model's weight count, the lines beyond
                 one per weight (the helper code, and rows over one line), lines per weight,
                 against the target 1.2 lines per weight plus an 80-line helper
    identifiers  of the names model.py binds (variables, functions, classes, parameters): the
                 longest, the median length, and how many names (these and the layer names,
                 `name="..."`) hold `partitioned_call`, against the targets 40, 20 and none

Code lines (`code_lines`, one function for every file): physical lines holding a token other
than a comment, docstrings excluded, and a string spanning several lines counted once, on the
line it starts (Keras keeps its long documentation in such strings, `BASE_DOCSTRING = \"\"\"...`).

    python bench/codesize.py --cache /tmp/zoo
    python bench/codesize.py --cache /tmp/zoo --models mobilenetv2,resnet50 --wild

Each conversion runs `python -m codegen` of this checkout in a child process; missing zoo
models are built with TensorFlow in a child process too (bench/convert.py's ensure_model), and
`--wild` builds the graphs of tests/wild/ the same way (tests/wild/harness.py), converting each
with tensor names only, as tests/test_wild.py does, for the identifier columns.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]
import zoo  # noqa: E402  (only numpy at import time)
from convert import ensure_model  # noqa: E402  (bench/convert.py)

# zoo model -> its family's source files in keras/src/applications/
KERAS_SOURCES = {
    "mobilenet": ("mobilenet.py",),
    "mobilenetv2": ("mobilenet_v2.py",),
    "mobilenetv3small": ("mobilenet_v3.py",),
    "resnet50": ("resnet.py",),
    "resnet50v2": (
        "resnet.py",
        "resnet_v2.py",
    ),  # resnet_v2.py stacks resnet.py's stack_residual_blocks_v2
    "densenet121": ("densenet.py",),
    "inceptionv3": ("inception_v3.py",),
    "xception": ("xception.py",),
    "efficientnetb0": ("efficientnet.py",),
    "efficientnetv2b0": ("efficientnet_v2.py",),
    "nasnetmobile": ("nasnet.py",),
    "vgg16": ("vgg16.py",),
    "convnexttiny": ("convnext.py",),
}
# issue 14's reach: model.py code lines
MODEL_TARGETS = {
    "mobilenetv2": 120,
    "resnet50": 120,
    "densenet121": 120,
    "efficientnetb0": 160,
    "xception": 150,
    "inceptionv3": 250,
    "nasnetmobile": 300,
}
LOADER_PER_WEIGHT, LOADER_HELPER = 1.2, 80
LONGEST, MEDIAN = 40, 20
INLINED = "partitioned_call"
_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def code_lines(source: str) -> int:
    """Lines holding code: a token other than a comment, docstrings excluded, a string that
    spans lines counted on its first line only."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _NOT_CODE:
            continue
        last = token.start[0] if token.type == tokenize.STRING else token.end[0]
        lines.update(range(token.start[0], last + 1))
    return len(lines - docstrings)


@dataclass
class Names:
    longest: str
    median: float
    inlined: int  # bound names and layer names holding `partitioned_call`


def names(source: str) -> Names:
    """The names model.py binds (distinct), and its layer names for the `partitioned_call`
    count."""
    bound, layer_names = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg == "name":
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                layer_names.add(node.value.value)
    bound.discard("self")
    longest = max(sorted(bound), key=len, default="")
    median = statistics.median(len(n) for n in bound) if bound else 0.0
    inlined = sum(INLINED in n.lower() for n in bound | layer_names)
    return Names(longest, median, inlined)


def keras_directory() -> Path:
    """keras/src/applications of the installed Keras, found without importing Keras (which
    imports its backend)."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("keras is not installed: no hand-written sources to compare with")
    return Path(next(iter(spec.submodule_search_locations))) / "src" / "applications"


def graph2py(argv: list[str], out: Path) -> tuple[dict[str, str] | None, str]:
    """Run `python -m codegen ARGV -o OUT` of this checkout: ({file: source}, '') or (None,
    the last line of its stderr)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "codegen", *argv, "-o", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.py")}, ""


def weight_count(path: Path) -> int:
    """How many weights the model has: the spec's, as graph2py analyses the graph."""
    from codegen.analyze import analyze_file

    return sum(len(layer.weights) for layer in analyze_file(path).layers)


def mark(ok: bool | None) -> str:
    return "-" if ok is None else ("ok" if ok else "MISS")


def zoo_rows(models: list[str], cache: Path, work: Path) -> list[list[str]]:
    keras_dir = keras_directory()
    rows = []
    for name in models:
        error = ensure_model(name, cache)
        path = cache / f"{name}.pb"
        if error:
            rows.append([name, f"BUILD FAILED: {error}"])
            continue
        factored, problem = graph2py([str(path)], work / name)
        flat, flat_problem = graph2py([str(path), "--flat"], work / f"{name}-flat")
        if factored is None or flat is None:
            rows.append([name, f"CONVERT FAILED: {problem or flat_problem}"])
            continue
        model, flat_model = code_lines(factored["model.py"]), code_lines(flat["model.py"])
        keras = sum(code_lines((keras_dir / f).read_text()) for f in KERAS_SOURCES[name])
        loader = code_lines(factored["load_weights.py"])
        weights = weight_count(path)
        loader_target = LOADER_PER_WEIGHT * weights + LOADER_HELPER
        ids = names(factored["model.py"])
        target = MODEL_TARGETS.get(name)
        rows.append(
            [
                name,
                str(model),
                str(flat_model),
                f"{target or '-'}",
                mark(model <= target if target else None),
                str(keras),
                str(loader),
                str(weights),
                str(loader - weights),
                f"{loader / max(weights, 1):.1f}",
                f"{loader_target:.0f}",
                mark(loader <= loader_target if weights else None),
                *identifier_cells(ids),
            ]
        )
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return rows


def identifier_cells(ids: Names) -> list[str]:
    ok = len(ids.longest) <= LONGEST and ids.median <= MEDIAN and not ids.inlined
    return [str(len(ids.longest)), f"{ids.median:g}", str(ids.inlined), mark(ok)]


_BUILD_WILD = """
import json, sys
from pathlib import Path
from tests.wild import harness
out = Path(sys.argv[1])
for name in sys.argv[2:] or harness.names():
    try:
        built = harness.build(name, out)
        argv = harness.arguments(built, out / "OUT")
        at = argv.index("-o")
        print(json.dumps({"name": name, "argv": argv[:at] + argv[at + 2 :]}), flush=True)
    except Exception as err:  # a measurement: report and go on
        print(json.dumps({"name": name, "error": f"{type(err).__name__}: {err}"}), flush=True)
"""


def wild_rows(cache: Path, work: Path) -> list[list[str]]:
    """Identifier statistics over tests/wild/'s graphs, built in a child process (TensorFlow)
    into CACHE/wild/ unless there already (NAME.pb with its command line in NAME.json)."""
    directory = cache / "wild"
    directory.mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(
        [sys.executable, "-c", "from tests.wild import harness; print(*harness.names())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wanted = listing.stdout.split()
    missing = [n for n in wanted if not (directory / f"{n}.json").exists()]
    if missing:
        print(f"building {len(missing)} wild graphs ...", file=sys.stderr, flush=True)
        built = subprocess.run(
            [sys.executable, "-c", _BUILD_WILD, str(directory), *missing],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        for line in built.stdout.splitlines():
            entry = json.loads(line)
            if "argv" in entry:
                (directory / f"{entry['name']}.json").write_text(json.dumps(entry["argv"]))
            else:
                print(f"  {entry['name']}: {entry['error']}", file=sys.stderr)
    rows = []
    for name in wanted:
        argv_file = directory / f"{name}.json"
        if not argv_file.exists():
            rows.append([name, "BUILD FAILED"])
            continue
        files, problem = graph2py(json.loads(argv_file.read_text()), work / f"wild-{name}")
        if files is None:
            rows.append([name, f"CONVERT FAILED: {problem}"])
            continue
        ids = names(files["model.py"])
        rows.append([name, str(code_lines(files["model.py"])), *identifier_cells(ids)])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows] if len(r) > i) for i in range(len(header))]
    lines = []
    for row in [header, None, *rows]:
        if row is None:
            lines.append("-" * (sum(widths) + 2 * len(widths)))
        elif len(row) == 2 and len(header) > 2:  # a failure: the name and what went wrong
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]}")
        else:
            cells = [f"{row[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(row[1:], widths[1:])]
            lines.append("  ".join(cells))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models", default=",".join(zoo.APPLICATIONS), help="comma-separated zoo names"
    )
    ap.add_argument("--cache", metavar="DIR", help="where .pb files are kept (default: temp dir)")
    ap.add_argument("--wild", action="store_true", help="identifier statistics of tests/wild/ too")
    args = ap.parse_args()
    models = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in models if n not in zoo.APPLICATIONS]
    if unknown:
        ap.error(f"not keras.applications models of the zoo: {unknown}")
    cache = Path(args.cache or tempfile.mkdtemp(prefix="graph2py-zoo-"))
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graph2py-codesize-") as work:
        rows = zoo_rows(models, cache, Path(work))
        print("code lines: non-blank, non-comment, docstrings excluded (bench/codesize.py)\n")
        header = ["model", "model.py", "--flat", "target", "", "keras", "loader", "weights"]
        header += ["beyond", "/weight", "target", "", "longest", "median", INLINED, ""]
        print(table(header, rows))
        print(
            f"\ntargets: model.py as listed; loader <= {LOADER_PER_WEIGHT} lines per weight + "
            f"{LOADER_HELPER}; identifiers: longest <= {LONGEST}, median <= {MEDIAN}, "
            f"none holding {INLINED}"
        )
        if args.wild:
            rows = wild_rows(cache, Path(work))
            print("\nwild graphs (tests/wild/), converted with tensor names only\n")
            header = ["graph", "model.py", "longest", "median", INLINED, ""]
            print(table(header, rows))


if __name__ == "__main__":
    main()
