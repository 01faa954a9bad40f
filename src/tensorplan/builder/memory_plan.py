"""Activation memory planning: one arena, tensors with disjoint lifetimes share bytes.

The greedy-by-size strategy (largest tensor first, lowest offset that fits among the
tensors alive at the same time) is the one TFLite and TensorRT-style planners use.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..ir import Graph, MemoryPlan
from ..ops import get_op
from ..ops.base import TensorMeta
from ..plan.format import CONSTANT_ALIGNMENT, align
from ..plan.views import shuffle_views


def plan_memory(graph: Graph, shape_sets: Sequence[Sequence[TensorMeta]]) -> MemoryPlan:
    """Slots for every activation, sized for the largest shape any of `shape_sets` gives.

    Activations whose shapes depend on data (UNKNOWN dims at every profile point) get no
    slot: the executor allocates them when their shapes are known. Shuffles that only
    reshape or only transpose get no slot either: their outputs are views of their inputs,
    which then live as long as the views are read.
    """
    outputs = set(graph.outputs)
    outputs |= {v for metas in shape_sets for v, meta in enumerate(metas) if not meta.is_static}
    candidates = {v for node in graph.nodes for v in node.outputs if v not in outputs}
    channels_last = channels_last_values(graph, candidates)
    views = shuffle_views(graph, candidates, channels_last)
    memory = MemoryPlan(channels_last=channels_last, views=views)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for index, node in enumerate(graph.nodes):
        for value_id in node.inputs:
            storage = None if value_id is None else memory.storage_of(value_id)
            if storage in first:
                last[storage] = index
        for value_id in node.outputs:
            if value_id in candidates and value_id not in views:
                first[value_id] = last[value_id] = index
    sizes = {
        value_id: align(max(metas[value_id].nbytes for metas in shape_sets), CONSTANT_ALIGNMENT)
        for value_id in first
    }
    blocks = _blocks(graph, first)
    placed = _Placed(len(graph.nodes))
    slots: dict[int, tuple[int, int]] = {}
    arena_size = 0
    for block in sorted(blocks, key=lambda b: (-sum(sizes[v] for v in b), first[b[0]])):
        size = sum(sizes[v] for v in block)
        start = min(first[v] for v in block)
        end = max(last[v] for v in block)
        offset = 0
        for busy_start, busy_end in sorted(placed.alive_during(start, end)):
            if offset + size <= busy_start:
                break
            offset = max(offset, busy_end)
        placed.add(start, end, (offset, offset + size))
        arena_size = max(arena_size, offset + size)
        for value_id in block:
            slots[value_id] = (offset, sizes[value_id])
            offset += sizes[value_id]
    memory.arena_size, memory.slots = arena_size, dict(sorted(slots.items()))
    return memory


class _Placed:
    """The byte ranges placed so far, by the node indices [start, end] they are alive over.

    A segment tree over the node indices: a range is kept at the O(log n) tree nodes that
    cover its lifetime, and each tree node counts the ranges below it, so finding the ranges
    alive during a lifetime takes time in proportion to how many there are (scanning every
    placed range would make planning quadratic in the number of activations).
    """

    def __init__(self, length: int) -> None:
        self._leaves = 1 << max(length - 1, 0).bit_length()
        self._ranges: list[tuple[int, int]] = []
        self._at: dict[int, list[int]] = {}
        self._below: dict[int, int] = {}

    def add(self, start: int, end: int, byte_range: tuple[int, int]) -> None:
        index = len(self._ranges)
        self._ranges.append(byte_range)
        low, high = start + self._leaves, end + self._leaves + 1
        while low < high:
            if low & 1:
                self._keep(low, index)
                low += 1
            if high & 1:
                high -= 1
                self._keep(high, index)
            low, high = low >> 1, high >> 1

    def alive_during(self, start: int, end: int) -> list[tuple[int, int]]:
        """The byte ranges whose lifetimes meet [start, end]."""
        found: set[int] = set()
        pending = [(1, 0, self._leaves - 1)]
        while pending:
            tree_node, low, high = pending.pop()
            if high < start or end < low or not self._below.get(tree_node):
                continue
            found.update(self._at.get(tree_node, ()))
            if tree_node < self._leaves:
                middle = (low + high) // 2
                pending += [(2 * tree_node, low, middle), (2 * tree_node + 1, middle + 1, high)]
        return [self._ranges[index] for index in found]

    def _keep(self, tree_node: int, index: int) -> None:
        self._at.setdefault(tree_node, []).append(index)
        while tree_node:
            self._below[tree_node] = self._below.get(tree_node, 0) + 1
            tree_node >>= 1


def _blocks(graph: Graph, slotted: Collection[int]) -> list[list[int]]:
    """The values to place, alone or in blocks: the outputs of a node whose op has `adjacent_outputs`
    that all get slots lie back to back (its kernel then writes them in one batched call)."""
    grouped: set[int] = set()
    blocks = []
    for node in graph.nodes:
        outputs = node.outputs
        adjacent = get_op(node.op).adjacent_outputs and len(outputs) > 1
        if adjacent and all(v in slotted and v not in grouped for v in outputs):
            blocks.append(list(outputs))
            grouped.update(outputs)
    return blocks + [[v] for v in slotted if v not in grouped]


def channels_last_values(graph: Graph, slotted: Collection[int]) -> frozenset[int]:
    """The activations to lay out channels-last (NHWC): outputs of channels-last
    convolutions, and of poolings over channels-last inputs, that only ops reading any strides
    read, and casts that only channels-last convolutions read (an FP16 engine's input, cast
    and laid out in one pass). Chains of convolutions then run without layout conversions;
    engine inputs and outputs keep the user's NCHW."""
    consumers = graph.consumers()
    chosen: set[int] = set()
    for node in graph.nodes:
        value_id = node.outputs[0]
        readers = [graph.nodes[i] for i in consumers.get(value_id, [])]
        produces = (
            (node.op == "conv_bias_act" and node.attrs["channels_last"])
            or (node.op in ("pooling", "pool_bias_act") and node.inputs[0] in chosen)
            or (
                node.op == "cast"
                and bool(readers)
                and all(r.op == "conv_bias_act" and r.attrs["channels_last"] for r in readers)
            )
        )
        if (
            produces
            and value_id in slotted
            and len(graph.values[value_id].shape) == 4
            and all(get_op(reader.op).reads_channels_last for reader in readers)
        ):
            chosen.add(value_id)
    return frozenset(chosen)
