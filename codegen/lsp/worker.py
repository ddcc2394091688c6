"""The subprocess that regenerates or checks a model for the language server.

Conversions and parity checks are CPU-heavy and a check imports TensorFlow (seconds, and a
gigabyte of memory), so they run here, in a child process: the server's event loop keeps
answering hovers, the server never imports TensorFlow, and cancelling a job is killing a process.

Protocol: one JSON object per stdout line, `{"progress": text, "percentage": n}` while working,
then `{"result": ...}` or `{"error": [lines]}`.

    python -m codegen.lsp.worker regenerate SOURCE DIR
    python -m codegen.lsp.worker check SOURCE DIR
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, fields
from pathlib import Path


def _say(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def generated_options(source: str, directory: str) -> dict:
    """The options an existing model.py was generated with (--inputs, --outputs, --signature,
    ...), read back from the regenerate command in its header, so that Regenerate and Check
    rebuild the same model: the `Options` fields it sets, {} for a new directory or a header
    without options."""
    from ..files import read_input
    from ..options import Options

    try:
        text = read_input(Path(directory) / "model.py").decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    options = Options.from_header(text, directory, source) or Options()
    return {
        f.name: getattr(options, f.name)
        for f in fields(options)
        if getattr(options, f.name) != f.default
    }


def regenerate(source: str, directory: str) -> dict:
    from ..cli import write_atomically
    from ..convert import convert
    from ..options import Options

    _say(progress=f"converting {Path(source).name}", percentage=10)
    options = Options(**generated_options(source, directory))
    spec, files = convert(source, options, directory=directory)
    _say(progress="writing model.py and load_weights.py", percentage=90)
    write_atomically(Path(directory), files)
    return {"files": [str(Path(directory) / name) for name in files], "layers": len(spec.layers)}


def check(source: str, directory: str, tolerance: float = 1e-4) -> dict:
    from .. import check as parity
    from ..analyze import analyze_file
    from ..options import Options

    _say(progress=f"analysing {Path(source).name}", percentage=5)
    options = Options(**generated_options(source, directory))
    spec = analyze_file(source, options)
    arrays = parity.load_inputs(spec, None, seed=0, batch=2)
    _say(progress="running the graph (TensorFlow) and the model (Keras)", percentage=20)
    result = parity.check(source, spec, Path(directory), arrays, tolerance, True, options)
    return {**asdict(result), "ok": result.ok, "report": parity.render(result, tolerance)}


def main(argv: list[str]) -> int:
    from ..errors import Graph2PyError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command, source, directory = argv
    try:
        result = {"regenerate": regenerate, "check": check}[command](source, directory)
    except Graph2PyError as err:
        _say(error=err.problems)
        return 1
    except Exception as err:  # reported to the editor, not lost in a log
        _say(error=[f"internal error: {type(err).__name__}: {err}"])
        return 70
    _say(result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
