"""A plugin written against TensorRT's IPluginV3 interfaces, as a user writes one, that
records what TensorRT-style callers did to it; and small helpers for plugin tests."""

from __future__ import annotations

import numpy as np
import torch

import tensorplan as trt
from tensorplan.device import execution_device, tensor_at, torch_dtype
from tensorplan.plugins.dims_expr import DimsExprs
from tensorplan.plugins.interfaces import (
    IPluginCreatorV3One,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    PluginField,
    PluginFieldCollection,
)
from tensorplan.types import DimensionOperation, PluginFieldType, TensorRTPhase

NAME, VERSION, NAMESPACE = "ConcatScale", "2", "kit"


class ConcatScale(IPluginV3, IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime):
    """out0 = concat(a, b, axis 0) * scale, and out1 (INT32) = the row count of out0 as [1]."""

    calls: list[tuple] = []  # every call of every instance, in order

    def __init__(self, scale: float = 1.0, workspace: int = 0, tactics: tuple = ()) -> None:
        IPluginV3.__init__(self)
        self.plugin_name, self.plugin_version, self.plugin_namespace = NAME, VERSION, NAMESPACE
        self.num_outputs = 2
        IPluginV3OneCore.__init__(self)
        IPluginV3OneBuild.__init__(self)
        IPluginV3OneRuntime.__init__(self)
        self.scale, self.workspace, self.tactics = scale, workspace, tactics
        self.tactic = None

    def get_capability_interface(self, type: trt.PluginCapabilityType) -> ConcatScale:
        return self

    def clone(self) -> ConcatScale:
        return ConcatScale(self.scale, self.workspace, self.tactics)

    def get_output_data_types(self, input_types: list) -> list:
        return [input_types[0], trt.int32]

    def get_output_shapes(self, inputs: list, shape_inputs: list, builder) -> list:
        rows = DimsExprs(inputs[0])
        rows[0] = builder.operation(DimensionOperation.SUM, inputs[0][0], inputs[1][0])
        return [rows, DimsExprs([builder.constant(1)])]

    def configure_plugin(self, inp: list, out: list) -> None:
        ConcatScale.calls.append(("configure", [(tuple(d.min), tuple(d.max)) for d in inp]))

    def get_workspace_size(self, inp: list, out: list) -> int:
        return self.workspace

    def get_valid_tactics(self) -> list:
        return list(self.tactics)

    def set_tactic(self, tactic: int) -> None:
        self.tactic = tactic
        ConcatScale.calls.append(("set_tactic", tactic))

    def attach_to_context(self, resource_context) -> ConcatScale:
        ConcatScale.calls.append(("attach", resource_context.gpu_allocator))
        return self.clone()

    def on_shape_change(self, inp: list, out: list) -> None:
        ConcatScale.calls.append(("shape", [tuple(d.dims) for d in inp]))

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        return PluginFieldCollection(
            [
                PluginField("scale", np.array([self.scale], np.float32), PluginFieldType.FLOAT32),
                PluginField(
                    "workspace", np.array([self.workspace], np.int64), PluginFieldType.INT64
                ),
            ]
        )

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream) -> None:
        ConcatScale.calls.append(("enqueue", workspace != 0, self.tactic))
        device = execution_device()
        a, b = (
            tensor_at(p, tuple(d.dims), torch_dtype(d.type), device)
            for p, d in zip(inputs, input_desc, strict=True)
        )
        joined, count = (
            tensor_at(p, tuple(d.dims), torch_dtype(d.type), device)
            for p, d in zip(outputs, output_desc, strict=True)
        )
        joined.copy_(torch.cat([a, b]) * self.scale)
        count.fill_(joined.shape[0])


class ConcatScaleCreator(IPluginCreatorV3One):
    def __init__(self) -> None:
        IPluginCreatorV3One.__init__(self)
        self.name, self.plugin_version, self.plugin_namespace = NAME, VERSION, NAMESPACE
        self.phases: list = []

    def create_plugin(self, name: str, fc: PluginFieldCollection, phase) -> ConcatScale:
        self.phases.append(TensorRTPhase(phase))
        fields = {f.name: f.data for f in fc}
        return ConcatScale(float(fields["scale"][0]), int(fields["workspace"][0]))


def only_error(logger) -> str:
    assert len(logger.errors) == 1, logger.errors
    return logger.errors[0]
