"""Executes a program: shape inference per input-shape signature, then the nodes in order.

Everything that can be prepared is prepared once per shapes-and-addresses: a step list of
(kernel, input tensors, output tensors, attributes), so running is a plain loop over it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..device import tensor_at, torch_dtype
from ..ir import Node, Program, infer_graph, infer_node_named
from ..ops import fallback, get_op
from ..ops.base import Op, TensorMeta
from ..ops.shaping import Shuffle
from ..plan.shape_checks import check_inferred

SHAPE_CACHE_SIZE = 32


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[list, list, dict], None]
    inputs: list[torch.Tensor | None]
    outputs: list[torch.Tensor]
    attrs: dict[str, Any]


class ExecutionError(RuntimeError):
    """A kernel failed; the message names the layer."""


class Executor:
    """Runs one program on one device, over constants already on that device."""

    def __init__(self, program: Program, constants: dict[int, torch.Tensor], device: torch.device):
        self.program = program
        self.constants = constants
        self.device = device
        self._ops = [get_op(node.op) for node in program.graph.nodes]
        self._shapes: dict[tuple, list[TensorMeta]] = {}
        self.data_dependent = any(op.data_dependent for op in self._ops)
        """Whether some shapes are known only while running: then `run_dynamic` runs it."""
        graph = program.graph
        self._graph_outputs = set(graph.outputs)
        self._shape_sources = {
            value_id
            for node, op in zip(graph.nodes, self._ops, strict=True)
            for index, value_id in enumerate(node.inputs)
            if index in op.shape_inputs and value_id is not None
        }

    def infer(
        self,
        input_shapes: Sequence[tuple[int, ...]],
        host_values: Mapping[int, torch.Tensor] | None = None,
    ) -> list[TensorMeta]:
        """Metas of every value for these input shapes and shape-tensor input values (cached);
        GraphError when they do not fit, or break what the plan declares (plan/shape_checks.py:
        the plan reader does not infer shapes, so this is where they are checked)."""
        host_values = host_values or {}
        key = (
            tuple(input_shapes),
            tuple((v, tuple(t.reshape(-1).tolist())) for v, t in host_values.items()),
        )
        metas = self._shapes.get(key)
        if metas is None:
            graph = self.program.graph
            shapes = dict(zip(graph.inputs, input_shapes, strict=True))
            metas = infer_graph(graph, shapes, host_values)
            check_inferred(self.program, metas)
            if len(self._shapes) >= SHAPE_CACHE_SIZE:
                self._shapes.pop(next(iter(self._shapes)))
            self._shapes[key] = metas
        return metas

    def steps(
        self, metas: list[TensorMeta], arena: torch.Tensor | None, io: dict[int, torch.Tensor]
    ) -> list[Step]:
        """The step list for these metas, arena and input/output tensors."""
        graph = self.program.graph
        tensors: dict[int, torch.Tensor] = dict(self.constants)
        tensors.update(io)
        memory = self.program.memory
        for value_id, (offset, _) in memory.slots.items():
            tensors[value_id] = _view(
                arena, offset, metas[value_id], value_id in memory.channels_last
            )
        steps = []
        device_reads = self._device_reads(metas)
        for node, op in zip(graph.nodes, self._ops, strict=True):
            if self._make_view(node, metas, tensors):
                continue
            if all(metas[v].value is not None for v in node.outputs):
                # known on the host already: no kernel, and a copy only where one is read
                needed = [v for v in node.outputs if v in device_reads]
                if needed:
                    values = [self._staged(metas[v].value) for v in needed]
                    outputs = [tensors[v] for v in needed]
                    steps.append(Step(node.name, _copy_values, values, outputs, {}))
                continue
            inputs = _node_inputs(node, op, metas, tensors)
            outputs = [tensors[value_id] for value_id in node.outputs]
            steps.append(Step(node.name, op.run, inputs, outputs, node.attrs))
        return steps

    def _device_reads(self, metas: list[TensorMeta]) -> set[int]:
        """Values that some kernel reads on the device, or the user does (engine outputs):
        the others need no device copy when shape inference already knows them (shape
        arithmetic). A view read on the device needs its source there."""
        graph = self.program.graph
        views = self.program.memory.views
        reads = set(graph.outputs)
        for node, op in zip(graph.nodes, self._ops, strict=True):
            if node.outputs[0] in views or all(metas[v].value is not None for v in node.outputs):
                continue  # no kernel runs
            reads.update(
                value_id
                for index, value_id in enumerate(node.inputs)
                if index not in op.shape_inputs and value_id is not None
            )
        for value_id, source in reversed(views.items()):
            if value_id in reads:
                reads.add(source)
        return reads

    def _staged(self, value: torch.Tensor) -> torch.Tensor:
        """A host value ready to copy to the device: pinned on CUDA, so that the copy is
        asynchronous and can be captured in a CUDA graph."""
        return value.contiguous().pin_memory() if self.device.type == "cuda" else value

    def run_dynamic(
        self,
        metas: list[TensorMeta],
        arena: torch.Tensor,
        io: dict[int, torch.Tensor],
        output_tensor: Callable[[int, TensorMeta], torch.Tensor],
    ) -> None:
        """Run node by node, inferring the shapes that data-dependent ops decide as they
        become known. Activations without a slot are allocated when their shapes are known;
        engine outputs of data-dependent shape come from `output_tensor(value_id, meta)`.
        """
        graph = self.program.graph
        memory = self.program.memory
        metas = list(metas)
        tensors: dict[int, torch.Tensor] = dict(self.constants)
        tensors.update(io)
        for value_id, (offset, _) in memory.slots.items():
            tensors[value_id] = _view(
                arena, offset, metas[value_id], value_id in memory.channels_last
            )
        with torch.no_grad():
            for node, op in zip(graph.nodes, self._ops, strict=True):
                if self._make_view(node, metas, tensors):
                    continue
                fallback.at_layer(node.name)
                try:
                    self._run_node(node, op, metas, tensors, output_tensor)
                except Exception as error:  # any kernel failure becomes a reported error
                    raise ExecutionError(f"layer '{node.name}' failed: {error}") from error

    def _make_view(
        self, node: Node, metas: list[TensorMeta], tensors: dict[int, torch.Tensor]
    ) -> bool:
        """Make the node's output a view of its input if the memory plan says so."""
        value_id = node.outputs[0]
        if value_id not in self.program.memory.views:
            return False
        tensors[value_id] = Shuffle.view(tensors[node.inputs[0]], metas[value_id].shape, node.attrs)
        return True

    def _run_node(
        self,
        node: Node,
        op: Op,
        metas: list[TensorMeta],
        tensors: dict[int, torch.Tensor],
        output_tensor: Callable[[int, TensorMeta], torch.Tensor],
    ) -> None:
        inputs = _node_inputs(node, op, metas, tensors)
        if op.data_dependent:
            results = op.run_dynamic(inputs, node.attrs)
            for value_id, result in zip(node.outputs, results, strict=True):
                metas[value_id] = TensorMeta(metas[value_id].dtype, tuple(result.shape))
                if value_id in tensors:  # an output of known shape, at its address
                    tensors[value_id].copy_(result)
                elif value_id in self._graph_outputs:
                    output_tensor(value_id, metas[value_id]).copy_(result)
                tensors[value_id] = result
        else:
            if not all(metas[v].is_static for v in node.outputs):
                inferred = infer_node_named(
                    node, [None if v is None else metas[v] for v in node.inputs]
                )
                for value_id, meta in zip(node.outputs, inferred, strict=True):
                    metas[value_id] = meta
                    if value_id not in tensors:
                        tensors[value_id] = (
                            output_tensor(value_id, meta)
                            if value_id in self._graph_outputs
                            else torch.empty(
                                meta.shape, dtype=torch_dtype(meta.dtype), device=self.device
                            )
                        )
            op.run(inputs, [tensors[v] for v in node.outputs], node.attrs)
        for value_id in node.outputs:
            meta = metas[value_id]
            if value_id in self._shape_sources and meta.value is None:
                metas[value_id] = TensorMeta(meta.dtype, meta.shape, tensors[value_id].cpu())

    def io_tensor(self, address: int, meta: TensorMeta) -> torch.Tensor:
        """The tensor at a user's address (device pointer on GPU, host pointer on CPU)."""
        return tensor_at(address, meta.shape, torch_dtype(meta.dtype), self.device)


