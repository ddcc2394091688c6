"""Every name in the generated code comes from here: Keras layer names recovered from graph
scopes, and Python identifiers that are unique, never a keyword or builtin, and stable.

Names from a graph are untrusted text. Layer names only ever reach code as string literals
(escaped by `repr`); identifiers are rebuilt from a safe alphabet.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections import Counter

from .errors import printable

_UNIQUIFIER = re.compile(r"^(.*\D.*?)_\d+$")
# The scopes function calls leave in node names: TF names an inlined body `<call>/<body node>`
# (convert_variables_to_constants_v2 and grappler do, and so does passes/inline.py), the call
# being `StatefulPartitionedCall` or `PartitionedCall` (`_N` when a scope holds several), and
# puts a call's argument and result Identities under `Func/<call>/`. They name no layer.
_CALL_SCOPE = re.compile(r"(Stateful)?PartitionedCall(_\d+)?")
_IDENT_BAD = re.compile(r"[^0-9a-zA-Z_]+")
RESERVED = (
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(dir(builtins))
    | {
        "keras",
        "np",
        "numpy",
        "build_model",
        "load_weights",
        "model",
        "inputs",
        "outputs",
    }
)


class ScopeNamer:
    """Recovers layer names from node scopes.

    Frozen Keras models put every node under the model's own scope and tag each layer scope
    with TF's uniquifier (`mobilenetv2_1.00_224_1/block_1_expand_BN_1/...`). When (nearly) every
    layer scope carries that tag we strip it; inside a layer, op-internal scopes such as
    `batchnorm` or `Tensordot` carry no tag, which is how the layer scope is told apart from them.
    """

    def __init__(self, node_names: list[str]):
        paths = [p for p in map(name_path, node_names) if len(p) > 1]
        firsts = Counter(p[0] for p in paths)
        self.model_scope = None
        if paths and len(firsts) == 1 and len(paths) >= 0.9 * len(node_names):
            self.model_scope = next(iter(firsts))
        self.graph_scope = self._graph_scope(node_names)
        tops = {p[1] for p in paths if self.model_scope and len(p) > 2} or {
            p[0] for p in paths if len(p) > 1
        }
        tagged = [m.group(1) for t in tops if (m := _UNIQUIFIER.match(t))]
        # TF's tag makes each layer's scope unique; Keras 2's own `conv2d_1`, `conv2d_2` strip
        # to one name many times over, so they are layer names, not tags
        self.uniquified = (
            bool(tops) and len(tagged) >= 0.9 * len(tops) and len(set(tagged)) >= 0.9 * len(tagged)
        )
        self._by_last = {} if self.uniquified else self._shared_suffixes(node_names)
        self._depth: dict[str, int] = {}

    def _graph_scope(self, node_names: list[str]) -> str:
        """The model scope as the nodes spell it, call scopes included
        (`StatefulPartitionedCall/model`): the prefix provenance comments leave out. Just the
        model scope when the nodes spell it several ways."""
        if not self.model_scope:
            return ""
        prefixes = set()
        for name in node_names:
            parts = name.split("/")
            if self.model_scope in parts[:-1]:
                prefixes.add("/".join(parts[: parts.index(self.model_scope) + 1]))
        return prefixes.pop() if len(prefixes) == 1 else self.model_scope

    def _shared_suffixes(self, node_names: list[str]) -> dict[str, set[tuple[str, ...]]]:
        """Every scope (and enclosing scope) of the graph, grouped by its last part."""
        groups: dict[str, set[tuple[str, ...]]] = {}
        for name in node_names:
            parts = tuple(self.scope(name))
            for i in range(1, len(parts) + 1):
                groups.setdefault(parts[i - 1], set()).add(parts[:i])
        return groups

    def _distinct(self, path: list[str]) -> str:
        """The tail of a scope path long enough to tell apart every scope of the graph that ends
        the same way: tf-slim repeats `conv1` and `BatchNorm` in every unit, so `conv1` alone
        would name the first one and number the rest; `block2_unit_1_bottleneck_v1_conv1` says
        which it is. One length per last part, so siblings read alike."""
        depth = self._depth.get(path[-1])
        if depth is None:
            group = self._by_last.get(path[-1], {tuple(path)})
            depth = 1
            while len({g[-depth:] for g in group}) < len(group):
                depth += 1
            self._depth[path[-1]] = depth
        return "_".join(path[-depth:])

    def model_name(self) -> str | None:
        """The frozen Keras model's own name: its scope without TF's uniquifier."""
        if not self.model_scope:
            return None
        m = _UNIQUIFIER.match(self.model_scope) if self.uniquified else None
        return m.group(1) if m else self.model_scope

    def scope(self, node_name: str) -> list[str]:
        """The scope parts of a node's name, less the model scope and the call scopes."""
        parts = name_path(node_name)[:-1]
        if self.model_scope and parts and parts[0] == self.model_scope:
            parts = parts[1:]
        return parts

    def layer_name(self, node_names: list[str]) -> str | None:
        """The layer scope shared by a group of nodes, or None when they share none."""
        scopes = [self.scope(n) for n in node_names]
        common = scopes[0]
        for s in scopes[1:]:
            n = 0
            while n < min(len(common), len(s)) and common[n] == s[n]:
                n += 1
            common = common[:n]
        if not common:
            # ops outside any layer (TF1 `tf.nn` calls, Keras ops on tensors) mixed with one
            # that has a scope: the scoped one names the group
            common = next((s for s in scopes if s), None)
            if common is None:
                return None
        if self.uniquified:
            for part in reversed(common):
                m = _UNIQUIFIER.match(part)
                if m:
                    return m.group(1)
            return common[0]
        return self._distinct(common)


