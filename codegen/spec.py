"""The model spec: what the code generator knows, and nothing it does not need.

Patterns produce it, `emit` renders it. It is plain data (no graph objects, no protobufs), so a
spec can be printed, compared in tests and rendered twice with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .passes.fold import Recipe


@dataclass
class Weight:
    """One Keras variable of a layer and how to compute it from the source graph."""

    name: str  # the Keras variable name: kernel, bias, gamma, moving_mean, ...
    recipe: Recipe  # see passes/fold.py
    shape: tuple[int, ...]


@dataclass
class Layer:
    """One call in the generated functional code."""

    cls: str  # keras.layers class name, e.g. "Conv2D"
    name: str  # the Keras layer name (unique in the model)
    inputs: list[str]  # graph tensors the call consumes, in order
    outputs: list[str]  # graph tensors the call produces
    nodes: list[str]  # source nodes this layer covers (provenance)
    ops: list[str]  # their op types, same order
    args: list[Any] = field(default_factory=list)  # positional constructor arguments
    kwargs: dict[str, Any] = field(default_factory=dict)  # keyword constructor arguments
    weights: list[Weight] = field(default_factory=list)
    list_input: bool = False  # merge layers take a list of tensors


@dataclass
class Input:
    tensor: str
    name: str
    shape: tuple[int | None, ...]  # without the batch dimension
    dtype: str = "float32"


@dataclass
class ModelSpec:
    name: str
    source: str  # file name the model was converted from (for headers and the loader)
    sha256: str
    inputs: list[Input]
    layers: list[Layer]
    outputs: list[str]  # graph tensors
    version: str = ""
    scope: str = ""  # the scope every node sits under (a frozen Keras model's), or ""
    unsupported: dict[str, int] = field(default_factory=dict)  # op -> count no pattern claimed

    def is_chain(self) -> bool:
        """One input, one output, every layer reading only the previous one's result."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return False
        current = self.inputs[0].tensor
        for layer in self.layers:
            if layer.inputs != [current] or layer.list_input or len(layer.outputs) != 1:
                return False
            current = layer.outputs[0]
        return self.outputs == [current]
