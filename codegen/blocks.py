"""Repeated structure in a model spec, as functions and loops (issue "Readable at scale").

A frozen graph keeps no trace of the functions its author wrote: MobileNetV2's
`_inverted_res_block` is sixteen copies of nine layers. This module finds such copies and
writes each kind once, as a block function, the way the hand-written source had it:

- **Candidates come from structure.** The spec's layers, in emission order, are a sequence of
  labels (layer class, keyword set, wiring arity; a keras.ops expression or a TensorFlow op as
  a whole). Every window of the sequence that recurs (polynomial hashes of all windows, every
  length) is a candidate; windows of one candidate are then compared exactly: the same labels,
  each input wired to the same layer of the window or to the same outside tensor, the same
  outputs leaving the window.
- **Names are the alignment.** Every layer must keep its original name, so a block's layers
  must be named `<prefix><part><suffix>` with one `part` per instance (`block_3` in
  `block_3_expand`, `12` in `conv2d_12`); a window that straddles two instances has two parts
  and is refused. That is how the scopes hint and the structure decides.
- **The cheapest set wins.** Each round takes the candidate that saves the most statements
  (instances x size, less the function and its calls), lazily verified from the best estimate
  down, and replaces its instances by calls; the calls are labels of the next round, which is
  how a block of blocks becomes a nested function. A block used once is no function.
- **What varies becomes a parameter**: a constructor value that differs between instances,
  one parameter per distinct column of values, with the most common value as its default
  when it recurs; the name part is the last, keyword-only parameter (`name`, or `index` for an
  integer).
- **Runs become loops**: consecutive calls of one block, each feeding the next, alike but for
  a counter in their names, are `for i in range(...)`.

The result is plain data (`Program`) that emit.py renders; `--flat` skips this module.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from .names import identifier
from .spec import Kind, Layer, ModelSpec

# Beyond this many layers the quadratic window search costs more than the code it saves reads
# better (bench/scale.py's synthetic graphs); the model stays flat.
MAX_LAYERS = 4000
# A block takes and returns at most this many tensors: wider ones read worse than flat code.
MAX_PORTS = 4
# Candidates verified per round before settling for the best verified one.
VERIFY_AT_MOST = 400
# Name text a block's f-strings may hold verbatim (the parts that vary are passed as literals):
# nothing that could end the string, start an escape or a replacement field.
SAFE = re.compile(r"[A-Za-z0-9_.\-/: ]*")
_BOUNDARY = re.compile(r"[^A-Za-z0-9]")

# The constructor's positional parameters, for naming a block's parameters after them.
POSITIONAL = {
    "Conv1D": ("filters", "kernel_size"),
    "Conv2D": ("filters", "kernel_size"),
    "Conv3D": ("filters", "kernel_size"),
    "SeparableConv2D": ("filters", "kernel_size"),
    "Conv2DTranspose": ("filters", "kernel_size"),
    "DepthwiseConv2D": ("kernel_size",),
    "Dense": ("units",),
    "EinsumDense": ("equation", "output_shape"),
    "MaxPooling2D": ("pool_size",),
    "AveragePooling2D": ("pool_size",),
    "ReLU": ("max_value",),
    "Activation": ("activation",),
    "Dropout": ("rate",),
    "Reshape": ("target_shape",),
    "Rescaling": ("scale",),
    "ZeroPadding2D": ("padding",),
}


@dataclass(frozen=True)
class Param:
    """In a block's body: the value of the block's parameter `name`."""

    name: str


@dataclass(frozen=True)
class NameTemplate:
    """A layer name in a block, `f"{prefix}{param}{suffix}"`."""

    prefix: str
    param: str
    suffix: str


@dataclass
class BlockCall:
    """One call of a block: `outputs = function(inputs, *values, name=name)`."""

    function: str
    inputs: list[str]
    outputs: list[str]
    name: Any  # the name part: a str, an int, or (in a block's body) a NameTemplate or Param
    values: tuple  # one per parameter of the function, in its order (Param in a block's body)
    # a loop: the counter runs over range(start, stop); `name` is a NameTemplate over it
    loop: tuple[int, int] | None = None


@dataclass
class Function:
    name: str
    inputs: list[str]  # tensors of the first instance standing for the parameters
    params: list[tuple[str, Any]]  # (name, default); default NO_DEFAULT when required
    name_param: str  # "name" or "index"
    body: list  # Layer (names as NameTemplate, values as Param) or BlockCall
    outputs: list[str]
    instances: int
    source: str = ""  # the concrete name part of the first instance (for comments)


NO_DEFAULT = object()


@dataclass
class Program:
    functions: list[Function] = field(default_factory=list)
    body: list = field(default_factory=list)  # Layer or BlockCall, in order


def factor(spec: ModelSpec) -> Program:
    """The spec's layers as block functions and the calls that build the model from them; a
    Program with no functions when nothing repeats (the caller then writes the flat form)."""
    program = Program(body=list(spec.layers))
    if len(spec.layers) > MAX_LAYERS:
        return program
    outputs = set(spec.outputs)
    used: set[str] = set()
    while True:
        best = _best_block(program, outputs)
        if best is None:
            break
        function, instances = best
        function.name = f"_block{len(program.functions)}"  # named once all are known
        _replace(program, function, instances)
    program.body = _roll_loops(program, outputs)
    _name_functions(program)
    return program


# -- items: what a round sees of layers and calls -------------------------------------------


def canon(value: Any) -> Any:
    """A key under which two values are equal only if Keras sees them alike: True is not 1."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(canon(v) for v in value))
    return (type(value).__name__, repr(value))


