"""Golden cases, in the manner of Black's: each `tests/cases/NAME.pbtxt` converts to exactly
`NAME.model.py` and `NAME.load_weights.py` beside it. No TensorFlow: the converter never needs
it, and these tests prove it (see test_runs_without_tensorflow).

A case file opens with comments saying what it covers; a comment `# graph2py: OPTIONS` among
them gives command-line options (--inputs, --outputs, --io-layout), parsed by the CLI's own
parser. The graphs are written by tests/cases/make.py.

New behaviour = a new case: add a function to tests/cases/make.py, run it, then write the
expected files and read them:

    python tests/cases/make.py NAME
    python tests/test_cases.py --update [NAME ...]     (or GRAPH2PY_UPDATE_CASES=1 pytest ...)
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
FILES = ("model.py", "load_weights.py")
OPTIONS = "# graph2py:"
UPDATE = os.environ.get("GRAPH2PY_UPDATE_CASES") == "1"
BLOCKED = ROOT / "tests" / "no_tensorflow"  # a `tensorflow` package that refuses to import


def names() -> list[str]:
    return sorted(path.stem for path in CASES.glob("*.pbtxt"))


def header(path: Path) -> list[str]:
    """The comment lines a case file opens with."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def options(path: Path) -> list[str]:
    """The command-line options of the case's `# graph2py:` comment."""
    found = [line[len(OPTIONS) :] for line in header(path) if line.startswith(OPTIONS)]
    return shlex.split(found[0]) if found else []


def convert_case(name: str) -> dict[str, str]:
    """{file name: source} as `graph2py CASE.pbtxt OPTIONS -o DIR` would write them."""
    from codegen.cli import parser
    from codegen.convert import convert
    from codegen.options import Options

    path = CASES / f"{name}.pbtxt"
    args = parser().parse_args([str(path), *options(path)])
    _, files = convert(path, Options.from_args(args))
    return files


def expected_path(name: str, file: str) -> Path:
    return CASES / f"{name}.{file}"


def update(name: str) -> None:
    for file, source in convert_case(name).items():
        expected_path(name, file).write_text(source, encoding="utf-8")


@pytest.mark.parametrize("name", names())
def test_case(name):
    if UPDATE:
        update(name)
    files = convert_case(name)
    assert tuple(files) == FILES
    for file, source in files.items():
        path = expected_path(name, file)
        expected = path.read_text(encoding="utf-8") if path.exists() else ""
        if source != expected:
            diff = difflib.unified_diff(
                expected.splitlines(keepends=True),
                source.splitlines(keepends=True),
                f"{path.name} (expected)",
                f"{path.name} (converted)",
            )
            pytest.fail(
                f"{name}: {file} differs from {path.relative_to(ROOT)}; if the change is "
                f"intended, run `python tests/test_cases.py --update {name}`\n" + "".join(diff),
                pytrace=False,
            )
        compile(source, path.name, "exec")


def test_there_are_cases():
    assert len(names()) >= 30


@pytest.mark.parametrize("name", names())
def test_case_says_what_it_covers(name):
    """The file opens with a description, not with the options or the graph."""
    lines = header(CASES / f"{name}.pbtxt")
    assert lines and lines[0].startswith("# ") and not lines[0].startswith(OPTIONS)


def test_no_expected_file_without_its_case():
    """Expected outputs of a case that was renamed or removed would never be compared."""
    stale = [
        path.name
        for path in CASES.glob("*.py")
        if path.name != "make.py" and path.name.split(".")[0] not in names()
    ]
    assert not stale


def test_case_graphs_are_what_make_writes():
    """The committed graphs are tests/cases/make.py's: a case is edited there, not by hand
    (a hand-written .pbtxt that make.py does not know is fine)."""
    spec = importlib.util.spec_from_file_location("cases_make", CASES / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    differ = [
        name
        for name in make.CASES
        if (CASES / f"{name}.pbtxt").read_text(encoding="utf-8") != make.build(name)
    ]
    missing = [name for name in make.CASES if not (CASES / f"{name}.pbtxt").exists()]
    assert (
        not differ and not missing
    ), f"rewrite with `python tests/cases/make.py {' '.join(differ + missing)}`"


def tensorflow_blocked() -> bool:
    """Whether `import tensorflow` would import the blocking package (this is that run)."""
    spec = importlib.util.find_spec("tensorflow")
    return spec is not None and BLOCKED in Path(spec.origin).parents


@pytest.mark.skipif(tensorflow_blocked(), reason="this is the run without TensorFlow")
def test_runs_without_tensorflow():
    """The golden cases and the pass tests pass with TensorFlow impossible to import."""
    result, seconds = run_without_tensorflow(
        "tests/test_cases.py",
        "tests/test_passes.py",
        "tests/test_optable.py",
        "tests/test_recipes.py",
        "tests/test_blocks.py",
        "tests/test_diff.py",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "error" not in result.stdout.splitlines()[-1]
    print(f"without TensorFlow: {result.stdout.splitlines()[-1]} ({seconds:.1f} s)")


def run_without_tensorflow(*tests: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BLOCKED), str(ROOT)])}
    env.pop("GRAPH2PY_UPDATE_CASES", None)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    return result, time.perf_counter() - start


def test_tensorflow_is_blocked_in_that_run():
    """The blocking package works: importing TensorFlow with it on the path fails."""
    env = {**os.environ, "PYTHONPATH": str(BLOCKED)}
    result = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0 and "TensorFlow is blocked in this run" in result.stderr


def main(argv: list[str]) -> None:
    """`--update [NAME ...]`: rewrite the expected files of every case (or of NAME...)."""
    if not argv or argv[0] != "--update":
        raise SystemExit(f"usage: python {Path(__file__).name} --update [NAME ...]")
    sys.path.insert(0, str(ROOT))  # this worktree's converter, not an installed one
    for name in argv[1:] or names():
        update(name)
        print(f"updated {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