@contextlib.contextmanager
def tf32_mode(enabled: bool) -> Iterator[None]:
    """Let float32 matrix products and convolutions use TF32 as the plan was built
    (BuilderFlag.TF32); torch's switches are process-wide, so they are restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def run_steps(steps: list[Step]) -> None:
    """Run the steps in order; ExecutionError naming the layer when a kernel fails. Each
    step's layer is the one a slower path taken meanwhile is reported for (ops/fallback.py)."""
    with torch.no_grad():
        for step in steps:
            fallback.at_layer(step.name)
            try:
                step.run(step.inputs, step.outputs, step.attrs)
            except Exception as error:  # any kernel failure becomes a reported error
                raise ExecutionError(f"layer '{step.name}' failed: {error}") from error


def _copy_values(
    values: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict[str, Any]
) -> None:
    for value, output in zip(values, outputs, strict=True):
        output.copy_(value, non_blocking=True)


def _node_inputs(
    node: Node, op: Op, metas: list[TensorMeta], tensors: dict[int, torch.Tensor]
) -> list[torch.Tensor | None]:
    """A node's input tensors; host values for its shape inputs."""
    return [
        None
        if value_id is None
        else metas[value_id].value
        if index in op.shape_inputs
        else tensors[value_id]
        for index, value_id in enumerate(node.inputs)
    ]


def _view(
    arena: torch.Tensor, offset: int, meta: TensorMeta, channels_last: bool = False
) -> torch.Tensor:
    """The tensor of `meta` in its arena slot: NCHW-shaped, NHWC in memory if channels_last."""
    values = arena[offset : offset + meta.nbytes].view(torch_dtype(meta.dtype))
    if channels_last:
        n, c, h, w = meta.shape
        return values.view(n, h, w, c).permute(0, 3, 1, 2)
    return values.view(meta.shape)
