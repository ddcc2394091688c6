"""The libcst passes over a whole rendered module, each one small CST transformer with a
one-line DESCRIPTION; tests/test_postprocess.py states them as before/after source strings.

They live apart from postprocess.py because importing libcst takes about a sixth of the CPU
time of `graph2py mobilenetv2.pb`, while a conversion rarely needs them: postprocess's
statement-wise path does what they do with `ast` and reaches for them only when there is
something to drop, and the whole-module path (`tidy_module`) is for modules not in the form
the template renders.
"""

from __future__ import annotations

import libcst as cst

from .spec import forms_chain


class DropUnusedDefinitions(cst.CSTTransformer):
    """Remove module-level imports and classes that nothing in the module refers to."""

    DESCRIPTION = "drop unused imports and helper classes"

    def __init__(self, used: set[str]):
        self.used = used

    def visit_FunctionDef(self, node):
        return False  # only module-level definitions are candidates; skip the bodies

    def visit_ClassDef(self, node):
        return False

    def leave_ClassDef(self, original, updated):
        return updated if updated.name.value in self.used else cst.RemovalSentinel.REMOVE

    def leave_SimpleStatementLine(self, original, updated):
        body = []
        for stmt in updated.body:
            if isinstance(stmt, cst.Import):
                names = [a for a in stmt.names if _bound_name(a) in self.used]
                if not names:
                    continue
                names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                stmt = stmt.with_changes(names=names)
            body.append(stmt)
        if not body:
            return cst.RemovalSentinel.REMOVE
        return updated.with_changes(body=body)


def _bound_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return alias.asname.name.value
    node = alias.name
    while isinstance(node, cst.Attribute):
        node = node.value
    return node.value


class CollapseSequential(cst.CSTTransformer):
    """A single-input, single-output chain becomes `keras.Sequential([...])`."""

    DESCRIPTION = "rewrite a plain layer chain as keras.Sequential"

    def visit_FunctionDef(self, node):
        return False  # the rewrite replaces the whole body in leave_FunctionDef

    def visit_ClassDef(self, node):
        return False

    def leave_FunctionDef(self, original, updated):
        if updated.name.value != "build_model":
            return updated
        stmts = list(updated.body.body)
        chain = _chain(stmts)
        if chain is None:
            return updated
        input_call, layers, model_call = chain
        calls = [(input_call, [])] + layers
        elements = []
        for i, (call, _) in enumerate(calls):
            element = cst.Element(value=call)
            following = calls[i + 1][1] if i + 1 < len(calls) else []
            if following:
                # the comment above a statement moves above its list element
                element = element.with_changes(
                    comma=cst.Comma(
                        whitespace_after=cst.ParenthesizedWhitespace(
                            first_line=cst.TrailingWhitespace(),
                            empty_lines=following,
                            indent=True,
                            last_line=cst.SimpleWhitespace(""),
                        )
                    )
                )
            elements.append(element)
        kwargs = [a for a in model_call.args if a.keyword and a.keyword.value == "name"]
        seq = cst.Call(
            func=cst.parse_expression("keras.Sequential"),
            args=[cst.Arg(cst.List(elements)), *kwargs],
        )
        body = [cst.SimpleStatementLine([cst.Return(seq)])]
        return updated.with_changes(body=updated.body.with_changes(body=body))


def _chain(stmts):
    """(Input call, [(layer constructor, comments)], Model call) if the body is a chain of
    layer calls (spec.forms_chain decides what a chain is)."""
    if len(stmts) < 3:
        return None
    assigns = stmts[:-1]
    ret = stmts[-1]
    parsed = []
    for stmt in assigns:
        if not (
            isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Assign)
        ):
            return None
        assign = stmt.body[0]
        if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
            return None
        parsed.append(
            (
                assign.targets[0].target.value,
                assign.value,
                [l for l in stmt.leading_lines if l.comment],
            )
        )
    first_var, first_value, _ = parsed[0]
    func = first_value.func if isinstance(first_value, cst.Call) else None
    if not (isinstance(func, cst.Attribute) and func.attr.value == "Input"):
        return None
    layers, steps = [], []
    for var, value, comments in parsed[1:]:
        if not (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Call)
            and len(value.args) == 1
            and isinstance(value.args[0].value, cst.Name)
        ):
            return None
        layers.append((value.func, comments))
        steps.append(([value.args[0].value.value], [var]))
    if not (isinstance(ret, cst.SimpleStatementLine) and isinstance(ret.body[0], cst.Return)):
        return None
    model_call = ret.body[0].value
    if not isinstance(model_call, cst.Call):
        return None
    args = {a.keyword.value: a.value for a in model_call.args if a.keyword}
    inputs, outputs = args.get("inputs"), args.get("outputs")
    if not (isinstance(inputs, cst.Name) and inputs.value == first_var):
        return None
    if not (isinstance(outputs, cst.Name) and forms_chain([first_var], steps, [outputs.value])):
        return None
    return first_value, layers, model_call
