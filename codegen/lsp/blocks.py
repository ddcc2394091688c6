"""Following a factored model.py's blocks: which concrete Keras layer each call builds.

By default the converter writes repeated structure as module-level block functions, called
from `build_model`, from each other and in `for i in range(A, B)` loops, and names their layers
from a name parameter: `keras.layers.Conv2D(..., name=f"{name}_expand")`. The spec knows
`block_3_expand`, not `{name}_expand`, so a hover or a diagnostic needs the file evaluated.
This module does that statically (`ast`, nothing executed) over the restricted format the
converter writes: it binds each block call's arguments to the callee's parameters (positional,
keyword, defaults), follows nested calls and loops, and evaluates each layer's name under those
bindings. Only literals, names, f-strings and integer arithmetic are evaluated; anything else a
hand edit brings (a name computed by a function call, `*args`, recursion, a loop over a list)
leaves the layers it touches unmapped rather than guessed, and never raises.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field

from . import model_file
from .model_file import LayerCall, applied_ends, layer_call

Position = tuple[int, int]  # 0-based (line, column)

# Calls evaluated per file: a model's layer and block calls number in the hundreds or low
# thousands, and a hand-written `range(10**9)` then costs a third of a second, not minutes.
MAX_STEPS = 20_000
MAX_DEPTH = 32  # nested block calls
MAX_TEXT = 1_000  # longest string an expression may build
MAX_INT = 1 << 62


class _Unknown:
    """A value the evaluator cannot know: a tensor argument, a call's result."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class BlockCall:
    """A call of a block function, `inverted_res_block(x, 96, 24, name="block_1")`: the call
    expression's text span."""

    callee: str
    start: Position
    end: Position

    def contains(self, line: int, column: int) -> bool:
        return self.start <= (line, column) <= self.end


@dataclass(frozen=True)
class Site:
    """The statement of `build_model` that built a layer: the block call statement (inside a
    loop, the statement in the loop's body), or the layer's own statement."""

    callee: str  # the block function it calls, or the layer's callee
    start: Position
    end: Position


@dataclass(frozen=True)
class Instance:
    """One concrete layer built by a layer call inside a block function."""

    name: str  # the Keras layer name, e.g. "block_3_expand"
    call: LayerCall  # the layer call in the function; its `name` is the name as written
    function: str  # the function the layer call sits in
    site: Site


@dataclass
class Blocks:
    instances: dict[str, Instance] = field(default_factory=dict)  # layer name -> first build
    built_by: dict[BlockCall, list[str]] = field(default_factory=dict)  # in build order
    instances_of: dict[LayerCall, list[str]] = field(default_factory=dict)  # computed names only
    function_of: dict[LayerCall, str] = field(default_factory=dict)
    complete: bool = True  # False: a budget ran out (MAX_STEPS), later layers are unmapped

    def at(self, line: int, column: int) -> BlockCall | LayerCall | None:
        """The innermost block call or computed-name layer call spanning the position."""
        spanning = [c for c in [*self.built_by, *self.instances_of] if c.contains(line, column)]
        return min(spanning, key=lambda c: _extent(c.start, c.end), default=None)


def _extent(start: Position, end: Position) -> tuple[int, int]:
    return end[0] - start[0], end[1] - start[1]


def expand(text: str, tree: ast.Module | None = None) -> Blocks | None:
    """The blocks of a model.py (`tree`: the text already parsed); None if the file does not
    parse (mid-edit)."""
    tree = tree or model_file.parse(text)
    if tree is None:
        return None
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    result = Blocks()
    build_model = functions.pop("build_model", None)
    if build_model is None:
        return result
    expander = _Expander(text, tree, functions, result)
    try:
        expander.body(build_model.body, {}, ("build_model",), None)
    except _OutOfSteps:
        result.complete = False
    except RecursionError:  # a pathologically nested expression: keep what was found
        result.complete = False
    for key, names in result.built_by.items():
        result.built_by[key] = list(dict.fromkeys(names))
    for key, names in result.instances_of.items():
        result.instances_of[key] = list(dict.fromkeys(names))
    return result


