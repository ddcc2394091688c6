"""Block functions and loops (codegen/blocks.py), without TensorFlow: the golden case
`blocks_repeated` shows the form; these check what it must never do."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from codegen.convert import convert
from codegen.options import Options

CASE = Path(__file__).parent / "cases" / "blocks_repeated.pbtxt"


def _model(path: Path, options: Options = Options()) -> str:
    return convert(path, options, files=("model.py",))[1]["model.py"]


def _layer_names(source: str) -> list[str]:
    """Every layer name the code builds, block calls expanded (f-strings over `name` and `i`)."""
    tree = ast.parse(source)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def names_in(function: ast.FunctionDef, env: dict) -> list[str]:
        found = []
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            callee = node.func.id if isinstance(node.func, ast.Name) else None
            if callee in functions and callee != function.name:
                value = keywords.get("name") or keywords.get("index")
                loops = [env]
                for parent in ast.walk(function):
                    if isinstance(parent, ast.For) and node in ast.walk(parent):
                        start, stop = (a.value for a in parent.iter.args)
                        loops = [{**env, "i": i} for i in range(start, stop)]
                for scope in loops:
                    inner = {"name": eval(compile(ast.Expression(value), "", "eval"), {}, scope)}
                    found += names_in(functions[callee], inner)
            elif "name" in keywords and not callee:
                found.append(eval(compile(ast.Expression(keywords["name"]), "", "eval"), {}, env))
        return found

    return names_in(functions["build_model"], {})


def test_factored_and_flat_name_the_same_layers():
    factored, flat = _model(CASE), _model(CASE, Options(flat=True))
    assert "def block(" in factored and "for i in range(2, 5):" in factored
    assert re.findall(r"^def (\w+)", flat, re.M) == ["build_model"]
    assert sorted(_layer_names(factored)) == sorted(_layer_names(flat))
    assert len(_layer_names(flat)) == len(set(_layer_names(flat))) > 20


def test_the_output_is_the_same_every_run():
    assert _model(CASE) == _model(CASE)


def test_names_that_need_escaping_stay_literals(tmp_path):
    """A scope holding a quote, brace or backslash never becomes f-string text: those blocks
    stay flat, written as escaped literals, and the file compiles."""
    text = CASE.read_text(encoding="utf-8")
    for payload in ('b\\"{x}', "b\\\\N"):  # pbtxt escapes: the names hold b"{x} and b\\N
        hostile = tmp_path / "hostile.pbtxt"
        hostile.write_text(text.replace('"block', f'"{payload}'), encoding="utf-8")
        source = _model(hostile)
        compile(source, "model.py", "exec")
        for template in re.findall(r'name=f"([^"]*)"', source):
            assert re.fullmatch(r"[A-Za-z0-9_.\-/: {}]*", template), template


def test_a_window_across_two_blocks_is_no_block():
    """Names are the alignment: every layer of a block function is `<part><suffix>` with one
    part per call, so no function mixes the end of one block with the start of the next."""
    blocks = _model(CASE).split("def build_model")[0]
    for template in re.findall(r'name=f"([^"]*)"', blocks):
        assert template.startswith("{name}"), template
