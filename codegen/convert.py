"""The whole conversion as one call: graph file in, formatted source files out."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .analyze import analyze_file
from .checkpoint import reader_source
from .emit import render
from .load import decoder_source
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


_EMBEDDED_MARK = "GRAPH2PY_EMBEDDED_CODE = None\n"


def format_loader(source: str) -> str:
    """format_source, with the code a loader embeds verbatim (the checkpoint reader or the
    graph decoder: the same in every loader, and much of it) formatted once per process: the
    result is the same, faster."""
    for embedded in (reader_source(), decoder_source()):
        if embedded in source:
            formatted = format_source(source.replace(embedded, _EMBEDDED_MARK, 1))
            return formatted.replace(_EMBEDDED_MARK, _formatted(embedded), 1)
    return format_source(source)


@lru_cache(maxsize=2)
def _formatted(code: str) -> str:
    return format_source(code)
