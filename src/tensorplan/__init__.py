"""tensorplan: an open inference engine that speaks TensorRT's Python API.

    import tensorplan as trt

The names here are TensorRT's; see docs/api-differences.md for where behaviour differs.
"""

from importlib import import_module as _import_module

from . import lean, plugin
from .builder.builder import Builder
from .builder.config import IBuilderConfig, IOptimizationProfile
from .builder.progress import IProgressMonitor
from .builder.timing import ITimingCache, TimingCacheKey, TimingCacheValue
from .errors import IErrorRecorder
from .logging import ILogger, Logger
from .memory import IGpuAllocator, IGpuAsyncAllocator, IHostMemory
from .network.definition import INetworkDefinition
from .network.layer import ILayer
from .network.layers.constant import IConstantLayer
from .network.layers.conv import IConvolutionLayer, IDeconvolutionLayer
from .network.layers.cumulative import ICumulativeLayer
from .network.layers.einsum import IEinsumLayer
from .network.layers.elementwise import (
    IActivationLayer,
    ICastLayer,
    IElementWiseLayer,
    IIdentityLayer,
    ISelectLayer,
    IUnaryLayer,
)
from .network.layers.extension import (
    ICol2ImLayer,
    IDetLayer,
    IDFTLayer,
    ILpPoolingLayer,
    IMaxUnpoolLayer,
    INMSLayer,
    ISTFTLayer,
    IUniqueLayer,
)
from .network.layers.fill import IFillLayer
from .network.layers.indexing import (
    IOneHotLayer,
    IReverseSequenceLayer,
    IScatterLayer,
    ScatterReduction,
)
from .network.layers.matmul import IMatrixMultiplyLayer
from .network.layers.nonzero import INonZeroLayer
from .network.layers.normalization import INormalizationLayer, ISoftMaxLayer
from .network.layers.padding import IPaddingLayer
from .network.layers.plugin import IPluginV3Layer
from .network.layers.pooling import IPoolingLayer
from .network.layers.quantize import IDequantizeLayer, IDynamicQuantizeLayer, IQuantizeLayer
from .network.layers.recurrent import IRNNLayer
from .network.layers.reduce import IReduceLayer, ITopKLayer
from .network.layers.resize import IGridSampleLayer, IResizeLayer
from .network.layers.scale import ILRNLayer, IParametricReLULayer, IScaleLayer
from .network.layers.shaping import (
    IConcatenationLayer,
    IGatherLayer,
    IShapeLayer,
    IShuffleLayer,
    ISliceLayer,
)
from .network.layers.squeeze import ISqueezeLayer, IUnsqueezeLayer
from .network.tensor import ITensor
from .ops.recurrent import RNNActivation, RNNDirection, RNNOperation
from .plugins.dims_expr import DimsExprs, IDimensionExpr, IExprBuilder
from .plugins.interfaces import (
    DynamicPluginTensorDesc,
    IPluginCapability,
    IPluginCreatorInterface,
    IPluginCreatorV3One,
    IPluginResourceContext,
    IPluginV3,
    IPluginV3OneBuild,
    IPluginV3OneCore,
    IPluginV3OneRuntime,
    IVersionedInterface,
    PluginField,
    PluginFieldCollection,
    PluginFieldCollection_,
    PluginTensorDesc,
)
from .plugins.registry import IPluginRegistry, get_plugin_registry
from .runtime.context import IExecutionContext
from .runtime.engine import ICudaEngine
from .runtime.output_allocator import IOutputAllocator
from .runtime.runtime import Runtime
from .runtime.stream_reader import IStreamReader, IStreamReaderV2
from .types import (
    ActivationType,
    AllocatorFlag,
    APILanguage,
    BoundingBoxFormat,
    BuilderFlag,
    CumulativeOperation,
    DataType,
    DeviceType,
    DimensionOperation,
    Dims,
    Dims2,
    Dims3,
    Dims4,
    DimsHW,
    ElementWiseOperation,
    EngineCapability,
    ErrorCodeTRT,
    ExecutionContextAllocationStrategy,
    FillOperation,
    GatherMode,
    HardwareCompatibilityLevel,
    InterpolationMode,
    LayerInformationFormat,
    LayerType,
    LoopOutput,
    MatrixOperation,
    MemoryPoolType,
    NetworkDefinitionCreationFlag,
    PaddingMode,
    PluginCapabilityType,
    PluginCreatorVersion,
    PluginFieldType,
    PoolingType,
    PreviewFeature,
    ProfilingVerbosity,
    QuantizationFlag,
    ReduceOperation,
    ResizeCoordinateTransformation,
    ResizeRoundMode,
    ResizeSelector,
    SampleMode,
    ScaleMode,
    ScatterMode,
    SeekPosition,
    SerializationFlag,
    TacticSource,
    TempfileControlFlag,
    TensorFormat,
    TensorIOMode,
    TensorLocation,
    TensorRTPhase,
    TopKOperation,
    TripLimit,
    UnaryOperation,
    Weights,
    WeightsRole,
    nptype,
    volume,
)
from .version import __version__

float32 = DataType.FLOAT
float16 = DataType.HALF
bfloat16 = DataType.BF16
int8 = DataType.INT8
int32 = DataType.INT32
int64 = DataType.INT64
bool = DataType.BOOL
uint8 = DataType.UINT8
fp8 = DataType.FP8
int4 = DataType.INT4
fp4 = DataType.FP4
e8m0 = DataType.E8M0

from .types import ErrorCode, OnnxParserFlag  # noqa: E402

_ON_FIRST_USE = {"OnnxParser": ".onnx", "ParserError": ".onnx"}
"""Names imported when first asked for: the ONNX parser imports the onnx package, which
takes longer to import than the rest of tensorplan (0.7 s), and a deployment that loads
plans never needs it."""


def __getattr__(name: str) -> object:
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module 'tensorplan' has no attribute {name!r}")
    value = getattr(_import_module(_ON_FIRST_USE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_FIRST_USE})


__all__ = [name for name in __dir__() if not name.startswith("_")] + ["__version__"]
