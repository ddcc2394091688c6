"""Model spec -> Python source, through the Jinja templates in `templates/`.

This module and loader.py (load_weights.py's weight table) are the only ones that turn data into
code text. Every value from the graph reaches the output through `literal` (literals.py: Python's
own `repr`, so strings are escaped), `identifier` (rebuilt from a safe alphabet) or
`comment_text` (no line breaks); templates never see raw graph text.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2

from .blocks import (
    NO_DEFAULT,
    BlockCall,
    Function,
    Guarded,
    NameTemplate,
    Offset,
    Param,
    Program,
    canon,
    factor,
)
from .literals import condition_source, identifier_kw
from .literals import index_source as _index
from .literals import literal
from .loader import weights_context
from .names import RESERVED, Allocator, comment_text, docstring_text, identifier
from .spec import (
    HELPERS,
    PATHS,
    QUANTIZED_STORAGE,
    Call,
    Item,
    Kind,
    Lambda,
    Layer,
    ModelSpec,
    Ref,
    TFOp,
)

# Keras 3 constructor defaults, so generated calls only state what differs. A test checks this
# table against the installed Keras's signatures.
DEFAULTS: dict[str, dict[str, Any]] = {
    "Conv2D": {
        "strides": 1,
        "padding": "valid",
        "dilation_rate": 1,
        "groups": 1,
        "activation": None,
        "use_bias": True,
    },
    "DepthwiseConv2D": {
        "strides": 1,
        "padding": "valid",
        "depth_multiplier": 1,
        "dilation_rate": 1,
        "activation": None,
        "use_bias": True,
    },
    "SeparableConv2D": {
        "strides": 1,
        "padding": "valid",
        "depth_multiplier": 1,
        "dilation_rate": 1,
        "activation": None,
        "use_bias": True,
    },
    "Conv3D": {
        "strides": 1,
        "padding": "valid",
        "dilation_rate": 1,
        "groups": 1,
        "activation": None,
        "use_bias": True,
    },
    "Conv2DTranspose": {
        "strides": 1,
        "padding": "valid",
        "output_padding": None,
        "dilation_rate": 1,
        "activation": None,
        "use_bias": True,
    },
    "Dense": {"activation": None, "use_bias": True},
    "BatchNormalization": {"axis": -1, "epsilon": 0.001, "center": True, "scale": True},
    "LayerNormalization": {"axis": -1, "epsilon": 0.001, "center": True, "scale": True},
    "MaxPooling2D": {"strides": None, "padding": "valid"},
    "AveragePooling2D": {"strides": None, "padding": "valid"},
    "GlobalAveragePooling2D": {"keepdims": False},
    "GlobalMaxPooling2D": {"keepdims": False},
    "GlobalAveragePooling1D": {"keepdims": False},
    "GlobalMaxPooling1D": {"keepdims": False},
    "EinsumDense": {"bias_axes": None, "activation": None},
    "ZeroPadding2D": {"padding": 1},
    "Cropping2D": {"cropping": ((0, 0), (0, 0))},
    "Rescaling": {"offset": 0.0},
    "Concatenate": {"axis": -1},
    "ReLU": {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
    "Softmax": {"axis": -1},
    "LeakyReLU": {"negative_slope": 0.3},
    "LSTM": {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
    },
    "GRU": {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "reset_after": True,
    },
    "Embedding": {"mask_zero": False},
}

TEMPLATES = Path(__file__).parent / "templates"
if not TEMPLATES.is_dir():  # running from a source checkout: templates/ beside the package
    TEMPLATES = Path(__file__).parent.parent / "templates"


def constructor_args(layer: Layer) -> str:
    defaults = DEFAULTS.get(layer.cls, {})
    parts = [literal(a) for a in layer.args]
    for key, value in layer.kwargs.items():
        if key in defaults and _same(defaults[key], value):
            continue
        parts.append(f"{key}={literal(value)}")
    parts.append(f"name={literal(layer.name)}")
    return ", ".join(parts)


def _same(default: Any, value: Any) -> bool:
    """Equal as Keras would see it: 1 == 1.0, (1, 1) == [1, 1], but True is not 1."""
    return isinstance(default, bool) == isinstance(value, bool) and _plain(default) == _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def provenance(layer: Layer, scope: str = "") -> str | None:
    """One short comment naming the source nodes: their common scope, then what it holds.
    Names are relative to the model's scope (stated once in the header); a layer that is one
    node of the same name needs no comment."""
    prefix = scope + "/" if scope else ""
    names = [n[len(prefix) :] if prefix and n.startswith(prefix) else n for n in layer.nodes]
    if not names:  # a chain's later layer: the first names the nodes
        return comment_text(layer.note) if layer.note else None
    if names == [layer.name]:
        return None
    scope = names[0].rsplit("/", 1)[0] if "/" in names[0] else ""
    for n in names[1:]:
        while scope and not n.startswith(scope + "/"):
            scope = scope.rsplit("/", 1)[0] if "/" in scope else ""
    if len(names) == 1:
        text = names[0]
    else:
        tails = [n[len(scope) + 1 :] if scope else n for n in names]
        shown = (
            ", ".join(tails)
            if len(tails) <= 3
            else ", ".join(tails[:2]) + f", … ({len(tails)} nodes)"
        )
        text = f"{scope}/{{{shown}}}" if scope else shown
    return comment_text(text)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = literal
    env.filters["comment"] = comment_text
    return env


def expression(expr: Any, refs: list[str]) -> str:
    """Python source of a keras.ops expression (spec.Call/Item/Ref trees), `refs` naming the
    variables that hold the layer's inputs."""
    if isinstance(expr, Ref):
        return refs[expr.index]
    if isinstance(expr, Call):
        parts = [expression(a, refs) for a in expr.args]
        parts += [f"{identifier_kw(k)}={expression(v, refs)}" for k, v in expr.kwargs]
        return f"keras.ops.{_dotted(expr.fn)}({', '.join(parts)})"
    if isinstance(expr, Item):
        value = expression(expr.value, refs)  # a call or subscript needs no parentheses
        value = value if isinstance(expr.value, (Call, Item)) else _operand(value)
        return f"{value}[{_index(expr.index)}]"
    if isinstance(expr, Lambda):
        params = [identifier_kw(p) for p in expr.params]
        names = params + [identifier_kw(name) for name, _ in expr.bindings]
        body = expression(expr.body, names)
        if expr.bindings:
            steps = [
                f"{names[len(params) + j]} := {expression(v, names)}"
                for j, (_, v) in enumerate(expr.bindings)
            ]
            body = f"({', '.join(steps)}, {body})[-1]"
        return f"lambda {', '.join(params)}: {body}"
    if isinstance(expr, list):
        return "[" + ", ".join(expression(v, refs) for v in expr) + "]"
    if isinstance(expr, tuple) and any(isinstance(v, (Ref, Call, Item, Lambda)) for v in expr):
        items = ", ".join(expression(v, refs) for v in expr)
        return f"({items},)" if len(expr) == 1 else f"({items})"
    return literal(expr)


