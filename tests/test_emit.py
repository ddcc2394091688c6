"""The emitter's tables and escapes, checked against the real Keras and Python."""

from __future__ import annotations

import inspect

import keras
import pytest

from codegen.emit import DEFAULTS, literal
from codegen.names import Allocator, RESERVED, comment_text, identifier


@pytest.mark.parametrize("cls", sorted(DEFAULTS))
def test_defaults_match_keras(cls):
    """Leaving an argument out is only right if Keras's default is the value we drop."""
    params = inspect.signature(getattr(keras.layers, cls).__init__).parameters
    for name, value in DEFAULTS[cls].items():
        assert name in params, f"{cls} has no argument {name}"
        default = params[name].default
        if isinstance(default, tuple) and isinstance(value, int):
            value = (value,) * len(
                default
            )  # Keras normalises 1 to (1, 1); so do we when we omit it
        assert _plain(default) == _plain(
            value
        ), f"{cls}({name}=...) defaults to {default!r}, not {value!r}"


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


@pytest.mark.parametrize(
    "value",
    [
        'x"); import os; os.system("echo pwned',
        "new\nline",
        "tab\tand \\ backslash",
        "ünïcødé",
        (1,),
        [1.5, None],
        {"a": (1, 2)},
    ],
)
def test_literals_round_trip(value):
    assert eval(literal(value), {}) == value


def test_non_finite_floats_are_valid_python():
    assert eval(literal(float("inf")), {}) == float("inf")
    assert eval(literal(float("nan")), {}) != eval(literal(float("nan")), {})  # nan, not a typo


def test_identifiers_are_safe_and_unique():
    names = Allocator(RESERVED)
    got = [
        names.claim(identifier(t))
        for t in ["input", "class", "Conv1", "conv1", "3x3", "a/b-c", "", "print"]
    ]
    assert got == ["input_", "class_", "conv1", "conv1_2", "t_3x3", "a_b_c", "x", "print_"]
    assert all(g.isidentifier() for g in got)


def test_comments_cannot_break_lines():
    assert "\n" not in comment_text("a\nb\r\u2028c") and comment_text("a\nb").startswith("a")
