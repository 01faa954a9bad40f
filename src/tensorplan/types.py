"""TensorRT's enums and small value types: the same names and values as `tensorrt`.

Enum values are TensorRT's own, so plans, flags and bitmasks (``1 << int(flag)``) mean the
same thing in both libraries.
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class ActivationType(enum.IntEnum):
    """The type of activation to perform."""

    RELU = 0
    SIGMOID = 1
    TANH = 2
    LEAKY_RELU = 3
    ELU = 4
    SELU = 5
    SOFTSIGN = 6
    SOFTPLUS = 7
    CLIP = 8
    HARD_SIGMOID = 9
    SCALED_TANH = 10
    THRESHOLDED_RELU = 11
    GELU_ERF = 12
    GELU_TANH = 13


class AllocatorFlag(enum.IntEnum):
    """Flags for memory allocation."""

    RESIZABLE = 0


class BoundingBoxFormat(enum.IntEnum):
    """Enumerates bounding box data formats used for the Boxes input tensor in the NMS layer."""

    CORNER_PAIRS = 0
    CENTER_SIZES = 1


class BuilderFlag(enum.IntEnum):
    """Valid modes that the builder can enable when creating an engine from a network definition."""

    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 4
    DISABLE_TIMING_CACHE = 5
    TF32 = 6
    SPARSE_WEIGHTS = 7
    SAFETY_SCOPE = 8
    OBEY_PRECISION_CONSTRAINTS = 9
    PREFER_PRECISION_CONSTRAINTS = 10
    DIRECT_IO = 11
    REJECT_EMPTY_ALGORITHMS = 12
    VERSION_COMPATIBLE = 13
    EXCLUDE_LEAN_RUNTIME = 14
    FP8 = 15
    ERROR_ON_TIMING_CACHE_MISS = 16
    BF16 = 17
    DISABLE_COMPILATION_CACHE = 18
    STRIP_PLAN = 19
    WEIGHTLESS = 19
    REFIT_IDENTICAL = 20
    WEIGHT_STREAMING = 21
    INT4 = 22
    REFIT_INDIVIDUAL = 23
    STRICT_NANS = 24
    MONITOR_MEMORY = 25
    FP4 = 26
    EDITABLE_TIMING_CACHE = 27
    DISTRIBUTIVE_INDEPENDENCE = 28


class CumulativeOperation(enum.IntEnum):
    """The cumulative operations that may be performed by a Cumulative layer"""

    SUM = 0
    PROD = 64
    """tensorplan extension (ONNX CumProd): a running product."""


class DataType(enum.IntEnum):
    """Represents data types."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9
    FP4 = 10
    E8M0 = 11
    # tensorplan extensions (not in TensorRT), for ONNX models that use these types
    DOUBLE = 64
    INT16 = 65
    UINT16 = 66
    UINT32 = 67
    UINT64 = 68
    FP8_E5M2 = 69
    FP8_E4M3FNUZ = 70
    FP8_E5M2FNUZ = 71
    UINT4 = 72
    INT2 = 73
    UINT2 = 74
    FP6_E2M3 = 75
    FP6_E3M2 = 76

    @property
    def itemsize(self) -> float:
        """Bytes per element by bit width (0.5 for the 4-bit types, as in TensorRT); tensorplan
        stores the sub-byte types one element per byte (see docs/dtypes.md)."""
        return _ITEMSIZE[self]


FLOATS = frozenset({DataType.FLOAT, DataType.HALF, DataType.BF16})
"""The float types layers compute in."""

FLOATS_AND_DOUBLE = FLOATS | {DataType.DOUBLE}
"""With DOUBLE, which ONNX has and some layers take."""


class DeviceType(enum.IntEnum):
    """Device types that TensorRT can execute on"""

    GPU = 0
    DLA = 1


