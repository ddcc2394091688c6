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


def _conv_chain(path, units: int) -> None:
    """Conv2D + BiasAdd + Relu units, TF1-style variables: two weights per unit."""
    from graphs import FLOAT, Builder

    b = Builder(0)
    x = b.placeholder("images", [None, 4, 4, 2])
    for i in range(units):
        with b.scope(f"conv_{i}"):
            kernel = b.op("kernel/read", "Identity", b.weight("kernel", 1, 1, 2, 2), T=FLOAT)
            x = b.op("Conv2D", "Conv2D", x, kernel, strides=[1, 1, 1, 1], padding="SAME")
            x = b.op("BiasAdd", "BiasAdd", x, b.weight("bias", 2))
            x = b.op("Relu", "Relu", x)
    path.write_bytes(b.graph.SerializeToString())


def test_black_formats_a_few_lines_per_shape_of_a_large_model(tmp_path, monkeypatch):
    """A 1,500-layer chain: black sees each kind of statement and weight row once (with the
    modules around them), not 1,500 statements and 3,000 rows."""
    import codegen.convert
    import codegen.postprocess
    from codegen.convert import convert
    from codegen.postprocess import format_source

    seen = []

    def counting(source: str) -> str:
        seen.append(source.count("\n"))
        return format_source(source)

    monkeypatch.setattr(codegen.convert, "format_source", counting)
    monkeypatch.setattr(codegen.postprocess, "format_source", counting)
    _conv_chain(tmp_path / "chain.pb", 1500)
    _, files = convert(tmp_path / "chain.pb")
    assert files["model.py"].count("keras.layers.Conv2D(") == 1500
    table = files["load_weights.py"].split("\nWEIGHTS = {\n", 1)[1].split("\n}\n", 1)[0]
    assert len(table.splitlines()) == 3000
    assert sum(seen) < 1000


class CountedSet(set):
    """A set that counts membership tests."""

    tests = 0

    def __contains__(self, item):
        CountedSet.tests += 1
        return super().__contains__(item)


def test_allocator_numbers_many_claims_of_one_name_without_rescanning():
    """10,000 layers wanting one name (ops in one scope): each claim tries a few names, not
    every `name_k` handed out before it (fifty million tries)."""
    from codegen.names import Allocator

    names = Allocator({"input"})
    names.used = CountedSet(names.used)
    CountedSet.tests = 0
    claimed = [names.claim("relu") for _ in range(10_000)]
    assert claimed[:3] == ["relu", "relu_2", "relu_3"] and claimed[-1] == "relu_10000"
    assert CountedSet.tests <= 3 * 10_000


def test_allocator_gives_the_first_free_number():
    from codegen.names import Allocator

    names = Allocator({"input"})
    claims = ["a", "a_2", "a", "a", "a_3", "input", "input", "input", "a_2", "a"]
    assert [names.claim(w) for w in claims] == [
        "a",
        "a_2",
        "a_3",
        "a_4",
        "a_3_2",
        "input_",
        "input_2",
        "input_3",
        "a_2_2",
        "a_5",
    ]


def _reshapes(path, count: int) -> None:
    """Reshapes to [batch, 4] and back to [batch, 2, 2], each target shape packed from the
    input's batch size (Shape, StridedSlice, Pack): the plumbing a Reshape layer absorbs."""
    import numpy as np
    from graphs import FLOAT, INT32, Builder

    b = Builder(0)
    x = b.placeholder("x", [None, 2, 2])
    for i in range(count):
        with b.scope(f"reshape_{i}"):
            bounds = [
                b.const(f"stack_{k}", np.array([v], np.int32)) for k, v in enumerate([0, 1, 1])
            ]
            shape = b.op("Shape", "Shape", x, T=FLOAT, out_type=INT32)
            batch = b.op(
                "strided_slice",
                "StridedSlice",
                shape,
                *bounds,
                T=INT32,
                Index=INT32,
                shrink_axis_mask=1,
            )
            dims = [
                b.const(f"dim_{k}", np.int32(d))
                for k, d in enumerate([4] if i % 2 == 0 else [2, 2])
            ]
            target = b.op("shape", "Pack", batch, *dims, T=INT32, N=1 + len(dims), axis=0)
            x = b.op("Reshape", "Reshape", x, target, Tshape=INT32)
    path.write_bytes(b.graph.SerializeToString())


def test_patterns_do_not_walk_the_graph_per_layer(tmp_path, monkeypatch):
    """600 Flatten and Reshape layers, each absorbing its shape plumbing: the plumbing is put in the graph's
    order without walking all 3,600 nodes for each layer."""
    from codegen.analyze import analyze_file
    from codegen.graph import Graph

    walks = []
    iterate = Graph.__iter__
    monkeypatch.setattr(Graph, "__iter__", lambda self: walks.append(1) or iterate(self))
    _reshapes(tmp_path / "reshapes.pb", 600)
    spec = analyze_file(tmp_path / "reshapes.pb")
    assert [l.cls for l in spec.layers] == ["Flatten", "Reshape"] * 300
    assert len(walks) < 100


def test_many_outputs_are_not_compared_with_every_layer(tmp_path, monkeypatch):
    """3,000 Relu nodes reading one input are 3,000 outputs and 3,000 layers; whether a layer
    hides an output is looked up by node, not by going through every output for each layer."""
    import codegen.analyze
    from codegen.analyze import analyze_file
    from codegen.graph import split_ref
    from graphs import Builder

    b = Builder(0)
    x = b.placeholder("x", [None, 8])
    for i in range(3000):
        b.op(f"relu_{i}", "Relu", x)
    (tmp_path / "fan.pb").write_bytes(b.graph.SerializeToString())
    calls = []
    monkeypatch.setattr(codegen.analyze, "split_ref", lambda t: calls.append(1) or split_ref(t))
    spec = analyze_file(tmp_path / "fan.pb")
    assert len(spec.layers) == len(spec.outputs) == 3000
    assert len(calls) < 10 * 3000