def _operand(source: str) -> str:
    return source if source.isidentifier() else f"({source})"


def _dotted(name: str) -> str:
    parts = name.split(".")
    if not all(p.isidentifier() for p in parts):
        raise ValueError(f"not a keras.ops function name: {name!r}")
    return name


def tf_class_name(op: str) -> str:
    return "TF" + _dotted(op)  # op names come from TensorFlow's registry: identifiers


def tf_classes(spec: ModelSpec) -> list[dict]:
    """One TensorFlow-only layer class per op type, from the TFOp the pattern recorded."""
    seen: dict[str, TFOp] = {}
    quantized: dict[str, set[str]] = {}
    stores_quantized: set[str] = set()
    for layer in spec.layers:
        if layer.kind is Kind.TENSORFLOW:
            seen.setdefault(layer.tfop.op, layer.tfop)
            quantized.setdefault(layer.tfop.op, set()).update(layer.quantized)
            if layer.stores_quantized:
                stores_quantized.add(layer.tfop.op)
    from .opdefs import get

    classes = []
    for op, tfop in sorted(seen.items()):
        definition = get(_dotted(op))
        defaults = {definition.keyword(name): default for name, _, default in definition.attrs}
        params = [identifier_kw(name) for name, _ in tfop.inputs]
        classes.append(
            {
                "name": tf_class_name(op),
                "op": op,
                "attrs": [(identifier_kw(a), literal(defaults.get(a))) for a in tfop.attrs],
                "params": params,
                "call": ", ".join(f"{p}={p}" for p in params),
                # several outputs, or a list: Keras wants a flat tuple of tensors
                "flatten": len(definition.outputs) > 1 or any(n for _, n in definition.outputs),
                "quantized": [p for p in params if p in quantized[op]],
                "stores_quantized": op in stores_quantized,
            }
        )
    return classes


