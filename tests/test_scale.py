"""Conversion work that grows linearly with the graph: the steps that once compared every layer
or node with every other, checked by counting the work rather than timing it (timings are
bench/scale.py's business)."""

from __future__ import annotations

import pytest

from codegen.analyze import dependency_order
from codegen.errors import UnsupportedError
from codegen.spec import Layer


class Counted(list):
    """A list that counts how often it is read through."""

    reads = 0

    def __iter__(self):
        Counted.reads += 1
        return super().__iter__()


def _layer(i: int, reads: list[str]) -> Layer:
    return Layer(f"l{i}", Counted(reads), [f"t{i}"], [f"n{i}"], ["Relu"], cls="ReLU")


def test_dependency_order_reads_each_layer_once():
    """2,000 layers listed in reverse: each step takes the earliest layer whose inputs exist,
    found without rescanning the list (which read the inputs two million times)."""
    n = 2000
    layers = [_layer(i, [f"t{i - 1}"]) for i in reversed(range(n))]
    Counted.reads = 0
    ordered = dependency_order(layers, {"t-1"})
    assert [l.name for l in ordered] == [f"l{i}" for i in range(n)]
    assert Counted.reads <= 2 * n


def test_dependency_order_takes_the_earliest_ready_layer():
    # l2 reads nothing produced yet; l0 and l3 are ready from the start, l1 after l3
    layers = [
        _layer(0, ["x"]),
        _layer(1, ["t3", "x"]),
        _layer(2, ["t1", "t1"]),
        _layer(3, ["x"]),
    ]
    assert [l.name for l in dependency_order(layers, {"x"})] == ["l0", "l3", "l1", "l2"]


def test_dependency_order_names_the_tensors_never_produced():
    layers = [_layer(0, ["x"]), _layer(1, ["ghost", "t0"]), _layer(2, ["t1"])]
    with pytest.raises(UnsupportedError, match=r"tensors \['ghost', 't1'\] are never produced"):
        dependency_order(layers, {"x"})