class ElementWiseOperation(enum.IntEnum):
    """The binary operations that may be performed by an ElementWise layer."""

    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    SUB = 4
    DIV = 5
    POW = 6
    FLOOR_DIV = 7
    AND = 8
    OR = 9
    XOR = 10
    EQUAL = 11
    GREATER = 12
    LESS = 13
    # tensorplan extensions (not in TensorRT), for ONNX's integer and remainder operators
    MOD = 64
    """ONNX Mod with fmod=0: the remainder has the divisor's sign (Python's %)."""
    FMOD = 65
    """ONNX Mod with fmod=1: the remainder has the dividend's sign (C's fmod)."""
    BITWISE_AND = 66
    BITWISE_OR = 67
    BITWISE_XOR = 68
    BITSHIFT_LEFT = 69
    """ONNX BitShift LEFT: bits past the type's width are dropped; a shift by a negative amount
    or by the width or more gives 0."""
    BITSHIFT_RIGHT = 70
    """ONNX BitShift RIGHT: arithmetic for signed types, logical for unsigned ones; a shift
    out of range gives 0, or -1 for a negative signed value."""


class EngineCapability(enum.IntEnum):
    """List of supported engine capability flows."""

    STANDARD = 0
    SAFETY = 1
    DLA_STANDALONE = 2


class ErrorCodeTRT(enum.IntEnum):
    """Error codes that can be returned by TensorRT during execution."""

    SUCCESS = 0
    UNSPECIFIED_ERROR = 1
    INTERNAL_ERROR = 2
    INVALID_ARGUMENT = 3
    INVALID_CONFIG = 4
    FAILED_ALLOCATION = 5
    FAILED_INITIALIZATION = 6
    FAILED_EXECUTION = 7
    FAILED_COMPUTATION = 8
    INVALID_STATE = 9
    UNSUPPORTED_STATE = 10


class ExecutionContextAllocationStrategy(enum.IntEnum):
    """Different memory allocation behaviors for IExecutionContext."""

    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


class FillOperation(enum.IntEnum):
    """The tensor fill operations that may performed by an Fill layer."""

    LINSPACE = 0
    RANDOM_UNIFORM = 1
    RANDOM_NORMAL = 2


class GatherMode(enum.IntEnum):
    """Controls how IGatherLayer gathers data"""

    DEFAULT = 0
    ELEMENT = 1
    ND = 2


class HardwareCompatibilityLevel(enum.IntEnum):
    """Compatibility with GPU architectures other than the one the engine was built on."""

    NONE = 0
    AMPERE_PLUS = 1
    SAME_COMPUTE_CAPABILITY = 2


class InterpolationMode(enum.IntEnum):
    """Various modes of interpolation, used in resize and grid_sample layers."""

    NEAREST = 0
    LINEAR = 1
    CUBIC = 2


class LayerInformationFormat(enum.IntEnum):
    """The format in which the IEngineInspector prints the layer information."""

    ONELINE = 0
    JSON = 1


class LayerType(enum.IntEnum):
    """Type of Layer"""

    CONVOLUTION = 0
    CAST = 1
    ACTIVATION = 2
    POOLING = 3
    LRN = 4
    SCALE = 5
    SOFTMAX = 6
    DECONVOLUTION = 7
    CONCATENATION = 8
    ELEMENTWISE = 9
    PLUGIN = 10
    UNARY = 11
    PADDING = 12
    SHUFFLE = 13
    REDUCE = 14
    TOPK = 15
    GATHER = 16
    MATRIX_MULTIPLY = 17
    RAGGED_SOFTMAX = 18
    CONSTANT = 19
    IDENTITY = 20
    PLUGIN_V2 = 21
    SLICE = 22
    SHAPE = 23
    PARAMETRIC_RELU = 24
    RESIZE = 25
    TRIP_LIMIT = 26
    RECURRENCE = 27
    ITERATOR = 28
    LOOP_OUTPUT = 29
    SELECT = 30
    FILL = 31
    QUANTIZE = 32
    DEQUANTIZE = 33
    CONDITION = 34
    CONDITIONAL_INPUT = 35
    CONDITIONAL_OUTPUT = 36
    SCATTER = 37
    EINSUM = 38
    ASSERTION = 39
    ONE_HOT = 40
    NON_ZERO = 41
    GRID_SAMPLE = 42
    NMS = 43
    REVERSE_SEQUENCE = 44
    NORMALIZATION = 45
    PLUGIN_V3 = 46
    SQUEEZE = 47
    UNSQUEEZE = 48
    CUMULATIVE = 49
    DYNAMIC_QUANTIZE = 50