# A layer with more outputs than this is assigned to one name, and an output is read where it
# is used as `name[i]`: unpacking (and black formatting) tens of thousands of names made one
# statement of megabytes for a Split of 65,536 of which one was read.
UNPACK_AT_MOST = 16


def _list(values) -> str:
    """A list literal; many copies of one value as `[value] * n`."""
    values = list(values)
    if len(values) > UNPACK_AT_MOST and all(v == values[0] for v in values):
        return f"[{literal(values[0])}] * {len(values)}"
    return literal(values)


def _layer_call(layer: Layer, args: list[str], layers: str = "keras.layers.") -> str:
    if layer.kind is Kind.OPS:
        return expression(layer.expr, args)
    if layer.kind is Kind.TENSORFLOW:
        values = [expression(a, args) for a in layer.args]
        grouped, i = [], 0
        for _, count in layer.tfop.inputs:
            take = count or 1
            part = values[i : i + take]
            grouped.append("[" + ", ".join(part) + "]" if count else part[0])
            i += take
        kwargs = [f"{identifier_kw(k)}={literal(v)}" for k, v in layer.kwargs.items()]
        if layer.output_specs is not None:
            shapes, dtypes = layer.output_specs
            kwargs += [f"output_shapes={_list(shapes)}", f"output_dtypes={_list(dtypes)}"]
        if layer.quantized:
            kwargs.append(f"quantized={literal(dict(sorted(layer.quantized.items())))}")
        ctor = ", ".join([*kwargs, f"name={literal(layer.name)}"])
        return f"{tf_class_name(layer.tfop.op)}({ctor})({', '.join(grouped)})"
    keywords, taken = [], sum(count or 1 for _, count in layer.keywords)
    args, rest = args[: len(args) - taken], args[len(args) - taken :]
    for word, count in layer.keywords:
        part, rest = rest[: count or 1], rest[count or 1 :]
        keywords.append(f"{word}=" + ("[" + ", ".join(part) + "]" if count else part[0]))
    call = "[" + ", ".join(args) + "]" if layer.list_input else ", ".join(args)
    call = ", ".join([call, *keywords]) if keywords else call
    prefix = "" if layer.cls in HELPERS else layers
    return f"{prefix}{layer.cls}({constructor_args(layer)})({call})"


def report_lines(spec: ModelSpec) -> list[str]:
    """The conversion report as comment lines: how many source nodes took each path, and by
    which op types for the paths that are not plain Keras layers."""
    report = spec.report()
    total = {path: sum(report[path].values()) for path in PATHS}
    lines = [
        f"Conversion: {total['keras.layers']} source nodes as keras.layers, "
        f"{total['keras.ops']} as keras.ops, {total['tensorflow']} TensorFlow-only."
    ]
    for path, label in (("keras.ops", "keras.ops"), ("tensorflow", "TensorFlow-only")):
        if report[path]:
            ops = ", ".join(f"{op} ×{n}" if n > 1 else op for op, n in report[path].items())
            lines.append(comment_text(f"{label}: {ops}"))
    where = spec.where_it_runs()
    lines.append(comment_text(f"{where[0].upper()}{where[1:]}."))
    return lines