def _label(item) -> tuple:
    if isinstance(item, BlockCall):
        return ("call", item.function, len(item.values), len(item.inputs), len(item.outputs))
    layer: Layer = item
    if layer.kind is Kind.LAYER:
        return (
            "layer",
            layer.cls,
            len(layer.args),
            tuple(layer.kwargs),
            layer.list_input,
            layer.keywords,
            len(layer.inputs),
            len(layer.outputs),
        )
    # a keras.ops expression or a TensorFlow op takes part only exactly as it is
    return (
        "exact",
        layer.kind.value,
        repr(layer.expr),
        repr(layer.tfop),
        repr(layer.args),
        repr(sorted(layer.kwargs.items())),
        repr(layer.output_specs),
        repr(sorted(layer.quantized.items())),
        layer.stores_quantized,
        len(layer.inputs),
        len(layer.outputs),
    )


def _values(item) -> tuple:
    if isinstance(item, BlockCall):
        return item.values
    if item.kind is Kind.LAYER:
        return (*item.args, *item.kwargs.values())
    return ()


def _slots(item, program: Program) -> list[str]:
    """A name for each of the item's values, to name parameters after."""
    if isinstance(item, BlockCall):
        function = next(f for f in program.functions if f.name == item.function)
        return [name for name, _ in function.params]
    positional = POSITIONAL.get(item.cls, ())
    names = [positional[j] if j < len(positional) else f"arg{j}" for j in range(len(item.args))]
    return names + list(item.kwargs)


def _name_of(item) -> str | None:
    if isinstance(item, BlockCall):
        return str(item.name) if isinstance(item.name, (str, int)) else None
    return item.name


# -- finding the best block -------------------------------------------------------------------

_MOD = (1 << 61) - 1
_BASE = 1_000_003


@dataclass
class _Candidate:
    saving: int
    length: int
    starts: list[int]


