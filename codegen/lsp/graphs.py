"""What the server knows about a graph file: per-node facts and the converter's spec.

Everything here comes from the converter core (`codegen.pipeline` and `codegen.analyze`), so a
hover can never disagree with what a conversion does. Results are cached per (path, sha256):
editing a graph gives a new digest and a fresh analysis, while a hundred hovers on an unchanged
ResNet50 share one. The analysis is slow for large graphs (it decodes every constant), so
callers run it in a worker thread, never on the event loop. The converter core (and numpy) is
imported there, on first use: start-up pays only for what the server is before any graph.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import open_input

# Attributes that say nothing to a reader of a hover (dtypes of every input, TF internals).
NOISE_ATTRS = {"T", "Tidx", "Tshape", "Tpaddings", "Tperm", "TI", "Index", "N", "use_cudnn_on_gpu"}
NOISE_ATTRS |= {"grad_a", "grad_b"}
TEXT_SUFFIXES = (".pbtxt", ".pbtext", ".txt")
_NAME_LINE = re.compile(r'^(\s*name:\s*")((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class NodeInfo:
    """A graph node reduced to what a hover shows; no arrays, so a cache of them stays small."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...]  # (key, short display text), noise removed
    shape: tuple[int | None, ...] | None  # first output's inferred shape, batch left free
    shape_known: bool  # False: the node was pruned (feeds no output) or has unknown rank


@dataclass
class GraphInfo:
    path: Path
    sha256: str
    nodes: dict[str, NodeInfo]
    spec: Any = None  # codegen.spec.ModelSpec, or None when analysis failed
    problems: list[str] = field(default_factory=list)  # Graph2PyError lines
    unsupported: list[str] = field(default_factory=list)  # nodes no pattern claims
    layer_of: dict[str, str] = field(default_factory=dict)  # node name -> layer name

    def layer(self, name: str):
        return next((l for l in self.spec.layers if l.name == name), None) if self.spec else None

    def input(self, name: str):
        return next((i for i in self.spec.inputs if i.name == name), None) if self.spec else None


def attr_text(value: Any) -> str:
    """A one-line rendering of a decoded attribute; arrays show dtype and shape, not values."""
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return f"{value.dtype} {list(value.shape)} = {value.ravel().tolist()}"
        return f"{value.dtype} array {tuple(value.shape)}"
    if isinstance(value, tuple):
        return "(" + ", ".join("?" if d is None else str(d) for d in value) + ")"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def shape_text(shape: tuple | None) -> str:
    if shape is None:
        return "unknown rank"
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


class ShaCache:
    """sha256 of files, recomputed only when size or mtime change: hashing a 100 MB graph takes
    a fifth of a second, too slow to repeat on every keystroke in the model that names it."""

    def __init__(self):
        self._known: dict[Path, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> str | None:
        """None for what is no regular file (codegen/files.py: a FIFO would block, a link to
        /dev/zero never end) or cannot be read."""
        try:
            stat = path.stat()
        except OSError:
            return None
        with self._lock:
            hit = self._known.get(path)
        if hit and hit[:2] == (stat.st_mtime_ns, stat.st_size):
            return hit[2]
        digest = hashlib.sha256()
        try:
            f, size = open_input(path)
            with f:
                while size > 0:
                    block = f.read(min(size, 1 << 20))
                    if not block:
                        break
                    digest.update(block)
                    size -= len(block)
        except OSError:
            return None
        with self._lock:
            self._known[path] = (stat.st_mtime_ns, stat.st_size, digest.hexdigest())
        return digest.hexdigest()

    def cached(self, path: Path) -> str | None:
        """The digest if it is known to be current, without reading the file."""
        try:
            stat = path.stat()
        except OSError:
            return None
        hit = self._known.get(path)
        return hit[2] if hit and hit[:2] == (stat.st_mtime_ns, stat.st_size) else None


def analyze_graph(path: Path, generated: bool) -> GraphInfo:
    """Node facts plus the spec. For the source of a generated model the spec is exactly the
    one the converter builds (strict); for a graph being edited it is the lenient one that
    `graph2py inspect` uses, so unclaimed ops are listed, not raised. A graph that does not
    decode raises; one that does not convert still has its nodes described."""
    from ..analyze import analyze
    from ..errors import Graph2PyError, UsageError
    from ..pipeline import decode_file, load, prepare, selected_facts

    shapes: dict = {}
    try:
        loaded = load(path)
    except UsageError as err:  # a GraphDef that reads variables converts only with its checkpoint
        graph, sha256 = decode_file(path)
        info = GraphInfo(path, sha256, {}, problems=list(err.problems))
    else:
        graph = loaded.graph
        info = GraphInfo(path, loaded.sha256, {})
        try:
            prepared = prepare(loaded)
            shapes = selected_facts(prepared)[1]
            info.spec = analyze(prepared, strict=generated)
        except Graph2PyError as err:
            info.problems = list(err.problems)
    for node in graph:
        shape = shapes.get(node.output(0))
        attrs = tuple(
            (key, attr_text(value))
            for key, value in sorted(node.attrs.items())
            if not key.startswith("_")
            and key not in NOISE_ATTRS
            and not (isinstance(value, list) and not value)
        )
        known = node.output(0) in shapes and shape is not None
        info.nodes[node.name] = NodeInfo(
            node.name, node.op, tuple(node.inputs), attrs, shape, known
        )
    if info.spec is not None:
        for layer in info.spec.layers:
            for name in layer.nodes:
                info.layer_of[name] = layer.name
        unsupported_ops = set(info.spec.unsupported)
        info.unsupported = [
            n.name
            for n in (prepared.selected.graph if info.spec.unsupported else ())
            if n.op in unsupported_ops and n.name not in info.layer_of
        ]
    return info


def node_lines(text: str) -> dict[str, tuple[int, int, int]]:
    """Node name -> (line, start column, end column) of its `name: "..."` line in a text
    GraphDef. The first occurrence wins, which is the node itself: node blocks precede the
    function library, and names are unique."""
    found: dict[str, tuple[int, int, int]] = {}
    for number, line in enumerate(text.splitlines()):
        match = _NAME_LINE.match(line)
        if match:
            name = match.group(2)
            if "\\" in name:  # text_format escapes quotes and bytes; node names rarely need it
                name = name.encode("latin-1", "backslashreplace").decode("unicode_escape")
            found.setdefault(name, (number, len(match.group(1)), match.end(2)))
    return found


def is_text_graph(path: Path) -> bool:
    return path.suffix.lower() in TEXT_SUFFIXES