def name_path(node_name: str) -> list[str]:
    """The parts of a node's name, less the scopes function calls add (see _CALL_SCOPE): a
    layer's nodes read alike whether TF inlined its call, graph2py did or there was none."""
    parts = node_name.split("/")
    if len(parts) > 2 and parts[0] == "Func" and _CALL_SCOPE.fullmatch(parts[1]):
        parts = parts[1:]
    kept = [p for p in parts[:-1] if not _CALL_SCOPE.fullmatch(p)]
    return kept + parts[-1:]


class Allocator:
    """Hands out unique names; the first claimant of a name keeps it, the next ones get
    `name_2`, `name_3`, ... (the first number free)."""

    def __init__(self, reserved: set[str] = frozenset()):
        self.reserved = set(reserved)
        self.used = set(reserved)
        # wanted -> the number to try first: every `wanted_k` below it is taken (names are
        # never given back), so 100,000 layers wanting one name cost 100,000 tries, not 5e9
        self._next: dict[str, int] = {}

    def claim(self, wanted: str) -> str:
        name = wanted
        if name in self.reserved and f"{wanted}_" not in self.used:
            name = f"{wanted}_"  # PEP 8's way around a keyword or builtin: input -> input_
        if name in self.used:
            n = self._next.get(wanted, 2)
            name = f"{wanted}_{n}"
            while name in self.used:
                n += 1
                name = f"{wanted}_{n}"
            self._next[wanted] = n + 1
        self.used.add(name)
        return name


def keras_name(text: str) -> str:
    """Keras forbids '/' in layer names; everything else survives as an escaped literal."""
    text = text.replace("/", "_").strip()
    return text or "layer"


def backend_name(text: str) -> str:
    """A name Keras takes on every backend, for the names graph2py makes up (the model's, from
    a scope or file name; a layer's, from TF1 scopes, node names or checkpoint keys): PyTorch
    refuses '.' in the names of modules and parameters, and a Keras layer's variables become
    parameters named after the layer (`mobilenet_1.00_224` becomes `mobilenet_1_00_224`). The
    names a Keras model gave its own layers are kept as they are (see `keras_name`); the
    original stays in the code, in the provenance comment or the docstring's scope."""
    return keras_name(text).replace(".", "_")


def identifier(text: str) -> str:
    """A Python identifier resembling `text`: lower snake case, ASCII only."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    ident = _IDENT_BAD.sub("_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)
    if not ident:
        ident = "x"
    if ident[0].isdigit():
        ident = "t_" + ident
    return ident


_CODING = re.compile(r"(coding)([:=])")


def comment_text(text: str) -> str:
    """Graph text made safe for a `#` comment: no line breaks or control characters, and no
    `coding:` that would make a header line an encoding declaration (PEP 263): under
    `coding:utf-7`, `+AAo-` in a later comment decodes to a line break and the rest runs."""
    text = printable(text)
    return _CODING.sub(lambda m: f"{m[1]}\\x{ord(m[2]):02x}", text)


def docstring_text(text: str) -> str:
    """Graph text or a file name made safe inside a triple-quoted docstring: comment-safe, then
    every backslash and quote escaped, so that it can neither close the string (`\"\"\"`) nor
    start an escape sequence (`\\N` is a SyntaxError). `__doc__` reads as the comment-safe text."""
    return comment_text(text).replace("\\", "\\\\").replace('"', '\\"')
