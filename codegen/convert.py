"""The whole conversion as one call: graph file in, formatted source files out."""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .analyze import analyze_file
from .emit import render
from .header import record_path
from .options import Options
from .postprocess import format_source, tidy
from .spec import ModelSpec

FILES = ("model.py", "load_weights.py")


def convert(
    path: str | Path,
    options: Options = Options(),
    files: tuple[str, ...] = FILES,
    directory: str | Path | None = None,
) -> tuple[ModelSpec, dict[str, str]]:
    """(spec, {'model.py': source, 'load_weights.py': source}), only the files asked for
    (`graph2py model.pb > model.py` skips the loader). `path` is any input format (see
    formats.py). `directory` is where the files will be written: their headers record the
    source relative to it (header.py); by default beside the graph, by its file name."""
    with _fewer_collections():
        spec = recorded(analyze_file(path, options), path, options, directory)
        rendered = render(spec, files, flat=options.flat)
        post = {
            "model.py": lambda src: tidy(src, sequential=spec.is_chain()),
            "load_weights.py": format_loader,
        }
        return spec, {name: post[name](rendered[name]) for name in files}


def recorded(
    spec: ModelSpec, path: str | Path, options: Options, directory: str | Path | None
) -> ModelSpec:
    """The spec with its source, the loader's default source and the checkpoint option as the
    headers record them for files in `directory` (None: the graph's own directory): relative to
    it, so the header's regenerate command runs there as written."""
    directory = Path(path).absolute().parent if directory is None else directory
    source = record_path(path, directory)
    weights = options.checkpoint if spec.source_kind == "checkpoint" else None
    return replace(
        spec,
        source=source,
        weights_source=record_path(weights, directory) if weights else source,
        options=options.arguments(base=directory),
    )


@contextmanager
def _fewer_collections():
    """Python's cycle collector, at its default pace (a young collection every 700
    allocations, a full one whenever the survivors grew by a quarter), walks the live objects
    again and again while a conversion builds millions of them that live until it ends
    (nodes, layers, lines) and makes little cyclic garbage: a third of the time of a
    200,000-node graph. A young collection every 100,000 allocations instead; the old pace
    comes back after."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


_ROWS_MARK = "    GRAPH2PY_WEIGHT_ROWS: None,\n"
# load_weights' table, one row a line: `    'LAYER/WEIGHT': ROW,`
_ROWS = re.compile(r"^WEIGHTS = \{\n((?:    .*\n)+)\}\n", re.M)
# a row of two plain strings (no quote or backslash in either), which black only requotes
_PLAIN_ROW = re.compile(r"    '([^'\"\\\n]*)': '([^'\"\\\n]*)',")
_ROW_BATCH = 1000  # rows per black call: black's time and memory grow faster than linearly


def format_loader(source: str) -> str:
    """format_source, the same result faster: the rows of the weight table (one per weight:
    40,000 in bench/scale.py's 200,000-node chain) apart from the rest, each as black writes
    it in the table (a row of two plain strings is only requoted; black formats each row of
    an exploded dict on its own, so the others go to black a batch at a time)."""
    rows = _ROWS.search(source)
    if rows and _ROWS_MARK not in source:
        start, end = rows.span(1)
        outside = format_loader(source[:start] + _ROWS_MARK + source[end:])
        if outside.count(_ROWS_MARK) == 1:
            return outside.replace(_ROWS_MARK, _format_rows(rows[1].splitlines()))
    return format_source(source)


def _format_rows(rows: list[str]) -> str:
    out, batch = [], []

    def flush():
        if batch:
            table = format_source("WEIGHTS = {\n" + "\n".join(batch) + "\n}\n")
            out.append(table.split("\n", 1)[1].rsplit("}", 1)[0])
            batch.clear()

    for row in rows:
        plain = _PLAIN_ROW.fullmatch(row)
        if plain:
            flush()
            out.append(f'    "{plain[1]}": "{plain[2]}",\n')
        else:
            batch.append(row)
            if len(batch) == _ROW_BATCH:
                flush()
    flush()
    return "".join(out)
