"""Stable regeneration (issue 11): a small change in a graph gives a small, local diff in the
files generated from it, so that a reviewer of a re-exported model sees what changed.

Each test builds two versions of a small TF1-style graph (tests/cases/make.py's helpers, no
TensorFlow), converts both and compares the texts line by line:

- retrained weights (same structure, other variables): model.py and load_weights.py identical
  but for the `# source sha256:` line, the one line that names the graph's bytes; a constant the
  code spells (a Rescaling's scale) is configuration, and changes its layer's line only;
- one layer's filters: exactly that layer's constructor line (Keras infers the input channels of
  the layer reading it, so no other config changes);
- one layer added: its own lines, the next layer's input (when it names its input), its weight
  rows, and the header's node count; a TF1 layer is named by the shortest tail of its scope no
  other scope shares (issue "Readable at scale"), so a new layer renames only a layer whose
  name it now shares the tail of;
- repeated blocks (codegen/blocks.py writes them as functions called in a loop): one instance's
  filters become an argument of its call, that instance leaving the loop; one more instance is
  one more turn of the loop; a layer added inside one instance writes that instance out.

Two known exceptions are strict xfails: a change that leaves a block a single instance rewrites
all of build_model, because flat and factored code are spelled differently (emit.py); one more
layer of a stack lengthens the names of the layer before it (shortest tails).
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from graphs import INT32, Builder

CASES = Path(__file__).resolve().parent / "cases"
_spec = importlib.util.spec_from_file_location("cases_make", CASES / "make.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

SHA, COUNT = "# source sha256: ", "# Conversion: "


@pytest.fixture
def generate(tmp_path):
    """generate(build, seed=1, flat=False, **kw): model.py and load_weights.py of the graph
    `build(b, **kw)` writes, weights drawn with `seed` (`flat`: --flat); every version in a
    directory of its own under one file name, so the header names the same source."""
    count = iter(range(1000))

    def run(build, seed: int = 1, flat: bool = False, **kw) -> dict[str, str]:
        from codegen.convert import convert
        from codegen.options import Options

        b = Builder(seed, short_scalars=True)
        build(b, **kw)
        path = tmp_path / str(next(count)) / "net.pbtxt"
        path.parent.mkdir()
        path.write_text(b.text(), encoding="utf-8")
        return convert(path, Options(flat=flat))[1]

    return run


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) from old to new, in order."""
    removed, added = [], []
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    for line in diff:
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line[0] == "-" else added).append(line[1:])
    return removed, added


def body_changes(old: str, new: str, header: tuple[str, ...] = (SHA,)) -> tuple[list, list]:
    """`changes` without the header lines that a change may touch (`header`: their starts),
    after checking that each of them changed in place, one line for one."""
    removed, added = changes(old, new)
    for start in header:
        gone = [line for line in removed if line.startswith(start)]
        come = [line for line in added if line.startswith(start)]
        assert len(gone) == len(come) <= 1, (start, gone, come)
    keep = lambda lines: [l for l in lines if not l.startswith(header)]  # noqa: E731
    return keep(removed), keep(added)


def size(removed: list[str], added: list[str]) -> int:
    return len(removed) + len(added)


# -- graphs --------------------------------------------------------------------------------------


def global_pool(b, x):
    axes = b.const("pool/Mean/reduction_indices", np.array([1, 2], np.int32))
    return b.op("pool/Mean", "Mean", x, axes, Tidx=INT32, keep_dims=False)


def chain(b, filters=(4, 6, 8), extra_after=None):
    """conv0..conv2 (+ ReLU), global average pooling, dense logits: a keras.Sequential model.
    `extra_after=i`: a 1x1 conv `extra` after conv{i}."""
    x, cin = b.placeholder("input", [None, 8, 8, 3]), 3
    for i, cout in enumerate(filters):
        x, cin = make.conv(b, f"conv{i}", x, cin, cout), cout
        if extra_after == i:
            x = make.conv(b, "extra", x, cin, cin, k=1)
    make.dense(b, "logits", global_pool(b, x), cin, 5)