def model_context(spec: ModelSpec, flat: bool = False) -> dict:
    classes = tf_classes(spec)
    program = Program() if flat or spec.is_chain() else factor(spec)
    functions = {f.name for f in program.functions}
    reserved = RESERVED | HELPERS | {c["name"] for c in classes} | functions
    variables = Allocator(reserved | ({"i", "layers"} if program.functions else set()))
    var_of: dict[str, str] = {}
    inputs = []
    for inp in spec.inputs:
        var = variables.claim(identifier(inp.name))
        var_of[inp.tensor] = var
        dtype = QUANTIZED_STORAGE.get(inp.dtype, inp.dtype)  # fed as its integer storage
        inputs.append(
            {
                "var": var,
                "shape": literal(tuple(inp.shape)),
                "keyword": "shape" if inp.batched else "batch_shape",
                "name": literal(inp.name),
                "dtype": None if dtype == "float32" else literal(dtype),
            }
        )
    if program.functions:
        # keras.Model(inputs=...) reads the inputs' variables at the end: they stay
        keep = [i.tensor for i in spec.inputs]
        layers = _statements(
            program.body, var_of, variables, spec.outputs + keep, program, spec.scope
        )
        definitions = [_definition(f, program, spec.scope) for f in program.functions]
    else:
        layers = [_flat_statement(layer, var_of, variables, spec.scope) for layer in spec.layers]
        definitions = []
    outputs = [var_of[t] for t in spec.outputs]
    return {
        "spec": spec,
        "inputs": inputs,
        "layers": layers,
        "model_inputs": (
            inputs[0]["var"]
            if len(inputs) == 1
            else "[" + ", ".join(i["var"] for i in inputs) + "]"
        ),
        "model_outputs": outputs[0] if len(outputs) == 1 else "[" + ", ".join(outputs) + "]",
        "functions": definitions,
        # block functions read as Keras's own applications: `layers.Conv2D`
        "import_layers": bool(definitions),
        "helpers": sorted({l.cls for l in spec.layers if l.cls in HELPERS}),
        "tf_classes": classes,
        "report": report_lines(spec),
        "source": comment_text(spec.source),
        "source_doc": docstring_text(spec.source),
        "options": comment_text("".join(f" {option}" for option in spec.options)),
        "command_source": comment_text(shlex.quote(spec.source)),
        "scope_doc": docstring_text(spec.scope),
        "model_name": literal(spec.name),
    }


def _flat_statement(layer: Layer, var_of: dict, variables: Allocator, scope: str) -> dict:
    """One layer call of the flat build_model, its variables named after the layer."""
    expr = _layer_call(layer, [var_of[t] for t in layer.inputs])
    var, targets = _claim(identifier(layer.name), len(layer.outputs), variables)
    var_of.update(zip(layer.outputs, targets))
    return {
        "var": var,
        "expr": expr,
        "comment": _comment(layer, scope),
        "loop": None,
        "condition": None,
    }


def _claim(base: str, count: int, variables: Allocator) -> tuple[str, list[str]]:
    """What a call's results are assigned to, and the source naming each result: one
    variable; a few unpacked (`base_0, base_1`); many held by one name and read indexed."""
    if count == 1:
        var = variables.claim(base)
        return var, [var]
    if count <= UNPACK_AT_MOST:
        targets = [variables.claim(f"{base}_{i}") for i in range(count)]
        return ", ".join(targets), targets
    var = variables.claim(base)
    return var, [f"{var}[{i}]" for i in range(count)]


def _comment(layer: Layer, scope: str, part: str = "", param: str = "") -> str | None:
    comment = provenance(layer, scope)
    name = layer.name
    if comment and part and param == "index":
        # a number is a word of many node names (`normal_conv_1_5_1`): only where the layer's
        # own name stands does it stand for the parameter
        if isinstance(name, NameTemplate) and name.param == param and not name.offset:
            pattern = _word(name.prefix + part + name.suffix)
            text = name.prefix + "{" + param + "}" + name.suffix
            comment = re.sub(pattern, lambda _: text, comment)
    elif comment and part:  # in a block: the instance's part of the names is the parameter
        comment = re.sub(_word(part), lambda _: "{" + param + "}", comment)
    if layer.kind is Kind.TENSORFLOW:  # the marker the language server looks for
        comment = "TensorFlow-only (graph2py: tf-only)" + (f": {comment}" if comment else "")
    return comment


