"""The command line's contract, checked on every fuzz case (tests/fuzz_cases.py) by
bench/fuzz.py and tests/test_fuzz.py:

- the exit code is 0, 2, 3 or 4 (70 is a bug: an exception graph2py did not expect);
- when it is not 0, stderr is one or more lines, each `graph2py: error: ...` (warnings found
  before the failure, `graph2py: warning: ...`, may precede them), printable (no control
  character, no escape sequence, no line separator inside), and holds no traceback;
- nothing is half-written: a failed run leaves every file and directory of the case as it found
  it (the output directory not created, an earlier model.py not replaced), and a successful
  one changes only DIR/model.py and DIR/load_weights.py (and creates DIR);
- nothing is written to the working directory;
- when it is 0, both generated files compile, and a sample of them imports in a separate
  process (ImportCheck) without creating anything in its working directory: no text from the
  graph ran (the marker check of tests/test_payloads.py).

`graph2py` runs in-process (`codegen.cli.main`), its stdout and stderr captured: a process per
case would cost a second of interpreter start-up each. A case that runs too long is stopped by
the caller's SIGALRM, raised as CaseTimeout, which derives from BaseException so that the CLI's
own `except Exception` (exit 70) does not take it for a bug.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fuzz_cases import Case, materialise, remove

PREFIX = "graph2py: error: "
WARNING = "graph2py: warning: "
EXIT_CODES = {0, 2, 3, 4}
GENERATED = ("model.py", "load_weights.py")


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case that ran too long (not an Exception: see above)."""


@dataclass
class Outcome:
    code: int
    stderr: str
    violations: list[str] = field(default_factory=list)
    out: Path | None = None  # the -o directory, when the run succeeded


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: its kind, and a regular file's bytes (what "as it found it"
    compares). Never opens anything but regular files."""
    entries: dict[str, tuple] = {}

    def visit(path: Path, rel: str) -> None:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return
        if stat.S_ISREG(mode):
            try:
                entries[rel] = ("file", path.read_bytes())
            except OSError as err:
                entries[rel] = ("unreadable file", err.errno)
        elif stat.S_ISDIR(mode):
            entries[rel] = ("dir",)
            try:
                children = sorted(os.listdir(path))
            except OSError:
                return
            for child in children:
                visit(path / child, f"{rel}/{child}")
        elif stat.S_ISLNK(mode):
            entries[rel] = ("link", os.readlink(path))
        else:
            entries[rel] = ("other", stat.S_IFMT(mode))

    visit(root, ".")
    return entries


def run_case(case: Case, root: Path, debug: bool = False) -> Outcome:
    """Write the case under `root`, run `graph2py` on it in-process and check the contract.
    `debug` adds --debug, so that an internal error raises with its traceback."""
    from codegen import cli

    argv, out = materialise(case, root)
    if debug:
        argv.append("--debug")
    before = snapshot(root)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(argv)
        except SystemExit as exit:  # argparse
            code = exit.code if isinstance(exit.code, int) else 1
    after = snapshot(root)
    outcome = Outcome(code, stderr.getvalue())
    outcome.violations = check(code, stdout.getvalue(), outcome.stderr, before, after, root, out)
    if code == 0 and not outcome.violations:
        outcome.out = out
    return outcome


def check(code, stdout, stderr, before, after, root: Path, out: Path) -> list[str]:
    problems = []
    if code not in EXIT_CODES:
        problems.append(f"exit code {code}")
    if stdout:
        problems.append(f"stdout not empty with -o: {stdout[:80]!r}")
    lines = stderr.splitlines()
    if "Traceback" in stderr:
        problems.append("a traceback on stderr")
    if any(not line.isprintable() for line in lines) or stderr.count("\n") != len(lines):
        problems.append(f"unprintable text on stderr: {stderr[:200]!r}")
    if code != 0:
        if not any(line.startswith(PREFIX) for line in lines):
            problems.append("no error line")
        bad = [line for line in lines if not line.startswith((PREFIX, WARNING))]
        if bad:
            problems.append(f"a line that is no error line: {bad[0][:120]!r}")
        if before != after:
            problems.append(f"exit {code} changed files: {_difference(before, after)}")
    else:
        bad = [line for line in lines if not line.startswith("graph2py: ")]
        if bad:
            problems.append(f"stray stderr on success: {bad[0][:120]!r}")
        problems += _written(before, after, root, out)
    return problems


def _difference(before: dict, after: dict) -> str:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ", ".join(repr(k) for k in changed[:4])


def _written(before: dict, after: dict, root: Path, out: Path) -> list[str]:
    """After exit 0: both files are regular files that compile; nothing else changed but DIR and
    the parents it needed."""
    problems = []
    rel = "./" + str(out.relative_to(root))
    allowed = {f"{rel}/{name}" for name in GENERATED}
    parent = rel
    while parent != ".":
        if parent not in before:
            allowed.add(parent)
        parent = parent.rsplit("/", 1)[0]
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    if changed - allowed:
        problems.append(f"exit 0 changed more than the two files: {sorted(changed - allowed)[:4]}")
    for name in GENERATED:
        entry = after.get(f"{rel}/{name}")
        if entry is None or entry[0] != "file":
            problems.append(f"exit 0 without a regular {name}")
            continue
        try:
            compile(entry[1].decode("utf-8"), name, "exec")
        except (SyntaxError, ValueError, UnicodeDecodeError) as err:
            problems.append(f"{name} does not compile: {type(err).__name__}: {err}")
    return problems


# -- importing a sample of the generated files ----------------------------------------------------

WORKER = r"""
import importlib.util, json, os, sys
import keras  # once: every job then imports in milliseconds
print("ready", flush=True)
for n, line in enumerate(sys.stdin):
    job = json.loads(line)
    os.chdir(job["cwd"])
    error = None
    sys.path.insert(0, job["dir"])
    try:
        for i, path in enumerate(job["files"]):
            name = "graph2py_fuzz_%d_%d" % (n, i)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            finally:
                sys.modules.pop(name, None)
    except BaseException as err:
        error = "%s: %s" % (type(err).__name__, err)
    finally:
        sys.path.remove(job["dir"])
        sys.modules.pop("model", None)
    print(json.dumps({"error": error, "created": sorted(os.listdir(job["cwd"]))}), flush=True)
