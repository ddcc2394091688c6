"""The whole conversion as one call: graph file in, formatted source files out."""

from __future__ import annotations

from pathlib import Path

from .analyze import analyze_file
from .emit import render
from .passes.prune import TensorSpec
from .postprocess import format_source, tidy
from .spec import ModelSpec


def convert(
    path: str | Path,
    inputs: list[TensorSpec] | None = None,
    outputs: list[TensorSpec] | None = None,
) -> tuple[ModelSpec, dict[str, str]]:
    """(spec, {'model.py': source, 'load_weights.py': source})."""
    spec = analyze_file(path, inputs, outputs)
    files = render(spec)
    return spec, {
        "model.py": tidy(files["model.py"]),
        "load_weights.py": format_source(files["load_weights.py"]),
    }