class LoopOutput(enum.IntEnum):
    """Describes kinds of loop outputs."""

    LAST_VALUE = 0
    CONCATENATE = 1
    REVERSE = 2


class MatrixOperation(enum.IntEnum):
    """The matrix operations that may be performed by a Matrix layer"""

    NONE = 0
    TRANSPOSE = 1
    VECTOR = 2


class MemoryPoolType(enum.IntEnum):
    """The type for memory pools used by TensorRT."""

    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3
    TACTIC_DRAM = 4
    TACTIC_SHARED_MEMORY = 5


class NetworkDefinitionCreationFlag(enum.IntEnum):
    """Immutable network properties set at creation: `1 << int(flag)` bits of create_network."""

    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1
    PREFER_JIT_PYTHON_PLUGINS = 2
    PREFER_AOT_PYTHON_PLUGINS = 3


class PaddingMode(enum.IntEnum):
    """Enumerates types of padding available in convolution, deconvolution and pooling layers."""

    EXPLICIT_ROUND_DOWN = 0
    EXPLICIT_ROUND_UP = 1
    SAME_UPPER = 2
    SAME_LOWER = 3


class PoolingType(enum.IntEnum):
    """The type of pooling to perform in a pooling layer."""

    MAX = 0
    AVERAGE = 1
    MAX_AVERAGE_BLEND = 2


class PreviewFeature(enum.IntEnum):
    """Preview features that can be enabled."""

    PROFILE_SHARING_0806 = 0
    ALIASED_PLUGIN_IO_10_03 = 1
    RUNTIME_ACTIVATION_RESIZE_10_10 = 2


class ProfilingVerbosity(enum.IntEnum):
    """Profiling verbosity in NVTX annotations and the engine inspector"""

    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class ReduceOperation(enum.IntEnum):
    """The reduce operations that may be performed by a Reduce layer"""

    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    AVG = 4


class ResizeCoordinateTransformation(enum.IntEnum):
    """Various modes of how to map the resized coordinate back to the original coordinate."""

    ALIGN_CORNERS = 0
    ASYMMETRIC = 1
    HALF_PIXEL = 2


class ResizeRoundMode(enum.IntEnum):
    """Rounding modes available for the resize layer."""

    HALF_UP = 0
    HALF_DOWN = 1
    FLOOR = 2
    CEIL = 3


class ResizeSelector(enum.IntEnum):
    """Decides whether the original coordinate is 0 given a resize coordinate less than 2."""

    FORMULA = 0
    UPPER = 1


class SampleMode(enum.IntEnum):
    """Controls how ISliceLayer and IGridSample handles out of bounds coordinates"""

    STRICT_BOUNDS = 0
    WRAP = 1
    CLAMP = 2
    FILL = 3
    REFLECT = 4


class ScaleMode(enum.IntEnum):
    """Controls how scale is applied in a Scale layer."""

    UNIFORM = 0
    CHANNEL = 1
    ELEMENTWISE = 2


class ScatterMode(enum.IntEnum):
    """The scatter mode to be done by the scatter layer."""

    ELEMENT = 0
    ND = 1


class SeekPosition(enum.IntEnum):
    """Specifies what the offset is relative to when calling `seek` on an `IStreamReaderV2`."""

    SET = 0
    CUR = 1
    END = 2


