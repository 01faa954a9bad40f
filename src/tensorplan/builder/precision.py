"""Reduced precision: BuilderFlag.FP16 / BF16, layer precisions and output types.

TensorRT's weakly typed rules, as the builder applies them to the IR:
- With FP16 (or BF16) set, every layer whose op has reduced-precision kernels
  (`Op.reduced_precision`) computes in HALF (or BF16): its FLOAT inputs are converted (weights once, at build time; activations by a
  cast node) and its FLOAT outputs become HALF.
- A layer whose `precision` is set computes in that type, with or without the flags.
- Network inputs and outputs keep the types the network declares; `set_output_type` (and
  `ITensor.dtype` on a layer's output) pins the type of that output. Casts are inserted at
  these boundaries.
- A layer whose op refuses the reduced type falls back to its declared types.

Accumulation: normalization ops keep their `compute_precision` (FLOAT by default), and the
torch kernels behind softmax, reductions, matrix multiply and convolution accumulate HALF and
BF16 inputs in FLOAT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..device import torch_dtype
from ..ir import Graph, GraphError, Node, infer_node_named
from ..network.definition import INetworkDefinition
from ..ops import get_op
from ..ops.base import TensorMeta
from ..types import FLOATS, BuilderFlag, DataType


@dataclass
class PrecisionConstraints:
    """What the network asks of types: per layer name, its precision and pinned output types."""

    precisions: dict[str, DataType] = field(default_factory=dict)
    output_types: dict[str, dict[int, DataType]] = field(default_factory=dict)

    @classmethod
    def of(cls, network: INetworkDefinition) -> PrecisionConstraints:
        constraints = cls()
        for layer in network._layers:
            if layer.precision_is_set:
                constraints.precisions[layer.name] = layer.precision
            pinned = {
                index: dtype
                for index, tensor in enumerate(layer._outputs)
                if (dtype := layer._output_types.get(index, tensor._requested_dtype)) is not None
            }
            if pinned:
                constraints.output_types[layer.name] = pinned
        return constraints

    @property
    def names(self) -> set[str]:
        """Layers with a constraint: fusion leaves them alone so that the constraint holds."""
        return set(self.precisions) | set(self.output_types)


def reduced_type(flags: int) -> DataType | None:
    """The type the builder flags allow layers to compute in: HALF, BF16 or None (FLOAT only)."""
    if flags >> int(BuilderFlag.FP16) & 1:
        return DataType.HALF
    if flags >> int(BuilderFlag.BF16) & 1:
        return DataType.BF16
    return None


def assign_precision(graph: Graph, flags: int, constraints: PrecisionConstraints) -> None:
    """Give every node its compute type, converting weights and inserting casts as needed.
    Without a reduced type and without per-layer precisions every node keeps the types
    lowering gave it (casts for pinned output types are already there): nothing to do."""
    reduced = reduced_type(flags)
    if reduced is not None or constraints.precisions:
        _Assignment(graph, reduced, constraints).run()


def convert_weights(tensor: torch.Tensor, dtype: DataType) -> torch.Tensor:
    """Weights in `dtype`, once, at build time. As TensorRT does, finite values beyond the
    range of a reduced type are clamped to its largest value rather than becoming infinite
    (a mask constant of -3.4e38 must stay finite: 0 * -inf would be NaN)."""
    target = torch_dtype(dtype)
    if tensor.is_floating_point() and target in (torch.float16, torch.bfloat16):
        limit = torch.finfo(target).max
        tensor = torch.where(tensor.isfinite(), tensor.clamp(-limit, limit), tensor)
    return tensor.to(target).contiguous()


class _Assignment:
    """One pass over the nodes in order, tracking each value's type as it is rewritten."""

    def __init__(
        self, graph: Graph, reduced: DataType | None, constraints: PrecisionConstraints
    ) -> None:
        self.graph = graph
        self.reduced = reduced
        self.constraints = constraints
        self.declared = [value.dtype for value in graph.values]
        self.outputs = set(graph.outputs)
        self.metas: dict[int, TensorMeta] = {}
        for value_id, tensor in graph.constants.items():
            value = graph.values[value_id]
            self.metas[value_id] = TensorMeta(value.dtype, value.shape, tensor)
        for value_id in graph.inputs:
            value = graph.values[value_id]
            self.metas[value_id] = TensorMeta(value.dtype, value.shape)
        self.converted: dict[tuple[int, DataType], int] = {}
        self.nodes: list[Node] = []

    def run(self) -> None:
        for node in self.graph.nodes:
            mode = self._mode(node)
            original_inputs = list(node.inputs)
            results = None
            if mode is not None:
                node.inputs = self._inputs_in(node, original_inputs, mode)
                results = self._infer(node)
            if results is None:
                # no reduced kernel (or none asked for): the declared types
                node.inputs = self._inputs_in(node, original_inputs, None)
                results = infer_node_named(node, self._input_metas(node), values_known=False)
            self.nodes.append(node)
            self._set_outputs(node, results)
        self.graph.nodes = self.nodes

    def _mode(self, node: Node) -> DataType | None:
        """The float type the node computes in; None to keep its declared types."""
        precision = self.constraints.precisions.get(node.name)
        if precision is not None:
            return precision if precision in FLOATS else None
        if self.reduced is not None and get_op(node.op).reduced_precision:
            return self.reduced
        return None

    def _inputs_in(self, node: Node, inputs: list[int | None], mode: DataType | None) -> list:
        """The node's inputs converted for `mode` (declared float types when None)."""
        op = get_op(node.op)
        result: list[int | None] = []
        for index, value_id in enumerate(inputs):
            if value_id is None or op.any_input_type or index in op.shape_inputs:
                result.append(value_id)
                continue
            declared = self.declared[value_id]
            wanted = mode if mode is not None and declared in FLOATS else declared
            result.append(self._as_type(value_id, wanted))
        return result

    def _as_type(self, value_id: int, dtype: DataType) -> int:
        """`value_id` itself when it has `dtype`, else its conversion (made once)."""
        if self.metas[value_id].dtype == dtype:
            return value_id
        key = (value_id, dtype)
        if key in self.converted:
            return self.converted[key]
        source = self.graph.values[value_id]
        converted = self.graph.add_value(f"{source.name} [{dtype.name}]", dtype, source.shape)
        tensor = self.graph.constants.get(value_id)
        if tensor is not None:
            self.graph.constants[converted] = convert_weights(tensor, dtype)
            self.metas[converted] = TensorMeta(dtype, source.shape, self.graph.constants[converted])
        else:
            self.nodes.append(
                Node(
                    f"{source.name} [to {dtype.name}]",
                    "cast",
                    {"to_type": dtype},
                    [value_id],
                    [converted],
                )
            )
            self.metas[converted] = TensorMeta(dtype, self.metas[value_id].shape)
        self.converted[key] = converted
        return converted

    def _input_metas(self, node: Node) -> list[TensorMeta | None]:
        return [None if v is None else self.metas[v] for v in node.inputs]

    def _infer(self, node: Node) -> list[TensorMeta] | None:
        try:
            return infer_node_named(node, self._input_metas(node), values_known=False)
        except GraphError:
            return None

    def _set_outputs(self, node: Node, results: list[TensorMeta]) -> None:
        """Outputs take their new types, except where the network pins them: a cast back."""
        pinned = self.constraints.output_types.get(node.name, {})
        for index, (value_id, meta) in enumerate(zip(list(node.outputs), results, strict=True)):
            declared = self.declared[value_id]
            wanted = meta.dtype
            if value_id in self.outputs or pinned.get(index) == declared:
                wanted = declared
            value = self.graph.values[value_id]
            if wanted == meta.dtype:
                value.dtype = meta.dtype
                self.metas[value_id] = meta
                continue
            raw = self.graph.add_value(f"{value.name} [{meta.dtype.name}]", meta.dtype, value.shape)
            node.outputs[index] = raw
            self.metas[raw] = meta
            self.nodes.append(
                Node(
                    f"{node.name} [output {index} to {wanted.name}]",
                    "cast",
                    {"to_type": wanted},
                    [raw],
                    [value_id],
                )
            )
            self.metas[value_id] = TensorMeta(wanted, meta.shape)