def _word(text: str) -> str:
    return r"(?<![A-Za-z0-9])" + re.escape(text) + r"(?![A-Za-z0-9])"


def _chain(body: list, outputs: list[str]) -> set[str]:
    """The tensors of the body's main line: back from its first output, through the input
    with the longest path behind it (the latest made, between equals). They take turns in
    `x`, as a hand-written block would have it."""
    made = {t: (i, item) for i, item in enumerate(body) for t in item.outputs}
    depth: dict[str, int] = {}
    for item in body:
        level = 1 + max((depth.get(t, 0) for t in item.inputs), default=0)
        for t in item.outputs:
            depth[t] = level
    chain, tensor = set(), outputs[0] if outputs else None
    while tensor in made:
        chain.add(tensor)
        _, item = made[tensor]
        # a Constant is anchored on a tensor, not computed from it: never the main line
        inside = [
            t for t in item.inputs if t in made and getattr(made[t][1], "cls", "") != "Constant"
        ]
        tensor = max(inside, key=lambda t: (depth[t], made[t][0])) if inside else None
    return chain


def _statements(
    body: list,
    var_of: dict,
    variables: Allocator,
    outputs: list[str],
    program: Program,
    scope: str,
    function: Function | None = None,
) -> list[dict]:
    """The statements of a body (build_model's, or a block function's): the main line in `x`
    while its previous value is no longer read, other values named after their layers."""
    chain = _chain(body, outputs)
    last_read = {}
    for i, item in enumerate(body):
        for t in item.inputs:
            last_read[t] = i
    for t in outputs:
        last_read[t] = len(body)
    in_x = next((t for t, v in var_of.items() if v == "x"), None)
    statements = []
    for i, item in enumerate(body):
        args = [var_of[t] for t in item.inputs]
        condition = None
        if isinstance(item, Guarded):  # `if flag: v = layer(v)`: the output shares through's var
            condition = condition_source(item.flag)
            inner = item.item
            if isinstance(inner, BlockCall):
                expr, comment = _block_call(inner, args, program), None
            else:
                expr = _layer_call(inner, args, "layers.")
                part = item.source or (function.source if function else "")
                comment = _comment(inner, scope, part, function.name_param if function else "")
            var = var_of[item.through]
            var_of[item.outputs[0]] = var
            if var == "x":
                in_x = item.outputs[0]
            statements.append(
                {"var": var, "expr": expr, "comment": comment, "loop": None, "condition": condition}
            )
            continue
        if isinstance(item, BlockCall):
            expr = _block_call(item, args, program)
            comment = None
        else:
            expr = _layer_call(item, args, "layers.")
            part = function.source if function else ""
            comment = _comment(item, scope, part, function.name_param if function else "")
        if isinstance(item, BlockCall) and item.loop:  # `v = block(v, ...)` carries v
            var, targets = args[0], [args[0]]
            if args[0] == "x":
                in_x = item.outputs[0]
        elif (
            len(item.outputs) == 1
            and item.outputs[0] in chain
            and (in_x is None or last_read.get(in_x, -1) <= i)
        ):
            var, targets = "x", ["x"]
            in_x = item.outputs[0]
        else:
            var, targets = _claim(_base_name(item, function), len(item.outputs), variables)
        var_of.update(zip(item.outputs, targets))
        loop = None
        if isinstance(item, BlockCall) and item.loop:
            loop = f"i in range({item.loop[0]}, {item.loop[1]})"
        statements.append(
            {"var": var, "expr": expr, "comment": comment, "loop": loop, "condition": None}
        )
    return statements


# Longer variable names lose their leading words: the tail tells layers apart (the Allocator
# keeps them unique), as tf-slim names do.
LONGEST_NAME = 40


