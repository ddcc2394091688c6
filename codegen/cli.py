"""`graph2py`: the command line. Thin: parse arguments, call `convert`, report errors.

Heavy imports happen after argument parsing, so `graph2py --help` answers at once; TensorFlow is
never imported by a conversion.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

from . import __version__
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_STALE,
    Graph2PyError,
    UsageError,
    printable,
)
from .options import Options, add_arguments

DESCRIPTION = (
    "Convert a TensorFlow graph (frozen GraphDef .pb/.pbtxt, SavedModel directory, TF1 .meta with "
    "its checkpoint, or a GraphDef with --checkpoint) into readable Keras 3 code."
)
EPILOG = """\
commands:
  graph2py SOURCE [-o DIR]         convert (the default)
  graph2py inspect SOURCE [--json] inputs, outputs, op counts, what each op converts to
  graph2py check SOURCE [-o DIR]   run the graph (TensorFlow) and the generated model, compare
  graph2py diff OLD NEW            compare two sources (or generated directories) as models
  graph2py check --fresh DIR ...   regenerate DIR from its header's source and options, diff

examples:
  graph2py model.pb > model.py                 print model.py
  graph2py model.pb -o out/                    write out/model.py and out/load_weights.py
  graph2py model.pb --inputs 'input:0[1,224,224,3]' --outputs logits:0
  graph2py saved_model_dir/ --signature serving_default -o out/
  graph2py model.ckpt.meta -o out/             TF1 meta graph + checkpoint model.ckpt.*
  graph2py graph.pbtxt --checkpoint model.ckpt -o out/
  graph2py check model.pb --per-layer          name the first layer that diverges
  graph2py diff old.pb new.pb --weights        layers changed, added, removed; weights' max|Δ|
  graph2py diff out/ new.pb --markdown         out/ as generated (its header's source, options)

exit codes: 0 ok, 1 differences (diff) or stale files (check --fresh), 2 usage,
            3 unreadable or malformed graph,
            4 unsupported ops, 5 check found outputs outside the tolerance, 70 internal error
"""
COMMANDS = ("inspect", "check", "diff", "lsp")


def _common(p: argparse.ArgumentParser) -> None:
    """What every command that builds a model takes: the source and the shaping options."""
    p.add_argument(
        "source",
        help="frozen GraphDef (.pb/.pbtxt), SavedModel directory, or TF1 .meta (or its prefix)",
    )
    add_arguments(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def parser(command: str | None = None) -> argparse.ArgumentParser:
    if command == "inspect":
        p = argparse.ArgumentParser(
            prog="graph2py inspect",
            description="Inputs, candidate outputs, op counts and what each op converts to.",
        )
        _common(p)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p
    if command == "fresh":
        p = argparse.ArgumentParser(
            prog="graph2py check --fresh",
            description="Regenerate each directory's model.py and load_weights.py in memory from "
            "the source and options their header records, and compare them byte for byte with "
            "the files: exit 0 when they match, 1 with a unified diff on stdout when they differ "
            "(hand-edited, or the graph changed).",
        )
        p.add_argument("--fresh", action="store_true", required=True, help=argparse.SUPPRESS)
        p.add_argument(
            "paths",
            nargs="+",
            metavar="DIR",
            help="a generated directory, or its model.py or load_weights.py (as pre-commit "
            "passes them); each directory is checked once",
        )
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        return p
    if command == "check":
        p = argparse.ArgumentParser(
            prog="graph2py check",
            description="Run the original graph with TensorFlow and the generated model on the "
            "same inputs; report per-output errors (exit 5 above the tolerance).",
        )
        _common(p)
        p.add_argument("-o", "--output-dir", metavar="DIR", help="use (or write) the code in DIR")
        p.add_argument("--data", metavar="NPZ", help="inputs as an .npz keyed by input name")
        p.add_argument("--tolerance", type=float, default=1e-4, help="max |Δ| / max(1, max |ref|)")
        p.add_argument("--per-layer", action="store_true", help="name the first diverging layer")
        p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
        p.add_argument("--batch", type=int, default=2, help="batch size of the random inputs")
        p.add_argument(
            "--backend",
            choices=("tensorflow", "jax", "torch"),
            help="run the generated model on this Keras backend, in a process of its own "
            "(default: this process's KERAS_BACKEND); the reference is TensorFlow's",
        )
        return p
    if command == "diff":
        p = argparse.ArgumentParser(
            prog="graph2py diff",
            description="Compare two sources as models, without TensorFlow: inputs and outputs, "
            "layers added, removed, renamed or reconfigured, and with --weights the weights. "
            "A source is a graph file, SavedModel or meta graph (the options below apply to "
            "it), or a directory graph2py generated (rebuilt from the source and options its "
            "model.py header records). Exit 0 when equal, 1 when different.",
        )
        p.add_argument("old", metavar="OLD", help="source or generated directory")
        p.add_argument("new", metavar="NEW", help="source or generated directory")
        add_arguments(p)
        p.add_argument("--weights", action="store_true", help="compare the weights too")
        p.add_argument("--markdown", action="store_true", help="a Markdown report (PR comment)")
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        return p
    if command == "lsp":
        p = argparse.ArgumentParser(
            prog="graph2py lsp",
            description="Language server (LSP over stdio) for generated models and their graphs.",
        )
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        return p
    p = argparse.ArgumentParser(
        prog="graph2py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument(
        "-o", "--output-dir", metavar="DIR", help="write DIR/model.py and DIR/load_weights.py"
    )
    p.add_argument(
        "--report",
        choices=("text", "json"),
        help="print the conversion report (source nodes per path: keras.layers, keras.ops, "
        "TensorFlow-only) on stderr",
    )
    p.add_argument("--version", action="version", version=f"graph2py {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    """The exit code of the command in `argv` (default: the process's arguments).

    Without `argv`, main is the program (the graph2py script, `python -m codegen`), and the
    process ends when it returns. After a conversion, an inspection or a diff, every object
    left is frozen (gc.freeze) first: the interpreter's shutdown runs the cycle collector over
    them and frees what it finds, work the operating system makes unnecessary by taking the
    memory back whole; after converting MobileNetV2 it took 0.08 s of CPU, a sixth of the run.
    `check` (TensorFlow's objects) and `lsp` end as usual, and code calling main with
    arguments (the tests) keeps its collector as it was."""
    program = argv is None
    argv = list(sys.argv[1:] if program else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    code = _main(command, argv[1:] if command else argv)
    if program and command in (None, "inspect", "diff"):
        gc.freeze()
    return code


def _main(command: str | None, argv: list[str]) -> int:
    if command == "check" and "--fresh" in argv:
        command = "fresh"
    args = parser(command).parse_args(argv)
    run = {"inspect": _inspect, "check": _check, "diff": _diff, "fresh": _fresh, "lsp": _lsp}
    run = run.get(command, _convert)
    try:
        with warnings.catch_warnings():
            # numpy's warnings while folding a hostile graph's constants (a mean of nothing, an
            # overflow) are no diagnostics of graph2py's: the contract is graph2py's lines only
            warnings.simplefilter("ignore", RuntimeWarning)
            return run(args)
    except Graph2PyError as err:
        if args.debug:
            raise
        for problem in err.problems:
            say(f"error: {problem}")
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        # the constant budget keeps a conversion within 16 times its input; a process capped
        # lower than that (ulimit -v, a container) still runs out: the input's size, not a bug
        if args.debug:
            raise
        say(
            "error: out of memory while converting (the input needs more than this process may "
            "allocate; lower --max-constant-mb or raise the memory limit)"
        )
        return EXIT_BAD_INPUT
    except Exception as err:  # a bug: say so in one line unless asked for the traceback
        if args.debug:
            raise
        say(f"internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL


def say(message: str) -> None:
    """Every message graph2py prints on stderr passes here: prefixed, and printable (see
    errors.printable), so that text from the graph cannot break it into lines that look like
    graph2py's or send escape sequences to the terminal."""
    print(f"graph2py: {printable(message)}", file=sys.stderr)


def _convert(args) -> int:
    from .convert import convert

    wanted = ("model.py", "load_weights.py") if args.output_dir else ("model.py",)
    # the header records the source relative to where the files go: DIR, or for model.py on
    # stdout the current directory, where `graph2py model.pb > model.py` puts it
    directory = args.output_dir or os.curdir
    spec, files = convert(args.source, Options.from_args(args), wanted, directory)
    for warning in spec.warnings:
        say(f"warning: {warning}")
    if args.output_dir:
        write_atomically(Path(args.output_dir), files)
    else:
        sys.stdout.write(files["model.py"])
    if args.report == "json":
        print(json.dumps(report_json(spec), indent=2), file=sys.stderr)
    elif args.report == "text":
        from .emit import report_lines

        print("\n".join(map(printable, report_lines(spec))), file=sys.stderr)
    return EXIT_OK


def report_json(spec) -> dict:
    """The conversion report for tools: node counts per path, and per op type."""
    report = spec.report()
    return {
        "source": spec.source,
        "nodes": {path: sum(ops.values()) for path, ops in report.items()},
        "ops": report,
        "backends": spec.backends(),
    }


def _inspect(args) -> int:
    from .summary import render_table, summarize

    summary = summarize(args.source, Options.from_args(args))
    sys.stdout.write(summary.to_json() + "\n" if args.json else render_table(summary))
    return EXIT_OK


def _check(args) -> int:
    """Convert into DIR (or a temporary directory), unless DIR already holds generated code,
    then compare. The spec is recomputed either way: it maps layers to graph tensors."""
    from . import check
    from .analyze import analyze_file
    from .convert import convert

    directory = Path(args.output_dir) if args.output_dir else check.staging_dir()
    try:
        options = Options.from_args(args)
        if (directory / "model.py").exists() and (directory / "load_weights.py").exists():
            spec = analyze_file(args.source, options)
        else:
            spec, files = convert(args.source, options, directory=directory)
            write_atomically(directory, files)
        arrays = check.load_inputs(spec, args.data, args.seed, args.batch)
        result = check.check(
            args.source,
            spec,
            directory,
            arrays,
            args.tolerance,
            args.per_layer,
            options,
            backend=args.backend,
        )
    finally:
        if not args.output_dir:
            shutil.rmtree(directory, ignore_errors=True)
    sys.stdout.write(check.render(result, args.tolerance))
    return EXIT_OK if result.ok else EXIT_MISMATCH


def _diff(args) -> int:
    from . import diff

    options = Options.from_args(args)
    sides = [diff.load_side(source, options, args.weights) for source in (args.old, args.new)]
    for side in sides:
        for warning in side.warnings:
            say(f"warning: {warning}")
    result = diff.compare(*sides)
    render = diff.render_markdown if args.markdown else diff.render_text
    sys.stdout.write(render(result))
    return diff.EXIT_SAME if result.equal else diff.EXIT_DIFFERENT


def _fresh(args) -> int:
    """Every directory checked, whatever the others give: the diffs on stdout, one line per
    directory that is stale or cannot be checked on stderr. The exit status is the worst:
    an error's own, else 1 when any directory is stale."""
    from .fresh import check_fresh, directories

    worst = EXIT_OK
    for directory in directories(args.paths):
        try:
            result = check_fresh(directory)
        except Graph2PyError as err:
            if args.debug:
                raise
            for problem in err.problems:
                say(f"error: {problem}")
            worst = max(worst, err.exit_code)
            continue
        if result.fresh:
            continue
        sys.stdout.write(result.diff)
        why = (
            "the graph changed"
            if result.graph_changed
            else "edited by hand, or written by another graph2py version"
        )
        say(f"{result.directory}: stale ({why}); regenerate with `{result.command}`")
        worst = max(worst, EXIT_STALE)
    sys.stdout.flush()
    return worst


def _lsp(args) -> int:
    from .lsp import main as serve

    serve()
    return EXIT_OK


def write_atomically(directory: Path, files: dict[str, str]) -> None:
    """Write `directory/name` for every file: all of them or none, whatever the directory holds.

    Every target is checked before anything changes: one that exists must be a regular file (or
    a symbolic link, which is replaced, not followed). The files are staged in a hidden directory
    inside `directory` (the same filesystem, so each move is a rename), then each target is moved
    aside into the staging directory and its new file moved in; when a move fails, the targets
    already replaced get their old files back. A directory this call created is removed again.
    """
    problems = _unwritable(directory, files)
    if problems:
        raise UsageError(*problems)
    created = _missing_ancestor(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".graph2py-", dir=directory))
    except OSError as err:
        _remove_created(created)
        raise UsageError(
            f"{directory}: cannot create the output directory: {err.strerror or err}"
        ) from None
    moved: list[tuple[Path, Path | None]] = []  # (target, where its old file is, if it had one)
    try:
        for name, text in files.items():
            # the same bytes on every system (no \r\n on Windows): check --fresh compares bytes
            (staging / name).write_bytes(text.encode("utf-8"))
        for name in files:
            target, backup = directory / name, None
            if os.path.lexists(target):
                backup = staging / f"{name}.previous"
                os.replace(target, backup)
            moved.append((target, backup))
            os.replace(staging / name, target)
    except BaseException as err:
        for target, backup in reversed(moved):
            try:
                if backup is None:
                    target.unlink(missing_ok=True)
                else:
                    os.replace(backup, target)
            except OSError:
                pass  # the backup stays in the staging directory, removed below: nothing to do
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        if isinstance(err, OSError):
            raise UsageError(f"{directory}: cannot write: {err.strerror or err}") from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _unwritable(directory: Path, names) -> list[str]:
    """One line per target that must not be replaced: a directory, a FIFO, a device."""
    if not directory.exists():
        if os.path.lexists(directory):
            return [f"{directory}: is a broken symbolic link"]
        return []
    if not directory.is_dir():
        return [f"{directory}: exists and is not a directory"]
    problems = []
    for name in names:
        try:
            mode = os.lstat(directory / name).st_mode
        except FileNotFoundError:
            continue
        except OSError as err:
            problems.append(f"{directory / name}: cannot inspect: {err.strerror or err}")
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            problems.append(f"{directory / name}: exists and is {kind}: not replacing it")
    return problems


def _missing_ancestor(directory: Path) -> Path | None:
    """The outermost of `directory` and its parents that does not exist yet: what creating
    `directory` creates, and what a failure removes."""
    missing = None
    for path in (directory, *directory.parents):
        if os.path.lexists(path):
            break
        missing = path
    return missing


def _remove_created(created: Path | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
