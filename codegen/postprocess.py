"""Source-level passes over the rendered code (libcst, in source_passes.py), then black.

Templates stay simple because these passes tidy afterwards.

A large model's build_model is one long function (60,000 statements for bench/scale.py's
200,000-node chain), and libcst and black over it took minutes and gigabytes. So `tidy`
handles build_model a statement at a time when it has the form the template renders
(`_StatementWise`; `tidy_module` is the whole-module path, for anything else): the chain
collapse reads each statement with `ast`, statements that differ only in their variable names
and plain string contents share a shape that black formats once (in batches, between marker
comments), and the module around build_model goes through the passes on its own (libcst only
when there is an unused definition to drop: importing it costs more than the rest of tidying
a model like MobileNetV2). This is exact because black formats each statement of a function body on its own: its lines depend
on its tokens, their widths and its depth, not on the statements around it, nor (for the
statements allowed here) on the Python versions black infers from the rest of the module.
tests/test_postprocess.py checks both paths agree on every golden case and on odd modules.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass

from .spec import forms_chain


def used_names(source: str) -> set[str]:
    """Names read anywhere in the module. A census needs no concrete syntax tree, and Python's
    own `ast` takes a tenth of the time on a large model."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def tidy(source: str, sequential: bool = True) -> str:
    """All passes, then black. `sequential=False` skips the collapse when the caller already
    knows the model branches (it saves a full tree walk on large models)."""
    formatted = tidy_statements(source, sequential)
    return tidy_module(source, sequential) if formatted is None else formatted


def tidy_statements(source: str, sequential: bool = True) -> str | None:
    """`tidy` with build_model handled a statement at a time (see the module's docstring), or
    None for a module not in the form the template renders."""
    function = _StatementWise.of(source)
    return None if function is None else function.tidy(sequential)


def tidy_module(source: str, sequential: bool = True) -> str:
    """`tidy` over the whole module at once: what the statement-wise path must equal, and the
    path of a module it declines (a factored build_model, its loops over block functions)."""
    tree = ast.parse(source)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    if not (sequential and _may_collapse(tree)) and _droppable(tree) <= used:
        return format_source(source)  # the passes would change nothing: libcst is not needed
    import libcst as cst

    from .source_passes import CollapseSequential, DropUnusedDefinitions

    module = cst.parse_module(source)
    if sequential:
        module = module.visit(CollapseSequential())
    module = module.visit(DropUnusedDefinitions(used_names(module.code)))
    return format_source(module.code)


# statements libcst writes as a SimpleStatementLine; any other (a loop, an if) is compound
_SIMPLE = (
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Expr,
    ast.Return,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Raise,
    ast.Assert,
    ast.Delete,
    ast.Import,
    ast.ImportFrom,
    ast.Global,
    ast.Nonlocal,
)


def _may_collapse(tree: ast.Module) -> bool:
    """Whether CollapseSequential might rewrite the module: a chain is a build_model whose
    statements but the last are all simple, so one compound statement there rules it out."""
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name == "build_model"
        and all(isinstance(statement, _SIMPLE) for statement in node.body[:-1])
        for node in ast.walk(tree)
    )


def _droppable(tree: ast.Module) -> set[str]:
    """What DropUnusedDefinitions may drop, and more: the names of every class and of every
    `import` (it drops module-level ones that nothing reads)."""
    names = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    names |= {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    return names


def format_source(source: str) -> str:
    import black  # here, so that importing this module costs nothing until black is needed

    return black.format_str(source, mode=black.Mode())


def format_statements(statements: list[str]) -> str | None:
    """What black writes for these one-line statements one after another in a function body
    (indented by four spaces), formatted a shape at a time as build_model's; None unless each
    is one simple statement on its line."""
    for text in statements:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return None
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign) or _ODD.search(text):
            return None
        if text[0] == " " or "#" in text and any(m["comment"] for m in _TOKEN.finditer(text)):
            return None  # a comment could be a black directive
    parts = [([], text) for text in statements]
    return _format_parts(parts, "", ("def build_model():\n", ""), 1)


# -- build_model a statement at a time ---------------------------------------------------------

