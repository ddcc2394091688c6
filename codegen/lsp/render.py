"""Hover text: Markdown built from `GraphInfo` facts, one line per source node.

Names and values from the graph go inside backticks, so a node called `a*b_c` renders as written
rather than as emphasis.
"""

from __future__ import annotations

from dataclasses import replace

from .graphs import GraphInfo, NodeInfo, shape_text
from .model_file import LayerCall

MAX_ATTRS = 6
MAX_LAYERS = 40  # layers listed for a block call (a loop of 16 blocks builds hundreds)
MAX_INSTANCES = 20  # instances listed for a layer call inside a block function
MAX_NODES = 6  # source nodes listed per layer in those lists


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def node_line(node: NodeInfo) -> str:
    attrs = ", ".join(f"{key}={value}" for key, value in node.attrs[:MAX_ATTRS])
    if len(node.attrs) > MAX_ATTRS:
        attrs += ", …"
    shape = shape_text(node.shape) if node.shape_known else "shape not inferred"
    text = f"- {_code(node.op)} {_code(node.name)} → {shape}"
    return text + (f" · {_code(attrs)}" if attrs else "")


def layer_hover(info: GraphInfo, call: LayerCall) -> str | None:
    """Provenance of one generated call, or None when the spec has no layer of that name (a
    hand-added layer, or the model's own name)."""
    source = info.path.name
    layer = info.layer(call.name)
    if layer is not None:
        count = len(layer.nodes)
        lines = [
            f"**{_code(layer.name)}** · {_code(call.callee)} · {call.path}",
            "",
            f"Replaces {count} node{'s' if count != 1 else ''} of {_code(source)}:",
            "",
        ]
        for name in layer.nodes:
            node = info.nodes.get(name)
            lines.append(node_line(node) if node else f"- {_code(name)}")
        lines += ["", "Inputs: " + ", ".join(_code(t) for t in layer.inputs)]
        if layer.weights:
            lines.append(
                "Weights: "
                + ", ".join(f"{_code(w.name)} {shape_text(tuple(w.shape))}" for w in layer.weights)
            )
        return "\n".join(lines)
    model_input = info.input(call.name)
    if model_input is not None:
        node = info.nodes.get(model_input.tensor.rsplit(":", 1)[0])
        lines = [
            f"**{_code(model_input.name)}** · {_code(call.callee)} · model input",
            "",
            f"Reads graph tensor {_code(model_input.tensor)} of {_code(source)}:",
            "",
        ]
        if node:
            lines.append(node_line(node))
        return "\n".join(lines)
    return None


def block_call_hover(info: GraphInfo, callee: str, names: list[str], blocks) -> str:
    """A call of a block function: every layer it builds (through nested blocks and, in a
    loop, over every iteration), each with its source nodes."""
    count = len(names)
    lines = [
        f"**{_code(callee + '()')}** · block call · builds {count} layer{'s' if count != 1 else ''}"
        + (f" of {_code(info.path.name)}" if count else ""),
        "",
    ]
    for name in names[:MAX_LAYERS]:
        instance = blocks.instances.get(name)
        lines.append(_layer_line(info, name, instance.call if instance else None))
    if count > MAX_LAYERS:
        lines.append(f"- … and {count - MAX_LAYERS} more")
    if not count:
        lines.append("Its arguments or layer names are outside what can be read statically.")
    return "\n".join(lines)


def instances_hover(info: GraphInfo, call: LayerCall, function: str, names: list[str]) -> str:
    """A layer call inside a block function: the concrete layers it builds, one per call of the
    block. With a single instance, that layer's full hover."""
    where = f"in {_code(function + '()')}"
    if len(names) == 1:
        single = layer_hover(info, replace(call, name=names[0]))
        if single is not None:
            return single + f"\n\n`name={call.name}` {where}: its only instance."
    count = len(names)
    lines = [
        f"**{_code('name=' + call.name)}** · {_code(call.callee)} · {call.path} · {where}",
        "",
        f"{count} instance{'s' if count != 1 else ''}"
        + (f" in {_code(info.path.name)}:" if count else ": its name cannot be read statically"),
        "",
    ]
    for name in names[:MAX_INSTANCES]:
        lines.append(_layer_line(info, name, None))
    if count > MAX_INSTANCES:
        lines.append(f"- … and {count - MAX_INSTANCES} more")
    return "\n".join(lines)


def _layer_line(info: GraphInfo, name: str, call: LayerCall | None) -> str:
    """One layer on one line: name, callee and path when known, source nodes, output shape."""
    head = f"- **{_code(name)}**"
    if call is not None:
        head += f" · {_code(call.callee)} · {call.path}"
    layer = info.layer(name)
    if layer is None:
        if info.input(name) is not None:
            return head + " · model input"
        return head + (f" · no layer of {_code(info.path.name)}" if info.spec else "")
    nodes = ", ".join(_code(n) for n in layer.nodes[:MAX_NODES])
    if len(layer.nodes) > MAX_NODES:
        nodes += f", … ({len(layer.nodes)} nodes)"
    last = info.nodes.get(layer.nodes[-1]) if layer.nodes else None
    shape = f" → {shape_text(last.shape)}" if last and last.shape_known else ""
    return f"{head}: {nodes}{shape}"


def node_hover(info: GraphInfo, node: NodeInfo) -> str:
    """A `.pbtxt` node: op, inputs, every attribute, inferred shape, and where it goes."""
    lines = [f"**{_code(node.name)}** · op {_code(node.op)}", ""]
    shape = shape_text(node.shape) if node.shape_known else "not inferred (pruned or unknown)"
    lines.append(f"Output shape: {shape}")
    if node.inputs:
        lines.append("Inputs: " + ", ".join(_code(t) for t in node.inputs))
    for key, value in node.attrs:
        lines.append(f"- {_code(key)}: {_code(value)}")
    lines.append("")
    if node.name in info.layer_of:
        layer = info.layer(info.layer_of[node.name])
        lines.append(f"Converts to: {_code(layer.target())} {_code(layer.name)}")
    elif node.name in info.unsupported:
        lines.append("Converts to: nothing. No Keras layer, keras.ops or TensorFlow op runs it")
    elif info.problems:
        lines.append("Does not convert: " + "; ".join(info.problems))
    return "\n".join(lines)
