"""TensorRT 10's plugin interfaces, to subclass in Python exactly as with TensorRT.

A plugin class usually inherits IPluginV3 and the three capabilities (IPluginV3OneCore,
IPluginV3OneBuild, IPluginV3OneRuntime) and returns itself from `get_capability_interface`;
a creator (IPluginCreatorV3One) makes plugins from a PluginFieldCollection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..types import (
    APILanguage,
    DataType,
    Dims,
    PluginCapabilityType,
    PluginFieldType,
    TensorFormat,
    TensorRTPhase,
)
from .dims_expr import DimsExprs, IExprBuilder


class InterfaceInfo:
    """The kind and version of an interface."""

    def __init__(self, kind: str = "", major: int = 1, minor: int = 0) -> None:
        self.kind = kind
        self.major = major
        self.minor = minor


class IVersionedInterface:
    @property
    def api_language(self) -> APILanguage:
        return APILanguage.PYTHON

    @property
    def interface_info(self) -> InterfaceInfo:
        return InterfaceInfo(type(self).__name__)


class IPluginCapability(IVersionedInterface):
    """A capability of a plugin (core, build or runtime)."""


class IPluginV3(IVersionedInterface):
    """A plugin: its capabilities come from `get_capability_interface`."""

    def __init__(self, *args: Any) -> None:
        pass

    def get_capability_interface(self, type: PluginCapabilityType) -> Any:
        raise NotImplementedError("IPluginV3.get_capability_interface must be implemented")

    def clone(self) -> IPluginV3:
        raise NotImplementedError("IPluginV3.clone must be implemented")

    def destroy(self) -> None:
        pass


class IPluginV3OneCore(IPluginCapability):
    """Core capability: the plugin's name, version and namespace."""

    def __init__(self, *args: Any) -> None:
        if not hasattr(self, "plugin_name"):
            self.plugin_name = ""
        if not hasattr(self, "plugin_version"):
            self.plugin_version = ""
        if not hasattr(self, "plugin_namespace"):
            self.plugin_namespace = ""


class IPluginV3OneBuild(IPluginCapability):
    """Build capability: output types and shapes, formats, workspace, tactics."""

    DEFAULT_FORMAT_COMBINATION_LIMIT = 100

    def __init__(self, *args: Any) -> None:
        if not hasattr(self, "num_outputs"):
            self.num_outputs = 1
        self.format_combination_limit = self.DEFAULT_FORMAT_COMBINATION_LIMIT
        self.metadata_string = ""
        self.timing_cache_id = ""

    def get_output_data_types(self, input_types: list[DataType]) -> list[DataType]:
        raise NotImplementedError("IPluginV3OneBuild.get_output_data_types must be implemented")

    def get_output_shapes(
        self, inputs: list[DimsExprs], shape_inputs: list[DimsExprs], expr_builder: IExprBuilder
    ) -> list[DimsExprs]:
        raise NotImplementedError("IPluginV3OneBuild.get_output_shapes must be implemented")

    def configure_plugin(
        self, inp: list[DynamicPluginTensorDesc], out: list[DynamicPluginTensorDesc]
    ) -> None:
        pass

    def supports_format_combination(
        self, pos: int, in_out: list[DynamicPluginTensorDesc], num_inputs: int
    ) -> bool:
        return in_out[pos].desc.format == TensorFormat.LINEAR

    def get_workspace_size(
        self, inp: list[DynamicPluginTensorDesc], out: list[DynamicPluginTensorDesc]
    ) -> int:
        return 0

    def get_valid_tactics(self) -> list[int]:
        return []


class IPluginV3OneRuntime(IPluginCapability):
    """Runtime capability: enqueue, shape changes, serialization of fields."""

    def __init__(self, *args: Any) -> None:
        pass

    def enqueue(
        self,
        input_desc: list[PluginTensorDesc],
        output_desc: list[PluginTensorDesc],
        inputs: list[int],
        outputs: list[int],
        workspace: int,
        stream: int,
    ) -> None:
        raise NotImplementedError("IPluginV3OneRuntime.enqueue must be implemented")

    def get_fields_to_serialize(self) -> PluginFieldCollection:
        raise NotImplementedError("IPluginV3OneRuntime.get_fields_to_serialize must be implemented")

    def on_shape_change(self, inp: list[PluginTensorDesc], out: list[PluginTensorDesc]) -> None:
        pass

    def set_tactic(self, tactic: int) -> None:
        pass

    def attach_to_context(self, resource_context: IPluginResourceContext) -> IPluginV3:
        return self.clone()


