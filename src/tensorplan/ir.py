"""The intermediate representation shared by the builder, the plan and the runtime.

A Graph is a list of nodes in execution order over numbered values. The builder produces
it from a network, the plan stores it, and the runtime executes it: there is no other
description of a program.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .device import torch_dtype
from .ops import get_op
from .ops.base import TensorMeta, infer_node
from .types import DataType


class GraphError(ValueError):
    """A graph that is not valid; the message names the node and tensor."""


@dataclass
class Value:
    """A tensor of the program: network-level type and shape (-1 where dynamic)."""

    name: str
    dtype: DataType
    shape: tuple[int, ...]


@dataclass
class Node:
    """One op applied to values; `name` is the layer's name, used in every message."""

    name: str
    op: str
    attrs: dict[str, Any]
    inputs: list[int | None]
    outputs: list[int]


Triple = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


@dataclass
class Profile:
    """An optimization profile: per dynamic input, its (min, opt, max) shapes; per shape-tensor
    input (TensorRT's host inputs, whose values shape the network), its (min, opt, max) values
    in row-major order."""

    shapes: dict[str, Triple]
    values: dict[str, Triple] = field(default_factory=dict)


@dataclass
class Graph:
    values: list[Value] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    constants: dict[int, torch.Tensor | None] = field(default_factory=dict)
    """Constant values by value id, as CPU tensors; None where the data lives elsewhere
    (an engine keeps only small constants on the host, for shape inference)."""

    def add_value(self, name: str, dtype: DataType, shape: Sequence[int]) -> int:
        self.values.append(Value(name, dtype, tuple(shape)))
        return len(self.values) - 1

    def producers(self) -> dict[int, int]:
        """Value id -> index of the node that produces it."""
        return {out: index for index, node in enumerate(self.nodes) for out in node.outputs}

    def consumers(self) -> dict[int, list[int]]:
        """Value id -> indices of the nodes that read it, in order."""
        readers: dict[int, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for value in node.inputs:
                if value is not None:
                    readers.setdefault(value, []).append(index)
        return readers


def infer_graph(
    graph: Graph,
    input_shapes: Mapping[int, tuple[int, ...]],
    input_values: Mapping[int, torch.Tensor] | None = None,
) -> list[TensorMeta]:
    """Types, shapes and host values of every value, for the given input shapes and the values
    of shape-tensor inputs.

    Raises GraphError naming the layer when a node's inputs do not fit.
    """
    input_values = input_values or {}
    metas: list[TensorMeta | None] = [None] * len(graph.values)
    for value_id, tensor in graph.constants.items():
        value = graph.values[value_id]
        metas[value_id] = TensorMeta(value.dtype, value.shape, tensor)
    for value_id in graph.inputs:
        value = graph.values[value_id]
        shape = tuple(input_shapes.get(value_id, value.shape))
        host_value = input_values.get(value_id)
        if host_value is not None:
            host_value = host_value.to(torch_dtype(value.dtype)).reshape(shape)
        metas[value_id] = TensorMeta(value.dtype, shape, host_value)
    for node in graph.nodes:
        inputs = [None if i is None else metas[i] for i in node.inputs]
        results = infer_node_named(node, inputs)
        for value_id, meta in zip(node.outputs, results, strict=True):
            metas[value_id] = meta
    return metas  # type: ignore[return-value]


def infer_node_named(
    node: Node, inputs: list[TensorMeta | None], values_known: bool = True
) -> list[TensorMeta]:
    """`infer_node` with errors that name the layer and op."""
    op = get_op(node.op)
    if op is None:
        raise GraphError(f"layer '{node.name}': unknown op '{node.op}'")
    try:
        return infer_node(op, inputs, node.attrs, values_known)
    except (ValueError, TypeError) as error:
        raise GraphError(f"layer '{node.name}' ({node.op}): {error}") from None


@dataclass
class MemoryPlan:
    """Where each activation lives in the arena: value id -> (offset, size in bytes)."""

    arena_size: int = 0
    slots: dict[int, tuple[int, int]] = field(default_factory=dict)
    channels_last: frozenset[int] = frozenset()
    """Slotted 4D activations laid out NHWC in their slot (TensorFormat.HWC), not NCHW."""
    views: dict[int, int] = field(default_factory=dict)
    """Shuffle outputs that are views of the shuffle's input (value id -> input's value id):
    no slot and no kernel; in node order."""

    def storage_of(self, value_id: int) -> int:
        """The value whose memory `value_id` lives in (itself unless it is a view)."""
        while value_id in self.views:
            value_id = self.views[value_id]
        return value_id


@dataclass
class Program:
    """What a plan holds and an engine runs: the optimized graph and how to run it."""

    name: str
    graph: Graph
    profiles: list[Profile]
    memory: MemoryPlan
    flags: int = 0
    library_version: str = ""
    host_code: list = field(default_factory=list)
    """The plan's host-code libraries (plan/host_code.py HostLibrary), as data."""
    tf32: bool = True
    """Whether float32 matrix products and convolutions may use TF32 (BuilderFlag.TF32)."""

    @property
    def host_inputs(self) -> list[int]:
        """Inputs that are shape tensors: their values live in host memory and shape the
        network; every profile gives their ranges."""
        names = set(self.profiles[0].values) if self.profiles else set()
        return [v for v in self.graph.inputs if self.graph.values[v].name in names]