_DEFINE = re.compile(r"def build_model\([^()]*\)(?: -> [\w.]+)?:")
# characters that end a line for some of Python, libcst and black but not for the others (or
# that black treats specially, as a form feed); a module with any takes the whole-module path
_ODD = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
# black directives: `# fmt: off` changes how everything after it is formatted
_DIRECTIVE = re.compile(r"fmt:|yapf:")
_SEPARATOR = "# graph2py: next statement"
_BATCH = 1000  # statements per black call: black's time and memory grow faster than linearly
# What a statement's shape may leave out: a comment or a string (matched whole, so that
# nothing inside is taken for a name), and a name that is no attribute, keyword argument or
# called or dotted name (a variable: what differs from one layer's statement to the next).
_TOKEN = re.compile(
    r"""(?P<comment>\#.*)
    |(?P<string>(?<![\w'"])[A-Za-z]{0,2}(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"))
    |(?<![\w.])(?P<name>[A-Za-z_]\w*)(?![\w.(=])""",
    re.X,
)
_VERSIONED = re.compile(r"[*/]|:=|\d_")
_MARK = "QZ"  # placeholders are QZ<slot>, padded with Z to the length of what they stand for
# names black reads by their spelling: keywords, soft keywords, old and new
_SPELLED = set(keyword.kwlist) | set(keyword.softkwlist) | {"type", "print", "exec", "async"}
_SLOT = re.compile(r"QZ(\d+)Z*")


@dataclass
class _Statement:
    comments: list[str]  # the comment lines above it, without indentation
    text: str  # the statement: one line, without indentation
    # What CollapseSequential reads of it (the trees themselves are not kept: holding 60,000
    # of them makes every garbage collection walk them all): for `VAR = VALUE`, (VAR, VALUE's
    # source if VALUE calls `*.Input`, else None, (the argument's name, the layer's source) if
    # VALUE calls a call with one argument that is a name, else None); for the return,
    # (inputs's name, outputs's name, [(`name=...` source, its value's source)]) when it
    # returns a call; else None.
    link: tuple | None


def _segment(line: str, node: ast.AST) -> str:
    """The source of `node` in a one-line statement (ast.get_source_segment, without its
    splitting of the source into lines; the offsets count UTF-8 bytes)."""
    if line.isascii():
        return line[node.col_offset : node.end_col_offset]
    return line.encode()[node.col_offset : node.end_col_offset].decode()


def _link(node: ast.stmt, text: str) -> tuple | None:
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            return None
        value = node.value
        if not isinstance(value, ast.Call):
            return None
        func = value.func
        is_input = isinstance(func, ast.Attribute) and func.attr == "Input"
        layer = None
        args = [*value.args, *value.keywords]  # libcst's Call.args holds both
        if isinstance(func, ast.Call) and len(args) == 1:
            arg = args[0].value if isinstance(args[0], (ast.Starred, ast.keyword)) else args[0]
            if isinstance(arg, ast.Name):
                layer = (arg.id, _segment(text, func))
        source = _segment(text, value) if is_input else None
        return (node.targets[0].id, source, layer)
    if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
        keywords = {k.arg: k.value for k in node.value.keywords if k.arg}
        ends = [keywords.get(k) for k in ("inputs", "outputs")]
        names = [
            (_segment(text, k), _segment(text, k.value))
            for k in node.value.keywords
            if k.arg == "name"
        ]
        return (*(e.id if isinstance(e, ast.Name) else None for e in ends), names)
    return None