class SerializationFlag(enum.IntEnum):
    """Valid flags that can be use to creating binary file from engine."""

    EXCLUDE_WEIGHTS = 0
    EXCLUDE_LEAN_RUNTIME = 1


class TacticSource(enum.IntEnum):
    """Tactic sources that can provide tactics for TensorRT."""

    CUBLAS = 0
    CUBLAS_LT = 1
    CUDNN = 2
    EDGE_MASK_CONVOLUTIONS = 3
    JIT_CONVOLUTIONS = 4


class TempfileControlFlag(enum.IntEnum):
    """Flags used to control TensorRT's behavior when creating executable temporary files."""

    ALLOW_IN_MEMORY_FILES = 0
    ALLOW_TEMPORARY_FILES = 1


class TensorFormat(enum.IntEnum):
    """Format of the input/output tensors."""

    LINEAR = 0
    CHW2 = 1
    HWC8 = 2
    CHW4 = 3
    CHW16 = 4
    CHW32 = 5
    DHWC8 = 6
    CDHW32 = 7
    HWC = 8
    DLA_LINEAR = 9
    DLA_HWC4 = 10
    HWC16 = 11
    DHWC = 12


class TensorIOMode(enum.IntEnum):
    """IO tensor modes for TensorRT."""

    NONE = 0
    INPUT = 1
    OUTPUT = 2


class TensorLocation(enum.IntEnum):
    """The physical location of the data."""

    DEVICE = 0
    HOST = 1


class TopKOperation(enum.IntEnum):
    """The operations that may be performed by a TopK layer"""

    MAX = 0
    MIN = 1


class TripLimit(enum.IntEnum):
    """Describes kinds of trip limits."""

    COUNT = 0
    WHILE = 1


class UnaryOperation(enum.IntEnum):
    """The unary operations that may be performed by a Unary layer."""

    EXP = 0
    LOG = 1
    SQRT = 2
    RECIP = 3
    ABS = 4
    NEG = 5
    SIN = 6
    COS = 7
    TAN = 8
    SINH = 9
    COSH = 10
    ASIN = 11
    ACOS = 12
    ATAN = 13
    ASINH = 14
    ACOSH = 15
    ATANH = 16
    CEIL = 17
    FLOOR = 18
    ERF = 19
    NOT = 20
    SIGN = 21
    ROUND = 22
    ISINF = 23
    ISNAN = 24
    # tensorplan extension (not in TensorRT), for ONNX BitwiseNot
    BITWISE_NOT = 64


class WeightsRole(enum.IntEnum):
    """How a layer uses particular Weights."""

    KERNEL = 0
    BIAS = 1
    SHIFT = 2
    SCALE = 3
    CONSTANT = 4
    ANY = 5


_ITEMSIZE = {
    DataType.FLOAT: 4,
    DataType.HALF: 2,
    DataType.BF16: 2,
    DataType.INT8: 1,
    DataType.INT32: 4,
    DataType.INT64: 8,
    DataType.BOOL: 1,
    DataType.UINT8: 1,
    DataType.FP8: 1,
    DataType.E8M0: 1,
    DataType.INT4: 0.5,
    DataType.FP4: 0.5,
    DataType.DOUBLE: 8,
    DataType.INT16: 2,
    DataType.UINT16: 2,
    DataType.UINT32: 4,
    DataType.UINT64: 8,
    DataType.FP8_E5M2: 1,
    DataType.FP8_E4M3FNUZ: 1,
    DataType.FP8_E5M2FNUZ: 1,
    DataType.UINT4: 0.5,
    DataType.INT2: 0.25,
    DataType.UINT2: 0.25,
    DataType.FP6_E2M3: 0.75,
    DataType.FP6_E3M2: 0.75,
}

