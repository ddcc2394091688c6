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
- **Units are laid out alike.** Before the search, layers whose names end in one number
  (NASNet's cell 5: `normal_conv_1_5`, `adjust_bn_5`, and the Keras counter names they read,
  `activation_33`) are put together, each unit entered by its layer of oldest input, then
  depth first: a cell starts with the adjustment of the cell before last, of whichever kind,
  and what follows it is one window in every cell.
- **Names are the alignment.** Every layer must keep its original name, so a block's layers
  must be named `<prefix><part><suffix>` with one `part` per instance (`block_3` in
  `block_3_expand`, `12` in `conv2d_12`); a window that straddles two instances has two parts
  and is refused. That is how the scopes hint and the structure decides.
- **The cheapest set wins.** Each round takes the candidate that saves the most statements
  (instances x size, less the function and its calls), lazily verified from the best estimate
  down, and replaces its instances by calls; the calls are labels of the next round, which is
  how a block of blocks becomes a nested function. A block used once is no function. Three
  orders are tried and the cheapest program kept: the largest saving first, the shortest
  block first, and blocks named by words first (NASNet's `normal_left1_5`, a unit of cell
  5, before the cells, numbered, whose functions then call the unit's).
- **What varies becomes a parameter**: a constructor value that differs between instances,
  one parameter per distinct column of values, with the most common value as its default
  when it recurs; the name part is the last, keyword-only parameter (`name`, or `index` for an
  integer).
- **Runs become loops**: consecutive calls of one block, each feeding the next, alike but for
  a counter in their names, are `for i in range(...)`.

The result is plain data (`Program`) that emit.py renders; `--flat` skips this module.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from .names import identifier, name_path
from .spec import POSITIONAL, Kind, Layer, ModelSpec

# Beyond this many layers the quadratic window search costs more than the code it saves reads
# better (bench/scale.py's synthetic graphs); the model stays flat.
MAX_LAYERS = 4000
# A block takes and returns at most this many tensors: wider ones read worse than flat code.
MAX_PORTS = 4
# Longer windows are not searched: no block we know is longer, and the search is quadratic.
MAX_LENGTH = 64
# Candidates verified per round before settling for the best verified one.
VERIFY_AT_MOST = 2000
# Name text a block's f-strings may hold verbatim (the parts that vary are passed as literals):
# nothing that could end the string, start an escape or a replacement field.
SAFE = re.compile(r"[A-Za-z0-9_.\-/: ]*")
_BOUNDARY = re.compile(r"[^A-Za-z0-9]")


@dataclass(frozen=True)
class Param:
    """In a block's body: the value of the block's parameter `name`."""

    name: str


@dataclass(frozen=True)
class Choice:
    """In a block's body: `then if param == equals else otherwise` (a bool `param == equals`):
    a value that follows another parameter needs no parameter of its own."""

    param: str
    equals: Any
    then: Any
    otherwise: Any


@dataclass(frozen=True)
class Offset:
    """In a block's body: `param + offset`, a Keras counter number that follows another."""

    param: str
    offset: int


# The slot of a layer's Keras counter number (`activation_17`) among its values.
COUNTER = -1


@dataclass(frozen=True)
class NameTemplate:
    """A layer name in a block, `f"{prefix}{param}{suffix}"` (`{param + offset}`)."""

    prefix: str
    param: str
    suffix: str
    offset: int = 0


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
class Guarded:
    """In a block's body: a layer (or call) some instances lack. It runs `if flag:`; without
    it, what read its output reads `through`, which therefore shares its variable."""

    item: Any
    flag: str
    through: str
    source: str = ""  # the name part of the instance its comment's nodes come from

    @property
    def inputs(self) -> list[str]:
        return self.item.inputs

    @property
    def outputs(self) -> list[str]:
        return self.item.outputs

    @property
    def name(self):
        return self.item.name


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
    Program with no functions when nothing repeats (the caller then writes the flat form).
    Three orders of search are tried, the largest block first, the innermost first (which
    nests) and the blocks named by words first; the program with less code wins."""
    if len(spec.layers) > MAX_LAYERS:
        return Program(body=list(spec.layers))
    programs = [_factor(spec, innermost) for innermost in (False, True)]
    programs.append(_factor(spec, False, named_first=True))
    return min((p for p in programs if p is not None), key=_cost)


def _factor(spec: ModelSpec, innermost: bool, named_first: bool = False) -> Program | None:
    """`named_first`: blocks whose instances are named by words (NASNet's separable-conv unit
    `normal_left1_5`) before numbered ones (its cell `5`), so that the cell's function calls
    the unit's; None when there are none (the program would be the largest-first one)."""
    program = Program(body=_cell_order(spec.layers))
    outputs = set(spec.outputs)
    numbered = not named_first
    while True:
        best = _best_block(program, outputs, innermost, numbered)
        if best is None and not numbered:
            if not program.functions:
                return None
            numbered = True
            continue
        if best is None:
            break
        function, instances = best
        function.name = f"_block{len(program.functions)}"  # named once all are known
        _replace(program, function, instances)
    _merge_variants(program)
    _drop_dependent(program)
    program.body = _roll_loops(program, outputs)
    _name_functions(program)
    _scope_functions(program, spec, outputs)
    return program


def _cell_order(layers: list[Layer]) -> list[Layer]:
    """The layers in an order that keeps each numbered unit together and alike: layers whose
    names end in one number (NASNet's cell 5: `normal_conv_1_5`, `adjust_bn_5`,
    `separable_conv_1_normal_left1_5`; a Keras counter name `activation_17` is of the unit
    that reads it) follow one another, each unit entered by the layer whose input is oldest
    (the cell's adjustment of the cell before last comes first, as the hand-written cell has
    it, whichever adjustment it is), then depth first. Layers of no number keep their order."""
    n = len(layers)
    made = {t: k for k, layer in enumerate(layers) for t in layer.outputs}
    producers = [sorted({made[t] for t in layer.inputs if t in made}) for layer in layers]
    readers: list[list[int]] = [[] for _ in range(n)]
    for k, found in enumerate(producers):
        for j in found:
            readers[j].append(k)
    words = [_words(layer.name) if isinstance(layer.name, str) else [] for layer in layers]
    pairs = Counter(tuple(w[-2:]) for w in words)
    group: list[tuple | None] = [None] * n
    for k in reversed(range(n)):
        name = layers[k].name if isinstance(layers[k].name, str) else ""
        counter = _COUNTER.fullmatch(name)
        if _class_named(layers[k], counter[1] if counter else name):
            group[k] = group[readers[k][0]] if readers[k] else None
            continue
        numbered = [i for i, w in enumerate(words[k]) if w.isdigit()]
        if numbered:  # the number, with the word before it when many names end in both
            i = numbered[-1]
            pair = tuple(words[k][i - 1 : i + 1])
            last = i == len(words[k]) - 1
            group[k] = pair if last and pair[0].isalpha() and pairs[pair] >= 3 else pair[-1:]
    if not any(group):
        return list(layers)
    waiting = [len(p) for p in producers]
    unplaced = [len(r) for r in readers]  # readers not yet placed
    ready = {k for k in range(n) if not waiting[k]}
    position: dict[int, int] = {}
    order: list[int] = []
    trail: list[int] = []  # the unit's layers placed so far that have readers to place
    unit = None
    while ready:
        pick = None
        while trail and not unplaced[trail[-1]]:
            trail.pop()
        if unit is not None:  # depth first: what reads the latest layer that has a reader ready
            for j in trail[: -MAX_LENGTH - 1 : -1]:
                found = [k for k in readers[j] if k in ready and group[k] == unit]
                if found:
                    pick = min(found)
                    break
            if pick is None:
                pick = min((k for k in ready if group[k] == unit), default=None)
        if pick is None:
            pick = min(ready)
            trail, unit = [], group[pick]
            if unit is not None:  # a unit's entry: the one of oldest input
                pick = min(
                    (k for k in ready if group[k] == group[pick]),
                    key=lambda k: (max(map(position.get, producers[k]), default=-1), k),
                )
        ready.remove(pick)
        for j in producers[pick]:
            unplaced[j] -= 1
        position[pick] = len(order)
        order.append(pick)
        trail.append(pick)
        for k in readers[pick]:
            waiting[k] -= 1
            if not waiting[k]:
                ready.add(k)
    if len(order) != n:  # not a DAG as the spec says it is: keep its order
        return list(layers)
    return [layers[k] for k in order]


def _cost(program: Program) -> float:
    """About the lines the program takes: a statement each, a def and a return per function,
    and a line per few arguments of a call."""
    total = 0.0
    for body in [program.body, *(f.body for f in program.functions)]:
        for item in body:
            total += 1 + (len(item.values) / 6 if isinstance(item, BlockCall) else 0)
    return total + sum(2 + len(f.params) / 6 for f in program.functions)


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


def _best_block(program: Program, outputs: set[str], innermost: bool, numbered: bool = True):
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
    skeletons = [_skeleton(item) for item in items]
    memo: dict = {}
    candidates = []
    for length in range(2, min(n // 2, MAX_LENGTH) + 1):
        groups: dict[int, list[int]] = {}
        p = power[length]
        for s in range(n - length + 1):
            h = (prefix[s + length] - prefix[s] * p) % _MOD
            groups.setdefault(h, []).append(s)
        for starts in groups.values():
            if len(starts) < 2:
                continue
            # windows whose end layers are named alike (digits aside) may be one block's
            alike: dict[tuple, list[int]] = {}
            for s in starts:
                key = (skeletons[s], skeletons[s + length - 1])
                alike.setdefault(key, []).append(s)
            for similar in alike.values():
                chosen, end = [], -1
                for s in similar:
                    if s >= end:
                        chosen.append(s)
                        end = s + length
                count = len(chosen)
                saving = count * length - (length + count + 2)
                if (
                    count >= 2
                    and saving > 0
                    and _ends_agree(items, chosen[0], chosen[1], length, memo)
                    and (
                        numbered
                        or _ends_agree(items, chosen[0], chosen[1], length, memo, False)
                        or _ends_agree(items, chosen[-2], chosen[-1], length, memo, False)
                    )
                ):
                    candidates.append(_Candidate(saving, length, chosen))
    # innermost first: the shortest block that verifies (its calls then make up the longer
    # blocks around it, which become nested functions); the largest saving among equals
    if innermost:
        # the shortest block that verifies (its calls then make up the longer blocks around
        # it, which become nested functions); the largest saving among equals
        candidates.sort(key=lambda c: (c.length, -c.saving, c.starts[0]))
    else:  # the largest saving, whatever is inside
        candidates.sort(key=lambda c: (-c.saving, c.length, c.starts[0]))
    best = None
    for candidate in candidates[:VERIFY_AT_MOST]:
        if best is not None and (
            candidate.length > best[1] if innermost else best[0] >= candidate.saving
        ):
            break
        found = _verify(program, candidate, readers, outputs, numbered)
        if found is not None and (best is None or found[0] > best[0]):
            best = (found[0], candidate.length, *found[1:])
    return None if best is None else best[2:]


def _skeleton(item) -> str:
    """A name with every word that holds a digit blanked: `block_10_expand` -> `block_#_expand`,
    `block2a_expand_conv` -> `#_expand_conv`, a Keras counter name `activation_7` -> `#`."""
    name = _name_of(item)
    if name is None or _COUNTER.fullmatch(name):
        return "#"
    return re.sub(r"[A-Za-z]*\d[A-Za-z0-9]*", "#", name)


def _ends_agree(items, a: int, b: int, length: int, memo: dict, numbered: bool = True) -> bool:
    """A cheap necessary condition for two windows to be instances of one block: the first
    and last layers that are not Keras counter names vary by the same part (unless
    `numbered`, one that is more than a number)."""

    def part(k: int) -> str | None:
        key = (a + k, b + k)
        if key not in memo:
            memo[key] = _pair_part(items[a + k], items[b + k])
        return memo[key]

    first = next((p for p in map(part, range(min(3, length))) if p != ""), "")
    if first is None:
        return False
    last = next((p for p in map(part, range(length - 1, max(-1, length - 4), -1)) if p != ""), "")
    if numbered or any(re.fullmatch(r"[^|]*[^|\d][^|]*\|.*", p or "") for p in (first, last)):
        return last is not None and (not first or not last or first == last)
    return False


def _pair_part(one, other) -> str | None:
    """What differs between two layers' names ("" for two Keras counter names, None when
    the names are not alike)."""
    x, y = _name_of(one), _name_of(other)
    if x is None or y is None:
        return None
    if _counter_base([x, y]) is not None:
        return ""
    prefix, suffix = _common_prefix([x, y]), _common_suffix([x, y])
    if len(prefix) + len(suffix) > min(len(x), len(y)):
        return None
    return x[len(prefix) : len(x) - len(suffix)] + "|" + y[len(prefix) : len(y) - len(suffix)]


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


def _verify(program, candidate, readers, outputs, numbered):
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
            found = _block(program, members, length, readers, numbered)
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


def _block(program, members, length, readers, numbered):
    items = program.body
    if len(members) < 2:
        return None
    naming = _naming(items, [s for s, _, _ in members], length)
    if naming is None:
        return None
    parts, templates, name_param, kept = naming
    if name_param == "index" and not numbered:
        return None
    if name_param == "index":
        members = [m for m in members if m[0] in kept]
        starts = [s for s, _, _ in members]
        if not _numbered_whole(items, starts, length, parts, templates, readers):
            return None
    else:
        members = [m for m in members if m[0] in kept and _whole(items, m[0], length, parts)]
    count = len(members)
    saving = count * length - (length + count + 2)
    if count < 2 or saving <= 0:
        return None
    if len(members) < len(kept):  # parts of the names were read from windows now left out
        return _block(program, members, length, readers, numbered)
    function, instances = _abstract(program, members, length, parts, templates, name_param)
    return saving, function, instances


_COUNTER = re.compile(r"([A-Za-z][A-Za-z0-9_]*?)_(\d+)")


def _naming(items, starts, length):
    """The one part of each instance's layer names that varies, and each layer's name around
    it: (parts by start, [(prefix, suffix)] by layer, "name" or "index", starts kept); None
    when the names do not read as one template. Failing that, layers Keras named by its own
    counter (`activation_17` in a NASNet cell named `normal_left1_5`) may number apart from
    the part: their template is (None, "activation"), their numbers become parameters."""
    return _naming_with(items, starts, length, False) or _naming_with(items, starts, length, True)


def _class_named(layer, base: str) -> bool:
    """Whether a name is the one Keras gives a layer of its class (`zero_padding2d`, `re_lu`;
    `activation` for any activation)."""
    return base.replace("_", "").lower() in (layer.cls.lower(), "activation")


def _counter_base(names: list[str]) -> str | None:
    matches = [_COUNTER.fullmatch(n) for n in names]
    if not all(matches) or len({m[1] for m in matches}) != 1:
        return None
    base = matches[0][1]
    return base if SAFE.fullmatch(base) and all(_is_count(m[2]) for m in matches) else None


def _naming_with(items, starts, length, counters: bool):
    kept = list(starts)
    for _ in range(2):  # a second try without the instances whose part came out empty
        if len(kept) < 2:
            return None
        aligned, countable = [], []
        for k in range(length):
            names = [_name_of(items[s + k]) for s in kept]
            if any(n is None for n in names):
                return None
            base = None
            if counters and not isinstance(items[kept[0] + k], BlockCall):
                base = _counter_base(names)
            countable.append(base)
            prefix, suffix = _common_prefix(names), _common_suffix(names)
            if len(prefix) + len(suffix) > min(len(n) for n in names) or not (
                SAFE.fullmatch(prefix) and SAFE.fullmatch(suffix)
            ):
                aligned.append(None)
                continue
            cut = [name[len(prefix) : len(name) - len(suffix)] for name in names]
            aligned.append((prefix, suffix, tuple(cut)))
        if any(a is None and c is None for a, c in zip(aligned, countable)):
            return None
        # the parts: those every layer that is no Keras counter name agrees on; when each
        # could be one (NASNet's `normal_conv_1_5` reads as the 5th `normal_conv_1`), those
        # most layers agree on, the others then counting apart
        fixed = {a[2] for a, c in zip(aligned, countable) if c is None}
        if len(fixed) > 1:
            return None
        if fixed:
            reference = fixed.pop()
        else:  # a layer named for its class (`zero_padding2d_3`) is Keras's count, surely
            votes = Counter(
                a[2]
                for k, a in enumerate(aligned)
                if a is not None and not _class_named(items[kept[0] + k], countable[k])
            )
            if not votes:
                return None
            reference = votes.most_common(1)[0][0]
        templates = []
        for a, base in zip(aligned, countable):
            if a is not None and a[2] == reference:
                templates.append(a[:2])
            elif base is not None:
                templates.append((None, base))
            else:
                return None
        parts = dict(zip(kept, reference))
        named = sum(prefix is not None for prefix, _ in templates)
        if named < 2 or 2 * named < length:
            return None  # mostly counters: too little to name the block by
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
    named = [(prefix, suffix) for prefix, suffix in templates if prefix is not None]
    head = _common_prefix_raw([suffix for _, suffix in named])
    head = head[: max((i for i, c in enumerate(head) if _BOUNDARY.match(c)), default=0)]
    if head and all(
        len(suffix) == len(head) or _BOUNDARY.match(suffix[len(head)]) for _, suffix in named
    ):
        parts = {s: part + head for s, part in parts.items()}
        templates = [
            (prefix, suffix if prefix is None else suffix[len(head) :])
            for prefix, suffix in templates
        ]
    # one prefix for every layer: the prefix belongs to the name (`block_3` + `_expand`)
    prefixes = {p for p, _ in templates if p is not None}
    if len(prefixes) == 1 and next(iter(prefixes)):
        prefix = next(iter(prefixes))
        parts = {s: prefix + part for s, part in parts.items()}
        templates = [(p if p is None else "", suffix) for p, suffix in templates]
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
    """Whether the window holds its whole instance: no layer around it (as far as its own
    length on either side) is named for the same part. A window of `conv2_block2` and half of
    `conv2_block3` names its instances `conv2`, and `conv2_block1_out` beside it says it is
    not all of `conv2`; two layers of NASNet's cell `6` are not the cell while the rest of
    cell `6` lies around them."""
    words = _words(str(parts[start]))
    window = [items[start + k] for k in range(length)]
    families = {_head(i.name) for i in window if isinstance(i, Layer)} - {""}
    around = [*range(max(0, start - length), start)]
    around += range(start + length, min(len(items), start + 2 * length))
    for position in around:
        name = _name_of(items[position])
        if name is None or len(words) == 1 and _COUNTER.fullmatch(name):
            continue  # `activation_5` is Keras's fifth activation, not a layer of block 5
        if isinstance(items[position], Layer) and families and _head(name) not in families:
            continue  # another unit of the instance's (NASNet's `adjust_bn_stem_2`)
        if _contains(_words(name), words):
            return False
    return True


def _numbered_whole(items, starts, length: int, parts, templates, readers) -> bool:
    """`_whole` for instances numbered by an integer: a number is a word of many names
    (`normal_conv_1_2` is no layer of NASNet's cell `1`, `activation_6` none of cell `6`), so
    a layer beside the window is of the instance when, at that place beside most instances,
    it is: a layer holding its own instance's number and starting as a layer's name in the
    window does (`normal_add_4_6` beside the cell-6 window `normal_left4_6, normal_right4_6`;
    `adjust_bn_6` is a unit of its own beside the rest of cell 6), a call holding the number
    beside a window that has calls, or a Keras counter name read in the window alone (the
    `activation_33` an adjustment starts with) unless the window's own names count so too
    (InceptionV3's `conv2d_5, batch_normalization_5, activation_5` after `activation_4`)."""
    n = len(items)
    named = [
        k
        for k, (prefix, _) in enumerate(templates)
        if prefix is not None and not isinstance(items[starts[0] + k], BlockCall)
    ]
    calls = any(isinstance(items[starts[0] + k], BlockCall) for k in range(length))
    families = {s: {_head(_name_of(items[s + k])) for k in named} - {""} for s in starts}
    prefixes = {prefix for prefix, _ in templates}

    def of_instance(s: int, position: int) -> bool:
        item = items[position]
        name = _name_of(item)
        words = _words(name) if name else []
        if not words:
            return False
        if isinstance(item, BlockCall):
            return calls and str(parts[s]) in words
        counter = _COUNTER.fullmatch(name)
        if counter and _class_named(item, counter[1]) and counter[1] + "_" not in prefixes:
            return position < s and all(
                s <= r < s + length for t in item.outputs for r in readers.get(t, [])
            )
        return str(parts[s]) in words and words[0] in families[s]

    for offset in [*range(-length, 0), *range(length, 2 * length)]:
        holding = sum(0 <= s + offset < n and of_instance(s, s + offset) for s in starts)
        if holding >= 2 and 2 * holding >= len(starts):
            return False
    return True


def _words(text: str) -> list[str]:
    return [w for w in _BOUNDARY.split(text) if w]


def _head(name: str | None) -> str:
    """A name's first word: its family (`adjust` of `adjust_bn_5`)."""
    return next(iter(_words(name or "")), "")


def _contains(words: list[str], part: list[str]) -> bool:
    n = len(part)
    return any(words[i : i + n] == part for i in range(len(words) - n + 1))


def _is_count(text: str) -> bool:
    return text.isdigit() and text.isascii() and (text == "0" or text[0] != "0")


def _common_prefix(names: list[str]) -> str:
    """The longest prefix of all names that ends at a word boundary: `conv2d_1` of conv2d_12
    and conv2d_15 is `conv2d_`."""
    n = len(_common_prefix_raw(names))
    head = names[0][:n]
    if n and all(len(x) == n or _BOUNDARY.match(x[n]) for x in names):
        return head
    found = _LAST_BOUNDARY.search(head)
    return head[: found.end()] if found else ""


_LAST_BOUNDARY = re.compile(r".*[^A-Za-z0-9]", re.S)


def _common_suffix(names: list[str]) -> str:
    reversed_names = [n[::-1] for n in names]
    return _common_prefix(reversed_names)[::-1]


def _abstract(program, members, length, parts, templates, name_param):
    """The block function of a class of windows, and each window's call."""
    items = program.body
    starts = [s for s, _, _ in members]
    first = starts[0]
    rows = [
        {(k, slot): v for k in range(length) for slot, v in enumerate(_values(items[s + k]))}
        for s in starts
    ]
    slot_names = {
        (k, slot): name
        for k in range(length)
        for slot, name in enumerate(_slots(items[first + k], program))
    }
    for k, (prefix, base) in enumerate(templates):
        if prefix is None:  # a Keras counter name: its number is a value of the instance
            for row, s in zip(rows, starts):
                row[(k, COUNTER)] = int(_COUNTER.fullmatch(items[s + k].name)[2])
            slot_names[(k, COUNTER)] = f"{base}_id"
    tails = [suffix if prefix is not None else "" for prefix, suffix in templates]
    params, values, substitute = _parameterize(rows, slot_names, tails)
    body = []
    for k in range(length):
        prefix, suffix = templates[k]
        if prefix is None:
            number = substitute[(k, COUNTER)]
            param, offset = (
                (number.param, number.offset)
                if isinstance(number, Offset)
                else (
                    number.name,
                    0,
                )
            )
            name = NameTemplate(f"{suffix}_", param, "", offset)
        else:
            name = NameTemplate(prefix, name_param, suffix)
        here = {slot: v for (kk, slot), v in substitute.items() if kk == k and slot != COUNTER}
        body.append(_substituted(items[first + k], name, here))
    _, external, escapes = members[0]
    function = Function(
        name="",
        inputs=external,
        params=params,
        name_param=name_param,
        body=body,
        outputs=[items[first + k].outputs[j] for k, j in escapes],
        instances=len(members),
        source=str(parts[first]),
    )
    instances = []
    for index, (s, external, escapes) in enumerate(members):
        call = BlockCall(
            function="",
            inputs=external,
            outputs=[items[s + k].outputs[j] for k, j in escapes],
            name=parts[s],
            values=tuple(values[index]),
        )
        instances.append((s, call))
    return function, instances


_ABSENT = ("absent",)


def _parameterize(rows: list[dict], slot_names: dict, tails: list[str]):
    """Parameters for what differs between instances. `rows` holds each instance's values by
    (layer, slot), a layer that instance lacks (an optional one) left out. Returns the
    parameters [(name, default)], each instance's values for them, and what stands in each
    varying slot: a Param, or a tuple built of Params and constants (`(1, 1, filters)`)."""
    keys = sorted({key for row in rows for key in row})
    columns: dict[tuple, tuple[int, int]] = {}  # values across instances -> first (k, slot)
    slot_column: dict[tuple[int, int], tuple] = {}
    for key in keys:
        column = tuple(canon(row[key]) if key in row else _ABSENT for row in rows)
        if len({c for c in column if c != _ABSENT}) <= 1:
            continue
        columns.setdefault(column, key)
        slot_column[key] = column
    derived = _derived(columns, rows)
    for column in derived:
        del columns[column]
    following = _following(columns, slot_names)
    for column in following:
        del columns[column]
    taken = Counter(slot_names[key] for key in columns.values())
    params, param_of, given = [], {}, set()
    reserved = {"x", "inputs", "name", "index", "keras", "layers", "i"}
    for column, key in columns.items():
        base = slot_names[key]
        pname = identifier(base)
        if taken[base] > 1:
            words = [w for w in re.split(r"[^A-Za-z0-9]+", tails[key[0]]) if w]
            words = [w for w in words if not w.isdigit()] + [w for w in words if w.isdigit()]
            tail = "_".join(words) if words else f"layer{key[0]}"
            pname = identifier(f"{tail}_{base}")
        while pname in given or pname in reserved:
            pname += "_"
        given.add(pname)
        present = [row[key] for row in rows if key in row]
        counts = Counter(canon(v) for v in present)
        top, top_count = counts.most_common(1)[0]
        default = NO_DEFAULT
        if top_count * 2 > len(present) or len(present) < len(rows):
            default = next(v for v in present if canon(v) == top)
        values = [row.get(key, default) for row in rows]
        params.append((pname, default, values))
        param_of[column] = pname
    params.sort(key=lambda p: p[1] is not NO_DEFAULT)  # required ones first (Python's rule)
    substitute = {}
    for key, column in slot_column.items():
        if column in following:
            first, offset = following[column]
            substitute[key] = Offset(param_of[first], offset)
        elif column in derived:
            kind, elements = derived[column]
            substitute[key] = kind(
                Param(param_of[value]) if how == "param" else value for how, value in elements
            )
        else:
            substitute[key] = Param(param_of[column])
    values = [[p[2][i] for p in params] for i in range(len(rows))]
    return [(p[0], p[1]) for p in params], values, substitute


def _following(columns: dict, slot_names: dict) -> dict:
    """Keras counter numbers (`*_id` slots) that are another's of the same counter plus a
    constant in every instance: (that column, the constant)."""
    counters = [c for c, key in columns.items() if slot_names[key].endswith("_id")]
    following = {}
    for i, column in enumerate(counters):
        for first in counters[:i]:
            if first in following or slot_names[columns[first]] != slot_names[columns[column]]:
                continue
            pairs = list(zip(first, column))
            if any((a == _ABSENT) != (b == _ABSENT) for a, b in pairs):
                continue
            try:
                offsets = {int(b[1]) - int(a[1]) for a, b in pairs if a != _ABSENT}
            except (TypeError, ValueError):
                continue
            if len(offsets) == 1 and all(a[0] == "int" for a, _ in pairs if a != _ABSENT):
                following[column] = (first, offsets.pop())
                break
    return following


def _derived(columns: dict, rows: list[dict]) -> dict:
    """Columns of tuples whose elements are other parameters or constants, as their recipe
    (type, [("param", column) or ("constant", value)]): `(1, 1, filters)` is no parameter of
    its own when `filters` is one."""
    derived = {}
    for column, key in columns.items():
        values = [row[key] for row in rows if key in row]
        if not all(isinstance(v, (tuple, list)) for v in values):
            continue
        kinds, sizes = {type(v) for v in values}, {len(v) for v in values}
        if len(kinds) != 1 or len(sizes) != 1:
            continue
        elements, found = [], False
        for e in range(sizes.pop()):
            element = tuple(canon(row[key][e]) if key in row else _ABSENT for row in rows)
            if len({c for c in element if c != _ABSENT}) == 1:
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
    shared = {b for b in bases if bases.count(b) > 1}  # then named by their first layer
    bases = [
        _function_name(f, program, set(), b not in shared) for f, b in zip(program.functions, bases)
    ]
    words = [_suffix_words(f) for f in program.functions]
    names = []
    for i, (function, base) in enumerate(zip(program.functions, bases)):
        rivals = [words[j] for j, b in enumerate(bases) if b == base and j != i]
        name = base
        if rivals:
            own = [w for w in words[i] if all(w not in r for r in rivals)]
            if own:
                name = f"{base}_with_{own[0]}"
            elif _adds_its_input(function) and not all(
                _adds_its_input(f) for j, f in enumerate(program.functions) if bases[j] == base
            ):  # ResNet's two: the one whose residual is its input as it came
                name = "identity_" + base.rsplit("_", 1)[-1]
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


def _adds_its_input(function: Function) -> bool:
    """Whether a merge layer of the body reads one of the block's inputs as it came (an
    identity shortcut)."""
    return any(
        isinstance(item, Layer) and item.cls == "Add" and set(item.inputs) & set(function.inputs)
        for item in function.body
    )


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


def _function_name(function: Function, program: Program, used: set[str], use_heads=True) -> str:
    """From the name part (`conv2_block1` -> conv_block, `block_3` -> block), else from the
    layer names around an index (`conv2d_{index}` -> conv2d_block; `normal_add_1_{index}`,
    `normal_concat_{index}`... -> normal_block); `_block` added when the part says nothing of
    a block."""
    if function.name_param == "name":
        words = [w for w in re.split(r"[^a-zA-Z]+", re.sub(r"\d+", "_", function.source))]
        words = [w for w in words if len(w) > 1]
    else:
        first = function.body[0]
        template = first.name
        words = [w for w in re.split(r"[^a-zA-Z0-9]+", template.prefix + template.suffix) if w]
        # the word most of its layers' names start with (`normal` of NASNet's cell), if any
        heads = Counter(
            _words(item.name.prefix)[0]
            for item in map(_unwrap, function.body)
            if isinstance(item, Layer)
            and isinstance(item.name, NameTemplate)
            and item.name.param == function.name_param
            and _words(item.name.prefix)
        ).most_common(1)
        if heads and heads[0][1] >= 2 and heads[0][0][0].isalpha() and use_heads:
            words = [heads[0][0]]
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


# -- variants: one function with an optional layer or two --------------------------------------

# A variant differing by more layers than this is a function of its own: reads better.
MAX_OPTIONAL = 3


def _merge_variants(program: Program) -> None:
    """Blocks alike but for a layer or two that some lack (MobileNetV2's block has a
    ZeroPadding2D when it strides and an Add when it keeps its width) become one function,
    those layers under `if flag:`, as the hand-written block has them."""
    nested = {
        item.function for f in program.functions for item in f.body if isinstance(item, BlockCall)
    }
    merged = True
    while merged:
        merged = False
        candidates = [f for f in program.functions if f.name not in nested]
        candidates.sort(key=lambda f: -f.instances)
        for base in candidates:
            for other in candidates:
                if other is base or not _plain(other):
                    continue
                if _merge(program, base, other):
                    merged = True
                    break
            if merged:
                break


def _plain(function: Function) -> bool:
    return not any(isinstance(item, Guarded) for item in function.body)


def _align(a: list, b: list) -> list[tuple[int | None, int | None]]:
    """The longest common subsequence of two label lists, as pairs (a index, b index), with
    None where one side has an item the other lacks; in an order both sides agree with."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = (
                table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
            )
    pairs, i, j = [], 0, 0
    while i < n or j < m:
        if i < n and j < m and a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif j >= m or (i < n and table[i + 1][j] >= table[i][j + 1]):
            pairs.append((i, None))
            i += 1
        else:
            pairs.append((None, j))
            j += 1
    return pairs


def _unwrap(item):
    return item.item if isinstance(item, Guarded) else item


def _calls(program: Program, function: Function) -> list[BlockCall]:
    return [
        item
        for item in program.body
        if isinstance(item, BlockCall) and item.function == function.name
    ]


def _instance_values(function: Function, item, call: BlockCall) -> tuple:
    """An item's values in one instance: its parameters replaced by the call's arguments."""
    by_name = {name: value for (name, _), value in zip(function.params, call.values)}

    def concrete(value):
        if isinstance(value, Param):
            return by_name[value.name]
        if isinstance(value, (tuple, list)) and any(isinstance(v, Param) for v in value):
            return type(value)(concrete(v) for v in value)
        return value

    return tuple(concrete(v) for v in _values(item))


def _present(function: Function, item, call: BlockCall) -> bool:
    if not isinstance(item, Guarded):
        return True
    by_name = {name: value for (name, _), value in zip(function.params, call.values)}
    return bool(by_name[item.flag])


def _canonical(items: list, inputs: list[str], outputs: list[str]) -> tuple:
    """Labels and wiring of a body, tensor names aside: what two bodies must share to be one."""
    position = {t: ("in", n) for n, t in enumerate(inputs)}
    rows = []
    for k, item in enumerate(items):
        rows.append((_label(item), tuple(position.get(t, ("?", t)) for t in item.inputs)))
        for j, t in enumerate(item.outputs):
            position[t] = ("made", k, j)
    return tuple(rows), tuple(position.get(t, ("?", t)) for t in outputs)


def _counted(function: Function) -> bool:
    """Whether layer names in the body carry a Keras counter parameter (`activation_{id}`)."""
    return any(
        isinstance(item.name, NameTemplate) and item.name.param != function.name_param
        for item in function.body
    )


def _merge(program: Program, base: Function, other: Function) -> bool:
    if (
        _counted(base)
        or _counted(other)
        or base.name_param != other.name_param
        or len(base.inputs) != len(other.inputs)
        or len(base.outputs) != len(other.outputs)
    ):
        return False
    base_items = [_unwrap(item) for item in base.body]
    pairs = _align([_label(i) for i in base_items], [_label(i) for i in other.body])
    lone = [p for p in pairs if p[0] is None or p[1] is None]
    fresh = [p for p in lone if p[1] is None and not isinstance(base.body[p[0]], Guarded)]
    added = [p for p in lone if p[0] is None]
    if not lone or len(fresh) + len(added) > MAX_OPTIONAL or (added and not _plain(base)):
        return False
    for i, j in pairs:
        if i is not None and j is not None and base_items[i].name != other.body[j].name:
            return False  # a layer named otherwise is another layer
    # the union body in the base's tensors; the other's tensors mapped onto them
    mapped = dict(zip(other.inputs, base.inputs))
    only_base, only_other = set(), set()
    union = []  # [item, in base instances (True or the flag), in other instances]
    for i, j in pairs:
        if i is not None:
            entry = base.body[i]
            in_base = entry.flag if isinstance(entry, Guarded) else True
            union.append([base_items[i], in_base, j is not None])
            if j is None:
                only_base.update(base_items[i].outputs)
            else:
                mapped.update(zip(other.body[j].outputs, base_items[i].outputs))
        else:
            item = other.body[j]
            if any(t not in mapped for t in item.inputs):
                return False
            union.append([_with_inputs(item, [mapped[t] for t in item.inputs]), False, True])
            only_other.update(item.outputs)
            mapped.update((t, t) for t in item.outputs)
    # a layer on both sides reads the optional layer's output where one side has it
    for i, j in pairs:
        if i is None or j is None:
            continue
        entry = union[pairs.index((i, j))]
        reads = []
        for tb, tx in zip(base_items[i].inputs, other.body[j].inputs):
            tx = mapped.get(tx, tx)
            reads.append(tx if tx in only_other and tb not in only_base else tb)
        entry[0] = _with_inputs(entry[0], reads)
    outputs = [
        tx if tx in only_other else tb
        for tb, tx in zip(base.outputs, (mapped.get(t, t) for t in other.outputs))
    ]
    optional = [
        k for k, (_, in_base, in_other) in enumerate(union) if in_base is False or not in_other
    ]
    for throughs in _through_choices([union[k][0] for k in optional]):
        through = dict(zip(optional, throughs))
        if _variant_matches(union, through, outputs, base.inputs, 2, other) and (
            not added or _variant_matches(union, through, outputs, base.inputs, 1, base)
        ):
            break
    else:
        return False
    # a guarded layer's output takes its `through` input's variable: nothing may read that
    # input after it
    for k, passed in through.items():
        if passed in outputs or any(passed in entry[0].inputs for entry in union[k + 1 :]):
            return False
    _rebuild(program, base, other, union, through, outputs)
    return True


def _variant_matches(union, through, outputs, inputs, side: int, function: Function) -> bool:
    """Whether the union body, with the layers one side lacks passed through, is that side's
    body (side 1: the base, which must have no guards then; 2: the other)."""
    effective, replaced = [], {}
    for k, entry in enumerate(union):
        item, here = entry[0], entry[side]
        if here is False:
            replaced[item.outputs[0]] = replaced.get(through[k], through[k])
            continue
        effective.append(_with_inputs(item, [replaced.get(t, t) for t in item.inputs]))
    ends = [replaced.get(t, t) for t in outputs]
    body = [_unwrap(item) for item in function.body]
    return _canonical(effective, inputs, ends) == _canonical(
        body, function.inputs, function.outputs
    )


def _through_choices(items: list) -> list[list[str]]:
    """For each layer an instance may lack, the input its readers read instead: a layer of one
    output, and of its inputs either (an Add's residual reads the block's input or the
    branch); at most a few combinations."""
    choices = [[]]
    for item in items:
        if len(item.outputs) != 1 or not item.inputs:
            return []
        choices = [c + [t] for c in choices for t in dict.fromkeys(item.inputs)]
        if len(choices) > 16:
            return []
    return choices


def _with_inputs(item, inputs: list[str]):
    return replace(item, inputs=list(inputs))


def _rebuild(program, base, other, union, through, outputs) -> None:
    """The merged function: parameters over both sets of instances, a flag per pattern of
    presence, the optional layers guarded."""
    base_calls, other_calls = _calls(program, base), _calls(program, other)

    # each instance's presence and values, layer by layer of the union
    rows, presence = [], []
    base_positions = {}
    k_base = 0
    for k, (item, in_base, in_other) in enumerate(union):
        if in_base is not False:
            base_positions[k] = k_base
            k_base += 1
    for call in base_calls:
        row, here = {}, []
        for k, (item, in_base, _) in enumerate(union):
            if in_base is False:
                here.append(False)
                continue
            entry = base.body[base_positions[k]]
            present = _present(base, entry, call)
            here.append(present)
            if present:
                for slot, v in enumerate(_instance_values(base, _unwrap(entry), call)):
                    row[(k, slot)] = v
        rows.append(row)
        presence.append(here)
    other_positions = []
    j = 0
    for k, (item, in_base, in_other) in enumerate(union):
        other_positions.append(j if in_other else None)
        j += bool(in_other)
    for call in other_calls:
        row, here = {}, []
        for k, (item, _, in_other) in enumerate(union):
            here.append(bool(in_other))
            if in_other:
                source = other.body[other_positions[k]]
                for slot, v in enumerate(_instance_values(other, source, call)):
                    row[(k, slot)] = v
        rows.append(row)
        presence.append(here)
    slot_names = {}
    for k, (item, _, _) in enumerate(union):
        for slot, name in enumerate(_slots(item, program)):
            slot_names[(k, slot)] = name
    tails = [
        item.name.suffix if isinstance(item.name, NameTemplate) else "" for item, _, _ in union
    ]
    params, values, substitute = _parameterize(rows, slot_names, tails)
    # flags: one per pattern of presence across the instances
    flags, flag_of = [], {}
    taken = {name for name, _ in params} | {"x", "inputs", "name", "index", "i", "keras", "layers"}
    for k in range(len(union)):
        column = tuple(here[k] for here in presence)
        if all(column):
            continue
        if column not in flag_of:
            words = [w for w in re.split(r"[^A-Za-z]+", tails[k]) if w] or ["optional"]
            flag = identifier(words[-1].lower())
            while flag in taken:
                flag += "_"
            taken.add(flag)
            common = Counter(column).most_common(1)[0][0]
            flags.append((flag, common, column))
            flag_of[column] = flag
    # the guarded layers read through what the other's instances read instead
    body = []
    for k, (item, in_base, _) in enumerate(union):
        here = {slot: v for (kk, slot), v in substitute.items() if kk == k}
        plain = _substituted(item, item.name, here) if here else item
        column = tuple(p[k] for p in presence)
        if all(column):
            body.append(plain)
            continue
        if k in through:
            passed = through[k]
        else:  # guarded before: what it passed through then
            passed = base.body[base_positions[k]].through
        if in_base is False:
            source = other.source
        elif isinstance(base.body[base_positions[k]], Guarded):
            source = base.body[base_positions[k]].source
        else:
            source = base.source
        body.append(Guarded(plain, flag_of[column], passed, source))
    base.body = body
    base.outputs = outputs
    base.params = params + [(flag, default) for flag, default, _ in flags]
    base.instances += other.instances
    for index, call in enumerate(base_calls + other_calls):
        flag_values = [bool(column[index]) for _, _, column in flags]
        call.values = tuple(values[index]) + tuple(flag_values)
        call.function = base.name
    program.functions.remove(other)


def _drop_dependent(program: Program) -> None:
    """A parameter (or flag) that is one value exactly when another parameter is one value,
    and another value otherwise, is written as that: `padding="valid" if strides == 2 else
    "same"`, `if strides == 2:` for the padding layer, as Keras's own blocks read."""
    nested = {i.function for f in program.functions for i in f.body if isinstance(i, BlockCall)}
    for function in program.functions:
        if function.name in nested:
            continue
        calls = _calls(program, function)
        if len(calls) < 2:
            continue
        names = [name for name, _ in function.params]
        # a parameter a layer name is built from stays one
        named = {
            item.name.param for item in function.body if isinstance(item.name, NameTemplate)
        } | {
            v.param if isinstance(v, Offset) else v.name
            for item in function.body
            if isinstance(item, BlockCall)
            for v in item.values
            if isinstance(v, (Param, Offset))
        }
        columns = {n: [canon(c.values[j]) for c in calls] for j, n in enumerate(names)}
        raw = {n: [c.values[j] for c in calls] for j, n in enumerate(names)}
        derived: dict[str, Choice] = {}
        for q in reversed(names):
            if q in named:
                continue
            kinds = set(columns[q])
            if len(kinds) != 2:
                continue
            for p in names:
                if p == q or p in derived or any(c.param == q for c in derived.values()):
                    continue
                if len(set(columns[p])) != 2:  # one of two settings: not a coincidence of many
                    continue
                choice = _follows(columns[p], columns[q], raw[p], raw[q], p)
                if choice is not None:
                    derived[q] = choice
                    break
        if not derived:
            continue
        keep = [j for j, n in enumerate(names) if n not in derived]
        function.params = [function.params[j] for j in keep]
        for call in calls:
            call.values = tuple(call.values[j] for j in keep)
        function.body = [_rewrite(item, derived) for item in function.body]


def _follows(key: list, column: list, key_raw: list, raw: list, param: str) -> Choice | None:
    """`column` as a Choice over `key`, if one key value alone gives one of its two values."""
    for value in dict.fromkeys(key):
        then = {c for k, c in zip(key, column) if k == value}
        otherwise = {c for k, c in zip(key, column) if k != value}
        if len(then) == 1 and len(otherwise) == 1 and then != otherwise:
            equals = key_raw[key.index(value)]
            first_then = raw[key.index(value)]
            first_else = next(r for k, r in zip(key, raw) if k != value)
            return Choice(param, equals, first_then, first_else)
    return None


def _rewrite(item, derived: dict):
    def value(v):
        if isinstance(v, Param) and v.name in derived:
            return derived[v.name]
        if isinstance(v, tuple) and any(isinstance(e, Param) for e in v):
            return tuple(value(e) for e in v)
        return v

    if isinstance(item, Guarded):
        flag = derived.get(item.flag, item.flag) if isinstance(item.flag, str) else item.flag
        return replace(item, item=_rewrite(item.item, derived), flag=flag)
    if isinstance(item, BlockCall):
        return replace(item, values=tuple(value(v) for v in item.values))
    layer = replace(item)
    layer.args = [value(v) for v in item.args]
    layer.kwargs = {k: value(v) for k, v in item.kwargs.items()}
    return layer


# -- custom layers: a scope of keras.ops expressions ------------------------------------------

# Scopes that function inlining and tf.function add, which name no layer of the author's.
_ARTIFACT = re.compile(
    r"(?i)(stateful)?partitioned_?call(_\d+)?|.*_fn(_\d+)?|call|inference_.*|while(_\d+)?|cond"
)


def _scope_functions(program: Program, spec: ModelSpec, outputs: set[str]) -> None:
    """A run of keras.ops expressions (and layers without weights, an Add, a Rescaling, or
    holding the layer's constants) whose source nodes all sit in one scope, and nothing else there (a custom layer of the original
    model, its call() written in tensor ops), becomes a function named after that scope,
    called once."""
    prefix = spec.scope + "/" if spec.scope else ""
    scopes = []
    for item in program.body:
        scope = None
        if (
            isinstance(item, Layer)
            and item.nodes
            and (
                item.kind is Kind.OPS
                or item.kind is Kind.LAYER
                and (not item.weights or item.cls == "Constant")  # a custom layer's constants
            )
        ):
            paths = [name_path(n[len(prefix) :])[:-1] for n in item.nodes if n.startswith(prefix)]
            if len(paths) == len(item.nodes):
                scope = tuple(os.path.commonprefix(paths)) or None
        scopes.append(scope)
    body, i = [], 0
    taken = {f.name for f in program.functions} | {"build_model", "keras", "layers"}
    while i < len(program.body):
        run_scope, j = scopes[i], i
        while (
            run_scope
            and j < len(program.body)
            and scopes[j]
            and scopes[j][: len(run_scope)] == run_scope
        ):
            j += 1
        if run_scope:  # the run's common scope
            common = tuple(os.path.commonprefix([list(s) for s in scopes[i:j]]))
            whole = all(
                not (s and s[: len(common)] == common)
                for k, s in enumerate(scopes)
                if not i <= k < j
            )
            words = [w for w in common if not _ARTIFACT.fullmatch(w)]
            run = program.body[i:j]
            ops = sum(isinstance(x, Layer) and x.kind is Kind.OPS for x in run)
            computing = sum(x.cls != "Constant" for x in run)
            if computing >= 2 and ops and common and whole and words:
                call = _scope_function(program, program.body[i:j], words[-1], taken, outputs, j)
                if call is not None:
                    body.append(call)
                    i = j
                    continue
        body.append(program.body[i])
        i += 1
    program.body = body


def _scope_function(program, items, scope: str, taken: set, outputs, end) -> BlockCall | None:
    made = {t for item in items for t in item.outputs}
    external = list(dict.fromkeys(t for item in items for t in item.inputs if t not in made))
    later = {t for item in program.body[end:] for t in item.inputs} | outputs
    leaving = [t for item in items for t in item.outputs if t in later]
    if not leaving or len(leaving) > MAX_PORTS or not external or len(external) > MAX_PORTS:
        return None
    name = identifier(scope)
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    program.functions.append(
        Function(
            name=name,
            inputs=external,
            params=[],
            name_param="",
            body=list(items),
            outputs=leaving,
            instances=1,
        )
    )
    return BlockCall(function=name, inputs=external, outputs=leaving, name=None, values=())


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
    return os.path.commonprefix(names)


def _common_suffix_raw(names: list[str]) -> str:
    return _common_prefix_raw([n[::-1] for n in names])[::-1]
