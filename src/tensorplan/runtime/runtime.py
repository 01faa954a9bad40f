"""Runtime: deserializes plans into engines, with TensorRT's members and behaviour."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

from ..device import execution_device, host_bytes
from ..errors import report_error
from ..logging import ILogger
from ..memory import IGpuAllocator, allocate
from ..plan.format import PlanError, PlanFlag, SectionKind
from ..plan.reader import read_header, read_program, verify_sections
from ..plugins.registry import IPluginRegistry, get_plugin_registry
from ..types import ErrorCodeTRT, TempfileControlFlag
from .engine import ICudaEngine
from .stream_reader import IStreamReader, IStreamReaderV2, read_plan_stream

DESERIALIZE = "IRuntime::deserializeCudaEngine"
ALL_TEMPFILE_FLAGS = (1 << int(TempfileControlFlag.ALLOW_IN_MEMORY_FILES)) | (
    1 << int(TempfileControlFlag.ALLOW_TEMPORARY_FILES)
)


class Runtime:
    """Allows a serialized ICudaEngine (a plan) to be deserialized."""

    def __init__(self, logger: ILogger) -> None:
        if logger is None:
            raise TypeError("Runtime needs a logger, e.g. tensorplan.Logger()")
        self._logger = logger
        self._error_recorder = None
        self.gpu_allocator: IGpuAllocator | None = None
        self._max_threads = 1
        self._temporary_directory: str | None = None
        self._tempfile_control_flags = ALL_TEMPFILE_FLAGS
        self.engine_host_code_allowed = False
        self._plugin_registry = IPluginRegistry(parent=get_plugin_registry())

    # -- members ----------------------------------------------------------------------------

    @property
    def logger(self) -> ILogger:
        return self._logger

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    @property
    def DLA_core(self) -> int:
        return -1

    @DLA_core.setter
    def DLA_core(self, core: int) -> None:
        report_error(
            self,
            ErrorCodeTRT.INVALID_ARGUMENT,
            "IRuntime::setDLACore",
            f"DLA core {core} is out of range: this platform has 0 DLA cores",
        )

    @property
    def num_DLA_cores(self) -> int:
        return 0

    @property
    def max_threads(self) -> int:
        return self._max_threads

    @max_threads.setter
    def max_threads(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IRuntime::setMaxThreads",
                f"max_threads must be an integer of at least 1, got {value!r}; "
                f"keeping {self._max_threads}",
            )
            return
        self._max_threads = value

    @property
    def temporary_directory(self) -> str | None:
        return self._temporary_directory

    @temporary_directory.setter
    def temporary_directory(self, path: str | os.PathLike | None) -> None:
        self._temporary_directory = None if path is None else os.fspath(path)

    @property
    def tempfile_control_flags(self) -> int:
        return self._tempfile_control_flags

    @tempfile_control_flags.setter
    def tempfile_control_flags(self, flags: int) -> None:
        if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~ALL_TEMPFILE_FLAGS:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IRuntime::setTempfileControlFlags",
                f"{flags!r} is not a bitmask of TempfileControlFlag bits (0 to "
                f"{ALL_TEMPFILE_FLAGS}); keeping {self._tempfile_control_flags}",
            )
            return
        self._tempfile_control_flags = flags

    def get_plugin_registry(self) -> IPluginRegistry:
        return self._plugin_registry

    def load_runtime(self, path: str) -> Runtime | None:
        """Load a lean runtime from a file; None with a reported error when it cannot be."""
        api = "IRuntime::loadRuntime"
        try:
            with open(path, "rb") as file:
                file.read(1)
        except (OSError, TypeError) as error:
            report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, f"cannot read '{path}': {error}")
            return None
        report_error(
            self,
            ErrorCodeTRT.UNSUPPORTED_STATE,
            api,
            f"'{path}' is not a tensorplan lean runtime this version can load",
        )
        return None

    def __enter__(self) -> Runtime:
        warnings.warn(
            "Context managers are deprecated and have no effect.", DeprecationWarning, stacklevel=2
        )
        return self

    def __exit__(self, *args: object) -> None:
        pass

    # -- deserialization --------------------------------------------------------------------

    def deserialize_cuda_engine(self, serialized_engine: Any) -> ICudaEngine | None:
        """An engine from a plan (any buffer, IStreamReader or IStreamReaderV2), or None.

        Never raises for bad data: the cause goes to the error recorder, or the logger.
        """
        try:
            plan = self._plan_bytes(serialized_engine)
            header = read_header(plan)
            has_host_code = bool(header.flags & PlanFlag.HAS_HOST_CODE)
            if has_host_code and not self.engine_host_code_allowed:
                report_error(
                    self,
                    ErrorCodeTRT.FAILED_INITIALIZATION,
                    DESERIALIZE,
                    "the plan has the HAS_HOST_CODE flag: it carries host code, which this "
                    "runtime refuses; set Runtime.engine_host_code_allowed = True to allow it",
                    category="API Usage Error",
                )
                return None
            verify_sections(plan, header, self._max_threads)
            program, layout = read_program(plan, header)
        except PlanError as error:
            if error.incompatible:
                report_error(
                    self,
                    ErrorCodeTRT.FAILED_INITIALIZATION,
                    DESERIALIZE,
                    str(error),
                    category="API Usage Error",
                )
            else:
                report_error(
                    self, ErrorCodeTRT.UNSPECIFIED_ERROR, DESERIALIZE, str(error), "Serialization"
                )
            return None
        if has_host_code:
            report_error(
                self,
                ErrorCodeTRT.UNSUPPORTED_STATE,
                DESERIALIZE,
                "the plan carries host code (HAS_HOST_CODE), and this version of tensorplan "
                "cannot load host code yet; rebuild the plan without it",
            )
            return None
        weights = header.sections.get(SectionKind.WEIGHTS)
        size = weights.length if weights else 0
        device = execution_device()
        allocation = allocate(self, DESERIALIZE, self.gpu_allocator, size, device, "weights")
        if allocation is None:
            return None
        if size:
            source = host_bytes(plan[weights.offset : weights.offset + size])
            allocation.bytes.copy_(source)
        return ICudaEngine(self, program, allocation, layout)

    def _plan_bytes(self, source: Any) -> memoryview:
        """The plan as a flat byte view, read from a stream reader if that is what `source` is."""
        is_buffer = isinstance(source, (bytes, bytearray, memoryview))
        if isinstance(source, (IStreamReader, IStreamReaderV2)) or (
            hasattr(source, "read") and not is_buffer
        ):
            try:
                return memoryview(read_plan_stream(source))
            except PlanError:
                raise
            except Exception as error:  # a user's reader failed
                raise PlanError(f"the stream reader failed: {error!r}") from None
        try:
            view = memoryview(source)
        except (TypeError, ValueError, BufferError):
            raise PlanError(
                f"{type(source).__name__} is neither a buffer nor a stream reader"
            ) from None
        if "O" in view.format:  # numpy object arrays export pointers, not data
            raise PlanError(f"{type(source).__name__} of Python objects is not a plan buffer")
        if view.format == "B" and view.ndim == 1 and view.c_contiguous:
            return view
        if view.c_contiguous:
            with contextlib.suppress(TypeError, ValueError):  # formats cast() does not know
                return view.cast("B")
        return memoryview(view.tobytes())
