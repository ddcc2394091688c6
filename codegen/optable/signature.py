"""What a node of one op must look like: its number of inputs and outputs and the values its
string and dtype attributes may take (padding, data_format, T), derived from TensorFlow's op
registry (`codegen/opdefs.py`), and the attribute forms the stages after decoding rely on, which
that registry does not state (window lengths, minima, required attributes).

Decoding checks every node of an op with a record against its signature and reports every
problem at once (see graph.decode_node), so later stages may index inputs and read attributes
without guarding each access.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import opdefs
from ..load import type_name


@dataclass(frozen=True)
class Attr:
    """The form of one attribute that patterns, shape rules or folding read."""

    kind: str  # AttrValue's field: s, i, f, b, type, shape, tensor, func; list(i) for int lists
    required: bool = False  # TF has no default for it
    lengths: tuple[int, ...] = ()  # allowed lengths of a list (any when empty)
    minimum: int | None = None  # for an int or every int in a list
    choices: tuple[str, ...] = ()  # for a string or dtype, or each one of a list of them
    # no stage reads it: a function body may leave it to the call (TensorFlow checks it there)
    unread: bool = False

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        sign = {0: "non-negative ", 1: "positive "}.get(self.minimum, "")
        if self.kind.startswith("list("):
            count = " or ".join(map(str, self.lengths)) + " " if self.lengths else ""
            return f"a list of {count}{sign}{_NOUN[self.kind[5:-1]]}s"
        return _article(f"{sign}{_NOUN[self.kind]}")

    def problem(self, key: str, proto, value) -> str | None:
        """Why the attribute does not have this form, or None if it does."""
        kind = attr_kind(proto)
        if kind == "placeholder" and self.unread:
            return None
        if not (kind == self.kind or (kind == "list" and self.kind.startswith("list("))):
            shown = "" if kind in ("tensor", "none", "list") else f" {_short(value)}"
            return f"attribute {key!r} is {_kind_text(kind)}{shown}, not {self.describe()}"
        items = value if isinstance(value, list) else [value]
        if (self.lengths and len(items) not in self.lengths) or (
            self.minimum is not None and any(v < self.minimum for v in items)
        ):
            return f"attribute {key!r} is {_short(value)}, not {self.describe()}"
        if self.choices:
            if "type" in kind:  # TF's names: the decoded qint8 is numpy's int8
                items = [
                    type_name(t) for t in (proto.list.type if "list" in kind else [proto.type])
                ]
            wrong = [v for v in items if v not in self.choices]
            if wrong and kind.startswith("list"):
                return f"attribute {key!r} holds {_short(wrong[0])}, not {self.describe()}"
            if wrong:
                return f"attribute {key!r} is {_short(wrong[0])}, not {self.describe()}"
        return None


_NOUN = {
    "s": "string",
    "i": "int",
    "f": "float",
    "b": "bool",
    "type": "dtype",
    "shape": "shape",
    "tensor": "tensor",
    "func": "function name",
    "placeholder": "function-attribute placeholder",
}


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _kind_text(kind: str) -> str:
    if kind == "none":
        return "empty"
    if kind == "list":
        return "an empty list"
    if kind.startswith("list("):
        return f"a list of {_NOUN[kind[5:-1]]}s"
    return _article(_NOUN.get(kind, kind))


def attr_kind(proto) -> str:
    """'i', 's', ... or 'list(i)' for a non-empty list of ints, 'list' for an empty list."""
    kind = proto.WhichOneof("value") or "none"
    if kind != "list":
        return kind
    for name in ("i", "f", "b", "s", "type", "shape", "tensor", "func"):
        if len(getattr(proto.list, name)):
            return f"list({name})"
    return "list"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# Outputs of one node. An int attribute sets the count (Split's num_split: five bytes of a file
# can ask for a billion), and every stage after decoding lists a node's outputs.
MAX_OUTPUTS = 1 << 16

# How an output argument's length is found: one tensor, an int attribute (Split's num_split),
# a list attribute (a call's Tout), or the length of the one list input (IdentityN's T).
ONE, INT, LIST, AS_INPUTS = "one", "int", "list", "inputs"


@dataclass(frozen=True)
class Signature:
    """An op's data inputs (min, max; None: any number), checked attributes, and outputs: one
    (length attribute, how) per output argument, `how` one of ONE, INT, LIST, AS_INPUTS."""

    inputs: tuple[int, int | None]
    attrs: dict[str, Attr] = field(default_factory=dict)
    outputs: tuple[tuple[str, str], ...] = (("", ONE),)
    plain_inputs: int = 0  # inputs that are one tensor each (the rest make up the list)

    def problems(self, node, protos) -> list[str]:
        found = []
        low, high = self.inputs
        n = len(node.inputs)
        if n < low or (high is not None and n > high):
            want = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            found.append(f"{node.op} takes {want} input{'s' if want != '1' else ''}, not {n}")
        outputs = self.output_count(node)
        if outputs is not None and outputs > MAX_OUTPUTS:
            found.append(f"{node.op} with {outputs} outputs: more than the {MAX_OUTPUTS} allowed")
        for key, rule in self.attrs.items():
            if key not in protos:
                if rule.required:
                    found.append(f"{node.op} needs attribute {key!r}, which is missing")
                continue
            if key in node.attrs:  # undecodable values are reported already
                problem = rule.problem(key, protos[key], node.attrs[key])
                if problem:
                    found.append(problem)
        return found

    def output_count(self, node) -> int | None:
        """How many outputs `node` has; None when an attribute it depends on is malformed."""
        total = 0
        for key, how in self.outputs:
            value = node.attrs.get(key)
            if how == ONE:
                total += 1
            elif how == AS_INPUTS:
                total += len(node.inputs) - self.plain_inputs
            elif how == INT and isinstance(value, int) and not isinstance(value, bool):
                total += value
            elif how == LIST and isinstance(value, list):
                total += len(value)
            else:
                return None
        return total


def derive(op: str, attrs: dict[str, Attr] | None = None, list_min: int = 0) -> Signature:
    """`op`'s signature from TensorFlow's registry: one input per plain argument and any
    number (at least `list_min`, which the registry's table does not carry) per list
    argument; outputs likewise; every attribute the registry allows only some values of
    checked against them (where `attrs` states no choices of its own). KeyError for an op
    TensorFlow does not register."""
    definition = opdefs.get(op)
    if definition is None:
        raise KeyError(f"{op} is no op in codegen/data/tf_ops.json")
    fixed = sum(1 for _, length in definition.inputs if not length)
    lists = [length for _, length in definition.inputs if length]
    inputs = (fixed, fixed) if not lists else (fixed + list_min, None)
    attrs = dict(attrs or {})
    for name, (kind, values) in definition.allowed_values.items():
        rule = attrs.get(name) or Attr(_KINDS[kind], unread=True)
        attrs[name] = replace(rule, choices=rule.choices or values)
    kinds = {name: kind for name, kind, _ in definition.attrs}
    outputs = []
    for _, length in definition.outputs:
        if not length:
            outputs.append(("", ONE))
        elif length in lists and len(lists) == 1:
            outputs.append((length, AS_INPUTS))
        elif kinds.get(length) == "int":
            outputs.append((length, INT))
        elif kinds.get(length, "").startswith("list("):
            outputs.append((length, LIST))
        else:
            raise KeyError(f"{op}: output length {length!r} is neither an int nor a list")
    return Signature(inputs, attrs, tuple(outputs), fixed)


# The registry's attribute types that have allowed values, as AttrValue's fields.
_KINDS = {"string": "s", "list(string)": "list(s)", "type": "type", "list(type)": "list(type)"}
