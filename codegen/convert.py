"""The whole conversion as one call: graph file in, formatted source files out."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .analyze import analyze_file
from .checkpoint import reader_source
from .emit import render
from .options import Options
from .postprocess import format_source, tidy
from .spec import ModelSpec

FILES = ("model.py", "load_weights.py")


def convert(
    path: str | Path, options: Options = Options(), files: tuple[str, ...] = FILES
) -> tuple[ModelSpec, dict[str, str]]:
    """(spec, {'model.py': source, 'load_weights.py': source}), only the files asked for:
    formatting is most of the run time, so `graph2py model.pb > model.py` skips the loader.
    `path` is any input format (see formats.py)."""
    spec = analyze_file(path, options)
    rendered = render(spec, files)
    post = {
        "model.py": lambda src: tidy(src, sequential=spec.is_chain()),
        "load_weights.py": format_loader,
    }
    return spec, {name: post[name](rendered[name]) for name in files}


_READER_MARK = "GRAPH2PY_CHECKPOINT_READER = None\n"


def format_loader(source: str) -> str:
    """format_source, with the embedded checkpoint reader (the same in every loader, and most
    of a checkpoint-based one) formatted once per process: the result is the same, faster."""
    reader = reader_source()
    if reader not in source:
        return format_source(source)
    formatted = format_source(source.replace(reader, _READER_MARK, 1))
    return formatted.replace(_READER_MARK, _formatted_reader(), 1)


@lru_cache(maxsize=1)
def _formatted_reader() -> str:
    return format_source(reader_source())