_NUMPY_TYPES = {
    DataType.FLOAT: np.float32,
    DataType.HALF: np.float16,
    DataType.INT8: np.int8,
    DataType.INT32: np.int32,
    DataType.INT64: np.int64,
    DataType.BOOL: np.bool_,
    DataType.UINT8: np.uint8,
    DataType.DOUBLE: np.float64,
    DataType.INT16: np.int16,
    DataType.UINT16: np.uint16,
    DataType.UINT32: np.uint32,
    DataType.UINT64: np.uint64,
}


def nptype(trt_type: DataType) -> type:
    """The numpy type of a DataType, as `tensorrt.nptype`; TypeError where numpy has none."""
    try:
        return _NUMPY_TYPES[DataType(trt_type)]
    except (KeyError, ValueError):
        raise TypeError(
            "Could not resolve TensorRT datatype to an equivalent numpy datatype."
        ) from None


def datatype_from_numpy(dtype: Any) -> DataType:
    """The DataType of a numpy dtype; TypeError for dtypes TensorRT has no type for."""
    np_dtype = np.dtype(dtype)
    for trt_type, np_type in _NUMPY_TYPES.items():
        if np_dtype == np_type:
            return trt_type
    raise TypeError(f"numpy dtype {np_dtype} has no TensorRT DataType")


def volume(iterable: Iterable[int]) -> int:
    """The product of the values, as `tensorrt.volume`."""
    result = 1
    for value in iterable:
        result *= value
    return result


class Dims:
    """A tensor's dimensions: a mutable tuple that compares equal to tuples and lists."""

    MAX_DIMS = 8
    __hash__ = None  # type: ignore[assignment] - mutable, as in TensorRT

    def __init__(self, shape: Iterable[int] = ()) -> None:
        values = [int(d) for d in shape]
        if len(values) > self.MAX_DIMS:
            raise ValueError(f"Dims has at most {self.MAX_DIMS} dimensions, got {len(values)}")
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return tuple(self._values[index])
        return self._values[index]

    def __setitem__(self, index: int | slice, value: Any) -> None:
        if isinstance(index, slice):
            self._values[index] = [int(v) for v in value]
        else:
            self._values[index] = int(value)

    def __iter__(self):
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Dims, tuple, list)):
            return tuple(self._values) == tuple(other)
        return NotImplemented

    def __repr__(self) -> str:
        return (
            "("
            + ", ".join(str(d) for d in self._values)
            + ("," if len(self._values) == 1 else "")
            + ")"
        )

    __str__ = __repr__


class Dims2(Dims):
    """Two dimensions: `Dims2(d0, d1)` or `Dims2([d0, d1])`."""

    def __init__(self, *dims: Any) -> None:
        super().__init__(_fixed_rank(dims, 2))


class DimsHW(Dims2):
    """Two dimensions named height and width."""

    @property
    def h(self) -> int:
        return self[0]

    @h.setter
    def h(self, value: int) -> None:
        self[0] = value

    @property
    def w(self) -> int:
        return self[1]

    @w.setter
    def w(self, value: int) -> None:
        self[1] = value


class Dims3(Dims):
    """Three dimensions."""

    def __init__(self, *dims: Any) -> None:
        super().__init__(_fixed_rank(dims, 3))


class Dims4(Dims):
    """Four dimensions."""

    def __init__(self, *dims: Any) -> None:
        super().__init__(_fixed_rank(dims, 4))


def _fixed_rank(dims: tuple, rank: int) -> Sequence[int]:
    if not dims:
        return [0] * rank
    values = list(dims[0]) if len(dims) == 1 and not isinstance(dims[0], int) else list(dims)
    if len(values) != rank:
        raise ValueError(f"expected {rank} dimensions, got {len(values)}")
    return values


def as_shape(dims: Any) -> tuple[int, ...]:
    """A Dims, tuple or list as a plain tuple of ints."""
    return tuple(int(d) for d in dims)