class IPluginCreatorInterface(IVersionedInterface):
    """Base of plugin creators."""


class IPluginCreatorV3One(IPluginCreatorInterface):
    """Makes IPluginV3 plugins from fields; registered in an IPluginRegistry."""

    def __init__(self, *args: Any) -> None:
        if not hasattr(self, "name"):
            self.name = ""
        if not hasattr(self, "plugin_version"):
            self.plugin_version = ""
        if not hasattr(self, "plugin_namespace"):
            self.plugin_namespace = ""
        if not hasattr(self, "field_names"):
            self.field_names = PluginFieldCollection()

    def create_plugin(
        self, name: str, field_collection: PluginFieldCollection, phase: TensorRTPhase
    ) -> IPluginV3:
        raise NotImplementedError("IPluginCreatorV3One.create_plugin must be implemented")


FIELD_NUMPY_TYPES = {
    PluginFieldType.FLOAT16: np.float16,
    PluginFieldType.FLOAT32: np.float32,
    PluginFieldType.FLOAT64: np.float64,
    PluginFieldType.INT8: np.int8,
    PluginFieldType.INT16: np.int16,
    PluginFieldType.INT32: np.int32,
    PluginFieldType.INT64: np.int64,
    PluginFieldType.CHAR: np.int8,
    PluginFieldType.DIMS: np.int64,
    PluginFieldType.UNKNOWN: np.uint8,
    PluginFieldType.BF16: np.uint16,
    PluginFieldType.FP8: np.uint8,
    PluginFieldType.INT4: np.uint8,
    PluginFieldType.FP4: np.uint8,
}


class PluginField:
    """A named plugin attribute: its data is a 1-D numpy array of the field's type."""

    def __init__(
        self, name: str = "", data: Any = None, type: PluginFieldType = PluginFieldType.UNKNOWN
    ) -> None:
        self.name = name
        self.type = PluginFieldType(type)
        self.data = data

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        numpy_type = FIELD_NUMPY_TYPES[self.type]
        if value is None:
            self._data = np.zeros(0, dtype=numpy_type)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._data = np.frombuffer(bytes(value), dtype=numpy_type).copy()
        elif isinstance(value, str):
            self._data = np.frombuffer(value.encode(), dtype=np.int8).copy()
        else:
            self._data = np.ascontiguousarray(value, dtype=numpy_type).reshape(-1)

    @property
    def size(self) -> int:
        return int(self._data.size)

    def __repr__(self) -> str:
        return f"PluginField({self.name!r}, {self._data!r}, {self.type.name})"


class PluginFieldCollection(list):
    """A list of PluginFields."""

    def __init__(self, fields: Iterable[PluginField] = ()) -> None:
        super().__init__(fields)


PluginFieldCollection_ = PluginFieldCollection


class PluginTensorDesc:
    """How a plugin sees one tensor: dims, type, format and (int8) scale."""

    def __init__(
        self,
        dims: Any = (),
        type: DataType = DataType.FLOAT,
        format: TensorFormat = TensorFormat.LINEAR,
        scale: float = 1.0,
    ) -> None:
        self.dims = Dims(dims)
        self.type = DataType(type)
        self.format = TensorFormat(format)
        self.scale = scale


class DynamicPluginTensorDesc:
    """A tensor a plugin may see: its desc (-1 for runtime dims) and the shape range."""

    def __init__(
        self,
        desc: PluginTensorDesc | None = None,
        min: Any = (),
        opt: Any = (),
        max: Any = (),
    ) -> None:
        self.desc = desc if desc is not None else PluginTensorDesc()
        self.min = Dims(min)
        self.opt = Dims(opt)
        self.max = Dims(max)


class IPluginResourceContext:
    """What a runtime offers plugins attached to a context: its allocator and error recorder."""

    def __init__(self, gpu_allocator: Any = None, error_recorder: Any = None) -> None:
        self._gpu_allocator = gpu_allocator
        self._error_recorder = error_recorder

    @property
    def gpu_allocator(self) -> Any:
        return self._gpu_allocator

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder
