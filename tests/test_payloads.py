"""No text from a graph or a file name ever runs: a payload pushed through every channel by which
outside text reaches generated code (file name, directory name, node name, scope, checkpoint
prefix, tensor names in the header's options, SavedModel signature key and tag) leaves both
files compiling, and importing them, running the loader and `graph2py check` create nothing.

The payload tries each way out of a string or comment: a docstring's closing quotes, line
breaks, a backslash escape that is a SyntaxError (`\\N`), and a PEP 263 encoding declaration
(`coding=utf-7`) under which `+AAo-` in a later comment decodes to a line break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_hostile import ROOT, const, op, placeholder, run

FIXTURES = ROOT / "tests" / "fixtures" / "formats"
MARK = "PWNED"
# No "/" (it is a file name too); every line break and quote is a way out of some channel.
PAYLOAD = (
    f'p"""\n__import__("os").mkdir("{MARK}")\n"""\\N{{x}}'
    f" coding=utf-7 +AAo-__import__(+ACI-os+ACI-).mkdir(+ACI-{MARK}+ACI-)+AAo-#'''"
)


def dense_graph(input_name: str, layer: str) -> str:
    """input -> MatMul + BiasAdd -> Relu, the layer's nodes under the scope `layer`."""
    t = 'attr { key: "T" value { type: DT_FLOAT } }'
    return (
        placeholder(input_name, shape=(-1, 3))
        + const(f"{layer}/kernel", [[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
        + const(f"{layer}/bias", [0.1, -0.2])
        + op(f"{layer}/MatMul", "MatMul", input_name, f"{layer}/kernel", attrs=t)
        + op(f"{layer}/BiasAdd", "BiasAdd", f"{layer}/MatMul", f"{layer}/bias", attrs=t)
        + op(f"{layer}/Relu", "Relu", f"{layer}/BiasAdd", attrs=t)
    )


def _graph_file(root: Path, name: str, text: str, *options: str) -> tuple[Path, list[str], Path]:
    """(source, options, what load_weights reads)."""
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path, list(options), path


def _checkpoint(root: Path) -> tuple[Path, list[str], Path]:
    """The TF1 graph + checkpoint fixture, the checkpoint under a prefix that is the payload."""
    folder = root / ("ckpt" + PAYLOAD)
    folder.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(
            FIXTURES / "tf1_checkpoint" / f"model.ckpt{suffix}", folder / f"{PAYLOAD}{suffix}"
        )
    prefix = folder / PAYLOAD
    return FIXTURES / "tf1_checkpoint" / "graph.pbtxt", ["--checkpoint", str(prefix)], prefix


def _saved_model(root: Path) -> tuple[Path, list[str], Path]:
    """The TF2 SavedModel fixture in a directory named by the payload, its serving signature
    renamed to the payload and its tag set to the payload."""
    from codegen.formats import saved_model_class

    folder = root / ("sm" + PAYLOAD)
    shutil.copytree(FIXTURES / "tf2_savedmodel", folder)
    message = saved_model_class()()
    message.ParseFromString((folder / "saved_model.pb").read_bytes())
    meta = message.meta_graphs[0]
    meta.signature_def[PAYLOAD].CopyFrom(meta.signature_def["serving_default"])
    del meta.meta_info_def.tags[:]
    meta.meta_info_def.tags.append(PAYLOAD)
    (folder / "saved_model.pb").write_bytes(message.SerializeToString())
    return folder, ["--signature", PAYLOAD, "--tag", PAYLOAD], folder


CHANNELS = {
    # the file's own name (header comment, docstrings, the regenerate command)
    "file name": lambda root: _graph_file(root, PAYLOAD + ".pbtxt", dense_graph("x", "fc")),
    # every node under one scope: the model docstring names it
    "scope": lambda root: _graph_file(
        root, "scope.pbtxt", dense_graph(f"{PAYLOAD}/x", f"{PAYLOAD}/fc")
    ),
    # node names: layer names, provenance comments, --inputs/--outputs in the header
    "node name": lambda root: _graph_file(
        root,
        "names.pbtxt",
        dense_graph(PAYLOAD, PAYLOAD + "2"),
        *("--inputs", PAYLOAD, "--outputs", PAYLOAD + "2/Relu"),
    ),
    "checkpoint prefix": _checkpoint,
    "saved model": _saved_model,
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """Every channel converted once, each into its own folder (the working directory of
    everything run from it, where the payload would create its mark)."""
    out = {}
    for name, make in CHANNELS.items():
        root = tmp_path_factory.mktemp(name.replace(" ", "_"))
        source, options, weights = make(root)
        result = run(source, "-o", root / "out", *options)
        assert result.returncode == 0, (name, result.stderr)
        (root / "weights_source").write_text(str(weights), encoding="utf-8")
        out[name] = root
    return out


@pytest.mark.parametrize("channel", CHANNELS)
def test_generated_files_compile(converted, channel):
    for name in ("model.py", "load_weights.py"):
        source = (converted[channel] / "out" / name).read_text(encoding="utf-8")
        compile(source, name, "exec")
        assert MARK in source  # the payload did reach the file, as text


def test_importing_and_loading_runs_nothing(converted):
    """One process imports every generated module, builds each model and loads its weights
    from its own source; then no channel's folder holds the mark."""
    script = "\n".join(
        [
            "import importlib.util, os, sys",
            "def load(path, name):",
            "    spec = importlib.util.spec_from_file_location(name, path)",
            "    module = importlib.util.module_from_spec(spec)",
            "    sys.modules[name] = module",
            "    spec.loader.exec_module(module)",
            "    return module",
            "for i, root in enumerate(sys.argv[1:]):",
            "    os.chdir(root)",
            "    sys.path.insert(0, os.path.join(root, 'out'))",
            "    model = load(os.path.join(root, 'out', 'model.py'), 'model')",
            "    loader = load(os.path.join(root, 'out', 'load_weights.py'), f'loader{i}')",
            "    weights = open(os.path.join(root, 'weights_source'), encoding='utf-8').read()",
            "    loader.load_weights(model.build_model(), weights)",
            "    sys.path.pop(0)",
        ]
    )
    roots = [str(converted[c]) for c in CHANNELS]
    result = subprocess.run(
        [sys.executable, "-c", script, *roots], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    for channel, root in converted.items():
        assert not (root / MARK).exists(), channel


def test_check_runs_nothing(converted):
    """`graph2py check` imports the generated files and runs them: still nothing created."""
    root = converted["file name"]
    result = subprocess.run(
        [sys.executable, "-m", "codegen", "check", root / (PAYLOAD + ".pbtxt"), "-o", root / "out"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert not (root / MARK).exists()


def test_comment_and_docstring_text():
    """Comment text holds no encoding declaration; docstring text reads back as comment text."""
    from codegen.names import comment_text, docstring_text

    assert "coding=" not in comment_text(PAYLOAD) and "coding:" not in comment_text("coding:x")
    assert "\n" not in comment_text(PAYLOAD)
    assert eval(f'"""{docstring_text(PAYLOAD)}"""') == comment_text(PAYLOAD)