def _base_name(item, function: Function | None) -> str:
    """A variable's name: in a block, from what its layer's name adds to the block's name
    (`{name}_0_conv` -> conv_0); in build_model, the layer's or the block instance's name; at
    most LONGEST_NAME characters."""
    base = _full_name(item, function)
    while len(base) > LONGEST_NAME and "_" in base.strip("_"):
        base = identifier(base.split("_", 1)[1])
    return base[-LONGEST_NAME:] if len(base) > LONGEST_NAME else base


def _full_name(item, function: Function | None) -> str:
    name = item.name
    if isinstance(name, NameTemplate):
        words = [w for w in re.split(r"[^A-Za-z0-9]+", name.prefix + "_" + name.suffix) if w]
        letters = [w for w in words if not w.isdigit()] + [w for w in words if w.isdigit()]
        return identifier("_".join(letters)) if letters else "y"
    if function is not None and not function.name_param and isinstance(name, str):
        # in a custom layer's function, what its names add to the scope it is named after
        base = identifier(name)
        tail = base[len(function.name) + 1 :] if base.startswith(function.name + "_") else ""
        return tail if tail and not tail[0].isdigit() else "y" if base == function.name else base
    if isinstance(item, BlockCall):
        if isinstance(name, int):
            return identifier(f"{item.function}_{name}")
        return identifier(str(name)) if isinstance(name, str) else identifier(item.function)
    return identifier(name)


def _block_call(call: BlockCall, args: list[str], program: Program) -> str:
    function = next(f for f in program.functions if f.name == call.function)
    parts = list(args)
    for (pname, default), value in zip(function.params, call.values):
        if default is NO_DEFAULT:
            parts.append(literal(value))
        elif isinstance(value, Param) or canon(value) != canon(default):
            parts.append(f"{identifier_kw(pname)}={literal(value)}")
    if function.name_param:  # a custom layer's keras.ops take no name
        if call.loop and isinstance(call.name, Param):
            name = call.name.name
        elif isinstance(call.name, NameTemplate) and not call.name.prefix + call.name.suffix:
            template = call.name  # the outer number as it is: `index=index`
            name = literal(
                Offset(template.param, template.offset)
                if template.offset
                else Param(template.param)
            )
        else:
            name = literal(call.name)
        parts.append(f"{function.name_param}={name}")
    return f"{identifier_kw(function.name)}({', '.join(parts)})"


def _definition(function: Function, program: Program, scope: str) -> dict:
    """A block function: its signature, its statements, what it returns."""
    reads = Counter(t for item in function.body for t in item.inputs)
    variables = Allocator(
        (RESERVED - {"inputs"}) | {f.name for f in program.functions} | {"i", "layers"}
    )
    var_of = {}
    params = []
    for n, tensor in enumerate(function.inputs):
        wanted = "x" if n == 0 and reads[tensor] == 1 else "inputs"
        var_of[tensor] = variables.claim(wanted)
        params.append(var_of[tensor])
    for pname, default in function.params:
        if default is NO_DEFAULT:
            params.append(identifier_kw(pname))
    for pname, default in function.params:
        if default is not NO_DEFAULT:
            params.append(f"{identifier_kw(pname)}={literal(default)}")
    if function.name_param:
        params.append(f"*, {identifier_kw(function.name_param)}")
        variables.used.add(function.name_param)
    for pname, _ in function.params:
        variables.used.add(pname)
    body = _statements(function.body, var_of, variables, function.outputs, program, scope, function)
    returns = ", ".join(var_of[t] for t in function.outputs)
    return {
        "name": identifier_kw(function.name),
        "signature": ", ".join(params),
        "body": body,
        "returns": returns,
    }


def render(
    spec: ModelSpec, files=("model.py", "load_weights.py"), flat: bool = False
) -> dict[str, str]:
    """{'model.py': ..., 'load_weights.py': ...}, before post-processing; `flat` writes
    build_model as one function, without the block functions of blocks.py."""
    env = _environment()
    contexts = {
        "model.py": lambda spec: model_context(spec, flat),
        "load_weights.py": weights_context,
    }
    return {name: env.get_template(f"{name}.j2").render(contexts[name](spec)) for name in files}
