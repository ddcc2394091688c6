"""`graph2py diff OLD NEW`: two graphs compared as models (codegen/diff.py). No TensorFlow: the
graphs are written with tests/graphs.py's Builder in the TF1 idioms of tests/cases/make.py.

The Markdown and text reports of one pair of graphs are golden files under tests/diff/, compared
byte for byte; after an intended change, rewrite them and read the diff:

    python tests/test_diff.py --update
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "diff"
UPDATE = os.environ.get("GRAPH2PY_UPDATE_CASES") == "1"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from cases.make import conv, dense, fused_batch_norm  # noqa: E402
from graphs import INT32, Builder, const, op, placeholder, tensor_proto  # noqa: E402

from codegen.cli import main  # noqa: E402

# A backtick, a pipe and an escape character: a layer (and output) name that must neither end
# a Markdown code span, split a table row nor reach the terminal.
HOSTILE = "logits`|\x1b"


def model(
    *,
    input="images",
    filters=6,
    extra=False,
    conv_b="conv_b",
    logits="logits",
    nudge: str | None = None,
) -> str:
    """A small residual-free CNN as TF1 freezes it: conv + fused batch norm + ReLU, an
    optional 1x1 conv, a conv, global average pooling (Mean), dense logits. `nudge` adds 0.25
    to the first value of that constant: the same model with one weight changed."""
    b = Builder(7, short_scalars=True)
    x = b.placeholder(input, [None, 8, 8, 3])
    h = conv(b, "conv_a", x, 3, filters, act=None)
    h = fused_batch_norm(b, "bn_a", h, filters)
    h = b.op("relu_a", "Relu", h)
    if extra:
        h = conv(b, "extra", h, filters, filters, k=1)
    h = conv(b, conv_b, h, filters, 6)
    axes = b.const("pool/Mean/reduction_indices", np.array([1, 2], np.int32))
    h = b.op("pool/Mean", "Mean", h, axes, Tidx=INT32, keep_dims=False)
    dense(b, logits, h, 6, 4)
    if nudge is not None:
        node = next(n for n in b.graph.node if n.name == nudge)
        shape = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
        value = np.frombuffer(node.attr["value"].tensor.tensor_content, np.float32)
        value = value.copy().reshape(shape)
        value.flat[0] += np.float32(0.25)
        node.attr["value"].tensor.CopyFrom(tensor_proto(value))
    return b.text("written by tests/test_diff.py")


# The golden pair: an input renamed, conv_a's filters 6 -> 8 (so its weights and the next
# layers' change shape), a layer added, and the logits renamed to a hostile name.
GOLDEN_GRAPHS = {
    "old.pbtxt": lambda: model(),
    "new.pbtxt": lambda: model(input="pixels", filters=8, extra=True, logits=HOSTILE),
}
GOLDEN_REPORTS = {
    "report.md": ["--weights", "--markdown"],
    "report.txt": ["--weights"],
}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def diff(capsys, *args) -> tuple[int, str, str]:
    code = main(["diff", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_identical_models_are_equal(tmp_path, capsys):
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model())
    code, out, err = diff(capsys, old, new, "--weights")
    assert (code, err) == (0, "")
    assert "no differences: the models are equal (inputs, outputs, layers or weights)" in out
    assert out.splitlines()[-1] == "0 layers changed, 0 added, 0 removed, 0 renamed, 6 unchanged"


def test_a_changed_filter_count_is_named_with_old_and_new(tmp_path, capsys):
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model(filters=8))
    code, out, _ = diff(capsys, old, new)
    assert code == 1
    assert "layer changed: conv_a: filters 6 → 8\n" in out
    # the batch norm after it has no argument that changed: only its weights' shapes did
    assert "bn_a" not in out
    assert out.splitlines()[-1] == "1 layer changed, 0 added, 0 removed, 0 renamed, 5 unchanged"


def test_changed_weights_alone_are_equal_architecture_and_named_with_weights(tmp_path, capsys):
    """Without --weights only the architecture is compared: exit 0, saying weights were not
    compared. With it, the weight is named with max|Δ| and its relative L2 change."""
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model(nudge="conv_b/kernel"))
    code, out, _ = diff(capsys, old, new)
    assert code == 0
    assert "weights not compared (--weights compares them)" in out
    code, out, _ = diff(capsys, old, new, "--weights")
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("weight")]
    assert len(changed) == 1 and changed[0].startswith(
        "weight changed: conv_b kernel: max|Δ| 0.25, relative L2 "
    )
    assert out.splitlines()[-1] == "1 layer changed, 0 added, 0 removed, 0 renamed, 5 unchanged"


def test_an_added_layer_is_named(tmp_path, capsys):
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model(extra=True))
    code, out, _ = diff(capsys, old, new)
    assert code == 1
    assert 'layer added: extra: Conv2D(6, 1, padding="same", activation="relu")\n' in out
    # conv_b now reads `extra`: said by the added line, not repeated as a rewiring
    assert "conv_b" not in out
    assert out.splitlines()[-1] == "0 layers changed, 1 added, 0 removed, 0 renamed, 6 unchanged"


def test_a_renamed_input_is_named(tmp_path, capsys):
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model(input="pixels"))
    code, out, _ = diff(capsys, old, new)
    assert code == 1
    assert out.splitlines()[0] == "input renamed: images → pixels"
    assert "layer" not in out.splitlines()[0]


def test_a_renamed_scope_pairs_by_structure(tmp_path, capsys):
    """conv_b under another scope: the same class, configuration and producer, so the same
    layer renamed, not one removed and one added; its weights pair as well."""
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model(conv_b="conv_c"))
    code, out, _ = diff(capsys, old, new, "--weights")
    assert code == 1
    assert "layer renamed: conv_b → conv_c\n" in out
    assert "weight" not in out
    assert out.splitlines()[-1] == "0 layers changed, 0 added, 0 removed, 1 renamed, 5 unchanged"


def test_keras_ops_layers_compare_by_expression_and_tensorflow_only_layers_by_op(tmp_path, capsys):
    def graph(fn: str) -> str:
        float_t = 'attr { key: "T" value { type: DT_FLOAT } }'
        inputs = ("y", "x") if fn == "Zeta" else ("y",)
        return (
            placeholder("x", (-1, 4))
            + const("c", [2.0] * 4)
            + op("y", "Mul", "x", "c", attrs=float_t)
            + op("z", fn, *inputs, attrs=float_t)
        )

    sin, cos, zeta = (write(tmp_path, f"{fn}.pbtxt", graph(fn)) for fn in ("Sin", "Cos", "Zeta"))
    code, out, _ = diff(capsys, sin, cos)
    assert code == 1
    assert out.startswith("layer changed: z: expression keras.ops.sin(x) → keras.ops.cos(x)\n")
    code, out, _ = diff(capsys, sin, zeta)
    assert "layer added: z: TFZeta(x0, x1)\nlayer removed: z: keras.ops.sin(x)\n" in out


def test_a_layer_that_reads_another_paired_layer_says_so(tmp_path, capsys):
    float_t = 'attr { key: "T" value { type: DT_FLOAT } }'

    def graph(second: str) -> str:
        return (
            placeholder("x", (-1, 4))
            + op("a", "Relu", "x", attrs=float_t)
            + op("b", "Sigmoid", "a", attrs=float_t)
            + op("c", "AddV2", "b", second, attrs=float_t)
        )

    old = write(tmp_path, "old.pbtxt", graph("a"))
    new = write(tmp_path, "new.pbtxt", graph("x"))
    code, out, _ = diff(capsys, old, new)
    assert code == 1 and out.startswith("layer changed: c: inputs b, a → b, x\n")


def test_a_generated_directory_is_rebuilt_from_its_header(tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    graph = write(out_dir, "model.pbtxt", model())
    assert main([graph, "-o", str(out_dir)]) == 0
    new = write(tmp_path, "new.pbtxt", model(filters=8))
    code, out, err = diff(capsys, out_dir, new)
    assert (code, err) == (1, "")
    assert "layer changed: conv_a: filters 6 → 8\n" in out
    code, out, _ = diff(capsys, out_dir / "model.py", graph, "--weights")
    assert code == 0 and "no differences" in out
    # the header's options rebuild the directory's model; the command line's cut the graph
    code, out, err = diff(capsys, out_dir, graph, "--outputs", "pool/Mean:0")
    assert code == 1 and "output changed: logits/BiasAdd → pool/Mean: shape" in out
    assert "the command line's apply to the other side only" in err


def test_a_generated_directory_whose_graph_changed_since_warns(tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    graph = write(out_dir, "model.pbtxt", model())
    assert main([graph, "-o", str(out_dir)]) == 0
    write(out_dir, "model.pbtxt", model(filters=8))
    code, out, err = diff(capsys, out_dir, graph)
    assert code == 0 and "no differences" in out
    assert err.startswith("graph2py: warning: ") and "header records another model.pbtxt" in err


def test_a_generated_directory_in_another_folder_finds_its_graph(tmp_path, capsys):
    graph = write(tmp_path, "model.pbtxt", model())
    out_dir = tmp_path / "elsewhere"
    assert main([graph, "-o", str(out_dir)]) == 0
    code, out, _ = diff(capsys, out_dir, graph)
    assert code == 0 and "no differences" in out


def test_a_generated_directory_without_its_graph_is_one_error_line(tmp_path, capsys):
    (tmp_path / "graphs").mkdir()
    graph = write(tmp_path / "graphs", "model.pbtxt", model())
    out_dir = tmp_path / "elsewhere"
    assert main([graph, "-o", str(out_dir)]) == 0
    moved = Path(graph).rename(tmp_path / "moved.pbtxt")
    code, out, err = diff(capsys, out_dir, moved)
    assert (code, out) == (3, "")
    assert err.count("\n") == 1 and err.startswith("graph2py: error: ")
    assert "the graph its header names, ../graphs/model.pbtxt, is not found" in err


def test_a_directory_that_is_not_generated_is_one_error_line(tmp_path, capsys):
    (tmp_path / "model.py").write_text("import keras\n", encoding="utf-8")
    graph = write(tmp_path, "g.pbtxt", model())
    code, _, err = diff(capsys, tmp_path, graph)
    assert code == 3 and err.count("\n") == 1 and "no graph2py header" in err


def test_a_missing_source_and_a_bad_option_keep_the_cli_contract(tmp_path, capsys):
    graph = write(tmp_path, "g.pbtxt", model())
    code, _, err = diff(capsys, tmp_path / "missing.pb", graph)
    assert code == 3 and err.count("\n") == 1
    code, _, err = diff(capsys, graph, graph, "--outputs", "nothing:0")
    assert code == 2 and err.count("\n") == 1


def test_shaping_options_apply_to_both_sides(tmp_path, capsys):
    """--outputs cuts both graphs: the logits that differ are outside the compared model."""
    old = write(tmp_path, "old.pbtxt", model())
    new = write(tmp_path, "new.pbtxt", model(logits="scores"))
    code, out, _ = diff(capsys, old, new, "--outputs", "pool/Mean:0")
    assert code == 0, out
    assert out.splitlines()[-1] == "0 layers changed, 0 added, 0 removed, 0 renamed, 5 unchanged"


def test_markdown_cells_survive_backticks_and_pipes():
    """Every code span renders as the text it holds, one cell each: a CommonMark/GFM parser
    (markdown-it, whose table rule is GitHub's) reads the hostile names back intact."""
    markdown_it = pytest.importorskip("markdown_it")
    from codegen.diff import code

    parser = markdown_it.MarkdownIt("commonmark").enable("table")
    for text in ("plain", "a`b", "``x``", "`lead", "trail`", "p|q", "a\\|b", "|`|", "x\x1by"):
        html = parser.render(f"| a | b |\n| --- | --- |\n| {code(text)} | end |\n")
        cells = html.split("<tbody>")[1]
        assert cells.count("<td>") == 2, (text, html)
        expected = text.replace("\x1b", "\\x1b").replace("&", "&amp;").replace("<", "&lt;")
        assert f"<td><code>{expected}</code></td>" in cells, (text, html)
        title = parser.render(f"### {code(text, cell=False)}\n")
        assert title == f"<h3><code>{expected}</code></h3>\n", (text, title)


def test_the_golden_markdown_renders_as_tables_of_whole_rows():
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(golden_report("report.md"))
    rows = html.split("<tr>")[1:]
    assert len(rows) == 1 + 12 + 1 + 3  # a header and 12 changes, a header and 3 weights
    cells = [len(re.findall(r"<t[dh][ >]", row.split("</tr>")[0])) for row in rows]
    assert cells == [3] * 13 + [4] * 4, html
    assert "<td><code>logits`|\\x1b</code></td>" in html


def test_weight_change_numbers():
    """max|Δ| and ‖new − old‖ / ‖old‖; NaN against NaN is no change, a value turned NaN is an
    infinite one; a zero weight that changed changed infinitely, relatively."""
    from codegen.diff import _change

    assert _change(np.array([3.0, 4.0]), np.array([3.0, 5.0])) == (1.0, 0.2)
    assert _change(np.array([1.0, np.nan]), np.array([2.0, np.nan])) == (1.0, np.inf)
    assert _change(np.array([1.0, 2.0]), np.array([1.0, np.nan])) == (np.inf, np.inf)
    assert _change(np.zeros(2), np.array([0.0, 0.5])) == (0.5, np.inf)


def golden_report(name: str) -> str:
    """The report of the golden pair, as `graph2py diff old.pbtxt new.pbtxt OPTIONS` run in
    tests/diff/ prints it."""
    import contextlib
    import io

    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(GOLDEN)
    try:
        with contextlib.redirect_stdout(out):
            code = main(["diff", "old.pbtxt", "new.pbtxt", *GOLDEN_REPORTS[name]])
    finally:
        os.chdir(cwd)
    assert code == 1
    return out.getvalue()


def test_golden_graphs_are_what_this_module_writes():
    differ = [
        name
        for name, make in GOLDEN_GRAPHS.items()
        if not (GOLDEN / name).exists() or (GOLDEN / name).read_text(encoding="utf-8") != make()
    ]
    assert not differ, f"rewrite with `python tests/test_diff.py --update` ({differ})"


@pytest.mark.parametrize("name", sorted(GOLDEN_REPORTS))
def test_golden_report(name):
    if UPDATE:
        update()
    report = golden_report(name)
    path = GOLDEN / name
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if report != expected:
        changes = difflib.unified_diff(
            expected.splitlines(keepends=True),
            report.splitlines(keepends=True),
            f"{name} (expected)",
            f"{name} (now)",
        )
        pytest.fail(
            f"tests/diff/{name} differs; if intended, run `python tests/test_diff.py --update`\n"
            + "".join(changes),
            pytrace=False,
        )


def update() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, make in GOLDEN_GRAPHS.items():
        (GOLDEN / name).write_text(make(), encoding="utf-8")
    for name in GOLDEN_REPORTS:
        (GOLDEN / name).write_text(golden_report(name), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit(f"usage: python {Path(__file__).name} --update")
    update()
    print(f"updated {', '.join([*GOLDEN_GRAPHS, *GOLDEN_REPORTS])} in tests/diff/")