@dataclass
class _StatementWise:
    """A module whose last definition is build_model, its body one statement per line (an
    assignment, or the final return) with comments on lines of their own: the form
    templates/model.py.j2 renders."""

    head: str  # the module before build_model's def line
    define: str  # the def line
    body: list[_Statement]

    @classmethod
    def of(cls, source: str) -> "_StatementWise | None":
        start = source.rfind("\ndef build_model(") + 1
        if start == 0 or _ODD.search(source) or _DIRECTIVE.search(source[:start]):
            return None
        head, rest = source[:start], source[start:]
        define, _, body = rest.partition("\n")
        if "def build_model(" in head or not _DEFINE.fullmatch(define) or not body.endswith("\n"):
            return None
        statements, comments = [], []
        lines = body[:-1].split("\n")
        for number, line in enumerate(lines):
            text = line[4:]
            if not line.startswith("    ") or not text or text[0] == " ":
                return None
            if text[0] == "#":
                if _DIRECTIVE.search(text):
                    return None
                comments.append(text)
                continue
            if "#" in text and any(
                _DIRECTIVE.search(m.group("comment") or "") for m in _TOKEN.finditer(text)
            ):
                return None
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                return None
            last = number == len(lines) - 1
            node = tree.body[0] if len(tree.body) == 1 else None
            if not isinstance(node, ast.Return if last else ast.Assign):
                return None
            statements.append(_Statement(comments, text, _link(node, text)))
            comments = []
        return cls(head, define, statements)

    def tidy(self, sequential: bool) -> str | None:
        """What `tidy_module` makes of the module, or None where this path cannot tell."""
        chain = self._chain() if sequential else None
        if chain is None:
            parts = [(s.comments, s.text) for s in self.body]
            body = _format_parts(parts, "", ("def build_model():\n", ""), 1)
            reads = [s.text for s in self.body]
        else:
            elements, kwargs = chain
            body = _format_sequential(elements, [k for k, _ in kwargs])
            reads = ["keras"] + [e for _, e in elements] + [value for _, value in kwargs]
        if body is None:
            return None
        head = self._formatted_head(reads)
        return None if head is None else head + body

    def _chain(self):
        """([(comments, element source)], [(`name=...`, its value)]) when the body is a chain,
        as `_chain` decides for a libcst tree; None otherwise."""
        if len(self.body) < 3 or any(s.link is None for s in self.body):
            return None
        first, *layers, ret = self.body
        first_var, input_call, _ = first.link
        if input_call is None:
            return None
        elements = [([], input_call)]
        steps = []
        for statement in layers:
            var, _, layer = statement.link
            if layer is None:
                return None
            elements.append((statement.comments, layer[1]))
            steps.append(([layer[0]], [var]))
        inputs, outputs, kwargs = ret.link
        if inputs != first_var or not (outputs and forms_chain([first_var], steps, [outputs])):
            return None
        return elements, kwargs

    def _formatted_head(self, reads: list[str]) -> str | None:
        """The module up to and including build_model's def line, its unused imports and
        helper classes dropped, formatted. `reads`: the sources in build_model's body."""
        stub = f"{self.head}{self.define}\n    pass\n"
        tree = ast.parse(stub)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        # what DropUnusedDefinitions may drop, and whether build_model's body reads it: a
        # name is looked for only where its spelling occurs
        defined = _droppable(tree)
        unknown = defined - used
        for source in reads:
            if any(name in source for name in unknown):
                used |= {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        if not defined <= used:  # something to drop: libcst keeps the trivia around the rest
            import libcst as cst

            from .source_passes import DropUnusedDefinitions

            stub = cst.parse_module(stub).visit(DropUnusedDefinitions(used)).code
        # (with nothing to drop, the libcst round trip gives back the stub byte for byte)
        formatted = format_source(stub)
        if not formatted.endswith("\n    pass\n"):
            return None
        return formatted[: -len("    pass\n")]


def _format_sequential(elements: list[tuple[list[str], str]], kwargs: list[str]) -> str | None:
    """build_model's body as CollapseSequential writes it, formatted.

    With a comment in the list, or a list far too long for a line, black writes one element
    per line (and each element as it would alone); `_format_parts` formats the elements in a
    list of their own, the same frame around them. Otherwise black may keep the list on one
    line: the statement is formatted whole."""
    listed = "[" + ", ".join(e for _, e in elements) + "]"
    if not any(c for c, _ in elements) and sum(ch.isascii() for ch in listed) <= 300:
        call = f"return keras.Sequential({listed}" + "".join(f", {k}" for k in kwargs) + ")"
        return _format_parts([([], call)], "", ("def build_model():\n", ""), 1)
    opening = "def build_model():\n    return keras.Sequential(\n        [\n"
    closing = "        ]" + "".join(f", {k}" for k in kwargs) + ")\n"
    return _format_parts(elements, ",", (opening, closing), 3)


def _format_parts(parts, comma: str, frame: tuple[str, str], depth: int) -> str | None:
    """Black's formatting of `parts` ((comment lines, source) each) written one after the other
    at `depth` between the lines of `frame` (the first line of which is a def line), `comma`
    after each but the last: the lines black writes between the frame's.

    Parts that differ only in the spelling of names and the contents of plain strings (of the
    same lengths) have one shape; each shape is formatted once, with placeholders, in batches
    of shapes separated by a marker comment, and the placeholders are filled in after. None if
    a batch does not come back as it went in."""
    indent = "    " * depth
    shapes: dict[str, tuple[int, int]] = {}  # shape -> (its index, how many placeholders)
    uses = []  # per part: (its comment lines black leaves alone, its shape's index, fillings)
    for comments, text in parts:
        shape, fill = _shape(text)
        other = [c for c in comments if not _plain_comment(c)]
        if other:  # written out in the shape, which is then this part's alone
            shape, fill = "\n".join([*other, text]), []
        index, _ = shapes.setdefault(shape, (len(shapes), len(fill)))
        uses.append(([c for c in comments if _plain_comment(c)], index, fill))
    if any(_versioned(shape) for shape in shapes):
        return None
    separator = f"{indent}{_SEPARATOR}\n"
    opening, closing = frame
    order = list(shapes.items())
    formatted = []  # per shape: its lines, split around the placeholders
    edges = None
    for start in range(0, len(order), _BATCH):
        batch = order[start : start + _BATCH]
        lines = [opening]
        for i, (shape, _) in enumerate(batch):
            lines.append(separator + indent + shape.replace("\n", "\n" + indent))
            lines.append(("" if i == len(batch) - 1 else comma) + "\n")
        lines.append(separator + closing)
        pieces = format_source("".join(lines)).split(separator)
        if len(pieces) != len(batch) + 2 or edges not in (None, (pieces[0], pieces[-1])):
            return None
        edges = (pieces[0], pieces[-1])
        for (_, (_, slots)), piece in zip(batch, pieces[1:-1]):
            split = _SLOT.split(piece) if slots else [piece]
            if split[1::2] != [str(k) for k in range(slots)]:
                return None
            formatted.append(split)
    define = opening.split("\n", 1)[0] + "\n"
    if edges is None or not edges[0].startswith(define):
        return None
    out = [edges[0][len(define) :]]
    for plain, index, fill in uses:
        out.extend(f"{indent}{c}\n" for c in plain)
        split = formatted[index]
        if fill:
            split = split.copy()
            split[1::2] = fill
        out.append("".join(split))
    out.append(edges[1])
    return "".join(out)


def _shape(text: str) -> tuple[str, list[str]]:
    """The statement with each variable name (ASCII) and plain string body replaced by a
    placeholder of the same length, and what they replaced. Black's formatting depends on a
    name's width and on whether it is a keyword, never on its spelling (keywords and soft
    keywords are kept); a plain string (printable ASCII, no quotes or backslashes) is written
    the same whatever its characters."""
    if _MARK in text or "'''" in text or '"""' in text:
        return text, []
    fill: list[str] = []

    def placeholder(match: re.Match) -> str:
        name, string = match.group("name"), match.group("string")
        mark = f"{_MARK}{len(fill)}"
        if name is not None:
            if len(mark) > len(name) or name in _SPELLED or not name.isascii():
                return name
            fill.append(name)
            return mark.ljust(len(name), "Z")
        if string is not None and string[0] in "'\"":
            body = string[1:-1]
            if len(mark) <= len(body) and _plain_string(body):
                fill.append(body)
                return string[0] + mark.ljust(len(body), "Z") + string[-1]
        return match.group(0)

    shape = _TOKEN.sub(placeholder, text)
    return shape, fill


def _versioned(shape: str) -> bool:
    """Whether the statement holds something that makes black infer which Python versions the
    module targets (an f-string, `*` unpacking, `/` in parameters, `:=`, `1_000`, `await`):
    formatted apart from the module, black could infer other versions, and the versions decide
    a trailing comma after `*args`. Without these a statement reads the same for every
    version."""

    def code(match: re.Match) -> str:
        name, string = match.group("name"), match.group("string")
        if string is not None:
            return "*" if any(c in "fFtT" for c in string[: string.find(string[-1])]) else ""
        return "*" if name in ("async", "await") else ""

    return bool(_VERSIONED.search(_TOKEN.sub(code, shape)))


def _plain_string(body: str) -> bool:
    """Printable ASCII without quotes or backslashes: black writes it as it is, in double
    quotes, whatever its characters."""
    return body.isascii() and body.isprintable() and not any(c in body for c in "'\"\\")


def _plain_comment(comment: str) -> bool:
    """Whether black writes the comment line as it is (`make_comment` rewrites trailing
    whitespace, a missing space after `#` and the spacing of `# type:` comments)."""
    return (
        comment.startswith("# ")
        and comment == comment.rstrip()
        and "\N{NO-BREAK SPACE}" not in comment
        and not comment[1:].lstrip().startswith("type:")
    )