def branches(b, left=6, extra=False, right_proj=False):
    """A stem, two branches added together, a head: a functional model, one variable per
    layer. `left`: the filters of left/conv; `extra`: a conv added on the right branch;
    `right_proj`: a right/proj like left/proj."""
    x = b.placeholder("images", [None, 8, 8, 3])
    h = make.conv(b, "enc/conv1", x, 3, 4)
    a = make.conv(b, "left/conv", h, 4, left)
    a = make.conv(b, "left/proj", a, left, 6, k=1, act=None)
    c = make.conv(b, "right/conv", h, 4, 6)
    if extra:
        c = make.conv(b, "right/conv_extra", c, 6, 6, k=1)
    if right_proj:
        c = make.conv(b, "right/proj", c, 6, 6, k=1, act=None)
    h = b.op("merge/relu", "Relu", b.op("merge/add", "AddV2", a, c))
    make.conv(b, "head/conv", h, 6, 3, k=1, act=None)


def scaled(b, scale=0.25):
    """A conv, a scale and shift by scalar constants (a Rescaling: the code spells them), a
    per-channel Mul by a vector variable (LayerScale: a helper layer with a weight)."""
    x = b.placeholder("pixels", [None, 4, 4, 3])
    h = make.conv(b, "conv", x, 3, 4)
    with b.scope("rescale"):
        h = b.op("mul", "Mul", h, b.const("mul/y", np.float32(scale)))
        h = b.op("add", "AddV2", h, b.const("add/y", np.float32(-1.0)))
    with b.scope("layer_scale"):
        b.op("mul", "Mul", h, make.variable(b, "gamma", 4))


def encoder(b, layers=1):
    """A BERT-like TF1 encoder: per layer `encoder/layer_N/{attention/output, intermediate,
    output}/dense` and a residual add; then `pooler/dense`. Four layers end in `dense`."""
    x = b.placeholder("features", [None, 8])
    for i in range(layers):
        with b.scope(f"encoder/layer_{i}"):
            a = make.dense(b, "attention/output/dense", x, 8, 8)
            h = make.dense(b, "intermediate/dense", a, 8, 16, act="Relu")
            h = make.dense(b, "output/dense", h, 16, 8)
            x = b.op("add", "AddV2", h, x)
    make.dense(b, "pooler/dense", x, 8, 8, act="Tanh")


def blocks(b, count=4, wide=None, extra_in=None, units=False):
    """tests/cases/make.py's `blocks_repeated`: a stem, `block1` with a projection shortcut,
    block2..block{count} alike (one function called in a loop), a head. `wide=i`: block{i}'s
    conv_a has 5 filters, not 4; `extra_in=i`: a 1x1 conv `conv_x` inside block{i}."""
    x = b.placeholder("images", [None, 8, 8, 3])
    h = make.conv(b, "stem", x, 3, 4, act="Relu")
    for i in range(1, count + 1):
        with b.scope(f"block{i}"):
            f = 5 if i == wide else 4
            y = make.conv(b, "conv_a", h, 4, f, act=None)
            y = make.fused_batch_norm(b, "bn_a", y, f)
            y = b.op("relu_a", "Relu", y)
            if extra_in == i:
                y = make.conv(b, "conv_x", y, f, f, k=1)
            y = make.conv(b, "conv_b", y, f, 4, act=None)
            y = make.fused_batch_norm(b, "bn_b", y, 4)
            s = make.conv(b, "shortcut", h, 4, 4, k=1, act=None) if i == 1 else h
            y = b.op("add", "AddV2", y, s)
            h = b.op("out", "Relu", y)
    for i, filters in enumerate((6, 5, 3)):
        h = make.conv(b, f"head_{i}", h, (4, 6, 5)[i], filters, k=1, act="Relu")


# -- retrained weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("build", [chain, branches, blocks, scaled], ids=lambda f: f.__name__)
def test_retrained_weights_change_only_the_digest(generate, build):
    """Same structure, other variables: the code does not change, and neither does the loader
    (it reads weights by node name); only the digest of the graph's bytes does."""
    old, new = generate(build, seed=1), generate(build, seed=2)
    for name in ("model.py", "load_weights.py"):
        removed, added = changes(old[name], new[name])
        assert len(removed) == len(added) == 1, name
        assert removed[0].startswith(SHA) and added[0].startswith(SHA), name
        assert removed[0] != added[0]


def test_a_constant_the_code_spells_changes_its_layer_only(generate):
    """A scalar the code holds (a Rescaling's scale) is configuration, not a weight: its
    layer's line changes, as a changed filter count would."""
    old, new = generate(scaled), generate(scaled, scale=0.5)
    removed, added = body_changes(old["model.py"], new["model.py"])
    assert [line.strip() for line in removed + added] == [
        'keras.layers.Rescaling(0.25, offset=-1.0, name="rescale"),',
        'keras.layers.Rescaling(0.5, offset=-1.0, name="rescale"),',
    ]
    assert body_changes(old["load_weights.py"], new["load_weights.py"]) == ([], [])