"""


class ImportCheck:
    """A process that imports generated files on request (keras imported once, on its numpy
    backend: a fraction of TensorFlow's memory) from an empty working directory, and says whether
    that raised or created anything there."""

    def __init__(self, limit_bytes: int | None = None):
        self.limit_bytes = limit_bytes
        self.process = None
        self.imported = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            # importing defines classes and functions only: the lightest backend will do
            env={**os.environ, "KERAS_BACKEND": "numpy", "PYTHONDONTWRITEBYTECODE": "1"},
            preexec_fn=self._unlimited,
        )
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("the import worker did not start")

    def _unlimited(self) -> None:
        """The campaign caps its own address space; TensorFlow's import reserves more."""
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def check(self, out: Path, scratch: Path) -> list[str]:
        """Violations found importing DIR/model.py and DIR/load_weights.py from `scratch`."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        scratch.mkdir()
        job = {"cwd": str(scratch), "dir": str(out), "files": [str(out / n) for n in GENERATED]}
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
            reply = self.process.stdout.readline()
        except BaseException:
            self.stop()  # a timeout while it imported: its state is unknown
            raise
        self.imported += 1
        if not reply:
            self.stop()
            return ["the import worker died importing the generated files"]
        result = json.loads(reply)
        problems = []
        if result["error"]:
            problems.append(f"importing the generated files raised {result['error'][:160]}")
        if result["created"]:
            problems.append(f"importing the generated files created {result['created']}: CODE RAN")
        return problems


def run_and_clean(case: Case, root: Path, importer: ImportCheck | None = None) -> Outcome:
    """run_case, the import check when `importer` is given and the run succeeded, then the
    case's files removed whatever happened."""
    try:
        outcome = run_case(case, root)
        if importer is not None and outcome.out is not None:
            outcome.violations += importer.check(outcome.out, root / "import-cwd")
        return outcome
    finally:
        remove(root)