def _best_block(program: Program, outputs: set[str]):
    items = program.body
    n = len(items)
    if n < 4:
        return None
    ids: dict[tuple, int] = {}
    codes = [ids.setdefault(_label(item), len(ids) + 1) for item in items]
    prefix = [0] * (n + 1)
    for i, c in enumerate(codes):
        prefix[i + 1] = (prefix[i] * _BASE + c) % _MOD
    power = [1] * (n + 1)
    for i in range(n):
        power[i + 1] = power[i] * _BASE % _MOD
    readers: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        for t in item.inputs:
            readers.setdefault(t, []).append(position)
    candidates = []
    for length in range(2, n // 2 + 1):
        groups: dict[int, list[int]] = {}
        p = power[length]
        for s in range(n - length + 1):
            h = (prefix[s + length] - prefix[s] * p) % _MOD
            groups.setdefault(h, []).append(s)
        for starts in groups.values():
            if len(starts) < 2:
                continue
            chosen, end = [], -1
            for s in starts:
                if s >= end:
                    chosen.append(s)
                    end = s + length
            count = len(chosen)
            saving = count * length - (length + count + 2)
            if count >= 2 and saving > 0:
                candidates.append(_Candidate(saving, length, chosen))
    candidates.sort(key=lambda c: (-c.saving, c.length, c.starts[0]))
    best = None
    for candidate in candidates[:VERIFY_AT_MOST]:
        if best is not None and best[0] >= candidate.saving:
            break
        found = _verify(program, candidate, readers, outputs)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return None if best is None else best[1:]


def _signature(items, s, length, readers, outputs):
    produced = {}
    for k in range(length):
        for j, t in enumerate(items[s + k].outputs):
            produced[t] = (k, j)
    external: dict[str, int] = {}
    wiring = []
    for k in range(length):
        item = items[s + k]
        row = []
        for t in item.inputs:
            inside = produced.get(t)
            if inside is not None and inside[0] < k:
                row.append(("in", *inside))
            else:
                row.append(("out", external.setdefault(t, len(external))))
        wiring.append(tuple(row))
    end = s + length
    escapes = []
    for k in range(length):
        for j, t in enumerate(items[s + k].outputs):
            if t in outputs or any(r < s or r >= end for r in readers.get(t, ())):
                escapes.append((k, j))
    labels = tuple(_label(items[s + k]) for k in range(length))
    return (labels, tuple(wiring), tuple(escapes), len(external)), list(external), escapes


def _verify(program, candidate, readers, outputs):
    """The best block among the candidate's windows: those alike exactly, named alike."""
    items, length = program.body, candidate.length
    classes: dict[tuple, list] = {}
    for s in candidate.starts:
        key, external, escapes = _signature(items, s, length, readers, outputs)
        if not escapes or len(escapes) > MAX_PORTS or not external or len(external) > MAX_PORTS:
            continue
        classes.setdefault(key, []).append((s, external, escapes))
    best = None
    for alike in classes.values():
        for members in _name_groups(items, alike, length):
            found = _block(program, members, length)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
    return best


def _name_groups(items, members, length):
    """The windows to try naming as one: all of them, then those whose names agree but for
    their digits (a stem `Conv1, bn_Conv1, ...` shaped like the blocks after it is no block)."""
    yield members
    groups: dict[tuple, list] = {}
    for member in members:
        skeleton = tuple(
            re.sub(r"\d+", "#", _name_of(items[member[0] + k]) or "") for k in range(length)
        )
        groups.setdefault(skeleton, []).append(member)
    if len(groups) > 1:
        yield from (g for g in groups.values() if len(g) >= 2)


def _block(program, members, length):
    items = program.body
    if len(members) < 2:
        return None
    naming = _naming(items, [s for s, _, _ in members], length)
    if naming is None:
        return None
    parts, templates, name_param, kept = naming
    members = [m for m in members if m[0] in kept and _whole(items, m[0], length, parts)]
    count = len(members)
    saving = count * length - (length + count + 2)
    if count < 2 or saving <= 0:
        return None
    if len(members) < len(kept):  # parts of the names were read from windows now left out
        return _block(program, members, length)
    function, instances = _abstract(program, members, length, parts, templates, name_param)
    return saving, function, instances


def _naming(items, starts, length):
    """The one part of each instance's layer names that varies, and each layer's name around
    it: (parts by start, [(prefix, suffix)] by layer, "name" or "index", starts kept); None
    when the names do not read as one template."""
    kept = list(starts)
    for _ in range(2):  # a second try without the instances whose part came out empty
        if len(kept) < 2:
            return None
        templates, parts = [], {s: None for s in kept}
        for k in range(length):
            names = [_name_of(items[s + k]) for s in kept]
            if any(n is None for n in names):
                return None
            prefix, suffix = _common_prefix(names), _common_suffix(names)
            if len(prefix) + len(suffix) > min(len(n) for n in names):
                return None
            if not (SAFE.fullmatch(prefix) and SAFE.fullmatch(suffix)):
                return None
            templates.append((prefix, suffix))
            for s, name in zip(kept, names):
                part = name[len(prefix) : len(name) - len(suffix)]
                if parts[s] is None:
                    parts[s] = part
                elif parts[s] != part:
                    return None
        empty = [s for s in kept if not parts[s]]
        if not empty:
            break
        kept = [s for s in kept if parts[s]]
    else:
        return None
    if len(set(parts.values())) != len(parts):
        return None
    # text every suffix starts with belongs to the name too: `conv2` + `_block1_0_conv` is
    # `conv2_block1` + `_0_conv`
    head = _common_prefix_raw([suffix for _, suffix in templates])
    head = head[: max((i for i, c in enumerate(head) if _BOUNDARY.match(c)), default=0)]
    if head and all(
        len(suffix) == len(head) or _BOUNDARY.match(suffix[len(head)]) for _, suffix in templates
    ):
        parts = {s: part + head for s, part in parts.items()}
        templates = [(prefix, suffix[len(head) :]) for prefix, suffix in templates]
    # one prefix for every layer: the prefix belongs to the name (`block_3` + `_expand`)
    prefixes = {p for p, _ in templates}
    if len(prefixes) == 1 and next(iter(prefixes)):
        prefix = next(iter(prefixes))
        parts = {s: prefix + part for s, part in parts.items()}
        templates = [("", suffix) for _, suffix in templates]
    name_param = "index" if all(_is_count(p) for p in parts.values()) else "name"
    for k, (prefix, suffix) in enumerate(templates):
        inner = items[kept[0] + k]
        # a call taking an integer index takes the outer one as it is, or nothing
        if isinstance(inner, BlockCall) and isinstance(inner.name, int):
            if prefix or suffix or name_param != "index":
                return None
    if name_param == "index":
        return {s: int(p) for s, p in parts.items()}, templates, "index", set(kept)
    return parts, templates, "name", set(kept)


def _whole(items, start: int, length: int, parts) -> bool:
    """Whether the window holds its whole instance: the layers just before and after it are
    not named for the same part (a window of `conv2_block2` and half of `conv2_block3` names
    its instances `conv2`, and `conv2_block1_out` beside it says it is not all of `conv2`)."""
    words = _words(str(parts[start]))
    for position in (start - 1, start + length):
        if 0 <= position < len(items):
            name = _name_of(items[position])
            if name is not None and _contains(_words(name), words):
                return False
    return True


def _words(text: str) -> list[str]:
    return [w for w in _BOUNDARY.split(text) if w]


def _contains(words: list[str], part: list[str]) -> bool:
    n = len(part)
    return any(words[i : i + n] == part for i in range(len(words) - n + 1))


def _is_count(text: str) -> bool:
    return text.isdigit() and text.isascii() and (text == "0" or text[0] != "0")


def _common_prefix(names: list[str]) -> str:
    first = min(names)
    last = max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    # end at a word boundary: `conv2d_1` of conv2d_12 and conv2d_15 is `conv2d_`
    while n and not (
        _BOUNDARY.match(names[0][n - 1]) or all(len(x) == n or _BOUNDARY.match(x[n]) for x in names)
    ):
        n -= 1
    return names[0][:n]


def _common_suffix(names: list[str]) -> str:
    reversed_names = [n[::-1] for n in names]
    return _common_prefix(reversed_names)[::-1]


def _abstract(program, members, length, parts, templates, name_param):
    """The block function of a class of windows, and each window's call."""
    items = program.body
    starts = [s for s, _, _ in members]
    first = starts[0]
    # one parameter per distinct column of values
    columns: dict[tuple, tuple[int, int]] = {}  # values across instances -> first (k, slot)
    slot_param: dict[tuple[int, int], tuple] = {}
    for k in range(length):
        for slot in range(len(_values(items[first + k]))):
            column = tuple(canon(_values(items[s + k])[slot]) for s in starts)
            if len(set(column)) == 1:
                continue
            columns.setdefault(column, (k, slot))
            slot_param[(k, slot)] = column
    derived = _derived(columns, items, starts)
    for column in derived:
        del columns[column]
    names_taken: Counter = Counter()
    wanted = {}
    for column, (k, slot) in columns.items():
        base = _slots(items[first + k], program)[slot]
        wanted[column] = (base, k)
        names_taken[base] += 1
    params = []
    param_of = {}
    reserved = {"x", "inputs", "name", "index", "keras", "i"}
    given: set[str] = set()
    for column, (base, k) in wanted.items():
        pname = identifier(base)
        if names_taken[base] > 1:
            words = [w for w in re.split(r"[^A-Za-z0-9]+", templates[k][1]) if w]
            words = [w for w in words if not w.isdigit()] + [w for w in words if w.isdigit()]
            tail = "_".join(words) if words else f"layer{k}"
            pname = identifier(f"{tail}_{base}")
        while pname in given or pname in reserved:
            pname += "_"
        given.add(pname)
        values = [_values(items[s + k])[columns[column][1]] for s in starts]
        counts = Counter(canon(v) for v in values)
        top, top_count = counts.most_common(1)[0]
        default = NO_DEFAULT
        if top_count * 2 > len(values) and len(counts) > 1:
            default = next(v for v in values if canon(v) == top)
        params.append([pname, default, values])
        param_of[column] = pname
    params.sort(key=lambda p: p[1] is not NO_DEFAULT)  # required ones first (Python's rule)
    # the body: the first instance's items, values and names abstracted
    body = []
    for k in range(length):
        item = items[first + k]
        prefix, suffix = templates[k]
        name = NameTemplate(prefix, name_param, suffix)
        substitute = {}
        for slot in range(len(_values(item))):
            column = slot_param.get((k, slot))
            if column in derived:
                kind, elements = derived[column]
                substitute[slot] = kind(
                    Param(param_of[value]) if how == "param" else value for how, value in elements
                )
            elif column is not None:
                substitute[slot] = Param(param_of[column])
        body.append(_substituted(item, name, substitute))
    _, external, escapes = members[0]
    function = Function(
        name="",
        inputs=external,
        params=[(p[0], p[1]) for p in params],
        name_param=name_param,
        body=body,
        outputs=[items[first + k].outputs[j] for k, j in escapes],
        instances=len(members),
        source=str(parts[first]),
    )
    instances = []
    order = {p[0]: i for i, p in enumerate(params)}
    for index, (s, external, escapes) in enumerate(members):
        values = [None] * len(params)
        for p in params:
            values[order[p[0]]] = p[2][index]
        call = BlockCall(
            function="",
            inputs=external,
            outputs=[items[s + k].outputs[j] for k, j in escapes],
            name=parts[s],
            values=tuple(values),
        )
        instances.append((s, call))
    return function, instances


def _derived(columns: dict, items, starts) -> dict:
    """Columns of tuples whose elements are other parameters or constants, as their recipe
    (type, [column of a parameter, or (constant,)]): `(1, 1, filters)` is no parameter of its
    own when `filters` is one."""
    derived = {}
    for column, (k, slot) in columns.items():
        values = [_values(items[s + k])[slot] for s in starts]
        if not all(isinstance(v, (tuple, list)) for v in values):
            continue
        kinds, sizes = {type(v) for v in values}, {len(v) for v in values}
        if len(kinds) != 1 or len(sizes) != 1:
            continue
        elements, found = [], False
        for e in range(sizes.pop()):
            element = tuple(canon(v[e]) for v in values)
            if len(set(element)) == 1:
                elements.append(("constant", values[0][e]))
            elif element in columns and not isinstance(values[0][e], (tuple, list)):
                elements.append(("param", element))
                found = True
            else:
                break
        else:
            if found:
                derived[column] = (kinds.pop(), elements)
    return derived


def _substituted(item, name: NameTemplate, substitute: dict[int, Param]):
    if isinstance(item, BlockCall):
        values = tuple(substitute.get(j, v) for j, v in enumerate(item.values))
        return replace(item, name=name, values=values)
    layer = replace(item, name=name)
    if substitute:
        n = len(item.args)
        layer.args = [substitute.get(j, v) for j, v in enumerate(item.args)]
        layer.kwargs = {
            key: substitute.get(n + j, v) for j, (key, v) in enumerate(item.kwargs.items())
        }
    return layer


def _replace(program: Program, function: Function, instances) -> None:
    program.functions.append(function)
    length = len(function.body)
    by_start = {s: call for s, call in instances}
    body, i = [], 0
    while i < len(program.body):
        call = by_start.get(i)
        if call is not None:
            call.function = function.name
            body.append(call)
            i += length
        else:
            body.append(program.body[i])
            i += 1
    program.body = body


def _name_functions(program: Program) -> None:
    """Each function named from its name parts (see `_function_name`); functions that would
    share a name are told apart by a layer only some of them have (`block_with_pad`), else
    numbered."""
    bases = [_function_name(f, program, set()) for f in program.functions]
    words = [_suffix_words(f) for f in program.functions]
    names = []
    for i, (function, base) in enumerate(zip(program.functions, bases)):
        rivals = [words[j] for j, b in enumerate(bases) if b == base and j != i]
        name = base
        if rivals:
            own = [w for w in words[i] if all(w not in r for r in rivals)]
            name = f"{base}_with_{own[0]}" if own else base
        names.append(name)
    renamed, taken = {}, set()
    for function, name in zip(program.functions, names):
        final, n = name, 2
        while final in taken or final in ("build_model", "keras", "layers", "load_weights"):
            final, n = f"{name}_{n}", n + 1
        taken.add(final)
        renamed[function.name] = final
    for function in program.functions:
        function.name = renamed[function.name]
        for item in function.body:
            if isinstance(item, BlockCall):
                item.function = renamed[item.function]
    for item in program.body:
        if isinstance(item, BlockCall):
            item.function = renamed[item.function]


def _suffix_words(function: Function) -> list[str]:
    """The words a block's layer names add to its name part, in order, once each."""
    seen = []
    for item in function.body:
        template = item.name
        if isinstance(template, NameTemplate):
            for word in re.split(r"[^A-Za-z]+", template.prefix + " " + template.suffix):
                word = word.lower()
                if word and word not in seen:
                    seen.append(word)
    return seen


def _function_name(function: Function, program: Program, used: set[str]) -> str:
    """From the name part (`conv2_block1` -> conv_block, `block_3` -> block), else from the
    layer names around an index (`conv2d_{index}` -> conv2d_block); `_block` added when the
    part says nothing of a block."""
    if function.name_param == "name":
        words = [w for w in re.split(r"[^a-zA-Z]+", re.sub(r"\d+", "_", function.source))]
        words = [w for w in words if len(w) > 1]
    else:
        first = function.body[0]
        template = first.name
        words = [w for w in re.split(r"[^a-zA-Z0-9]+", template.prefix + template.suffix) if w]
    base = identifier("_".join(words[:3])) if words else "block"
    if not base.endswith(("block", "cell", "module", "unit", "layer")):
        base = f"{base}_block"
    if base in ("block",):
        base = "block"
    name, n = base, 2
    reserved = {"build_model", "keras", "load_weights", "x", "inputs"}
    while name in used or name in reserved:
        name, n = f"{base}_{n}", n + 1
    return name


# -- loops ------------------------------------------------------------------------------------


def _roll_loops(program: Program, outputs: set[str]) -> list:
    """Runs of chained calls of one block, alike but for a counter in their names, as one
    loop call each."""
    body = program.body
    readers = Counter(t for item in body for t in item.inputs)
    for t in outputs:
        readers[t] += 1
    rolled, i = [], 0
    while i < len(body):
        run = [body[i]]
        # the loop carries one variable: its first value is read by the loop alone
        carried = isinstance(body[i], BlockCall) and len(body[i].inputs) == 1
        while carried and i + len(run) < len(body) and _continues(run, body[i + len(run)], readers):
            run.append(body[i + len(run)])
        loop = _loop(run) if len(run) >= 2 and readers[run[0].inputs[0]] == 1 else None
        if loop is None:
            rolled.append(body[i])
            i += 1
        else:
            rolled.append(loop)
            i += len(run)
    return rolled


def _continues(run: list, item, readers: Counter) -> bool:
    last = run[-1]
    return (
        isinstance(last, BlockCall)
        and isinstance(item, BlockCall)
        and item.function == last.function
        and item.values == last.values
        and len(last.outputs) == 1
        and item.inputs == last.outputs
        and readers[last.outputs[0]] == 1
    )


def _loop(run: list[BlockCall]) -> BlockCall | None:
    names = [str(c.name) for c in run]
    if isinstance(run[0].name, int):
        numbers = [c.name for c in run]
        prefix = suffix = ""
    else:
        # the counter: a digit run, the only place the names differ
        head = _common_prefix_raw(names)
        head = head[: len(head) - len(re.search(r"\d*$", head)[0])]
        tail = _common_suffix_raw(names)
        tail = tail[len(re.match(r"\d*", tail)[0]) :]
        middles = [n[len(head) : len(n) - len(tail)] for n in names]
        if not all(_is_count(m) for m in middles) or not SAFE.fullmatch(head + tail):
            return None
        numbers = [int(m) for m in middles]
        prefix, suffix = head, tail
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        return None
    first = run[0]
    name = NameTemplate(prefix, "i", suffix) if prefix or suffix else Param("i")
    return BlockCall(
        function=first.function,
        inputs=first.inputs,
        outputs=run[-1].outputs,
        name=name,
        values=first.values,
        loop=(numbers[0], numbers[-1] + 1),
    )


def _common_prefix_raw(names: list[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _common_suffix_raw(names: list[str]) -> str:
    return _common_prefix_raw([n[::-1] for n in names])[::-1]
