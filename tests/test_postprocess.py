"""The libcst passes as before/after source strings: what each one does, at a glance."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from codegen.postprocess import tidy, tidy_module, tidy_statements, used_names
from codegen.source_passes import CollapseSequential, DropUnusedDefinitions


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


# -- build_model a statement at a time -----------------------------------------------------------
# `tidy` formats build_model statement by statement (shapes formatted once, in batches); it must
# write exactly what the passes and black over the whole module write.


def _rendered_case(name: str, flat: bool = False) -> str:
    from codegen.analyze import analyze_file
    from codegen.cli import parser
    from codegen.emit import render
    from codegen.options import Options
    from test_cases import CASES, options

    path = CASES / f"{name}.pbtxt"
    args = parser().parse_args([str(path), *options(path)])
    spec = analyze_file(path, Options.from_args(args))
    return render(spec, ("model.py",), flat=flat)["model.py"]


def _golden_names() -> list[str]:
    from test_cases import names

    return names()


@pytest.mark.parametrize("name", _golden_names())
def test_statement_wise_tidy_is_the_whole_module_tidy_on_every_golden_case(name):
    """The flat build_model takes the statement-wise path; a factored one (blocks.py: `for`
    loops over block calls) may take the whole-module path (factoring stops at
    blocks.MAX_LAYERS layers, so that path stays small), and `tidy` writes the same either
    way: what the libcst passes and black write (tidy_module skips libcst where they change
    nothing)."""
    for flat in (True, False):
        source = _rendered_case(name, flat)
        for sequential in (True, False):
            fast = tidy_statements(source, sequential)
            if flat:
                assert fast is not None, "the template's flat form takes the statement-wise path"
            whole = tidy_module(source, sequential)
            assert whole == _libcst_tidy(source, sequential)
            assert fast is None or fast == whole
            assert tidy(source, sequential) == whole


def _libcst_tidy(source: str, sequential: bool) -> str:
    """The whole-module passes run through libcst unconditionally (tidy_module skips libcst when
    they would change nothing)."""
    from codegen.postprocess import format_source

    module = cst.parse_module(source)
    if sequential:
        module = module.visit(CollapseSequential())
    module = module.visit(DropUnusedDefinitions(used_names(module.code)))
    return format_source(module.code)


def _module(body: list[str], head: str = "import keras\n\n\n", define: str = "") -> str:
    define = define or "def build_model() -> keras.Model:"
    return head + define + "\n" + "".join(f"    {line}\n" for line in body)


def _chain(n: int, comment=lambda i: f"# layer {i}/Relu", name="m") -> list[str]:
    body = ["x = keras.Input(shape=(4,), name='x')"]
    prev = "x"
    for i in range(n):
        if comment(i) is not None:
            body.append(comment(i))
        body.append(
            f"layer_{i} = keras.layers.Dense(4, activation='relu', name='layer_{i}')({prev})"
        )
        prev = f"layer_{i}"
    return body + [f"return keras.Model(inputs=x, outputs={prev}, name={name!r})"]


LONG = "a_rather_long_layer_name_that_makes_every_line_too_long_for_black_" * 2
ODD_MODULES = {
    "short chain": _module(_chain(2, comment=lambda i: None)),
    "short chain, long name": _module(_chain(2, comment=lambda i: None, name=LONG)),
    "short chain with comments": _module(_chain(2)),
    "long chain, no comments": _module(_chain(40, comment=lambda i: None)),
    "long chain, long model name": _module(_chain(40, comment=lambda i: None, name=LONG)),
    "long lines": _module(_chain(5, name=LONG)).replace("layer_", LONG),
    "odd comments": _module(
        _chain(
            8,
            comment=lambda i: [
                "#no space",
                "# trailing space   ",
                "# type:   ignore",
                "#  two spaces",
                "#",
                "# graph2py: next statement",
                "# … ünïcødé",
                "# QZ0ZZ",
            ][i],
        )
    ),
    "strings": _module(
        [
            "x = keras.Input(shape=(4,), name='x')",
            "a = keras.layers.Dense(4, name='it\\'s \"quoted\"')(x)",
            "b = keras.layers.Dense(4, name='back\\\\slash')(a)",
            "c = keras.layers.Dense(4, name='层层层层层层层层层层层层层层层层层层层层层层层层层层层层层层层层层层层')(b)",
            "d = keras.layers.Dense(4, name=\"é\" 'x')(c)",
            "ünï = keras.layers.Dense(4, name='ünï')(d)",
            "层层层层层层层层层层层层层层层层层层层层层层层层层层层层 = keras.layers.Dense(4)(ünï)",
            "type = keras.layers.Dense(4)(层层层层层层层层层层层层层层层层层层层层层层层层层层层层)",
            "e = keras.ops.add(type, keras.ops.convert_to_tensor([[1.5e-05, -2.0], [3.0, 4.0]]))",
            "f = keras.layers.Lambda(lambda t: t[..., 0:1], name='QZ1ZZ')(e)",
            "g = keras.layers.Dense(4, name=b'bytes_name')(f)  # a trailing comment",
            "return keras.Model(inputs=[x], outputs=[g, f], name='m')",
        ]
    ),
    "no annotation, unused helper": _module(
        _chain(3),
        head="import keras\nimport numpy as np\n\n\nclass Helper(keras.layers.Layer):\n    pass\n\n\n",
        define="def build_model():",
    ),
    "used helper": _module(
        [
            "x = keras.Input(shape=(4,), name='x')",
            "y = Helper(name='helper_layer_with_a_name')(x)",
            "return keras.Model(inputs=x, outputs=y, name='m')",
        ],
        head="import keras\n\n\nclass Helper(keras.layers.Layer):\n    pass\n\n\n",
    ),
    "one-argument variants": _module(
        [
            "x = keras.Input(shape=(4,), name='x')",
            "a = keras.layers.Dense(4, name='a')(inputs=x)",
            "b = keras.layers.Dense(4, name='b')(a)",
            "return keras.Model(inputs=x, outputs=b, name='m')",
        ]
    ),
}


def test_statement_wise_tidy_on_chains_of_every_length_near_the_line_length():
    """Whether black keeps a Sequential list on one line depends on its length."""
    for n in range(1, 9):
        for name in ("m", "m" * 20, "m" * 60):
            for comment in (lambda i: None, lambda i: "# c" if i == n - 1 else None):
                source = _module(_chain(n, comment=comment, name=name))
                assert tidy_statements(source) == tidy_module(source)


@pytest.mark.parametrize("name", sorted(ODD_MODULES))
def test_statement_wise_tidy_on_odd_modules(name):
    source = ODD_MODULES[name]
    for sequential in (True, False):
        fast = tidy_statements(source, sequential)
        assert fast is not None
        assert fast == tidy_module(source, sequential)


FACTORED = {
    "a loop": _module(
        [
            "x = keras.Input(shape=(4,), name='x')",
            "for i in range(3):",
            "    x = block(x, 4, name=f'block_{i}')",
            "return keras.Model(inputs=x, outputs=x, name='m')",
        ],
        head="import keras\n\n\ndef block(x, units, *, name):\n    return keras.layers.Dense(units, name=name)(x)\n\n\n",
    ),
    "a loop, an unused import and helper": _module(
        [
            "x = keras.Input(shape=(4,), name='x')",
            "for i in range(3):",
            "    x = keras.layers.Dense(4, name=f'd_{i}')(x)",
            "return keras.Model(inputs=x, outputs=x, name='m')",
        ],
        head="import keras\nimport numpy as np\n\n\nclass Helper(keras.layers.Layer):\n    pass\n\n\n",
    ),
    "a chain, and a block function with a loop": _module(
        _chain(3),
        head="import keras\n\n\ndef unused_block(x):\n    for _ in range(2):\n        x = x\n    return x\n\n\n",
    ),
    "an if in build_model": _module(
        [
            "x = keras.Input(shape=(4,), name='x')",
            "if True:",
            "    y = keras.layers.Dense(4, name='d')(x)",
            "return keras.Model(inputs=x, outputs=y, name='m')",
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(ODD_MODULES) + sorted(FACTORED))
def test_whole_module_tidy_is_libcsts_on_odd_and_factored_modules(name):
    source = {**ODD_MODULES, **FACTORED}[name]
    for sequential in (True, False):
        assert tidy_module(source, sequential) == _libcst_tidy(source, sequential)
        assert tidy(source, sequential) == tidy_module(source, sequential)


@pytest.mark.parametrize(
    "source",
    [
        _module(["# fmt: off", *_chain(2)]),  # black would leave the rest as it is
        _module(_chain(2)).replace("name='layer_1')", "name='layer_1')  # fmt: skip"),
        "# fmt: off\n" + _module(_chain(2)),
        _module(_chain(2)) + "\n\nx = 1\n",  # build_model is not the last definition
        _module(["x = 1", "", "return x"]),  # a blank line in the body
        _module(["if True: x = 1", "return x"]),  # not an assignment
        _module(["x = f(", "    1)", "return x"]),  # a statement over two lines
        _module(["x = 1; y = 2", "return x"]),
        _module(["x = '\x0c'", "return x"]),
        # black infers the Python versions a module targets from these (they decide a trailing
        # comma after *args), so a statement holding one is not formatted apart from the rest
        _module(["x = keras.Input(shape=(4,))", "y = keras.layers.Dense(4)(*x)", "return y"]),
        _module(["x = f'{1}'", "return x"]),
        _module(["x = (y := 1)", "return x"]),
        _module(["x = 1_000", "return x"]),
        _module(["x = lambda a, /: a", "return x"]),
    ],
)
def test_other_forms_take_the_whole_module_path(source):
    assert tidy_statements(source) is None
    assert tidy(source) == tidy_module(source)


def test_black_formats_one_statement_per_shape(monkeypatch):
    """A 3,000-layer chain: black sees its shapes (a few dozen lines), not 3,000 statements,
    so formatting grows with the number of statements no faster than a dictionary does."""
    import codegen.postprocess as postprocess

    seen = []
    format_source = postprocess.format_source
    monkeypatch.setattr(postprocess, "format_source", lambda s: seen.append(s) or format_source(s))
    source = _module(_chain(3000))
    for sequential in (True, False):
        seen.clear()
        formatted = tidy(source, sequential)
        assert sum(s.count("\n") for s in seen) < 100
        assert formatted == tidy_module(source, sequential)
