"""Lower a network definition into the IR graph: one node per layer, weights as constants."""

from __future__ import annotations

import torch

from ..device import torch_dtype
from ..ir import Graph, Node
from ..network.definition import INetworkDefinition
from ..network.layer import ILayer
from ..network.layers.constant import IConstantLayer
from ..network.tensor import ITensor
from ..ops.base import ShapeError, TensorMeta, meta_of
from ..plan.format import MAX_RANK


class BuildError(ValueError):
    """The network cannot be built; the message names the layer or tensor and why."""


def lower(network: INetworkDefinition) -> tuple[Graph, dict[int, TensorMeta]]:
    """The graph of everything the network's outputs depend on, in execution order, and the
    meta lowering inferred for each of its values (network shapes, no shape-input values)."""
    if not network._outputs:
        raise BuildError("the network has no outputs; mark at least one with mark_output")
    graph = Graph()
    metas: dict[int, TensorMeta] = {}
    value_of: dict[ITensor, int] = {}
    for tensor in network._inputs:
        _check_rank(f"input '{tensor.name}'", tensor._input_shape)
        value_of[tensor] = graph.add_value(tensor.name, tensor._input_dtype, tensor._input_shape)
        graph.inputs.append(value_of[tensor])
        metas[value_of[tensor]] = network._input_meta(tensor)
    for layer in _execution_order(network):
        if isinstance(layer, IConstantLayer):
            _lower_constant(graph, layer, value_of, metas)
        else:
            _lower_layer(graph, layer, value_of, metas)
    for tensor in network._outputs:
        if tensor not in value_of:
            raise BuildError(f"output '{tensor.name}' is not a tensor of this network")
        if tensor.is_network_input:
            raise BuildError(
                f"tensor '{tensor.name}' is both a network input and an output; "
                "mark the output of an identity layer instead"
            )
        graph.outputs.append(value_of[tensor])
    names = [graph.values[v].name for v in graph.inputs + graph.outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BuildError(f"network inputs and outputs need unique names; repeated: {duplicates}")
    return graph, metas


def _execution_order(network: INetworkDefinition) -> list[ILayer]:
    """The layers the outputs need, each after the layers it reads from."""
    order: list[ILayer] = []
    done: set[ILayer] = set()
    for output in network._outputs:
        if output._producer is None:
            continue
        stack = [(output._producer, False)]
        on_path: set[ILayer] = set()
        while stack:
            layer, expanded = stack.pop()
            if expanded:
                on_path.discard(layer)
                if layer not in done:
                    done.add(layer)
                    order.append(layer)
                continue
            if layer in done:
                continue
            if layer in on_path:
                raise BuildError(f"layer '{layer.name}' is part of a cycle")
            on_path.add(layer)
            stack.append((layer, True))
            for item in reversed(layer._node_inputs()):
                if isinstance(item, ITensor) and item._producer is not None:
                    if item._producer in on_path:
                        raise BuildError(f"layer '{item._producer.name}' is part of a cycle")
                    if item._producer not in done:
                        stack.append((item._producer, False))
    return order


def _lower_constant(
    graph: Graph, layer: IConstantLayer, value_of: dict, metas: dict[int, TensorMeta]
) -> None:
    try:
        (meta,) = layer._infer([])
    except (ShapeError, ValueError, TypeError) as error:
        raise BuildError(f"layer '{layer.name}': {error}") from None
    _check_rank(f"layer '{layer.name}'", meta.shape)
    tensor = layer.get_output(0)
    dtype = layer._output_types.get(0, tensor._requested_dtype) or meta.dtype
    value = meta.value.to(torch_dtype(dtype)).contiguous()
    value_id = graph.add_value(tensor.name, dtype, tuple(value.shape))
    graph.constants[value_id] = value
    value_of[tensor] = value_id
    metas[value_id] = meta_of(value)


def _lower_layer(graph: Graph, layer: ILayer, value_of: dict, metas: dict[int, TensorMeta]) -> None:
    inputs: list[int | None] = []
    for index, item in enumerate(layer._node_inputs()):
        if item is None:
            inputs.append(None)
        elif isinstance(item, torch.Tensor):
            value = item.contiguous()
            value_id = graph.add_value(
                f"{layer.name} [weights {index}]", meta_of(value).dtype, value.shape
            )
            graph.constants[value_id] = value
            metas[value_id] = meta_of(value)
            inputs.append(value_id)
        elif item not in value_of:
            raise BuildError(f"layer '{layer.name}': input {index} '{item.name}' is not computed")
        else:
            inputs.append(value_of[item])
    try:
        results = layer._infer([None if v is None else metas[v] for v in inputs])
    except (ShapeError, ValueError, TypeError) as error:
        raise BuildError(f"layer '{layer.name}': {error}") from None
    outputs = []
    casts = []
    for index, (tensor, meta) in enumerate(zip(layer._outputs, results, strict=True)):
        _check_rank(f"layer '{layer.name}' output {index}", meta.shape)
        wanted = layer._output_types.get(index, tensor._requested_dtype)
        if wanted is not None and wanted != meta.dtype:
            raw = graph.add_value(f"{tensor.name} [before cast]", meta.dtype, meta.shape)
            metas[raw] = meta
            final = graph.add_value(tensor.name, wanted, meta.shape)
            metas[final] = TensorMeta(wanted, meta.shape)
            casts.append(
                Node(f"{layer.name} [cast {index}]", "cast", {"to_type": wanted}, [raw], [final])
            )
            outputs.append(raw)
        else:
            final = graph.add_value(tensor.name, meta.dtype, meta.shape)
            metas[final] = meta
            outputs.append(final)
        value_of[tensor] = final
    graph.nodes.append(Node(layer.name, layer._op_name, dict(layer._attrs), inputs, outputs))
    graph.nodes.extend(casts)


def _check_rank(what: str, shape: tuple[int, ...]) -> None:
    """A plan holds tensors of at most MAX_RANK dims (TensorRT's Dims::MAX_DIMS is 8 too)."""
    if len(shape) > MAX_RANK:
        raise BuildError(f"{what} has {len(shape)} dimensions; at most {MAX_RANK} are supported")
