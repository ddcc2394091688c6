"""Recipes: the loader's numpy source (emit.recipe_source) and the interpreter (recipes.evaluate)
compute the same value, and a folded constant's recipe rebuilds the folded value."""

from __future__ import annotations

import numpy as np
import pytest

from codegen.emit import recipe_source
from codegen.graph import Graph, Node
from codegen.passes.fold import Constants
from codegen.recipes import (
    AsType,
    Concat,
    Operand,
    Read,
    Reshape,
    Slice,
    Transpose,
    Ufunc,
    Value,
    Variable,
    bind,
    evaluate,
)

STORED = {
    "w": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    "b": np.linspace(-1, 1, 8).astype(np.float32),
}

RECIPES = [
    Read("w"),
    Variable("b"),
    Value([[1, 2], [3, 4]], "int64"),
    Reshape(Read("w"), (6, 4)),
    Transpose(Read("w"), (2, 0, 1)),
    AsType(Variable("b"), "float64"),
    Slice(Read("w"), 1, 3, 1),
    Slice(Read("w"), 0, 2, -1),
    Concat(0, (Variable("b"), Slice(Variable("b"), 2, 4, 0))),
    Ufunc("add", (Slice(Variable("b"), 0, 4, 0), 1.0)),
    Ufunc("multiply", (Reshape(Read("w"), (24,)), Reshape(Read("w"), (24,)))),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=repr)
def test_source_and_evaluate_agree(recipe):
    """What load_weights.py computes is what evaluate computes, value and dtype."""
    expected = evaluate(recipe, STORED)
    for reader in ("graph", "checkpoint"):
        got = eval(recipe_source(recipe, reader), {"np": np, reader: STORED})
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_walks():
    recipe = Concat(0, (Ufunc("add", (Variable("k"), 0.5)), Read("a/read"), Read("b")))
    assert recipe.first_source() == "k"
    assert recipe.graph_reads() == ["a/read", "b"]
    assert recipe.reads_graph() and not Reshape(Variable("k"), (1,)).reads_graph()
    assert Value([1.0], "float32").first_source() is None


def test_bind_replaces_operands_in_order():
    template = Concat(1, (Slice(Operand("x:0"), 0, 2, 1), Ufunc("add", (Operand("y:0"), 1.0))))
    seen = []
    bound = bind(template, lambda ref: seen.append(ref) or Read(ref.split(":")[0]))
    assert seen == ["x:0", "y:0"]
    assert bound == Concat(1, (Slice(Read("x"), 0, 2, 1), Ufunc("add", (Read("y"), 1.0))))
    assert bind(template, lambda ref: None if ref == "y:0" else Read(ref)) is None


def _const(name, value):
    value = np.asarray(value)
    return Node(name, "Const", [], {"value": value, "dtype": value.dtype.name})


def test_folded_recipe_rebuilds_the_folded_value():
    """Fold's recipe for a constant computed from stored ones evaluates, from those stored
    constants, to the value fold computed."""
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [
        _const("w", w),
        _const("shape", np.array([4, 3], np.int32)),
        _const("perm", np.array([1, 0], np.int32)),
        _const("half", np.float32(0.5)),
        Node("r", "Reshape", ["w:0", "shape:0"], {}),
        Node("t", "Transpose", ["r:0", "perm:0"], {}),
        Node("c", "Cast", ["t:0"], {"DstT": "float64"}),
        Node("m", "Mul", ["c:0", "half:0"], {}),
    ]
    consts = Constants(Graph(nodes))
    recipe = consts.recipe("m:0")
    assert recipe == Ufunc(
        "multiply", (AsType(Transpose(Reshape(Read("w"), (4, 3)), (1, 0)), "float64"), 0.5)
    )
    value = evaluate(recipe, {"w": w})
    assert value.dtype == consts.value("m:0").dtype
    assert np.array_equal(value, consts.value("m:0"))
