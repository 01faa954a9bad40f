"""The lean runtime: the runtime-only part of tensorplan (deserialize and execute plans).

It imports nothing of the builder, the network API, the ONNX parser or the CLI, so it is
what `tensorplan lean-runtime export` archives and what version-compatible plans embed.

    from tensorplan import lean as trt
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(plan)
"""

from ..errors import IErrorRecorder
from ..logging import ILogger, Logger
from ..memory import IGpuAllocator, IGpuAsyncAllocator, IHostMemory
from ..plugins.interfaces import (
    DynamicPluginTensorDesc,
    IPluginCreatorV3One,
    IPluginResourceContext,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    PluginField,
    PluginFieldCollection,
    PluginTensorDesc,
)
from ..plugins.registry import IPluginRegistry, get_plugin_registry
from ..runtime.context import IExecutionContext
from ..runtime.engine import ICudaEngine
from ..runtime.runtime import Runtime
from ..runtime.stream_reader import IStreamReader, IStreamReaderV2
from ..types import (
    DataType,
    Dims,
    ErrorCodeTRT,
    ExecutionContextAllocationStrategy,
    PluginCapabilityType,
    PluginFieldType,
    TempfileControlFlag,
    TensorFormat,
    TensorIOMode,
    TensorLocation,
    TensorRTPhase,
)
from ..version import __version__

__all__ = [
    "DataType",
    "Dims",
    "DynamicPluginTensorDesc",
    "ErrorCodeTRT",
    "ExecutionContextAllocationStrategy",
    "ICudaEngine",
    "IErrorRecorder",
    "IExecutionContext",
    "IGpuAllocator",
    "IGpuAsyncAllocator",
    "IHostMemory",
    "ILogger",
    "IPluginCreatorV3One",
    "IPluginRegistry",
    "IPluginResourceContext",
    "IPluginV3",
    "IPluginV3OneBuild",
    "IPluginV3OneCore",
    "IPluginV3OneRuntime",
    "IStreamReader",
    "IStreamReaderV2",
    "Logger",
    "PluginCapabilityType",
    "PluginField",
    "PluginFieldCollection",
    "PluginFieldType",
    "PluginTensorDesc",
    "Runtime",
    "TempfileControlFlag",
    "TensorFormat",
    "TensorIOMode",
    "TensorLocation",
    "TensorRTPhase",
    "__version__",
    "get_plugin_registry",
]
