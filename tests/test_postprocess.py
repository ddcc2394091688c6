"""The libcst passes as before/after source strings: what each one does, at a glance."""

from __future__ import annotations

import textwrap

import libcst as cst

from codegen.postprocess import CollapseSequential, DropUnusedDefinitions, tidy, used_names


def _apply(transformer, before: str) -> str:
    return cst.parse_module(textwrap.dedent(before)).visit(transformer).code


def test_chain_collapses_to_sequential_keeping_comments():
    before = """
    import keras


    def build_model() -> keras.Model:
        input_ = keras.Input(shape=(4,), name="input")
        # fc/MatMul
        fc = keras.layers.Dense(3, name="fc")(input_)
        # act
        act = keras.layers.ReLU(name="act")(fc)
        return keras.Model(inputs=input_, outputs=act, name="m")
    """
    after = """\
    import keras


    def build_model() -> keras.Model:
        return keras.Sequential(
            [
                keras.Input(shape=(4,), name="input"),
                # fc/MatMul
                keras.layers.Dense(3, name="fc"),
                # act
                keras.layers.ReLU(name="act"),
            ],
            name="m",
        )
    """
    assert tidy(textwrap.dedent(before)) == textwrap.dedent(after)


def test_branches_stay_functional():
    before = """
    def build_model():
        x = keras.Input(shape=(4,), name="input")
        a = keras.layers.Dense(3, name="a")(x)
        b = keras.layers.Dense(3, name="b")(x)
        s = keras.layers.Add(name="s")([a, b])
        return keras.Model(inputs=x, outputs=s, name="m")
    """
    assert _apply(CollapseSequential(), before) == textwrap.dedent(before)


def test_unused_imports_and_helper_classes_are_dropped():
    before = """
    import keras
    import numpy as np


    class Unused(keras.layers.Layer):
        pass


    class Used(keras.layers.Layer):
        pass


    def build_model():
        return Used()
    """
    after = """
    import keras


    class Used(keras.layers.Layer):
        pass


    def build_model():
        return Used()
    """
    module = cst.parse_module(textwrap.dedent(before))
    assert module.visit(DropUnusedDefinitions(used_names(module.code))).code == textwrap.dedent(
        after
    )