class _OutOfSteps(Exception):
    pass


class _Expander:
    def __init__(self, text: str, tree: ast.Module, functions: dict, result: Blocks):
        self.text = text
        self.lines = text.splitlines()
        self.functions = functions
        self.result = result
        self.ends = applied_ends(tree)
        self.steps = 0
        self.globals = _module_constants(tree)
        self.current: ast.stmt | None = None  # the statement being walked
        self.open: list[BlockCall] = []  # the block calls being expanded, outermost first
        self._calls: dict[int, LayerCall] = {}  # id(ast.Call) -> its LayerCall

    # -- statements -----------------------------------------------------------------------------

    def body(self, statements: list[ast.stmt], env: dict, stack: tuple, site: Site | None):
        for statement in statements:
            self.statement(statement, env, stack, site)

    def statement(self, node: ast.stmt, env: dict, stack: tuple, site: Site | None):
        outer, self.current = self.current, node
        try:
            self.walk(node, env, stack, site)
        finally:
            self.current = outer

    def walk(self, node: ast.stmt, env: dict, stack: tuple, site: Site | None):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return  # a nested definition: outside the format, and not run here anyway
        if isinstance(node, ast.For):
            self.loop(node, env, stack, site)
            return
        if isinstance(node, ast.If):  # a block's optional layer: `if pad:`, `if strides == 2:`
            test = self.value(node.test, env)
            self.expressions(node.test, env, stack, site)
            if test is not UNKNOWN and _plain(test):
                self.body(node.body if test else node.orelse, env, stack, site)
                return
        bodies = [value for _, value in ast.iter_fields(node) if _is_body(value)]
        if bodies:  # if/with/while/try from a hand edit: every branch may build layers
            for _, value in ast.iter_fields(node):
                if not _is_body(value):
                    self.expressions(value, env, stack, site)
            for handler in getattr(node, "handlers", ()):
                self.body(handler.body, env, stack, site)
            for statements in bodies:
                self.body(statements, env, stack, site)
            return
        self.expressions(list(ast.iter_child_nodes(node)), env, stack, site)
        self.assign(node, env)

    def loop(self, node: ast.For, env: dict, stack: tuple, site: Site | None):
        values = self.range_of(node, env)
        if values is None:  # not `for NAME in range(...)`: walk once with the target unknown
            inner = dict(env)
            for target in _targets(node.target):
                inner[target] = UNKNOWN
            self.body(node.body, inner, stack, site)
        else:
            for value in values:
                self.body(node.body, {**env, node.target.id: value}, stack, site)
        self.body(node.orelse, env, stack, site)

    def range_of(self, node: ast.For, env: dict) -> range | None:
        call = node.iter
        if not (
            isinstance(node.target, ast.Name)
            and isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "range"
            and "range" not in env
            and not call.keywords
            and 1 <= len(call.args) <= 3
        ):
            return None
        bounds = [self.value(arg, env) for arg in call.args]
        if not all(type(b) is int for b in bounds) or bounds[-1:] == [0] and len(bounds) == 3:
            return None
        values = range(*bounds)
        if len(values) > MAX_STEPS:
            return None
        return values

    def assign(self, node: ast.stmt, env: dict) -> None:
        """Track `name = <expression>` (a hand edit may derive a name before using it); any
        other binding makes its names unknown from here on."""
        if isinstance(node, ast.Assign):
            value = self.value(node.value, env) if len(node.targets) == 1 else UNKNOWN
            for target in node.targets:
                if isinstance(target, ast.Name):
                    env[target.id] = value
                else:
                    for name in _targets(target):
                        env[name] = UNKNOWN
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            for name in _targets(node.target):
                env[name] = (
                    self.value(node.value, env)
                    if isinstance(node, ast.AnnAssign) and node.value is not None
                    else UNKNOWN
                )

    # -- calls ------------------------------------------------------------------------------------

    def expressions(self, node, env: dict, stack: tuple, site: Site | None) -> None:
        """Every call in `node`, in source order (arguments before the call they feed)."""
        if isinstance(node, list):
            for item in node:
                self.expressions(item, env, stack, site)
            return
        if not isinstance(node, ast.AST) or isinstance(node, (ast.Lambda, ast.stmt)):
            return
        for child in ast.iter_child_nodes(node):
            self.expressions(child, env, stack, site)
        if isinstance(node, ast.Call):
            self.call(node, env, stack, site)

    def call(self, node: ast.Call, env: dict, stack: tuple, site: Site | None) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _OutOfSteps
        callee = node.func.id if isinstance(node.func, ast.Name) else None
        if callee in self.functions and callee not in env:
            self.block_call(node, callee, env, stack, site)
            return
        name = next((k.value for k in node.keywords if k.arg == "name"), None)
        if name is None:
            return
        literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
        if literal and len(stack) == 1:
            return  # a plain layer of build_model: model_file.layer_calls has it
        layer = self.layer(node, name)
        here = site or self.site(node, layer.callee)
        concrete = self.value(name, env)
        if not literal:
            self.result.instances_of.setdefault(layer, [])
            self.result.function_of[layer] = stack[-1]
        if not isinstance(concrete, str):
            return
        if not literal:
            self.result.instances_of[layer].append(concrete)
        self.result.instances.setdefault(concrete, Instance(concrete, layer, stack[-1], here))
        self.built(concrete)

    def block_call(self, node: ast.Call, callee: str, env: dict, stack: tuple, site):
        key = BlockCall(callee, (node.lineno - 1, node.col_offset), _end(node))
        self.result.built_by.setdefault(key, [])
        function = self.functions[callee]
        if callee in stack or len(stack) > MAX_DEPTH:
            return  # recursion: not the format, and it would not end
        bound = self.bind(function, node, env)
        if bound is None:
            return
        here = site or self.site(node, callee)
        self.open.append(key)
        try:
            self.body(function.body, bound, (*stack, callee), here)
        finally:
            self.open.pop()

    def built(self, name: str) -> None:
        for key in self.open:
            self.result.built_by[key].append(name)

    def bind(self, function: ast.FunctionDef, node: ast.Call, env: dict) -> dict | None:
        """Parameter -> value for one call, as Python binds it; None when the call cannot be
        bound statically (`*args`, `**kwargs`) or would raise TypeError."""
        spec = function.args
        positional = [p.arg for p in [*spec.posonlyargs, *spec.args]]
        keyword_only = [p.arg for p in spec.kwonlyargs]
        if any(isinstance(a, ast.Starred) for a in node.args):
            return None
        if len(node.args) > len(positional) and spec.vararg is None:
            return None
        bound = {p: self.value(a, env) for p, a in zip(positional, node.args)}
        settable = set(positional[len(spec.posonlyargs) :]) | set(keyword_only)
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg in bound:
                return None
            if keyword.arg in settable:
                bound[keyword.arg] = self.value(keyword.value, env)
            elif spec.kwarg is None:
                return None
        defaults = dict(zip(positional[len(positional) - len(spec.defaults) :], spec.defaults))
        defaults.update(
            (p.arg, d) for p, d in zip(spec.kwonlyargs, spec.kw_defaults) if d is not None
        )
        for parameter in [*positional, *keyword_only]:
            if parameter not in bound:
                if parameter not in defaults:
                    return None
                bound[parameter] = self.value(defaults[parameter], {})
        for rest in (spec.vararg, spec.kwarg):
            if rest is not None:
                bound[rest.arg] = UNKNOWN
        return bound

    def layer(self, node: ast.Call, name: ast.expr) -> LayerCall:
        known = self._calls.get(id(node))
        if known is None:
            written = ast.get_source_segment(self.text, name) or ast.unparse(name)
            known = self._calls[id(node)] = layer_call(node, written, self.ends, self.lines)
        return known

    def site(self, node: ast.Call, callee: str) -> Site:
        """The site of a call made by build_model itself: the statement it sits in."""
        where = self.current or node
        return Site(callee, (where.lineno - 1, where.col_offset), _end(where))

    # -- values -----------------------------------------------------------------------------------

    def value(self, node: ast.expr, env: dict):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return env[node.id] if node.id in env else self.globals.get(node.id, UNKNOWN)
        if isinstance(node, ast.JoinedStr):
            return self.fstring(node, env)
        if isinstance(node, (ast.Tuple, ast.List)):
            items = tuple(self.value(e, env) for e in node.elts)
            return UNKNOWN if any(i is UNKNOWN for i in items) else items
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand, env)
            if _number(operand):
                return -operand if isinstance(node.op, ast.USub) else operand
            return UNKNOWN
        if isinstance(node, ast.BinOp):
            return _arithmetic(node.op, self.value(node.left, env), self.value(node.right, env))
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Eq, ast.NotEq))
        ):
            left, right = self.value(node.left, env), self.value(node.comparators[0], env)
            if left is UNKNOWN or right is UNKNOWN or not (_plain(left) and _plain(right)):
                return UNKNOWN
            return (left == right) == isinstance(node.ops[0], ast.Eq)
        if isinstance(node, ast.IfExp):
            test = self.value(node.test, env)
            if test is UNKNOWN or not _plain(test):
                return UNKNOWN
            return self.value(node.body if test else node.orelse, env)
        return UNKNOWN

    def fstring(self, node: ast.JoinedStr, env: dict):
        parts = []
        for piece in node.values:
            if isinstance(piece, ast.Constant):
                parts.append(str(piece.value))
                continue
            value = self.value(piece.value, env)
            spec = self.value(piece.format_spec, env) if piece.format_spec else ""
            if value is UNKNOWN or not isinstance(spec, str) or not _plain(value):
                return UNKNOWN
            if piece.conversion in (ord("r"), ord("a")):
                value = repr(value) if piece.conversion == ord("r") else ascii(value)
            try:
                parts.append(format(value, spec))
            except (ValueError, TypeError):
                return UNKNOWN
        text = "".join(parts)
        return text if len(text) <= MAX_TEXT else UNKNOWN


