"""The package's structure, checked from its source: no import cycle among codegen modules (module-
level and function-level imports alike: an import inside a function that closes a cycle is still a
cycle, only a hidden one), and no module imports another module's private (`_name`) names. And one
check of what importing does: the language server's skeleton leaves the converter core for later.

Needs neither TensorFlow nor Keras: it reads the source with `ast`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "codegen"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports() -> tuple[dict[str, set[str]], list[str]]:
    """(module -> codegen modules it imports, private-name imports across modules)."""
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node)
                targets = []
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules:  # `from . import ops`: the submodule itself
                        targets.append((sub, None))
                    else:
                        targets.append((base, alias.name))
            else:
                continue
            for target, name in targets:
                if target not in modules or target == module:
                    continue
                edges[module].add(target)
                if name and name.startswith("_") and not name.startswith("__"):
                    private.append(f"{module} imports {target}.{name}")
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    edges, _ = imports()
    assert cycles(edges) == []


def test_no_private_import_across_modules():
    _, private = imports()
    assert private == []


def heavy_imports(modules: str, heavy: tuple[str, ...]) -> list[str]:
    """Which of `heavy` a fresh interpreter has imported after `import MODULES`."""
    probe = f"import sys, {modules}\n" f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.split()


def test_language_server_starts_without_the_converter_core():
    """`graph2py lsp` answers `initialize` after importing pygls and its own skeleton only
    (issue 11: start to `initialized` within 0.5 s); the analysis behind a hover (numpy, the
    passes), a job's conversion (jinja2, libcst, black) and TensorFlow come on first use.
    bench/lsp.py measures the time."""
    heavy = ("numpy", "jinja2", "libcst", "black", "tensorflow", "keras", "codegen.analyze")
    assert heavy_imports("codegen.cli, codegen.lsp.features", heavy) == []


def test_generated_loaders_import_only_the_readers():
    """A generated load_weights.py imports codegen.runtime: the graph and checkpoint readers,
    with protobuf and numpy, and nothing of the converter (no templates, formatting, passes or
    TensorFlow), so that loading weights stays quick and needs no more than reading does."""
    heavy = ("jinja2", "libcst", "black", "tensorflow", "keras", "codegen.analyze")
    assert heavy_imports("codegen.runtime", heavy) == []


if __name__ == "__main__":  # python tests/test_structure.py: print what the tests check
    edges, private = imports()
    for component in cycles(edges):
        print("cycle:", " -> ".join(component))
    for line in private:
        print("private:", line)
