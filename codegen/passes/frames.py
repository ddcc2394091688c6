"""Loops read into plain data: the TF1 while frame reader RNN lifting and control flow share.

A lowered while loop (Enter, Merge, Switch, LoopCond, NextIteration, Exit) is a cycle, which
the graph refuses, so two passes read it while the graph is decoded: passes/rnn/ lifts the
recurrent ones into Keras layers, then passes/control.py turns the rest into `While` nodes.
Both need the same reading of a frame (which tensors enter it, which the step carries and
which leave it) and the same removal of a replaced loop with the plumbing around it; it lives
here once. The functional While loops passes/rnn/ lifts are read into the same `Loop`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import Node, split_ref


@dataclass
class LoopVar:
    init: str  # the tensor entering the loop
    inside: str  # the body tensor holding the value during a step
    next: str  # the body tensor a step produces
    out: str | None  # the tensor leaving the loop, if anything reads it


@dataclass
class Loop:
    name: str
    vars: list[LoopVar]
    invariants: dict[str, str]  # body tensor -> outer tensor (constant loop inputs)
    body: dict[str, Node]
    members: set[str]  # outer node names the loop consists of (removed when replaced)


def replace_loop(nodes: list[Node], loop: Loop, new: list[Node], rename: dict) -> list[Node]:
    """The nodes with the loop removed (see `remove_loop`) and `new` put in its place, every
    reader of a renamed tensor reading its new name (the nodes are changed in place)."""
    for node in nodes:
        node.inputs = [rename.get(t, t) for t in node.inputs]
    return remove_loop(nodes, loop, new) + new


def remove_loop(nodes: list[Node], loop: Loop, new: list[Node]) -> list[Node]:
    """The nodes less the loop, whatever still reads it (the stacking and slicing of its
    results) and whatever only fed those (its lists, counters, zero states, permutations),
    which would otherwise look like model outputs. Nodes a result view replaces go too; the
    views' tensors stay readable."""
    by_name = {n.name: n for n in nodes}
    readers: dict[str, list[tuple[str, str]]] = {}
    for node in nodes + new:
        for t in node.inputs:
            readers.setdefault(split_ref(t)[0], []).append((node.name, t))
    replacing = [n for n in new if n.name in by_name]
    provided = {
        f"{n.name}:{p}" for n in replacing for p in n.attrs.get("ports", [0]) if n.op != "Const"
    }
    removed = set(loop.members) | {n.name for n in replacing}
    stack = list(removed)
    while stack:
        for reader, tensor in readers.get(stack.pop(), []):
            if reader not in removed and tensor not in provided and reader in by_name:
                removed.add(reader)
                stack.append(reader)
    fed = [v.init for v in loop.vars] + list(loop.invariants.values())
    fed += [t for name in removed if name in by_name for t in by_name[name].inputs]
    stack = [split_ref(t)[0] for t in fed]
    while stack:
        name = stack.pop()
        node = by_name.get(name)
        if node is None or name in removed or node.op == "Placeholder":
            continue
        if all(r in removed for r, _ in readers.get(name, [])):
            removed.add(name)
            stack += [split_ref(t)[0] for t in node.inputs]
    return [n for n in nodes if n.name not in removed]


def read_frames(nodes: list[Node], by_name: dict[str, Node]) -> list[Loop]:
    """Lowered while frames: every node reachable from the frame's Enters up to its Exits."""
    users: dict[str, list[Node]] = {}
    for node in nodes:
        for t in node.inputs:
            users.setdefault(split_ref(t)[0], []).append(node)
    frames: dict[str, list[Node]] = {}
    for node in nodes:
        if node.op == "Enter":
            frames.setdefault(str(node.attrs.get("frame_name", "")), []).append(node)
    loops = []
    for name, enters in sorted(frames.items()):
        members: set[str] = set()
        stack = [e.name for e in enters]
        nested = False
        while stack:
            current = stack.pop()
            if current in members:
                continue
            members.add(current)
            node = by_name[current]
            if node.op == "Exit":
                continue
            for user in users.get(current, []):
                if user.op == "Enter" and user.attrs.get("frame_name") != name:
                    nested = True
                stack.append(user.name)
        loop = None if nested else _frame_loop(name, enters, members, by_name)
        if loop is not None:
            loops.append(loop)
    return loops


def _frame_loop(name: str, enters: list[Node], members: set[str], by_name) -> Loop | None:
    invariants = {}
    loop_vars = []
    exits = {}
    for member in members:
        node = by_name[member]
        if node.op == "Exit":
            exits[through_identity(node.inputs[0], by_name)] = node.output(0)
    for enter in enters:
        if enter.attrs.get("is_constant"):
            invariants[enter.output(0)] = enter.inputs[0]
    switches: dict[str, list[Node]] = {}
    for member in members:
        node = by_name[member]
        if node.op == "Switch" and node.inputs:
            switches.setdefault(node.inputs[0], []).append(node)
    for member in sorted(members):
        merge = by_name[member]
        if merge.op != "Merge" or len(merge.inputs) != 2:
            continue
        enter, nxt = (by_name[split_ref(t)[0]] for t in merge.inputs)
        if enter.op != "Enter" or nxt.op != "NextIteration" or not nxt.inputs:
            return None
        if len(switches.get(merge.output(0), [])) != 1:
            return None
        switch = switches[merge.output(0)][0]
        out = exits.get(switch.output(0))
        loop_vars.append(LoopVar(enter.inputs[0], switch.output(1), nxt.inputs[0], out))
    body = {m: by_name[m] for m in members}
    return Loop(name, loop_vars, invariants, body, members)


def through_identity(tensor: str, by_name: dict[str, Node]) -> str:
    """The tensor a chain of Identity/Snapshot nodes forwards; at most 64 deep, since the
    graph is read before its cycle check."""
    seen = 0
    while seen < 64:
        node = by_name.get(split_ref(tensor)[0])
        if node is None or node.op not in ("Identity", "Snapshot") or not node.inputs:
            return tensor
        tensor = node.inputs[0]
        seen += 1
    return tensor