class Weights:
    """An array of weights used as a layer parameter; holds a numpy array without copying it."""

    def __init__(
        self, a: Any = DataType.FLOAT, ptr: int | None = None, count: int | None = None
    ) -> None:
        if isinstance(a, int):
            trt_type = DataType(a)
            if ptr is None:
                self._array = np.zeros(0, dtype=nptype(trt_type))
            else:
                np_type = np.dtype(nptype(trt_type))
                buffer = (ctypes.c_ubyte * (int(count) * np_type.itemsize)).from_address(int(ptr))
                self._array = np.frombuffer(buffer, dtype=np_type)
            self._dtype = trt_type
        else:
            array = np.ascontiguousarray(a)
            self._array = array
            self._dtype = datatype_from_numpy(array.dtype)

    @property
    def dtype(self) -> DataType:
        return self._dtype

    @property
    def size(self) -> int:
        return int(self._array.size)

    @property
    def nbytes(self) -> int:
        return int(self._array.nbytes)

    def __len__(self) -> int:
        return self.size

    def numpy(self) -> np.ndarray:
        """A numpy view of the weights (no copy)."""
        return self._array


def as_weights(value: Any) -> Weights:
    """Weights from Weights or anything numpy turns into an array."""
    return value if isinstance(value, Weights) else Weights(np.asarray(value))


class QuantizationFlag(enum.IntEnum):
    """Flags for quantization settings of the builder."""

    CALIBRATE_BEFORE_FUSION = 0


class APILanguage(enum.IntEnum):
    """The language used in the implementation of a TensorRT interface."""

    CPP = 0
    PYTHON = 1


class DimensionOperation(enum.IntEnum):
    """An operation on two IDimensionExprs (integer expressions of dimensions)."""

    SUM = 0
    PROD = 1
    MAX = 2
    MIN = 3
    SUB = 4
    EQUAL = 5
    LESS = 6
    FLOOR_DIV = 7
    CEIL_DIV = 8


class PluginFieldType(enum.IntEnum):
    """The possible field types for custom layer."""

    FLOAT16 = 0
    FLOAT32 = 1
    FLOAT64 = 2
    INT8 = 3
    INT16 = 4
    INT32 = 5
    CHAR = 6
    DIMS = 7
    UNKNOWN = 8
    BF16 = 9
    INT64 = 10
    FP8 = 11
    INT4 = 12
    FP4 = 13


class PluginCapabilityType(enum.IntEnum):
    """Enumerates the different capability types a IPluginV3 object may have."""

    CORE = 0
    BUILD = 1
    RUNTIME = 2


class TensorRTPhase(enum.IntEnum):
    """Indicates a phase of operation of TensorRT."""

    BUILD = 0
    RUNTIME = 1


class PluginCreatorVersion(enum.IntEnum):
    """Enum to identify version of the plugin creator."""

    V1 = 0
    V1_PYTHON = 64


class ErrorCode(enum.IntEnum):
    """The ONNX parser's error codes."""

    SUCCESS = 0
    INTERNAL_ERROR = 1
    MEM_ALLOC_FAILED = 2
    MODEL_DESERIALIZE_FAILED = 3
    INVALID_VALUE = 4
    INVALID_GRAPH = 5
    INVALID_NODE = 6
    UNSUPPORTED_GRAPH = 7
    UNSUPPORTED_NODE = 8
    UNSUPPORTED_NODE_ATTR = 9
    UNSUPPORTED_NODE_INPUT = 10
    UNSUPPORTED_NODE_DATATYPE = 11
    UNSUPPORTED_NODE_DYNAMIC = 12
    UNSUPPORTED_NODE_SHAPE = 13
    REFIT_FAILED = 14


class OnnxParserFlag(enum.IntEnum):
    """Flags that change how the ONNX parser imports a model."""

    NATIVE_INSTANCENORM = 0
    ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA = 1
