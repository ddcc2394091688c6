"""`graph2py`: the command line. Thin: parse arguments, call `convert`, report errors.

Heavy imports happen after argument parsing, so `graph2py --help` answers at once; TensorFlow is
never imported by a conversion.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_OK, Graph2PyError

DESCRIPTION = "Convert a frozen TensorFlow GraphDef (.pb/.pbtxt) into readable Keras 3 code."
EPILOG = """\
examples:
  graph2py model.pb > model.py                 print model.py
  graph2py model.pb -o out/                    write out/model.py and out/load_weights.py
  graph2py model.pb --inputs 'input:0[1,224,224,3]' --outputs logits:0

exit codes: 0 ok, 2 usage, 3 unreadable or malformed graph, 4 unsupported ops, 70 internal error
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="graph2py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="frozen GraphDef, binary (.pb) or text (.pbtxt)")
    p.add_argument(
        "-o", "--output-dir", metavar="DIR", help="write DIR/model.py and DIR/load_weights.py"
    )
    p.add_argument(
        "--inputs",
        metavar="TENSORS",
        help="comma-separated input tensors, e.g. 'input:0[1,224,224,3]'",
    )
    p.add_argument(
        "--outputs", metavar="TENSORS", help="comma-separated output tensors, e.g. 'logits:0'"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"graph2py {__version__}")
    return p


def split_tensors(text: str | None):
    """Comma-separated specs; commas inside a [shape] do not split."""
    if not text:
        return None
    from .passes.prune import TensorSpec

    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [TensorSpec.parse(p) for p in parts if p.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from .convert import convert

        wanted = ("model.py", "load_weights.py") if args.output_dir else ("model.py",)
        _, files = convert(
            args.source, split_tensors(args.inputs), split_tensors(args.outputs), wanted
        )
        if args.output_dir:
            write_atomically(Path(args.output_dir), files)
        else:
            sys.stdout.write(files["model.py"])
        return EXIT_OK
    except Graph2PyError as err:
        if args.debug:
            raise
        for problem in err.problems:
            print(f"graph2py: error: {problem}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug: say so in one line unless asked for the traceback
        if args.debug:
            raise
        print(
            f"graph2py: internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def write_atomically(directory: Path, files: dict[str, str]) -> None:
    """All files appear together or none do: write into a temporary sibling, then move."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        directory.mkdir(exist_ok=True)
        for name in files:
            os.replace(staging / name, directory / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