# -- one layer's filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, before, after, layer",
    [(chain, {}, {"filters": (4, 7, 8)}, "conv1"), (branches, {}, {"left": 7}, "left_conv")],
    ids=["sequential", "functional"],
)
def test_changed_filters_change_that_layer_only(generate, build, before, after, layer):
    """The constructor line of the layer whose filters changed, nothing else: the layer that
    reads it infers its input channels, its weights keep their rows."""
    old, new = generate(build, **before), generate(build, **after)
    removed, added = body_changes(old["model.py"], new["model.py"])
    assert len(removed) == len(added) == 1, (removed, added)
    assert f'name="{layer}"' in added[0] or f'name="{layer}"' in _statement(new, added[0])
    assert removed[0].replace("6, 3,", "7, 3,") == added[0]
    assert body_changes(old["load_weights.py"], new["load_weights.py"]) == ([], [])


def _statement(files: dict[str, str], line: str) -> str:
    """The statement black wrapped `line` into: it and the lines up to the next comment."""
    lines = files["model.py"].splitlines()
    i = lines.index(line)
    start = max(j for j in range(i + 1) if lines[j].lstrip().startswith("#")) + 1
    end = next(j for j in range(i, len(lines)) if lines[j].lstrip().startswith("#"))
    return "\n".join(lines[start:end])


# -- one layer added -----------------------------------------------------------------------------


def test_added_layer_in_a_sequential_model(generate):
    """Its comment and its line; a Sequential model's next layer names no input."""
    old, new = generate(chain), generate(chain, extra_after=1)
    removed, added = body_changes(old["model.py"], new["model.py"], header=(SHA, COUNT))
    assert removed == []
    assert [line.strip() for line in added] == [
        "# extra/{Conv2D, BiasAdd, Relu}",
        'keras.layers.Conv2D(6, 1, padding="same", activation="relu", name="extra"),',
    ]
    removed, added = body_changes(old["load_weights.py"], new["load_weights.py"])
    assert removed == [] and [line.split(":")[0].strip() for line in added] == [
        '"extra/kernel"',
        '"extra/bias"',
    ]


def test_added_layer_in_a_functional_model(generate):
    """Its comment and call (black may wrap it), and the one line whose input it becomes."""
    old, new = generate(branches), generate(branches, extra=True)
    removed, added = body_changes(old["model.py"], new["model.py"], header=(SHA, COUNT))
    merge = '    merge = keras.layers.Add(name="merge")([proj, {}])'
    assert removed == [merge.format("right_conv")]
    assert added[-1] == merge.format("conv_extra")
    call = "\n".join(added[1:-1])
    assert added[0].strip() == "# right/conv_extra/{Conv2D, BiasAdd, Relu}"
    assert call.startswith("    conv_extra = keras.layers.Conv2D(")
    assert 'name="conv_extra"' in call and "(right_conv)" in call and len(added) <= 6
    removed, added = body_changes(old["load_weights.py"], new["load_weights.py"])
    assert removed == [] and len(added) == 2
    assert all(line.startswith('    "conv_extra/') for line in added)


def test_added_layer_renames_only_the_layer_it_collides_with(generate):
    """A new `right/proj` beside `left/proj`: names are the shortest tail of the scope that no
    other scope shares (issue "Readable at scale"), so the old `proj` becomes `left_proj`, and
    nothing else is renamed: its lines, its reader's, its two weight rows."""
    old, new = generate(branches), generate(branches, right_proj=True)
    removed, added = body_changes(old["model.py"], new["model.py"], header=(SHA, COUNT))
    assert all("proj" in line for line in removed), removed
    assert size(removed, added) <= 14
    removed, added = body_changes(old["load_weights.py"], new["load_weights.py"])
    assert all("proj" in line for line in removed + added) and len(removed) <= 2