def _module_constants(tree: ast.Module) -> dict:
    """Module-level `NAME = literal` assignments (what a default may name)."""
    constants = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
        ):
            constants[node.targets[0].id] = node.value.value
    return constants


def _is_body(value) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], ast.stmt)


def _targets(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _end(node: ast.AST) -> Position:
    return node.end_lineno - 1, node.end_col_offset


def _number(value) -> bool:
    return type(value) in (int, float)


def _plain(value) -> bool:
    """What a name may be formatted from: no object whose __format__ could do anything."""
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


_INT_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def _arithmetic(op: ast.operator, left, right):
    """Integer arithmetic (`{i + 1}`) and string concatenation, bounded; nothing else."""
    if type(left) is str and type(right) is str and isinstance(op, ast.Add):
        return left + right if len(left) + len(right) <= MAX_TEXT else UNKNOWN
    if type(left) is int and type(right) is int and type(op) in _INT_OPS:
        if isinstance(op, (ast.FloorDiv, ast.Mod)) and right == 0:
            return UNKNOWN
        if isinstance(op, ast.Mult) and abs(left) > MAX_INT // max(abs(right), 1):
            return UNKNOWN
        result = _INT_OPS[type(op)](left, right)
        return result if abs(result) <= MAX_INT else UNKNOWN
    return UNKNOWN