@pytest.mark.xfail(
    strict=True,
    reason="names are the shortest scope tail no other scope shares (issue 'Readable at "
    "scale'): a second encoder layer makes the first one's names longer",
)
def test_one_more_encoder_layer_renames_no_layer(generate):
    """One more layer of a stack (written flat: two like layers would otherwise become a block
    function): its lines, the pooler's input, its weight rows."""
    old, new = generate(encoder, flat=True), generate(encoder, layers=2, flat=True)
    removed, added = body_changes(old["model.py"], new["model.py"], header=(SHA, COUNT))
    assert (removed, added[-1]) == (["        encoder_layer_0"], "        encoder_layer_1")


# -- repeated blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize("wide", [2, 3, 4])
def test_one_block_instance_with_other_filters(generate, wide):
    """The block function gains a `filters` parameter (its conv_a uses it, default the common
    value); the changed instance leaves the loop as a call of its own with `filters=5`; the
    loop covers the rest. Nothing outside the function's head and the calls changes."""
    old, new = generate(blocks), generate(blocks, wide=wide)
    removed, added = body_changes(old["model.py"], new["model.py"])
    assert size(removed, added) <= 12, (removed, added)
    assert removed[:2] == [
        "def block(inputs, *, name):",
        '    x = layers.Conv2D(4, 3, padding="same", name=f"{name}_conv_a")(inputs)',
    ]
    assert added[:2] == [
        "def block(inputs, filters=4, *, name):",
        '    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv_a")(inputs)',
    ]
    calls = {"    for i in range(2, 5):", '        x = block(x, name=f"block{i}")'}
    assert set(removed[2:]) <= calls
    assert f'    x = block(x, filters=5, name="block{wide}")' in added[2:]
    rest = [line for line in added[2:] if "filters=5" not in line]
    assert all(
        line.startswith(("    for i in range(", '        x = block(x, name=f"block{i}")'))
        or line.startswith('    x = block(x, name="block')
        for line in rest
    ), rest
    assert body_changes(old["load_weights.py"], new["load_weights.py"]) == ([], [])


def test_one_more_block_instance(generate):
    """One more turn of the loop, and the new instance's weight rows after the others."""
    old, new = generate(blocks), generate(blocks, count=5)
    removed, added = body_changes(old["model.py"], new["model.py"], header=(SHA, COUNT))
    assert (removed, added) == (["    for i in range(2, 5):"], ["    for i in range(2, 6):"])
    removed, added = body_changes(old["load_weights.py"], new["load_weights.py"])
    assert removed == [] and len(added) == 12
    assert all(line.startswith('    "block5_') for line in added)


def test_layer_added_inside_one_block_instance(generate):
    """That instance no longer matches the others: it leaves the loop and is written out layer
    by layer between the calls of its neighbours; the block function, the layers before and
    after, and every other weight row stay as they were."""
    old, new = generate(blocks), generate(blocks, extra_in=3)
    removed, added = body_changes(old["model.py"], new["model.py"], header=(SHA, COUNT))
    assert removed == ["    for i in range(2, 5):", '        x = block(x, name=f"block{i}")']
    assert added[0] == '    x = block(x, name="block2")'
    assert added[-1] == '    x = block(x, name="block4")'
    inline = "\n".join(added[1:-1])
    comments = [line.strip() for line in added[1:-1] if line.strip().startswith("#")]
    assert all(c.startswith("# block3/") for c in comments) and len(comments) == 8
    assert "keras.Model" not in inline and "def " not in inline
    assert size(removed, added) <= 24
    removed, added = body_changes(old["load_weights.py"], new["load_weights.py"])
    assert removed == [] and len(added) == 2
    assert all('"block3/conv_x/' in line for line in added), added


@pytest.mark.xfail(
    strict=True,
    reason="emit.py spells a flat build_model otherwise than a factored one (keras.layers.X "
    "and one variable per layer, against `from keras import layers` and `x` along chains): "
    "when a change leaves a block one instance, every line of build_model is rewritten",
)
def test_block_dissolving_keeps_the_lines_before_it(generate):
    """blocks(count=3) has two like instances (block2, block3); a layer added to block3 leaves
    one, so the block function goes and both are written out. The stem and block1 before them
    are the same layers and should read the same."""
    old, new = generate(blocks, count=3), generate(blocks, count=3, extra_in=3)
    old_lines = old["model.py"].splitlines()
    start = old_lines.index("def build_model() -> keras.Model:")
    end = next(i for i, line in enumerate(old_lines) if line.startswith("    for i in range("))
    new_lines = set(new["model.py"].splitlines())
    assert [line for line in old_lines[start:end] if line not in new_lines] == []
